// The SQLite WAL's checkpointer thread (see Store.startCheckpointer). It copies committed pages from the WAL into
// the database file on a connection of its own, so the copy and its two fsyncs no longer run inside a COMMIT on the
// gateway's event loop. It never writes a row.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

export interface CheckpointWorkerData {
  /** The database file. */
  file: string;
  /** Time between passive checkpoints. */
  intervalMs: number;
  /** A WAL this long (frames since it last started again) is finished with the writers held (see below). */
  resetFrames: number;
}

/** To the store: hold new transactions (`hold`), or go on (`release`, with how the last checkpoint went). */
export type CheckpointReply =
  | { type: 'ready' }
  | { type: 'hold' }
  | { type: 'release'; log: number; checkpointed: number }
  /** A checkpoint failed (the first of a run of failures): SQLite's error code, e.g. SQLITE_FULL. */
  | { type: 'failed'; code: string }
  | { type: 'stopped' };

/** From the store: its writers are held (`held`), or the thread should close its connection and end. */
export type CheckpointRequest = { type: 'held' } | { type: 'stop' };

interface Connection {
  pragma(sql: string): unknown;
  close(): void;
}
/** better-sqlite3 ships no types; this is the slice used here. */
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  file: string,
  opts: { fileMustExist: boolean },
) => Connection;

const port = parentPort!;
const { file, intervalMs, resetFrames } = workerData as CheckpointWorkerData;
const db = new Database(file, { fileMustExist: true });
// The same durability as the store's connection: a checkpoint fsyncs the WAL before it copies from it and the
// database file before the WAL may start again, whichever connection runs it.
db.pragma('synchronous = NORMAL');

/**
 * One PASSIVE checkpoint: copies what the WAL holds beyond what was copied before, up to its last commit, never
 * waiting for (nor blocking) the store's writer. `log`: frames in the WAL; `checkpointed`: of them, in the database.
 */
function checkpoint(): { log: number; checkpointed: number } {
  const [row] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number; checkpointed: number }>;
  return { log: row!.log, checkpointed: row!.checkpointed };
}

let stopping = false;
let timer: NodeJS.Timeout | undefined;
let onHeld: (() => void) | undefined;

port.on('message', (msg: CheckpointRequest) => {
  if (msg.type === 'held') {
    onHeld?.();
    return;
  }
  stopping = true;
  clearTimeout(timer);
  // A cycle waiting for the writers to be held goes on without them, sends its release and then stops.
  if (onHeld) onHeld();
  else stop();
});

function stop(): void {
  db.close();
  port.postMessage({ type: 'stopped' } satisfies CheckpointReply);
  port.close();
}

/**
 * SQLite starts the WAL again from its beginning only when a transaction begins and every frame in it is already
 * in the database; a checkpoint beside a busy writer never sees that moment (frames keep arriving while it copies).
 * So once the WAL is long, the bulk having been copied, the store holds its next transaction while this thread
 * copies the last few frames; the transaction after that starts the WAL again.
 */
async function cycle(): Promise<void> {
  const first = checkpoint();
  if (first.log >= resetFrames && !stopping) {
    await new Promise<void>((resolve) => {
      onHeld = resolve;
      port.postMessage({ type: 'hold' } satisfies CheckpointReply);
    });
    onHeld = undefined;
    let last = first;
    try {
      last = checkpoint();
    } finally {
      port.postMessage({ type: 'release', ...last } satisfies CheckpointReply);
    }
  }
}

let failing = false;

/**
 * A checkpoint that throws (disk full, an I/O error) is tried again at the next interval: nothing is lost by
 * waiting (the WAL holds every commit; the store's connection checkpoints by itself past WAL_BACKSTOP_PAGES).
 */
function next(): void {
  if (stopping) {
    stop();
    return;
  }
  timer = setTimeout(() => {
    cycle().then(
      () => {
        failing = false;
        next();
      },
      (err: unknown) => {
        const code = (err as { code?: unknown } | null)?.code;
        if (!failing)
          port.postMessage({
            type: 'failed',
            code: typeof code === 'string' ? code : 'ERROR',
          } satisfies CheckpointReply);
        failing = true;
        next();
      },
    );
  }, intervalMs);
}

port.postMessage({ type: 'ready' } satisfies CheckpointReply);
next();
