// The store: the database (knex; SQLite in WAL mode by default), the sealed-file directories and the
// master key. All writes go through `write`, which group-commits concurrent callers into one transaction,
// so durability (fsync per commit) costs one sync per batch rather than one per message.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { GatewayError } from '../config/errors.js';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import type { CheckpointReply, CheckpointRequest, CheckpointWorkerData } from './checkpoint-worker.js';
import { loadMasterKeys } from './master-key.js';
import {
  clientConfig,
  execute,
  insertRow,
  registerSqliteConnection,
  selectRows,
  type SqliteConnection,
} from './fast-sql.js';
import { migrationSource } from './migrations.js';
import {
  openSealedReader,
  openSealedWith,
  readSealed,
  removeSealed,
  sealBuffer,
  syncDir,
  writeSealed,
  type SealedReader,
  type SealedWriteResult,
} from './sealed-file.js';
import { Readable } from 'node:stream';

export type Trx = Knex.Transaction;

export type SealedArea = 'spool' | 'blobs' | 'outbox';

interface PendingWrite {
  fn: (trx: Trx) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  syncDirs: readonly string[];
  durable: boolean;
}

const MAX_BATCH = 256;

/** Sealed content up to this size is kept in the database with its row (see sealForRow). */
export const INLINE_MAX = 256 * 1024;

/**
 * WAL pages between automatic checkpoints (SQLite's default is 1000, 4 MB): about 40 MB. Measured alone (100 KB
 * sealed blobs inserted in batches of 5 and deleted 40 messages later): 0.17-0.19 ms of CPU per message at 1000
 * pages, 0.13-0.14 at 10,000. The WAL file stays at the size it reached (it is reused, not truncated).
 */
export const WAL_CHECKPOINT_PAGES = 10_000;

/**
 * With the checkpointer thread (Store.startCheckpointer), the store's own connection checkpoints only if the WAL
 * grows this long anyway (the thread is behind or gone): a bound, not the usual way.
 */
export const WAL_BACKSTOP_PAGES = 4 * WAL_CHECKPOINT_PAGES;

/** Time between the checkpointer thread's passive checkpoints. */
export const CHECKPOINT_INTERVAL_MS = 200;

/** The longest the store holds its writers for the checkpointer thread (it answers in milliseconds). */
const CHECKPOINT_HOLD_MAX_MS = 2000;

/** The areas whose content may live in the database (spooled messages, and what the act stage builds). */
const INLINE_AREAS: ReadonlySet<SealedArea> = new Set(['spool', 'blobs']);

/**
 * In a data directory shared by nodes, a temp file or a spool file without a row is removed at start-up only
 * when older than this: younger ones may be another node's SMTP transaction in progress (a sealed file is
 * written during DATA and its row committed right after). 1 hour.
 */
export const SHARED_LEFTOVER_AGE_MS = 60 * 60 * 1000;

export class Store {
  private pending: PendingWrite[] = [];
  private writing = false;
  private closed = false;
  private syncMode: 'FULL' | 'NORMAL' | undefined;
  private walHandle?: Promise<FileHandle>;
  /** The WAL's checkpointer thread, when started (SQLite). */
  private checkpointer?: Worker;
  /** Set while the checkpointer thread finishes a checkpoint: no transaction begins until it resolves. */
  private writeHold?: { held: Promise<void>; release: () => void };
  /** A batch is being committed (between BEGIN and COMMIT, or its writers still running). */
  private batchRunning = false;
  private afterBatch?: () => void;

  private constructor(
    readonly db: Knex,
    readonly dataDir: string,
    /** Current master key first, then keys retired by a rotation (they only ever open, never seal). */
    private masterKeys: Buffer[],
    readonly engine: 'sqlite' | 'postgres',
    private readonly env: NodeJS.ProcessEnv,
    /** This node's name on the leases it takes (unique per node sharing a PostgreSQL database). */
    readonly nodeId: string,
  ) {}

  /** close() was called: writes are refused from now on. */
  get isClosed(): boolean {
    return this.closed;
  }

  private get masterKey(): Buffer {
    return this.masterKeys[0]!;
  }

  /**
   * Reads the master keys again (after `master-key rotate` by another process; SIGHUP): new files are
   * sealed with the new current key, old ones still open with the retired keys until they are re-wrapped.
   */
  async reloadKeys(): Promise<void> {
    this.masterKeys = await loadMasterKeys(this.dataDir, this.env);
  }

  /** Number of master keys this store opens data with (1 unless a rotation is in progress). */
  get masterKeyCount(): number {
    return this.masterKeys.length;
  }

  static async open(
    config: Pick<ResolvedConfig, 'dataDir' | 'databaseUrl'> & Partial<Pick<ResolvedConfig, 'nodeId'>>,
    env = process.env,
  ): Promise<Store> {
    const dataDir = config.dataDir;
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    for (const area of ['spool', 'blobs', 'outbox'] satisfies SealedArea[]) {
      await mkdir(path.join(dataDir, area), { recursive: true, mode: 0o700 });
    }
    const masterKeys = await loadMasterKeys(dataDir, env);
    const postgres = !!config.databaseUrl && /^postgres(ql)?:\/\//.test(config.databaseUrl);
    if (config.databaseUrl && !postgres) throw new Error('databaseUrl must be a postgres:// URL');
    if (!postgres) {
      // Create the database file private before SQLite opens it; its WAL and SHM files inherit the mode.
      const handle = await open(path.join(dataDir, 'phi-gateway.sqlite'), 'a', 0o600);
      await handle.chmod(0o600);
      await handle.close();
    }
    if (postgres) useNumbersForPgBigints();
    const sqlite: { conn?: SqliteConnection } = {};
    const db = postgres
      ? knexFactory({ client: 'pg', connection: config.databaseUrl, pool: { min: 1, max: 10 } })
      : knexFactory({
          // better-sqlite3 runs each statement synchronously in microseconds; the async sqlite3 driver
          // made every statement a thread-pool round trip, which capped the gateway far below target.
          client: 'better-sqlite3',
          connection: { filename: path.join(dataDir, 'phi-gateway.sqlite') },
          useNullAsDefault: true,
          pool: {
            min: 1,
            max: 1,
            afterCreate: (conn: SqliteConn, done: (err: Error | null, conn: SqliteConn) => void) => {
              // WAL for concurrent readers; synchronous=FULL so a commit is on disk when it returns.
              // A checkpoint every WAL_CHECKPOINT_PAGES instead of SQLite's 1000: message content stored inline
              // is inserted, then deleted once delivered, and its pages are used again. A checkpoint copies
              // each page once however often it changed since the last one, so a longer interval copies less
              // (a 100 KB message every 40 of them at 1000 pages).
              try {
                conn.exec(
                  'PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000; ' +
                    `PRAGMA wal_autocheckpoint=${WAL_CHECKPOINT_PAGES};`,
                );
                cachePreparedStatements(conn);
                sqlite.conn = conn;
                done(null, conn);
              } catch (err) {
                done(err as Error, conn);
              }
            },
          },
        });
    if (!postgres) registerSqliteConnection(clientConfig(db), sqlite);
    try {
      await migrateLatest(db, postgres);
    } catch (err) {
      await db.destroy();
      throw err;
    }
    const nodeId = (config.nodeId ?? os.hostname()).slice(0, 64);
    return new Store(db, dataDir, masterKeys, postgres ? 'postgres' : 'sqlite', env, nodeId);
  }

  areaDir(area: SealedArea): string {
    return path.join(this.dataDir, area);
  }

  /** Writes a sealed file; durable once the returned promise resolves and the area dir is synced. */
  seal(area: SealedArea, id: string, source: Readable | Buffer, inspect?: (chunk: Buffer) => void) {
    return writeSealed(this.areaDir(area), id, this.masterKey, source, inspect);
  }

  /**
   * Seals content that a database row will point at. Up to INLINE_MAX sealed bytes stay in memory and go into
   * the database with the row (`commitSealed` in the row's transaction: one fsync covers both, no file is
   * created, synced, renamed or unlinked); larger content becomes a sealed file as with `seal`, and the
   * caller syncs the area directory before committing (`sealedSyncDirs`).
   */
  sealForRow(
    area: SealedArea,
    id: string,
    source: Readable | Buffer,
    inspect?: (chunk: Buffer) => void,
  ): Promise<SealedWriteResult> {
    if (!INLINE_AREAS.has(area)) throw new Error(`sealForRow: ${area} content is always a file`);
    return writeSealed(this.areaDir(area), id, this.masterKey, source, inspect, { inlineMax: INLINE_MAX });
  }

  /** In the row's transaction: stores the sealed bytes `sealForRow` kept in memory (nothing for a file). */
  async commitSealed(trx: Trx, area: SealedArea, id: string, sealed: SealedWriteResult): Promise<void> {
    if (sealed.inline) await insertRow(trx, 'sealed_inline', { area, id, data: sealed.inline });
  }

  /** The directories to sync before committing a row that points at `sealed`. */
  sealedSyncDirs(area: SealedArea, sealed: SealedWriteResult): SealedArea[] {
    return sealed.inline ? [] : [area];
  }

  /** In a transaction: removes content stored by commitSealed (with its wrapped key); true if there was some. */
  async deleteInline(trx: Trx, area: SealedArea, id: string): Promise<boolean> {
    return (await execute(trx, 'delete from "sealed_inline" where "area" = ? and "id" = ?', [area, id])) > 0;
  }

  /** Whether the content is stored in the database (commitSealed) rather than as a file. */
  async isInline(area: SealedArea, id: string): Promise<boolean> {
    if (!INLINE_AREAS.has(area)) return false;
    const rows = await selectRows(
      this.db,
      'select 1 as "one" from "sealed_inline" where "area" = ? and "id" = ?',
      [area, id],
    );
    return rows.length > 0;
  }

  private inlineRows(area: SealedArea, id: string): Promise<Array<{ data: Buffer }>> {
    return selectRows<{ data: Buffer }>(
      this.db,
      'select "data" from "sealed_inline" where "area" = ? and "id" = ?',
      [area, id],
    );
  }

  /**
   * Reads sealed content (database or file), authenticated, after `prefix` if given (in one buffer). Throws
   * SPOOL_MISSING / SPOOL_CORRUPT.
   */
  async unseal(area: SealedArea, id: string, prefix?: Buffer): Promise<Buffer> {
    const [row] = INLINE_AREAS.has(area) ? await this.inlineRows(area, id) : [];
    return this.withKeyReload(async () =>
      row
        ? Buffer.concat([prefix ?? Buffer.alloc(0), this.openSealedKeyIndex(Buffer.from(row.data), id).plain])
        : readSealed(this.areaDir(area), id, this.masterKeys, prefix),
    );
  }

  /**
   * Runs `open` once more after reloading the master keys when it failed authentication: content sealed by
   * another process under a key rotated in after this one started. A fixed PHIGW_MASTER_KEY never changes.
   */
  private async withKeyReload<T>(open: () => Promise<T>): Promise<T> {
    try {
      return await open();
    } catch (err) {
      if (!(err instanceof GatewayError && err.code === 'SPOOL_CORRUPT') || this.env.PHIGW_MASTER_KEY)
        throw err;
      const before = this.masterKey;
      await this.reloadKeys();
      if (this.masterKey.equals(before)) throw err;
      return open();
    }
  }

  /**
   * Opens sealed content for reading as a stream (see openSealedReader): the key is checked now, the tag when
   * the stream ends; an edited or truncated file makes the stream fail with SPOOL_CORRUPT at its end.
   */
  async unsealStream(area: SealedArea, id: string): Promise<Readable> {
    const [row] = INLINE_AREAS.has(area) ? await this.inlineRows(area, id) : [];
    if (row) return Readable.from([this.openSealedKeyIndex(Buffer.from(row.data), id).plain]);
    const reader: SealedReader = await this.withKeyReload(() =>
      openSealedReader(this.areaDir(area), id, this.masterKeys),
    );
    const stream = Readable.from(reader.chunks(), { objectMode: false });
    // A stream given up before it was read never runs the generator: close the file here too.
    stream.once('close', () => void reader.close().catch(() => undefined));
    return stream;
  }

  /** Seals `plain` in memory under the current master key (the sealed-file format). */
  sealToBuffer(id: string, plain: Buffer): Buffer {
    return sealBuffer(id, this.masterKey, plain);
  }

  /** Raw sealed bytes opened with any known key, and whether that was the current one (for re-wrapping). */
  openSealedKeyIndex(data: Buffer, id: string): { plain: Buffer; keyIndex: number } {
    return openSealedWith(data, id, this.masterKeys);
  }

  /**
   * Encrypts a small secret for a database column (TOTP seeds, the organisation key): AES-256-GCM under the
   * master key, bound to `purpose` (e.g. `totp:42`) so a value copied to another row does not open.
   */
  encryptValue(purpose: string, plain: Buffer): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.masterKey, iv);
    cipher.setAAD(Buffer.from(`phigw-value:${purpose}`));
    const enc = Buffer.concat([cipher.update(plain), cipher.final()]);
    return `v1.${Buffer.concat([iv, cipher.getAuthTag(), enc]).toString('base64')}`;
  }

  decryptValue(purpose: string, value: string): Buffer {
    return this.decryptValueWith(purpose, value).plain;
  }

  /** Like decryptValue; `keyIndex` 0 means the current master key, more a retired one. */
  decryptValueWith(purpose: string, value: string): { plain: Buffer; keyIndex: number } {
    if (!value.startsWith('v1.')) throw new GatewayError('SPOOL_CORRUPT', 'unknown value format');
    const raw = Buffer.from(value.slice(3), 'base64');
    for (let keyIndex = 0; keyIndex < this.masterKeys.length; keyIndex++) {
      const decipher = createDecipheriv('aes-256-gcm', this.masterKeys[keyIndex]!, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(`phigw-value:${purpose}`));
      decipher.setAuthTag(raw.subarray(12, 28));
      try {
        return { plain: Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]), keyIndex };
      } catch {
        // not this key
      }
    }
    throw new GatewayError('SPOOL_CORRUPT', 'value failed authentication');
  }

  /** Removes sealed content wherever it is stored (its key dies with it). */
  async removeSealed(area: SealedArea, id: string): Promise<void> {
    const wasInline = INLINE_AREAS.has(area) && (await this.write((trx) => this.deleteInline(trx, area, id)));
    if (!wasInline) await removeSealed(this.areaDir(area), id);
  }

  /** Removes the sealed file only: for content whose database copy was deleted in a transaction already. */
  removeSealedFile(area: SealedArea, id: string): Promise<void> {
    return removeSealed(this.areaDir(area), id);
  }

  /**
   * Whether the data directory may be shared with other running nodes (PostgreSQL): then a file without a
   * row, or a temp file, may be another node's write in progress rather than a leftover of our crash.
   */
  get sharedDataDir(): boolean {
    return this.engine === 'postgres';
  }

  /**
   * True when `id` in `area` may be treated as a leftover of a crash: always with a store of our own; in a
   * shared directory only once it is older than any write in progress could be (SHARED_LEFTOVER_AGE_MS).
   */
  async isLeftover(area: SealedArea, name: string): Promise<boolean> {
    if (!this.sharedDataDir) return true;
    const st = await stat(path.join(this.areaDir(area), name)).catch(() => undefined);
    return !!st && st.mtimeMs < Date.now() - SHARED_LEFTOVER_AGE_MS;
  }

  /** Lists complete sealed files and removes torn temp files (a crash mid-write leaves only `.tmp`). */
  async scanArea(area: SealedArea): Promise<{ ids: string[]; tornRemoved: number }> {
    const dir = this.areaDir(area);
    const names = await readdir(dir);
    let tornRemoved = 0;
    const ids: string[] = [];
    for (const name of names) {
      if (name.endsWith('.tmp')) {
        if (!(await this.isLeftover(area, name))) continue; // another node is writing it
        await unlink(path.join(dir, name)).catch(() => undefined);
        tornRemoved++;
      } else ids.push(name);
    }
    return { ids, tornRemoved };
  }

  /**
   * Runs `fn` inside a transaction shared with other concurrent writers (group commit), after an fsync of
   * `syncDirs` (so sealed files renamed just before are durable when the row that points at them commits).
   * A failing `fn` fails only its own caller.
   *
   * Durability: a `durable` write (the default when `syncDirs` is given, e.g. a spooled message about to be
   * answered 250) resolves only once its commit is fsynced. Other writes (state changes) survive a process
   * crash at once and reach the disk with the next durable commit or checkpoint; the WAL is sequential, so
   * a durable commit also makes every earlier commit durable. Losing one of those to a power cut means at
   * most a repeated step (delivery is at-least-once), never a lost message.
   */
  write<T>(
    fn: (trx: Trx) => Promise<T>,
    opts: { syncDirs?: readonly SealedArea[]; durable?: boolean } = {},
  ): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise<T>((resolve, reject) => {
      const syncDirs = (opts.syncDirs ?? []).map((a) => this.areaDir(a));
      this.pending.push({
        fn,
        resolve: resolve as (v: unknown) => void,
        reject,
        syncDirs,
        durable: opts.durable ?? syncDirs.length > 0,
      });
      if (!this.writing) {
        this.writing = true;
        // Let the other callbacks of this turn of the event loop add their writes: one commit for all.
        setImmediate(() => void this.drain());
      }
    });
  }

  private async setSyncMode(mode: 'FULL' | 'NORMAL'): Promise<void> {
    if (this.engine !== 'sqlite' || this.syncMode === mode) return;
    await this.db.raw(`PRAGMA synchronous=${mode}`);
    this.syncMode = mode;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.pending.length > 0) {
        while (this.writeHold) await this.writeHold.held;
        const batch = this.pending.splice(0, MAX_BATCH);
        this.batchRunning = true;
        try {
          await this.commitBatch(batch);
        } finally {
          this.batchRunning = false;
          this.afterBatch?.();
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * Moves the SQLite WAL's checkpoints to a thread of their own (the gateway; short-lived commands keep SQLite's
   * automatic ones). A checkpoint copies the pages committed since the last one into the database file and fsyncs
   * the WAL and the file; run by the connection that commits, inside a COMMIT, it held the event loop for tens of
   * milliseconds every WAL_CHECKPOINT_PAGES pages (about every second at 100 KB messages under load), and every SMTP
   * client waited. The thread checkpoints passively every CHECKPOINT_INTERVAL_MS and, once the WAL is
   * WAL_CHECKPOINT_PAGES long, asks the store to hold its next transaction while it copies the last frames, so the
   * WAL starts again from its beginning (see checkpoint-worker.ts). A checkpoint that fails (disk full) is tried
   * again at the next interval; if the thread itself is gone, this connection checkpoints as before.
   */
  async startCheckpointer(
    log: Logger,
    opts: { intervalMs?: number; resetFrames?: number } = {},
  ): Promise<void> {
    if (this.engine !== 'sqlite' || this.checkpointer || this.closed) return;
    // Before the thread starts, so that nothing can set it after the thread has gone.
    await this.db.raw(`PRAGMA wal_autocheckpoint=${WAL_BACKSTOP_PAGES}`);
    const worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: {
        file: path.join(this.dataDir, 'phi-gateway.sqlite'),
        intervalMs: opts.intervalMs ?? CHECKPOINT_INTERVAL_MS,
        resetFrames: opts.resetFrames ?? WAL_CHECKPOINT_PAGES,
      } satisfies CheckpointWorkerData,
    });
    let ready!: () => void;
    const started = new Promise<void>((resolve, reject) => {
      ready = resolve;
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`checkpointer exited (${code})`)));
    });
    // One listener from the start: a message nobody listens for is dropped, and a dropped hold would leave the
    // thread waiting.
    worker.on('message', (msg: CheckpointReply) => {
      if (msg.type === 'ready') {
        ready();
      } else if (msg.type === 'hold') {
        void this.holdWrites().then(() => worker.postMessage({ type: 'held' } satisfies CheckpointRequest));
      } else if (msg.type === 'release') {
        this.releaseWrites();
      } else if (msg.type === 'failed') {
        log.warn({ evt: 'CHECKPOINT_FAILED', code: msg.code }, 'WAL checkpoint failed; retrying');
      }
    });
    try {
      await started;
    } catch (err) {
      // Only slower: this connection keeps checkpointing by itself.
      log.warn({ evt: 'CHECKPOINTER_FAILED', err }, 'WAL checkpointer did not start');
      await worker.terminate();
      await this.db.raw(`PRAGMA wal_autocheckpoint=${WAL_CHECKPOINT_PAGES}`);
      return;
    }
    if (this.closed) {
      // close() ran while the thread started: it must not outlive the store's connection.
      worker.postMessage({ type: 'stop' } satisfies CheckpointRequest);
      return;
    }
    this.checkpointer = worker;
    // Never what keeps a process alive; a checkpoint cut short by the process's exit is a crash SQLite recovers.
    worker.unref();
    worker.on('error', (err) => log.error({ evt: 'CHECKPOINTER_FAILED', err }, 'WAL checkpointer failed'));
    worker.once('exit', () => {
      if (this.checkpointer !== worker) return;
      // Gone without being stopped: this connection checkpoints by itself again.
      this.checkpointer = undefined;
      this.releaseWrites();
      if (this.closed) return;
      log.warn({ evt: 'CHECKPOINTER_STOPPED' }, 'WAL checkpoints back on the store connection');
      this.db.raw(`PRAGMA wal_autocheckpoint=${WAL_CHECKPOINT_PAGES}`).catch(() => undefined);
    });
  }

  /** Resolves once no batch is being committed, and from then on holds new ones until releaseWrites. */
  private holdWrites(): Promise<void> {
    if (!this.writeHold) {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      // Bounded: a thread that never answers cannot stop the gateway's writes.
      const timer = setTimeout(() => this.releaseWrites(), CHECKPOINT_HOLD_MAX_MS);
      this.writeHold = {
        held,
        release: () => {
          clearTimeout(timer);
          release();
        },
      };
    }
    if (!this.batchRunning) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.afterBatch = () => {
        this.afterBatch = undefined;
        resolve();
      };
    });
  }

  private releaseWrites(): void {
    const hold = this.writeHold;
    this.writeHold = undefined;
    hold?.release();
  }

  private async stopCheckpointer(): Promise<void> {
    const worker = this.checkpointer;
    if (!worker) return;
    this.checkpointer = undefined;
    this.releaseWrites();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'stop' } satisfies CheckpointRequest);
    const timer = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** fsync of the SQLite WAL, off the event loop: makes every commit so far durable. */
  private async syncWal(): Promise<void> {
    if (this.engine !== 'sqlite') return;
    this.walHandle ??= open(path.join(this.dataDir, 'phi-gateway.sqlite-wal'), 'r');
    await (await this.walHandle).datasync();
  }

  /** The WAL's fsync in progress, and the one that will follow it (see walSyncedAfterNow). */
  private walSyncing: Promise<void> | null = null;
  private walSyncNext: Promise<void> | null = null;

  /**
   * Resolves once an fsync of the WAL that started after this call has finished, so every commit made before the
   * call is durable. One fsync at a time: the commits made while one runs share the next. Each fsync handed to
   * libuv's thread pool wakes a pool thread, which on a busy machine took the main thread's core (the call's own
   * time on the event loop: p50 0.06, p90 0.48 ms, ~0.9 s in a 2,000-message bench run with one fsync per batch).
   */
  private walSyncedAfterNow(): Promise<void> {
    if (!this.walSyncing) {
      const syncing = this.syncWal().finally(() => {
        if (this.walSyncing === syncing) this.walSyncing = null;
      });
      this.walSyncing = syncing;
      return syncing;
    }
    this.walSyncNext ??= this.walSyncing
      .catch(() => undefined)
      .then(() => {
        this.walSyncNext = null;
        return this.walSyncedAfterNow();
      });
    return this.walSyncNext;
  }

  private async commitBatch(batch: PendingWrite[], retries = 3): Promise<void> {
    try {
      // Commits themselves do not fsync (synchronous=NORMAL, set once): with a synchronous driver an fsync
      // would stall the event loop. Durability is added after the commit, asynchronously: an fsync of the
      // WAL that starts after it (shared with other batches, see walSyncedAfterNow) and of the directories
      // sealed files were renamed into, awaited only by the writers that asked for it. A durable writer
      // resolves after both; the next batch need not wait.
      await this.setSyncMode('NORMAL');
      const run = async (trx: Trx) => {
        const out: unknown[] = [];
        for (const item of batch) out.push(await item.fn(trx));
        return out;
      };
      const results =
        this.engine === 'sqlite' ? await this.sqliteTransaction(run) : await this.db.transaction(run);
      const durable: Array<[PendingWrite, unknown]> = [];
      batch.forEach((item, i) =>
        item.durable ? durable.push([item, results[i]]) : item.resolve(results[i]),
      );
      if (durable.length > 0) {
        const dirs = new Set(durable.flatMap(([w]) => w.syncDirs));
        Promise.all([this.walSyncedAfterNow(), ...[...dirs].map((d) => syncDir(d))]).then(
          () => durable.forEach(([w, r]) => w.resolve(r)),
          (err: unknown) => durable.forEach(([w]) => w.reject(err)),
        );
      }
    } catch (err) {
      // PostgreSQL with several nodes: a deadlock or serialization failure aborts the whole transaction
      // through no fault of its writers; run it again (nothing of it was committed).
      if (retries > 0 && isTransientPgError(err)) {
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
        return this.commitBatch(batch, retries - 1);
      }
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // Someone in the batch failed: run each alone so only the failing writer sees the error.
      for (const item of batch) await this.commitBatch([item]);
    }
  }

  /**
   * A transaction on SQLite's one pooled connection without knex's transaction object: BEGIN, the writers, COMMIT
   * (ROLLBACK on failure), the connection held throughout as knex holds it, so nothing else runs on it meanwhile.
   * knex built a whole knex instance per transaction: ~170 µs of CPU each, and objects that lived long enough to
   * reach the old generation (a seventh of what the main thread promoted under load, so more full collections).
   * The writers get a handle whose builder and raw calls run on that connection (and fast-sql's, directly).
   */
  private async sqliteTransaction<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    const client = this.db.client as {
      acquireConnection(): Promise<SqliteConn>;
      releaseConnection(conn: SqliteConn): Promise<unknown>;
    };
    const conn = await client.acquireConnection();
    try {
      conn.exec('BEGIN');
      try {
        const result = await fn(sqliteTrx(this.db, conn));
        conn.exec('COMMIT');
        return result;
      } catch (err) {
        // A failed COMMIT may leave the transaction open (SQLITE_BUSY); a failed writer always does.
        if (conn.inTransaction) {
          try {
            conn.exec('ROLLBACK');
          } catch {
            // The connection rolled back by itself (SQLITE_FULL, SQLITE_IOERR …): nothing to undo.
          }
        }
        throw err;
      }
    } finally {
      await client.releaseConnection(conn);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    // The checkpointer's connection closes first: the store's, closing last, checkpoints the whole WAL.
    await this.stopCheckpointer();
    while (this.writing || this.pending.length > 0) await new Promise((r) => setTimeout(r, 10));
    await this.syncWal().catch(() => undefined);
    if (this.walHandle) await (await this.walHandle).close();
    await this.db.destroy();
  }
}

/** Deadlock (40P01) or serialization failure (40001): the transaction may simply be run again. */
function isTransientPgError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * What the writers of a SQLite transaction get as their `trx`: trx(table) and trx.raw run on the transaction's
 * connection (knex's .connection()); isTransaction and client are what fast-sql reads to run on it directly.
 * No savepoints, commit or rollback: the writers use none (the store commits).
 */
function sqliteTrx(db: Knex, conn: SqliteConn): Trx {
  const trx = ((table: string) => db(table).connection(conn)) as unknown as Record<string, unknown>;
  trx.raw = (sql: string, bindings?: Knex.RawBinding[]) =>
    bindings === undefined ? db.raw(sql).connection(conn) : db.raw(sql, bindings).connection(conn);
  trx.isTransaction = true;
  trx.client = db.client;
  return trx as unknown as Trx;
}

/** Any constant: the key of the advisory lock that serialises migrations across nodes starting at once. */
const MIGRATION_LOCK = 0x70686967; // 'phig'

/**
 * Migrations. On PostgreSQL several nodes may start together: knex's own lock row makes a loser fail
 * rather than wait, so they queue on an advisory lock first (session-level, on one pinned connection).
 */
async function migrateLatest(db: Knex, postgres: boolean): Promise<void> {
  if (!postgres) {
    await db.migrate.latest({ migrationSource });
    return;
  }
  const client = db.client as {
    acquireConnection(): Promise<unknown>;
    releaseConnection(conn: unknown): Promise<unknown>;
  };
  const conn = await client.acquireConnection();
  try {
    await db.raw('select pg_advisory_lock(?)', [MIGRATION_LOCK]).connection(conn);
    await db.migrate.latest({ migrationSource });
  } finally {
    await db
      .raw('select pg_advisory_unlock(?)', [MIGRATION_LOCK])
      .connection(conn)
      .catch(() => undefined);
    await client.releaseConnection(conn);
  }
}

interface PgTypes {
  setTypeParser(oid: number, parse: (value: string) => unknown): void;
}

/**
 * The schema keeps times in ms as bigint (int8), and counts come back as int8 too; node-postgres returns
 * those as strings to avoid precision loss above 2^53, which our values never reach. Parse them as numbers
 * so both engines hand the code the same types. Process-wide, set once: phi-gateway is pg's only user.
 */
let pgTypesSet = false;
function useNumbersForPgBigints(): void {
  if (pgTypesSet) return;
  const require = createRequire(import.meta.url);
  const types = (require('pg') as { types: PgTypes }).types;
  types.setTypeParser(20, (v) => Number(v)); // int8: bigInteger columns, count(*)
  types.setTypeParser(1700, (v) => Number(v)); // numeric: sum() of int8
  pgTypesSet = true;
}

interface SqliteConn {
  exec(sql: string): unknown;
  prepare(sql: string): unknown;
  /** better-sqlite3: whether a transaction is open on the connection. */
  readonly inTransaction: boolean;
}

/**
 * knex prepares every statement anew; with a synchronous driver that was a sixth of the gateway's CPU per
 * message (profiled). The same few dozen statements repeat, so prepared statements are kept per SQL text.
 * A statement is stateless between runs (knex sets no per-call options on it), so reuse is safe; the cache
 * is bounded because `whereIn` lists make SQL texts that vary with their length.
 */
function cachePreparedStatements(conn: SqliteConn, max = 512): void {
  const prepare = conn.prepare.bind(conn);
  const cache = new Map<string, unknown>();
  conn.prepare = (sql: string) => {
    let statement = cache.get(sql);
    if (statement === undefined) {
      statement = prepare(sql);
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
      cache.set(sql, statement);
    }
    return statement;
  };
}
