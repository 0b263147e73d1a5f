// The last hop out: the configured relay (pooled, pipelined: smtp-client.ts) or the built-in outbox. A transport reports
// per-recipient results; it never decides retries or bounces (delivery.ts does).
import { Readable } from 'node:stream';
import type { RelayConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { newQueueId } from './ids.js';
import { SmtpError, SmtpPool, type BodySource, type SmtpClientOptions } from './smtp-client.js';

export interface OutboundMail {
  from: string;
  to: string[];
  raw: Buffer;
  /** X-PHI-Gateway-Kind of generated mail, or 'relay' for staff mail passed on. */
  kind: string;
  /**
   * From this offset on, every CR and LF of `raw` is known to be part of a CRLF (content the intake checked): the
   * relay does not search it for bare ones again (dataPayload).
   */
  crlfFrom?: number;
}

export interface RecipientFailure {
  rcpt: string;
  code: number | null;
  response: string;
}

export interface SendResult {
  accepted: string[];
  rejected: RecipientFailure[];
  response: string;
}

/** The whole transaction failed; `code` is the next hop's reply code when it gave one. */
export class TransportError extends Error {
  override name = 'TransportError';
  constructor(
    message: string,
    readonly code: number | null,
    readonly response: string,
    readonly transient: boolean,
  ) {
    super(message);
  }
}

/** Mail whose content is read as it is sent (opened anew for each attempt). */
export interface StreamedMail extends Omit<OutboundMail, 'raw'> {
  body: BodySource;
}

export interface Transport {
  readonly name: string;
  send(mail: OutboundMail): Promise<SendResult>;
  /**
   * Sends content as it is read, so a large message is never held whole. Optional: delivery loads the
   * content into memory for a transport without it. An error reading the body is thrown as it is (nothing
   * was accepted: the message never ended); transport failures as TransportError.
   */
  sendStream?(mail: StreamedMail): Promise<SendResult>;
  close(): Promise<void>;
}

function clip(text: string | undefined): string {
  return (text ?? '').replace(/[\r\n]+/g, ' ').slice(0, 500);
}

/** Client settings for the relay URL: smtp:// (STARTTLS) or smtps:// (implicit TLS), credentials optional. */
export function relayClientOptions(
  config: RelayConfig & { url: string },
  hostname: string,
): SmtpClientOptions {
  const url = new URL(config.url);
  const secure = url.protocol === 'smtps:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
  return {
    host,
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    // Never fall back to clear text across a network because STARTTLS was not offered (or was stripped).
    requireTLS: !secure && !loopback && !config.allowPlaintext,
    ...(url.username
      ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }
      : {}),
    name: hostname,
    tls: { rejectUnauthorized: !config.allowInvalidCertificates, minVersion: 'TLSv1.2' },
    connectTimeout: Math.min(config.timeout, 30_000),
    replyTimeout: config.timeout,
    dataTimeout: config.dataTimeout,
    maxConnections: config.maxConnections,
    maxMessagesPerConnection: config.maxMessagesPerConnection,
  };
}

export class RelayTransport implements Transport {
  readonly name = 'relay';
  private readonly pool: SmtpPool;

  constructor(config: RelayConfig & { url: string }, hostname: string) {
    this.pool = new SmtpPool(relayClientOptions(config, hostname));
  }

  send(mail: OutboundMail): Promise<SendResult> {
    return this.relay(mail.from, mail.to, mail.raw, mail.crlfFrom);
  }

  sendStream(mail: StreamedMail): Promise<SendResult> {
    return this.relay(mail.from, mail.to, mail.body);
  }

  private async relay(
    from: string,
    to: string[],
    body: Buffer | BodySource,
    crlfFrom?: number,
  ): Promise<SendResult> {
    try {
      const r = await this.pool.send(from, to, body, crlfFrom);
      return {
        accepted: r.accepted,
        rejected: r.rejected.map((x) => ({ rcpt: x.rcpt, code: x.code, response: clip(x.response) })),
        response: clip(r.response),
      };
    } catch (err) {
      // The body could not be read (a spool file gone or failing authentication): the caller's to judge.
      if (!(err instanceof SmtpError) && typeof body === 'function') throw err;
      const e = err instanceof SmtpError ? err : new SmtpError('error', 'ECONNECTION', null, '');
      // A refused or failed STARTTLS (ETLS) is a fault of the path or of the next hop's set-up, which an
      // attacker who strips STARTTLS can also cause; a refused login is ours to fix. Both are retried like
      // an outage, never bounced.
      const code = e.responseCode !== null && e.code !== 'ETLS' && e.code !== 'EAUTH' ? e.responseCode : null;
      throw new TransportError(
        `next hop: ${e.code}`,
        code,
        clip(e.response || e.code),
        code === null || code < 500,
      );
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** With no relay configured: keep outgoing mail, sealed like everything else, for the /outbox page. */
export class OutboxTransport implements Transport {
  readonly name = 'outbox';
  constructor(private readonly store: Store) {}

  send(mail: OutboundMail): Promise<SendResult> {
    return this.keep(mail, mail.raw);
  }

  /** Sealed as it is read: a body that fails to read leaves no outbox file and no row, and its error is thrown. */
  sendStream(mail: StreamedMail): Promise<SendResult> {
    return this.keep(mail, Readable.from(mail.body(), { objectMode: false }));
  }

  private async keep(mail: Omit<OutboundMail, 'raw'>, content: Buffer | Readable): Promise<SendResult> {
    const id = newQueueId();
    let size: number;
    try {
      ({ size } = await this.store.seal('outbox', id, content));
    } catch (err) {
      if (!Buffer.isBuffer(content)) content.destroy(); // the reader stops, its file closes
      throw err;
    }
    await this.store.write(
      (trx) =>
        trx('outbox').insert({
          id,
          created_at: Date.now(),
          kind: mail.kind,
          mail_from: mail.from,
          rcpt_to: JSON.stringify(mail.to),
          size,
        }),
      { syncDirs: ['outbox'] },
    );
    return { accepted: [...mail.to], rejected: [], response: `250 stored in outbox as ${id}` };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Pickup passwords by text message: the JSON body built by notices.smsPayload is POSTed to the SMS
 * gateway's webhook. 2xx accepts; 4xx refuses for good (the sender gets a bounce); anything else retries.
 */
export class WebhookTransport implements Transport {
  readonly name = 'sms-webhook';
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
  ) {}

  async send(mail: OutboundMail): Promise<SendResult> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new Uint8Array(mail.raw),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      throw new TransportError('sms webhook unreachable', null, clip((err as Error).message), true);
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.ok) return { accepted: [...mail.to], rejected: [], response: `${res.status} sms webhook` };
    const permanent = res.status >= 400 && res.status < 500 && res.status !== 429;
    const code = permanent ? 550 : 451;
    return {
      accepted: [],
      rejected: mail.to.map((rcpt) => ({ rcpt, code, response: `sms webhook answered ${res.status}` })),
      response: `sms webhook answered ${res.status}`,
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
