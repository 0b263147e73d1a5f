// Outbound delivery: claims due envelopes (grouped so one message goes out in one transaction), hands them
// to the transport and records the outcome. Acceptance by the next hop is committed before anything else,
// so a crash after that commit cannot send the message twice; a crash in the instant between the next
// hop's 250 and our commit can (delivery is at-least-once). 5xx and expiry bounce to the sender (RFC 3464).
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ResolvedConfig } from '../config/load.js';
import { errorCode, GatewayError } from '../config/errors.js';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import { insertRow, selectRows, updateByIds } from '../store/fast-sql.js';
import { INLINE_MAX, type Store, type Trx } from '../store/store.js';
import { bounceStatus, buildBounce, safeOriginalHeaders, type BounceRecipient } from './bounce.js';
import { newQueueId } from './ids.js';
import { headFrom } from './pipeline.js';
import type { PlainCache } from './plain-cache.js';
import { retryDelay } from './retry.js';
import type { BodySource } from './smtp-client.js';
import { TransportError, type SendResult, type Transport } from './transport.js';

export interface EnvelopeRow {
  id: number;
  message_id: string | null;
  group_key: string;
  kind: string;
  mail_from: string;
  rcpt: string;
  content: 'spool' | 'blob';
  blob_id: string | null;
  prefix: string;
  attempts: number;
  created_at: number;
}

/** How long a delivery attempt may hold envelopes before another worker may take them over. */
export const ENVELOPE_LEASE_MS = 15 * 60 * 1000;
const LEASE_MS = ENVELOPE_LEASE_MS;
// cancelled: a pickup password whose notice bounced (a password alone is never sent).
const TERMINAL = ['delivered', 'bounced', 'cancelled'];

/**
 * How long a delivery keeps trying to record its outcome (well inside its lease, so no one else takes the envelope
 * meanwhile), and the longest pause between tries.
 */
export const RECORD_RETRY_MS = 5 * 60 * 1000;
const RECORD_PAUSE_MAX_MS = 5000;

interface Failure {
  env: EnvelopeRow;
  code: number | null;
  response: string;
}

export class Delivery {
  private readonly hostname: string;

  constructor(
    private readonly store: Store,
    private readonly config: ResolvedConfig,
    private readonly log: Logger,
    private readonly transport: Transport,
    private readonly onEnqueued: () => void,
    private readonly cache?: PlainCache,
    private readonly sms?: Transport,
  ) {
    this.hostname = config.smtp.hostname ?? os.hostname();
  }

  /** Claims up to n groups of due envelopes; each group is one transaction to the next hop. */
  claim(n: number): Promise<EnvelopeRow[][]> {
    const now = Date.now();
    return this.store.write(async (trx) => {
      // Indexed on (state, next_attempt_at): cost follows the due work, not the table's history.
      const due = trx('envelopes')
        .whereIn('state', ['queued', 'deferred'])
        .andWhere('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .limit(n * 20);
      // Several nodes on PostgreSQL: rows another node is claiming right now are skipped, not waited for
      // (a group may then go out as two transactions, one per node; each envelope still goes once).
      if (this.store.engine === 'postgres') void due.forUpdate().skipLocked();
      const rows = (await due.select(
        'id',
        'message_id',
        'group_key',
        'kind',
        'mail_from',
        'rcpt',
        'content',
        'blob_id',
        'prefix',
        'attempts',
        'created_at',
      )) as EnvelopeRow[];
      const groups = new Map<string, EnvelopeRow[]>();
      for (const row of rows) {
        const g = groups.get(row.group_key);
        if (g) g.push(row);
        else if (groups.size < n) groups.set(row.group_key, [row]);
      }
      const claimed = [...groups.values()];
      const ids = claimed.flat().map((e) => e.id);
      for (let i = 0; i < ids.length; i += 500) {
        await trx('envelopes')
          .whereIn('id', ids.slice(i, i + 500))
          .update({
            state: 'sending',
            lease_until: now + LEASE_MS,
            lease_owner: this.store.nodeId,
            updated_at: now,
          });
      }
      return claimed;
    });
  }

  /** Returns envelopes whose sender died mid-attempt (lease expired) to the queue. Run periodically. */
  async reclaimExpired(): Promise<number> {
    const now = Date.now();
    return this.store.write((trx) =>
      trx('envelopes')
        .where('state', 'sending')
        .andWhere('lease_until', '<', now)
        .update({ state: 'queued', lease_until: null, next_attempt_at: now }),
    );
  }

  async release(groups: EnvelopeRow[][]): Promise<void> {
    const ids = groups.flat().map((e) => e.id);
    if (ids.length === 0) return;
    await this.store.write((trx) =>
      trx('envelopes')
        .whereIn('id', ids)
        .andWhere('state', 'sending')
        .update({ state: 'queued', lease_until: null }),
    );
  }

  /**
   * The content to send whole, and where the part the intake checked for bare CR and LF starts in it (a message in
   * the plain cache: only the intake puts one there, once its line-ending check passed).
   */
  private async content(first: EnvelopeRow): Promise<{ raw: Buffer; crlfFrom?: number }> {
    if (first.content === 'blob') {
      if (!first.blob_id) throw new GatewayError('SPOOL_MISSING', 'envelope without blob');
      return { raw: await this.store.unseal('blobs', first.blob_id) };
    }
    if (!first.message_id) throw new GatewayError('SPOOL_MISSING', 'envelope without message');
    const prefix = Buffer.from(first.prefix, 'latin1');
    const cached = this.cache?.get(first.message_id);
    // A large message is read from the spool straight after its trace headers: held once, never joined by a copy.
    return cached
      ? { raw: Buffer.concat([prefix, cached]), crlfFrom: prefix.length }
      : { raw: await this.store.unseal('spool', first.message_id, prefix) };
  }

  /**
   * Content the transport can send as it is read: spooled content not in memory already (its trace headers,
   * then the spool decrypted a chunk at a time), and a generated blob stored as a file larger than INLINE_MAX
   * (a large PGP/MIME message). Content that fails authentication fails the stream before the message ends,
   * so the next hop never accepts it.
   */
  private async streamedContent(first: EnvelopeRow, transport: Transport): Promise<BodySource | null> {
    if (!transport.sendStream) return null;
    const store = this.store;
    if (first.content === 'blob') {
      const blobId = first.blob_id;
      if (!blobId) return null;
      // Small blobs (in the database, or small files) are read whole: one buffer is quicker to send. Most are in
      // the database: asking it first spares a failing stat (and its error) per message.
      if (await store.isInline('blobs', blobId)) return null;
      const file = await stat(path.join(store.areaDir('blobs'), blobId)).catch(() => null);
      if (!file || file.size <= INLINE_MAX) return null;
      return async function* () {
        yield* (await store.unsealStream('blobs', blobId)) as AsyncIterable<Buffer>;
      };
    }
    const messageId = first.message_id;
    if (first.content !== 'spool' || !messageId) return null;
    if (this.cache?.get(messageId)) return null;
    const prefix = Buffer.from(first.prefix, 'latin1');
    return async function* () {
      const spool = await store.unsealStream('spool', messageId);
      yield prefix;
      yield* spool as AsyncIterable<Buffer>;
    };
  }

  /** The stored content is gone or fails authentication: hold, never send something else. */
  private async holdUnreadable(group: EnvelopeRow[], code: string): Promise<void> {
    const first = group[0]!;
    await this.store.write(async (trx) => {
      await trx('envelopes')
        .whereIn(
          'id',
          group.map((e) => e.id),
        )
        .update({ state: 'held', last_response: code, lease_until: null, updated_at: Date.now() });
      await appendAudit(trx, {
        type: 'envelope.held',
        messageId: first.message_id,
        detail: { reason: code, envelopes: group.length },
      });
    });
    this.log.error(
      { evt: 'DELIVERY_HELD', qid: first.message_id, code },
      'content unreadable; envelopes held',
    );
  }

  async handle(group: EnvelopeRow[]): Promise<void> {
    const first = group[0]!;
    const started = Date.now();
    const transport = first.kind === 'pickup-password-sms' && this.sms ? this.sms : this.transport;
    const body = await this.streamedContent(first, transport);
    let whole: { raw: Buffer; crlfFrom?: number } | undefined;
    if (!body) {
      try {
        whole = await this.content(first);
      } catch (err) {
        return this.holdUnreadable(group, errorCode(err));
      }
    }

    let result: SendResult;
    try {
      const mail = { from: first.mail_from, to: group.map((e) => e.rcpt), kind: first.kind };
      result = body
        ? await transport.sendStream!({ ...mail, body })
        : await transport.send({ ...mail, raw: whole!.raw, crlfFrom: whole!.crlfFrom });
    } catch (err) {
      if (err instanceof GatewayError && (err.code === 'SPOOL_MISSING' || err.code === 'SPOOL_CORRUPT'))
        return this.holdUnreadable(group, err.code);
      const te =
        err instanceof TransportError
          ? err
          : new TransportError(`transport: ${errorCode(err)}`, null, errorCode(err), true);
      result = {
        accepted: [],
        rejected: group.map((e) => ({ rcpt: e.rcpt, code: te.code, response: te.response })),
        response: te.response,
      };
    }
    const duration = Date.now() - started;
    const byRcpt = new Map(group.map((e) => [e.rcpt.toLowerCase(), e]));
    const acceptedSet = new Set(result.accepted.map((a) => a.toLowerCase()));
    const delivered = group.filter((e) => acceptedSet.has(e.rcpt.toLowerCase()));
    const failures: Failure[] = [];
    for (const r of result.rejected) {
      const env = byRcpt.get(r.rcpt.toLowerCase());
      if (env && !acceptedSet.has(env.rcpt.toLowerCase()))
        failures.push({ env, code: r.code, response: r.response });
    }
    // Anyone neither accepted nor reported rejected is retried.
    for (const env of group) {
      if (!acceptedSet.has(env.rcpt.toLowerCase()) && !failures.some((f) => f.env === env)) {
        failures.push({ env, code: null, response: result.response || 'no reply for recipient' });
      }
    }

    const now = Date.now();
    const permanent: Failure[] = [];
    const temporary: Failure[] = [];
    for (const f of failures) {
      const expired = now - Number(f.env.created_at) >= this.config.queue.maxQueueAge;
      if ((f.code !== null && f.code >= 500) || expired) permanent.push(f);
      else temporary.push(f);
    }

    // 1. Record what the next hop accepted, and the retries, before anything else.
    let releasedWaiting = false;
    let spoolDone: false | 'file' | 'inline' = false;
    await this.recordOutcome(first.message_id, async (trx) => {
      if (delivered.length > 0) {
        const ids = delivered.map((e) => e.id);
        await updateByIds(trx, 'envelopes', ids, {
          state: 'delivered',
          delivered_at: now,
          attempts: first.attempts + 1,
          last_code: 250,
          last_response: result.response,
          lease_until: null,
          updated_at: now,
        });
        for (const e of delivered) {
          await insertRow(trx, 'delivery_attempts', {
            envelope_id: e.id,
            at: now,
            duration_ms: duration,
            outcome: 'delivered',
            code: 250,
            response: result.response,
          });
        }
        // Passwords waiting for these notices are released after their delay.
        const waiting = await selectRows<{ id: number; after_delay: number | null }>(
          trx,
          `select "id", "after_delay" from "envelopes" where "after_id" in (${ids.map(() => '?').join(', ')}) and "state" = 'waiting'`,
          ids,
        );
        for (const w of waiting) {
          await updateByIds(trx, 'envelopes', [w.id], {
            state: 'queued',
            next_attempt_at: now + Number(w.after_delay ?? 0),
            updated_at: now,
          });
        }
        if (waiting.length > 0) releasedWaiting = true;
        await appendAudit(trx, {
          type: 'envelope.delivered',
          messageId: first.message_id,
          detail: {
            kind: first.kind,
            envelopes: delivered.map((e) => String(e.id)),
            via: this.transport.name,
          },
        });
      }
      for (const f of temporary) {
        const attempts = f.env.attempts + 1;
        await trx('envelopes')
          .where({ id: f.env.id })
          .update({
            state: 'deferred',
            attempts,
            next_attempt_at: now + retryDelay(this.config.queue, attempts),
            last_code: f.code,
            last_response: f.response,
            lease_until: null,
            updated_at: now,
          });
        await trx('delivery_attempts').insert({
          envelope_id: f.env.id,
          at: now,
          duration_ms: duration,
          outcome: 'deferred',
          code: f.code,
          response: f.response,
        });
      }
      if (temporary.length > 0) {
        await appendAudit(trx, {
          type: 'envelope.deferred',
          messageId: first.message_id,
          detail: { envelopes: temporary.map((f) => String(f.env.id)), code: temporary[0]!.code },
        });
      }
      // Nothing bounces (the common case): the message is finalised in this same transaction.
      if (permanent.length === 0 && first.content === 'spool' && first.message_id) {
        spoolDone = await this.markSpoolDone(trx, first.message_id, now);
      }
    });
    if (delivered.length > 0) {
      this.log.info(
        { evt: 'DELIVERED', qid: first.message_id, kind: first.kind, rcpts: delivered.length, ms: duration },
        'delivered',
      );
    }
    if (temporary.length > 0) {
      this.log.warn(
        {
          evt: 'DELIVERY_DEFERRED',
          qid: first.message_id,
          rcpts: temporary.length,
          code: temporary[0]!.code,
        },
        'deferred',
      );
    }

    if (releasedWaiting) this.onEnqueued();

    // 2. Permanent failures bounce to the sender (a bounce itself is never bounced).
    if (permanent.length > 0) {
      await this.bounce(first, permanent, whole?.raw, now, duration);
      await this.finalise(first);
    } else if (first.content === 'spool') {
      if (spoolDone) await this.dropSpool(first.message_id!, spoolDone);
    } else await this.finalise(first);
  }

  /**
   * Step 1's transaction, tried again until it commits (for up to RECORD_RETRY_MS, pausing 0.25 s, doubling, at most
   * 5 s). Once the next hop has taken the message, the only true record is that it did: giving the envelopes back
   * after a failed write (the database locked beyond its busy timeout, the disk full) sent the message again. The
   * envelopes stay leased meanwhile; a failed transaction left nothing behind, so it runs again whole.
   */
  private async recordOutcome(messageId: string | null, fn: (trx: Trx) => Promise<void>): Promise<void> {
    const deadline = Date.now() + RECORD_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.store.write(fn);
        return;
      } catch (err) {
        if (Date.now() >= deadline || this.store.isClosed) throw err;
        if (attempt === 1) {
          this.log.warn(
            { evt: 'DELIVERY_RECORD_RETRY', qid: messageId, code: errorCode(err) },
            'could not record a delivery outcome; trying again',
          );
        }
        await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** (attempt - 1), RECORD_PAUSE_MAX_MS)));
      }
    }
  }

  /**
   * In `trx`: when no envelope of the message still needs its spooled content, marks it done and deletes the
   * content kept in the database. 'file' when a spool file is left to remove, 'inline' when nothing is.
   */
  private async markSpoolDone(trx: Trx, messageId: string, now: number): Promise<false | 'file' | 'inline'> {
    const open = await selectRows<{ id: number }>(
      trx,
      `select "id" from "envelopes" where "message_id" = ? and "content" = 'spool' and "state" not in (${TERMINAL.map(() => '?').join(', ')}) limit 1`,
      [messageId, ...TERMINAL],
    );
    if (open.length > 0) return false;
    await updateByIds(trx, 'messages', [messageId], { state: 'done', spool_removed: true, updated_at: now });
    return (await this.store.deleteInline(trx, 'spool', messageId)) ? 'inline' : 'file';
  }

  private async dropSpool(messageId: string, stored: 'file' | 'inline'): Promise<void> {
    this.cache?.delete(messageId);
    if (stored === 'file') await this.store.removeSealedFile('spool', messageId);
  }

  private async bounce(
    first: EnvelopeRow,
    permanent: Failure[],
    raw: Buffer | undefined,
    now: number,
    duration: number,
  ): Promise<void> {
    const sender = first.mail_from;
    let blobId: string | null = null;
    if (sender !== '' && first.kind !== 'bounce') {
      // A streamed message is read again for its headers only (bounces are rare); without them, a bounce still goes.
      const messageId = first.message_id;
      const original =
        raw ??
        (first.content === 'spool' && messageId
          ? await this.store
              .unsealStream('spool', messageId)
              .then(headFrom)
              .then((head) => Buffer.concat([Buffer.from(first.prefix, 'latin1'), head]))
              .catch(() => undefined)
          : undefined);
      const recipients: BounceRecipient[] = permanent.map((f) => {
        const expired = f.code === null || f.code < 500;
        return {
          rcpt: f.env.rcpt,
          action: 'failed',
          status: expired ? '4.4.7' : bounceStatus(f.code, f.response),
          diagnostic: expired
            ? `delivery time expired; last attempt: ${f.response || 'no answer'}`
            : `${f.code} ${f.response.replace(/^\d{3}[ -]/, '')}`,
        };
      });
      const dsn = buildBounce({
        reportingMta: this.hostname,
        queueId: first.message_id ?? 'unknown',
        sender,
        recipients,
        arrivalDate: new Date(Number(first.created_at)),
        originalHeaders:
          first.content === 'spool' && original
            ? safeOriginalHeaders(original.subarray(Buffer.byteLength(first.prefix, 'latin1')))
            : '',
      });
      blobId = newQueueId();
      await this.store.seal('blobs', blobId, dsn);
    }
    await this.store.write(
      async (trx) => {
        for (const f of permanent) {
          await trx('envelopes')
            .where({ id: f.env.id })
            .update({
              state: 'bounced',
              attempts: f.env.attempts + 1,
              last_code: f.code,
              last_response: f.response,
              lease_until: null,
              updated_at: now,
            });
          await trx('delivery_attempts').insert({
            envelope_id: f.env.id,
            at: now,
            duration_ms: duration,
            outcome: 'bounced',
            code: f.code,
            response: f.response,
          });
        }
        // A notice that cannot be delivered takes its password with it: a password alone is never sent.
        await trx('envelopes')
          .whereIn(
            'after_id',
            permanent.map((f) => f.env.id),
          )
          .andWhere('state', 'waiting')
          .update({ state: 'cancelled', updated_at: now, last_response: 'notice bounced' });
        if (blobId) {
          await insertGeneratedEnvelope(trx, {
            messageId: first.message_id,
            kind: 'bounce',
            mailFrom: '',
            rcpt: sender,
            blobId,
            now,
          });
        }
        await appendAudit(trx, {
          type: 'envelope.bounced',
          messageId: first.message_id,
          detail: {
            envelopes: permanent.map((f) => String(f.env.id)),
            code: permanent[0]!.code,
            notified: blobId !== null,
          },
        });
      },
      { syncDirs: blobId ? ['blobs'] : [] },
    );
    this.log.warn(
      { evt: 'DELIVERY_BOUNCED', qid: first.message_id, rcpts: permanent.length, notified: blobId !== null },
      'bounced',
    );
    if (blobId) this.onEnqueued();
  }

  /** When every envelope of a message is final, its spool file is destroyed (with its key). */
  private async finalise(first: EnvelopeRow): Promise<void> {
    if (first.content === 'blob' && first.blob_id) {
      const [open] = await selectRows<{ id: number }>(
        this.store.db,
        `select "id" from "envelopes" where "blob_id" = ? and "state" not in (${TERMINAL.map(() => '?').join(', ')}) limit 1`,
        [first.blob_id, ...TERMINAL],
      );
      if (!open) await this.store.removeSealed('blobs', first.blob_id);
      return;
    }
    if (!first.message_id) return;
    const messageId = first.message_id;
    const done = await this.store.write((trx) => this.markSpoolDone(trx, messageId, Date.now()));
    if (done) await this.dropSpool(messageId, done);
  }
}

export async function insertGeneratedEnvelope(
  trx: Trx,
  e: { messageId: string | null; kind: string; mailFrom: string; rcpt: string; blobId: string; now: number },
): Promise<void> {
  await trx('envelopes').insert({
    message_id: e.messageId,
    group_key: `blob:${e.blobId}`,
    kind: e.kind,
    mail_from: e.mailFrom,
    rcpt: e.rcpt,
    content: 'blob',
    blob_id: e.blobId,
    prefix: '',
    state: 'queued',
    attempts: 0,
    created_at: e.now,
    updated_at: e.now,
    next_attempt_at: e.now,
  });
}
