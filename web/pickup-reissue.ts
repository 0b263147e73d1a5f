// "Resend password" for a pickup: the sender (/me) or an admin (/admin) confirms with their own sign-in password,
// a NEW password is made from the escrow sealed to their key, and it leaves by the pickup's password channel.
// It never shows, logs, audits or stores the new password; a staff user can never re-issue another's pickup.
import type express from 'express';
import type { Request, Response } from 'express';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { insertGeneratedEnvelope } from '../gateway/delivery.js';
import { newQueueId } from '../gateway/ids.js';
import {
  buildPasswordForSender,
  buildPasswordMail,
  smsPayload,
  type NoticeContext,
} from '../gateway/notices.js';
import { appendAudit } from '../store/audit.js';
import {
  checkReissue,
  reissuePassword,
  type PickupRow,
  type ReissueDelivery,
  type ReissueRefusal,
} from '../store/pickups.js';
import { uiSettings } from '../store/settings.js';
import type { Store } from '../store/store.js';
import { verifyPassword, type UserRow } from '../store/users.js';
import { html, type SafeHtml } from './html.js';
import { rateLimit, staffPage, type StaffAuth } from './staff-auth.js';

/** Re-issues per pickup per hour (all callers together), and confirmations per user per hour. */
export const REISSUE_PER_PICKUP = 5;
export const REISSUE_PER_USER = 10;
const HOUR = 60 * 60 * 1000;

type Outcome =
  | { ok: true; pickup: PickupRow; route: string }
  | {
      ok: false;
      status: 401 | 403 | 404 | 409 | 410 | 429;
      code: ReissueRefusal | 'not_yours' | 'rate_limited' | 'reauth_failed';
      message: string;
      retryAfter?: number;
      pickup?: PickupRow;
    };

const MESSAGES: Record<Exclude<ReissueRefusal, 'wrong_password'>, string> = {
  unknown: 'There is no pickup with this id.',
  gone: 'This pickup was revoked or has expired; its password cannot be re-sent. Send the message again if it is still needed.',
  no_escrow:
    'This pickup was sent before password re-issue was available, so its password cannot be re-sent. Revoke it and send the message again.',
  key_reset:
    'This pickup was not sealed to your current key: your key was created or reset after it was sent (for example when your password was reset by an administrator), so you cannot re-issue its password. Another administrator may, or revoke it and send the message again.',
};

type Route = ResolvedConfig['pickup']['passwordDelivery'];

const WHERE: Record<Route, string> = {
  email: 'to the recipient in a separate email',
  sender: 'to the sender by email, to pass on by phone',
  sms: 'to the recipient by text message',
};

export function addReissueRoutes(
  r: express.Router,
  opts: { config: ResolvedConfig; store: Store; log: Logger; auth: StaffAuth; hostname: string },
): void {
  const { config, store, log, auth, hostname } = opts;
  // The practice name and the password channel an admin set on the Settings page, like new pickups.
  const settings = uiSettings(store, config);
  const currentRoute = async (): Promise<Route> => (await settings.effectiveConfig()).pickup.passwordDelivery;

  /** Seals the new password's mail (or SMS body) as a blob; the envelope is inserted in the re-issue's write. */
  const deliver = async (pickup: PickupRow, password: string): Promise<ReissueDelivery> => {
    const current = await settings.effectiveConfig();
    const route = current.pickup.passwordDelivery;
    const ctx: NoticeContext = {
      practice: current.practiceName,
      hostname,
      sender: { name: '', address: pickup.sender },
      notifyFrom: config.pickup.notifyFrom,
    };
    const p = { rcpt: pickup.rcpt, password, reference: pickup.reference, reissued: true };
    const [body, kind, rcpt, mailFrom] =
      route === 'email'
        ? [await buildPasswordMail(ctx, p), 'pickup-password', pickup.rcpt, pickup.sender]
        : route === 'sender'
          ? [
              await buildPasswordForSender(ctx, { ...p, expiresAt: pickup.expires_at }),
              'pickup-password',
              pickup.sender,
              '',
            ]
          : [smsPayload(ctx, p), 'pickup-password-sms', pickup.rcpt, pickup.sender];
    const blobId = newQueueId();
    await store.seal('blobs', blobId, body);
    const message = (await store.db('messages').where({ id: pickup.message_id }).first('id')) as
      { id: string } | undefined;
    return {
      route,
      enqueue: (trx, now) =>
        insertGeneratedEnvelope(trx, {
          messageId: message ? pickup.message_id : null,
          kind,
          mailFrom,
          rcpt,
          blobId,
          now,
        }),
      discard: () => store.removeSealed('blobs', blobId),
    };
  };

  async function resend(req: Request, own: boolean, signInPassword: string): Promise<Outcome> {
    const me = req.staff!;
    const id = String(req.params.id);
    const check = await checkReissue(store.db, id, me.id);
    if (!check.ok && check.code === 'unknown')
      return { ok: false, status: 404, code: 'unknown', message: MESSAGES.unknown };
    const pickup = check.ok ? check.pickup : check.pickup!;
    if (own && pickup.sender.toLowerCase() !== me.email)
      return { ok: false, status: 403, code: 'not_yours', message: 'This pickup was not sent by you.' };
    if (!check.ok)
      return {
        ok: false,
        status: check.code === 'gone' ? 410 : 409,
        code: check.code,
        message: MESSAGES[check.code],
        pickup,
      };
    for (const [key, limit] of [
      [`pickup-reissue:${id}`, REISSUE_PER_PICKUP],
      [`pickup-reissue-user:${me.id}`, REISSUE_PER_USER],
    ] as const) {
      const hit = await rateLimit(store, key, limit, HOUR);
      if (!hit.allowed)
        return {
          ok: false,
          status: 429,
          code: 'rate_limited',
          message: 'The password was re-sent too often in the last hour. Try again later.',
          retryAfter: hit.retryAfterS,
          pickup,
        };
    }
    const user = (await store.db('users').where({ id: me.id }).first()) as UserRow | undefined;
    const reauth = !!user && (await verifyPassword(signInPassword, user.password_hash));
    const result = reauth
      ? await reissuePassword(store, {
          pickupId: id,
          userId: me.id,
          signInPassword,
          actor: me.email,
          deliver,
        })
      : ({ ok: false, code: 'wrong_password' } as const);
    if (result.ok) {
      log.info({ evt: 'PICKUP_PASSWORD_REISSUED', qid: pickup.message_id, pickup: id }, 'password re-issued');
      return { ok: true, pickup, route: result.route };
    }
    // The password was right for the account but does not open its key (it was changed without re-wrapping):
    // that is a lost key, not a typing error.
    const code = result.code === 'wrong_password' && reauth ? 'key_reset' : result.code;
    if (code === 'wrong_password') {
      await store.write((trx) =>
        appendAudit(trx, {
          type: 'pickup.password_reissue_failed',
          messageId: pickup.message_id,
          actor: me.email,
          detail: { pickup: id, reason: 'reauth' },
        }),
      );
      return {
        ok: false,
        status: 401,
        code: 'reauth_failed',
        message: 'Your password was not right. Nothing was changed.',
        pickup,
      };
    }
    return {
      ok: false,
      status: code === 'gone' ? 410 : code === 'unknown' ? 404 : 409,
      code,
      message: MESSAGES[code],
      pickup,
    };
  }

  const pageFor = (req: Request, res: Response, base: string, status: number, body: SafeHtml) =>
    res
      .status(status)
      .type('html')
      .send(
        staffPage(
          'Resend password',
          req.staff,
          html`<p><a href="${base}">← ${base === '/me/pickups' ? 'My pickups' : 'Pickups'}</a></p>${body}`,
        ),
      );

  const confirmForm = (req: Request, base: string, pickup: PickupRow, route: Route, error?: string) =>
    html`<h1>Resend the password</h1>
<p>For the secure pickup to <strong>${pickup.rcpt}</strong> (reference <code>${pickup.reference}</code>).</p>
<p>A new password is made and sent ${WHERE[route]}. The old password stops working, anyone who has the message open must enter the new one, and any lock on the pickup is lifted.</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="${base}/${pickup.id}/resend" class="card narrow">
<input type="hidden" name="_csrf" value="${req.staff!.csrf}">
<label for="confirm-password">Confirm with your own sign-in password</label>
<input id="confirm-password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Resend password</button>
</form>`;

  for (const [base, roles, own] of [
    ['/me/pickups', ['staff', 'admin'], true],
    ['/admin/pickups', ['admin'], false],
  ] as const) {
    const allowed = auth.require([...roles]);
    r.get(`${base}/:id/resend`, allowed, async (req, res) => {
      const check = await checkReissue(store.db, String(req.params.id), req.staff!.id);
      const pickup = check.ok ? check.pickup : check.pickup;
      if (!pickup || (own && pickup.sender.toLowerCase() !== req.staff!.email)) {
        pageFor(req, res, base, 404, html`<h1>Not found</h1><p>No pickup of yours has this id.</p>`);
        return;
      }
      if (!check.ok) {
        pageFor(
          req,
          res,
          base,
          check.code === 'gone' ? 410 : 409,
          html`<h1>The password cannot be re-sent</h1><p class="error" role="alert">${MESSAGES[check.code]}</p>`,
        );
        return;
      }
      pageFor(req, res, base, 200, confirmForm(req, base, pickup, await currentRoute()));
    });
    r.post(`${base}/:id/resend`, allowed, auth.csrf, async (req, res) => {
      const body = req.body as Record<string, unknown>;
      const out = await resend(req, own, typeof body.password === 'string' ? body.password : '');
      if (out.ok) {
        pageFor(
          req,
          res,
          base,
          200,
          html`<h1>Password re-sent</h1><p class="ok" role="status">A new password for the pickup to ${out.pickup.rcpt} (reference <code>${out.pickup.reference}</code>) is on its way ${WHERE[out.route as Route] ?? 'by its usual channel'}. The old one no longer works.</p>`,
        );
        return;
      }
      if (out.retryAfter) res.set('Retry-After', String(out.retryAfter));
      if (out.code === 'reauth_failed' && out.pickup) {
        pageFor(
          req,
          res,
          base,
          out.status,
          confirmForm(req, base, out.pickup, await currentRoute(), out.message),
        );
        return;
      }
      pageFor(
        req,
        res,
        base,
        out.status,
        html`<h1>The password was not re-sent</h1><p class="error" role="alert">${out.message}</p>`,
      );
    });
    r.post(`/api${base}/:id/resend-password`, allowed, auth.csrf, async (req, res) => {
      const body = req.body as Record<string, unknown> | undefined;
      const password = typeof body?.password === 'string' ? body.password : '';
      const out = await resend(req, own, password);
      if (out.ok) {
        res.json({
          pickup: out.pickup.id,
          reference: out.pickup.reference,
          rcpt: out.pickup.rcpt,
          route: out.route,
        });
        return;
      }
      if (out.retryAfter) res.set('Retry-After', String(out.retryAfter));
      res.status(out.status).json({ error: out.message, code: out.code });
    });
  }
}
