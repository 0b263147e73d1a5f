// `npm run bench`: clean mail through a real gateway process into a real next hop, against the same load sent
// straight to that next hop (the limit). It measures and reports; it asserts nothing about speed, and exits
// non-zero only when the run itself breaks (messages missing, duplicated or altered, a process dying, timeout).
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { queueSchema, relaySchema } from '../config/schema.js';
import { removeDir, spawnGateway, tempDir, type ChildGateway } from '../test/support/gateway.js';
import { ArrivalServer } from './arrival-server.js';
import { makeMessages, type BenchMessage } from './message.js';
import { readCpuMs, readMemory, type MemoryStats } from './proc-stats.js';
import { runLoad, type LoadResult } from './smtp-load.js';

const TARGET_PER_SECOND = 500;
/** After the last expected arrival, how long to keep listening for duplicates. */
const SETTLE_MS = 500;

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

const settings = {
  messages: intFromEnv('BENCH_N', 2000),
  connections: intFromEnv('BENCH_CONNECTIONS', 10),
  messageBytes: intFromEnv('BENCH_SIZE', 5 * 1024),
  timeoutSeconds: intFromEnv('BENCH_TIMEOUT_S', 120),
  /** The gateway's log level; info is what production runs with. */
  logLevel: process.env.BENCH_LOG_LEVEL || 'info',
};

// Production queue settings, not the harness's fast test retries: a retry in the middle of a run should
// show up in the figures, not be hidden by a 200 ms backoff.
const queue = queueSchema.parse({});
const relay = relaySchema.parse({});

interface GatewayStats {
  memory?: MemoryStats;
  cpuMs?: number;
  logWarnings: number;
  logErrors: number;
}

interface Phase {
  name: string;
  messages: readonly BenchMessage[];
  load: LoadResult;
  server: ArrivalServer;
  /** Every accepted message arrived before the deadline. */
  complete: boolean;
  wallMs: number;
  benchCpuMs: number;
  gateway?: GatewayStats;
}

function finite(values: Iterable<number>): number[] {
  return [...values].filter((v) => Number.isFinite(v));
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function latencies(phase: Phase, end: Float64Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < end.length; i++) {
    const d = end[i]! - phase.load.started[i]!;
    if (Number.isFinite(d)) out.push(d);
  }
  return out.sort((a, b) => a - b);
}

function summarise(phase: Phase) {
  const started = finite(phase.load.started);
  const accepted = finite(phase.load.accepted);
  const arrived = finite(phase.server.arrived);
  const first = Math.min(...started);
  const lastAccepted = Math.max(...accepted);
  const lastArrived = Math.max(...arrived);
  let duplicates = 0;
  for (const c of phase.server.copies) if (c > 1) duplicates += c - 1;
  const toAccept = latencies(phase, phase.load.accepted);
  const toDeliver = latencies(phase, phase.server.arrived);
  return {
    sent: started.length,
    accepted: accepted.length,
    delivered: phase.server.distinct,
    missing: phase.messages.length - phase.server.distinct,
    duplicates,
    corrupt: phase.server.corrupt,
    unknown: phase.server.unknown,
    endToEndRate: arrived.length > 0 ? arrived.length / ((lastArrived - first) / 1000) : NaN,
    acceptRate: accepted.length > 0 ? accepted.length / ((lastAccepted - first) / 1000) : NaN,
    accept50: percentile(toAccept, 50),
    accept99: percentile(toAccept, 99),
    deliver50: percentile(toDeliver, 50),
    deliver99: percentile(toDeliver, 99),
    spanMs: arrived.length > 0 ? lastArrived - first : NaN,
    /** Share delivered by the time the last message was accepted: how far delivery lags behind intake. */
    deliveredAtLastAccept:
      accepted.length > 0 ? arrived.filter((t) => t <= lastAccepted).length / phase.messages.length : NaN,
  };
}

type Summary = ReturnType<typeof summarise>;

function broken(phase: Phase, s: Summary): boolean {
  return (
    !phase.complete ||
    s.missing > 0 ||
    s.duplicates > 0 ||
    s.corrupt > 0 ||
    s.unknown > 0 ||
    phase.load.failures.length > 0
  );
}

/** Counts pino lines at warn (40) and error/fatal (50, 60) in the gateway's stdout. */
function countLogLevels(stdout: string): { warnings: number; errors: number } {
  let warnings = 0;
  let errors = 0;
  for (const m of stdout.matchAll(/"level":(\d+)/g)) {
    const level = Number(m[1]);
    if (level >= 50) errors++;
    else if (level >= 40) warnings++;
  }
  return { warnings, errors };
}

async function stopGateway(gw: ChildGateway): Promise<void> {
  const stopped = gw.kill('SIGTERM');
  const timedOut = await Promise.race([stopped.then(() => false), sleep(15_000).then(() => true)]);
  if (timedOut) await gw.kill('SIGKILL');
}

async function measure(
  name: string,
  messages: readonly BenchMessage[],
  server: ArrivalServer,
  port: number,
  signal: AbortSignal,
  child?: ChildGateway,
): Promise<Phase> {
  const cpuBefore = child?.child.pid ? readCpuMs(child.child.pid) : undefined;
  const benchCpuBefore = process.cpuUsage();
  const t0 = performance.now();
  const load = await runLoad({
    host: '127.0.0.1',
    port,
    connections: settings.connections,
    messages,
    signal,
  });
  const acceptedCount = finite(load.accepted).length;
  const complete = await server.waitFor(acceptedCount, signal);
  const wallMs = performance.now() - t0;
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const pid = child?.child.pid;
  const cpuAfter = pid ? readCpuMs(pid) : undefined;
  if (complete) await sleep(SETTLE_MS, undefined, { signal }).catch(() => undefined);
  const phase: Phase = {
    name,
    messages,
    load,
    server,
    complete: complete && !signal.aborted,
    wallMs,
    benchCpuMs: (benchCpu.user + benchCpu.system) / 1000,
  };
  if (child && pid) {
    // Read before the process is stopped: VmHWM is the peak over its whole life, start-up included.
    const logs = countLogLevels(child.stdout());
    if (process.env.BENCH_GATEWAY_OUT) fs.writeFileSync(process.env.BENCH_GATEWAY_OUT, child.stdout());
    phase.gateway = {
      memory: readMemory(pid),
      cpuMs: cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined,
      logWarnings: logs.warnings,
      logErrors: logs.errors,
    };
  }
  return phase;
}

function fmt(value: number | undefined, digits = 0): string {
  return value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

function mb(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? '-' : `${(bytes / (1024 * 1024)).toFixed(0)} MB`;
}

function report(gateway: Phase | undefined, direct: Phase | undefined): void {
  const g = gateway ? summarise(gateway) : undefined;
  const d = direct ? summarise(direct) : undefined;
  const ratio = (a: number | undefined, b: number | undefined) =>
    a !== undefined && b !== undefined && b > 0 ? fmt(a / b, 2) : '-';
  const pct = (cpuMs: number | undefined, wallMs: number | undefined) =>
    cpuMs !== undefined && wallMs !== undefined && wallMs > 0 ? `${fmt((100 * cpuMs) / wallMs)} %` : '-';
  const pctOf = (share: number | undefined) =>
    share !== undefined && Number.isFinite(share) ? `${fmt(100 * share)} %` : '-';
  const rows: Array<[string, string, string, string]> = [
    ['', 'gateway', 'limit (direct)', 'gateway/limit'],
    ['messages sent', fmt(g?.sent), fmt(d?.sent), ''],
    ['accepted (250)', fmt(g?.accepted), fmt(d?.accepted), ''],
    ['delivered (distinct X-Bench-Seq)', fmt(g?.delivered), fmt(d?.delivered), ''],
    [
      'missing / duplicates',
      `${fmt(g?.missing)} / ${fmt(g?.duplicates)}`,
      `${fmt(d?.missing)} / ${fmt(d?.duplicates)}`,
      '',
    ],
    [
      'body altered / not ours',
      `${fmt(g?.corrupt)} / ${fmt(g?.unknown)}`,
      `${fmt(d?.corrupt)} / ${fmt(d?.unknown)}`,
      '',
    ],
    [
      'end to end (msg/s)',
      fmt(g?.endToEndRate),
      fmt(d?.endToEndRate),
      ratio(g?.endToEndRate, d?.endToEndRate),
    ],
    ['to acceptance (msg/s)', fmt(g?.acceptRate), fmt(d?.acceptRate), ratio(g?.acceptRate, d?.acceptRate)],
    [
      'time to 250, p50 / p99 (ms)',
      `${fmt(g?.accept50, 1)} / ${fmt(g?.accept99, 1)}`,
      `${fmt(d?.accept50, 1)} / ${fmt(d?.accept99, 1)}`,
      '',
    ],
    [
      'time to delivery, p50 / p99 (ms)',
      `${fmt(g?.deliver50, 1)} / ${fmt(g?.deliver99, 1)}`,
      `${fmt(d?.deliver50, 1)} / ${fmt(d?.deliver99, 1)}`,
      '',
    ],
    [
      'delivered when the last 250 came',
      pctOf(g?.deliveredAtLastAccept),
      pctOf(d?.deliveredAtLastAccept),
      '',
    ],
    [
      'first send to last delivery (s)',
      fmt((g?.spanMs ?? NaN) / 1000, 2),
      fmt((d?.spanMs ?? NaN) / 1000, 2),
      '',
    ],
    ['gateway peak RSS (VmHWM)', mb(gateway?.gateway?.memory?.peakRss), '', ''],
    ['gateway RSS at end (VmRSS)', mb(gateway?.gateway?.memory?.rss), '', ''],
    ['gateway CPU (of one core)', pct(gateway?.gateway?.cpuMs, gateway?.wallMs), '', ''],
    [
      'bench process CPU (of one core)',
      pct(gateway?.benchCpuMs, gateway?.wallMs),
      pct(direct?.benchCpuMs, direct?.wallMs),
      '',
    ],
    [
      'gateway log warnings / errors',
      `${fmt(gateway?.gateway?.logWarnings)} / ${fmt(gateway?.gateway?.logErrors)}`,
      '',
      '',
    ],
  ];
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   ');
  console.log(line(rows[0]!));
  console.log('-'.repeat(line(rows[0]!).length));
  for (const r of rows.slice(1)) console.log(line(r));
  console.log('');
  if (g && gateway?.complete && Number.isFinite(g.endToEndRate)) {
    const verdict = g.endToEndRate >= TARGET_PER_SECOND ? 'met' : 'NOT met';
    console.log(
      `target >= ${TARGET_PER_SECOND} msg/s end to end through the gateway: ${verdict} (${fmt(g.endToEndRate)} msg/s)`,
    );
  }
  for (const phase of [gateway, direct]) {
    if (!phase) continue;
    const failures = phase.load.failures;
    if (failures.length > 0) {
      console.log(
        `${phase.name}: ${failures.length} message(s) refused or cut off; first: ${failures
          .slice(0, 3)
          .map((f) => `#${f.seq} at ${f.step}: ${f.reply}`)
          .join('; ')}`,
      );
    }
    for (const e of phase.load.connectionErrors.slice(0, 3)) console.log(`${phase.name}: ${e}`);
    if (!phase.complete)
      console.log(
        `${phase.name}: incomplete: ${phase.server.distinct} of ${finite(phase.load.accepted).length} accepted messages arrived`,
      );
  }
}

async function main(): Promise<number> {
  const { messages: n, connections, messageBytes, timeoutSeconds } = settings;
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new Error(`timed out after ${timeoutSeconds} s`)),
    timeoutSeconds * 1000,
  );
  const onSigint = () => deadline.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);

  const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const gatewayMessages = makeMessages(n, `gw-${runId}`, messageBytes);
  const directMessages = makeMessages(n, `direct-${runId}`, messageBytes);
  const avgSize = gatewayMessages.reduce((sum, m) => sum + m.size, 0) / n;
  console.log(
    `phi-gateway benchmark: ${n} clean messages of ~${(avgSize / 1024).toFixed(1)} KB over ${connections} SMTP connections; ` +
      `Node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0]!.toFixed(2)}, abort after ${timeoutSeconds} s`,
  );
  console.log(
    `gateway: child process, fresh data dir, log level ${settings.logLevel}, queue workers ${queue.workers}, ` +
      `delivery concurrency ${queue.deliveryConcurrency}, relay pool of ${relay.maxConnections} connections (defaults)\n`,
  );

  const dataDir = await tempDir('phigw-bench-');
  let child: ChildGateway | undefined;
  const servers: ArrivalServer[] = [];
  let gatewayPhase: Phase | undefined;
  let directPhase: Phase | undefined;
  let problem: string | undefined;
  try {
    // 1. Through the gateway.
    const capture = new ArrivalServer(`gw-${runId}`, n);
    servers.push(capture);
    await capture.start();
    child = await spawnGateway({
      dataDir,
      relayUrl: capture.url,
      overrides: { logLevel: settings.logLevel, queue },
      // BENCH_CPU_PROF=DIR: a V8 CPU profile of the gateway process, for `--cpu-prof` analysis.
      // BENCH_NODE_ARGS: extra node flags for the gateway (V8 heap settings, for comparisons).
      nodeArgs: [
        ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
        ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      ],
    });
    const gw = child;
    const died = new AbortController();
    gw.child.once('exit', (code, sig) =>
      died.abort(new Error(`gateway exited (${code ?? sig}) during the run`)),
    );
    const phaseSignal = AbortSignal.any([deadline.signal, died.signal]);
    gatewayPhase = await measure('gateway', gatewayMessages, capture, gw.smtpPort, phaseSignal, gw);
    if (died.signal.aborted) {
      problem = String((died.signal.reason as Error).message);
      process.stderr.write(`gateway stderr (tail):\n${gw.stderr().slice(-2000)}\n`);
    }
    await stopGateway(gw);
    await capture.stop();

    // 2. The limit: the same load straight into the next hop.
    if (!deadline.signal.aborted) {
      const direct = new ArrivalServer(`direct-${runId}`, n);
      servers.push(direct);
      await direct.start();
      directPhase = await measure('limit', directMessages, direct, direct.port, deadline.signal);
      await direct.stop();
    }
  } catch (err) {
    problem = err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSigint);
    if (child) await stopGateway(child).catch(() => undefined);
    for (const s of servers) await s.stop().catch(() => undefined);
    await removeDir(dataDir).catch(() => undefined);
  }

  report(gatewayPhase, directPhase);
  if (deadline.signal.aborted) problem ??= String((deadline.signal.reason as Error).message);
  const phases = [gatewayPhase, directPhase].filter((p): p is Phase => !!p);
  if (!problem && phases.length < 2) problem = 'a phase did not run';
  for (const p of phases)
    if (broken(p, summarise(p))) problem ??= `${p.name}: messages missing, duplicated, altered or refused`;
  if (problem) {
    console.error(`\nbench run broken: ${problem}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main();
