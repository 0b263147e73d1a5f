// The benchmark's next hop: a real SMTP server on loopback (smtp-server, as test/support/capture-server.ts)
// that keeps no bodies, only when each X-Bench-Seq arrived, how often, and whether its body is intact.
import { createHash, type Hash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { SMTPServer } from 'smtp-server';

const HEADER_LIMIT = 64 * 1024;

export class ArrivalServer {
  /** performance.now() of the first arrival, per seq (NaN until it arrives). */
  readonly arrived: Float64Array;
  /** How many times each seq arrived. */
  readonly copies: Uint32Array;
  /** Messages that were not ours (wrong run, no seq) and seqs whose body did not match its hash. */
  unknown = 0;
  corrupt = 0;
  /** Distinct seqs seen. */
  distinct = 0;
  private server?: SMTPServer;
  private waiter?: { n: number; resolve: () => void };
  port = 0;

  constructor(
    private readonly run: string,
    count: number,
  ) {
    this.arrived = new Float64Array(count).fill(NaN);
    this.copies = new Uint32Array(count);
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      disableReverseLookup: true,
      size: 100 * 1024 * 1024,
      maxClients: 1000,
      closeTimeout: 100,
      onData: (stream, _session, cb) => {
        let head: Buffer | undefined = Buffer.alloc(0);
        let headers = '';
        const hash: Hash = createHash('sha256');
        stream.on('data', (chunk: Buffer) => {
          if (!head) {
            hash.update(chunk);
            return;
          }
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end !== -1) {
            headers = head.subarray(0, end).toString('latin1');
            hash.update(head.subarray(end + 4));
            head = undefined;
          } else if (head.length > HEADER_LIMIT) head = undefined;
        });
        stream.on('end', () => {
          this.record(headers, hash.digest('hex'), performance.now());
          cb(null, 'Ok: arrived');
        });
      },
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.server.address();
    if (!addr || typeof addr === 'string') throw new Error('arrival server did not bind');
    this.port = addr.port;
  }

  private record(headers: string, bodySha256: string, at: number): void {
    const header = (name: string) => new RegExp(`^${name}:[ \\t]*(\\S+)`, 'im').exec(headers)?.[1];
    const seq = Number(header('X-Bench-Seq') ?? NaN);
    if (
      header('X-Bench-Run') !== this.run ||
      !Number.isInteger(seq) ||
      seq < 0 ||
      seq >= this.copies.length
    ) {
      this.unknown++;
      return;
    }
    if (header('X-Bench-Body-Sha256') !== bodySha256) this.corrupt++;
    const copies = this.copies[seq]!;
    this.copies[seq] = copies + 1;
    if (copies === 0) {
      this.arrived[seq] = at;
      this.distinct++;
      if (this.waiter && this.distinct >= this.waiter.n) {
        this.waiter.resolve();
        this.waiter = undefined;
      }
    }
  }

  /** Resolves true once `n` distinct messages have arrived, false if `signal` aborts first. */
  waitFor(n: number, signal: AbortSignal): Promise<boolean> {
    if (this.distinct >= n) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => resolve(false);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiter = {
        n,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(true);
        },
      };
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
