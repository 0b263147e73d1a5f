// Sign-in for staff, admins and auditors: email + password (the accounts SMTP AUTH uses), TOTP that admins
// must enrol, sessions in the database (idle 15 min, absolute 8 h), CSRF tokens on every state change,
// lockout and rate limits, and no user enumeration. It never stores a session id, password or TOTP seed
// in clear, and logs ids and codes only.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import QRCode from 'qrcode';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import type { Store } from '../store/store.js';
import { authenticate, hashPassword, verifyPassword, type Role, type UserRow } from '../store/users.js';
import { applyUserKeyChange, ensureUserKey, prepareUserKeyChange } from '../store/user-keys.js';
import { html, labelTableCells, page, SafeHtml } from './html.js';
import { newTotpSecret, otpauthUri, verifyTotp, base32Encode } from './totp.js';

export const SESSION_IDLE_MS = 15 * 60 * 1000;
export const SESSION_ABSOLUTE_MS = 8 * 60 * 60 * 1000;
/** Failed passwords before an account is locked, and for how long. */
const MAX_FAILED_LOGINS = 5;
const LOCK_MS = 15 * 60 * 1000;
/** Sign-in attempts per client IP per window. */
const IP_LIMIT = 20;
const IP_WINDOW_MS = 15 * 60 * 1000;
const MAX_TOTP_FAILURES = 5;

export interface StaffUser {
  id: number;
  email: string;
  role: Role;
  csrf: string;
  sessionHash: string;
  /** Path of the request (no query): the top bar marks the section it belongs to. */
  path?: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    staff?: StaffUser;
  }
}

interface SessionRow {
  id_hash: string;
  user_id: number;
  stage: 'totp' | 'enrol' | 'active';
  csrf: string;
  pending_secret: string | null;
  created_at: number;
  last_seen_at: number;
  totp_failures?: number;
}

type FullUser = UserRow & {
  totp_secret: string | null;
  totp_last_step: number | null;
  failed_logins: number;
  locked_until: number | null;
};

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    const name = part.slice(0, eq).trim();
    if (!name || name in out) continue;
    try {
      out[name] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      // A malformed cookie value is ignored, not an error page.
    }
  }
  return out;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

/** Counts a hit against `key` in a fixed window; shared through the database by every node. */
export async function rateLimit(
  store: Store,
  key: string,
  limit: number,
  windowMs: number,
  now = Date.now(),
): Promise<{ allowed: boolean; retryAfterS: number }> {
  return store.write(async (trx) => {
    const current = trx('rate_limits').where({ key });
    // Several nodes (PostgreSQL): lock the row, so two nodes' hits do not both write count + 1.
    if (store.engine === 'postgres') void current.forUpdate();
    const row = (await current.first()) as { window_start: number; count: number } | undefined;
    if (!row || now - Number(row.window_start) >= windowMs) {
      await trx('rate_limits')
        .insert({ key, window_start: now, count: 1 })
        .onConflict('key')
        .merge({ window_start: now, count: 1 });
      return { allowed: true, retryAfterS: 0 };
    }
    const count = Number(row.count) + 1;
    await trx('rate_limits').where({ key }).update({ count });
    const retryAfterS = Math.ceil((Number(row.window_start) + windowMs - now) / 1000);
    return { allowed: count <= limit, retryAfterS };
  });
}

export function homeFor(role: Role): string {
  return role === 'staff' ? '/me' : role === 'auditor' ? '/admin/audit' : '/admin';
}

/** The sections of the top bar, in order, and who sees each. */
const SECTIONS: Array<[string, string, Role[]]> = [
  ['/admin', 'Dashboard', ['admin']],
  ['/admin/quarantine', 'Quarantine', ['admin']],
  ['/admin/rules', 'DLP rules', ['admin']],
  ['/admin/keys', 'Keys', ['admin']],
  ['/admin/pickups', 'Pickups', ['admin']],
  ['/admin/audit', 'Audit log', ['admin', 'auditor']],
  ['/admin/settings', 'Settings', ['admin']],
  ['/me', 'My messages', ['staff', 'admin']],
  ['/me/pickups', 'My pickups', ['staff']],
  ['/me/replies', 'Replies', ['staff']],
  ['/me/send', 'Send securely', ['staff', 'admin']],
];

/**
 * The section `path` belongs to: the longest section path it equals or lies under. The two home sections
 * (/admin, /me) count only for themselves, so /me/password does not light up "My messages".
 */
export function currentSection(path: string, hrefs: readonly string[]): string | undefined {
  const clean = path.replace(/\/+$/, '') || '/';
  return hrefs
    .filter((h) => clean === h || (h !== '/admin' && h !== '/me' && clean.startsWith(`${h}/`)))
    .sort((a, b) => b.length - a.length)[0];
}

/** Pages for signed-in people: a top bar with the sections they may use, who is signed in, and sign out. */
export function staffPage(title: string, user: StaffUser | undefined, body: SafeHtml): string {
  const links = user ? SECTIONS.filter(([, , roles]) => roles.includes(user.role)) : [];
  const current = user?.path
    ? currentSection(
        user.path,
        links.map(([href]) => href),
      )
    : undefined;
  const nav = user
    ? html`<nav class="staff-nav" aria-label="Sections"><ul>${links.map(([href, label]) =>
        href === current
          ? html`<li><a href="${href}" aria-current="page">${label}</a></li>`
          : html`<li><a href="${href}">${label}</a></li>`,
      )}</ul>
<form method="post" action="/logout" class="signout"><input type="hidden" name="_csrf" value="${user.csrf}"><a class="who" href="/me/passkeys" title="Sign-in and security: passkeys, password">${user.email}</a> <button type="submit" class="link">Sign out</button></form></nav>`
    : undefined;
  return page(title, new SafeHtml(labelTableCells(body.value)), nav);
}

export interface StaffAuth {
  router: express.Router;
  /** Loads the session (if any) into req.staff. */
  load: express.RequestHandler;
  /** Requires a fully signed-in user with one of `roles`: pages redirect to /login, /api answers 401. */
  require(roles: Role[]): express.RequestHandler;
  /** Requires the session's CSRF token on state-changing requests (form field _csrf or X-CSRF-Token). */
  csrf: express.RequestHandler;
  /** Whether `token` is the sign-in page's CSRF token (the cookie set with the form), for passkey sign-in. */
  loginCsrfOk(req: Request, token: string | undefined): boolean;
  /** Starts a fully signed-in session for `userId` (after a passkey): audited, a fresh session id. */
  signInVerified(res: Response, userId: number, ip: string, method: string): Promise<boolean>;
  /** Where to go after sign-in: `next` when it is a local path, else the role's home. */
  nextFor(next: unknown, role: Role): string;
}

export function createStaffAuth({
  config,
  store,
  log,
}: {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
}): StaffAuth {
  const secure = config.publicUrl.startsWith('https:');
  const cookieName = secure ? '__Host-phigw_staff' : 'phigw_staff';
  const preCsrfCookie = secure ? '__Host-phigw_login' : 'phigw_login';
  const issuer = config.practiceName;

  const setCookie = (res: Response, name: string, value: string, maxAgeMs?: number) => {
    res.cookie(name, value, {
      httpOnly: true,
      sameSite: 'strict',
      secure,
      path: '/',
      ...(maxAgeMs !== undefined ? { maxAge: maxAgeMs } : {}),
    });
  };

  async function newSession(
    res: Response,
    user: FullUser,
    stage: SessionRow['stage'],
    ip: string,
  ): Promise<void> {
    const token = randomBytes(32).toString('base64url');
    const now = Date.now();
    await store.write((trx) =>
      trx('web_sessions').insert({
        id_hash: sha256(token),
        user_id: user.id,
        stage,
        csrf: randomBytes(24).toString('base64url'),
        created_at: now,
        last_seen_at: now,
        ip,
      }),
    );
    setCookie(res, cookieName, token);
  }

  async function sessionOf(req: Request): Promise<{ session: SessionRow; user: FullUser } | null> {
    const token = parseCookies(req.headers.cookie)[cookieName];
    if (!token) return null;
    const idHash = sha256(token);
    const session = (await store.db('web_sessions').where({ id_hash: idHash }).first()) as
      SessionRow | undefined;
    if (!session) return null;
    const now = Date.now();
    const user = (await store.db('users').where({ id: session.user_id }).first()) as FullUser | undefined;
    if (
      !user ||
      user.disabled ||
      now - Number(session.last_seen_at) > SESSION_IDLE_MS ||
      now - Number(session.created_at) > SESSION_ABSOLUTE_MS
    ) {
      await store.write((trx) => trx('web_sessions').where({ id_hash: idHash }).delete());
      return null;
    }
    // Touch at most once a minute: the idle timeout needs no finer grain, and reads stay reads.
    if (now - Number(session.last_seen_at) > 60_000) {
      await store.write((trx) =>
        trx('web_sessions').where({ id_hash: idHash }).update({ last_seen_at: now }),
      );
    }
    return { session, user };
  }

  const load: express.RequestHandler = (req, _res, next) => {
    sessionOf(req).then(
      (found) => {
        if (found && found.session.stage === 'active') {
          req.staff = {
            id: found.user.id,
            email: found.user.email,
            role: found.user.role,
            csrf: found.session.csrf,
            sessionHash: found.session.id_hash,
            path: req.originalUrl.split('?')[0] ?? '',
          };
        }
        next();
      },
      (err: unknown) => next(err),
    );
  };

  const isApi = (req: Request) => req.originalUrl.startsWith('/api/');

  const require = (roles: Role[]): express.RequestHandler => {
    return (req, res, next) => {
      res.set('Cache-Control', 'no-store');
      const user = req.staff;
      if (!user) {
        if (isApi(req)) {
          res.status(401).json({ error: 'sign in required' });
          return;
        }
        res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
        return;
      }
      if (!roles.includes(user.role)) {
        if (isApi(req)) res.status(403).json({ error: 'not allowed for your role' });
        else
          res
            .status(403)
            .type('html')
            .send(
              staffPage(
                'Not allowed',
                user,
                html`<h1>Not allowed</h1><p>Your role (${user.role}) cannot open this page.</p>`,
              ),
            );
        return;
      }
      next();
    };
  };

  const csrf: express.RequestHandler = (req, res, next) => {
    if (['GET', 'HEAD', 'OPTIONS'].includes(req.method)) return next();
    const body = req.body as Record<string, unknown> | undefined;
    const given = (typeof body?._csrf === 'string' ? body._csrf : undefined) ?? req.get('x-csrf-token');
    if (!req.staff || !sameToken(given, req.staff.csrf)) {
      if (!req.staff && isApi(req)) {
        res.status(401).json({ error: 'sign in required' });
        return;
      }
      res
        .status(403)
        .type('text')
        .send('Forbidden: the form expired or did not come from this site. Reload the page and try again.');
      return;
    }
    next();
  };

  const router = express.Router();
  router.use(express.urlencoded({ extended: false, limit: '32kb' }));
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });

  function safeNext(next: unknown, role: Role): string {
    const n = typeof next === 'string' ? next : '';
    // Only local paths: an open redirect would let a phishing link borrow our sign-in page.
    return /^\/(?!\/)[\w\-/.?=&%]*$/.test(n) && !n.startsWith('/login') ? n : homeFor(role);
  }

  function loginForm(
    res: Response,
    status: number,
    opts: { error?: string; email?: string; next?: string } = {},
  ) {
    const token = randomBytes(24).toString('base64url');
    setCookie(res, preCsrfCookie, token, 60 * 60 * 1000);
    res
      .status(status)
      .type('html')
      .send(
        page(
          'Sign in',
          html`<section class="card narrow">
<h1>Sign in</h1>
${opts.error ? html`<p class="error" role="alert">${opts.error}</p>` : ''}
<form method="post" action="/login">
<input type="hidden" name="_csrf" value="${token}">
<input type="hidden" name="next" value="${opts.next ?? ''}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${opts.email ?? ''}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
<div class="passkey-login" data-passkey-login hidden>
<p class="or"><span>or</span></p>
<button type="button" class="secondary wide" data-passkey-signin>Sign in with a passkey</button>
<p class="error" role="alert" data-passkey-error hidden></p>
</div>
<p class="note">Use the account you send mail with. Administrators also need their authenticator app, or a passkey.</p>
</section>
<script src="/static/passkeys.js" defer></script>`,
        ),
      );
  }

  router.get('/login', (req, res) => {
    loginForm(res, 200, { next: typeof req.query.next === 'string' ? req.query.next : '' });
  });

  router.post('/login', async (req, res) => {
    const body = req.body as Record<string, string | undefined>;
    if (!sameToken(body._csrf, parseCookies(req.headers.cookie)[preCsrfCookie])) {
      res
        .status(403)
        .type('text')
        .send('Forbidden: the form expired. Reload the sign-in page and try again.');
      return;
    }
    const ip = clientIp(req);
    const limit = await rateLimit(store, `login-ip:${ip}`, IP_LIMIT, IP_WINDOW_MS);
    if (!limit.allowed) {
      res.set('Retry-After', String(limit.retryAfterS));
      loginForm(res, 429, {
        error: 'Too many sign-in attempts from this network. Wait a few minutes and try again.',
      });
      return;
    }
    const email = String(body.email ?? '')
      .trim()
      .toLowerCase();
    const password = String(body.password ?? '');
    const now = Date.now();
    const known = (await store.db('users').where({ email }).first()) as FullUser | undefined;
    const locked = !!known && Number(known.locked_until ?? 0) > now;
    // The password is checked even for a locked or unknown account: same time, same answer.
    const user = (await authenticate(store.db, email, password)) as FullUser | null;
    if (!user || locked) {
      if (known && !locked) {
        // Counted inside the write (read-modify-write in one transaction): concurrent failures all count.
        await store.write(async (trx) => {
          const query = trx('users').where({ id: known.id });
          // PostgreSQL: lock the row so two nodes cannot both count from the same value.
          const row = (await (store.engine === 'postgres' ? query.forUpdate() : query).first(
            'failed_logins',
          )) as {
            failed_logins: number;
          };
          const failures = Number(row.failed_logins) + 1;
          const lockNow = failures >= MAX_FAILED_LOGINS;
          await trx('users')
            .where({ id: known.id })
            .update({
              failed_logins: lockNow ? 0 : failures,
              locked_until: lockNow ? now + LOCK_MS : known.locked_until,
            });
          await appendAudit(trx, {
            type: lockNow ? 'auth.locked' : 'auth.login_failed',
            actor: known.email,
            detail: { ip, failures },
          });
        });
      } else {
        await store.write((trx) =>
          appendAudit(trx, { type: 'auth.login_failed', actor: null, detail: { ip, known: false, locked } }),
        );
      }
      log.info({ evt: 'LOGIN_FAILED', ip }, 'sign-in failed');
      loginForm(res, 401, {
        error:
          'That email and password did not work. After several failed attempts an account is locked for 15 minutes.',
        email,
        next: body.next ?? '',
      });
      return;
    }
    await store.write(async (trx) => {
      await trx('users').where({ id: user.id }).update({ failed_logins: 0, locked_until: null });
      await appendAudit(trx, { type: 'auth.password_ok', actor: user.email, detail: { ip } });
    });
    // Accounts from before password re-issue get their key pair now, while the password is in hand. A failure
    // here must not stop the sign-in: the next one tries again.
    if (user.role !== 'auditor')
      await ensureUserKey(store, user.id, password).catch((err: unknown) =>
        log.warn({ evt: 'USER_KEY_FAILED', user: user.id, err }, 'user key not created'),
      );
    const stage: SessionRow['stage'] = user.totp_secret ? 'totp' : user.role === 'admin' ? 'enrol' : 'active';
    await newSession(res, user, stage, ip);
    if (stage === 'active') {
      await store.write((trx) =>
        appendAudit(trx, { type: 'auth.signed_in', actor: user.email, detail: { ip, mfa: false } }),
      );
    }
    const next = safeNext(body.next, user.role);
    res.redirect(
      303,
      stage === 'totp'
        ? `/login/mfa?next=${encodeURIComponent(next)}`
        : stage === 'enrol'
          ? '/login/mfa/setup'
          : next,
    );
  });

  async function pendingSession(req: Request, res: Response, want: SessionRow['stage']) {
    const found = await sessionOf(req);
    if (!found || found.session.stage !== want) {
      res.redirect(303, '/login');
      return null;
    }
    return found;
  }

  router.get('/login/mfa', async (req, res) => {
    const found = await pendingSession(req, res, 'totp');
    if (!found) return;
    res
      .type('html')
      .send(mfaForm(found.session.csrf, typeof req.query.next === 'string' ? req.query.next : ''));
  });

  function mfaForm(csrfToken: string, next: string, error?: string): string {
    return page(
      'Two-step check',
      html`<section class="card narrow">
<h1>Enter your code</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/login/mfa">
<input type="hidden" name="_csrf" value="${csrfToken}">
<input type="hidden" name="next" value="${next}">
<label for="code">6-digit code from your authenticator app</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required>
<button type="submit">Continue</button>
</form>
</section>`,
    );
  }

  router.post('/login/mfa', async (req, res) => {
    const found = await pendingSession(req, res, 'totp');
    if (!found) return;
    const { session, user } = found;
    const body = req.body as Record<string, string | undefined>;
    if (!sameToken(body._csrf, session.csrf)) {
      res.status(403).type('text').send('Forbidden: the form expired. Sign in again.');
      return;
    }
    const secret = store.decryptValue(`totp:${user.id}`, user.totp_secret!);
    const step = verifyTotp(
      secret,
      String(body.code ?? ''),
      user.totp_last_step === null ? null : Number(user.totp_last_step),
    );
    const ip = clientIp(req);
    if (step === null) {
      const limit = await rateLimit(store, `mfa:${session.id_hash}`, MAX_TOTP_FAILURES, SESSION_IDLE_MS);
      await store.write(async (trx) => {
        await appendAudit(trx, { type: 'auth.mfa_failed', actor: user.email, detail: { ip } });
        if (!limit.allowed) await trx('web_sessions').where({ id_hash: session.id_hash }).delete();
      });
      if (!limit.allowed) {
        res.redirect(303, '/login');
        return;
      }
      res
        .status(401)
        .type('html')
        .send(
          mfaForm(
            session.csrf,
            body.next ?? '',
            'That code did not work. Codes change every 30 seconds; try the current one.',
          ),
        );
      return;
    }
    await store.write(async (trx) => {
      await trx('users').where({ id: user.id }).update({ totp_last_step: step });
      await trx('web_sessions').where({ id_hash: session.id_hash }).delete();
      await appendAudit(trx, { type: 'auth.signed_in', actor: user.email, detail: { ip, mfa: true } });
    });
    // A fresh session id once fully signed in (no fixation of the half-signed-in one).
    await newSession(res, user, 'active', ip);
    res.redirect(303, safeNext(body.next, user.role));
  });

  router.get('/login/mfa/setup', async (req, res) => {
    const found = await pendingSession(req, res, 'enrol');
    if (!found) return;
    const { session, user } = found;
    let secret: Buffer;
    if (session.pending_secret) {
      secret = store.decryptValue(`totp-pending:${session.id_hash}`, session.pending_secret);
    } else {
      secret = newTotpSecret();
      const sealed = store.encryptValue(`totp-pending:${session.id_hash}`, secret);
      await store.write((trx) =>
        trx('web_sessions').where({ id_hash: session.id_hash }).update({ pending_secret: sealed }),
      );
    }
    res.type('html').send(await enrolPage(session.csrf, user.email, secret));
  });

  async function enrolPage(
    csrfToken: string,
    email: string,
    secret: Buffer,
    error?: string,
  ): Promise<string> {
    const uri = otpauthUri(secret, email, issuer);
    // Inline SVG, not an <img>: the code never leaves this response and needs no image URL.
    const svg = await QRCode.toString(uri, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' });
    const grouped = base32Encode(secret)
      .replace(/(.{4})/g, '$1 ')
      .trim();
    return page(
      'Set up two-step sign-in',
      html`<section class="card narrow">
<h1>Set up two-step sign-in</h1>
<p>Administrators confirm each sign-in with a code from an authenticator app. Scan this code with the app (for example Google Authenticator, Microsoft Authenticator or 1Password). It is shown only now.</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<figure class="qr" role="img" aria-label="QR code for your authenticator app">${new SafeHtml(svg)}</figure>
<p>Or enter this key by hand: <code class="secret">${grouped}</code></p>
<form method="post" action="/login/mfa/setup">
<input type="hidden" name="_csrf" value="${csrfToken}">
<label for="code">Then enter the 6-digit code the app shows</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required>
<button type="submit">Confirm</button>
</form>
</section>`,
    );
  }

  router.post('/login/mfa/setup', async (req, res) => {
    const found = await pendingSession(req, res, 'enrol');
    if (!found) return;
    const { session, user } = found;
    const body = req.body as Record<string, string | undefined>;
    if (!sameToken(body._csrf, session.csrf) || !session.pending_secret) {
      res.status(403).type('text').send('Forbidden: the form expired. Sign in again.');
      return;
    }
    const secret = store.decryptValue(`totp-pending:${session.id_hash}`, session.pending_secret);
    const step = verifyTotp(secret, String(body.code ?? ''), null);
    if (step === null) {
      res
        .status(401)
        .type('html')
        .send(
          await enrolPage(
            session.csrf,
            user.email,
            secret,
            'That code did not match. Check the time on your phone and try the current code.',
          ),
        );
      return;
    }
    const ip = clientIp(req);
    await store.write(async (trx) => {
      await trx('users')
        .where({ id: user.id })
        .update({
          totp_secret: store.encryptValue(`totp:${user.id}`, secret),
          totp_enrolled_at: Date.now(),
          totp_last_step: step,
        });
      await trx('web_sessions').where({ id_hash: session.id_hash }).delete();
      await appendAudit(trx, { type: 'auth.mfa_enrolled', actor: user.email, detail: { ip } });
      await appendAudit(trx, { type: 'auth.signed_in', actor: user.email, detail: { ip, mfa: true } });
    });
    await newSession(res, user, 'active', ip);
    res.redirect(303, homeFor(user.role));
  });

  router.post('/logout', load, csrf, async (req, res) => {
    const user = req.staff!;
    await store.write(async (trx) => {
      await trx('web_sessions').where({ id_hash: user.sessionHash }).delete();
      await appendAudit(trx, { type: 'auth.signed_out', actor: user.email, detail: {} });
    });
    res.clearCookie(cookieName, { path: '/' });
    res.redirect(303, '/login');
  });

  const loginCsrfOk = (req: Request, token: string | undefined) =>
    sameToken(token, parseCookies(req.headers.cookie)[preCsrfCookie]);

  const signInVerified = async (res: Response, userId: number, ip: string, method: string) => {
    const user = (await store.db('users').where({ id: userId }).first()) as FullUser | undefined;
    if (!user || user.disabled) return false;
    await store.write(async (trx) => {
      await trx('users').where({ id: user.id }).update({ failed_logins: 0, locked_until: null });
      await appendAudit(trx, {
        type: 'auth.signed_in',
        actor: user.email,
        detail: { ip, mfa: true, method },
      });
    });
    await newSession(res, user, 'active', ip);
    return true;
  };

  return { router, load, require, csrf, loginCsrfOk, signInVerified, nextFor: safeNext };
}

/** Changes a password, re-wraps the user's re-issue key, and signs them out everywhere (every session is deleted). */
export async function changePassword(
  store: Store,
  userId: number,
  current: string,
  next: string,
): Promise<'ok' | 'wrong-password' | 'too-short'> {
  const user = (await store.db('users').where({ id: userId }).first()) as UserRow | undefined;
  if (!user || !(await verifyPassword(current, user.password_hash))) return 'wrong-password';
  if (next.length < 12) return 'too-short';
  const hash = await hashPassword(next);
  // The private key for password re-issue is re-wrapped under the new password (auditors have none).
  const keyChange = user.role === 'auditor' ? null : await prepareUserKeyChange(store, userId, current, next);
  await store.write(async (trx) => {
    await trx('users').where({ id: userId }).update({ password_hash: hash, password_changed_at: Date.now() });
    if (keyChange) await applyUserKeyChange(trx, userId, keyChange);
    await trx('web_sessions').where({ user_id: userId }).delete();
    await appendAudit(trx, { type: 'auth.password_changed', actor: user.email, detail: {} });
  });
  return 'ok';
}

export function requireJson(req: Request, res: Response, next: NextFunction): void {
  if (!req.is('application/json')) {
    res.status(415).json({ error: 'send JSON (Content-Type: application/json)' });
    return;
  }
  next();
}
