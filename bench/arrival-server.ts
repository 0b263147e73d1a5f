// The benchmark's next hop: a real SMTP server on loopback (smtp-server, as test/support/capture-server.ts)
// that keeps no bodies, only when each X-Bench-Seq arrived, how often, and whether its body is intact.
// For protected mail (PGP, pickup notice + password) it matches by Message-ID or envelope recipient and
// counts each expected X-PHI-Gateway-Kind per message; a message is complete when every kind arrived.
import { createHash, type Hash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { SMTPServer } from 'smtp-server';

const HEADER_LIMIT = 64 * 1024;

interface ConnectionInternals {
  connectionReady(): void;
}
interface ServerInternals {
  connections: Set<ConnectionInternals>;
  connect(socket: unknown, options: unknown): void;
}

/**
 * smtp-server holds every greeting 100 ms to catch early talkers. A real next hop greets at once; with the
 * pause, a relay that opens a connection per message (Haraka's smtp_forward) would pay 100 ms the pooled
 * ones (Postfix, phi-gateway) do not. The connection is made ready at once and the delayed call is dropped.
 */
function greetAtOnce(server: SMTPServer): void {
  const s = server as unknown as ServerInternals;
  const connect = s.connect.bind(s);
  s.connect = (socket, options) => {
    const before = new Set(s.connections);
    connect(socket, options);
    for (const c of s.connections) {
      if (before.has(c)) continue;
      const ready = c.connectionReady.bind(c);
      c.connectionReady = () => undefined;
      ready();
    }
  };
}

export class ArrivalServer {
  /** performance.now() of the first arrival, per seq (NaN until it arrives). */
  readonly arrived: Float64Array;
  /** How many times each seq arrived (as its first expected kind). */
  readonly copies: Uint32Array;
  /** Messages that were not ours (wrong run, no seq) and seqs whose body did not match its hash. */
  unknown = 0;
  corrupt = 0;
  /** Distinct seqs seen (complete: every expected kind arrived). */
  distinct = 0;
  /** Copies beyond the first, over all seqs and kinds. */
  duplicates = 0;
  private server?: SMTPServer;
  private waiter?: { n: number; resolve: () => void };
  private readonly kinds: string[];
  private readonly byKind = new Map<string, Uint32Array>();
  port = 0;

  /**
   * `kinds`: the X-PHI-Gateway-Kind values each message must arrive as ('relay' when the header is absent);
   * default ['relay'], the clean path, where the body is also checked against X-Bench-Body-Sha256.
   */
  constructor(
    private readonly run: string,
    count: number,
    kinds: string[] = ['relay'],
  ) {
    this.arrived = new Float64Array(count).fill(NaN);
    this.copies = new Uint32Array(count);
    this.kinds = kinds;
    for (const k of kinds) this.byKind.set(k, new Uint32Array(count));
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
      onData: (stream, session, cb) => {
        const rcpt = session.envelope.rcptTo[0]?.address ?? '';
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
          this.record(headers, rcpt, hash.digest('hex'), performance.now());
          cb(null, 'Ok: arrived');
        });
      },
    });
    greetAtOnce(server);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = server.server.address();
    if (!addr || typeof addr === 'string') throw new Error('arrival server did not bind');
    this.port = addr.port;
  }

  /** The seq a message belongs to: its X-Bench-Seq, a Message-ID of this run, or a recipient `p<seq>.<run>@`. */
  private seqOf(header: (name: string) => string | undefined, headers: string, rcpt: string): number {
    if (header('X-Bench-Run') === this.run) return Number(header('X-Bench-Seq') ?? NaN);
    const id = new RegExp(`^(?:Message-ID|In-Reply-To|References):[ \\t]*<${this.run}\\.(\\d+)@`, 'im').exec(
      headers,
    );
    if (id) return Number(id[1]);
    const to = new RegExp(`^p(\\d+)\\.${this.run}@`, 'i').exec(rcpt);
    return to ? Number(to[1]) : NaN;
  }

  private record(headers: string, rcpt: string, bodySha256: string, at: number): void {
    const header = (name: string) => new RegExp(`^${name}:[ \\t]*(\\S+)`, 'im').exec(headers)?.[1];
    const seq = this.seqOf(header, headers, rcpt);
    const kind = header('X-PHI-Gateway-Kind') ?? 'relay';
    const counts = this.byKind.get(kind);
    if (!counts || !Number.isInteger(seq) || seq < 0 || seq >= this.copies.length) {
      this.unknown++;
      return;
    }
    if (kind === 'relay' && header('X-Bench-Body-Sha256') !== bodySha256) this.corrupt++;
    const n = counts[seq]!;
    counts[seq] = n + 1;
    if (kind === this.kinds[0]) this.copies[seq] = n + 1;
    if (n > 0) {
      this.duplicates++;
      return;
    }
    if (this.kinds.some((k) => this.byKind.get(k)![seq] === 0)) return;
    this.arrived[seq] = at;
    this.distinct++;
    if (this.waiter && this.distinct >= this.waiter.n) {
      this.waiter.resolve();
      this.waiter = undefined;
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
