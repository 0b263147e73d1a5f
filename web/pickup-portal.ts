// The pickup portal: the recipient's pages under /p/<token> and the JSON API /api/pickups/<token>/open.
// Opening a link never unlocks anything; no page here runs script, and mail HTML only ever renders sandboxed.
//
// Sessions and CSRF
// - A correct password starts a session (store/pickup-sessions.ts): cookie `phigw_pickup`, HttpOnly,
//   SameSite=Strict, Secure when the public URL or the request is HTTPS, Path=/p/<token> (so each pickup
//   has its own cookie and it is sent only to that pickup's pages, attachments and reply form). The cookie
//   carries the session id and the key that decrypts the data key sealed in the `pickup_sessions` row.
// - Forms carry a double-submit CSRF token: the password page sets `phigw_pickup_csrf` (HttpOnly,
//   SameSite=Strict, same Path) and puts the same value in a hidden field; a POST whose field does not match
//   the cookie gets 403. SameSite=Strict alone would already keep cross-site posts cookie-less.
// - The JSON API takes only `Content-Type: application/json` (anything else: 415). A cross-site page cannot
//   send that type without a CORS preflight, which this app never answers, so no form on another site can
//   reach it; it needs no CSRF token. It sets the same session cookie so the attachment `url`s work.
//
// Mail HTML is served from /p/<token>/html with its own CSP (no script, inline style, images only from
// data: and this origin — cid images are rewritten to attachment URLs; ?remote=1 adds https: images) and
// shown in <iframe sandbox="allow-same-origin">: no allow-scripts, forms, popups or top navigation.
// allow-same-origin (without scripts) lets the frame's own requests for cid images carry the SameSite
// cookie; the document's CSP also sandboxes it when opened directly.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ResolvedConfig } from '../config/load.js';
import { errorCode } from '../config/errors.js';
import type { Logger } from '../config/log.js';
import { createReply } from '../store/pickup-replies.js';
import { createPickupSession, endPickupSession, resumePickupSession } from '../store/pickup-sessions.js';
import {
  findPickupByToken,
  isLive,
  markFetched,
  openPickup,
  openPickupAttachment,
  readPickupOutline,
  recordDownload,
  type OpenFailure,
  type PickupOutline,
  type PickupRow,
} from '../store/pickups.js';
import { uiSettings } from '../store/settings.js';
import type { Store } from '../store/store.js';
import { LOGO_PATH } from './settings-logo.js';
import { html, type SafeHtml } from './html.js';
import { MultipartError, multipartBoundary, parseMultipart } from './multipart.js';

export interface PickupPortalOptions {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
}

export const SESSION_COOKIE = 'phigw_pickup';
export const CSRF_COOKIE = 'phigw_pickup_csrf';
/** Largest secure reply accepted (text and attachments, as posted). */
export const REPLY_MAX_BYTES = 25 * 1024 * 1024;
const REPLY_MAX_FILES = 10;
const TOKEN_RE = /^[A-Za-z0-9_-]{16,64}$/;

const PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; form-action 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; object-src 'none'";
const MAIL_CSP = (remote: boolean) =>
  `default-src 'none'; style-src 'unsafe-inline'; img-src data: 'self'${remote ? ' https:' : ''}; ` +
  "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox allow-same-origin";
const FILE_CSP = "default-src 'none'; sandbox";
/** Raster images may be shown inline (cid images); anything else is only ever downloaded. */
const INLINE_IMAGE = /^image\/(png|jpeg|gif|webp)$/i;

// ---------------------------------------------------------------------------------------------------
// Small helpers

function cookies(req: Request): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

function clientIp(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.ceil(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function formatDate(ms: number | string): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  return d.toUTCString().replace(/:\d\d GMT$/, ' UTC');
}

/** A file name safe for Content-Disposition and for a disk: no paths, controls, quotes or leading dots. */
export function safeFilename(name: string): string {
  const cleaned = name
    .replace(/\p{Cc}+/gu, '_')
    .replace(/[\u2028\u2029\u202a-\u202e\u2066-\u2069"\\/:*?<>|]+/g, '_')
    .replace(/^[.\s]+/, '')
    .trim()
    .slice(0, 150);
  return cleaned || 'attachment';
}

function contentDisposition(kind: 'attachment' | 'inline', name: string): string {
  const safe = safeFilename(name);
  const ascii = safe.replace(/[^\x20-\x7e]/g, '_');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(safe)}`;
}

function safeContentType(type: string): string {
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i.test(type)
    ? type.toLowerCase()
    : 'application/octet-stream';
}

// ---------------------------------------------------------------------------------------------------
// Pages

/** Who the pages speak for: the practice's name and, when an admin uploaded one, its logo (web/admin-settings.ts). */
export interface Brand {
  name: string;
  logoUrl: string | null;
}

function layout(title: string, practice: Brand, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · ${practice.name}</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body class="pickup">
<header class="top">${practice.logoUrl ? html`<img class="brand-logo" src="${practice.logoUrl}" alt="${practice.name}">` : html`<span class="brand">${practice.name}</span>`} <span class="note">Secure message</span></header>
<main id="main">
${body}
</main>
</body>
</html>
`.value;
}

interface PasswordPageState {
  token: string;
  csrf: string;
  practice: Brand;
  pickup?: PickupRow;
  error?: SafeHtml;
}

function passwordPage(s: PasswordPageState): string {
  const describedBy = s.error ? 'pw-hint pw-error' : 'pw-hint';
  return layout(
    'Enter your password',
    s.practice,
    html`<h1>You have a secure message</h1>
<p>${s.practice.name} sent you a message that is protected. To read it, enter the password you received separately (in another email, a text message or by phone).</p>
${s.error ? html`<div class="alert" role="alert" id="pw-error">${s.error}</div>` : ''}
<form method="post" action="/p/${s.token}" class="card">
<input type="hidden" name="csrf" value="${s.csrf}">
<label for="password">Password</label>
<p class="hint" id="pw-hint">It looks like <span class="mono">abcd-efgh-jkmn-pqrs-tuvw</span>. Capital letters, spaces and dashes do not matter.</p>
<input id="password" name="password" type="password" autocomplete="off" inputmode="text" autocapitalize="none" spellcheck="false" required aria-describedby="${describedBy}"${s.error ? html` aria-invalid="true" autofocus` : ''}>
<button type="submit">Open message</button>
</form>
${s.pickup ? html`<p class="note">Available until ${formatDate(s.pickup.expires_at)}. Reference for questions: <span class="mono">${s.pickup.reference}</span>.</p>` : ''}`,
  );
}

function statusPage(practice: Brand, title: string, body: SafeHtml): string {
  return layout(
    title,
    practice,
    html`<h1>${title}</h1>
${body}`,
  );
}

function failurePage(practice: Brand, f: OpenFailure): string {
  const ref = f.pickup ? html` Mention the reference <span class="mono">${f.pickup.reference}</span>.` : '';
  switch (f.code) {
    case 'PICKUP_UNKNOWN':
      return statusPage(
        practice,
        'Link not found',
        html`<p>This link is not known. Check that you copied the whole link from the email.</p>`,
      );
    case 'PICKUP_GONE':
      return statusPage(
        practice,
        'This message is no longer available',
        html`<p>The message has expired or the sender withdrew it. If you still need it, please contact the sender.${ref}</p>`,
      );
    default:
      return '';
  }
}

function lockedMessage(f: OpenFailure): SafeHtml {
  const ref = f.pickup ? html` Mention the reference <span class="mono">${f.pickup.reference}</span>.` : '';
  if (f.hard)
    return html`Too many wrong passwords were entered, so this message is locked. Please contact the sender to unlock it.${ref}`;
  const minutes = Math.max(1, Math.ceil((f.retryAfter ?? 60) / 60));
  return html`Too many wrong passwords were entered. For your safety, please wait ${minutes} ${minutes === 1 ? 'minute' : 'minutes'} and try again.`;
}

function messagePage(opts: {
  token: string;
  csrf: string;
  practice: Brand;
  pickup: PickupRow;
  content: PickupOutline;
  remote: boolean;
  replied: boolean;
  replyDelivery: 'sealed' | 'direct';
}): string {
  const { token, content, pickup } = opts;
  const files = content.attachments
    .map((a, i) => ({ a, i }))
    .filter(({ a }) => !(a.inline && a.cid && content.html?.includes(`cid:${a.cid}`)));
  return layout(
    content.subject || 'Secure message',
    opts.practice,
    html`${opts.replied ? html`<div class="notice" role="status">Your reply was sent securely.</div>` : ''}
<h1>${content.subject || '(no subject)'}</h1>
<dl class="meta">
<dt>From</dt><dd>${content.from || pickup.sender}</dd>
<dt>To</dt><dd>${content.to.length ? content.to.join(', ') : pickup.rcpt}</dd>
${content.cc.length ? html`<dt>Copy to</dt><dd>${content.cc.join(', ')}</dd>` : ''}
<dt>Date</dt><dd>${formatDate(content.date)}</dd>
<dt>Available until</dt><dd>${formatDate(pickup.expires_at)}</dd>
</dl>
<section aria-labelledby="msg-h">
<h2 id="msg-h">Message</h2>
${
  content.html !== null
    ? html`<iframe class="mail-html" sandbox="allow-same-origin" src="/p/${token}/html${opts.remote ? '?remote=1' : ''}" title="Message (formatted)"></iframe>
<p class="note">${opts.remote ? html`Remote images are shown. <a href="/p/${token}">Hide remote images</a>` : html`Remote images are blocked for your privacy. <a href="/p/${token}?remote=1">Show remote images</a>`}</p>
<details><summary>Plain text version</summary><div class="mail-text">${content.text}</div></details>`
    : html`<div class="mail-text">${content.text}</div>`
}
</section>
${
  files.length
    ? html`<section aria-labelledby="att-h">
<h2 id="att-h">Attachments</h2>
<ul class="files">
${files.map(
  ({
    a,
    i,
  }) => html`<li><a href="/p/${token}/a/${i}" download="${safeFilename(a.filename)}">${safeFilename(a.filename)}</a> <span class="note">${formatSize(a.size)}</span></li>
`,
)}
</ul>
</section>`
    : ''
}
<section aria-labelledby="reply-h">
<h2 id="reply-h">Reply securely</h2>
<form method="post" action="/p/${token}/reply" enctype="multipart/form-data" class="card">
<input type="hidden" name="csrf" value="${opts.csrf}">
<label for="reply-text">Your reply</label>
<textarea id="reply-text" name="text" rows="6" required></textarea>
<label for="reply-files">Attach files (optional)</label>
<input id="reply-files" name="files" type="file" multiple>
<p class="hint">${opts.replyDelivery === 'sealed' ? 'Your reply stays protected: the sender reads it after signing in.' : 'Your reply goes to the sender over the practice\u2019s own mail system.'}</p>
<button type="submit">Send reply</button>
</form>
</section>
<form method="post" action="/p/${token}/close" class="close">
<input type="hidden" name="csrf" value="${opts.csrf}">
<button type="submit" class="secondary">Close this message</button>
</form>
<p class="note">Reference: <span class="mono">${pickup.reference}</span></p>`,
  );
}

/** Mail HTML for the sandboxed frame: cid images point at attachment URLs; refresh and base tags go. */
export function prepareMailHtml(token: string, content: PickupOutline): string {
  const cids = new Map<string, number>();
  content.attachments.forEach((a, i) => {
    if (a.cid) cids.set(a.cid.replace(/^<|>$/g, '').toLowerCase(), i);
  });
  return (content.html ?? '')
    .replace(/<meta\b[^>]*http-equiv[^>]*>/gi, '')
    .replace(/<base\b[^>]*>/gi, '')
    .replace(/cid:([^"'\s)>]+)/gi, (_whole, cid: string) => {
      const i = cids.get(decodeURIComponent(cid).toLowerCase());
      return i === undefined ? 'about:invalid' : `/p/${token}/a/${i}?inline=1`;
    });
}

// ---------------------------------------------------------------------------------------------------
// The router

export function createPickupPortal({ config, store, log }: PickupPortalOptions): express.Router {
  const router = express.Router();
  const limits = config.pickup;
  const settings = uiSettings(store, config);
  /** The practice as the pages show it now (settings refreshed by the middleware below). */
  const brand = (): Brand => {
    const now = settings.snapshot();
    return { name: now.practiceName, logoUrl: now.logo ? `${LOGO_PATH}?v=${now.logo.etag}` : null };
  };
  const publicHttps = config.publicUrl.startsWith('https://');

  const cookieAttrs = (req: Request, token: string) =>
    `Path=/p/${token}; HttpOnly; SameSite=Strict${publicHttps || req.secure ? '; Secure' : ''}`;

  const setSessionCookie = (req: Request, res: Response, token: string, value: string) =>
    res.append('Set-Cookie', `${SESSION_COOKIE}=${value}; ${cookieAttrs(req, token)}`);

  /** The CSRF token of this browser for this pickup, setting the cookie when there is none. */
  const csrfFor = (req: Request, res: Response, token: string): string => {
    const existing = cookies(req).get(CSRF_COOKIE);
    if (existing && /^[A-Za-z0-9_-]{22}$/.test(existing)) return existing;
    const fresh = randomBytes(16).toString('base64url');
    res.append('Set-Cookie', `${CSRF_COOKIE}=${fresh}; ${cookieAttrs(req, token)}`);
    return fresh;
  };

  const csrfOk = (req: Request, field: unknown): boolean => {
    const cookie = cookies(req).get(CSRF_COOKIE);
    return !!cookie && typeof field === 'string' && sameText(cookie, field);
  };

  const send = (res: Response, status: number, body: string) => res.status(status).type('html').send(body);

  const forbidden = (res: Response) =>
    send(
      res,
      403,
      statusPage(
        brand(),
        'Please try again',
        html`<p>This form has expired or was not sent from this page. Go back, reload the page and try again.</p>`,
      ),
    );

  /** The session's pickup and data key for this token, or null. */
  const sessionFor = async (req: Request, token: string) => {
    const cookie = cookies(req).get(SESSION_COOKIE);
    if (!cookie) return null;
    const pickup = await findPickupByToken(store.db, token);
    if (!pickup || !isLive(pickup)) return null;
    const session = await resumePickupSession(store, cookie, pickup, limits);
    return session ? { pickup, dataKey: session.dataKey } : null;
  };

  const noSession = (res: Response, token: string) =>
    send(
      res,
      401,
      statusPage(
        brand(),
        'Please enter your password',
        html`<p>Your session has ended or this browser has not opened the message yet. <a href="/p/${token}">Enter your password</a> to continue.</p>`,
      ),
    );

  // Every response here: never cached, no referrer, strict CSP without any script.
  const headers = (_req: Request, res: Response, next: NextFunction) => {
    res.set('Cache-Control', 'no-store');
    res.set('Pragma', 'no-cache');
    res.set('Referrer-Policy', 'no-referrer');
    res.set('X-Content-Type-Options', 'nosniff');
    res.set('Content-Security-Policy', PAGE_CSP);
    next();
  };
  // The practice name and logo an admin set apply from the next page view (a cheap version check).
  const freshSettings = (_req: Request, _res: Response, next: NextFunction) => {
    settings.current().then(() => next(), next);
  };
  router.use('/p', headers, freshSettings);
  router.use('/api/pickups', headers, freshSettings);

  const validToken = (req: Request, res: Response, next: NextFunction) => {
    if (!TOKEN_RE.test(String(req.params.token))) {
      send(res, 404, failurePage(brand(), { ok: false, code: 'PICKUP_UNKNOWN', status: 404 }));
      return;
    }
    next();
  };

  router.get('/p/:token', validToken, async (req, res) => {
    const token = String(req.params.token);
    const csrf = csrfFor(req, res, token);
    const session = await sessionFor(req, token);
    if (session) {
      const content = await readPickupOutline(store, session.pickup, session.dataKey);
      send(
        res,
        200,
        messagePage({
          token,
          csrf,
          practice: brand(),
          pickup: session.pickup,
          content,
          remote: req.query.remote === '1',
          replied: req.query.replied === '1',
          replyDelivery: limits.replyDelivery,
        }),
      );
      return;
    }
    const fetched = await markFetched(store, token, { ip: clientIp(req) });
    if (fetched.kind === 'unknown')
      send(res, 404, failurePage(brand(), { ok: false, code: 'PICKUP_UNKNOWN', status: 404 }));
    else if (fetched.kind === 'gone')
      send(
        res,
        410,
        failurePage(brand(), { ok: false, code: 'PICKUP_GONE', status: 410, pickup: fetched.pickup }),
      );
    else send(res, 200, passwordPage({ token, csrf, practice: brand(), pickup: fetched.pickup }));
  });

  router.post(
    '/p/:token',
    validToken,
    express.urlencoded({ extended: false, limit: '8kb' }),
    async (req, res) => {
      const token = String(req.params.token);
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (!csrfOk(req, body.csrf)) {
        forbidden(res);
        return;
      }
      const csrf = String(body.csrf);
      const password = typeof body.password === 'string' ? body.password.slice(0, 200) : '';
      const result = await openPickup(store, token, password, { ip: clientIp(req) }, limits);
      if (result.ok) {
        setSessionCookie(req, res, token, await createPickupSession(store, result.pickup, result.dataKey));
        result.dataKey.fill(0);
        log.info(
          { evt: 'PICKUP_UNLOCKED', pickup: result.pickup.id, qid: result.pickup.message_id },
          'pickup opened',
        );
        res.redirect(303, `/p/${token}`);
        return;
      }
      if (result.code === 'PICKUP_UNKNOWN' || result.code === 'PICKUP_GONE') {
        send(res, result.status, failurePage(brand(), result));
        return;
      }
      if (result.code === 'PICKUP_LOCKED') res.set('Retry-After', String(result.retryAfter ?? 60));
      const error =
        result.code === 'PICKUP_LOCKED'
          ? lockedMessage(result)
          : html`That password is not correct. Check it and try again — capital letters, spaces and dashes do not matter.`;
      send(
        res,
        result.status,
        passwordPage({
          token,
          csrf,
          practice: brand(),
          ...(result.pickup ? { pickup: result.pickup } : {}),
          error,
        }),
      );
    },
  );

  router.get('/p/:token/html', validToken, async (req, res) => {
    const token = String(req.params.token);
    const session = await sessionFor(req, token);
    if (!session) {
      noSession(res, token);
      return;
    }
    const content = await readPickupOutline(store, session.pickup, session.dataKey);
    res.set('Content-Security-Policy', MAIL_CSP(req.query.remote === '1'));
    res.set('X-Frame-Options', 'SAMEORIGIN');
    res.status(200).type('html').send(prepareMailHtml(token, content));
  });

  router.get('/p/:token/a/:id', validToken, async (req, res) => {
    const token = String(req.params.token);
    const session = await sessionFor(req, token);
    if (!session) {
      noSession(res, token);
      return;
    }
    const id = String(req.params.id);
    const index = /^\d{1,4}$/.test(id) ? Number(id) : -1;
    // Read in slices from the sealed file: an attachment of any size is never held whole here.
    const opened =
      index >= 0 ? await openPickupAttachment(store, session.pickup, session.dataKey, index) : null;
    if (!opened) {
      send(
        res,
        404,
        statusPage(
          brand(),
          'Attachment not found',
          html`<p><a href="/p/${token}">Back to the message</a></p>`,
        ),
      );
      return;
    }
    const { attachment: att, stream } = opened;
    const type = safeContentType(att.contentType);
    const inline = req.query.inline === '1' && INLINE_IMAGE.test(type);
    try {
      if (!inline) await recordDownload(store, session.pickup, String(index), { ip: clientIp(req) });
    } catch (err) {
      stream.destroy();
      throw err;
    }
    res.set('Content-Security-Policy', FILE_CSP);
    res.set('Content-Disposition', contentDisposition(inline ? 'inline' : 'attachment', att.filename));
    res.set('Cross-Origin-Resource-Policy', 'same-origin');
    res
      .status(200)
      .type(inline ? type : type === 'text/html' ? 'application/octet-stream' : type)
      .set('Content-Length', String(att.size));
    try {
      await pipeline(stream, res);
    } catch (err) {
      // The length was promised: a download cut short (a file that failed its tag, a client that left) ends
      // without its last bytes, and the client sees it failed.
      res.destroy();
      if (!(err instanceof Error && 'code' in err && err.code === 'ERR_STREAM_PREMATURE_CLOSE'))
        log.warn(
          { evt: 'PICKUP_DOWNLOAD_FAILED', pickup: session.pickup.id, code: errorCode(err) },
          'pickup attachment could not be read',
        );
    }
  });

  router.post(
    '/p/:token/reply',
    validToken,
    // Only an opened pickup's session may upload: a stranger cannot make us read up to 25 MB.
    (req: Request, res: Response, next: NextFunction) => {
      const token = String(req.params.token);
      sessionFor(req, token).then(
        (session) => (session ? next() : noSession(res, token)),
        (err: unknown) => next(err),
      );
    },
    express.raw({ type: 'multipart/form-data', limit: REPLY_MAX_BYTES }),
    async (req, res) => {
      const token = String(req.params.token);
      const boundary = multipartBoundary(req.headers['content-type']);
      if (!boundary || !Buffer.isBuffer(req.body)) {
        forbidden(res);
        return;
      }
      let form;
      try {
        form = parseMultipart(req.body, boundary, {
          maxParts: REPLY_MAX_FILES + 4,
          maxFiles: REPLY_MAX_FILES,
        });
      } catch (err) {
        if (!(err instanceof MultipartError)) throw err;
        send(
          res,
          400,
          statusPage(brand(), 'The reply could not be read', html`<p>Please go back and try again.</p>`),
        );
        return;
      }
      if (!csrfOk(req, form.fields.get('csrf'))) {
        forbidden(res);
        return;
      }
      const session = await sessionFor(req, token);
      if (!session) {
        noSession(res, token);
        return;
      }
      const text = (form.fields.get('text') ?? '').trim();
      if (!text && form.files.length === 0) {
        res.redirect(303, `/p/${token}`);
        return;
      }
      const original = await readPickupOutline(store, session.pickup, session.dataKey);
      const replyId = await createReply(
        store,
        {
          pickup: session.pickup,
          subject: /^re:/i.test(original.subject) ? original.subject : `Re: ${original.subject}`,
          text,
          attachments: form.files.map((f) => ({
            filename: safeFilename(f.filename),
            contentType: safeContentType(f.contentType),
            content: f.content,
          })),
          ip: clientIp(req),
        },
        limits,
      );
      log.info(
        { evt: 'PICKUP_REPLIED', pickup: session.pickup.id, reply: replyId, qid: session.pickup.message_id },
        'pickup reply stored',
      );
      res.redirect(303, `/p/${token}?replied=1`);
    },
  );

  router.post(
    '/p/:token/close',
    validToken,
    express.urlencoded({ extended: false, limit: '2kb' }),
    async (req, res) => {
      const token = String(req.params.token);
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (!csrfOk(req, body.csrf)) {
        forbidden(res);
        return;
      }
      const cookie = cookies(req).get(SESSION_COOKIE);
      if (cookie) await endPickupSession(store, cookie);
      res.append('Set-Cookie', `${SESSION_COOKIE}=; Max-Age=0; ${cookieAttrs(req, token)}`);
      send(
        res,
        200,
        statusPage(
          brand(),
          'Message closed',
          html`<p>The message is closed on this device. You can open it again with the link and your password until it expires.</p>`,
        ),
      );
    },
  );

  // JSON API (DESIGN.md): POST /api/pickups/<token>/open {"password"}
  router.post(
    '/api/pickups/:token/open',
    express.json({ type: 'application/json', limit: '8kb' }),
    async (req, res) => {
      if (!req.is('application/json')) {
        res.status(415).json({ error: 'unsupported_media_type' });
        return;
      }
      const token = String(req.params.token);
      const password = (req.body as { password?: unknown } | undefined)?.password;
      if (typeof password !== 'string') {
        res.status(400).json({ error: 'password_required' });
        return;
      }
      const result = await openPickup(store, token, password.slice(0, 200), { ip: clientIp(req) }, limits);
      if (!result.ok) {
        if (result.status === 423) res.set('Retry-After', String(result.retryAfter ?? 60));
        const error = { 401: 'wrong_password', 404: 'unknown', 410: 'gone', 423: 'locked' }[result.status];
        res
          .status(result.status)
          .json(
            result.status === 423 ? { error, retryAfter: result.retryAfter, hard: !!result.hard } : { error },
          );
        return;
      }
      if (TOKEN_RE.test(token))
        setSessionCookie(req, res, token, await createPickupSession(store, result.pickup, result.dataKey));
      result.dataKey.fill(0);
      const c = result.content;
      res.status(200).json({
        from: c.from,
        to: c.to,
        subject: c.subject,
        date: c.date,
        text: c.text,
        html: c.html,
        attachments: c.attachments.map((a, i) => ({
          id: String(i),
          filename: a.filename,
          contentType: a.contentType,
          size: a.size,
          url: `/p/${token}/a/${i}`,
        })),
      });
    },
  );

  // Body-parser refusals (too large, malformed JSON) as plain answers, not 500s.
  router.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    const status = (err as { status?: unknown }).status;
    if (typeof status !== 'number' || status < 400 || status >= 500) {
      next(err);
      return;
    }
    if (req.path.startsWith('/api/'))
      res.status(status).json({ error: status === 413 ? 'too_large' : 'bad_request' });
    else
      send(
        res,
        status,
        statusPage(
          brand(),
          status === 413 ? 'Too large' : 'Something was wrong with the request',
          html`<p>${status === 413 ? 'The reply and its attachments are too large to send here.' : 'Please go back and try again.'}</p>`,
        ),
      );
  });
  return router;
}
