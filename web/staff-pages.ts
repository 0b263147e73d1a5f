// Pages and JSON for signed-in people: the admin dashboard, quarantine, the audit log (search, CSV export,
// chain verification) and staff's own secure messages. Every page has a JSON twin under /api. Nothing here
// shows message content: lists carry ids, addresses, states and reasons.
import express, { type Request, type Response } from 'express';
import { simpleParser } from 'mailparser';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { appendAudit, verifyAudit, type AuditRow } from '../store/audit.js';
import type { Store } from '../store/store.js';
import { html, type SafeHtml } from './html.js';
import { changePassword, staffPage, type StaffAuth } from './staff-auth.js';

const DAY = 24 * 60 * 60 * 1000;

function when(ms: number | string | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  return new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 16);
}

function num(v: unknown): number {
  return Number(v ?? 0);
}

/** What happened to a message, as a staff member or admin would say it. */
export function outcomeOf(row: { state: string; verdict: string | null }, kinds: string[]): string {
  if (row.state === 'blocked') return 'blocked';
  if (row.state === 'held') return 'quarantined';
  if (kinds.includes('pgp')) return kinds.includes('pickup-notice') ? 'pgp+pickup' : 'pgp';
  if (kinds.includes('pickup-notice')) return 'pickup';
  if (['queued', 'processing', 'deferred'].includes(row.state)) return 'in progress';
  return 'clean';
}

interface Dashboard {
  days: Array<{ day: string; counts: Record<string, number> }>;
  topRules: Array<{ rule: string; count: number }>;
  queue: { messages: number; envelopes: number; held: number; oldestDeferredAt: number | null };
  pickups: { opened: number; notOpened: number };
}

async function dashboard(store: Store, now = Date.now()): Promise<Dashboard> {
  const since = now - 7 * DAY;
  const rows = (await store
    .db('messages')
    .where('created_at', '>=', since)
    .select('id', 'state', 'verdict', 'created_at')) as Array<{
    id: string;
    state: string;
    verdict: string | null;
    created_at: number;
  }>;
  const kindsById = new Map<string, string[]>();
  const envRows = (await store
    .db('envelopes')
    .where('created_at', '>=', since)
    .select('message_id', 'kind')) as Array<{ message_id: string; kind: string }>;
  for (const e of envRows) kindsById.set(e.message_id, [...(kindsById.get(e.message_id) ?? []), e.kind]);
  const days = new Map<string, Record<string, number>>();
  for (let i = 6; i >= 0; i--) days.set(new Date(now - i * DAY).toISOString().slice(0, 10), {});
  const rules = new Map<string, number>();
  for (const r of rows) {
    const day = new Date(Number(r.created_at)).toISOString().slice(0, 10);
    const counts = days.get(day);
    const outcome = outcomeOf(r, kindsById.get(r.id) ?? []);
    if (counts) counts[outcome] = (counts[outcome] ?? 0) + 1;
    if (r.verdict) {
      try {
        for (const rule of (JSON.parse(r.verdict) as { rules?: string[] }).rules ?? [])
          rules.set(rule, (rules.get(rule) ?? 0) + 1);
      } catch {
        // A verdict that does not parse counts for nothing.
      }
    }
  }
  const [m] = (await store
    .db('messages')
    .whereIn('state', ['queued', 'processing', 'deferred'])
    .count({ n: '*' })) as Array<{ n: unknown }>;
  const [e] = (await store
    .db('envelopes')
    .whereIn('state', ['queued', 'sending', 'deferred', 'waiting'])
    .count({ n: '*' })) as Array<{ n: unknown }>;
  const [h] = (await store.db('messages').where('state', 'held').count({ n: '*' })) as Array<{ n: unknown }>;
  const [he] = (await store.db('envelopes').where('state', 'held').count({ n: '*' })) as Array<{
    n: unknown;
  }>;
  const oldest = (await store.db('envelopes').where('state', 'deferred').min({ t: 'created_at' })) as Array<{
    t: unknown;
  }>;
  const pickups = await store.db.schema.hasTable('pickups').then(async (has) => {
    if (!has) return { opened: 0, notOpened: 0 };
    const list = (await store.db('pickups').where('created_at', '>=', since).select('opened_at')) as Array<{
      opened_at: unknown;
    }>;
    const opened = list.filter((p) => p.opened_at !== null && p.opened_at !== undefined).length;
    return { opened, notOpened: list.length - opened };
  });
  return {
    days: [...days].map(([day, counts]) => ({ day, counts })),
    topRules: [...rules]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([rule, count]) => ({ rule, count })),
    queue: {
      messages: num(m?.n),
      envelopes: num(e?.n),
      held: num(h?.n) + num(he?.n),
      oldestDeferredAt: oldest[0]?.t === null || oldest[0]?.t === undefined ? null : Number(oldest[0].t),
    },
    pickups,
  };
}

const OUTCOMES = ['clean', 'pgp', 'pickup', 'pgp+pickup', 'quarantined', 'blocked', 'in progress'];

/** A stacked bar per day as inline SVG: no script, no inline style (the CSP forbids both), colours from app.css. */
function chartSvg(d: Dashboard, max: number): SafeHtml {
  const rowH = 28;
  const left = 56;
  const width = 560;
  let y = 0;
  const rows = d.days.map((day) => {
    let x = left;
    const total = Object.values(day.counts).reduce((a, b) => a + b, 0);
    const segs = OUTCOMES.filter((o) => day.counts[o]).map((o) => {
      const w = Math.max(2, Math.round((width * (day.counts[o] ?? 0)) / max));
      const seg = html`<rect class="seg-${o.replace(/[^a-z]/g, '')}" x="${x}" y="${y + 4}" width="${w}" height="${rowH - 8}"><title>${o}: ${day.counts[o] ?? 0}</title></rect>`;
      x += w;
      return seg;
    });
    const row = html`<text x="0" y="${y + rowH / 2 + 5}" class="axis">${day.day.slice(5)}</text>${segs}<text x="${x + 6}" y="${y + rowH / 2 + 5}" class="axis">${total}</text>`;
    y += rowH;
    return row;
  });
  return html`<svg class="chart" viewBox="0 0 ${left + width + 60} ${y}" role="img" aria-label="Messages per day for the last 7 days by outcome; the table below has the figures">${rows}</svg>`;
}

function dashboardHtml(d: Dashboard): SafeHtml {
  const max = Math.max(1, ...d.days.map((x) => Object.values(x.counts).reduce((a, b) => a + b, 0)));
  return html`<h1>Dashboard</h1>
<section class="cards">
<div class="card stat"><span class="label">Waiting in the queue</span><span class="value">${d.queue.messages + d.queue.envelopes}</span></div>
<div class="card stat"><span class="label">In quarantine</span><span class="value"><a href="/admin/quarantine">${d.queue.held}</a></span></div>
<div class="card stat"><span class="label">Oldest deferred</span><span class="value small">${d.queue.oldestDeferredAt ? when(d.queue.oldestDeferredAt) : 'none'}</span></div>
<div class="card stat"><span class="label">Pickups opened (7 days)</span><span class="value">${d.pickups.opened} <small>of ${d.pickups.opened + d.pickups.notOpened}</small></span></div>
</section>
<h2>Messages per day, by outcome</h2>
${chartSvg(d, max)}
<table class="matrix">
<caption class="visually-hidden">Messages per day by outcome</caption>
<thead><tr><th scope="col">Day</th>${OUTCOMES.map((o) => html`<th scope="col"><span class="dot seg-${o.replace(/[^a-z]/g, '')}"></span>${o}</th>`)}</tr></thead>
<tbody>${d.days.map((day) => html`<tr><th scope="row">${day.day}</th>${OUTCOMES.map((o) => html`<td>${day.counts[o] ?? 0}</td>`)}</tr>`)}</tbody>
</table>
<h2>Rules fired most (7 days)</h2>
${
  d.topRules.length === 0
    ? html`<p class="note">No rule fired in the last 7 days.</p>`
    : html`<table><thead><tr><th scope="col">Rule</th><th scope="col">Messages</th></tr></thead><tbody>${d.topRules.map(
        (r) => html`<tr><td><code>${r.rule}</code></td><td>${r.count}</td></tr>`,
      )}</tbody></table>`
}`;
}

interface HeldItem {
  kind: 'message' | 'recipient';
  messageId: string;
  envelopeId?: number;
  from: string;
  to: string[];
  reason: string;
  at: number;
}

async function quarantine(store: Store): Promise<HeldItem[]> {
  const messages = (await store
    .db('messages')
    .where('state', 'held')
    .orderBy('updated_at', 'desc')
    .limit(500)
    .select('id', 'mail_from', 'rcpt_to', 'reason', 'updated_at')) as Array<{
    id: string;
    mail_from: string;
    rcpt_to: string;
    reason: string | null;
    updated_at: number;
  }>;
  const envelopes = (await store
    .db('envelopes')
    .where('state', 'held')
    .orderBy('updated_at', 'desc')
    .limit(500)
    .select('id', 'message_id', 'mail_from', 'rcpt', 'hold_reason', 'last_response', 'updated_at')) as Array<{
    id: number;
    message_id: string;
    mail_from: string;
    rcpt: string;
    hold_reason: string | null;
    last_response: string | null;
    updated_at: number;
  }>;
  return [
    ...messages.map((m) => ({
      kind: 'message' as const,
      messageId: m.id,
      from: m.mail_from,
      to: JSON.parse(m.rcpt_to) as string[],
      reason: m.reason ?? '',
      at: Number(m.updated_at),
    })),
    ...envelopes.map((e) => ({
      kind: 'recipient' as const,
      messageId: e.message_id,
      envelopeId: e.id,
      from: e.mail_from,
      to: [e.rcpt],
      reason: e.hold_reason ?? e.last_response ?? '',
      at: Number(e.updated_at),
    })),
  ].sort((a, b) => b.at - a.at);
}

interface AuditFilter {
  type?: string;
  actor?: string;
  messageId?: string;
  from?: number;
  to?: number;
  limit: number;
  beforeSeq?: number;
}

function auditFilter(q: Request['query']): AuditFilter {
  const s = (k: string) => (typeof q[k] === 'string' && q[k] !== '' ? (q[k] as string) : undefined);
  const date = (k: string, endOfDay: boolean) => {
    const v = s(k);
    if (!v || !/^\d{4}-\d{2}-\d{2}$/.test(v)) return undefined;
    return Date.parse(`${v}T00:00:00Z`) + (endOfDay ? DAY : 0);
  };
  const limit = Math.min(1000, Math.max(1, Number(s('limit') ?? 100) || 100));
  const before = Number(s('before'));
  return {
    type: s('type'),
    actor: s('actor'),
    messageId: s('message'),
    from: date('from', false),
    to: date('to', true),
    limit,
    beforeSeq: Number.isInteger(before) && before > 0 ? before : undefined,
  };
}

function auditQuery(store: Store, f: AuditFilter) {
  let q = store.db('audit_events').orderBy('seq', 'desc');
  if (f.type) q = q.where('type', 'like', `${f.type.replace(/[%_]/g, '')}%`);
  if (f.actor) q = q.where('actor', f.actor.toLowerCase());
  if (f.messageId) q = q.where('message_id', f.messageId);
  if (f.from !== undefined) q = q.where('at', '>=', f.from);
  if (f.to !== undefined) q = q.where('at', '<', f.to);
  if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
  return q;
}

function csvCell(v: string | number | null | undefined): string {
  const s = v === null || v === undefined ? '' : String(v);
  // Quote always; a leading = + - @ is neutralised so a spreadsheet never runs it as a formula.
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return `"${safe.replace(/"/g, '""')}"`;
}

export function createStaffPages(opts: {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  auth: StaffAuth;
}): express.Router {
  const { store, auth, log } = opts;
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '64kb' }));
  r.use(express.json({ limit: '256kb' }));
  r.use(auth.load);

  const admin = auth.require(['admin']);
  const auditors = auth.require(['admin', 'auditor']);
  const staff = auth.require(['staff', 'admin']);

  const send = (req: Request, res: Response, title: string, body: SafeHtml) =>
    res.type('html').send(staffPage(title, req.staff, body));

  r.get('/admin', admin, async (req, res) =>
    send(req, res, 'Dashboard', dashboardHtml(await dashboard(store))),
  );
  r.get('/api/admin/dashboard', admin, async (_req, res) => {
    res.json(await dashboard(store));
  });

  r.get('/admin/quarantine', admin, async (req, res) => {
    const items = await quarantine(store);
    send(
      req,
      res,
      'Quarantine',
      html`<h1>Quarantine</h1>
<p class="note">Messages and recipients held for review, newest first. The reason says which rule or policy held them.</p>
${
  items.length === 0
    ? html`<p class="empty">Nothing is held.</p>`
    : html`<table><thead><tr><th scope="col">Held since</th><th scope="col">What</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Reason</th></tr></thead><tbody>
${items.map(
  (i) =>
    html`<tr><td>${when(i.at)}</td><td>${i.kind === 'message' ? html`whole message <a href="/admin/quarantine/${i.messageId}"><code>${i.messageId}</code></a>` : html`one recipient <code>${i.messageId}</code>`}</td><td>${i.from || '<>'}</td><td>${i.to.join(', ')}</td><td><code>${i.reason}</code></td></tr>`,
)}</tbody></table>`
}`,
    );
  });
  r.get('/api/admin/quarantine', admin, async (_req, res) => {
    res.json({ items: await quarantine(store) });
  });

  // A held message, opened by an admin: audited, never cached. Its decrypted content is shown, nothing else.
  const heldMessage = async (id: string) =>
    (await store.db('messages').where({ id, state: 'held' }).first()) as
      | {
          id: string;
          mail_from: string;
          rcpt_to: string;
          reason: string | null;
          verdict: string | null;
          created_at: number;
        }
      | undefined;
  r.get('/admin/quarantine/:id', admin, async (req, res) => {
    const row = await heldMessage(String(req.params.id));
    if (!row) {
      res.status(404);
      send(
        req,
        res,
        'Not found',
        html`<h1>Not found</h1><p>No held message with this id. <a href="/admin/quarantine">Back to quarantine</a></p>`,
      );
      return;
    }
    const parsed = await simpleParser(await store.unseal('spool', row.id));
    await store.write((trx) =>
      appendAudit(trx, { type: 'quarantine.opened', messageId: row.id, actor: req.staff!.email, detail: {} }),
    );
    let verdict: { rules?: string[]; types?: string[]; parts?: string[] } = {};
    try {
      verdict = JSON.parse(row.verdict ?? '{}') as typeof verdict;
    } catch {
      verdict = {};
    }
    const csrf = req.staff!.csrf;
    send(
      req,
      res,
      'Held message',
      html`<p><a href="/admin/quarantine">← Quarantine</a></p>
<h1>Held message <code>${row.id}</code></h1>
<dl class="facts">
<dt>From</dt><dd>${row.mail_from || '<>'}</dd>
<dt>To</dt><dd>${(JSON.parse(row.rcpt_to) as string[]).join(', ')}</dd>
<dt>Received</dt><dd>${when(row.created_at)} UTC</dd>
<dt>Reason</dt><dd><code>${row.reason ?? ''}</code></dd>
<dt>Rules</dt><dd>${(verdict.rules ?? []).join(', ') || 'none'}</dd>
<dt>Found</dt><dd>${(verdict.types ?? []).join(', ') || 'none'} ${verdict.parts?.length ? html`<span class="note">in ${verdict.parts.join(', ')}</span>` : ''}</dd>
</dl>
<section class="card">
<h2>${parsed.subject ?? '(no subject)'}</h2>
<pre class="message-text">${parsed.text ?? ''}</pre>
${parsed.attachments.length ? html`<p>Attachments: ${parsed.attachments.map((a) => a.filename ?? 'unnamed').join(', ')}</p>` : ''}
</section>
<section class="actions">
<form method="post" action="/admin/quarantine/${row.id}/release" class="card">
<input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="mode" value="protect">
<h2>Release protected</h2><p>Send it as PGP/MIME or a secure pickup, whatever the rule said.</p>
<button type="submit">Release protected</button>
</form>
<form method="post" action="/admin/quarantine/${row.id}/release" class="card">
<input type="hidden" name="_csrf" value="${csrf}"><input type="hidden" name="mode" value="clear">
<h2>Release in clear</h2><p>Sends it unprotected. Only when you are sure it holds no PHI, or the recipient is allowed to get it in clear.</p>
<label for="reason">Why (required, kept in the audit log)</label><textarea id="reason" name="reason" rows="2" required minlength="10"></textarea>
<button type="submit" class="danger">Release in clear</button>
</form>
<form method="post" action="/admin/quarantine/${row.id}/delete" class="card">
<input type="hidden" name="_csrf" value="${csrf}">
<h2>Delete</h2><p>The message is destroyed and not sent. The sender is told.</p>
<button type="submit" class="danger">Delete</button>
</form>
</section>`,
    );
  });

  const decide = async (
    req: Request,
    id: string,
    mode: 'protect' | 'clear' | 'delete',
    reason: string,
  ): Promise<{ status: number; error?: string }> => {
    if (mode === 'clear' && reason.trim().length < 10)
      return { status: 422, error: 'Releasing in clear needs a written reason (at least 10 characters).' };
    const now = Date.now();
    const changed = await store.write(async (trx) => {
      const n = await trx('messages').where({ id, state: 'held' }).update({
        state: 'queued',
        release: mode,
        released_by: req.staff!.email,
        next_attempt_at: now,
        attempts: 0,
        updated_at: now,
      });
      if (n > 0)
        await appendAudit(trx, {
          type:
            mode === 'delete'
              ? 'quarantine.delete'
              : mode === 'clear'
                ? 'quarantine.release_clear'
                : 'quarantine.release_protected',
          messageId: id,
          actor: req.staff!.email,
          detail: mode === 'clear' ? { reason: reason.trim().slice(0, 500) } : {},
        });
      return n;
    });
    if (!changed) return { status: 404, error: 'No held message with this id.' };
    log.info({ evt: 'QUARANTINE_DECISION', qid: id, mode }, 'quarantine decision');
    return { status: 200 };
  };
  r.post('/admin/quarantine/:id/release', admin, auth.csrf, async (req, res) => {
    const body = req.body as Record<string, string | undefined>;
    const mode = body.mode === 'clear' ? 'clear' : 'protect';
    const out = await decide(req, String(req.params.id), mode, String(body.reason ?? ''));
    if (out.error) {
      res.status(out.status);
      send(
        req,
        res,
        'Quarantine',
        html`<h1>Not released</h1><p class="error" role="alert">${out.error}</p><p><a href="/admin/quarantine/${String(req.params.id)}">Back</a></p>`,
      );
      return;
    }
    res.redirect(303, '/admin/quarantine');
  });
  r.post('/admin/quarantine/:id/delete', admin, auth.csrf, async (req, res) => {
    await decide(req, String(req.params.id), 'delete', '');
    res.redirect(303, '/admin/quarantine');
  });
  r.post('/api/admin/quarantine/:id/:action', admin, auth.csrf, async (req, res) => {
    const action = String(req.params.action);
    const body = req.body as Record<string, unknown>;
    const mode =
      action === 'delete'
        ? 'delete'
        : action === 'release-clear'
          ? 'clear'
          : action === 'release-protected'
            ? 'protect'
            : null;
    if (!mode) {
      res.status(404).json({ error: 'actions: release-protected, release-clear, delete' });
      return;
    }
    const out = await decide(
      req,
      String(req.params.id),
      mode,
      typeof body.reason === 'string' ? body.reason : '',
    );
    res.status(out.status).json(out.error ? { error: out.error } : { ok: true });
  });

  r.get('/admin/audit', auditors, async (req, res) => {
    const f = auditFilter(req.query);
    const rows = (await auditQuery(store, f).limit(f.limit)) as AuditRow[];
    const qs = new URLSearchParams(
      Object.entries(req.query).filter(
        (e): e is [string, string] => typeof e[1] === 'string' && e[0] !== 'before',
      ),
    );
    const last = rows[rows.length - 1];
    send(
      req,
      res,
      'Audit log',
      html`<h1>Audit log</h1>
<section class="card verify">
<form method="post" action="/admin/audit/verify">
<input type="hidden" name="_csrf" value="${req.staff!.csrf}">
<p>The log is append-only and hash-chained: any edited, inserted or removed event breaks the chain.</p>
<button type="submit">Verify the whole log</button>
</form>
</section>
<form method="get" action="/admin/audit" class="filters">
<div class="field"><label for="f-type">Event type starts with</label><input id="f-type" name="type" value="${f.type ?? ''}"></div>
<div class="field"><label for="f-actor">Actor</label><input id="f-actor" name="actor" value="${f.actor ?? ''}"></div>
<div class="field"><label for="f-message">Message id</label><input id="f-message" name="message" value="${f.messageId ?? ''}"></div>
<div class="field"><label for="f-from">From</label><input id="f-from" name="from" type="date" value="${typeof req.query.from === 'string' ? req.query.from : ''}"></div>
<div class="field"><label for="f-to">To</label><input id="f-to" name="to" type="date" value="${typeof req.query.to === 'string' ? req.query.to : ''}"></div>
<div class="field filter-actions"><button type="submit">Search</button> <a href="/admin/audit.csv?${qs.toString()}" class="button-link secondary">Export CSV</a></div>
</form>
<div class="audit-log"><table><thead><tr><th scope="col">#</th><th scope="col">Time (UTC)</th><th scope="col">Event</th><th scope="col">Actor</th><th scope="col">Message</th><th scope="col">Detail</th></tr></thead><tbody>
${rows.map(
  (e) =>
    html`<tr><td>${e.seq}</td><td>${when(e.at)}</td><td><code>${e.type}</code></td><td>${e.actor ?? ''}</td><td>${e.message_id ?? ''}</td><td><code class="detail">${e.detail}</code></td></tr>`,
)}
</tbody></table></div>
${rows.length === f.limit && last ? html`<p><a href="/admin/audit?${qs.toString()}&amp;before=${last.seq}">Older events</a></p>` : ''}`,
    );
  });

  r.get('/api/admin/audit', auditors, async (req, res) => {
    const f = auditFilter(req.query);
    res.json({ events: await auditQuery(store, f).limit(f.limit) });
  });

  r.get('/admin/audit.csv', auditors, async (req, res) => {
    const f = { ...auditFilter(req.query), limit: 1_000_000 };
    const rows = (await auditQuery(store, f).limit(f.limit)) as AuditRow[];
    await store.write((trx) =>
      appendAudit(trx, { type: 'audit.exported', actor: req.staff!.email, detail: { events: rows.length } }),
    );
    res.set('Content-Disposition', 'attachment; filename="phi-gateway-audit.csv"');
    res.type('text/csv');
    const header = ['seq', 'at', 'time_utc', 'type', 'actor', 'message_id', 'detail', 'prev_hash', 'hash'];
    res.send(
      [
        header.join(','),
        ...rows.map((e) =>
          [
            e.seq,
            e.at,
            new Date(Number(e.at)).toISOString(),
            e.type,
            e.actor,
            e.message_id,
            e.detail,
            e.prev_hash,
            e.hash,
          ]
            .map(csvCell)
            .join(','),
        ),
      ].join('\r\n') + '\r\n',
    );
  });

  const verify = async (req: Request) => {
    const result = await verifyAudit(store.db);
    await store.write((trx) =>
      appendAudit(trx, {
        type: 'audit.verified',
        actor: req.staff!.email,
        detail: { ok: result.ok, events: result.events, brokenAt: result.brokenAt ?? null },
      }),
    );
    log.info({ evt: 'AUDIT_VERIFIED', ok: result.ok, events: result.events }, 'audit chain verified');
    return result;
  };
  r.post('/admin/audit/verify', auditors, auth.csrf, async (req, res) => {
    const result = await verify(req);
    send(
      req,
      res,
      'Audit log check',
      result.ok
        ? html`<h1>Audit log check</h1><p class="ok" role="status"><strong>The audit log is intact.</strong> All ${result.events} events were checked and the hash chain is unbroken.</p><p><a href="/admin/audit">Back to the audit log</a></p>`
        : html`<h1>Audit log check</h1><p class="error" role="alert"><strong>The audit log has been tampered with.</strong> The chain breaks at event ${result.brokenAt}: ${result.problem}. ${result.events} events before it are intact.</p><p>Keep a copy of the database as it is now and tell your security officer.</p><p><a href="/admin/audit">Back to the audit log</a></p>`,
    );
  });
  r.post('/api/admin/audit/verify', auditors, auth.csrf, async (req, res) => {
    res.json(await verify(req));
  });

  const myMessages = async (email: string) => {
    const rows = (await store
      .db('messages')
      .where('mail_from', email)
      .orderBy('created_at', 'desc')
      .limit(200)
      .select('id', 'created_at', 'state', 'verdict', 'rcpt_to')) as Array<{
      id: string;
      created_at: number;
      state: string;
      verdict: string | null;
      rcpt_to: string;
    }>;
    const envs = rows.length
      ? ((await store
          .db('envelopes')
          .whereIn(
            'message_id',
            rows.map((r) => r.id),
          )
          .select('message_id', 'rcpt', 'kind', 'state')) as Array<{
          message_id: string;
          rcpt: string;
          kind: string;
          state: string;
        }>)
      : [];
    return rows.map((m) => {
      const mine = envs.filter((e) => e.message_id === m.id);
      const recipients = (JSON.parse(m.rcpt_to) as string[]).map((rcpt) => {
        const forRcpt = mine.filter((e) => e.rcpt.toLowerCase() === rcpt.toLowerCase());
        const main = forRcpt.find((e) => e.kind !== 'pickup-password') ?? forRcpt[0];
        const how = !main
          ? m.state === 'held'
            ? 'held'
            : m.state === 'blocked'
              ? 'blocked'
              : 'pending'
          : main.kind === 'relay'
            ? 'clear'
            : main.kind === 'pickup-notice'
              ? 'pickup'
              : main.kind;
        return { rcpt, how, state: main?.state ?? m.state };
      });
      return {
        id: m.id,
        sentAt: Number(m.created_at),
        outcome: outcomeOf(
          m,
          mine.map((e) => e.kind),
        ),
        recipients,
      };
    });
  };

  r.get('/me', staff, async (req, res) => {
    const list = await myMessages(req.staff!.email);
    send(
      req,
      res,
      'My secure messages',
      html`<h1>My messages</h1>
<p class="note">Mail you sent through the gateway in the last while, and how it left for each recipient.</p>
${
  list.length === 0
    ? html`<p class="empty">You have not sent anything through the gateway yet.</p>`
    : html`<table><thead><tr><th scope="col">Sent (UTC)</th><th scope="col">Reference</th><th scope="col">Recipients</th><th scope="col">Outcome</th></tr></thead><tbody>
${list.map(
  (m) =>
    html`<tr><td>${when(m.sentAt)}</td><td><code>${m.id}</code></td><td><ul class="plain">${m.recipients.map((x) => html`<li>${x.rcpt} <span class="kind">${x.how}</span> <span class="note">${x.state}</span></li>`)}</ul></td><td>${m.outcome}</td></tr>`,
)}</tbody></table>`
}
<p><a href="/me/password">Change my password</a></p>`,
    );
  });
  r.get('/api/me/messages', staff, async (req, res) => {
    res.json({ messages: await myMessages(req.staff!.email) });
  });

  const passwordForm = (req: Request, error?: string, done?: boolean) =>
    html`<h1>Change password</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}${done ? html`<p class="ok" role="status">Password changed.</p>` : ''}
<form method="post" action="/me/password" class="card narrow">
<input type="hidden" name="_csrf" value="${req.staff!.csrf}">
<label for="current">Current password</label><input id="current" name="current" type="password" autocomplete="current-password" required>
<label for="next">New password (at least 12 characters)</label><input id="next" name="next" type="password" autocomplete="new-password" minlength="12" required>
<button type="submit">Change password</button>
<p class="note">You will be signed out everywhere, including here, and sign in again with the new password.</p>
</form>`;
  r.get('/me/password', auth.require(['staff', 'admin', 'auditor']), (req, res) =>
    send(req, res, 'Change password', passwordForm(req)),
  );
  r.post('/me/password', auth.require(['staff', 'admin', 'auditor']), auth.csrf, async (req, res) => {
    const body = req.body as Record<string, string | undefined>;
    const result = await changePassword(
      store,
      req.staff!.id,
      String(body.current ?? ''),
      String(body.next ?? ''),
    );
    if (result !== 'ok') {
      res.status(400);
      send(
        req,
        res,
        'Change password',
        passwordForm(
          req,
          result === 'too-short'
            ? 'The new password must have at least 12 characters.'
            : 'The current password is not right.',
        ),
      );
      return;
    }
    res.redirect(303, '/login');
  });

  return r;
}
