// The web app: health, the pickup portal, and the built-in outbox (mail the gateway would have relayed when no relay is set).
// It never speaks SMTP. Every response carries a strict CSP; pages that show mail are never cached.
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { simpleParser } from 'mailparser';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import type { Store } from '../store/store.js';
import { html, page } from './html.js';
import { createStaffAuth } from './staff-auth.js';
import { createStaffPages } from './staff-pages.js';
import { createProtectionPages } from './admin-protection.js';
import { createRedactApi } from './redact-api.js';
import { createComposePages } from './compose.js';
import { createRulesPages } from './admin-rules.js';
import { createSettingsPages } from './admin-settings.js';
import { createLogoRoute } from './settings-logo.js';
import os from 'node:os';
import { createPickupPortal } from './pickup-portal.js';
import { createPasskeyPages } from './passkeys.js';

export interface WebOptions {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
}

const STATIC_DIR = fileURLToPath(new URL('../../web/static', import.meta.url));

function probeTcp(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function isLoopback(ip: string | undefined): boolean {
  return !!ip && (ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.'));
}

async function queueDepth(store: Store): Promise<{ messages: number; envelopes: number; held: number }> {
  const [m] = (await store
    .db('messages')
    .whereIn('state', ['queued', 'processing', 'deferred'])
    .count({ n: '*' })) as Array<{ n: number | string }>;
  const [e] = (await store
    .db('envelopes')
    .whereIn('state', ['queued', 'sending', 'deferred'])
    .count({ n: '*' })) as Array<{ n: number | string }>;
  const [h] = (await store.db('messages').where('state', 'held').count({ n: '*' })) as Array<{
    n: number | string;
  }>;
  return { messages: Number(m?.n ?? 0), envelopes: Number(e?.n ?? 0), held: Number(h?.n ?? 0) };
}

interface OutboxRow {
  id: string;
  created_at: number;
  kind: string;
  mail_from: string;
  rcpt_to: string;
  size: number;
}

export function createWebApp({ config, store, log }: WebOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  // Forwarded headers only from the configured proxies (web.trustProxy); otherwise req.ip is the peer.
  app.set('trust proxy', config.web.trustProxy.length > 0 ? [...config.web.trustProxy] : false);
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          fontSrc: ["'self'"],
          connectSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          objectSrc: ["'none'"],
        },
      },
      referrerPolicy: { policy: 'no-referrer' },
      crossOriginEmbedderPolicy: false,
    }),
  );
  app.use('/static', express.static(STATIC_DIR, { index: false, maxAge: '1h' }));

  app.get('/healthz', async (_req, res) => {
    const smtpHost =
      config.smtp.host === '0.0.0.0' ? '127.0.0.1' : config.smtp.host === '::' ? '::1' : config.smtp.host;
    const [smtpListening, database] = await Promise.all([
      probeTcp(smtpHost, config.smtp.port),
      store.db
        .raw('select 1')
        .then(() => true)
        .catch(() => false),
    ]);
    const queue = database ? await queueDepth(store).catch(() => null) : null;
    const ok = smtpListening && database;
    res.status(ok ? 200 : 503).json({
      status: ok ? 'ok' : 'degraded',
      smtp: { listening: smtpListening },
      database: { reachable: database },
      queue,
    });
  });

  app.get('/', (_req, res) => {
    res.type('html').send(
      page(
        'Home',
        html`<h1>phi-gateway</h1>
<p class="note">The gateway is running. ${config.relay.url ? 'Mail is relayed to the configured next hop.' : html`No relay is configured: outgoing mail is kept in the <a href="/outbox">outbox</a>.`}</p>
<p><a href="/healthz">Health</a></p>`,
      ),
    );
  });

  // The outbox shows mail content, and sign-in does not exist yet: loopback clients only.
  const outbox = express.Router();
  outbox.use((req: Request, res: Response, next: NextFunction) => {
    res.set('Cache-Control', 'no-store');
    if (!isLoopback(req.socket.remoteAddress)) {
      res.status(403).type('text').send('The outbox is available from this machine only.');
      return;
    }
    next();
  });
  outbox.get('/', async (_req, res) => {
    const rows = (await store.db('outbox').orderBy('created_at', 'desc').limit(200)) as OutboxRow[];
    const body = html`<h1>Outbox</h1>
<p class="note">No relay is configured (<code>PHIGW_RELAY_URL</code>), so mail that would leave the gateway is kept here, encrypted at rest. Newest first.</p>
${
  rows.length === 0
    ? html`<p>Nothing yet. Send a message to the SMTP port and it appears here.</p>`
    : html`<table>
<thead><tr><th scope="col">Time</th><th scope="col">Kind</th><th scope="col">To</th><th scope="col">From</th><th scope="col">Size</th></tr></thead>
<tbody>
${rows.map(
  (
    r,
  ) => html`<tr><td><a href="/outbox/${r.id}">${new Date(Number(r.created_at)).toISOString().replace('T', ' ').slice(0, 19)}</a></td>
<td><span class="kind">${r.kind}</span></td><td>${(JSON.parse(r.rcpt_to) as string[]).join(', ')}</td><td>${r.mail_from || '<>'}</td><td>${Math.ceil(Number(r.size) / 1024)} KB</td></tr>
`,
)}
</tbody></table>`
}`;
    res.type('html').send(page('Outbox', body));
  });
  outbox.get('/:id', async (req, res) => {
    const id = String(req.params.id);
    const row = (await store.db('outbox').where({ id }).first()) as OutboxRow | undefined;
    if (!row) {
      res
        .status(404)
        .type('html')
        .send(page('Not found', html`<h1>Not found</h1><p><a href="/outbox">Back to the outbox</a></p>`));
      return;
    }
    const raw = await store.unseal('outbox', row.id);
    const parsed = await simpleParser(raw, { skipHtmlToText: false });
    const headerEnd = raw.indexOf('\r\n\r\n');
    const headers = raw.subarray(0, headerEnd === -1 ? raw.length : headerEnd).toString('utf8');
    log.info({ evt: 'OUTBOX_VIEWED', outbox: row.id }, 'outbox message viewed');
    res.type('html').send(
      page(
        'Outbox message',
        html`<p><a href="/outbox">← Outbox</a></p>
<h1>${parsed.subject ?? '(no subject)'}</h1>
<dl>
<dt>Envelope from</dt><dd>${row.mail_from || '<>'}</dd>
<dt>Envelope to</dt><dd>${(JSON.parse(row.rcpt_to) as string[]).join(', ')}</dd>
<dt>Kind</dt><dd>${row.kind}</dd>
<dt>Attachments</dt><dd>${parsed.attachments.length}</dd>
</dl>
<h2>Text</h2>
<pre>${parsed.text ?? ''}</pre>
<h2>Headers</h2>
<pre>${headers}</pre>`,
      ),
    );
  });
  app.use('/outbox', outbox);

  // Staff and admin side: sign-in, then the pages and their JSON twins.
  const auth = createStaffAuth({ config, store, log });
  // DLP rules first: its forms and tester uploads are larger than the other routers' body limits.
  app.use(createRulesPages({ config, store, log, auth }));
  // The redaction API takes images larger than the other routers' body limits, so it comes before them too.
  const redactApi = createRedactApi({ config, store, log, auth });
  app.use(redactApi.router);
  (app.locals as { closers?: Array<() => Promise<void>> }).closers = [() => redactApi.close()];
  app.use(createComposePages({ config, store, log, auth }));
  // Settings take a logo upload (multipart) and the public logo path; before the routers with smaller limits.
  app.use(createSettingsPages({ config, store, log, auth }));
  app.use(createLogoRoute({ config, store }));
  app.use(auth.router);
  app.use(createPasskeyPages({ config, store, log, auth }));
  app.use(createStaffPages({ config, store, log, auth }));
  app.use(
    createProtectionPages({ config, store, log, auth, hostname: config.smtp.hostname ?? os.hostname() }),
  );
  // Recipients' pickup pages and the pickup JSON API (web/pickup-portal.ts).
  app.use(createPickupPortal({ config, store, log }));

  app.use((_req, res) => {
    res
      .status(404)
      .type('html')
      .send(page('Not found', html`<h1>Not found</h1>`));
  });
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    log.error({ evt: 'WEB_ERROR', err }, 'request failed');
    res.status(500).type('text').send('Internal error');
  });
  return app;
}
