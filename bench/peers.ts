// `npm run bench:peers`: phi-gateway beside real peers on this machine, same load, same next hop — the
// limit (the load generator straight into the next hop), Debian Postfix as a plain relay with its durable
// queue (a throwaway instance configured here, loopback only), and phi-gateway's clean path. Reports
// messages/s to acceptance and to delivery, p50/p99 time to 250, CPU seconds per 1000 messages of the
// relay's processes and their peak RSS, with ratios to Postfix. It measures; it asserts nothing.
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { queueSchema } from '../config/schema.js';
import { removeDir, spawnGateway, tempDir } from '../test/support/gateway.js';
import { startPostfix, which } from '../test/support/postfix.js';
import { ArrivalServer } from './arrival-server.js';
import { makeMessages, type BenchMessage } from './message.js';
import { runLoad } from './smtp-load.js';

const N = Number(process.env.BENCH_N ?? 2000);
const SIZES = (process.env.BENCH_SIZES ?? '5120,102400').split(',').map(Number);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS_LIST ?? '10,1').split(',').map(Number);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 180) * 1000;

interface ProcStat {
  cpuMs: number;
  rssKb: number;
}

/** CPU time (ms) and high-water RSS of every process whose command line matches `pattern`. */
function procStats(pattern: RegExp): ProcStat {
  const tick = 100; // USER_HZ on Linux
  let cpuMs = 0;
  let rssKb = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (!pattern.test(cmd)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuMs += ((Number(fields[11]) + Number(fields[12])) * 1000) / tick;
      const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      rssKb += Number(hwm?.[1] ?? 0);
    } catch {
      // The process ended between listing and reading.
    }
  }
  return { cpuMs, rssKb };
}

interface Row {
  peer: string;
  size: number;
  connections: number;
  acceptRate: number;
  deliverRate: number;
  p50: number;
  p99: number;
  cpuSPer1000: number | null;
  rssMb: number | null;
  ok: boolean;
}

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;
}

async function measure(
  peer: string,
  port: number,
  server: ArrivalServer,
  messages: BenchMessage[],
  connections: number,
  procPattern: RegExp | null,
): Promise<Row> {
  const before = procPattern ? procStats(procPattern) : null;
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const t0 = performance.now();
  const load = await runLoad({ host: '127.0.0.1', port, connections, messages, signal });
  const tAccepted = performance.now();
  const accepted = [...load.accepted].filter(Number.isFinite).length;
  const ok = await server.waitFor(accepted, signal);
  const tDelivered = performance.now();
  const after = procPattern ? procStats(procPattern) : null;
  const lat: number[] = [];
  for (let i = 0; i < messages.length; i++) {
    const d = load.accepted[i]! - load.started[i]!;
    if (Number.isFinite(d)) lat.push(d);
  }
  lat.sort((a, b) => a - b);
  return {
    peer,
    size: messages[0]!.size,
    connections,
    acceptRate: accepted / ((tAccepted - t0) / 1000),
    deliverRate: server.distinct / ((tDelivered - t0) / 1000),
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    cpuSPer1000: before && after ? (after.cpuMs - before.cpuMs) / messages.length : null,
    rssMb: after ? after.rssKb / 1024 : null,
    ok: ok && accepted === messages.length && server.corrupt === 0 && load.failures.length === 0,
  };
}

async function main(): Promise<number> {
  console.log(
    `phi-gateway vs peers: ${N} messages per run, sizes ${SIZES.map((s) => `${s / 1024} KB`).join(' and ')}, ` +
      `connections ${CONNECTIONS.join(' and ')}; Node ${process.version}, ${os.cpus().length} CPUs, ` +
      `load average ${os.loadavg()[0]!.toFixed(2)}`,
  );
  if (!(await which('postfix'))) {
    console.error('postfix is not installed (Debian package postfix): cannot run the Postfix peer');
    return 1;
  }
  console.log('Haraka is not part of this run (not a dependency of the project).\n');
  const rows: Row[] = [];
  let run = 0;
  for (const size of SIZES) {
    for (const connections of CONNECTIONS) {
      const n = connections === 1 ? Math.min(N, 500) : N;
      const tag = () => `peers-${process.pid}-${run++}`;
      // 1. The limit: the load generator straight into the next hop.
      {
        const t = tag();
        const server = new ArrivalServer(t, n);
        await server.start();
        rows.push(
          await measure('limit (direct)', server.port, server, makeMessages(n, t, size), connections, null),
        );
        await server.stop();
      }
      // 2. Postfix, a plain relay with its durable queue, relayhost = the next hop.
      {
        const t = tag();
        const server = new ArrivalServer(t, n);
        await server.start();
        const postfix = await startPostfix({
          main: [
            `relayhost = [127.0.0.1]:${server.port}`,
            'smtp_tls_security_level = none',
            'default_destination_concurrency_limit = 20',
            'smtpd_client_connection_count_limit = 0',
          ],
        });
        try {
          rows.push(
            await measure(
              'Postfix relay',
              postfix.port,
              server,
              makeMessages(n, t, size),
              connections,
              /postfix|\/usr\/lib\/postfix/,
            ),
          );
        } finally {
          await postfix.stop();
          await server.stop();
        }
      }
      // 3. phi-gateway, clean path (scan included, fsync before 250).
      {
        const t = tag();
        const server = new ArrivalServer(t, n);
        await server.start();
        const dataDir = await tempDir('phigw-peers-');
        const gw = await spawnGateway({
          dataDir,
          relayUrl: server.url,
          overrides: { logLevel: 'info', queue: queueSchema.parse({}), redaction: { gateway: 'off' } },
        });
        try {
          rows.push(
            await measure(
              'phi-gateway clean',
              gw.smtpPort,
              server,
              makeMessages(n, t, size),
              connections,
              new RegExp(`phi-gateway\\.js start smtp`),
            ),
          );
        } finally {
          await gw.kill('SIGTERM');
          await server.stop();
          await removeDir(dataDir);
        }
      }
    }
  }
  const header = [
    'peer',
    'size',
    'conns',
    'accept msg/s',
    'deliver msg/s',
    '250 p50/p99 ms',
    'CPU s/1000',
    'peak RSS',
    'vs Postfix',
    'complete',
  ];
  const out: string[][] = [header];
  for (const r of rows) {
    const postfix = rows.find(
      (x) => x.peer === 'Postfix relay' && x.size === r.size && x.connections === r.connections,
    );
    out.push([
      r.peer,
      `${(r.size / 1024).toFixed(0)} KB`,
      String(r.connections),
      r.acceptRate.toFixed(0),
      r.deliverRate.toFixed(0),
      `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)}`,
      r.cpuSPer1000 === null ? '-' : r.cpuSPer1000.toFixed(2),
      r.rssMb === null ? '-' : `${r.rssMb.toFixed(0)} MB`,
      postfix ? `${(r.deliverRate / postfix.deliverRate).toFixed(2)}x` : '-',
      r.ok ? 'yes' : 'NO',
    ]);
  }
  const widths = header.map((_, c) => Math.max(...out.map((r) => r[c]!.length)));
  for (const [i, r] of out.entries()) {
    console.log(
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
    );
    if (i === 0) console.log('-'.repeat(widths.reduce((a, b) => a + b + 2, -2)));
  }
  const gw = rows.find(
    (r) => r.peer === 'phi-gateway clean' && r.size === SIZES[0] && r.connections === CONNECTIONS[0],
  );
  const pf = rows.find(
    (r) => r.peer === 'Postfix relay' && r.size === SIZES[0] && r.connections === CONNECTIONS[0],
  );
  if (gw && pf)
    console.log(
      `\nclean path vs Postfix, end to end (${(SIZES[0]! / 1024).toFixed(0)} KB, ${CONNECTIONS[0]} connections): ` +
        `${(gw.deliverRate / pf.deliverRate).toFixed(2)}x (target >= 1.0x: ${gw.deliverRate >= pf.deliverRate ? 'met' : 'NOT met'})`,
    );
  return rows.every((r) => r.ok) ? 0 : 1;
}

process.exitCode = await main();
