// Segment files for small sealed content (SQLite stores): records appended together, read back through their
// rows, and whole files removed only when no row points into them and no append is waiting for its row.
import { expect } from 'chai';
import { mkdir, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../../config/errors.js';
import { SEGMENT_RELOCATE_AFTER_MS, Store, type StoredSealed } from '../../store/store.js';
import { removeDir, tempDir } from '../support/gateway.js';

const MINUTE = 60 * 1000;

describe('segments (sealed content of small messages)', function () {
  this.timeout(30000);
  let dir: string;
  const stores: Store[] = [];

  const open = async (tuning: { maxBytes?: number; maxAgeMs?: number } = {}) => {
    const store = await Store.open({ dataDir: dir, databaseUrl: undefined }, {}, { segments: tuning });
    stores.push(store);
    return store;
  };
  const segmentFiles = async () => (await readdir(path.join(dir, 'segments'))).sort();
  const text = (n: number) => `message ${String(n).padStart(4, '0')}: ${'x'.repeat(1000)}`;
  const seal = (store: Store, id: string, n: number) => store.sealForRow('spool', id, Buffer.from(text(n)));
  const commit = (store: Store, id: string, sealed: StoredSealed) =>
    store.write((trx) => store.commitSealed(trx, 'spool', id, sealed), { durable: true });
  const drop = (store: Store, id: string) => store.write((trx) => store.deleteInline(trx, 'spool', id));
  const refOf = async (store: Store, id: string) =>
    (await store.db('sealed_refs').where({ area: 'spool', id }).first()) as
      { segment: number; pos: number; len: number } | undefined;

  beforeEach(async () => {
    dir = await tempDir('phigw-segments-');
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    await removeDir(dir);
  });

  it('appends records arriving together to one segment; each reads back through its row, none in the database', async () => {
    const store = await open();
    const ids = Array.from({ length: 50 }, (_, i) => `M${i}`);
    const sealed = await Promise.all(ids.map((id, i) => seal(store, id, i)));
    await Promise.all(ids.map((id, i) => commit(store, id, sealed[i]!)));
    expect(new Set(sealed.map((s) => s.segment!.segment)).size).to.equal(1);
    const offsets = sealed.map((s) => s.segment!.offset).sort((a, b) => a - b);
    for (let i = 1; i < offsets.length; i++)
      expect(offsets[i]! - offsets[i - 1]!).to.equal(sealed[0]!.segment!.length);
    for (const [i, id] of ids.entries())
      expect((await store.unseal('spool', id)).toString()).to.equal(text(i));
    expect(await store.db('sealed_inline').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
    expect(await segmentFiles()).to.have.length(1);
  });

  it('starts a new segment at the size limit, and removes a full one once no row points into it', async () => {
    const store = await open({ maxBytes: 4096 });
    for (let i = 0; i < 8; i++) await commit(store, `M${i}`, await seal(store, `M${i}`, i));
    const files = await segmentFiles();
    expect(files.length).to.be.at.least(3);
    const first = (await refOf(store, 'M0'))!.segment;
    const inFirst = (await store.db('sealed_refs').where({ segment: first }).select('id')) as Array<{
      id: string;
    }>;
    expect(await store.sweepSegments()).to.deep.equal({ removed: 0, relocated: 0 });
    for (const { id } of inFirst) await drop(store, id);
    expect((await store.sweepSegments()).removed).to.equal(1);
    expect(await segmentFiles()).to.deep.equal(files.slice(1));
    for (let i = inFirst.length; i < 8; i++)
      expect((await store.unseal('spool', `M${i}`)).toString()).to.equal(text(i));
  });

  it('moves the records still live in an old segment into the current one, then removes the old file', async () => {
    const store = await open({ maxBytes: 4096 });
    await commit(store, 'HELD', await seal(store, 'HELD', 1));
    await commit(store, 'SENT', await seal(store, 'SENT', 2));
    for (let i = 0; i < 4; i++) await commit(store, `M${i}`, await seal(store, `M${i}`, 10 + i));
    const old = (await refOf(store, 'HELD'))!.segment;
    expect((await refOf(store, 'SENT'))!.segment).to.equal(old);
    await drop(store, 'SENT');
    // Not yet: a record in a segment retired moments ago is probably about to be delivered.
    expect(await store.sweepSegments()).to.deep.equal({ removed: 0, relocated: 0 });
    const live = (await store.db('sealed_refs').where({ segment: old }).select('id')) as Array<{
      id: string;
    }>;
    expect(live.map((r) => r.id)).to.include('HELD');
    const later = Date.now() + SEGMENT_RELOCATE_AFTER_MS + 1000;
    expect(await store.sweepSegments(later)).to.deep.equal({ removed: 0, relocated: live.length });
    expect(await store.db('sealed_refs').where({ segment: old }).select('id')).to.deep.equal([]);
    expect((await refOf(store, 'HELD'))!.segment).to.be.greaterThan(old);
    expect((await store.sweepSegments(later)).removed).to.be.at.least(1);
    expect(await segmentFiles()).not.to.include(`${String(old).padStart(10, '0')}.seg`);
    expect((await store.unseal('spool', 'HELD')).toString()).to.equal(text(1));
  });

  it('never removes a segment while an append in it waits for its row, even after it was retired', async () => {
    const store = await open({ maxBytes: 2048 });
    const pending = await seal(store, 'PENDING', 1);
    await commit(store, 'NEXT', await seal(store, 'NEXT', 2)); // does not fit: a new segment, the first retired
    const later = Date.now() + SEGMENT_RELOCATE_AFTER_MS + 1000;
    expect((await store.sweepSegments(later)).removed).to.equal(0);
    await commit(store, 'PENDING', pending);
    expect((await store.sweepSegments(later)).removed).to.equal(0);
    expect((await store.unseal('spool', 'PENDING')).toString()).to.equal(text(1));
    // A record given up without a row (a refused message) no longer holds its segment.
    const refused = await seal(store, 'REFUSED', 3);
    await store.discardSealed('spool', 'REFUSED', refused);
    await drop(store, 'PENDING');
    await drop(store, 'NEXT');
    await store.sweepSegments(later);
    expect(await segmentFiles()).to.have.length(1); // the current one only
  });

  it('a quiet gateway: the current segment is retired at its age limit and goes with its delivered mail', async () => {
    const store = await open({ maxAgeMs: 100 });
    await commit(store, 'M1', await seal(store, 'M1', 1));
    await drop(store, 'M1');
    expect((await store.sweepSegments()).removed).to.equal(0); // still the current one
    await new Promise((r) => setTimeout(r, 150));
    expect((await store.sweepSegments()).removed).to.equal(1);
    expect(await segmentFiles()).to.deep.equal([]);
    await commit(store, 'M2', await seal(store, 'M2', 2)); // a new segment when mail comes again
    expect((await store.unseal('spool', 'M2')).toString()).to.equal(text(2));
  });

  it('after a crash: a segment whose appends never got their rows is removed at the next start; live ones stay', async () => {
    const crashed = await open();
    await commit(crashed, 'KEPT', await seal(crashed, 'KEPT', 1));
    await crashed.close();
    stores.splice(0);
    const again = await open({ maxBytes: 1 });
    await seal(again, 'LOST', 2); // appended, then the process dies before the row commits
    await again.close();
    stores.splice(0);
    expect(await segmentFiles()).to.have.length(2);
    const restarted = await open();
    expect((await restarted.sweepSegments()).removed).to.equal(1);
    expect(await segmentFiles()).to.have.length(1);
    expect((await restarted.unseal('spool', 'KEPT')).toString()).to.equal(text(1));
  });

  it('leaves alone a segment another process (a `master-key rewrap`) appends to, until it has been idle an hour', async () => {
    const gateway = await open();
    const cli = await open();
    await commit(gateway, 'G', await seal(gateway, 'G', 1));
    const fromCli = await seal(cli, 'C', 2); // the other process's row is not committed yet
    expect(fromCli.segment!.segment).not.to.equal((await refOf(gateway, 'G'))!.segment);
    expect((await gateway.sweepSegments(Date.now() + 10 * MINUTE)).removed).to.equal(0);
    await commit(cli, 'C', fromCli);
    expect((await gateway.unseal('spool', 'C')).toString()).to.equal(text(2));
    await drop(gateway, 'C');
    const cliFile = `${String(fromCli.segment!.segment).padStart(10, '0')}.seg`;
    expect(await segmentFiles()).to.include(cliFile);
    await gateway.sweepSegments(Date.now() + 2 * 60 * MINUTE);
    expect(await segmentFiles()).not.to.include(cliFile);
    expect((await gateway.unseal('spool', 'G')).toString()).to.equal(text(1));
  });

  it('a segment that cannot be created fails the seal, and the next seal tries again', async () => {
    const store = await open();
    const segDir = path.join(dir, 'segments');
    await rm(segDir, { recursive: true });
    await writeFile(segDir, 'not a directory'); // as a broken disk would
    const err = await seal(store, 'M1', 1).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).to.match(/^(ENOTDIR|ENOENT)$/);
    await rm(segDir);
    await mkdir(segDir, { mode: 0o700 });
    await commit(store, 'M1', await seal(store, 'M1', 1));
    expect((await store.unseal('spool', 'M1')).toString()).to.equal(text(1));
  });

  it('a segment gone is SPOOL_MISSING, a torn one SPOOL_CORRUPT: never other bytes', async () => {
    const store = await open();
    await commit(store, 'M1', await seal(store, 'M1', 1));
    await commit(store, 'M2', await seal(store, 'M2', 2));
    const [file] = await segmentFiles();
    const at = (await refOf(store, 'M2'))!;
    await truncate(path.join(dir, 'segments', file!), at.pos + 10);
    const torn = await store.unseal('spool', 'M2').catch((e: unknown) => e);
    expect((torn as GatewayError).code).to.equal('SPOOL_CORRUPT');
    // A row pointing at another record's bytes does not open them (each record is bound to its id).
    await store.db('sealed_refs').where({ area: 'spool', id: 'M2' }).update({ pos: 0, len: at.len });
    const swapped = await store.unseal('spool', 'M2').catch((e: unknown) => e);
    expect((swapped as GatewayError).code).to.equal('SPOOL_CORRUPT');
    await store.close();
    stores.splice(0);
    await rm(path.join(dir, 'segments', file!));
    const gone = await (await open()).unseal('spool', 'M1').catch((e: unknown) => e);
    expect((gone as GatewayError).code).to.equal('SPOOL_MISSING');
  });
});
