// Shared helpers of the fault-injection suite: numbered messages with digests, a ledger that matches what
// the next hop received to what got 250, a seeded PRNG and queue inspection. Never mocks gateway code.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { CapturedMessage } from '../support/capture-server.js';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** mulberry32: small, seeded, good enough to pick kill moments and MIME shapes reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of a run: FAULT_SEED when given (to replay a failure), else the clock; always printed. */
export function runSeed(name: string): number {
  const seed = process.env.FAULT_SEED ? Number(process.env.FAULT_SEED) : Date.now() % 2 ** 31;
  report(`      [${name}] seed=${seed} (replay with FAULT_SEED=${seed})`);
  return seed;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 15000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A clean (no PHI) message with a sequence header; its bytes must arrive unchanged after our trace headers. */
export function seqMessage(seq: number, size = 2000): Buffer {
  const line = `Plain operational text for message ${seq}, nothing sensitive here at all.\r\n`;
  const body = line.repeat(Math.max(1, Math.ceil(size / line.length)));
  return Buffer.from(
    `From: staff@clinic.example\r\nTo: r${seq}@partner.example\r\nSubject: load ${seq}\r\n` +
      `Message-ID: <seq-${seq}@clinic.example>\r\nX-Bench-Seq: ${seq}\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\n\r\n${body}`,
  );
}

export function seqOf(raw: Buffer): number | undefined {
  const m = /^X-Bench-Seq: (\d+)\r?$/m.exec(raw.subarray(0, 8192).toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

export interface LedgerReport {
  acked: number;
  arrivedDistinct: number;
  lost: number[];
  corrupted: number[];
  duplicates: number;
  unexpected: number;
}

/**
 * What was sent (digest of the exact bytes) and what got 250. A capture matches a send when the send's
 * bytes are a suffix of what arrived (the gateway only prepends trace headers).
 */
export class Ledger {
  readonly sent = new Map<number, { digest: string; length: number }>();
  readonly acked = new Set<number>();

  record(seq: number, raw: Buffer): void {
    this.sent.set(seq, { digest: sha256(raw), length: raw.length });
  }

  check(captured: CapturedMessage[], stillQueued: Set<number> = new Set()): LedgerReport {
    const seen = new Map<number, number>();
    const corrupted: number[] = [];
    let unexpected = 0;
    for (const m of captured) {
      const seq = seqOf(m.raw);
      const sent = seq === undefined ? undefined : this.sent.get(seq);
      if (seq === undefined || !sent) {
        unexpected++;
        continue;
      }
      seen.set(seq, (seen.get(seq) ?? 0) + 1);
      const tail = m.raw.subarray(Math.max(0, m.raw.length - sent.length));
      if (sha256(tail) !== sent.digest) corrupted.push(seq);
    }
    const lost = [...this.acked].filter((s) => !seen.has(s) && !stillQueued.has(s));
    let duplicates = 0;
    for (const n of seen.values()) duplicates += n - 1;
    return { acked: this.acked.size, arrivedDistinct: seen.size, lost, corrupted, duplicates, unexpected };
  }
}

/** A pooled client; `patience` is its connect/greeting timeout (30 s is what nodemailer and Outlook wait). */
export function smtpClient(port: number, connections = 1, patience = 5000) {
  const t = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: connections,
    maxMessages: Infinity,
    connectionTimeout: patience,
    greetingTimeout: patience,
    socketTimeout: Math.max(20000, patience),
  });
  t.on('error', () => undefined);
  return t;
}

/** Sends one raw message; resolves with the final SMTP reply line ("250 ..." or the error's response). */
export async function sendRaw(
  t: ReturnType<typeof smtpClient>,
  raw: Buffer,
  from: string,
  to: string[],
): Promise<{ ok: boolean; response: string }> {
  try {
    const info = (await t.sendMail({ envelope: { from, to }, raw })) as { response?: string };
    return { ok: true, response: info.response ?? '' };
  } catch (err) {
    const e = err as { response?: string; message?: string };
    return { ok: false, response: e.response ?? e.message ?? 'error' };
  }
}

/** The slice of better-sqlite3 these tests use (it ships no types; the gateway reaches it through knex). */
export interface SqliteDb {
  prepare(sql: string): {
    get(...args: unknown[]): unknown;
    all(...args: unknown[]): unknown[];
    run(...args: unknown[]): unknown;
  };
  exec(sql: string): void;
  pragma(sql: string): unknown;
  close(): void;
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  file: string,
  opts?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number },
) => SqliteDb;

export function openSqlite(dataDir: string, readonly = true): SqliteDb {
  return new Database(path.join(dataDir, 'phi-gateway.sqlite'), {
    readonly,
    fileMustExist: true,
    timeout: 5000,
  });
}

/** A read-only look at a data dir's SQLite queue (works while the gateway runs: WAL). */
export function queueDb(dataDir: string): SqliteDb {
  return openSqlite(dataDir, true);
}

/** How much work is not finished yet (messages and envelopes still to process or deliver). */
export function openWork(dataDir: string): { messages: number; envelopes: number } {
  const db = queueDb(dataDir);
  try {
    const m = db
      .prepare("SELECT count(*) AS n FROM messages WHERE state IN ('queued','processing','deferred')")
      .get() as { n: number };
    const e = db
      .prepare("SELECT count(*) AS n FROM envelopes WHERE state IN ('queued','sending','deferred','waiting')")
      .get() as { n: number };
    return { messages: m.n, envelopes: e.n };
  } finally {
    db.close();
  }
}

/** Peak resident memory of a process in kB (Linux /proc). */
export function vmHwmKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) : 0;
}

/** Figures a fault test measured, printed under its title (the report of the run quotes them). */
export function report(line: string): void {
  process.stdout.write(`${line}\n`);
}

export type Outcome = 'delivered' | 'protected' | 'held' | 'pending';

/**
 * What became of queued message `qid`: delivered in clear, protected (PGP or pickup notice), held with a
 * reason (message or a recipient's envelope), or still pending. A hold without a reason counts as pending.
 */
export function outcomeOf(db: SqliteDb, qid: string): { outcome: Outcome; reason?: string } {
  const m = db.prepare('SELECT state, reason FROM messages WHERE id = ?').get(qid) as
    { state: string; reason: string | null } | undefined;
  if (!m) return { outcome: 'pending', reason: 'no row' };
  if (m.state === 'held' || m.state === 'blocked')
    return m.reason
      ? { outcome: 'held', reason: m.reason }
      : { outcome: 'pending', reason: 'held without reason' };
  if (m.state !== 'routed' && m.state !== 'done') return { outcome: 'pending', reason: m.state };
  const envs = db
    .prepare('SELECT kind, state, hold_reason FROM envelopes WHERE message_id = ?')
    .all(qid) as Array<{ kind: string; state: string; hold_reason: string | null }>;
  if (envs.some((e) => !['delivered', 'held', 'bounced', 'cancelled', 'waiting'].includes(e.state)))
    return { outcome: 'pending', reason: 'envelopes in flight' };
  const held = envs.find((e) => e.state === 'held');
  if (held) return held.hold_reason ? { outcome: 'held', reason: held.hold_reason } : { outcome: 'pending' };
  if (envs.some((e) => e.kind === 'pgp' || e.kind.startsWith('pickup'))) return { outcome: 'protected' };
  if (envs.some((e) => e.kind === 'relay' && e.state === 'delivered')) return { outcome: 'delivered' };
  return { outcome: 'pending', reason: envs.map((e) => `${e.kind}:${e.state}`).join(',') || 'no envelopes' };
}

export function queueIdOf(reply: string): string | undefined {
  return /queued as (\S+)/.exec(reply)?.[1];
}
