// Passkeys (WebAuthn) for staff and admins: add and remove them under /me/passkeys, and sign in with one on
// /login. Verification is @simplewebauthn/server's; we keep challenges single-use in the database and never
// log credential ids, keys or challenges.
//
// Why a passkey with user verification counts as both factors for an admin: the private key lives only on
// the authenticator (something you have), and user verification means the authenticator itself checked a
// PIN or biometric before signing (something you know or are). The signature also binds our origin, so it
// resists phishing better than a password plus TOTP. A passkey without UV is refused for sign-in.
import { createHash, randomBytes } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import {
  addPasskey,
  findPasskey,
  listPasskeys,
  putChallenge,
  removePasskey,
  takeChallenge,
  touchPasskey,
  type PasskeyRow,
} from '../store/passkeys.js';
import type { Store } from '../store/store.js';
import type { Role } from '../store/users.js';
import { html, type SafeHtml } from './html.js';
import { parseCookies, rateLimit, staffPage, type StaffAuth } from './staff-auth.js';

const CHALLENGE_MS = 5 * 60 * 1000;
const LOGIN_IP_LIMIT = 30;
const LOGIN_IP_WINDOW_MS = 15 * 60 * 1000;
const MAX_PASSKEYS = 10;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function when(ms: number | null): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 16) : 'never';
}

/** Relying party from the public URL: the host is the rpID, the origin is what the browser reports. */
export function relyingParty(config: ResolvedConfig): { rpID: string; origin: string; rpName: string } {
  const url = new URL(config.publicUrl);
  return { rpID: url.hostname, origin: url.origin, rpName: config.practiceName };
}

export function createPasskeyPages(opts: {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  auth: StaffAuth;
}): express.Router {
  const { config, store, log, auth } = opts;
  const rp = relyingParty(config);
  const secure = config.publicUrl.startsWith('https:');
  const challengeCookie = secure ? '__Host-phigw_webauthn' : 'phigw_webauthn';
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '8kb' }));
  r.use(express.json({ limit: '64kb' }));
  r.use(auth.load);
  const signedIn = auth.require(['staff', 'admin', 'auditor']);
  const ip = (req: Request) => req.ip ?? req.socket.remoteAddress ?? 'unknown';

  // ---- Managing one's passkeys ----
  const listPage = (req: Request, res: Response, keys: PasskeyRow[], notice?: SafeHtml, status = 200) =>
    res
      .status(status)
      .type('html')
      .send(
        staffPage(
          'Passkeys',
          req.staff,
          html`<h1>Sign-in and security</h1>
${notice ?? ''}
<section class="card">
<h2>Passkeys</h2>
<p class="note">A passkey signs you in with your device's fingerprint, face or PIN instead of a password${req.staff!.role === 'admin' ? ' and authenticator code' : ''}. It only works on this site, so it cannot be phished.</p>
${
  keys.length === 0
    ? html`<p class="empty">You have no passkeys yet.</p>`
    : html`<table><thead><tr><th scope="col">Name</th><th scope="col">Added (UTC)</th><th scope="col">Last used (UTC)</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>${keys.map(
        (k) =>
          html`<tr><td>${k.name}</td><td>${when(k.createdAt)}</td><td>${when(k.lastUsedAt)}</td><td><form method="post" action="/me/passkeys/${k.id}/remove"><input type="hidden" name="_csrf" value="${req.staff!.csrf}"><button type="submit" class="link" aria-label="Remove passkey ${k.name}">Remove</button></form></td></tr>`,
      )}</tbody></table>`
}
<div data-passkey-register hidden>
<label for="passkey-name">Name for a new passkey</label>
<input id="passkey-name" name="name" maxlength="60" placeholder="e.g. Work laptop" autocomplete="off">
<button type="button" data-passkey-add data-csrf="${req.staff!.csrf}">Add a passkey</button>
<p class="error" role="alert" data-passkey-error hidden></p>
</div>
<p class="note" data-passkey-unsupported>Adding a passkey needs a browser with passkey support and JavaScript.</p>
</section>
<section class="card">
<h2>Password</h2>
<p><a href="/me/password">Change my password</a></p>
</section>
<script src="/static/passkeys.js" defer></script>`,
        ),
      );

  r.get('/me/passkeys', signedIn, async (req, res) => {
    listPage(
      req,
      res,
      await listPasskeys(store.db, req.staff!.id),
      req.query.added === '1'
        ? html`<p class="ok" role="status">Passkey added. You can sign in with it next time.</p>`
        : undefined,
    );
  });
  r.get('/api/me/passkeys', signedIn, async (req, res) => {
    const keys = await listPasskeys(store.db, req.staff!.id);
    res.json({
      passkeys: keys.map((k) => ({
        id: k.id,
        name: k.name,
        createdAt: k.createdAt,
        lastUsedAt: k.lastUsedAt,
      })),
    });
  });

  const remove = async (req: Request, id: number) => {
    const user = req.staff!;
    return store.write(async (trx) => {
      const done = await removePasskey(trx, user.id, id);
      if (done)
        await appendAudit(trx, { type: 'auth.passkey_removed', actor: user.email, detail: { passkey: id } });
      return done;
    });
  };
  r.post('/me/passkeys/:id/remove', signedIn, auth.csrf, async (req, res) => {
    const done = await remove(req, Number(req.params.id));
    listPage(
      req,
      res,
      await listPasskeys(store.db, req.staff!.id),
      done
        ? html`<p class="ok" role="status">Passkey removed. Also delete it from your device or password manager.</p>`
        : html`<p class="error" role="alert">No passkey of yours has this id.</p>`,
      done ? 200 : 404,
    );
  });
  r.delete('/api/me/passkeys/:id', signedIn, auth.csrf, async (req, res) => {
    res.status((await remove(req, Number(req.params.id))) ? 204 : 404).end();
  });

  // Registration: options bound to this session, then the authenticator's answer.
  r.post('/api/me/passkeys/options', signedIn, auth.csrf, async (req, res) => {
    const user = req.staff!;
    const existing = await listPasskeys(store.db, user.id);
    if (existing.length >= MAX_PASSKEYS) {
      res.status(409).json({ error: `at most ${MAX_PASSKEYS} passkeys per account; remove one first` });
      return;
    }
    const options = await generateRegistrationOptions({
      rpName: rp.rpName,
      rpID: rp.rpID,
      userName: user.email,
      userID: new Uint8Array(Buffer.from(`u${user.id}`)),
      attestationType: 'none',
      excludeCredentials: existing.map((k) => ({
        id: k.credentialId,
        transports: k.transports as AuthenticatorTransportFuture[],
      })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    });
    await putChallenge(store, {
      idHash: sha256(`register:${user.sessionHash}`),
      purpose: 'register',
      userId: user.id,
      challenge: options.challenge,
      ttlMs: CHALLENGE_MS,
    });
    res.json(options);
  });

  r.post('/api/me/passkeys', signedIn, auth.csrf, async (req, res) => {
    const user = req.staff!;
    const body = req.body as { response?: RegistrationResponseJSON; name?: unknown };
    const pending = await takeChallenge(store, sha256(`register:${user.sessionHash}`), 'register');
    if (!pending || pending.userId !== user.id || !body.response || typeof body.response !== 'object') {
      res.status(400).json({ error: 'no passkey registration in progress; start again' });
      return;
    }
    let verified;
    try {
      verified = await verifyRegistrationResponse({
        response: body.response,
        expectedChallenge: pending.challenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.rpID,
        requireUserVerification: true,
      });
    } catch (err) {
      log.info({ evt: 'PASSKEY_REGISTER_REFUSED', err: (err as Error).name }, 'passkey registration refused');
      res.status(400).json({ error: 'the passkey could not be verified' });
      return;
    }
    if (!verified.verified) {
      res.status(400).json({ error: 'the passkey could not be verified' });
      return;
    }
    const { credential } = verified.registrationInfo;
    const name =
      (typeof body.name === 'string' ? body.name.trim().slice(0, 60) : '') ||
      `Passkey added ${new Date().toISOString().slice(0, 10)}`;
    try {
      const id = await store.write(async (trx) => {
        const newId = await addPasskey(trx, {
          userId: user.id,
          credentialId: credential.id,
          publicKey: credential.publicKey,
          counter: credential.counter,
          transports: credential.transports ?? [],
          name,
        });
        await appendAudit(trx, { type: 'auth.passkey_added', actor: user.email, detail: { passkey: newId } });
        return newId;
      });
      log.info({ evt: 'PASSKEY_ADDED', user: user.id, passkey: id }, 'passkey added');
      res.status(201).json({ id, name });
    } catch {
      // The unique credential id: the same authenticator registered twice.
      res.status(409).json({ error: 'this passkey is already registered' });
    }
  });

  // ---- Sign-in with a passkey (discoverable credential; the authenticator says who) ----
  const setChallengeCookie = (res: Response, value: string) =>
    res.cookie(challengeCookie, value, {
      httpOnly: true,
      sameSite: 'strict',
      secure,
      path: '/login',
      maxAge: CHALLENGE_MS,
    });

  r.post('/login/passkey/options', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    if (!auth.loginCsrfOk(req, req.get('x-csrf-token'))) {
      res.status(403).json({ error: 'the sign-in page expired; reload it' });
      return;
    }
    const limit = await rateLimit(store, `passkey-ip:${ip(req)}`, LOGIN_IP_LIMIT, LOGIN_IP_WINDOW_MS);
    if (!limit.allowed) {
      res.set('Retry-After', String(limit.retryAfterS));
      res.status(429).json({ error: 'too many sign-in attempts; wait a few minutes' });
      return;
    }
    const options = await generateAuthenticationOptions({ rpID: rp.rpID, userVerification: 'required' });
    const token = randomBytes(24).toString('base64url');
    await putChallenge(store, {
      idHash: sha256(`login:${token}`),
      purpose: 'login',
      userId: null,
      challenge: options.challenge,
      ttlMs: CHALLENGE_MS,
    });
    setChallengeCookie(res, token);
    res.json(options);
  });

  r.post('/login/passkey', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    if (!auth.loginCsrfOk(req, req.get('x-csrf-token'))) {
      res.status(403).json({ error: 'the sign-in page expired; reload it' });
      return;
    }
    const token = parseCookies(req.headers.cookie)[challengeCookie];
    res.clearCookie(challengeCookie, { path: '/login' });
    const pending = token ? await takeChallenge(store, sha256(`login:${token}`), 'login') : null;
    const body = req.body as { response?: AuthenticationResponseJSON; next?: unknown };
    const refuse = async (reason: string) => {
      await store.write((trx) =>
        appendAudit(trx, { type: 'auth.passkey_failed', actor: null, detail: { ip: ip(req), reason } }),
      );
      log.info({ evt: 'PASSKEY_LOGIN_FAILED', reason }, 'passkey sign-in refused');
      res.status(401).json({ error: 'That passkey did not work. Try again, or sign in with your password.' });
    };
    if (!pending) {
      await refuse('no-challenge');
      return;
    }
    const response = body.response;
    if (!response || typeof response !== 'object' || typeof response.id !== 'string') {
      await refuse('malformed');
      return;
    }
    const key = await findPasskey(store.db, response.id);
    if (!key) {
      await refuse('unknown-credential');
      return;
    }
    let result;
    try {
      result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: pending.challenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.rpID,
        credential: {
          id: key.credentialId,
          publicKey: new Uint8Array(key.publicKey),
          counter: key.counter,
          transports: key.transports as AuthenticatorTransportFuture[],
        },
        requireUserVerification: true,
      });
    } catch {
      await refuse('verify-failed');
      return;
    }
    if (!result.verified || !result.authenticationInfo.userVerified) {
      await refuse('not-verified');
      return;
    }
    await store.write((trx) => touchPasskey(trx, key.id, result.authenticationInfo.newCounter));
    if (!(await auth.signInVerified(res, key.userId, ip(req), 'passkey'))) {
      await refuse('account-disabled');
      return;
    }
    const user = (await store.db('users').where({ id: key.userId }).first('role')) as { role: Role };
    log.info({ evt: 'PASSKEY_LOGIN', user: key.userId, passkey: key.id }, 'signed in with a passkey');
    res.json({ redirect: auth.nextFor(body.next, user.role) });
  });

  return r;
}
