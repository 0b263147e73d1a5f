// Segment files: sealed content that a database row points at, appended to one file after another instead of
// being written into SQLite's pages. A spooled 100 KB message stored in the database was written to the WAL,
// copied again by each checkpoint and freed page by page once delivered; here it is written once, and a whole
// segment is unlinked when no row points into it any more. Appends that arrive together share one fdatasync.
//
// Each record is a sealed blob (sealed-file.ts: its own key, bound to its id), so a row pointing at the wrong
// bytes fails authentication rather than opening someone else's message. The store keeps the pointers
// (sealed_refs) and decides which segments are dead (Store.sweepSegments); this module only knows files.
import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../config/errors.js';
import { syncDir } from './sealed-file.js';

export interface SegmentRef {
  segment: number;
  offset: number;
  length: number;
}

/** A segment takes no more appends once it holds this many bytes (64 MB). */
export const SEGMENT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Nor once it is this old (10 minutes), so that content deleted from a quiet gateway does not wait for 64 MB
 * of new mail before its file goes.
 */
export const SEGMENT_MAX_AGE_MS = 10 * 60 * 1000;

const SUFFIX = '.seg';

/** An append not settled within this long no longer keeps its segment from being removed (1 hour). */
const UNSETTLED_MAX_MS = 60 * 60 * 1000;

export function segmentName(seq: number): string {
  return `${String(seq).padStart(10, '0')}${SUFFIX}`;
}

function parseSegmentName(name: string): number | undefined {
  if (!name.endsWith(SUFFIX)) return undefined;
  const digits = name.slice(0, -SUFFIX.length);
  return /^\d{1,15}$/.test(digits) ? Number(digits) : undefined;
}

/** A segment this process opened for appending. */
class OpenSegment {
  /** Bytes reserved so far (appends take their offset from it before they write). */
  size = 0;
  /** When it stopped taking appends (undefined while it is the current one). */
  retiredAt: number | undefined;
  /** Appended records whose row is not committed yet (or given up: see Segments.settle), and since when. */
  readonly unsettled = new Map<SegmentRef, number>();
  private syncing: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(
    readonly seq: number,
    readonly handle: FileHandle,
    readonly createdAt: number,
  ) {}

  /**
   * Resolves once an fdatasync that started after this call has finished: every write completed before the call
   * is then on disk. Callers arriving while a sync runs share the next one.
   */
  sync(): Promise<void> {
    if (!this.syncing) {
      const run = this.handle.datasync().finally(() => {
        if (this.syncing === run) this.syncing = undefined;
      });
      this.syncing = run;
      return run;
    }
    this.queued ??= this.syncing
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.sync();
      });
    return this.queued;
  }
}

export class Segments {
  private readonly open = new Map<number, OpenSegment>();
  private current: Promise<OpenSegment> | undefined;
  private nextSeq: number;
  /** Segments on disk when this process started: nobody appends to them any more. */
  private readonly inherited: Set<number>;
  private readonly openedAt = Date.now();

  private constructor(
    readonly dir: string,
    existing: number[],
    private readonly maxBytes: number,
    private readonly maxAgeMs: number,
  ) {
    this.inherited = new Set(existing);
    this.nextSeq = existing.reduce((a, b) => Math.max(a, b), 0) + 1;
  }

  static async open(dir: string, opts: { maxBytes?: number; maxAgeMs?: number } = {}): Promise<Segments> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const existing = (await readdir(dir)).map(parseSegmentName).filter((n) => n !== undefined);
    return new Segments(
      dir,
      existing,
      opts.maxBytes ?? SEGMENT_MAX_BYTES,
      opts.maxAgeMs ?? SEGMENT_MAX_AGE_MS,
    );
  }

  fileName(seq: number): string {
    return path.join(this.dir, segmentName(seq));
  }

  /**
   * Appends `data` and resolves with where it is once it is on disk (written and fdatasynced; a new segment's
   * directory entry synced too). A failed append leaves bytes no row points at; the segment is then left for a
   * new one, so nothing written after a failed write or sync depends on it.
   */
  async append(data: Buffer): Promise<SegmentRef> {
    let seg: OpenSegment;
    for (;;) {
      const pending = (this.current ??= this.create());
      seg = await pending;
      const full = seg.size > 0 && seg.size + data.length > this.maxBytes;
      const old = seg.size > 0 && Date.now() - seg.createdAt >= this.maxAgeMs;
      if (!full && !old) break;
      if (this.current === pending) this.retire(seg);
    }
    const offset = seg.size;
    seg.size += data.length;
    const ref: SegmentRef = { segment: seg.seq, offset, length: data.length };
    seg.unsettled.set(ref, Date.now());
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await seg.handle.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
      await seg.sync();
    } catch (err) {
      seg.unsettled.delete(ref);
      if (seg.retiredAt === undefined) this.retire(seg);
      throw err;
    }
    return ref;
  }

  /**
   * The row pointing at `ref` was committed, or will never be: until then its segment is not removed (a sweep
   * in between would find no row and unlink what the row is about to point at). Idempotent.
   */
  settle(ref: SegmentRef): void {
    this.open.get(ref.segment)?.unsettled.delete(ref);
  }

  private retire(seg: OpenSegment, now = Date.now()): void {
    seg.retiredAt = now;
    if (this.current) {
      const was = this.current;
      void was.then(
        (s) => {
          if (s === seg && this.current === was) this.current = undefined;
        },
        () => undefined,
      );
    }
  }

  /** Opens the next segment (exclusively: another process on this directory may have taken a number). */
  private create(): Promise<OpenSegment> {
    const attempt = async (): Promise<OpenSegment> => {
      for (;;) {
        const seq = this.nextSeq++;
        let handle: FileHandle;
        try {
          handle = await open(this.fileName(seq), 'wx+', 0o600);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
          throw err;
        }
        try {
          await syncDir(this.dir);
        } catch (err) {
          await handle.close().catch(() => undefined);
          await unlink(this.fileName(seq)).catch(() => undefined);
          throw err;
        }
        const seg = new OpenSegment(seq, handle, Date.now());
        this.open.set(seq, seg);
        return seg;
      }
    };
    const pending = attempt();
    // A failed open (disk full, read-only) must not stick: the next append tries again.
    pending.catch(() => {
      if (this.current === pending) this.current = undefined;
    });
    return pending;
  }

  /** The segment taking appends now, if one is open. */
  async currentSeq(): Promise<number | undefined> {
    const cur = this.current;
    if (!cur) return undefined;
    return cur.then(
      (s) => s.seq,
      () => undefined,
    );
  }

  /** Stops appending to the current segment when it is older than the age limit (a quiet gateway). */
  async retireIfOld(now = Date.now()): Promise<void> {
    const cur = this.current;
    if (!cur) return;
    const seg = await cur.catch(() => undefined);
    if (seg && this.current === cur && now - seg.createdAt >= this.maxAgeMs) this.retire(seg, now);
  }

  /** Reads one record; a missing file is SPOOL_MISSING, a short one SPOOL_CORRUPT. */
  async read(ref: SegmentRef): Promise<Buffer> {
    const mine = this.open.get(ref.segment);
    let handle: FileHandle;
    try {
      handle = mine?.handle ?? (await open(this.fileName(ref.segment), 'r'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new GatewayError('SPOOL_MISSING', `segment ${ref.segment} is gone`);
      throw err;
    }
    try {
      const out = Buffer.allocUnsafe(ref.length);
      let done = 0;
      while (done < ref.length) {
        const { bytesRead } = await handle.read(out, done, ref.length - done, ref.offset + done);
        if (bytesRead === 0) throw new GatewayError('SPOOL_CORRUPT', `segment ${ref.segment} is torn`);
        done += bytesRead;
      }
      return out;
    } finally {
      if (!mine) await handle.close();
    }
  }

  /**
   * The segments that take no appends and that this process may remove once no row points into them, with
   * how long ago they stopped taking appends: its own retired ones, those it found at start, and those another
   * process (a `master-key rewrap`) left unmodified for `foreignIdleMs`.
   */
  async removable(foreignIdleMs: number, now = Date.now()): Promise<Array<{ seq: number; idleMs: number }>> {
    const current = await this.currentSeq();
    const out: Array<{ seq: number; idleMs: number }> = [];
    for (const name of await readdir(this.dir)) {
      const seq = parseSegmentName(name);
      if (seq === undefined || seq === current) continue;
      const mine = this.open.get(seq);
      if (mine) {
        // A record given up without settle (a bug) holds its segment for an hour at most.
        const held = [...mine.unsettled.values()].some((since) => now - since < UNSETTLED_MAX_MS);
        if (mine.retiredAt !== undefined && !held) out.push({ seq, idleMs: now - mine.retiredAt });
      } else if (this.inherited.has(seq)) {
        out.push({ seq, idleMs: now - this.openedAt });
      } else {
        const st = await stat(path.join(this.dir, name)).catch(() => undefined);
        if (st && now - st.mtimeMs >= foreignIdleMs) out.push({ seq, idleMs: now - st.mtimeMs });
      }
    }
    return out;
  }

  /** Unlinks a segment (its records die with it). */
  async remove(seq: number): Promise<void> {
    const mine = this.open.get(seq);
    this.open.delete(seq);
    this.inherited.delete(seq);
    if (mine) await mine.handle.close().catch(() => undefined);
    await unlink(this.fileName(seq)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async close(): Promise<void> {
    this.current = undefined;
    for (const seg of this.open.values()) await seg.handle.close().catch(() => undefined);
    this.open.clear();
  }
}
