// The last hop out: the configured relay (nodemailer, pooled) or the built-in outbox. A transport reports
// per-recipient results; it never decides retries or bounces (delivery.ts does).
import nodemailer, { type Mail } from 'nodemailer';
import type { RelayConfig } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { newQueueId } from './ids.js';

export interface OutboundMail {
  from: string;
  to: string[];
  raw: Buffer;
  /** X-PHI-Gateway-Kind of generated mail, or 'relay' for staff mail passed on. */
  kind: string;
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

export interface Transport {
  readonly name: string;
  send(mail: OutboundMail): Promise<SendResult>;
  close(): Promise<void>;
}

interface SmtpErrorLike {
  code?: string;
  responseCode?: number;
  response?: string;
  rejected?: string[];
  rejectedErrors?: SmtpErrorLike[];
  recipient?: string;
}

function clip(text: string | undefined): string {
  return (text ?? '').replace(/[\r\n]+/g, ' ').slice(0, 500);
}

export class RelayTransport implements Transport {
  readonly name = 'relay';
  private readonly transporter: Mail;

  constructor(config: RelayConfig & { url: string }, hostname: string) {
    const host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
    const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
    this.transporter = nodemailer.createTransport({
      url: config.url,
      // Never fall back to clear text across a network because STARTTLS was not offered (or was stripped).
      requireTLS: !config.url.startsWith('smtps:') && !loopback && !config.allowPlaintext,
      pool: true,
      name: hostname,
      maxConnections: config.maxConnections,
      maxMessages: config.maxMessagesPerConnection,
      connectionTimeout: Math.min(config.timeout, 30_000),
      greetingTimeout: Math.min(config.timeout, 30_000),
      socketTimeout: config.timeout,
      tls: { rejectUnauthorized: !config.allowInvalidCertificates, minVersion: 'TLSv1.2' },
      logger: false,
    });
  }

  async send(mail: OutboundMail): Promise<SendResult> {
    try {
      const info = (await this.transporter.sendMail({
        envelope: { from: mail.from, to: mail.to },
        raw: mail.raw,
      })) as {
        accepted?: string[];
        rejected?: string[];
        rejectedErrors?: SmtpErrorLike[];
        response?: string;
      };
      const rejectedErrors = info.rejectedErrors ?? [];
      const rejected = (info.rejected ?? []).map((rcpt) => {
        const e = rejectedErrors.find((x) => x.recipient === rcpt);
        return { rcpt, code: e?.responseCode ?? null, response: clip(e?.response) };
      });
      return { accepted: (info.accepted ?? []).map(String), rejected, response: clip(info.response) };
    } catch (err) {
      const e = err as SmtpErrorLike & Error;
      if (e.code === 'EENVELOPE' && e.rejected && e.rejected.length > 0) {
        // Every recipient was refused at RCPT: report each with its own reply.
        const errs = e.rejectedErrors ?? [];
        return {
          accepted: [],
          rejected: e.rejected.map((rcpt) => {
            const x = errs.find((r) => r.recipient === rcpt);
            return {
              rcpt,
              code: x?.responseCode ?? e.responseCode ?? null,
              response: clip(x?.response ?? e.response),
            };
          }),
          response: clip(e.response),
        };
      }
      // A refused or failed STARTTLS (ETLS) is a fault of the path or of the next hop's set-up, which an
      // attacker who strips STARTTLS can also cause: retry it like an outage, never bounce on it.
      const code = typeof e.responseCode === 'number' && e.code !== 'ETLS' ? e.responseCode : null;
      throw new TransportError(
        `next hop: ${e.code ?? 'error'}`,
        code,
        clip(e.response ?? e.code),
        code === null || code < 500,
      );
    }
  }

  close(): Promise<void> {
    this.transporter.close();
    return Promise.resolve();
  }
}

/** With no relay configured: keep outgoing mail, sealed like everything else, for the /outbox page. */
export class OutboxTransport implements Transport {
  readonly name = 'outbox';
  constructor(private readonly store: Store) {}

  async send(mail: OutboundMail): Promise<SendResult> {
    const id = newQueueId();
    await this.store.seal('outbox', id, mail.raw);
    await this.store.write(
      (trx) =>
        trx('outbox').insert({
          id,
          created_at: Date.now(),
          kind: mail.kind,
          mail_from: mail.from,
          rcpt_to: JSON.stringify(mail.to),
          size: mail.raw.length,
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
