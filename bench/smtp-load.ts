// The load generator: a minimal SMTP client on raw sockets, no pipelining, several connections pulling from
// one shared list. It records per message when MAIL FROM went out and when the 250 after DATA came back.
// It never retries: a refused message is a failure the benchmark reports.
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { BenchMessage } from './message.js';

interface Reply {
  code: number;
  text: string;
}

export interface LoadFailure {
  seq: number;
  step: string;
  reply: string;
}

export interface LoadResult {
  /** performance.now() when MAIL FROM was written, per seq (NaN if never sent). */
  started: Float64Array;
  /** performance.now() when the 250 after DATA arrived, per seq (NaN if not accepted). */
  accepted: Float64Array;
  failures: LoadFailure[];
  connectionErrors: string[];
}

/** Collects reply lines from a socket into whole SMTP replies (multi-line replies use "250-"). */
class ReplyReader {
  private partial = '';
  private lines: string[] = [];
  private readonly ready: Reply[] = [];
  private readonly waiters: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private failure?: Error;

  feed(chunk: string): void {
    this.partial += chunk;
    let end: number;
    while ((end = this.partial.indexOf('\r\n')) !== -1) {
      const line = this.partial.slice(0, end);
      this.partial = this.partial.slice(end + 2);
      this.lines.push(line);
      if (line.charAt(3) === '-') continue;
      const reply = { code: Number(line.slice(0, 3)) || 0, text: this.lines.join(' | ') };
      this.lines = [];
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(reply);
      else this.ready.push(reply);
    }
  }

  fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  next(): Promise<Reply> {
    const reply = this.ready.shift();
    if (reply) return Promise.resolve(reply);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

class SmtpClient {
  private readonly reader = new ReplyReader();

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.reader.feed(chunk));
    socket.on('error', (err) => this.reader.fail(err));
    socket.on('close', () => this.reader.fail(new Error('connection closed')));
  }

  static open(host: string, port: number): Promise<SmtpClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new SmtpClient(socket));
      });
    });
  }

  read(): Promise<Reply> {
    return this.reader.next();
  }

  send(data: string | Buffer): Promise<Reply> {
    this.socket.write(data);
    return this.reader.next();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function expect(reply: Reply, code: number, step: string): void {
  if (reply.code !== code)
    throw Object.assign(new Error(`${step}: ${reply.text}`), { step, reply: reply.text, smtp: true });
}

export interface LoadOptions {
  host: string;
  port: number;
  connections: number;
  messages: readonly BenchMessage[];
  signal: AbortSignal;
}

/** Sends every message once over `connections` parallel connections; resolves when all are done or failed. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const { messages, signal } = opts;
  const result: LoadResult = {
    started: new Float64Array(messages.length).fill(NaN),
    accepted: new Float64Array(messages.length).fill(NaN),
    failures: [],
    connectionErrors: [],
  };
  const clients = new Set<SmtpClient>();
  const onAbort = () => {
    for (const c of clients) c.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  let nextIndex = 0;

  const worker = async (n: number): Promise<void> => {
    let client: SmtpClient | undefined;
    let current: BenchMessage | undefined;
    try {
      client = await SmtpClient.open(opts.host, opts.port);
      clients.add(client);
      expect(await client.read(), 220, 'greeting');
      expect(await client.send(`EHLO bench-${n}.practice.example\r\n`), 250, 'EHLO');
      let afterFailure = false;
      while (!signal.aborted && nextIndex < messages.length) {
        const msg = messages[nextIndex++]!;
        current = msg;
        if (afterFailure) {
          expect(await client.send('RSET\r\n'), 250, 'RSET');
          afterFailure = false;
        }
        result.started[msg.seq] = performance.now();
        try {
          expect(await client.send(`MAIL FROM:<${msg.mailFrom}>\r\n`), 250, 'MAIL');
          expect(await client.send(`RCPT TO:<${msg.rcptTo}>\r\n`), 250, 'RCPT');
          expect(await client.send('DATA\r\n'), 354, 'DATA');
          expect(await client.send(msg.wire), 250, 'end of DATA');
          result.accepted[msg.seq] = performance.now();
        } catch (err) {
          const e = err as Error & { smtp?: boolean; step?: string; reply?: string };
          if (!e.smtp) throw err;
          // A refusal fails this message only; the connection goes on with the next one.
          result.failures.push({ seq: msg.seq, step: e.step ?? '?', reply: e.reply ?? '' });
          afterFailure = true;
        }
        current = undefined;
      }
      if (!signal.aborted) await client.send('QUIT\r\n').catch(() => undefined);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      result.connectionErrors.push(`connection ${n}: ${message}`);
      if (current) result.failures.push({ seq: current.seq, step: 'connection', reply: message });
    } finally {
      if (client) {
        client.destroy();
        clients.delete(client);
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: opts.connections }, (_, n) => worker(n)));
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  return result;
}
