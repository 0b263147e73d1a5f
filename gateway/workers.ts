// Message workers: take spooled messages through the pipeline stages and enqueue one envelope per
// recipient. Any failure defers the message (with backoff) and, after repeated failures, holds it in
// quarantine with the reason. Nothing is enqueued for delivery unless every stage said continue.
import type { ResolvedConfig } from '../config/load.js';
import { errorCode, GatewayError } from '../config/errors.js';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import { insertRow, updateByIds } from '../store/fast-sql.js';
import type { Store } from '../store/store.js';
import { uiSettings } from '../store/settings.js';
import { headOf, runStage, type MessageContext, type Stage } from './pipeline.js';
import type { Verdict } from './scan.js';
import type { PlainCache } from './plain-cache.js';
import { ENVELOPE_LEASE_MS, insertGeneratedEnvelope, type EnvelopeRow } from './delivery.js';
import { buildBounce, safeOriginalHeaders } from './bounce.js';
import { newQueueId } from './ids.js';
import { buildAdminNotice } from './notices.js';
import os from 'node:os';
import { retryDelay } from './retry.js';

export interface MessageRow {
  id: string;
  mail_from: string;
  rcpt_to: string;
  trace: string;
  attempts: number;
  created_at: number;
  /** Bytes as received. */
  size: number;
  release?: 'protect' | 'clear' | 'delete' | null;
  released_by?: string | null;
}

const LEASE_MS = 10 * 60 * 1000;

/** Messages from this size (bytes as received) are streamed from the spool rather than loaded whole. */
export const STREAM_MIN = 1024 * 1024;

/**
 * Bytes of received mail in the pipeline at once. queue.workers bounds how many messages are processed
 * together (many small ones keep the scan and PGP threads busy); this bounds the memory they hold, so a
 * burst of large attachments waits its turn instead of being parsed all at once. A message larger than
 * the budget is processed alone.
 */
export const PIPELINE_BYTES = 64 * 1024 * 1024;

export class ByteBudget {
  private used = 0;
  private readonly waiting: Array<{ n: number; go: () => void }> = [];

  constructor(private readonly limit: number) {}

  async acquire(n: number): Promise<void> {
    if (this.waiting.length === 0 && (this.used === 0 || this.used + n <= this.limit)) {
      this.used += n;
      return;
    }
    await new Promise<void>((go) => this.waiting.push({ n, go }));
  }

  release(n: number): void {
    this.used -= n;
    // First come, first served: a large message at the head is not overtaken by small ones forever.
    while (this.waiting.length > 0) {
      const head = this.waiting[0]!;
      if (this.used !== 0 && this.used + head.n > this.limit) break;
      this.waiting.shift();
      this.used += head.n;
      head.go();
    }
  }
}

/** What is kept of a verdict (database, audit): rule ids, type names and parts — never text or positions. */
export function verdictSummary(
  verdict: Verdict | undefined,
): Record<string, string | number | boolean | string[]> {
  if (!verdict) return { scanned: false };
  const counted = verdict.findings.filter((f) => f.rule !== null);
  return {
    phi: verdict.phi,
    action: verdict.action,
    score: verdict.score,
    rules: verdict.rules,
    monitored: verdict.monitored,
    types: [...new Set(counted.map((f) => f.type))].sort(),
    parts: [...new Set(counted.map((f) => f.part))].sort(),
  };
}

export class MessageWorkers {
  constructor(
    private readonly store: Store,
    private readonly config: ResolvedConfig,
    private readonly log: Logger,
    private readonly stages: readonly Stage[],
    private readonly onEnqueued: (groups: EnvelopeRow[][]) => void,
    private readonly cache?: PlainCache,
    private readonly onBlocked?: () => void,
  ) {
    this.hostname = config.smtp.hostname ?? os.hostname();
  }

  private readonly hostname: string;
  private readonly budget = new ByteBudget(PIPELINE_BYTES);

  /** Claims up to n messages that are due (new, deferred and due, or abandoned by a crashed worker). */
  claim(n: number): Promise<MessageRow[]> {
    const now = Date.now();
    return this.store.write(async (trx) => {
      // Indexed on (state, next_attempt_at): cost follows the due work, not the table's history.
      const due = trx('messages')
        .whereIn('state', ['queued', 'deferred'])
        .andWhere('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .limit(n);
      // Several nodes on PostgreSQL: rows another node is claiming right now are skipped, not waited for.
      if (this.store.engine === 'postgres') void due.forUpdate().skipLocked();
      const rows = (await due.select(
        'id',
        'mail_from',
        'rcpt_to',
        'trace',
        'attempts',
        'created_at',
        'size',
        'release',
        'released_by',
      )) as MessageRow[];
      if (rows.length > 0) {
        await trx('messages')
          .whereIn(
            'id',
            rows.map((r) => r.id),
          )
          .update({
            state: 'processing',
            lease_until: now + LEASE_MS,
            lease_owner: this.store.nodeId,
            updated_at: now,
          });
      }
      return rows;
    });
  }

  /** Returns messages whose worker died (lease expired) to the queue. Run periodically, not per claim. */
  async reclaimExpired(): Promise<number> {
    const now = Date.now();
    return this.store.write((trx) =>
      trx('messages')
        .where('state', 'processing')
        .andWhere('lease_until', '<', now)
        .update({ state: 'queued', lease_until: null, next_attempt_at: now }),
    );
  }

  /** Puts claimed-but-unstarted messages back (on shutdown). */
  async release(rows: MessageRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.store.write((trx) =>
      trx('messages')
        .whereIn(
          'id',
          rows.map((r) => r.id),
        )
        .andWhere('state', 'processing')
        .update({ state: 'queued', lease_until: null }),
    );
  }

  async handle(row: MessageRow): Promise<void> {
    const size = Number(row.size) || 0;
    await this.budget.acquire(size);
    try {
      await this.process(row);
    } finally {
      this.budget.release(size);
    }
  }

  private async process(row: MessageRow): Promise<void> {
    const started = Date.now();
    const size = Number(row.size) || 0;
    let stageName = 'load';
    let ctx: MessageContext | undefined;
    if (row.release === 'delete') return this.deleteReleased(row);
    try {
      const load = () => this.store.unseal('spool', row.id);
      // A large message is not loaded whole: the scan and the pickup stream it from the sealed spool, and a
      // stage that needs all of it at once (PGP, a subject rewrite) loads it then (rawOf).
      const raw = this.cache?.get(row.id) ?? (size >= STREAM_MIN ? undefined : await load());
      ctx = {
        id: row.id,
        mailFrom: row.mail_from,
        rcptTo: JSON.parse(row.rcpt_to) as string[],
        trace: row.trace,
        raw,
        load,
        open: () => this.store.unsealStream('spool', row.id),
        release: row.release === 'protect' || row.release === 'clear' ? row.release : null,
      };
      for (const stage of this.stages) {
        stageName = stage.name;
        const outcome = await runStage(stage, ctx, this.config.queue.stageTimeout);
        if (outcome.verdict === 'continue') continue;
        await this.dropSealed(ctx);
        if (outcome.verdict === 'defer') return await this.defer(row, `${stage.name}:${outcome.reason}`);
        if (outcome.verdict === 'reject') return await this.block(row, ctx);
        return await this.hold(row, `${stage.name}:${outcome.reason}`, ctx);
      }
      stageName = 'enqueue';
      const groups = await this.enqueue(row, ctx);
      this.log.info(
        { evt: 'MESSAGE_ROUTED', qid: row.id, envelopes: ctx.plan?.length ?? 0, ms: Date.now() - started },
        'routed',
      );
      this.onEnqueued(groups);
      if (ctx.release) await this.tellSender(row, ctx.release);
    } catch (err) {
      if (ctx) await this.dropSealed(ctx);
      const code = errorCode(err);
      this.log.warn({ evt: 'STAGE_FAILED', qid: row.id, stage: stageName, code, err }, 'stage failed');
      // A spool file that is gone or fails authentication can never succeed: hold it at once.
      if (err instanceof GatewayError && (err.code === 'SPOOL_MISSING' || err.code === 'SPOOL_CORRUPT')) {
        return this.hold(row, err.code);
      }
      if (row.attempts + 1 >= this.config.queue.maxProcessingAttempts) {
        return this.hold(row, `${stageName}:${code}`);
      }
      return this.defer(row, `${stageName}:${code}`);
    }
  }

  private async enqueue(row: MessageRow, ctx: MessageContext): Promise<EnvelopeRow[][]> {
    const plan = ctx.plan ?? [];
    const now = Date.now();
    const groups = new Map<string, EnvelopeRow[]>();
    const usesSpool = plan.some((p) => p.content === 'spool');
    const counts: Record<string, number> = {};
    for (const r of ctx.routes ?? []) counts[r.action] = (counts[r.action] ?? 0) + 1;
    await this.store.write(
      async (trx) => {
        for (const b of ctx.sealedBlobs ?? []) await this.store.commitSealed(trx, 'blobs', b.id, b.sealed);
        const ids: number[] = [];
        for (const p of plan) {
          const waiting = p.after !== undefined;
          const state = p.hold ? 'held' : waiting ? 'waiting' : 'sending';
          const env = {
            message_id: row.id,
            // Envelopes sharing content and sender go out in one transaction.
            group_key: p.content === 'blob' ? `${row.id}:blob:${p.blobId}` : `${row.id}:${p.kind}`,
            kind: p.kind,
            mail_from: p.mailFrom ?? row.mail_from,
            rcpt: p.rcpt,
            content: p.content,
            blob_id: p.blobId ?? null,
            prefix: p.prefix,
            attempts: 0,
            created_at: row.created_at,
          };
          const id = (await insertRow(
            trx,
            'envelopes',
            {
              ...env,
              state,
              // Enqueued already leased for sending: the delivery workers get them in memory, not by a claim query.
              lease_until: state === 'sending' ? now + ENVELOPE_LEASE_MS : null,
              lease_owner: state === 'sending' ? this.store.nodeId : null,
              updated_at: now,
              next_attempt_at: now,
              hold_reason: p.hold ?? null,
              after_id: waiting ? ids[p.after!] : null,
              after_delay: waiting ? (p.afterDelay ?? 0) : null,
            },
            true,
          ))!;
          ids.push(id);
          if (state !== 'sending') continue;
          const group = groups.get(env.group_key) ?? [];
          group.push({ id, ...env });
          groups.set(env.group_key, group);
        }
        await updateByIds(trx, 'messages', [row.id], {
          state: usesSpool ? 'routed' : 'done',
          spool_removed: !usesSpool,
          updated_at: now,
          lease_until: null,
          reason: null,
          verdict: JSON.stringify(verdictSummary(ctx.verdict)),
        });
        await appendAudit(trx, {
          type: 'message.routed',
          messageId: row.id,
          detail: {
            ...counts,
            envelopes: plan.length,
            triggers: ctx.decision?.kind === 'per-recipient' ? ctx.decision.triggers : [],
            ...(ctx.encrypted ? { passthrough: ctx.encrypted } : {}),
            ...(ctx.pickups?.length ? { pickups: ctx.pickups.map((p) => p.id) } : {}),
            ...(ctx.redaction
              ? {
                  redactedAttachments: ctx.redaction.attachments,
                  redactedBoxes: ctx.redaction.boxes,
                  redactionMode: ctx.redaction.mode ?? 'on',
                  redactedWhich: (ctx.redaction.indexes ?? []).map(String),
                }
              : {}),
            ...verdictSummary(ctx.verdict),
          },
        });
      },
      {
        syncDirs: [
          ...new Set((ctx.sealedBlobs ?? []).flatMap((b) => this.store.sealedSyncDirs('blobs', b.sealed))),
        ],
        durable: true,
      },
    );
    if (!usesSpool) {
      this.cache?.delete(row.id);
      await this.store.removeSealed('spool', row.id);
    }
    return [...groups.values()];
  }

  /** A rule blocks the message: the sender gets a bounce naming the rule and the finding types, never the text. */
  private async block(row: MessageRow, ctx: MessageContext): Promise<void> {
    const decision = ctx.decision;
    const rules = decision?.kind === 'block' ? decision.rules : [];
    const types = decision?.kind === 'block' ? decision.types : [];
    const now = Date.now();
    let blobId: string | null = null;
    if (row.mail_from !== '') {
      const tag = this.config.policy.subjectTags[0];
      const dsn = buildBounce({
        reportingMta: this.hostname,
        queueId: row.id,
        sender: row.mail_from,
        subject: 'Message not sent: it appears to contain protected health information',
        recipients: (JSON.parse(row.rcpt_to) as string[]).map((rcpt) => ({
          rcpt,
          action: 'failed' as const,
          status: '5.7.1',
          diagnostic: `refused by rule ${rules.join(', ') || 'policy'} (found: ${types.join(', ') || 'PHI'})`,
        })),
        arrivalDate: new Date(Number(row.created_at)),
        originalHeaders: safeOriginalHeaders(await headOf(ctx)),
        advice:
          `Nothing was sent to any recipient. The rule${rules.length === 1 ? '' : 's'} ${rules.join(', ')} ` +
          `found ${types.join(', ') || 'protected health information'} in it.\r\n\r\n` +
          (tag
            ? `To send it securely, send it again with [${tag}] in the subject: it then goes out encrypted ` +
              `or as a secure pickup. Or remove that information and send it again.`
            : 'Remove that information and send it again, or ask your administrator.'),
      });
      blobId = newQueueId();
      await this.store.seal('blobs', blobId, dsn);
    }
    await this.store.write(
      async (trx) => {
        await trx('messages')
          .where({ id: row.id })
          .update({
            state: 'blocked',
            spool_removed: true,
            attempts: row.attempts + 1,
            lease_until: null,
            reason: 'BLOCKED_BY_RULE',
            updated_at: now,
            verdict: JSON.stringify(verdictSummary(ctx.verdict)),
          });
        if (blobId) {
          await insertGeneratedEnvelope(trx, {
            messageId: row.id,
            kind: 'bounce',
            mailFrom: '',
            rcpt: row.mail_from,
            blobId,
            now,
          });
        }
        await appendAudit(trx, {
          type: 'message.blocked',
          messageId: row.id,
          detail: { rules, types, notified: blobId !== null, ...verdictSummary(ctx.verdict) },
        });
      },
      { syncDirs: blobId ? ['blobs'] : [], durable: true },
    );
    this.cache?.delete(row.id);
    await this.store.removeSealed('spool', row.id);
    this.log.warn({ evt: 'MESSAGE_BLOCKED', qid: row.id, rules }, 'blocked by rule; sender notified');
    this.onBlocked?.();
  }

  /** An admin deleted a held message: its spool goes (crypto-shredded) and the sender is told. */
  private async deleteReleased(row: MessageRow): Promise<void> {
    const now = Date.now();
    await this.store.write(async (trx) => {
      await trx('messages')
        .where({ id: row.id })
        .update({ state: 'deleted', spool_removed: true, lease_until: null, updated_at: now });
      await trx('envelopes')
        .where({ message_id: row.id, state: 'held' })
        .update({ state: 'cancelled', updated_at: now });
      await appendAudit(trx, {
        type: 'message.deleted',
        messageId: row.id,
        actor: row.released_by ?? null,
        detail: {},
      });
    });
    this.cache?.delete(row.id);
    await this.store.removeSealed('spool', row.id).catch(() => undefined);
    this.log.info({ evt: 'MESSAGE_DELETED', qid: row.id }, 'held message deleted by an admin');
    await this.tellSender(row, 'delete');
  }

  /** The sender learns what an admin did with their held message (ids and dates only). */
  private async tellSender(row: MessageRow, what: 'protect' | 'clear' | 'delete'): Promise<void> {
    if (!row.mail_from) return;
    const text = {
      protect:
        'was reviewed by an administrator and released: it has now been sent protected (encrypted or as a secure pickup).',
      clear: 'was reviewed by an administrator and released: it has now been sent as it was.',
      delete:
        'was reviewed by an administrator and deleted: it was not sent. Send it again with [secure] in the subject if it must reach the recipients.',
    }[what];
    const mail = await buildAdminNotice(
      {
        practice: (await uiSettings(this.store, this.config).current()).practiceName,
        hostname: this.hostname,
        sender: { name: '', address: row.mail_from },
      },
      {
        subject: what === 'delete' ? 'Your held message was deleted' : 'Your held message was released',
        text: `Your message ${row.id}, sent ${new Date(Number(row.created_at)).toUTCString()}, ${text}`,
      },
    );
    const blobId = newQueueId();
    await this.store.seal('blobs', blobId, mail);
    const now = Date.now();
    await this.store.write(
      (trx) =>
        insertGeneratedEnvelope(trx, {
          messageId: row.id,
          kind: 'quarantine-notice',
          mailFrom: '',
          rcpt: row.mail_from,
          blobId,
          now,
        }),
      { syncDirs: ['blobs'], durable: true },
    );
    this.onBlocked?.();
  }

  /** Blobs the act stage sealed for a message that is not enqueued after all are removed again. */
  private async dropSealed(ctx: MessageContext): Promise<void> {
    // Content kept in memory for the database was never stored: only files need removing.
    for (const b of ctx.sealedBlobs ?? [])
      if (!b.sealed.inline) await this.store.removeSealedFile('blobs', b.id).catch(() => undefined);
    ctx.sealedBlobs = [];
  }

  private async defer(row: MessageRow, reason: string): Promise<void> {
    const attempts = row.attempts + 1;
    const now = Date.now();
    const next = now + retryDelay(this.config.queue, attempts);
    await this.store.write(async (trx) => {
      await trx('messages')
        .where({ id: row.id })
        .update({
          state: 'deferred',
          attempts,
          next_attempt_at: next,
          lease_until: null,
          reason: reason.slice(0, 64),
          updated_at: now,
        });
      await appendAudit(trx, { type: 'message.deferred', messageId: row.id, detail: { reason, attempts } });
    });
    this.log.warn(
      { evt: 'MESSAGE_DEFERRED', qid: row.id, reason, attempts, retryInMs: next - now },
      'deferred',
    );
  }

  private async hold(row: MessageRow, reason: string, ctx?: MessageContext): Promise<void> {
    const now = Date.now();
    await this.store.write(async (trx) => {
      await trx('messages')
        .where({ id: row.id })
        .update({
          state: 'held',
          attempts: row.attempts + 1,
          lease_until: null,
          reason: reason.slice(0, 64),
          updated_at: now,
          verdict: ctx?.verdict ? JSON.stringify(verdictSummary(ctx.verdict)) : null,
        });
      await appendAudit(trx, {
        type: 'message.held',
        messageId: row.id,
        detail: { reason, ...(ctx?.verdict ? verdictSummary(ctx.verdict) : {}) },
      });
    });
    this.log.warn({ evt: 'MESSAGE_HELD', qid: row.id, reason }, 'held in quarantine');
  }
}
