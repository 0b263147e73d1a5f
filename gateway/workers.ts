// Message workers: take spooled messages through the pipeline stages and enqueue one envelope per
// recipient. Any failure defers the message (with backoff) and, after repeated failures, holds it in
// quarantine with the reason. Nothing is enqueued for delivery unless every stage said continue.
import type { ResolvedConfig } from '../config/load.js';
import { errorCode, GatewayError } from '../config/errors.js';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import type { Store } from '../store/store.js';
import { runStage, type MessageContext, type Stage } from './pipeline.js';
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

export class MessageWorkers {
  constructor(
    private readonly store: Store,
    private readonly config: ResolvedConfig,
    private readonly log: Logger,
    private readonly stages: readonly Stage[],
    private readonly onEnqueued: () => void,
  ) {}

  /** Claims up to n messages that are due (new, deferred and due, or abandoned by a crashed worker). */
  claim(n: number): Promise<MessageRow[]> {
    const now = Date.now();
    return this.store.write(async (trx) => {
      const rows = (await trx('messages')
        .where((q) => {
          void q
            .whereIn('state', ['queued', 'deferred'])
            .andWhere('next_attempt_at', '<=', now)
            .orWhere((w) => {
              void w.where('state', 'processing').andWhere('lease_until', '<', now);
            });
        })
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
      const raw = await this.store.unseal('spool', row.id);
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
      await this.enqueue(row, ctx);
      this.log.info({ evt: 'MESSAGE_ROUTED', qid: row.id, envelopes: ctx.plan?.length ?? 0, ms: Date.now() - started }, 'routed');
      this.onEnqueued();
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

  private async enqueue(row: MessageRow, ctx: MessageContext): Promise<void> {
    const plan = ctx.plan ?? [];
    const now = Date.now();
    await this.store.write(async (trx) => {
      if (plan.length > 0) {
        await trx('envelopes').insert(
          plan.map((p) => ({
            message_id: row.id,
            group_key: `${row.id}:${p.kind}`,
            kind: p.kind,
            mail_from: row.mail_from,
            rcpt: p.rcpt,
            content: p.content,
            prefix: p.prefix,
            state: 'queued',
            attempts: 0,
            created_at: row.created_at,
            updated_at: now,
            next_attempt_at: now,
          })),
        );
      }
      await trx('messages')
        .where({ id: row.id })
        .update({
          state: plan.length > 0 ? 'routed' : 'done',
          updated_at: now,
          lease_until: null,
          reason: null,
          verdict: JSON.stringify({ phi: ctx.verdict?.phi ?? false, action: ctx.verdict?.action ?? 'clean', rules: ctx.verdict?.rules ?? [] }),
        });
      await appendAudit(trx, {
        type: 'message.routed',
        messageId: row.id,
        detail: { clean: plan.length, phi: ctx.verdict?.phi ?? false },
      });
    });
    if (plan.length === 0) await this.store.removeSealed('spool', row.id);
  }

  private async defer(row: MessageRow, reason: string): Promise<void> {
    const attempts = row.attempts + 1;
    const now = Date.now();
    const next = now + retryDelay(this.config.queue, attempts);
    await this.store.write(async (trx) => {
      await trx('messages')
        .where({ id: row.id })
        .update({ state: 'deferred', attempts, next_attempt_at: next, lease_until: null, reason: reason.slice(0, 64), updated_at: now });
      await appendAudit(trx, { type: 'message.deferred', messageId: row.id, detail: { reason, attempts } });
    });
    this.log.warn({ evt: 'MESSAGE_DEFERRED', qid: row.id, reason, attempts, retryInMs: next - now }, 'deferred');
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
          verdict: ctx?.verdict ? JSON.stringify({ phi: ctx.verdict.phi, action: ctx.verdict.action, rules: ctx.verdict.rules }) : null,
        });
      await appendAudit(trx, { type: 'message.held', messageId: row.id, detail: { reason } });
    });
    this.log.warn({ evt: 'MESSAGE_HELD', qid: row.id, reason }, 'held in quarantine');
  }
}
