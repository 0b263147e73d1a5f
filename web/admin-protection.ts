// Admin and staff pages for what protection produced: recipient keys (import, list, remove, the
// organisation's public key), pickups (search, revoke, unlock, resend password) and secure replies to staff. Pages show
// ids, addresses, states and dates; only a reply's own reader sees its content, and that is audited.
import express, { type Request, type Response } from 'express';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import { listReplies, readReply } from '../store/pickup-replies.js';
import { listPickups, revokePickup, unlockPickup, type PickupSummary } from '../store/pickups.js';
import type { Store } from '../store/store.js';
import { loadOrgKey } from '../store/org-key.js';
import { Keyring, normalizeFingerprint } from '../store/pgp-keyring.js';
import { html, SafeHtml } from './html.js';
import { staffPage, type StaffAuth } from './staff-auth.js';
import { addReissueRoutes } from './pickup-reissue.js';

function when(ms: number | null | undefined): string {
  return ms ? new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 16) : '';
}

export function createProtectionPages(opts: {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  auth: StaffAuth;
  hostname: string;
}): express.Router {
  const { config, store, auth } = opts;
  const keyring = new Keyring(store, config.pgp);
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '1mb' }));
  r.use(express.json({ limit: '1mb' }));
  r.use(auth.load);
  const admin = auth.require(['admin']);
  const staff = auth.require(['staff', 'admin']);
  const send = (req: Request, res: Response, title: string, body: SafeHtml, status = 200) =>
    res
      .status(status)
      .type('html')
      .send(staffPage(title, req.staff, body));

  // ---- Keys ----
  const keysPage = async (req: Request, res: Response, notice?: SafeHtml) => {
    const keys = await keyring.list();
    const now = Date.now();
    send(
      req,
      res,
      'Recipient keys',
      html`<h1>Recipient keys</h1>
${notice ?? ''}
<p class="note">Mail that needs protection goes to a recipient as PGP/MIME when one of these keys is valid for their address; everyone else gets a secure pickup. <a href="/admin/keys/org.asc">Download the organisation's public key</a> to give partners.</p>
<form method="post" action="/admin/keys" class="card">
<input type="hidden" name="_csrf" value="${req.staff!.csrf}">
<label for="armored">Import keys (paste ASCII-armoured public keys; several at once is fine)</label>
<textarea id="armored" name="armored" rows="6" required></textarea>
<button type="submit">Import</button>
</form>
${
  keys.length === 0
    ? html`<p class="empty">No recipient keys yet.</p>`
    : html`<table><thead><tr><th scope="col">Addresses</th><th scope="col">Fingerprint</th><th scope="col">Expires</th><th scope="col">State</th><th scope="col">Source</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
${keys.map((k) => {
  const state = k.revoked
    ? 'revoked'
    : k.expires !== null && k.expires <= now
      ? 'expired'
      : !k.canEncrypt
        ? 'cannot encrypt'
        : 'valid';
  return html`<tr><td>${k.emails.join(', ')}</td><td><code>${k.fingerprint.replace(/(.{4})/g, '$1 ').trim()}</code></td><td>${k.expires ? when(k.expires) : 'never'}</td><td>${state}</td><td>${k.source}</td>
<td><form method="post" action="/admin/keys/${k.fingerprint}/remove"><input type="hidden" name="_csrf" value="${req.staff!.csrf}"><button type="submit" class="link">Remove</button></form></td></tr>`;
})}</tbody></table>`
}`,
    );
  };
  r.get('/admin/keys', admin, (req, res) => keysPage(req, res));
  const importKeys = async (req: Request, text: string) => {
    const result = await keyring.importArmored(text, 'api');
    await store.write((trx) =>
      appendAudit(trx, {
        type: 'keys.imported',
        actor: req.staff!.email,
        detail: { imported: result.imported.map((k) => k.fingerprint), rejected: result.rejected.length },
      }),
    );
    return result;
  };
  r.post('/admin/keys', admin, auth.csrf, async (req, res) => {
    const armored = (req.body as Record<string, unknown>).armored;
    const text = typeof armored === 'string' ? armored : '';
    const result = await importKeys(req, text);
    await keysPage(
      req,
      res,
      result.imported.length > 0
        ? html`<p class="ok" role="status">Imported ${result.imported.length} key(s)${result.rejected.length ? html`; refused ${result.rejected.length}: ${result.rejected.map((x) => x.reason).join('; ')}` : ''}.</p>`
        : html`<p class="error" role="alert">Nothing imported: ${result.rejected.map((x) => x.reason).join('; ') || 'no key found in the text'}.</p>`,
    );
  });
  r.post('/admin/keys/:fpr/remove', admin, auth.csrf, async (req, res) => {
    const fpr = normalizeFingerprint(String(req.params.fpr));
    const removed = await keyring.remove(fpr);
    if (removed)
      await store.write((trx) =>
        appendAudit(trx, { type: 'keys.removed', actor: req.staff!.email, detail: { fingerprint: fpr } }),
      );
    await keysPage(
      req,
      res,
      removed
        ? html`<p class="ok" role="status">Removed ${fpr}.</p>`
        : html`<p class="error" role="alert">No such key.</p>`,
    );
  });
  r.get('/admin/keys/org.asc', admin, async (_req, res) => {
    const org = await loadOrgKey(store, { practiceName: config.practiceName, hostname: opts.hostname });
    res.set('Content-Disposition', 'attachment; filename="organisation-public-key.asc"');
    res.type('application/pgp-keys').send(org.publicArmored);
  });
  r.get('/api/admin/keys', admin, async (_req, res) => {
    res.json({ keys: await keyring.list() });
  });
  r.post('/api/admin/keys', admin, auth.csrf, async (req, res) => {
    const body = req.body as { armored?: unknown };
    if (typeof body.armored !== 'string') {
      res.status(400).json({ error: 'send {"armored": "<ASCII-armoured keys>"}' });
      return;
    }
    const result = await importKeys(req, body.armored);
    res.status(result.imported.length > 0 ? 200 : 422).json(result);
  });
  r.delete('/api/admin/keys/:fpr', admin, auth.csrf, async (req, res) => {
    const fpr = normalizeFingerprint(String(req.params.fpr));
    const removed = await keyring.remove(fpr);
    if (removed)
      await store.write((trx) =>
        appendAudit(trx, { type: 'keys.removed', actor: req.staff!.email, detail: { fingerprint: fpr } }),
      );
    res.status(removed ? 204 : 404).end();
  });

  // ---- Pickups ----
  const filterPickups = (rows: PickupSummary[], q: Request['query']) => {
    const s = (k: string) => (typeof q[k] === 'string' ? (q[k] as string).trim().toLowerCase() : '');
    const rcpt = s('rcpt');
    const status = s('status');
    const from = s('from');
    const to = s('to');
    return rows.filter(
      (p) =>
        (!rcpt || p.rcpt.toLowerCase().includes(rcpt)) &&
        (!status || p.status === status) &&
        (!from || p.createdAt >= Date.parse(`${from}T00:00:00Z`)) &&
        (!to || p.createdAt < Date.parse(`${to}T00:00:00Z`) + 86_400_000),
    );
  };
  const pickupTable = (req: Request, rows: PickupSummary[], base: string) =>
    rows.length === 0
      ? html`<p class="empty">No pickups match.</p>`
      : html`<table><thead><tr><th scope="col">Sent (UTC)</th><th scope="col">Reference</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Status</th><th scope="col">Expires</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
${rows.map(
  (
    p,
  ) => html`<tr><td>${when(p.createdAt)}</td><td><code>${p.reference}</code></td><td>${p.sender}</td><td>${p.rcpt}</td><td><span class="kind">${p.status}${p.hardLocked ? ' (hard lock)' : ''}</span></td><td>${when(p.expiresAt)}</td>
<td>${
    ['expired', 'revoked'].includes(p.status)
      ? ''
      : html`<form method="post" action="${base}/${p.id}/revoke"><input type="hidden" name="_csrf" value="${req.staff!.csrf}"><button type="submit" class="link">Revoke</button></form><a href="${base}/${p.id}/resend" class="action-link">Resend password</a>${
          p.status === 'locked' && base === '/admin/pickups'
            ? html`<form method="post" action="${base}/${p.id}/unlock"><input type="hidden" name="_csrf" value="${req.staff!.csrf}"><button type="submit" class="link">Unlock</button></form>`
            : ''
        }`
  }</td></tr>`,
)}</tbody></table>`;

  r.get('/admin/pickups', admin, async (req, res) => {
    const sender =
      typeof req.query.sender === 'string' && req.query.sender ? req.query.sender.toLowerCase() : undefined;
    const rows = filterPickups(await listPickups(store, { sender, limit: 2000 }), req.query);
    const v = (k: string) => (typeof req.query[k] === 'string' ? (req.query[k] as string) : '');
    send(
      req,
      res,
      'Pickups',
      html`<h1>Secure pickups</h1>
<form method="get" action="/admin/pickups" class="filters">
<div class="field"><label for="p-sender">Sender</label><input id="p-sender" name="sender" value="${v('sender')}"></div>
<div class="field"><label for="p-rcpt">Recipient contains</label><input id="p-rcpt" name="rcpt" value="${v('rcpt')}"></div>
<div class="field"><label for="p-status">Status</label><select id="p-status" name="status"><option value="">any</option>${[
        'sent',
        'fetched',
        'opened',
        'downloaded',
        'expired',
        'revoked',
        'locked',
      ].map(
        (s) => html`<option value="${s}"${new SafeHtml(v('status') === s ? ' selected' : '')}>${s}</option>`,
      )}</select></div>
<div class="field"><label for="p-from">From</label><input id="p-from" name="from" type="date" value="${v('from')}"></div>
<div class="field"><label for="p-to">To</label><input id="p-to" name="to" type="date" value="${v('to')}"></div>
<div class="field"><button type="submit">Search</button></div>
</form>
${pickupTable(req, rows, '/admin/pickups')}`,
    );
  });
  r.get('/api/admin/pickups', admin, async (req, res) => {
    const sender =
      typeof req.query.sender === 'string' && req.query.sender ? req.query.sender.toLowerCase() : undefined;
    res.json({ pickups: filterPickups(await listPickups(store, { sender, limit: 2000 }), req.query) });
  });
  const act = async (req: Request, action: 'revoke' | 'unlock', own: boolean): Promise<boolean> => {
    const id = String(req.params.id);
    if (own) {
      const [p] = await listPickups(store, { id });
      if (!p || p.sender.toLowerCase() !== req.staff!.email) return false;
    }
    return action === 'revoke'
      ? revokePickup(store, id, req.staff!.email)
      : unlockPickup(store, id, req.staff!.email);
  };
  for (const action of ['revoke', 'unlock'] as const) {
    r.post(`/admin/pickups/:id/${action}`, admin, auth.csrf, async (req, res) => {
      await act(req, action, false);
      res.redirect(303, '/admin/pickups');
    });
    r.post(`/api/admin/pickups/:id/${action}`, admin, auth.csrf, async (req, res) => {
      res.status((await act(req, action, false)) ? 204 : 404).end();
    });
  }
  addReissueRoutes(r, { config, store, log: opts.log, auth, hostname: opts.hostname });
  r.get('/me/pickups', staff, async (req, res) => {
    const rows = await listPickups(store, { sender: req.staff!.email, limit: 500 });
    send(
      req,
      res,
      'My pickups',
      html`<h1>My secure pickups</h1>
<p class="note">Messages you sent as a secure pickup: whether each recipient fetched the link, opened it or downloaded an attachment. Revoke one to make it unreadable for good. Resend password makes a new password (the old one stops working) and sends it the usual way; it works for pickups sent after you first signed in with your password, and not for those sent before an administrator reset your password.</p>
${pickupTable(req, rows, '/me/pickups')}
<p><a href="/me/replies">Secure replies to me</a></p>`,
    );
  });
  r.get('/api/me/pickups', staff, async (req, res) => {
    res.json({ pickups: await listPickups(store, { sender: req.staff!.email, limit: 500 }) });
  });
  r.post('/me/pickups/:id/revoke', staff, auth.csrf, async (req, res) => {
    await act(req, 'revoke', true);
    res.redirect(303, '/me/pickups');
  });
  r.post('/api/me/pickups/:id/revoke', staff, auth.csrf, async (req, res) => {
    res.status((await act(req, 'revoke', true)) ? 204 : 404).end();
  });

  // ---- Replies ----
  r.get('/me/replies', staff, async (req, res) => {
    const replies = await listReplies(store, { sender: req.staff!.email });
    send(
      req,
      res,
      'Secure replies',
      html`<h1>Secure replies</h1>
${
  replies.length === 0
    ? html`<p class="empty">No secure replies yet.</p>`
    : html`<table><thead><tr><th scope="col">Received (UTC)</th><th scope="col">From</th><th scope="col">Attachments</th><th scope="col">Read</th></tr></thead><tbody>${replies.map(
        (x) =>
          html`<tr><td><a href="/me/replies/${x.id}">${when(x.createdAt)}</a></td><td>${x.rcpt}</td><td>${x.attachments}</td><td>${x.readAt ? when(x.readAt) : 'new'}</td></tr>`,
      )}</tbody></table>`
}`,
    );
  });
  r.get('/api/me/replies', staff, async (req, res) => {
    res.json({ replies: await listReplies(store, { sender: req.staff!.email }) });
  });
  const ownReply = async (req: Request) => {
    const id = String(req.params.id);
    const [summary] = (await listReplies(store, { sender: req.staff!.email, limit: 1000 })).filter(
      (x) => x.id === id,
    );
    if (!summary) return null;
    return readReply(store, id, req.staff!.email);
  };
  r.get('/me/replies/:id', staff, async (req, res) => {
    const found = await ownReply(req);
    if (!found) {
      send(req, res, 'Not found', html`<h1>Not found</h1><p>No reply of yours has this id.</p>`, 404);
      return;
    }
    const { reply, content } = found;
    send(
      req,
      res,
      'Secure reply',
      html`<p><a href="/me/replies">← Secure replies</a></p>
<h1>${content.subject || 'Secure reply'}</h1>
<dl><dt>From</dt><dd>${reply.rcpt}</dd><dt>Received</dt><dd>${when(reply.createdAt)} UTC</dd></dl>
<pre class="message-text">${content.text}</pre>
${
  content.attachments.length
    ? html`<h2>Attachments</h2><ul>${content.attachments.map(
        (a, i) =>
          html`<li><a href="/me/replies/${reply.id}/a/${i}">${a.filename}</a> (${Math.ceil(a.content.length / 1024)} KB)</li>`,
      )}</ul>`
    : ''
}`,
    );
  });
  r.get('/me/replies/:id/a/:n', staff, async (req, res) => {
    const found = await ownReply(req);
    const a = found?.content.attachments[Number(req.params.n)];
    if (!found || !a) {
      res.status(404).type('text').send('Not found');
      return;
    }
    res.set('Content-Disposition', `attachment; filename="${a.filename.replace(/[^\w.\- ]/g, '_')}"`);
    res.set('X-Content-Type-Options', 'nosniff');
    res.type('application/octet-stream').send(a.content);
  });
  return r;
}
