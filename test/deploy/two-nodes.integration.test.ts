// Scale-out: two gateway processes on one PostgreSQL database and one shared data directory (same master
// key), under load, one SIGKILLed mid-way and restarted: every acknowledged message arrives, duplicates only
// within the crash window; a pickup made through node A opens through another node's web app.
// Never skipped: without PostgreSQL (CI installs Debian's `postgresql`, see .ci/run) this test fails and says so.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { expect } from 'chai';
import nodemailer from 'nodemailer';
import type { ResolvedConfig } from '../../config/load.js';
import { createLogger } from '../../config/log.js';
import { configSchema } from '../../config/schema.js';
import { Store } from '../../store/store.js';
import { createWebApp } from '../../web/app.js';
import { CaptureServer, type CapturedMessage } from '../support/capture-server.js';
import { removeDir, spawnGateway, tempDir, type ChildGateway } from '../support/gateway.js';
import { startTestPostgres, type TestPostgres } from '../support/postgres.js';
import { ensureTestDatabase, TEST_DATABASE_URL } from '../support/test-database.js';

const TOTAL = 400;
const SENDERS_PER_NODE = 5;

function kindOf(m: CapturedMessage): string {
  return /\r\nX-PHI-Gateway-Kind: ([\w-]+)/.exec(`\r\n${m.raw.toString('latin1')}`)?.[1] ?? 'relay';
}

function seqOf(m: CapturedMessage): number | undefined {
  const match = /\r\nX-Seq: (\d+)\r\n/.exec(m.raw.toString('latin1'));
  return match ? Number(match[1]) : undefined;
}

async function until<T>(fn: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('two nodes on one PostgreSQL (integration, real processes)', function () {
  this.timeout(180_000);
  let pg: TestPostgres;
  let capture: CaptureServer;
  let dataDir: string;
  let databaseUrl: string;
  const masterKey = randomBytes(32).toString('hex');
  const nodes = new Map<'a' | 'b', ChildGateway>();

  const startNode = async (name: 'a' | 'b', smtpPort?: number) => {
    const node = await spawnGateway({
      dataDir,
      relayUrl: capture.url,
      smtpPort,
      configName: `node-${name}.yaml`,
      env: { PHIGW_DATABASE_URL: databaseUrl, PHIGW_MASTER_KEY: masterKey, PHIGW_NODE_ID: `node-${name}` },
      overrides: {
        logLevel: 'warn',
        policy: { internalDomains: ['clinic.example'] },
        pickup: { passwordDelay: 0 },
      },
    });
    nodes.set(name, node);
    return node;
  };

  before(async () => {
    pg = await startTestPostgres();
    dataDir = await tempDir('phigw-nodes-');
    databaseUrl = TEST_DATABASE_URL ? await ensureTestDatabase(dataDir) : pg.url;
    capture = new CaptureServer();
    await capture.start();
    // Both at once on an empty database: the migrations must queue, not collide.
    await Promise.all([startNode('a'), startNode('b')]);
  });

  after(async () => {
    for (const node of nodes.values()) await node.kill('SIGKILL');
    await capture?.stop();
    await pg?.stop();
    if (dataDir) await removeDir(dataDir);
  });

  it('delivers every acknowledged message once across both nodes, with node A killed and restarted', async () => {
    const acked = new Map<number, 'a' | 'b'>();
    let next = 0;
    let killedA = false;
    const sender = async (name: 'a' | 'b') => {
      const t = nodemailer.createTransport({
        host: '127.0.0.1',
        port: nodes.get(name)!.smtpPort,
        secure: false,
        ignoreTLS: true,
        pool: true,
        maxConnections: 1,
      });
      t.on('error', () => undefined); // a killed node drops the connection; sendMail rejects too
      try {
        while (next < TOTAL && !(name === 'a' && killedA)) {
          const seq = next++;
          try {
            await t.sendMail({
              envelope: { from: 'staff@clinic.example', to: [`r${seq}@partner.example`] },
              raw: `From: staff@clinic.example\r\nTo: r${seq}@partner.example\r\nSubject: load\r\nX-Seq: ${seq}\r\n\r\n${'line of text\r\n'.repeat(40)}`,
            });
            acked.set(seq, name);
          } catch {
            if (name === 'a') return; // node A died under us: this one never got 250
            throw new Error(`node B refused message ${seq}`);
          }
        }
      } finally {
        t.close();
      }
    };
    const senders = [
      ...Array.from({ length: SENDERS_PER_NODE }, () => sender('a')),
      ...Array.from({ length: SENDERS_PER_NODE }, () => sender('b')),
    ];
    // Kill node A once both have taken a good share and some of A's work is surely still in flight.
    await until(() => [...acked.values()].filter((n) => n === 'a').length >= 80, 60_000, 'load on A');
    const portA = nodes.get('a')!.smtpPort;
    killedA = true;
    await nodes.get('a')!.kill('SIGKILL');
    const ackedByAAtKill = [...acked.values()].filter((n) => n === 'a').length;
    const arrivedAtKill = new Set(capture.messages.map(seqOf));
    const inFlightOnA = [...acked].filter(([s, n]) => n === 'a' && !arrivedAtKill.has(s)).length;
    await Promise.all(senders);
    const ackedB = [...acked.values()].filter((n) => n === 'b').length;
    expect(ackedByAAtKill, 'A took part of the load').to.be.greaterThan(50);
    expect(ackedB, 'B took part of the load').to.be.greaterThan(50);

    // Restarted under its node id, A resumes the work it held (other nodes' leases are left alone).
    const restarted = await startNode('a', portA);
    const arrived = () => new Set(capture.messages.map(seqOf).filter((s) => s !== undefined));
    await until(
      () => [...acked.keys()].every((s) => arrived().has(s)),
      90_000,
      'every acknowledged message',
    ).catch(() => undefined);
    const got = arrived();
    const lost = [...acked.keys()].filter((s) => !got.has(s));
    expect(lost, 'acknowledged messages that never arrived').to.deep.equal([]);
    // At-least-once only in the crash window: a message the next hop took from A just before the kill can
    // go again after the restart; at most one per delivery A had in flight (deliveryConcurrency, 10).
    const seqs = capture.messages.map(seqOf).filter((s) => s !== undefined);
    const duplicates = seqs.length - got.size;
    expect(duplicates, 'duplicates').to.be.at.most(10);
    const unacked = seqs.filter((s) => !acked.has(s));
    expect(unacked.length, 'unacknowledged arrivals (A died after delivery, before 250)').to.be.at.most(
      SENDERS_PER_NODE,
    );
    const resumed = /"evt":"QUEUE_RESUMED"[^\n]*/.exec(restarted.stdout())?.[0] ?? 'nothing resumed';
    process.stdout.write(
      `      two nodes: ${acked.size} acknowledged (A ${ackedByAAtKill} before its kill, B ${ackedB}), ` +
        `1 SIGKILL, ${duplicates} duplicates, ${unacked.length} unacknowledged arrivals, ${lost.length} lost; ` +
        `A had ${inFlightOnA} acknowledged but undelivered at its kill; restart: ${resumed}\n`,
    );
  });

  it('opens a pickup created through node A in the web app of another node', async () => {
    const before = capture.messages.length;
    const t = nodemailer.createTransport({
      host: '127.0.0.1',
      port: nodes.get('a')!.smtpPort,
      secure: false,
      ignoreTLS: true,
    });
    await t.sendMail({
      envelope: { from: 'ann@clinic.example', to: ['patient@mail.example'] },
      raw: [
        'From: Dr Ann Lee <ann@clinic.example>',
        'To: patient@mail.example',
        'Subject: [secure] Your results',
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Patient: Jane Roe, DOB 04/12/1961, MRN 48213377. She was diagnosed with type 2 diabetes.',
        '',
      ].join('\r\n'),
    });
    t.close();
    const newer = () => capture.messages.slice(before);
    const notice = await until(
      () => newer().find((m) => kindOf(m) === 'pickup-notice'),
      30_000,
      'the notice',
    );
    const password = await until(
      () => newer().find((m) => kindOf(m) === 'pickup-password'),
      30_000,
      'the password mail',
    );
    const token = /\/p\/([A-Za-z0-9_-]{22,})/.exec(notice.raw.toString('latin1'))?.[1];
    const pw = /^Password: (\S+)\r?$/m.exec(password.raw.toString('latin1'))?.[1];
    expect(token, 'link in the notice').to.be.a('string');
    expect(pw, 'password in the password mail').to.be.a('string');

    // Node B's web side: its own Store on the same database and shared directory, same master key.
    const store = await Store.open({ dataDir, databaseUrl }, { PHIGW_MASTER_KEY: masterKey });
    const config = {
      ...configSchema.parse({ dataDir, databaseUrl, logLevel: 'silent' }),
      publicUrl: 'http://127.0.0.1',
    } as ResolvedConfig;
    const server = await new Promise<Server>((resolve) => {
      const s = createWebApp({ config, store, log: createLogger('silent') }).listen(0, '127.0.0.1', () =>
        resolve(s),
      );
    });
    try {
      const addr = server.address();
      const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
      const open = (secret: string) =>
        fetch(`${base}/api/pickups/${token}/open`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ password: secret }),
        });
      expect((await open('wrong-password')).status).to.equal(401);
      const res = await open(pw!);
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { subject: string; text: string; to: string[] };
      expect(body.subject).to.equal('Your results');
      expect(body.text).to.contain('MRN 48213377');
      expect(body.to).to.deep.equal(['patient@mail.example']);
      // The unlock is in the one audit chain, whichever node wrote it.
      const events = (await store.db('audit_events').pluck('type')) as string[];
      expect(events).to.include('pickup.unlocked');
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await store.close();
    }
  });
});
