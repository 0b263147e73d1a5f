// A PGP thread: builds PGP/MIME messages (encrypt to the recipients' keys, sign with the organisation's)
// off the main thread, so SMTP intake and delivery never wait behind OpenPGP. Keys arrive armored and are
// parsed once. It answers with the message (whole, or a chunk at a time for a streamed one, paced by the
// main thread) or an error code; it never logs, stores or sends anything.
import { parentPort } from 'node:worker_threads';
import * as openpgp from 'openpgp';
import { errorCode } from '../config/errors.js';
import { buildPgpMime, buildPgpMimeStream } from './pgp-mime.js';

export interface PgpJob {
  type?: 'build';
  id: number;
  raw: Uint8Array;
  /** Armored public keys, one per recipient. */
  recipients: string[];
  /** The organisation's signing key, armored and already decrypted (it never leaves this process). */
  signing: string;
  outerSubject: string;
  innerSubject?: string;
  extraHeaders?: string;
}

/**
 * A streamed build: 'start' (as a job, without `raw`), then the original in 'chunk's, each sent once the one
 * before was acknowledged ('ack'), then 'end' — sent only when the original was read whole and intact — or
 * 'abort'. The result comes back as 'out' chunks, each after the one before was 'taken', then 'done'.
 */
export type PgpStreamRequest =
  | ({ type: 'start' } & Omit<PgpJob, 'type' | 'raw'>)
  | { type: 'chunk'; id: number; data: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'abort'; id: number }
  | { type: 'taken'; id: number };

export type PgpReply =
  | { id: number; out: Uint8Array }
  | { id: number; error: string }
  | { type: 'ack'; id: number }
  | { type: 'out'; id: number; data: Uint8Array }
  | { type: 'done'; id: number };

const port = parentPort!;
/** Parsed keys by their armored text; bounded (keys are few, but re-imports make new texts). */
const publicKeys = new Map<string, Promise<openpgp.PublicKey>>();
const privateKeys = new Map<string, Promise<openpgp.PrivateKey>>();

function cached<T>(map: Map<string, Promise<T>>, text: string, parse: (t: string) => Promise<T>): Promise<T> {
  let hit = map.get(text);
  if (!hit) {
    if (map.size >= 512) map.delete(map.keys().next().value!);
    hit = parse(text);
    hit.catch(() => map.delete(text));
    map.set(text, hit);
  }
  return hit;
}

async function keysOf(job: Omit<PgpJob, 'raw' | 'type'>) {
  const recipientKeys = await Promise.all(
    job.recipients.map(async (armoredKey) => ({
      key: await cached(publicKeys, armoredKey, (t) => openpgp.readKey({ armoredKey: t })),
    })),
  );
  const privateKey = await cached(privateKeys, job.signing, (t) => openpgp.readPrivateKey({ armoredKey: t }));
  return {
    recipientKeys,
    signingKey: { privateKey },
    outerSubject: job.outerSubject,
    ...(job.innerSubject !== undefined ? { innerSubject: job.innerSubject } : {}),
    ...(job.extraHeaders !== undefined ? { extraHeaders: job.extraHeaders } : {}),
  };
}

/** A transferable copy of `bytes` (itself when it owns its whole buffer). */
function own(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** A one-slot channel between the port and a streamed build: one chunk waits at most on either side. */
class Channel<T> {
  private items: T[] = [];
  private waiter?: (v: IteratorResult<T>) => void;
  private failer?: (e: Error) => void;
  private ended = false;
  private failure?: Error;

  put(item: T): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.failer = undefined;
      w({ value: item, done: false });
    } else this.items.push(item);
  }

  end(): void {
    this.ended = true;
    if (this.waiter && this.items.length === 0) this.waiter({ value: undefined, done: true });
  }

  fail(err: Error): void {
    this.failure = err;
    this.failer?.(err);
    this.waiter = this.failer = undefined;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.failure) return Promise.reject(this.failure);
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failer = reject;
    });
  }
}

interface StreamState {
  input: Channel<Uint8Array>;
  /** Resolves when the main thread took the last 'out' chunk. */
  taken?: () => void;
  aborted: boolean;
}

const streams = new Map<number, StreamState>();

async function runStream(id: number, job: Omit<PgpJob, 'raw' | 'type'>, state: StreamState): Promise<void> {
  try {
    const keys = await keysOf(job);
    const source: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          const next = await state.input.next();
          // Taken by OpenPGP: the main thread may send the next chunk.
          if (!next.done) port.postMessage({ type: 'ack', id } satisfies PgpReply);
          return next;
        },
      }),
    };
    for await (const chunk of buildPgpMimeStream({ source, ...keys })) {
      if (state.aborted) return;
      const data = own(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      const taken = new Promise<void>((resolve) => (state.taken = resolve));
      port.postMessage({ type: 'out', id, data } satisfies PgpReply, [data.buffer as ArrayBuffer]);
      await taken;
      if (state.aborted) return;
    }
    port.postMessage({ type: 'done', id } satisfies PgpReply);
  } catch (err) {
    if (!state.aborted) port.postMessage({ id, error: errorCode(err) } satisfies PgpReply);
  } finally {
    streams.delete(id);
  }
}

port.on('message', (msg: PgpJob | PgpStreamRequest) => {
  if (msg.type !== undefined && msg.type !== 'build') {
    const state = streams.get(msg.id);
    if (msg.type === 'start') {
      const fresh: StreamState = { input: new Channel(), aborted: false };
      streams.set(msg.id, fresh);
      void runStream(msg.id, msg, fresh);
    } else if (!state) return;
    else if (msg.type === 'chunk') state.input.put(msg.data);
    else if (msg.type === 'end') state.input.end();
    else if (msg.type === 'taken') state.taken?.();
    else {
      state.aborted = true;
      state.input.fail(new Error('aborted'));
      state.taken?.();
    }
    return;
  }
  const job = msg;
  void (async () => {
    try {
      const out = await buildPgpMime({
        raw: Buffer.from(job.raw.buffer, job.raw.byteOffset, job.raw.byteLength),
        ...(await keysOf(job)),
      });
      const bytes = own(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      port.postMessage({ id: job.id, out: bytes } satisfies PgpReply, [bytes.buffer as ArrayBuffer]);
    } catch (err) {
      // A code only: library messages may quote the input they choked on.
      port.postMessage({ id: job.id, error: errorCode(err) } satisfies PgpReply);
    }
  })();
});
