// `npm run bench` (part): PHI mail through the protected paths of a real gateway process — PGP/MIME for a
// recipient with a key, secure pickup (notice + password) for one without — against the clean path in the
// same run, with 5 KB messages and with a 1 MB attachment; then the time to open a pickup through the
// web API. It measures and reports; it exits non-zero only when the run breaks (mail missing, timeout).
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../config/log.js';
import { queueSchema } from '../config/schema.js';
import { Keyring } from '../store/pgp-keyring.js';
import { Store } from '../store/store.js';
import { CaptureServer } from '../test/support/capture-server.js';
import { removeDir, spawnGateway, tempDir, type ChildGateway } from '../test/support/gateway.js';
import { makeKey } from '../test/support/pgp.js';
import { createWebApp } from '../web/app.js';
import type { BenchMessage } from './message.js';
import { readCpuMs } from './proc-stats.js';
import { runLoad } from './smtp-load.js';

const N = Number(process.env.BENCH_PROTECT_N ?? 400);
const N_LARGE = Number(process.env.BENCH_PROTECT_LARGE_N ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 300) * 1000;

const FILLER =
  'The supply order for gloves and masks is attached to the schedule update; please confirm the delivery window with the front desk. ';

function phiMessage(seq: number, rcpt: string, opts: { phi: boolean; attachment?: Buffer }): BenchMessage {
  const head = [
    `From: "Dr Ann Lee" <ann@clinic.example>`,
    `To: <${rcpt}>`,
    `Subject: ${opts.phi ? '[secure] Results' : 'Supply order'} ${seq}`,
    `Date: ${new Date(Date.UTC(2026, 10, 30, 9) + seq * 1000).toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <bench-${seq}-${randomBytes(4).toString('hex')}@clinic.example>`,
    'MIME-Version: 1.0',
  ];
  let text = opts.phi
    ? `Patient: Jane Roe, DOB 04/12/1961, MRN ${4821337 + seq}. Diagnosed with type 2 diabetes; metformin prescribed.\r\n\r\n`
    : 'Hello team,\r\n\r\n';
  while (text.length < 5000) text += FILLER + '\r\n';
  let body: string;
  if (opts.attachment) {
    const b = `bench-${seq}`;
    head.push(`Content-Type: multipart/mixed; boundary="${b}"`);
    body = [
      `--${b}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      text,
      `--${b}`,
      'Content-Type: application/octet-stream; name="scan.bin"',
      'Content-Disposition: attachment; filename="scan.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      opts.attachment.toString('base64').replace(/.{76}/g, '$&\r\n'),
      `--${b}--`,
      '',
    ].join('\r\n');
  } else {
    head.push('Content-Type: text/plain; charset=utf-8');
    body = text;
  }
  const message = Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`, 'utf8');
  return {
    seq,
    mailFrom: 'ann@clinic.example',
    rcptTo: rcpt,
    size: message.length,
    wire: Buffer.concat([message, Buffer.from('\r\n.\r\n')]),
    bodySha256: '',
  };
}

interface PathResult {
  name: string;
  messages: number;
  rate: number;
  accept50: number;
  accept99: number;
  cpuMsPerMessage: number;
}

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;
}

async function runPath(
  name: string,
  gw: ChildGateway,
  capture: CaptureServer,
  messages: BenchMessage[],
  arrivalsPerMessage: number,
): Promise<PathResult> {
  const pid = gw.child.pid!;
  const cpu0 = readCpuMs(pid) ?? 0;
  const base = capture.count;
  const t0 = performance.now();
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const load = await runLoad({
    host: '127.0.0.1',
    port: gw.smtpPort,
    connections: CONNECTIONS,
    messages,
    signal,
  });
  if (load.failures.length > 0)
    throw new Error(`${name}: ${load.failures.length} refused, first: ${load.failures[0]!.reply}`);
  await Promise.race([
    capture.waitFor(base + messages.length * arrivalsPerMessage),
    new Promise((_, reject) =>
      signal.addEventListener('abort', () => reject(new Error(`${name}: timed out`))),
    ),
  ]);
  const wallMs = performance.now() - t0;
  const cpu1 = readCpuMs(pid) ?? cpu0;
  const acc: number[] = [];
  for (let i = 0; i < messages.length; i++) acc.push(load.accepted[i]! - load.started[i]!);
  acc.sort((a, b) => a - b);
  return {
    name,
    messages: messages.length,
    rate: messages.length / (wallMs / 1000),
    accept50: pct(acc, 50),
    accept99: pct(acc, 99),
    cpuMsPerMessage: (cpu1 - cpu0) / messages.length,
  };
}

async function main(): Promise<number> {
  console.log(
    `phi-gateway protection benchmark: ${N} messages of ~5 KB per path and ${N_LARGE} with a 1 MB attachment, ${CONNECTIONS} connections; ` +
      `Node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}\n`,
  );
  const dataDir = await tempDir('phigw-bench-protect-');
  const capture = new CaptureServer({ keep: false });
  await capture.start();
  let gw: ChildGateway | undefined;
  try {
    // The partner's key goes into the keyring before the gateway starts, as `keys import` would put it.
    const partner = await makeKey('partner@lab.example', { name: 'Lab Partner' });
    const setupConfig = loadConfig({ PHIGW_DATA_DIR: dataDir });
    const store = await Store.open(setupConfig);
    await new Keyring(store, setupConfig.pgp).importArmored(partner.publicArmored, 'bench');
    await store.close();

    gw = await spawnGateway({
      dataDir,
      relayUrl: capture.url,
      overrides: {
        logLevel: 'info',
        queue: queueSchema.parse({}),
        pickup: { passwordDelay: 0 },
        practiceName: 'Bench Dental',
      },
    });
    const mb = randomBytes(1024 * 1024);
    const results: PathResult[] = [];
    // Warm-up (org key generation, key parsing, JIT) is not measured.
    await runPath(
      'warm-up',
      gw,
      capture,
      [
        phiMessage(0, 'partner@lab.example', { phi: true }),
        phiMessage(1, 'patient@mail.example', { phi: true }),
      ],
      1.5,
    );
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    results.push(
      await runPath(
        'clean, 5 KB',
        gw,
        capture,
        range(N).map((i) => phiMessage(i, 'partner@lab.example', { phi: false })),
        1,
      ),
    );
    results.push(
      await runPath(
        'PGP, 5 KB',
        gw,
        capture,
        range(N).map((i) => phiMessage(i, 'partner@lab.example', { phi: true })),
        1,
      ),
    );
    results.push(
      await runPath(
        'pickup, 5 KB',
        gw,
        capture,
        range(N).map((i) => phiMessage(i, 'patient@mail.example', { phi: true })),
        2,
      ),
    );
    results.push(
      await runPath(
        'clean, 1 MB attachment',
        gw,
        capture,
        range(N_LARGE).map((i) => phiMessage(i, 'partner@lab.example', { phi: false, attachment: mb })),
        1,
      ),
    );
    results.push(
      await runPath(
        'PGP, 1 MB attachment',
        gw,
        capture,
        range(N_LARGE).map((i) => phiMessage(i, 'partner@lab.example', { phi: true, attachment: mb })),
        1,
      ),
    );
    results.push(
      await runPath(
        'pickup, 1 MB attachment',
        gw,
        capture,
        range(N_LARGE).map((i) => phiMessage(i, 'patient@mail.example', { phi: true, attachment: mb })),
        2,
      ),
    );

    const rows = [
      ['path', 'msg/s end to end', 'to 250 p50 / p99 (ms)', 'gateway CPU ms/msg'],
      ...results.map((r) => [
        r.name,
        r.rate.toFixed(0),
        `${r.accept50.toFixed(1)} / ${r.accept99.toFixed(1)}`,
        r.cpuMsPerMessage.toFixed(1),
      ]),
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const [i, r] of rows.entries()) {
      console.log(
        r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   '),
      );
      if (i === 0) console.log('-'.repeat(widths.reduce((a, b) => a + b + 3, -3)));
    }
    const clean = results[0]!.rate;
    const pgp = results[1]!.rate;
    console.log(
      `\nPGP / clean (5 KB): ${(pgp / clean).toFixed(2)} (target >= 0.50: ${pgp / clean >= 0.5 ? 'met' : 'NOT met'})`,
    );
    console.log(`pickup / clean (5 KB): ${(results[2]!.rate / clean).toFixed(2)}`);

    // Time to open a pickup: the recipient's POST with the password, through the web app on the same data.
    const keep = new CaptureServer();
    await keep.start();
    await gw.kill('SIGTERM');
    gw = await spawnGateway({
      dataDir,
      relayUrl: keep.url,
      overrides: { pickup: { passwordDelay: 0 }, queue: queueSchema.parse({}) },
    });
    const samples = 30;
    await runLoad({
      host: '127.0.0.1',
      port: gw.smtpPort,
      connections: 2,
      messages: range(samples).map((i) => phiMessage(i, 'patient@mail.example', { phi: true })),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    await keep.waitFor(samples * 2);
    // Notice and password mail of one pickup share its reference code.
    const tokenByRef = new Map<string, string>();
    const passwordByRef = new Map<string, string>();
    for (const m of keep.messages) {
      const raw = m.raw.toString('latin1').replace(/=\r\n/g, '');
      const ref = /[Rr]eference:? ([A-Z0-9-]{4,})/.exec(raw)?.[1];
      const t = /\/p\/([A-Za-z0-9_-]{20,})/.exec(raw);
      const p = /^Password: (\S+)\r?$/m.exec(raw);
      if (!ref) continue;
      if (raw.includes('X-PHI-Gateway-Kind: pickup-notice') && t) tokenByRef.set(ref, t[1]!);
      if (raw.includes('X-PHI-Gateway-Kind: pickup-password') && p) passwordByRef.set(ref, p[1]!);
    }
    const webConfig = loadConfig({ PHIGW_DATA_DIR: dataDir });
    const webStore = await Store.open(webConfig);
    const server = createWebApp({ config: webConfig, store: webStore, log: createLogger('silent') }).listen(
      0,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const times: number[] = [];
    for (const [ref, token] of tokenByRef) {
      const password = passwordByRef.get(ref);
      if (!password) continue;
      const t0 = performance.now();
      const res = await fetch(`${url}/api/pickups/${token}/open`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ password }),
      });
      await res.arrayBuffer();
      if (res.status === 200) times.push(performance.now() - t0);
    }
    server.close();
    await webStore.close();
    await keep.stop();
    times.sort((a, b) => a - b);
    console.log(
      `time to open a pickup (POST /api/pickups/<token>/open, 5 KB message): p50 ${pct(times, 50).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms over ${times.length} opens`,
    );
    return times.length > 0 ? 0 : 1;
  } catch (err) {
    console.error(`bench run broken: ${err instanceof Error ? err.message : String(err)}`);
    if (gw) process.stderr.write(gw.stderr().slice(-2000));
    return 1;
  } finally {
    if (gw) await gw.kill('SIGTERM').catch(() => undefined);
    await capture.stop();
    await removeDir(dataDir).catch(() => undefined);
  }
}

process.exitCode = await main();
