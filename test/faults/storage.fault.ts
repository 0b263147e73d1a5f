// Fault: the disk fills up or turns read-only (a real small tmpfs), and the database is locked by another
// connection. Intake must answer 4xx, never deliver a half-written message, and recover by itself.
import { execFileSync } from 'node:child_process';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, spawnGateway, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import {
  Ledger,
  openSqlite,
  openWork,
  report,
  sendRaw,
  seqMessage,
  sleep,
  smtpClient,
  waitUntil,
} from './support.js';

function mountTmpfs(dir: string, size: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `this fault test needs to mount a small tmpfs (root, mount permitted): ${(err as Error).message}`,
    );
  }
}

function remount(dir: string, options: string): void {
  execFileSync('mount', ['-o', options, dir], { stdio: 'pipe' });
}

/** Fills the file system under `dir` with a ballast file until ENOSPC; returns its path. */
async function fill(dir: string): Promise<string> {
  const file = path.join(dir, 'ballast');
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
  return file;
}

async function spoolFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== 'ballast');
}

describe('fault: storage (disk full, read-only, database locked)', function () {
  this.timeout(120000);
  let capture: CaptureServer;
  let gw: RunningGateway | undefined;
  let dataDir: string;
  const mounts: string[] = [];

  beforeEach(async () => {
    capture = new CaptureServer();
    await capture.start();
    dataDir = await tempDir('phigw-fault-disk-');
  });

  afterEach(async () => {
    await gw?.stop().catch(() => undefined);
    gw = undefined;
    for (const m of mounts.splice(0)) execFileSync('umount', ['-l', m], { stdio: 'pipe' });
    await capture.stop();
    await removeDir(dataDir);
  });

  async function sendBatch(port: number, ledger: Ledger, seqs: number[], size: number) {
    const t = smtpClient(port, 1);
    const replies: string[] = [];
    try {
      for (const seq of seqs) {
        const raw = seqMessage(seq, size);
        ledger.record(seq, raw);
        const r = await sendRaw(t, raw, 'staff@clinic.example', [`r${seq}@partner.example`]);
        replies.push(r.response);
        if (r.ok && /^250 /.test(r.response)) ledger.acked.add(seq);
      }
    } finally {
      t.close();
    }
    return replies;
  }

  for (const where of ['spool', 'data dir'] as const) {
    it(`disk full (${where} on a 4 MB tmpfs): 4xx while full, nothing torn delivered, recovers when space returns`, async () => {
      const mountAt = where === 'spool' ? path.join(dataDir, 'spool') : dataDir;
      await mkdir(mountAt, { recursive: true });
      mountTmpfs(mountAt, '4m');
      mounts.push(mountAt);
      const relayPort = capture.port;
      gw = await startGateway({ relayUrl: capture.url, dataDir });
      const spool = path.join(dataDir, 'spool');
      const ledger = new Ledger();
      // Messages above INLINE_MAX are sealed to files in spool/, smaller ones into the database with their
      // row: with only the spool on the small disk, the large ones are what fill it.
      const small = where === 'spool' ? 300_000 : 40_000;
      const medium = where === 'spool' ? 300_000 : 100_000;
      // 1. Completely full: messages are refused with a 4xx, and nothing is left behind. With the data dir on the
      // full disk, the first few may still be accepted, durably: once checkpointed, SQLite's WAL is written again
      // from its beginning, in space its file already holds. Beyond that room, 4xx.
      const ballast = await fill(mountAt);
      const full = await sendBatch(gw.smtpPort, ledger, [0, 1, 2, 3, 4, 6, 7, 8, 9, 30], small);
      const room = where === 'spool' ? 0 : full.findIndex((r) => !/^250 /.test(r));
      expect(room, full.join(' | ')).to.be.within(0, 6);
      expect(
        full.slice(room).every((r) => /^45[12] /.test(r)),
        full.join(' | '),
      ).to.equal(true);
      expect(await spoolFiles(spool), 'partial spool files').to.deep.equal([]);
      if (where === 'spool') {
        // A small message does not need the spool directory: it is still accepted, durably, in the database.
        const inline = await sendBatch(gw.smtpPort, ledger, [5], 4_000);
        expect(inline[0], 'a small message while the spool is full').to.match(/^250 /);
      }
      // 2. Some room, next hop down: the spool fills up part way through a batch.
      await capture.stop();
      const { size } = await stat(ballast);
      await rm(ballast);
      const fh = await open(ballast, 'w');
      await fh.truncate(0);
      await fh.write(Buffer.alloc(Math.max(0, size - 700_000), 0x62));
      await fh.close();
      const partial = await sendBatch(
        gw.smtpPort,
        ledger,
        [...Array(20).keys()].map((i) => 10 + i),
        medium,
      );
      const accepted = partial.filter((r) => /^250 /.test(r)).length;
      const refused = partial.filter((r) => /^45[12] /.test(r)).length;
      expect(accepted, partial.join(' | ')).to.be.greaterThan(0);
      expect(refused, 'the disk filled up part way').to.be.greaterThan(0);
      expect(accepted + refused, 'every reply is 250 or 4xx').to.equal(partial.length);
      // 3. Space comes back and the next hop too: everything acknowledged arrives intact, nothing else.
      await rm(ballast);
      capture = new CaptureServer();
      await capture.start(relayPort);
      await waitUntil(() => capture.count >= ledger.acked.size, 30000, 'the acknowledged messages').catch(
        async (err: Error) => {
          const rows = await gw!.store.db('messages').select('state', 'reason', 'attempts', 'lease_until');
          const envs = await gw!.store.db('envelopes').select('state', 'last_response', 'attempts');
          throw new Error(`${err.message}: ${JSON.stringify(rows)} ${JSON.stringify(envs)}`);
        },
      );
      const after = await sendBatch(gw.smtpPort, ledger, [100, 101, 102], medium);
      expect(
        after.every((r) => /^250 /.test(r)),
        after.join(' | '),
      ).to.equal(true);
      await waitUntil(() => capture.count >= ledger.acked.size, 20000, 'messages after recovery');
      await sleep(500);
      const r = ledger.check(capture.messages);
      const notAcked = capture.messages.filter(
        (m) => !ledger.acked.has(Number(/X-Bench-Seq: (\d+)/.exec(m.raw.toString('latin1'))?.[1])),
      );
      expect(r.lost).to.deep.equal([]);
      expect(r.corrupted).to.deep.equal([]);
      expect(r.duplicates).to.equal(0);
      expect(notAcked.length, 'a refused message was delivered anyway').to.equal(0);
      await waitUntil(async () => (await spoolFiles(spool)).length === 0, 10000, 'an empty spool');
      report(
        `      disk full (${where}): full → ${room}×250 then ${full.length - room}×4xx; partial → ${accepted}×250 ${refused}×4xx; recovered, lost 0`,
      );
    });
  }

  it('read-only spool (a read-only bind mount): 4xx while read-only, recovers after remount rw, nothing lost', async () => {
    // A whole file system cannot be remounted read-only under an open SQLite file (EBUSY); the spool can,
    // and it is where every message is written before its 250.
    gw = await startGateway({ relayUrl: capture.url, dataDir });
    const spool = path.join(dataDir, 'spool');
    execFileSync('mount', ['--bind', spool, spool], { stdio: 'pipe' });
    mounts.push(spool);
    const ledger = new Ledger();
    // Above INLINE_MAX (256 KB) a message is sealed to a file in spool/; smaller ones go into the database.
    const large = 300_000;
    const before = await sendBatch(gw.smtpPort, ledger, [0, 1], large);
    expect(
      before.every((x) => x.startsWith('250 ')),
      before.join(' | '),
    ).to.equal(true);
    await capture.waitFor(2);
    remount(spool, 'remount,bind,ro');
    let ro: string[];
    try {
      ro = await sendBatch(gw.smtpPort, ledger, [10, 11, 12], large);
      // A small message does not touch the spool directory: accepted, durably, in the database.
      const inline = await sendBatch(gw.smtpPort, ledger, [13], 5000);
      expect(inline[0], 'a small message while the spool is read-only').to.match(/^250 /);
    } finally {
      remount(spool, 'remount,bind,rw');
    }
    expect(
      ro.every((x) => /^45[12] /.test(x)),
      ro.join(' | '),
    ).to.equal(true);
    const after = await sendBatch(gw.smtpPort, ledger, [20, 21, 22], large);
    expect(
      after.every((x) => x.startsWith('250 ')),
      after.join(' | '),
    ).to.equal(true);
    await capture.waitFor(6, 20000);
    await sleep(500);
    const r = ledger.check(capture.messages);
    expect(r.lost).to.deep.equal([]);
    expect(r.corrupted).to.deep.equal([]);
    expect(r.duplicates).to.equal(0);
    expect(capture.count, 'nothing refused was delivered').to.equal(6);
    const [row] = (await gw.store.db('messages').count({ n: '*' })) as Array<{ n: number }>;
    expect(Number(row!.n), 'no row for a refused message').to.equal(6);
    report(`      read-only spool: ${ro.map((x) => x.slice(0, 3)).join(',')} while ro; 250 after rw`);
  });

  it('database locked past its busy timeout just as the next hop takes a message: recorded once free, sent once', async () => {
    // The lock is taken by the next hop itself, before its 250: the gateway's record of the delivery waits for it,
    // longer than its busy timeout (10 s).
    await capture.stop();
    let locker: ReturnType<typeof openSqlite> | undefined;
    let locked = false;
    capture = new CaptureServer({
      onMessage: () => {
        if (locked) return;
        locked = true;
        locker = openSqlite(dataDir, false);
        locker.exec('BEGIN IMMEDIATE');
      },
    });
    await capture.start();
    const child = await spawnGateway({ dataDir, relayUrl: capture.url, overrides: { logLevel: 'warn' } });
    try {
      const ledger = new Ledger();
      const sent = await sendBatch(child.smtpPort, ledger, [0], 3000);
      expect(sent[0], 'accepted').to.match(/^250 /);
      await capture.waitFor(1);
      await sleep(11_500);
      locker!.exec('ROLLBACK');
      locker!.close();
      locker = undefined;
      await waitUntil(() => openWork(dataDir).envelopes === 0, 20000, 'the delivery recorded');
      // Several retry delays (200 ms in tests) later, still one copy.
      await sleep(1500);
      const r = ledger.check(capture.messages);
      expect(r.lost).to.deep.equal([]);
      expect(r.duplicates, 'sent again after the lock').to.equal(0);
      expect(capture.count).to.equal(1);
      expect(child.child.exitCode, 'the gateway survived the lock').to.equal(null);
      report(`      lock at the next hop's 250: delivered ${capture.count}×, recorded after the lock`);
    } finally {
      locker?.close();
      await child.kill('SIGTERM');
    }
  });

  it('database locked by another connection (BEGIN IMMEDIATE): waits or answers 4xx, loses nothing, recovers', async () => {
    const child = await spawnGateway({ dataDir, relayUrl: capture.url, overrides: { logLevel: 'warn' } });
    try {
      const ledger = new Ledger();
      await sendBatch(child.smtpPort, ledger, [0], 3000);
      await capture.waitFor(1);
      const figures: string[] = [];
      let seq = 100;
      // Shorter than the gateway's busy timeout (10 s), then longer.
      for (const holdMs of [3000, 13000]) {
        const locker = openSqlite(dataDir, false);
        locker.exec('BEGIN IMMEDIATE');
        const t0 = Date.now();
        const seqs = [...Array(6).keys()].map(() => seq++);
        const timings: number[] = [];
        const replies: string[] = [];
        const sending = (async () => {
          const t = smtpClient(child.smtpPort, 1, 30000);
          try {
            for (const s of seqs) {
              const raw = seqMessage(s, 3000);
              ledger.record(s, raw);
              const started = Date.now();
              const r = await sendRaw(t, raw, 'staff@clinic.example', [`r${s}@partner.example`]);
              timings.push(Date.now() - started);
              replies.push(r.response.slice(0, 3));
              if (r.ok && /^250 /.test(r.response)) ledger.acked.add(s);
              if (Date.now() - t0 > holdMs) break;
            }
          } finally {
            t.close();
          }
        })();
        await sleep(holdMs);
        locker.exec('ROLLBACK');
        locker.close();
        await sending;
        expect(child.child.exitCode, 'the gateway survived the lock').to.equal(null);
        expect(
          replies.every((c) => c === '250' || c === '451' || c === '452'),
          replies.join(','),
        ).to.equal(true);
        expect(Math.max(...timings), 'each reply came within the busy timeout and a margin').to.be.below(
          15000,
        );
        figures.push(`hold ${holdMs} ms: replies ${replies.join(',')} max wait ${Math.max(...timings)} ms`);
      }
      // After the lock: new mail flows, and everything acknowledged arrives once.
      const after = await sendBatch(child.smtpPort, ledger, [900, 901], 3000);
      expect(
        after.every((x) => x.startsWith('250 ')),
        after.join(' | '),
      ).to.equal(true);
      await waitUntil(
        () => ledger.check(capture.messages).lost.length === 0 && openWork(dataDir).envelopes === 0,
        30000,
        'the acknowledged messages after the lock',
      );
      const r = ledger.check(capture.messages);
      expect(r.corrupted).to.deep.equal([]);
      expect(r.duplicates).to.equal(0);
      report(`      db lock: ${figures.join('; ')}; acked ${r.acked}, lost 0`);
    } finally {
      await child.kill('SIGTERM');
    }
  });
});
