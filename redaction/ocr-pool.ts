// A pool of tesseract.js OCR workers (worker threads, so OCR never blocks the event loop), reused across
// images and recycled. It must never fetch anything: core, worker script and language data are local files.
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { createWorker, type Worker as TesseractWorker } from 'tesseract.js';
import { GatewayError } from '../config/errors.js';

const require = createRequire(import.meta.url);

/**
 * The English data shipped in @tesseract.js-data/eng: '4.0.0' is the standard tessdata (legacy + fast
 * integer LSTM model), '4.0.0_best_int' the integerised "best" LSTM model (slower).
 */
export function localLangPath(variant: '4.0.0' | '4.0.0_best_int' = '4.0.0'): string {
  return path.join(path.dirname(require.resolve('@tesseract.js-data/eng/package.json')), variant);
}

/** One recognised word; coordinates in pixels of the image given to `recognize`. */
export interface OcrWord {
  text: string;
  /** 0–100. Low-confidence words are kept: a word OCR is unsure of can still be PHI. */
  confidence: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** Index of the text line the word belongs to (lines are numbered in reading order). */
  line: number;
}

export interface OcrPoolOptions {
  /** Number of workers; 0 or undefined: one per core. */
  size?: number;
  /** A worker is terminated and replaced after this many jobs (tesseract's WASM heap only grows). Default 40. */
  recycleAfter?: number;
  /** A job running longer than this kills its worker, which is replaced. Milliseconds; default 60 000. */
  jobTimeoutMs?: number;
  /** Directory of eng.traineddata.gz; default the local @tesseract.js-data/eng 4.0.0 data. */
  langPath?: string;
  /** Where the unpacked language data is cached; default a private temporary directory removed on close. */
  cachePath?: string;
}

export interface RecognizeOptions {
  /** Overrides the pool's job timeout for this job (milliseconds). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Slot {
  worker: Promise<TesseractWorker> | null;
  jobs: number;
  busy: boolean;
}

interface Job {
  image: Buffer;
  opts: RecognizeOptions;
  resolve: (words: OcrWord[]) => void;
  reject: (err: unknown) => void;
}

interface TsWord {
  text: string;
  confidence: number;
  bbox: { x0: number; y0: number; x1: number; y1: number };
}
interface TsBlock {
  paragraphs: Array<{ lines: Array<{ words: TsWord[] }> }>;
}

export class OcrPool {
  readonly size: number;
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private readonly recycleAfter: number;
  private readonly jobTimeoutMs: number;
  private readonly langPath: string;
  private readonly cachePath: string;
  private readonly ownCache: boolean;
  private closed = false;
  /** Workers started, replaced after a failure or timeout, and recycled: for tests and benchmarks. */
  readonly stats = { started: 0, replaced: 0, recycled: 0, jobs: 0 };

  constructor(opts: OcrPoolOptions = {}) {
    this.size = opts.size && opts.size > 0 ? opts.size : availableParallelism();
    this.recycleAfter = opts.recycleAfter ?? 40;
    this.jobTimeoutMs = opts.jobTimeoutMs ?? 60_000;
    this.langPath = opts.langPath ?? localLangPath();
    this.ownCache = opts.cachePath === undefined;
    this.cachePath = opts.cachePath ?? mkdtempSync(path.join(tmpdir(), 'phigw-ocr-'));
    this.slots = Array.from({ length: this.size }, () => ({ worker: null, jobs: 0, busy: false }));
  }

  /** Recognises the words of one image (PNG, JPEG, BMP or binary PGM bytes). Rejects with a GatewayError (OCR_…). */
  recognize(image: Buffer, opts: RecognizeOptions = {}): Promise<OcrWord[]> {
    if (this.closed) return Promise.reject(new GatewayError('OCR_CLOSED', 'the OCR pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ image, opts, resolve, reject });
      this.pump();
    });
  }

  /** Starts every worker now instead of on first use (so the first image does not pay for start-up). */
  async warmUp(): Promise<void> {
    await Promise.all(this.slots.map((s) => (s.worker ??= this.startWorker())));
  }

  /** Terminates all workers; queued jobs fail with OCR_CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0))
      job.reject(new GatewayError('OCR_CLOSED', 'the OCR pool is closed'));
    await Promise.all(this.slots.map((s) => this.dropWorker(s)));
    if (this.ownCache) rmSync(this.cachePath, { recursive: true, force: true });
  }

  private async startWorker(): Promise<TesseractWorker> {
    this.stats.started++;
    const worker = await createWorker('eng', 1 /* OEM.LSTM_ONLY */, {
      // All local: the node worker script and tesseract.js-core are required from node_modules; without a
      // langPath tesseract.js would fetch the language data from a CDN.
      langPath: this.langPath,
      cachePath: this.cachePath,
      gzip: true,
      // Without a handler tesseract.js throws a failed job's error from its message listener (uncaught).
      errorHandler: () => undefined,
      logger: () => undefined,
    });
    await worker.setParameters({
      // Our PNGs carry no resolution; without this tesseract warns on stderr for every image and guesses.
      user_defined_dpi: '300',
      // Sauvola (local) binarisation. The default global Otsu finds no text at all on a photo of an insurance
      // card on a wooden table; Leptonica's adaptive Otsu ('1') reads the card but turns faint paper noise on a
      // flat 2500×2300 scan into ~1000 speck "words": 110 s instead of 1.5 s per pass, and the text is lost
      // (measured with native tesseract 5.3 and here). Sauvola reads both at global-Otsu speed.
      thresholding_method: '2',
    });
    return worker;
  }

  private async dropWorker(slot: Slot): Promise<void> {
    const w = slot.worker;
    slot.worker = null;
    slot.jobs = 0;
    if (!w) return;
    try {
      await (await w).terminate();
    } catch {
      // A worker that never started or already died has nothing to terminate.
    }
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.busy) continue;
      const job = this.queue.shift()!;
      slot.busy = true;
      void this.run(slot, job).finally(() => {
        slot.busy = false;
        if (!this.closed) this.pump();
      });
    }
  }

  private async run(slot: Slot, job: Job): Promise<void> {
    const timeoutMs = Math.min(job.opts.timeoutMs ?? Infinity, this.jobTimeoutMs);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    let onThreadError: ((err: unknown) => void) | undefined;
    let thread: import('node:worker_threads').Worker | undefined;
    try {
      if (job.opts.signal?.aborted) throw new GatewayError('OCR_TIMEOUT', 'OCR job aborted');
      const failure = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new GatewayError('OCR_TIMEOUT', `OCR took longer than ${timeoutMs} ms`)),
          timeoutMs,
        );
        onAbort = () => reject(new GatewayError('OCR_TIMEOUT', 'OCR job aborted'));
        job.opts.signal?.addEventListener('abort', onAbort, { once: true });
        onThreadError = (err) =>
          reject(new GatewayError('OCR_FAILED', 'the OCR worker crashed', { cause: err }));
      });
      const starting = (slot.worker ??= this.startWorker());
      const worker = await Promise.race([starting, failure]).catch((err: unknown) => {
        if (err instanceof GatewayError) throw err;
        throw new GatewayError('OCR_FAILED', 'the OCR worker could not start', { cause: err });
      });
      // tesseract.js does not listen for the thread's own error/exit events; a crash would hang the job.
      thread = (worker as unknown as { worker: import('node:worker_threads').Worker }).worker;
      thread.on('error', onThreadError!);
      thread.on('exit', onThreadError!);
      const result = await Promise.race([
        worker.recognize(job.image, {}, { blocks: true, text: false }),
        failure,
      ]).catch((err: unknown) => {
        if (err instanceof GatewayError) throw err;
        throw new GatewayError('OCR_FAILED', 'OCR failed on this image', { cause: err });
      });
      slot.jobs++;
      this.stats.jobs++;
      job.resolve(toWords((result.data as { blocks?: TsBlock[] | null }).blocks ?? []));
      if (slot.jobs >= this.recycleAfter) {
        this.stats.recycled++;
        thread.off('exit', onThreadError!);
        await this.dropWorker(slot);
      }
    } catch (err) {
      // Whatever went wrong, this worker is not trusted again: kill it; the next job starts a fresh one.
      if (thread && onThreadError) {
        thread.off('exit', onThreadError);
        thread.off('error', onThreadError);
        thread.on('error', () => undefined);
      }
      if (slot.worker && !this.closed) this.stats.replaced++;
      await this.dropWorker(slot);
      job.reject(err);
    } finally {
      clearTimeout(timer);
      if (onAbort) job.opts.signal?.removeEventListener('abort', onAbort);
      if (thread && onThreadError) {
        thread.off('error', onThreadError);
        thread.off('exit', onThreadError);
      }
    }
  }
}

function toWords(blocks: readonly TsBlock[]): OcrWord[] {
  const words: OcrWord[] = [];
  let line = 0;
  for (const b of blocks) {
    for (const p of b.paragraphs) {
      for (const l of p.lines) {
        for (const w of l.words) {
          const text = w.text.trim();
          if (text === '') continue;
          words.push({
            text,
            confidence: w.confidence,
            x0: w.bbox.x0,
            y0: w.bbox.y0,
            x1: w.bbox.x1,
            y1: w.bbox.y1,
            line,
          });
        }
        line++;
      }
    }
  }
  return words;
}
