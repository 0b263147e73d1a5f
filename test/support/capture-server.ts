// A next hop for tests and benchmarks: a real SMTP server on loopback that keeps every message it
// accepts (envelope + raw bytes). It can be told to refuse recipients or to go down and come back.
import { SMTPServer } from 'smtp-server';

export interface CapturedMessage {
  from: string;
  to: string[];
  raw: Buffer;
  at: number;
}

/** The X-PHI-Gateway-Kind of a captured message (pickup-notice, pickup-password, bounce, pgp …); 'relay' without. */
export const kindOf = (m: CapturedMessage): string =>
  /\r\nX-PHI-Gateway-Kind: ([\w-]+)/.exec(`\r\n${m.raw.toString('latin1')}`)?.[1] ?? 'relay';

export interface CaptureOptions {
  /** Reply for a recipient; return an error to refuse it (e.g. 550 for a permanent failure). */
  onRcpt?: (rcpt: string) => { code: number; message: string } | undefined;
  /** Keep message bodies (default true); benchmarks may keep counts only. */
  keep?: boolean;
  /** Called with each message once it is kept, before the 250 is sent. */
  onMessage?: (m: CapturedMessage) => void;
}

export class CaptureServer {
  readonly messages: CapturedMessage[] = [];
  count = 0;
  private server?: SMTPServer;
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  port = 0;

  constructor(private readonly opts: CaptureOptions = {}) {}

  async start(port = 0): Promise<number> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      disableReverseLookup: true,
      size: 100 * 1024 * 1024,
      // Go down fast when a test stops it, even with pooled connections open.
      closeTimeout: 100,
      onRcptTo: (address, _session, cb) => {
        const refusal = this.opts.onRcpt?.(address.address);
        if (refusal) {
          const err = new Error(refusal.message) as Error & { responseCode: number };
          err.responseCode = refusal.code;
          return cb(err);
        }
        cb();
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => {
          if (this.opts.keep !== false) chunks.push(c);
        });
        stream.on('end', () => {
          this.count++;
          const m: CapturedMessage = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            at: Date.now(),
          };
          if (this.opts.keep !== false) this.messages.push(m);
          this.opts.onMessage?.(m);
          cb(null, `2.0.0 Ok: captured ${this.count}`);
          this.waiters = this.waiters.filter((w) => {
            if (this.count >= w.n) w.resolve();
            return this.count < w.n;
          });
        });
      },
    });
    // Peers that vanish (a gateway killed mid-transfer) reset their sockets; that is expected here.
    server.on('error', () => undefined);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.server.address();
    if (!addr || typeof addr === 'string') throw new Error('capture server did not bind');
    this.port = addr.port;
    return this.port;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Resolves once `n` messages in total have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs = 15000): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`capture: ${this.count}/${n} messages after ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
