// The store on a real SQLite file in a temp dir: what Store.open lays out on disk (and with which modes),
// where the master key comes from, and the group-committed `write` that every database change goes through.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { selectRows } from '../../store/fast-sql.js';
import { migrationSource } from '../../store/migrations.js';
import { readSealed } from '../../store/sealed-file.js';
import { SHARED_LEFTOVER_AGE_MS, Store, WAL_CHECKPOINT_PAGES, type Trx } from '../../store/store.js';
import { TEST_DATABASE_URL } from '../support/test-database.js';
import { until } from '../support/waiting.js';

const TABLES = ['audit_events', 'delivery_attempts', 'envelopes', 'messages', 'outbox', 'users'];

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

function modeOf(file: string): Promise<number> {
  return stat(file).then((s) => s.mode & 0o777);
}

function makeOutboxRow(id: string) {
  return {
    id,
    created_at: Date.now(),
    kind: 'relay',
    mail_from: 'a@example.org',
    rcpt_to: '["b@example.org"]',
    size: 1,
  };
}

async function outboxIds(store: Store): Promise<string[]> {
  const rows = (await store.db('outbox').select('id').orderBy('id')) as { id: string }[];
  return rows.map((r) => r.id);
}

describe('store/store', () => {
  let root: string;
  let dataDir: string;
  const opened: Store[] = [];

  /** Opens a store on `dataDir` with its own environment (never the test runner's PHIGW_MASTER_KEY). */
  async function openStore(env: NodeJS.ProcessEnv = {}): Promise<Store> {
    const store = await Store.open({ dataDir, databaseUrl: undefined }, env);
    opened.push(store);
    return store;
  }

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'phigw-store-'));
    dataDir = path.join(root, 'nested', 'data');
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await rm(root, { recursive: true, force: true });
  });

  describe('open', () => {
    it('creates the data dir and the sealed-file areas, private to the owner', async () => {
      const store = await openStore();
      for (const dir of [dataDir, store.areaDir('spool'), store.areaDir('blobs'), store.areaDir('outbox')]) {
        expect((await stat(dir)).isDirectory(), dir).to.equal(true);
        expect(await modeOf(dir), dir).to.equal(0o700);
      }
      expect(store.areaDir('spool')).to.equal(path.join(dataDir, 'spool'));
      expect(store.engine).to.equal(TEST_DATABASE_URL ? 'postgres' : 'sqlite');
    });

    it('generates master.key with mode 0600 holding 32 bytes in hex', async () => {
      await openStore();
      const file = path.join(dataDir, 'master.key');
      expect(await modeOf(file)).to.equal(0o600);
      expect(await readFile(file, 'utf8')).to.match(/^[0-9a-f]{64}\n$/);
    });

    it('creates the SQLite database, and its WAL, with mode 0600 (none on PostgreSQL)', async () => {
      const store = await openStore();
      await store.write((trx) => trx('outbox').insert(makeOutboxRow('m1')));
      const names = await readdir(dataDir);
      if (store.engine === 'postgres') {
        expect(names.filter((n) => n.startsWith('phi-gateway.sqlite'))).to.deep.equal([]);
        expect(await store.db('outbox').pluck('id')).to.deep.equal(['m1']);
        return;
      }
      expect(names).to.include('phi-gateway.sqlite');
      const dbFiles = names.filter((n) => n.startsWith('phi-gateway.sqlite'));
      expect(dbFiles).to.include('phi-gateway.sqlite-wal');
      for (const name of dbFiles) expect(await modeOf(path.join(dataDir, name)), name).to.equal(0o600);
    });

    it("checkpoints the SQLite WAL every WAL_CHECKPOINT_PAGES pages, not at SQLite's 1000", async () => {
      const store = await openStore();
      if (store.engine === 'postgres') {
        // No WAL of ours to checkpoint: PostgreSQL runs its own.
        expect((await readdir(dataDir)).filter((n) => n.startsWith('phi-gateway.sqlite'))).to.deep.equal([]);
        return;
      }
      const rows = (await store.db.raw('PRAGMA wal_autocheckpoint')) as Array<{ wal_autocheckpoint: number }>;
      expect(rows[0]!.wal_autocheckpoint).to.equal(WAL_CHECKPOINT_PAGES);
      expect(WAL_CHECKPOINT_PAGES).to.be.greaterThan(1000);
    });

    it('indexes every envelope lookup delivery makes per message, so none reads the whole history', async () => {
      const store = await openStore();
      // Column → a lookup delivery or the workers make for each message or envelope.
      const lookups: Array<[string, string]> = [
        [
          'blob_id',
          `select "id" from "envelopes" where "blob_id" = ? and "state" not in ('delivered') limit 1`,
        ],
        ['message_id', `select "id" from "envelopes" where "message_id" = ? and "content" = 'spool' limit 1`],
        ['after_id', `select "id" from "envelopes" where "after_id" in (?) and "state" = 'waiting'`],
        ['group_key', `select "id" from "envelopes" where "group_key" = ?`],
      ];
      for (const [column, sql] of lookups) {
        if (store.engine === 'postgres') {
          const res = (await store.db.raw(
            `select indexdef from pg_indexes where tablename = 'envelopes'`,
          )) as {
            rows: Array<{ indexdef: string }>;
          };
          expect(res.rows.map((r) => r.indexdef).join('\n'), column).to.match(new RegExp(`\\(${column}\\)`));
        } else {
          const plan = (await store.db.raw(`explain query plan ${sql}`, [1])) as Array<{ detail: string }>;
          expect(plan.map((r) => r.detail).join('; '), column).to.match(
            new RegExp(`USING (COVERING )?INDEX \\S*${column}`),
          );
        }
      }
    });

    it('applies the migrations', async () => {
      const store = await openStore();
      const tables = (
        store.engine === 'postgres'
          ? await store.db('information_schema.tables').where({ table_schema: 'public' }).pluck('table_name')
          : await store.db('sqlite_master').where({ type: 'table' }).pluck('name')
      ) as string[];
      expect(tables).to.include.members(TABLES);
      const done = (await store.db('knex_migrations').pluck('name')) as string[];
      // Every migration in the source, in order (appended by features: 0003_pickups, …).
      expect(done).to.deep.equal(await migrationSource.getMigrations({} as never));
      expect(done[0]).to.equal('0001_core');
    });

    it('opens an existing data dir again with the same master key and data', async () => {
      const first = await openStore();
      await first.write((trx) => trx('outbox').insert(makeOutboxRow('m1')));
      await first.seal('spool', 'msg1', Buffer.from('kept across restarts'));
      const keyFile = await readFile(path.join(dataDir, 'master.key'), 'utf8');
      await first.close();
      opened.splice(opened.indexOf(first), 1);

      const second = await openStore();
      expect(await readFile(path.join(dataDir, 'master.key'), 'utf8')).to.equal(keyFile);
      expect(await outboxIds(second)).to.deep.equal(['m1']);
      expect((await second.unseal('spool', 'msg1')).toString()).to.equal('kept across restarts');
      expect((await second.db('knex_migrations').pluck('name')) as string[]).to.deep.equal(
        await migrationSource.getMigrations({} as never),
      );
    });

    it('refuses a databaseUrl that is not postgres://', async () => {
      const err = await rejectionOf(Store.open({ dataDir, databaseUrl: 'mysql://localhost/db' }, {}));
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).message).to.match(/postgres/);
    });
  });

  describe('PHIGW_MASTER_KEY', () => {
    const encodings: { name: string; encode: (key: Buffer) => string }[] = [
      { name: 'hex', encode: (k) => k.toString('hex') },
      { name: 'upper-case hex', encode: (k) => k.toString('hex').toUpperCase() },
      { name: 'base64', encode: (k) => k.toString('base64') },
      { name: 'hex with a trailing newline', encode: (k) => `${k.toString('hex')}\n` },
    ];
    for (const e of encodings) {
      it(`is used instead of master.key when given as ${e.name}`, async () => {
        const key = randomBytes(32);
        const store = await openStore({ PHIGW_MASTER_KEY: e.encode(key) });
        await store.seal('spool', 'msg1', Buffer.from('sealed under the env key'));
        const back = await readSealed(store.areaDir('spool'), 'msg1', key);
        expect(back.toString()).to.equal('sealed under the env key');
        expect(await readdir(dataDir)).not.to.include('master.key');
      });
    }

    it('wins over an existing master.key', async () => {
      const fileKey = randomBytes(32);
      const envKey = randomBytes(32);
      await mkdir(dataDir, { recursive: true });
      await writeFile(path.join(dataDir, 'master.key'), fileKey.toString('hex') + '\n', { mode: 0o600 });
      const store = await openStore({ PHIGW_MASTER_KEY: envKey.toString('hex') });
      await store.seal('spool', 'msg1', Buffer.from('x'));
      expect((await readSealed(store.areaDir('spool'), 'msg1', envKey)).toString()).to.equal('x');
      const withFileKey = await rejectionOf(readSealed(store.areaDir('spool'), 'msg1', fileKey));
      expect((withFileKey as { code?: string }).code).to.equal('SPOOL_CORRUPT');
    });

    const wrongLengths: { name: string; value: string }[] = [
      { name: '31 bytes as hex', value: randomBytes(31).toString('hex') },
      { name: '33 bytes as hex', value: randomBytes(33).toString('hex') },
      { name: '16 bytes as base64', value: randomBytes(16).toString('base64') },
      { name: '33 bytes as base64', value: randomBytes(33).toString('base64') },
      { name: '64 bytes as base64', value: randomBytes(64).toString('base64') },
      { name: 'a short passphrase', value: 'hunter2' },
    ];
    for (const w of wrongLengths) {
      it(`is refused when it is ${w.name}`, async () => {
        const err = await rejectionOf(
          Store.open({ dataDir, databaseUrl: undefined }, { PHIGW_MASTER_KEY: w.value }),
        );
        expect(err).to.be.instanceOf(Error);
        expect((err as Error).message).to.match(/PHIGW_MASTER_KEY/);
        expect(await readdir(dataDir)).not.to.include('master.key');
        expect(await readdir(dataDir)).not.to.include('phi-gateway.sqlite');
      });
    }
  });

  describe('write (group commit)', () => {
    it('commits 200 concurrent writes, each resolving with its own value, in fewer transactions', async () => {
      const store = await openStore();
      const transactions = new Set<Trx>();
      const ids = Array.from({ length: 200 }, (_, i) => `m${String(i).padStart(3, '0')}`);
      const results = await Promise.all(
        ids.map((id) =>
          store.write(async (trx) => {
            transactions.add(trx);
            await trx('outbox').insert(makeOutboxRow(id));
            return `value of ${id}`;
          }),
        ),
      );
      expect(results).to.deep.equal(ids.map((id) => `value of ${id}`));
      expect(await outboxIds(store)).to.deep.equal(ids);
      expect(transactions.size, 'transactions used').to.be.greaterThan(0).and.lessThan(ids.length);
    });

    const failures: { name: string; fail: (trx: Trx) => Promise<unknown>; error: RegExp }[] = [
      {
        name: 'throws after inserting a row',
        fail: async (trx) => {
          await trx('outbox').insert(makeOutboxRow('bad'));
          throw new Error('writer refused');
        },
        error: /writer refused/,
      },
      {
        name: 'violates a constraint (duplicate primary key of another writer in the batch)',
        fail: async (trx) => {
          await trx('outbox').insert(makeOutboxRow('bad'));
          await trx('outbox').insert(makeOutboxRow('w03'));
        },
        error: /UNIQUE|constraint/i,
      },
      {
        name: 'queries a table that does not exist',
        fail: async (trx) => {
          await trx('outbox').insert(makeOutboxRow('bad'));
          await trx('no_such_table').select('*');
        },
        error: /no such table|relation "no_such_table" does not exist/,
      },
    ];
    for (const f of failures) {
      it(`rejects only the writer that ${f.name}; the rest of its batch commits`, async () => {
        const store = await openStore();
        // A slow first write holds the writer, so the next twenty queue up and commit as one batch.
        let releaseBlocker!: () => void;
        const blocked = new Promise<void>((r) => (releaseBlocker = r));
        const blocker = store.write(async (trx) => {
          await blocked;
          await trx('outbox').insert(makeOutboxRow('blocker'));
        });
        const firstTrxOf = new Map<number, Trx>();
        const ids = Array.from({ length: 20 }, (_, i) => `w${String(i).padStart(2, '0')}`);
        const FAILING = 12;
        const writes = ids.map((id, i) =>
          store.write(async (trx) => {
            if (!firstTrxOf.has(i)) firstTrxOf.set(i, trx);
            if (i === FAILING) return f.fail(trx);
            await trx('outbox').insert(makeOutboxRow(id));
            return id;
          }),
        );
        releaseBlocker();
        await blocker;
        const settled = await Promise.allSettled(writes);

        // The failing writer really shared a transaction with others (otherwise this tests nothing).
        const shared = [...firstTrxOf.entries()].filter(
          ([i, trx]) => i !== FAILING && trx === firstTrxOf.get(FAILING),
        );
        expect(shared.length, 'writers sharing the failing writer’s first transaction').to.be.greaterThan(0);

        settled.forEach((s, i) => {
          if (i === FAILING) {
            expect(s.status).to.equal('rejected');
            expect(String((s as PromiseRejectedResult).reason)).to.match(f.error);
          } else {
            expect(s, ids[i]).to.deep.equal({ status: 'fulfilled', value: ids[i] });
          }
        });
        const expected = ['blocker', ...ids.filter((_, i) => i !== FAILING)].sort();
        expect(await outboxIds(store)).to.deep.equal(expected);
      });
    }

    const outsideReaders: Array<{ name: string; ids(store: Store): Promise<string[]> }> = [
      { name: "knex's query builder", ids: outboxIds },
      {
        name: "fast-sql's selectRows",
        ids: async (store) =>
          (await selectRows<{ id: string }>(store.db, 'select "id" from "outbox" order by "id"')).map(
            (r) => r.id,
          ),
      },
    ];
    for (const reader of outsideReaders) {
      it(`runs a writer on its transaction: it reads its own rows, a read outside (${reader.name}) never sees them before the commit`, async () => {
        const store = await openStore();
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        let inside: unknown;
        const write = store.write(async (trx) => {
          await trx('outbox').insert(makeOutboxRow('open'));
          inside = await trx('outbox').count({ n: '*' });
          await held;
          return 'done';
        });
        // Let the transaction start and insert, then read from outside while it is still open.
        while (inside === undefined) await new Promise((r) => setTimeout(r, 5));
        let outside: string[] | undefined;
        const reading = reader.ids(store).then((ids) => (outside = ids));
        await new Promise((r) => setTimeout(r, 50));
        // SQLite: the read waits for the store's one connection; PostgreSQL: it runs and sees the last commit.
        const during = outside;
        expect([undefined, '[]'], 'a read while the transaction is open').to.include(
          during && JSON.stringify(during),
        );
        release();
        expect(await write).to.equal('done');
        await reading;
        expect(inside).to.deep.equal([{ n: 1 }]);
        expect(await reader.ids(store), 'a read after the commit').to.deep.equal(['open']);
        if (during === undefined)
          expect(outside, 'the waiting read, after the commit').to.deep.equal(['open']);
      });
    }

    it('rejects a lone failing writer and keeps working afterwards', async () => {
      const store = await openStore();
      const err = await rejectionOf(
        store.write(() => {
          throw new Error('alone and failing');
        }),
      );
      expect((err as Error).message).to.equal('alone and failing');
      const after = await store.write(async (trx) => {
        await trx('outbox').insert(makeOutboxRow('after'));
        return 'ok';
      });
      expect(after).to.equal('ok');
      expect(await outboxIds(store)).to.deep.equal(['after']);
    });

    it('answers a durable write after a WAL fsync that started after its commit, one fsync at a time', async () => {
      const store = await openStore();
      // The WAL's fsync, held open by the test: each call waits until the test settles it.
      const syncs: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
      (store as unknown as { syncWal: () => Promise<void> }).syncWal = () =>
        new Promise<void>((resolve, reject) => syncs.push({ resolve, reject }));
      const settled: string[] = [];
      const durable = (id: string) =>
        store
          .write((trx) => trx('outbox').insert(makeOutboxRow(id)), { durable: true })
          .then(
            () => settled.push(id),
            (err: Error) => settled.push(`${id}: ${err.message}`),
          );
      const a = durable('a');
      await until(() => syncs.length === 1 || undefined);
      // Committed while a's fsync runs, which may not hold them: they wait for the next one, which does not start
      // before a's ends.
      const later = [durable('b'), durable('c')];
      await until(async () => (await outboxIds(store)).length === 3 || undefined);
      await new Promise((r) => setTimeout(r, 20));
      expect(syncs.length, 'fsyncs started').to.equal(1);
      expect(settled).to.deep.equal([]);
      // a's fsync fails: a is refused; b and c get an fsync of their own.
      syncs[0]!.reject(new Error('fsync failed'));
      await a;
      await until(() => syncs.length === 2 || undefined);
      expect(settled).to.deep.equal(['a: fsync failed']);
      syncs[1]!.resolve();
      await Promise.all(later);
      expect(settled).to.deep.equal(['a: fsync failed', 'b', 'c']);
      // Nothing in flight: the next durable write starts an fsync at once.
      const d = durable('d');
      await until(() => syncs.length === 3 || undefined);
      syncs[2]!.resolve();
      await d;
      expect(settled.at(-1)).to.equal('d');
      // The real fsync again, for close.
      delete (store as unknown as { syncWal?: unknown }).syncWal;
    });

    it('refuses writes once the store is closed', async () => {
      const store = await openStore();
      await store.close();
      opened.splice(opened.indexOf(store), 1);
      const err = await rejectionOf(store.write(() => Promise.resolve('late')));
      expect((err as Error).message).to.match(/closed/);
    });

    it('finishes queued writes before close resolves', async () => {
      const store = await openStore();
      const writes = ['c1', 'c2', 'c3'].map((id) =>
        store.write((trx) => trx('outbox').insert(makeOutboxRow(id))),
      );
      await store.close();
      opened.splice(opened.indexOf(store), 1);
      await Promise.all(writes);
      const reopened = await openStore();
      expect(await outboxIds(reopened)).to.deep.equal(['c1', 'c2', 'c3']);
    });
  });

  describe('scanArea', () => {
    it('lists complete sealed files and removes torn .tmp files', async () => {
      const store = await openStore();
      await store.seal('spool', 'done1', Buffer.from('one'));
      await store.seal('spool', 'done2', Buffer.from('two'));
      await writeFile(path.join(store.areaDir('spool'), 'torn1.tmp'), 'half a message');
      await writeFile(path.join(store.areaDir('spool'), 'torn2.tmp'), '');
      if (store.sharedDataDir) {
        // PostgreSQL: the directory may be shared, so young temp files are another node's writes in progress.
        expect((await store.scanArea('spool')).tornRemoved).to.equal(0);
        const old = new Date(Date.now() - SHARED_LEFTOVER_AGE_MS - 60_000);
        for (const name of ['torn1.tmp', 'torn2.tmp'])
          await utimes(path.join(store.areaDir('spool'), name), old, old);
      }
      const result = await store.scanArea('spool');
      expect(result.tornRemoved).to.equal(2);
      expect([...result.ids].sort()).to.deep.equal(['done1', 'done2']);
      expect((await readdir(store.areaDir('spool'))).sort()).to.deep.equal(['done1', 'done2']);
    });

    it('leaves other areas alone', async () => {
      const store = await openStore();
      await writeFile(path.join(store.areaDir('blobs'), 'torn.tmp'), 'x');
      expect(await store.scanArea('spool')).to.deep.equal({ ids: [], tornRemoved: 0 });
      expect(await readdir(store.areaDir('blobs'))).to.deep.equal(['torn.tmp']);
    });
  });
});
