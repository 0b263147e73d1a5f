// The SQLite WAL's checkpointer thread (Store.startCheckpointer) on a real database file: under a writer that never
// pauses, the WAL still starts again from its beginning (so its file stays short), every committed row is there, the
// store's own connection checkpoints only as a backstop, and it takes the work back when the thread is gone.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { createLogger } from '../../config/log.js';
import { Store, WAL_BACKSTOP_PAGES, WAL_CHECKPOINT_PAGES } from '../../store/store.js';
import { until } from '../support/waiting.js';

const PAGE = 4096;

describe('store/checkpointer', () => {
  let root: string;
  let store: Store | undefined;
  const log = createLogger('silent');

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'phigw-ckpt-'));
  });

  afterEach(async () => {
    await store?.close();
    store = undefined;
    await rm(root, { recursive: true, force: true });
  });

  async function open(): Promise<Store> {
    // SQLite only: the thread checkpoints SQLite's WAL (PostgreSQL runs its own).
    store = await Store.open({ dataDir: root, databaseUrl: undefined }, {});
    await store.db.raw('CREATE TABLE scratch (id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
    return store;
  }

  const walFile = () => path.join(root, 'phi-gateway.sqlite-wal');
  const autocheckpoint = async (s: Store) =>
    ((await s.db.raw('PRAGMA wal_autocheckpoint')) as Array<{ wal_autocheckpoint: number }>)[0]!
      .wal_autocheckpoint;

  /**
   * `total` rows of 64 KB, `inFlight` writes always pending (a writer that never pauses, as under load: commits
   * need not wait for an fsync), each row deleted 8 rows later (as delivered mail is), most of them: the WAL keeps
   * growing unless it starts again.
   */
  async function churn(s: Store, total: number, inFlight = 16): Promise<Map<number, string>> {
    const kept = new Map<number, string>();
    let next = 0;
    const one = async (): Promise<void> => {
      while (next < total) {
        const id = next++;
        const body = randomBytes(64 * 1024);
        await s.write(
          async (trx) => {
            await trx.raw('INSERT INTO scratch (id, body) VALUES (?, ?)', [id, body]);
            if (id >= 8 && id % 10 !== 0) await trx.raw('DELETE FROM scratch WHERE id = ?', [id - 8]);
          },
          { durable: false },
        );
        kept.set(id, body.toString('base64'));
        if (id >= 8 && id % 10 !== 0) kept.delete(id - 8);
        // The next write from the event loop, as the gateway's come (SMTP data, deliveries), not a microtask chain.
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await Promise.all(Array.from({ length: inFlight }, one));
    return kept;
  }

  it('keeps the WAL short under a writer that never pauses, off the store connection, and loses no row', async function () {
    this.timeout(60_000);
    const s = await open();
    await s.startCheckpointer(log, { intervalMs: 10, resetFrames: 200 });
    // The store's connection checkpoints only far beyond what this test writes.
    expect(await autocheckpoint(s)).to.equal(WAL_BACKSTOP_PAGES);
    expect(WAL_BACKSTOP_PAGES).to.be.greaterThan(WAL_CHECKPOINT_PAGES);
    const kept = await churn(s, 600); // ~38 MB through the WAL, ~9,600 pages
    // Without the WAL starting again its file would hold all of it; with it, a few cycles of 200 frames.
    const walBytes = (await stat(walFile())).size;
    expect(walBytes).to.be.below(2000 * PAGE, `WAL file ${walBytes} bytes`);
    const rows = (await s.db.raw('SELECT id, body FROM scratch ORDER BY id')) as Array<{
      id: number;
      body: Buffer;
    }>;
    expect(rows.map((r) => r.id)).to.deep.equal([...kept.keys()].sort((a, b) => a - b));
    for (const r of rows) expect(r.body.toString('base64')).to.equal(kept.get(r.id));
  });

  it('closes its connection before the store closes, so the store checkpoints the whole WAL at close', async () => {
    const s = await open();
    await s.startCheckpointer(log, { intervalMs: 10, resetFrames: 200 });
    await churn(s, 60, 4);
    await s.close();
    store = undefined;
    // The last connection to close copies the WAL into the database and removes it.
    const gone = await stat(walFile()).then(
      () => false,
      () => true,
    );
    expect(gone, 'WAL file left after close').to.equal(true);
    const again = await Store.open({ dataDir: root, databaseUrl: undefined }, {});
    store = again;
    const { n } = ((await again.db.raw('SELECT count(*) AS n FROM scratch')) as Array<{ n: number }>)[0]!;
    expect(n).to.be.greaterThan(0);
  });

  it('gives the checkpoints back to the store connection when the thread is gone, and writes go on', async () => {
    const s = await open();
    await s.startCheckpointer(log, { intervalMs: 10, resetFrames: 200 });
    const worker = (s as unknown as { checkpointer: Worker }).checkpointer;
    await worker.terminate();
    await until(async () => (await autocheckpoint(s)) === WAL_CHECKPOINT_PAGES, 5000);
    const kept = await churn(s, 40, 4);
    const { n } = ((await s.db.raw('SELECT count(*) AS n FROM scratch')) as Array<{ n: number }>)[0]!;
    expect(n).to.equal(kept.size);
  });
});
