// Message workers: take spooled messages through the pipeline stages and enqueue one envelope per
// recipient. Any failure defers the message (with backoff) and, after repeated failures, holds it in
// quarantine with the reason. Nothing is enqueued for delivery unless every stage said continue.
import type { ResolvedConfig } from '../config/load.js';
import { errorCode, GatewayError } from '../config/errors.js';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import type { Store } from '../store/store.js';
import { runStage, type MessageContext, type Stage } from './pipeline.js';
import type { Verdict } from './scan.js';
import type { PlainCache } from './plain-cache.js';
import { ENVELOPE_LEASE_MS, type EnvelopeRow } from './delivery.js';
import { retryDelay } from './retry.js';

export interface MessageRow {
  id: string;
  mail_from: string;
  rcpt_to: string;
  trace: string;
  attempts: number;
  created_at: number;
}

const LEASE_MS = 10 * 60 * 1000;

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
  ) {}

  /** Claims up to n messages that are due (new, deferred and due, or abandoned by a crashed worker). */
  claim(n: number): Promise<MessageRow[]> {
    const now = Date.now();
    return this.store.write(async (trx) => {
      // Indexed on (state, next_attempt_at): cost follows the due work, not the table's history.
      const rows = (await trx('messages')
        .whereIn('state', ['queued', 'deferred'])
        .andWhere('next_attempt_at', '<=', now)
        .orderBy('next_attempt_at')
        .limit(n)
        .select('id', 'mail_from', 'rcpt_to', 'trace', 'attempts', 'created_at')) as MessageRow[];
      if (rows.length > 0) {
        await trx('messages')
          .whereIn(
            'id',
            rows.map((r) => r.id),
          )
          .update({ state: 'processing', lease_until: now + LEASE_MS, updated_at: now });
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
    const started = Date.now();
    let stageName = 'load';
    try {
      const raw = this.cache?.get(row.id) ?? (await this.store.unseal('spool', row.id));
      const ctx: MessageContext = {
        id: row.id,
        mailFrom: row.mail_from,
        rcptTo: JSON.parse(row.rcpt_to) as string[],
        trace: row.trace,
        raw,
      };
      for (const stage of this.stages) {
        stageName = stage.name;
        const outcome = await runStage(stage, ctx, this.config.queue.stageTimeout);
        if (outcome.verdict === 'continue') continue;
        if (outcome.verdict === 'defer') return await this.defer(row, `${stage.name}:${outcome.reason}`);
        // quarantine and reject both hold the message for an admin until protection and bounces land.
        return await this.hold(row, `${stage.name}:${outcome.reason}`, ctx);
      }
      stageName = 'enqueue';
      const groups = await this.enqueue(row, ctx);
      this.log.info(
        { evt: 'MESSAGE_ROUTED', qid: row.id, envelopes: ctx.plan?.length ?? 0, ms: Date.now() - started },
        'routed',
      );
      this.onEnqueued(groups);
    } catch (err) {
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
    await this.store.write(async (trx) => {
      for (const p of plan) {
        // Enqueued already leased for sending: the delivery workers get them in memory, not by a claim query.
        const env = {
          message_id: row.id,
          group_key: `${row.id}:${p.kind}`,
          kind: p.kind,
          mail_from: row.mail_from,
          rcpt: p.rcpt,
          content: p.content,
          blob_id: null,
          prefix: p.prefix,
          attempts: 0,
          created_at: row.created_at,
        };
        const [inserted] = (await trx('envelopes')
          .insert({
            ...env,
            state: 'sending',
            lease_until: now + ENVELOPE_LEASE_MS,
            updated_at: now,
            next_attempt_at: now,
          })
          .returning('id')) as Array<{ id: number } | number>;
        const id = typeof inserted === 'number' ? inserted : inserted!.id;
        const group = groups.get(env.group_key) ?? [];
        group.push({ id, ...env });
        groups.set(env.group_key, group);
      }
      await trx('messages')
        .where({ id: row.id })
        .update({
          state: plan.length > 0 ? 'routed' : 'done',
          updated_at: now,
          lease_until: null,
          reason: null,
          verdict: JSON.stringify(verdictSummary(ctx.verdict)),
        });
      await appendAudit(trx, {
        type: 'message.routed',
        messageId: row.id,
        detail: { clean: plan.length, ...verdictSummary(ctx.verdict) },
      });
    });
    if (plan.length === 0) {
      this.cache?.delete(row.id);
      await this.store.removeSealed('spool', row.id);
    }
    return [...groups.values()];
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
