// The audit log: append-only and hash-chained. Each event's hash covers the previous hash, so an edited,
// inserted or deleted row breaks the chain and `verifyAudit` finds it. Events carry codes and ids only.
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { insertRow, selectRows } from './fast-sql.js';

export interface AuditEvent {
  type: string;
  messageId?: string | null;
  actor?: string | null;
  /** Codes, counts and ids only: never subject, body, file names or matched text. */
  detail?: Record<string, string | number | boolean | null | string[]>;
}

export interface AuditRow {
  seq: number;
  at: number;
  type: string;
  message_id: string | null;
  actor: string | null;
  detail: string;
  prev_hash: string;
  hash: string;
}

const GENESIS = '0'.repeat(64);

function hashEvent(
  prev: string,
  at: number,
  type: string,
  messageId: string | null,
  actor: string | null,
  detail: string,
) {
  return createHash('sha256')
    .update(JSON.stringify([prev, at, type, messageId, actor, detail]))
    .digest('hex');
}

/** Key of the PostgreSQL advisory lock that orders audit appends across nodes (any constant). */
export const AUDIT_LOCK = 0x61756469; // 'audi'

const chainLocked = new WeakSet<Knex.Transaction>();

/**
 * Appends one event inside the caller's transaction. On SQLite the store serialises all writes. On
 * PostgreSQL several nodes append at once, and two that read the same head would fork the chain: the
 * transaction first takes an advisory lock (held until it commits or rolls back), so the next appender
 * reads the head only after this event is committed.
 */
export async function appendAudit(trx: Knex.Transaction, event: AuditEvent, at = Date.now()): Promise<void> {
  await lockAuditChain(trx);
  const [last] = await selectRows<{ hash: string }>(
    trx,
    'select "hash" from "audit_events" order by "seq" desc limit 1',
  );
  const prev = last?.hash ?? GENESIS;
  const messageId = event.messageId ?? null;
  const actor = event.actor ?? null;
  const detail = JSON.stringify(event.detail ?? {});
  await insertRow(trx, 'audit_events', {
    at,
    type: event.type,
    message_id: messageId,
    actor,
    detail,
    prev_hash: prev,
    hash: hashEvent(prev, at, event.type, messageId, actor, detail),
  });
}

/**
 * Takes the audit chain's lock for the rest of the transaction (PostgreSQL; nothing to do on SQLite, where
 * the store serialises writes). A transaction that reads counters it will update and audit (pickup
 * lockouts) takes it before reading, so the same read-modify-write on another node waits for it.
 */
export async function lockAuditChain(trx: Knex.Transaction): Promise<void> {
  if (chainLocked.has(trx) || !isPostgres(trx)) return;
  await trx.raw('select pg_advisory_xact_lock(?)', [AUDIT_LOCK]);
  chainLocked.add(trx);
}

function isPostgres(db: Knex): boolean {
  return (db.client as { config?: { client?: unknown } }).config?.client === 'pg';
}

export interface AuditVerifyResult {
  ok: boolean;
  events: number;
  /** First sequence number where the chain breaks. */
  brokenAt?: number;
  problem?: string;
}

export async function verifyAudit(db: Knex): Promise<AuditVerifyResult> {
  let prev = GENESIS;
  let events = 0;
  let lastSeq = 0;
  const pageSize = 5000;
  for (;;) {
    const rows = (await db('audit_events')
      .where('seq', '>', lastSeq)
      .orderBy('seq')
      .limit(pageSize)) as AuditRow[];
    for (const row of rows) {
      if (row.prev_hash !== prev)
        return { ok: false, events, brokenAt: row.seq, problem: 'a row before it was removed or changed' };
      const expected = hashEvent(prev, Number(row.at), row.type, row.message_id, row.actor, row.detail);
      if (expected !== row.hash)
        return { ok: false, events, brokenAt: row.seq, problem: 'the row was edited' };
      prev = row.hash;
      lastSeq = row.seq;
      events++;
    }
    if (rows.length < pageSize) return { ok: true, events };
  }
}
