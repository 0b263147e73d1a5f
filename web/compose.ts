// Secure send from the web: staff compose a message to one or more recipients, with attachments, and it
// enters the same pipeline as SMTP mail (spooled sealed, scanned, routed per recipient). It is always
// protected (Sensitivity: Company-Confidential), so external recipients get PGP/MIME or a pickup, and
// images in a pickup are redacted by the gateway. The web never speaks SMTP: it spools, the gateway sends.
// Uses gateway/spool.ts (read-and-seal only; a deliberate exception to the usual import direction).
import os from 'node:os';
import express, { type Request, type Response } from 'express';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { spoolMessage } from '../gateway/spool.js';
import { uiSettings } from '../store/settings.js';
import type { Store } from '../store/store.js';
import { isPlausibleEmail } from '../store/users.js';
import { html, type SafeHtml } from './html.js';
import { MultipartError, multipartBoundary, parseMultipart } from './multipart.js';
import { staffPage, type StaffAuth } from './staff-auth.js';

const MAX_BYTES = 25 * 1024 * 1024;
const MAX_FILES = 10;
const MAX_RECIPIENTS = 50;

export function createComposePages(opts: {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  auth: StaffAuth;
}): express.Router {
  const { config, store, log, auth } = opts;
  const hostname = config.smtp.hostname ?? os.hostname();
  const r = express.Router();
  const staff = auth.require(['staff', 'admin']);

  const form = (
    req: Request,
    values: { to?: string; subject?: string; text?: string } = {},
    error?: string,
    sent?: string,
  ): SafeHtml =>
    html`<h1>Send securely</h1>
<p class="note">Recipients with a key get the message encrypted (PGP); everyone else gets a secure pickup link and, separately, a password. Images are redacted for them. Colleagues on the practice's own domains get it as usual.</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}${sent ? html`<p class="ok" role="status">Sent. Reference <code>${sent}</code>; follow it under <a href="/me">My messages</a>.</p>` : ''}
<form method="post" action="/me/send" enctype="multipart/form-data" class="card">
<input type="hidden" name="_csrf" value="${req.staff!.csrf}">
<label for="to">To (one or more addresses, separated by commas)</label>
<input id="to" name="to" type="text" inputmode="email" autocomplete="off" required value="${values.to ?? ''}">
<label for="subject">Subject</label>
<input id="subject" name="subject" type="text" value="${values.subject ?? ''}">
<label for="text">Message</label>
<textarea id="text" name="text" rows="10" required>${values.text ?? ''}</textarea>
<label for="files">Attachments (optional, up to ${MAX_FILES} files, 25 MB in all)</label>
<input id="files" name="files" type="file" multiple>
<button type="submit">Send securely</button>
</form>`;

  r.get('/me/send', auth.load, staff, (req, res) => {
    res.type('html').send(staffPage('Send securely', req.staff, form(req)));
  });

  r.post(
    '/me/send',
    auth.load,
    staff,
    express.raw({ type: 'multipart/form-data', limit: MAX_BYTES }),
    async (req: Request, res: Response) => {
      const boundary = multipartBoundary(req.headers['content-type']);
      let parsed;
      try {
        if (!boundary || !Buffer.isBuffer(req.body)) throw new MultipartError('not a form upload');
        parsed = parseMultipart(req.body, boundary, { maxParts: MAX_FILES + 8, maxFiles: MAX_FILES });
      } catch (err) {
        if (!(err instanceof MultipartError)) throw err;
        res
          .status(400)
          .type('html')
          .send(
            staffPage(
              'Send securely',
              req.staff,
              form(req, {}, 'The form could not be read. Please try again.'),
            ),
          );
        return;
      }
      // The CSRF token travels in the multipart body, so it is checked here rather than by auth.csrf.
      req.body = { _csrf: parsed.fields.get('_csrf') ?? '' };
      let csrfOk = false;
      auth.csrf(req, res, () => {
        csrfOk = true;
      });
      if (!csrfOk) return;
      const values = {
        to: (parsed.fields.get('to') ?? '').trim(),
        subject: (parsed.fields.get('subject') ?? '').trim(),
        text: parsed.fields.get('text') ?? '',
      };
      const rcpts = [
        ...new Set(
          values.to
            .split(/[,;\s]+/)
            .map((a) => a.trim().toLowerCase())
            .filter(Boolean),
        ),
      ];
      const bad = rcpts.filter((a) => !isPlausibleEmail(a));
      const error =
        rcpts.length === 0
          ? 'Add at least one recipient.'
          : bad.length > 0
            ? `These addresses do not look right: ${bad.join(', ')}`
            : rcpts.length > MAX_RECIPIENTS
              ? `At most ${MAX_RECIPIENTS} recipients at once.`
              : !values.text.trim() && parsed.files.length === 0
                ? 'Write a message or attach a file.'
                : null;
      if (error) {
        res
          .status(422)
          .type('html')
          .send(staffPage('Send securely', req.staff, form(req, values, error)));
        return;
      }
      const from = req.staff!.email;
      const practice = (await uiSettings(store, config).current()).practiceName;
      const composer = new MailComposer({
        from,
        to: rcpts,
        subject: values.subject || `Secure message from ${practice}`,
        text: values.text,
        attachments: parsed.files.map((f) => ({
          filename: f.filename,
          contentType: f.contentType,
          content: f.content,
        })),
        headers: { Sensitivity: 'Company-Confidential' },
        messageId: `<web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}@${hostname}>`,
        date: new Date(),
      });
      const raw = Buffer.from(
        (await composer.compile().build()).toString('latin1').replace(/\r?\n/g, '\r\n'),
        'latin1',
      );
      const ip = req.ip ?? 'unknown';
      const spooled = await spoolMessage(
        store,
        { mailFrom: from, rcptTo: rcpts, clientIp: ip, clientHelo: 'web', authUser: from, tls: req.secure },
        raw,
        {
          state: 'queued',
          trace: (id, now) =>
            `Received: from web (web ui, user authenticated) by ${hostname} (phi-gateway) with HTTP id ${id}; ${now.toUTCString().replace('GMT', '+0000')}\r\n`,
        },
      );
      log.info(
        { evt: 'WEB_SEND', qid: spooled.id, rcpts: rcpts.length, files: parsed.files.length },
        'message sent from the web',
      );
      res
        .status(201)
        .type('html')
        .send(staffPage('Send securely', req.staff, form(req, {}, undefined, spooled.id)));
    },
  );
  return r;
}
