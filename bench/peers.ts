// `npm run bench:peers`: phi-gateway beside real peers on this machine, same load, same next hop — the
// limit (the load generator straight into the next hop), Debian Postfix as a plain relay with its durable
// queue and Haraka as a pass-through relay (throwaway instances configured here, loopback only), and
// phi-gateway's clean, PGP and pickup paths. Reports messages/s to acceptance and to delivery, p50/p99 time
// to 250, CPU seconds per 1000 messages of the relay's process tree and its peak RSS, with ratios to
// Postfix; the next hop checks each message arrived exactly once. It measures; it asserts nothing.
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../config/load.js';
import { queueSchema } from '../config/schema.js';
import { Keyring } from '../store/pgp-keyring.js';
import { Store } from '../store/store.js';
import { removeDir, spawnGateway, tempDir, type ChildGateway } from '../test/support/gateway.js';
import { makeKey } from '../test/support/pgp.js';
import { startPostfix, which } from '../test/support/postfix.js';
import { ArrivalServer } from './arrival-server.js';
import { startHaraka } from './haraka.js';
import { makeMessages, makePhiMessage, type BenchMessage, type BodyCache } from './message.js';
import { runLoad } from './smtp-load.js';

const N = Number(process.env.BENCH_N ?? 2000);
/**
 * BENCH_REPEAT: rounds of every peer at each size and connection count, one after the other (Postfix, then the
 * gateway's rows, then Postfix again …), each gateway row compared with the Postfix row of its own round, and the
 * median ratio reported: on a shared machine one pair of runs can differ from the next by more than the gap measured.
 */
const REPEAT = Math.max(1, Math.floor(Number(process.env.BENCH_REPEAT ?? 1)) || 1);
/** BENCH_THREADS=1: also the CPU per message of each thread of the relay's root process (Row.threads). */
const THREADS = !!process.env.BENCH_THREADS;
const SIZES = (process.env.BENCH_SIZES ?? '5120,102400').split(',').map(Number);
const CONNECTIONS = (process.env.BENCH_CONNECTIONS_LIST ?? '10,1').split(',').map(Number);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_S ?? 180) * 1000;
/** Which rows to run (comma list): limit, postfix, haraka, clean, pgp, pickup. */
const PEERS = new Set((process.env.BENCH_PEERS ?? 'limit,postfix,haraka,clean,pgp,pickup').split(','));
/** Haraka's `nodes` (smtp.ini): default 1 worker (one process serves all connections, like phi-gateway). */
const HARAKA_NODES = process.env.BENCH_HARAKA_NODES || undefined;
/**
 * Warm-up before measuring, not counted, the same for every relay: rounds of BENCH_WARMUP messages for at
 * least BENCH_WARMUP_S seconds. A long-running relay is measured in its steady state, not while a JIT
 * compiles its code (phi-gateway, Haraka) or caches fill (all of them). Measured on phi-gateway's clean
 * path (CPU of V8's compiler threads per 2 s, /proc): still ~0.4 of a core after 300 messages, settling
 * only after ~5,000 (~0.1 core) — on this 2-core machine that compiling competes with everything else. The
 * rounds reuse their bodies (BodyCache): at 100 KB, making them afresh left the relay idle half of the 15 s,
 * and it then met ~1,800 messages instead of ~4,000 (V8 compiled 62 of its functions for the first time in
 * the measured phase, ~0.5 s of compiler time in a 2,000-message run; ~0.3 s after the change).
 */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 300);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_S ?? 15) * 1000;
/** Time the next hop is watched after the last arrival, for late duplicates. */
const SETTLE_MS = 500;

interface TreeStat {
  cpuMs: number;
  rssKb: number;
}

/** The fields of a /proc stat file after the command name (which is in parentheses and may hold spaces). */
function statFields(file: string): string[] {
  const stat = readFileSync(file, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU ms of `ticks` clock ticks (USER_HZ on Linux). */
const ticksMs = (ticks: number): number => (ticks * 1000) / 100;

/** Parent pid, own CPU and reaped children's CPU (ms) of a process, from /proc/<pid>/stat. */
function readStat(pid: string): { ppid: number; cpuMs: number } | undefined {
  try {
    const f = statFields(`/proc/${pid}/stat`);
    // utime + stime + cutime + cstime: CPU of children that already exited counts for their parent.
    return {
      ppid: Number(f[1]),
      cpuMs: ticksMs(Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])),
    };
  } catch {
    return undefined; // the process ended between listing and reading
  }
}

/** CPU time and summed peak RSS (VmHWM) of the processes rooted at `root` (the root and its descendants). */
function treeStats(root: number): TreeStat {
  const stats = new Map<number, { ppid: number; cpuMs: number }>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const s = readStat(pid);
    if (s) stats.set(Number(pid), s);
  }
  const tree = new Set<number>([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, s] of stats)
      if (!tree.has(pid) && tree.has(s.ppid)) {
        tree.add(pid);
        grew = true;
      }
  }
  let cpuMs = 0;
  let rssKb = 0;
  for (const pid of tree) {
    const s = stats.get(pid);
    if (!s) continue;
    cpuMs += s.cpuMs;
    try {
      rssKb += Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // ended meanwhile
    }
  }
  return { cpuMs, rssKb };
}

/** CPU time (ms) of each thread of one process, by thread id, from /proc/<pid>/task/<tid>/stat. */
function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const f = statFields(`/proc/${pid}/task/${tid}/stat`);
      out.set(tid, ticksMs(Number(f[11]) + Number(f[12])));
    }
  } catch {
    // the process or a thread ended meanwhile: what was read stands
  }
  return out;
}

interface Row {
  peer: string;
  /** The size asked for (BENCH_SIZES); rows are compared to Postfix's at the same one. */
  size: number;
  connections: number;
  /** Which round of BENCH_REPEAT (from 1). */
  round: number;
  messages: number;
  acceptRate: number;
  deliverRate: number;
  p50: number;
  p99: number;
  cpuSPer1000: number | null;
  rssMb: number | null;
  /** 'yes' when every message got 250 and arrived exactly once, intact; else what went wrong. */
  complete: string;
  ok: boolean;
  /** Why the row has no figures (the peer could not run). */
  note?: string;
  /**
   * BENCH_THREADS: CPU ms per message of each thread of the relay's root process over the measured phase, its main
   * thread first, then the others by CPU (phi-gateway: the scan thread, V8's helpers, libuv's pool …).
   */
  threads?: number[];
}

/** A row as measured, before main() puts it in its round. */
type Measured = Omit<Row, 'round'>;

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;
}

async function measure(
  peer: string,
  size: number,
  port: number,
  server: ArrivalServer,
  messages: BenchMessage[],
  connections: number,
  root: number | null,
): Promise<Measured> {
  const before = root ? treeStats(root) : null;
  const threadsBefore = root && THREADS ? threadCpuMs(root) : null;
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const t0 = performance.now();
  const load = await runLoad({ host: '127.0.0.1', port, connections, messages, signal });
  const tAccepted = performance.now();
  const accepted = [...load.accepted].filter(Number.isFinite).length;
  const allArrived = await server.waitFor(accepted, signal);
  const tDelivered = performance.now();
  const after = root ? treeStats(root) : null;
  const threadsAfter = root && threadsBefore ? threadCpuMs(root) : null;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const lat: number[] = [];
  for (let i = 0; i < messages.length; i++) {
    const d = load.accepted[i]! - load.started[i]!;
    if (Number.isFinite(d)) lat.push(d);
  }
  lat.sort((a, b) => a - b);
  const problems: string[] = [];
  if (accepted < messages.length) problems.push(`${messages.length - accepted} refused`);
  if (!allArrived || server.distinct < accepted) problems.push(`${accepted - server.distinct} lost`);
  if (server.duplicates > 0) problems.push(`${server.duplicates} duplicates`);
  if (server.corrupt > 0) problems.push(`${server.corrupt} corrupted`);
  return {
    peer,
    size,
    connections,
    messages: messages.length,
    acceptRate: accepted / ((tAccepted - t0) / 1000),
    deliverRate: server.distinct / ((tDelivered - t0) / 1000),
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    cpuSPer1000: before && after ? (after.cpuMs - before.cpuMs) / messages.length : null,
    rssMb: after ? after.rssKb / 1024 : null,
    complete: problems.length ? `NO: ${problems.join(', ')}` : 'yes',
    ok: problems.length === 0,
    ...(threadsBefore && threadsAfter
      ? {
          threads: [...threadsAfter]
            .map(([tid, ms]): [string, number] => [
              tid,
              (ms - (threadsBefore.get(tid) ?? 0)) / messages.length,
            ])
            .filter(([, ms]) => ms > 0)
            .sort(([a, x], [b, y]) => (a === String(root) ? -1 : b === String(root) ? 1 : y - x))
            .map(([, ms]) => ms),
        }
      : {}),
  };
}

function skipped(peer: string, size: number, connections: number, note: string): Measured {
  return {
    peer,
    size,
    connections,
    messages: 0,
    acceptRate: NaN,
    deliverRate: NaN,
    p50: NaN,
    p99: NaN,
    cpuSPer1000: null,
    rssMb: null,
    complete: 'not run',
    ok: true,
    note,
  };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
}

/**
 * Sends `messages` through the relay at `port` and waits until the next hop has them all (`perMessage`
 * arrivals each); they carry another run tag, so the next hop counts them apart from the measured run.
 */
async function warmUp(
  port: number,
  server: ArrivalServer,
  make: (count: number, run: string, cache: BodyCache) => BenchMessage[],
  connections: number,
  perMessage = 1,
): Promise<void> {
  if (WARMUP <= 0) return;
  const until = Date.now() + WARMUP_MS;
  // Rounds repeat their bodies under a new run tag: made once, so the relay is loaded all the warm-up.
  const cache: BodyCache = new Map();
  let sent = 0;
  for (let round = 0; round === 0 || Date.now() < until; round++) {
    const messages = make(WARMUP, `w${round}`, cache);
    await runLoad({
      host: '127.0.0.1',
      port,
      connections,
      messages,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    sent += messages.length;
    const deadline = Date.now() + TIMEOUT_MS;
    while (server.unknown < sent * perMessage && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
  }
}

/** The PGP recipient's public key, made once and imported into each gateway's data dir before it starts. */
let partnerKey: Promise<string> | undefined;
const PARTNER = 'partner@lab.example';

async function gatewayPath(
  kind: 'clean' | 'pgp' | 'pickup',
  t: string,
  n: number,
  size: number,
  connections: number,
): Promise<Measured> {
  const kinds =
    kind === 'pgp' ? ['pgp'] : kind === 'pickup' ? ['pickup-notice', 'pickup-password'] : ['relay'];
  const server = new ArrivalServer(t, n, kinds);
  await server.start();
  const dataDir = await tempDir('phigw-peers-');
  let gw: ChildGateway | undefined;
  try {
    if (kind !== 'clean') {
      // The partner's key goes into the keyring before the gateway starts, as `keys import` would put it.
      partnerKey ??= makeKey(PARTNER, { name: 'Lab Partner' }).then((k) => k.publicArmored);
      const config = loadConfig({ PHIGW_DATA_DIR: dataDir });
      const store = await Store.open(config);
      await new Keyring(store, config.pgp).importArmored(await partnerKey, 'bench');
      await store.close();
    }
    gw = await spawnGateway({
      dataDir,
      relayUrl: server.url,
      // BENCH_NODE_ARGS: extra node flags for the gateway (e.g. --cpu-prof --cpu-prof-dir=DIR).
      nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      overrides: {
        logLevel: 'info',
        queue: queueSchema.parse({}),
        redaction: { gateway: 'off' },
        pickup: { passwordDelay: 0 },
        practiceName: 'Bench Dental',
        // BENCH_SCAN_THREADS: dlp.scanThreads for the run (default: the gateway's own choice).
        ...(process.env.BENCH_SCAN_THREADS
          ? { dlp: { scanThreads: Number(process.env.BENCH_SCAN_THREADS) } }
          : {}),
      },
    });
    const rcpt = (seq: number, run: string) => (kind === 'pgp' ? PARTNER : `p${seq}.${run}@mail.example`);
    const make = (count: number, run: string, cache?: BodyCache) =>
      kind === 'clean'
        ? makeMessages(count, run, size, cache)
        : Array.from({ length: count }, (_, seq) => makePhiMessage(seq, run, size, rcpt(seq, run), cache));
    // Warm-up, not measured (the organisation key, key parsing, the JIT): its mail counts as unknown.
    await warmUp(
      gw.smtpPort,
      server,
      (count, w, cache) => make(Math.max(count, 2), `${t}${w}`, cache),
      connections,
      kinds.length,
    );
    return await measure(
      `phi-gateway ${kind}`,
      size,
      gw.smtpPort,
      server,
      make(n, t),
      connections,
      gw.child.pid ?? null,
    );
  } finally {
    if (gw) await gw.kill('SIGTERM');
    await server.stop();
    await removeDir(dataDir);
  }
}

/** A relay under test other than phi-gateway, started on a next hop. */
interface PeerRelay {
  port: number;
  /** The root of its process tree, whose CPU and memory are measured (none for the limit); read after the warm-up. */
  pid(): number | null;
  stop(): Promise<void>;
  /** What the relay itself said, for a row that did not arrive whole. */
  failureNote?(): string;
}

/**
 * One row of a relay other than phi-gateway: a fresh next hop, the relay started on it, the warm-up and the
 * measured run, then both stopped. A relay that cannot start or run gives a skipped row (`why` before the reason).
 */
async function peerRow(
  label: string,
  size: number,
  n: number,
  connections: number,
  t: string,
  start: (server: ArrivalServer) => Promise<PeerRelay>,
  why = '',
): Promise<Measured> {
  const server = new ArrivalServer(t, n);
  await server.start();
  try {
    const relay = await start(server);
    try {
      await warmUp(
        relay.port,
        server,
        (count, w, cache) => makeMessages(count, `${t}${w}`, size, cache),
        connections,
      );
      const row = await measure(
        label,
        size,
        relay.port,
        server,
        makeMessages(n, t, size),
        connections,
        relay.pid(),
      );
      if (!row.ok && relay.failureNote) row.note = relay.failureNote();
      return row;
    } finally {
      await relay.stop();
    }
  } catch (err) {
    return skipped(label, size, connections, `${why}${firstLine(err)}`);
  } finally {
    await server.stop();
  }
}

async function main(): Promise<number> {
  console.log(
    `phi-gateway vs peers: ${N} messages per run (at most 500 over 1 connection), sizes ${SIZES.map((s) => `${s / 1024} KB`).join(' and ')}, ` +
      `connections ${CONNECTIONS.join(' and ')}; Node ${process.version}, ${os.cpus().length} CPUs, ` +
      `load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  const postfixMissing = (await which('postfix'))
    ? undefined
    : 'postfix is not installed (Debian package postfix)';
  const rows: Row[] = [];
  let run = 0;
  for (const size of SIZES) {
    for (const connections of CONNECTIONS)
      for (let round = 1; round <= REPEAT; round++) {
        const n = connections === 1 ? Math.min(N, 500) : N;
        const tag = () => `peers-${process.pid}-${run++}`;
        const push = (row: Measured): void => {
          rows.push({ ...row, round });
        };
        // 1. The limit: the load generator straight into the next hop.
        if (PEERS.has('limit'))
          push(
            await peerRow('limit (direct)', size, n, connections, tag(), (server) =>
              Promise.resolve({ port: server.port, pid: () => null, stop: () => Promise.resolve() }),
            ),
          );
        // 2. Postfix, a plain relay with its durable queue, relayhost = the next hop.
        if (PEERS.has('postfix'))
          push(
            await peerRow('Postfix relay', size, n, connections, tag(), async (server) => {
              if (postfixMissing) throw new Error(postfixMissing);
              const postfix = await startPostfix({
                main: [
                  `relayhost = [127.0.0.1]:${server.port}`,
                  'smtp_tls_security_level = none',
                  'default_destination_concurrency_limit = 20',
                  'smtpd_client_connection_count_limit = 0',
                  'message_size_limit = 104857600',
                ],
              });
              const pidFile = path.join(postfix.dir, 'queue', 'pid', 'master.pid');
              return {
                port: postfix.port,
                pid: () => Number(readFileSync(pidFile, 'utf8').trim()) || null,
                stop: () => postfix.stop(),
              };
            }),
          );
        // 3. Haraka, a pass-through relay: forwards each message to the next hop before its 250.
        if (PEERS.has('haraka'))
          push(
            await peerRow(
              'Haraka relay',
              size,
              n,
              connections,
              tag(),
              async (server) => {
                const haraka = await startHaraka({
                  nextHopPort: server.port,
                  ...(HARAKA_NODES ? { nodes: HARAKA_NODES } : {}),
                });
                return {
                  port: haraka.port,
                  pid: () => haraka.pid,
                  stop: () => haraka.stop(),
                  failureNote: () =>
                    `Haraka said: ${haraka.output().trim().split('\n').slice(-3).join(' | ')}`,
                };
              },
              'Haraka could not run: ',
            ),
          );
        // 4. phi-gateway: clean path (scan included, fsync before 250), PGP path, pickup path.
        for (const kind of ['clean', 'pgp', 'pickup'] as const) {
          if (!PEERS.has(kind)) continue;
          try {
            push(await gatewayPath(kind, tag(), n, size, connections));
          } catch (err) {
            const row = skipped(`phi-gateway ${kind}`, size, connections, firstLine(err));
            row.ok = false;
            push(row);
          }
        }
      }
  }
  const header = [
    'peer',
    'size',
    'conns',
    ...(REPEAT > 1 ? ['round'] : []),
    'msgs',
    'accept msg/s',
    'deliver msg/s',
    '250 p50/p99 ms',
    'CPU s/1000',
    'peak RSS',
    'vs Postfix',
    'exactly once',
  ];
  const out: string[][] = [header];
  const fixed = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  /** The Postfix row of the same size, connections and round. */
  const postfixOf = (r: Row) =>
    rows.find(
      (x) =>
        x.peer === 'Postfix relay' &&
        x.size === r.size &&
        x.connections === r.connections &&
        x.round === r.round &&
        !x.note,
    );
  for (const r of rows) {
    const postfix = postfixOf(r);
    out.push([
      r.peer,
      `${(r.size / 1024).toFixed(0)} KB`,
      String(r.connections),
      ...(REPEAT > 1 ? [String(r.round)] : []),
      String(r.messages),
      fixed(r.acceptRate),
      fixed(r.deliverRate),
      Number.isFinite(r.p50) ? `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)}` : '-',
      r.cpuSPer1000 === null ? '-' : r.cpuSPer1000.toFixed(2),
      r.rssMb === null ? '-' : `${r.rssMb.toFixed(0)} MB`,
      postfix && Number.isFinite(r.deliverRate)
        ? `${(r.deliverRate / postfix.deliverRate).toFixed(2)}x`
        : '-',
      r.complete,
    ]);
  }
  const widths = header.map((_, c) => Math.max(...out.map((r) => r[c]!.length)));
  for (const [i, r] of out.entries()) {
    console.log(
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
    );
    if (i === 0) console.log('-'.repeat(widths.reduce((a, b) => a + b + 2, -2)));
  }
  for (const r of rows)
    if (r.threads)
      console.log(
        `${r.peer}, ${(r.size / 1024).toFixed(0)} KB, ${r.connections} conn${REPEAT > 1 ? `, round ${r.round}` : ''}: ` +
          `CPU ms per message by thread of its root process: main ${r.threads[0]!.toFixed(2)}` +
          (r.threads.length > 1
            ? `, then ${r.threads
                .slice(1)
                .map((ms) => ms.toFixed(2))
                .join(', ')}`
            : ''),
      );
  const notes = rows.filter((r) => r.note);
  if (notes.length) console.log('');
  for (const r of notes)
    console.log(`${r.peer}, ${(r.size / 1024).toFixed(0)} KB, ${r.connections} conn: ${r.note}`);
  console.log(
    `\nCPU: the relay's process tree (phi-gateway: one process; Postfix: master and its children, exited ones ` +
      `included; Haraka: its cluster master and ${HARAKA_NODES ?? 1} worker(s)). Peak RSS: summed VmHWM of its live processes. ` +
      `Haraka answers 250 only after the next hop did (no queue); Postfix and phi-gateway queue durably first.`,
  );
  // The targets, at every size and connection count measured: the ratio of end-to-end rates to Postfix's (with
  // BENCH_REPEAT, the median of the rounds' ratios, each round's gateway row against that round's Postfix row).
  for (const size of SIZES)
    for (const connections of CONNECTIONS)
      for (const [peer, target] of [
        ['phi-gateway clean', 1.0],
        ['phi-gateway pgp', 0.5],
      ] as const) {
        const ratios = rows
          .filter((r) => r.peer === peer && r.size === size && r.connections === connections && !r.note)
          .flatMap((r) => {
            const pf = postfixOf(r);
            return pf && Number.isFinite(r.deliverRate) ? [r.deliverRate / pf.deliverRate] : [];
          });
        if (ratios.length === 0) continue;
        const sorted = [...ratios].sort((a, b) => a - b);
        const mid = sorted.length >> 1;
        const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
        const rounds =
          ratios.length > 1
            ? ` median of ${ratios.length} rounds (${ratios.map((x) => x.toFixed(2)).join(', ')};` +
              ` ${ratios.filter((x) => x >= target).length} of ${ratios.length} at or above)`
            : '';
        console.log(
          `${peer} vs Postfix, end to end (${(size / 1024).toFixed(0)} KB, ${connections} connections): ` +
            `${median.toFixed(2)}x${rounds} (target >= ${target.toFixed(1)}x: ${median >= target ? 'met' : 'NOT met'})`,
        );
      }
  console.log(`load average at the end: ${os.loadavg()[0]!.toFixed(2)}`);
  return rows.every((r) => r.ok) ? 0 : 1;
}

process.exitCode = await main();
