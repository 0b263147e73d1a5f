// The bad-input harness: a real gateway process (fresh data dir, its own next hop) that a suite sends raw
// messages through, then checks each got an outcome (delivered, protected or held with a reason), that the
// process did not crash, and bounded memory and time. Used by the fault suite and the MIME corpus evaluation.
import { expect } from 'chai';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, spawnGateway, tempDir, type ChildGateway } from '../support/gateway.js';
import {
  outcomeOf,
  queueDb,
  queueIdOf,
  report,
  sendRaw,
  smtpClient,
  vmHwmKb,
  waitUntil,
  type Outcome,
} from './support.js';

const MEMORY_LIMIT_MB = 512;

export interface BadInputHarness {
  readonly child: ChildGateway;
  readonly capture: CaptureServer;
  readonly dataDir: string;
  run(
    label: string,
    inputs: Array<[string, Buffer]>,
  ): Promise<{
    sent: Array<{ name: string; qid: string; ms: number }>;
    refused: string[];
    tally: Record<Outcome, number>;
  }>;
}

/** Call inside a describe(): starts the gateway before its tests and stops it after. */
export function badInputHarness(): BadInputHarness {
  let capture: CaptureServer;
  let child: ChildGateway | undefined;
  let dataDir: string;

  before(async () => {
    capture = new CaptureServer();
    await capture.start();
    dataDir = await tempDir('phigw-fault-input-');
    child = await spawnGateway({
      dataDir,
      relayUrl: capture.url,
      overrides: {
        logLevel: 'warn',
        queue: { stageTimeout: 20000, maxProcessingAttempts: 2 },
        pickup: { passwordDelay: 0 },
      },
    });
  });

  after(async () => {
    await child?.kill('SIGTERM');
    await capture.stop();
    await removeDir(dataDir);
  });

  async function run(label: string, inputs: Array<[string, Buffer]>) {
    const t = smtpClient(child!.smtpPort, 2, 30000);
    const sent: Array<{ name: string; qid: string; ms: number }> = [];
    const refused: string[] = [];
    const started = Date.now();
    try {
      await Promise.all(
        inputs.map(async ([name, raw]) => {
          const t0 = Date.now();
          const r = await sendRaw(t, raw, 'staff@clinic.example', ['partner@partner.example']);
          const qid = queueIdOf(r.response);
          if (r.ok && qid) sent.push({ name, qid, ms: Date.now() - t0 });
          else refused.push(`${name}: ${r.response.slice(0, 60)}`);
        }),
      );
    } finally {
      t.close();
    }
    await waitUntil(
      () => {
        const db = queueDb(dataDir);
        try {
          return sent.every((s) => outcomeOf(db, s.qid).outcome !== 'pending');
        } finally {
          db.close();
        }
      },
      240000,
      `an outcome for every ${label} message`,
    ).catch((err: Error) => {
      const db = queueDb(dataDir);
      const pending = sent.filter((s) => outcomeOf(db, s.qid).outcome === 'pending');
      const detail = pending.map((s) => `${s.name}: ${outcomeOf(db, s.qid).reason}`).join('; ');
      db.close();
      throw new Error(`${err.message}: ${detail}`);
    });
    const db = queueDb(dataDir);
    const tally: Record<Outcome, number> = { delivered: 0, protected: 0, held: 0, pending: 0 };
    const reasons = new Set<string>();
    try {
      for (const s of sent) {
        const o = outcomeOf(db, s.qid);
        tally[o.outcome]++;
        if (o.reason) reasons.add(`${s.name} → ${o.reason}`);
      }
    } finally {
      db.close();
    }
    const slowest = (() => {
      const d = queueDb(dataDir);
      try {
        let worst = { name: '', ms: 0 };
        for (const s of sent) {
          const row = d.prepare('SELECT created_at, updated_at FROM messages WHERE id = ?').get(s.qid) as {
            created_at: number;
            updated_at: number;
          };
          const ms = Number(row.updated_at) - Number(row.created_at);
          if (ms > worst.ms) worst = { name: s.name, ms };
        }
        return worst;
      } finally {
        d.close();
      }
    })();
    report(`      slowest to an outcome: ${slowest.name} (${slowest.ms} ms)`);
    const hwm = Math.round(vmHwmKb(child!.child.pid!) / 1024);
    report(
      `      ${label}: ${inputs.length} inputs in ${Math.round((Date.now() - started) / 1000)} s; delivered ${tally.delivered}, protected ${tally.protected}, held ${tally.held}; refused at SMTP ${refused.length}; VmHWM ${hwm} MB`,
    );
    for (const r of [...reasons, ...refused]) report(`        ${r}`);
    expect(child!.child.exitCode, 'the gateway crashed').to.equal(null);
    expect(tally.pending).to.equal(0);
    expect(hwm, 'peak memory of the gateway process').to.be.below(MEMORY_LIMIT_MB);
    expect(slowest.ms, 'time from 250 to an outcome (stageTimeout is 20 s)').to.be.below(30000);
    return { sent, refused, tally };
  }

  return {
    get child() {
      return child!;
    },
    get capture() {
      return capture;
    },
    get dataDir() {
      return dataDir;
    },
    run,
  };
}
