// Runs PGP/MIME building in a worker thread (pgp-worker.ts). Fails closed: an error, a dead thread or a
// closed pool makes the build fail (the message is deferred), never pass in clear. The thread starts on
// first use and is replaced after it dies; keys are sent armored and parsed once there. Large mail streams
// through it both ways, one chunk in flight each way, so neither thread ever holds it whole.
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type * as openpgp from 'openpgp';
import { GatewayError } from '../config/errors.js';
import type { PgpMimeInput, PgpMimeStreamInput } from './pgp-mime.js';
import type { PgpJob, PgpReply, PgpStreamRequest } from './pgp-worker.js';

interface Pending {
  resolve: (out: Buffer) => void;
  reject: (err: Error) => void;
}

/** A streamed build as the main thread sees it: what the thread said, in order, and how it ended. */
class StreamEvents {
  private readonly items: Buffer[] = [];
  private done = false;
  private failure?: Error;
  private wake?: () => void;
  /** The thread took the last chunk of the original. */
  acked?: () => void;
  /** Settles (rejects) when the build failed: a pending wait for an acknowledgement gives up then. */
  readonly failed: Promise<never>;
  private rejectFailed!: (err: Error) => void;

  constructor() {
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => undefined);
  }

  get settled(): boolean {
    return this.done || this.failure !== undefined;
  }

  out(data: Buffer): void {
    this.items.push(data);
    this.wake?.();
  }

  finish(): void {
    this.done = true;
    this.wake?.();
  }

  /** The first failure wins: a source error reported before the thread's reaction to it stays the cause. */
  fail(err: Error): void {
    if (this.settled) return;
    this.failure = err;
    this.rejectFailed(err);
    this.wake?.();
  }

  /** The next output chunk, null at the end; throws the failure. */
  async next(): Promise<Buffer | null> {
    for (;;) {
      if (this.failure) throw this.failure;
      const item = this.items.shift();
      if (item) return item;
      if (this.done) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/**
 * The thread's young generation, kept small. The thread holds little (9 MB of JavaScript heap) but goes through
 * about eleven times each message's size in buffers (OpenPGP's copies, the armour), and V8 counts that external
 * memory against an old-generation limit sized from the small heap; with the default young generation (16 MB
 * semi-spaces, rarely full here) the dead buffers were only ever freed by full collections: one every ten
 * messages at 100 KB, most of their marking on V8's helper threads. A small young generation is scavenged often,
 * which frees most of them cheaply: full collections ~100 -> ~10 per 1,000 builds one at a time, ~90 -> ~50 in
 * bench:peers' PGP row (10 connections), where the PGP thread and V8's helpers took 3.8-4.1 ms of CPU per message
 * against 4.5-6.3 before.
 */
const YOUNG_GENERATION_MB = 4;

export class PgpThread {
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, StreamEvents>();
  private nextId = 1;
  private closed = false;
  /** Armored text of each key object, made once per key. */
  private readonly armored = new WeakMap<object, string>();

  private armor(key: openpgp.PublicKey | openpgp.PrivateKey): string {
    let text = this.armored.get(key);
    if (text === undefined) {
      text = key.armor();
      this.armored.set(key, text);
    }
    return text;
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./pgp-worker.js', import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
    });
    // An idle thread never keeps the process alive; pending builds hold their own promises.
    worker.unref();
    const lost = (why: string) => {
      if (this.worker === worker) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new GatewayError('PGP_FAILED', `PGP thread ${why}`));
      this.pending.clear();
      for (const s of this.streams.values()) s.fail(new GatewayError('PGP_FAILED', `PGP thread ${why}`));
      this.streams.clear();
    };
    worker.on('message', (msg: PgpReply) => {
      const stream = this.streams.get(msg.id);
      if (stream) {
        if ('error' in msg) stream.fail(new GatewayError('PGP_FAILED', `OpenPGP: ${msg.error}`));
        else if (!('type' in msg))
          stream.fail(new GatewayError('PGP_FAILED', 'PGP thread: unexpected reply'));
        else if (msg.type === 'ack') stream.acked?.();
        else if (msg.type === 'out')
          stream.out(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
        else stream.finish();
        return;
      }
      if ('type' in msg) return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if ('error' in msg) p.reject(new GatewayError('PGP_FAILED', `OpenPGP: ${msg.error}`));
      else p.resolve(Buffer.from(msg.out.buffer, msg.out.byteOffset, msg.out.byteLength));
    });
    worker.on('error', () => lost('failed'));
    worker.on('exit', (code) => lost(`exited (${code})`));
    this.worker = worker;
    return worker;
  }

  build(input: PgpMimeInput): Promise<Buffer> {
    if (this.closed) return Promise.reject(new GatewayError('PGP_FAILED', 'PGP thread closed'));
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const raw = new Uint8Array(input.raw);
      const job: PgpJob = {
        id,
        raw,
        recipients: input.recipientKeys.map((k) => this.armor(k.key)),
        signing: this.armor(input.signingKey.privateKey),
        outerSubject: input.outerSubject,
        ...(input.innerSubject !== undefined ? { innerSubject: input.innerSubject } : {}),
        ...(input.extraHeaders !== undefined ? { extraHeaders: input.extraHeaders } : {}),
      };
      worker.postMessage(job, [raw.buffer]);
    });
  }

  /**
   * buildPgpMime in the thread for a message read as a stream: `source` goes to the thread a chunk at a time
   * (each after the thread took the one before) and the PGP/MIME result comes back as it is made (each chunk
   * after the one before was read from the returned stream), so neither side ever holds the message whole.
   * The thread is told the original ended only once `source` ended without error; any failure (the source's
   * own error as it is, PGP_FAILED for a key, OpenPGP, a thread that dies or is closed, `signal`) fails the
   * returned stream before its end, so a consumer that keeps only what ended cleanly keeps nothing partial.
   */
  buildStream(input: PgpMimeStreamInput, signal?: AbortSignal): Readable {
    return Readable.from(this.streamBuild(input, signal), { objectMode: false });
  }

  private async *streamBuild(input: PgpMimeStreamInput, signal?: AbortSignal): AsyncGenerator<Buffer> {
    if (this.closed) throw new GatewayError('PGP_FAILED', 'PGP thread closed');
    signal?.throwIfAborted();
    const worker = this.thread();
    const id = this.nextId++;
    const events = new StreamEvents();
    this.streams.set(id, events);
    const post = (msg: PgpStreamRequest, transfer?: ArrayBuffer[]) => {
      if (this.worker === worker && !this.closed) worker.postMessage(msg, transfer);
    };
    const onAbort = () =>
      events.fail(
        signal?.reason instanceof Error ? signal.reason : new GatewayError('PGP_FAILED', 'aborted'),
      );
    signal?.addEventListener('abort', onAbort, { once: true });
    post({
      type: 'start',
      id,
      recipients: input.recipientKeys.map((k) => this.armor(k.key)),
      signing: this.armor(input.signingKey.privateKey),
      outerSubject: input.outerSubject,
      ...(input.innerSubject !== undefined ? { innerSubject: input.innerSubject } : {}),
      ...(input.extraHeaders !== undefined ? { extraHeaders: input.extraHeaders } : {}),
    });
    const pump = (async () => {
      for await (const chunk of input.source) {
        if (events.settled) return;
        const taken = new Promise<void>((resolve) => (events.acked = resolve));
        const copy = new Uint8Array(chunk); // its own buffer, moved to the thread
        post({ type: 'chunk', id, data: copy }, [copy.buffer]);
        await Promise.race([taken, events.failed]);
      }
      if (!events.settled) post({ type: 'end', id });
    })();
    // A source that fails (a spool failing its tag) fails the build with its own error.
    pump.catch((err: unknown) => events.fail(err instanceof Error ? err : new Error(String(err))));
    let complete = false;
    try {
      for (;;) {
        const out = await events.next();
        if (out === null) break;
        yield out;
        post({ type: 'taken', id });
      }
      await pump; // 'done' comes only after 'end', which the pump sends only after the source ended cleanly
      complete = true;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.streams.delete(id);
      if (!complete) {
        events.fail(new GatewayError('PGP_FAILED', 'PGP stream abandoned'));
        post({ type: 'abort', id });
        await pump.catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
    for (const p of this.pending.values()) p.reject(new GatewayError('PGP_FAILED', 'PGP thread closed'));
    this.pending.clear();
    for (const s of this.streams.values()) s.fail(new GatewayError('PGP_FAILED', 'PGP thread closed'));
    this.streams.clear();
  }
}
