// Scan threads: parse + DLP scan of each message in worker threads, so the main thread (SMTP intake, the
// queue, delivery) keeps one core to itself. Fails closed: a thread that errors, dies or overruns makes
// the scan fail (the message is deferred and retried), never pass. It logs ids and codes only.
import { Worker } from 'node:worker_threads';
import type { ParsedMail } from 'mailparser';
import { GatewayError } from '../config/errors.js';
import type { Logger } from '../config/log.js';
import type { Verdict } from '../dlp/types.js';
import type { RulesSource } from './rules.js';
import type { ScanReply, ScanRequest, ScanWorkerData } from './scan-worker.js';
import type { ScanResult, Scanner } from './scan.js';

interface Pending {
  resolve: (v: ScanResult) => void;
  reject: (e: Error) => void;
}

/** After a scan's stage timed out, how long its thread may keep working on it before it is replaced. */
const OVERRUN_GRACE_MS = 5_000;

class ScanThread {
  private worker?: Worker;
  private readonly pending = new Map<number, Pending>();
  private ready?: Promise<void>;
  private closed = false;
  private restarts = 0;

  constructor(
    private readonly rules: RulesSource,
    private readonly log: Logger,
    readonly index: number,
  ) {}

  get load(): number {
    return this.pending.size;
  }

  start(): Promise<void> {
    const worker = new Worker(new URL('./scan-worker.js', import.meta.url), {
      workerData: { rulesText: this.rules.text } satisfies ScanWorkerData,
    });
    this.worker = worker;
    this.ready = new Promise<void>((resolve, reject) => {
      const onReply = (msg: ScanReply) => {
        if (msg.type === 'ready') {
          this.restarts = 0;
          resolve();
          return;
        }
        if (msg.type === 'ack') {
          const ack = this.acks.get(msg.id);
          this.acks.delete(msg.id);
          ack?.resolve();
          return;
        }
        const p = this.pending.get(msg.id);
        if (!p) return; // answered after its stage gave up on it
        this.pending.delete(msg.id);
        if ('error' in msg) p.reject(new GatewayError('STAGE_FAILED', `scan thread: ${msg.error}`));
        else p.resolve(msg.result);
      };
      worker.on('message', onReply);
      worker.once('error', (err) => {
        this.log.error({ evt: 'SCAN_THREAD_FAILED', thread: this.index, err }, 'scan thread failed');
        reject(err);
      });
      worker.once('exit', (code) => {
        reject(new Error(`scan thread exited (${code})`));
        if (this.worker === worker) this.lost(`exited (${code})`);
      });
    });
    return this.ready;
  }

  /** The thread is gone: every scan in it fails (their messages are deferred), and a new thread starts. */
  private lost(why: string): void {
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(new GatewayError('STAGE_FAILED', `scan thread ${why}`));
    this.pending.clear();
    for (const a of this.acks.values()) a.reject(new GatewayError('STAGE_FAILED', `scan thread ${why}`));
    this.acks.clear();
    if (this.closed) return;
    this.restarts++;
    const delay = Math.min(30_000, 100 * 2 ** Math.min(this.restarts, 8));
    this.log.warn(
      { evt: 'SCAN_THREAD_RESTART', thread: this.index, delayMs: delay },
      'scan thread restarting',
    );
    setTimeout(() => {
      if (!this.closed) this.start().catch(() => undefined);
    }, delay).unref();
  }

  post(msg: ScanRequest): void {
    this.worker?.postMessage(msg);
  }

  private nextId = 1;

  async scan(raw: Buffer, signal?: AbortSignal): Promise<ScanResult> {
    if (!this.worker || !this.ready) throw new GatewayError('STAGE_FAILED', 'scan thread not running');
    await this.ready;
    const worker = this.worker;
    const id = this.nextId++;
    return new Promise<ScanResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (raw.buffer instanceof SharedArrayBuffer) {
        // A large message is read from the spool into shared memory: the thread reads those very bytes, no
        // copy. Neither side writes to it.
        const shared = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
        worker.postMessage({ type: 'scan', id, raw: shared } satisfies ScanRequest);
      } else {
        // A copy, moved (not cloned again) to the thread: the caller keeps its buffer for the pipeline.
        const copy = new Uint8Array(raw);
        worker.postMessage({ type: 'scan', id, raw: copy } satisfies ScanRequest, [copy.buffer]);
      }
      this.watchOverrun(id, worker, signal);
    });
  }

  /** Chunks of streamed scans waiting for the thread to take them (one chunk in flight per scan). */
  private readonly acks = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  /**
   * Streams `source` into the thread's parser a chunk at a time (each chunk waits until the thread has taken
   * the one before, so a large message is never queued whole in the thread). The thread answers only after
   * 'end', which is sent only when `source` ended without error; a failing source aborts the scan.
   */
  async scanStream(source: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<ScanResult> {
    if (!this.worker || !this.ready) throw new GatewayError('STAGE_FAILED', 'scan thread not running');
    await this.ready;
    const worker = this.worker;
    const id = this.nextId++;
    const result = new Promise<ScanResult>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    // Rejections are taken up below; without this a thread dying mid-stream would be an unhandled one.
    result.catch(() => undefined);
    this.watchOverrun(id, worker, signal);
    worker.postMessage({ type: 'scan-start', id } satisfies ScanRequest);
    try {
      for await (const chunk of source) {
        signal?.throwIfAborted();
        if (!this.pending.has(id)) break; // the thread failed the scan (or died): `result` says why
        const taken = new Promise<void>((resolve, reject) => this.acks.set(id, { resolve, reject }));
        const copy = new Uint8Array(chunk);
        worker.postMessage({ type: 'chunk', id, data: copy } satisfies ScanRequest, [copy.buffer]);
        await Promise.race([taken, result]);
      }
    } catch (err) {
      this.acks.delete(id);
      if (this.pending.delete(id)) worker.postMessage({ type: 'abort', id } satisfies ScanRequest);
      throw err;
    }
    this.acks.delete(id);
    worker.postMessage({ type: 'end', id } satisfies ScanRequest);
    return result;
  }

  /**
   * After the stage gave up (timeout), a thread still busy with the scan a grace period later is replaced, so
   * one pathological message cannot hold the thread.
   */
  private watchOverrun(id: number, worker: Worker, signal?: AbortSignal): void {
    signal?.addEventListener(
      'abort',
      () => {
        setTimeout(() => {
          if (this.pending.has(id) && this.worker === worker) {
            this.log.warn({ evt: 'SCAN_THREAD_OVERRUN', thread: this.index }, 'scan thread replaced');
            void worker.terminate();
          }
        }, OVERRUN_GRACE_MS).unref();
      },
      { once: true },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
    for (const p of this.pending.values()) p.reject(new GatewayError('STAGE_FAILED', 'scan thread closed'));
    this.pending.clear();
    for (const a of this.acks.values()) a.reject(new GatewayError('STAGE_FAILED', 'scan thread closed'));
    this.acks.clear();
  }
}

export class ScanPool implements Scanner {
  private readonly threads: ScanThread[];

  constructor(
    private readonly rules: RulesSource,
    size: number,
    log: Logger,
  ) {
    this.threads = Array.from({ length: size }, (_, i) => new ScanThread(rules, log, i));
    // Every thread scans with the rules in force on the main thread, from the moment they change.
    rules.onChange((text) => {
      for (const t of this.threads) t.post({ type: 'rules', text });
    });
  }

  async start(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.start()));
  }

  /** Scans `raw` in the least busy thread; without `raw` (callers outside the pipeline) it cannot. */
  async scan(_parsed: ParsedMail, signal?: AbortSignal, raw?: Buffer): Promise<Verdict> {
    if (!raw) throw new GatewayError('STAGE_FAILED', 'scan thread needs the raw message');
    return (await this.scanRaw(raw, signal)).verdict;
  }

  /** Parses and scans `raw` in the least busy thread; also returns the header fields routing reads. */
  scanRaw(raw: Buffer, signal?: AbortSignal): Promise<ScanResult> {
    return this.leastBusy().scan(raw, signal);
  }

  /** Parses and scans a message streamed from the spool (see ScanThread.scanStream). */
  scanStream(source: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<ScanResult> {
    return this.leastBusy().scanStream(source, signal);
  }

  private leastBusy(): ScanThread {
    let best = this.threads[0]!;
    for (const t of this.threads) if (t.load < best.load) best = t;
    return best;
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}
