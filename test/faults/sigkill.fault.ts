// Fault: SIGKILL of the real gateway process at random moments of a sustained load, round after round on
// the same data dir. Every 250 must arrive (digest-identical) or still be queued; duplicates stay bounded.
import { expect } from 'chai';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, spawnGateway, tempDir } from '../support/gateway.js';
import {
  Ledger,
  openWork,
  prng,
  queueDb,
  runSeed,
  sendRaw,
  seqMessage,
  report,
  sleep,
  smtpClient,
  waitUntil,
} from './support.js';

const ROUNDS = Number(process.env.FAULT_KILL_ROUNDS ?? 8);
const PER_ROUND = 300;
const CONNECTIONS = 8;
/** relay.maxConnections: at most this many messages can be between the next hop's 250 and our commit. */
const RELAY_POOL = 5;

describe('fault: SIGKILL during sustained load (real process, many rounds)', function () {
  this.timeout(300000);

  it('loses nothing that got 250, corrupts nothing, and duplicates at most kills × relay pool', async () => {
    const rnd = prng(runSeed('sigkill'));
    const capture = new CaptureServer();
    await capture.start();
    const dataDir = await tempDir('phigw-fault-kill-');
    const ledger = new Ledger();
    const overrides = { logLevel: 'warn', relay: { maxConnections: RELAY_POOL } };
    let port: number | undefined;
    let next = 0;
    let kills = 0;
    const killedDuring = { intake: 0, drain: 0 };
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const child = await spawnGateway({ dataDir, relayUrl: capture.url, smtpPort: port, overrides });
        const smtpPort = child.smtpPort;
        port = smtpPort;
        const end = next + PER_ROUND;
        let dead = false;
        const sender = async () => {
          const t = smtpClient(smtpPort, 1);
          try {
            while (!dead && next < end) {
              const seq = next++;
              const raw = seqMessage(seq, 500 + Math.floor(rnd() * 6000));
              ledger.record(seq, raw);
              const r = await sendRaw(t, raw, 'staff@clinic.example', [`r${seq}@partner.example`]);
              if (r.ok && /^250 /.test(r.response)) ledger.acked.add(seq);
              else if (!r.ok) return; // no 250: the client keeps the message (it is not ours to deliver)
            }
          } finally {
            t.close();
          }
        };
        const senders = Array.from({ length: CONNECTIONS }, () => sender());
        const all = Promise.all(senders);
        // Even rounds: anywhere in the load. Odd rounds: after the last 250, while the queue drains.
        let finishedFirst: boolean;
        if (round % 2 === 0) {
          const killAt = 100 + Math.floor(rnd() * 2500);
          finishedFirst = await Promise.race([all.then(() => true), sleep(killAt).then(() => false)]);
        } else {
          await all;
          await sleep(Math.floor(rnd() * 400));
          finishedFirst = true;
        }
        await child.kill('SIGKILL');
        dead = true;
        kills++;
        if (finishedFirst) killedDuring.drain++;
        else killedDuring.intake++;
        await all;
      }
      // The last start drains everything.
      const child = await spawnGateway({ dataDir, relayUrl: capture.url, smtpPort: port, overrides });
      try {
        await waitUntil(
          () => {
            const r = ledger.check(capture.messages);
            const w = openWork(dataDir);
            return r.lost.length === 0 && w.messages === 0 && w.envelopes === 0;
          },
          90000,
          'the queue to drain and every acknowledged message to arrive',
        );
      } finally {
        await child.kill('SIGTERM');
      }
      const db = queueDb(dataDir);
      const stillQueued = new Set<number>();
      let held = 0;
      try {
        const rows = db
          .prepare("SELECT rcpt_to, state FROM messages WHERE state NOT IN ('done','routed')")
          .all() as Array<{ rcpt_to: string; state: string }>;
        for (const r of rows) {
          if (r.state === 'held') held++;
          for (const m of r.rcpt_to.matchAll(/r(\d+)@partner\.example/g)) stillQueued.add(Number(m[1]));
        }
      } finally {
        db.close();
      }
      const result = ledger.check(capture.messages, stillQueued);
      const bound = kills * RELAY_POOL;
      report(
        `      rounds=${ROUNDS} kills=${kills} (during intake ${killedDuring.intake}, after it ${killedDuring.drain}) ` +
          `sent=${next} acked=${result.acked} arrived=${result.arrivedDistinct} stillQueued=${stillQueued.size} ` +
          `lost=${result.lost.length} corrupted=${result.corrupted.length} duplicates=${result.duplicates} (bound ${bound}) held=${held}`,
      );
      expect(result.acked, 'enough load to mean something').to.be.greaterThan(ROUNDS * 50);
      expect(result.lost, 'acknowledged but neither delivered nor queued').to.deep.equal([]);
      expect(result.corrupted, 'arrived with bytes that differ from what was sent').to.deep.equal([]);
      expect(result.unexpected, 'messages nobody sent').to.equal(0);
      expect(held, 'messages held after a crash (torn spool?)').to.equal(0);
      expect(result.duplicates).to.be.at.most(bound);
    } finally {
      await capture.stop();
      await removeDir(dataDir);
    }
  });
});
