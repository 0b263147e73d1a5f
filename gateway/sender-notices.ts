// Tells senders what happened to their pickups: "opened" (first unlock) and "a secure reply is waiting".
// The portal records these as rows (store/pickups.ts); this poller turns each into a mail, enqueued in
// the same transaction that marks the row sent, so a notice is neither lost nor sent twice by a crash.
import type { ResolvedConfig } from '../config/load.js';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import { listPendingPickupNotices, type PickupNotice } from '../store/pickups.js';
import type { Store } from '../store/store.js';
import { uiSettings } from '../store/settings.js';
import { insertGeneratedEnvelope } from './delivery.js';
import { newQueueId } from './ids.js';
import { buildDirectReply, buildOpenedNotice, buildReplyNotice, type NoticeContext } from './notices.js';
import { listReplies, readReply } from '../store/pickup-replies.js';

export class SenderNotices {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly store: Store,
    private readonly config: ResolvedConfig,
    private readonly log: Logger,
    private readonly hostname: string,
    private readonly onEnqueued: () => void,
  ) {}

  private async mailFor(n: PickupNotice): Promise<Buffer | null> {
    const ctx: NoticeContext = {
      practice: (await uiSettings(this.store, this.config).current()).practiceName,
      hostname: this.hostname,
      sender: { name: '', address: n.sender },
    };
    if (n.kind === 'opened') {
      if (!this.config.pickup.openedNotice) return null;
      return buildOpenedNotice(ctx, { rcpt: n.rcpt, reference: n.reference, openedAt: n.createdAt });
    }
    const [reply] = n.replyId
      ? await listReplies(this.store, { pickupId: n.pickupId }).then((r) =>
          r.filter((x) => x.id === n.replyId),
        )
      : [];
    if (reply?.delivery === 'direct') {
      // Policy: the next hop is the practice's own mail server, so the reply itself goes to the sender.
      const opened = await readReply(this.store, reply.id, 'gateway');
      if (opened)
        return buildDirectReply(ctx, { rcpt: n.rcpt, reference: n.reference, content: opened.content });
    }
    return buildReplyNotice(ctx, {
      rcpt: n.rcpt,
      reference: n.reference,
      link: `${this.config.publicUrl}/me/replies/${n.replyId ?? ''}`,
    });
  }

  /** Sends what is pending; returns how many notices were handled. */
  async runOnce(): Promise<number> {
    const pending = await listPendingPickupNotices(this.store, 50);
    let enqueued = 0;
    for (const n of pending) {
      const mail = await this.mailFor(n);
      const blobId = mail ? newQueueId() : null;
      if (mail && blobId) await this.store.seal('blobs', blobId, mail);
      const now = Date.now();
      await this.store.write(
        async (trx) => {
          const marked = await trx('pickup_notices')
            .where({ id: n.id })
            .whereNull('sent_at')
            .update({ sent_at: now });
          if (!marked || !blobId) return;
          await insertGeneratedEnvelope(trx, {
            messageId: n.messageId,
            kind: n.kind === 'opened' ? 'pickup-opened' : 'pickup-reply',
            mailFrom: '',
            rcpt: n.sender,
            blobId,
            now,
          });
          await appendAudit(trx, {
            type: 'pickup.sender_notified',
            messageId: n.messageId,
            detail: { pickup: n.pickupId, notice: n.kind },
          });
          enqueued++;
        },
        { syncDirs: blobId ? ['blobs'] : [], durable: true },
      );
    }
    if (enqueued > 0) {
      this.log.info({ evt: 'SENDER_NOTICES_ENQUEUED', count: enqueued }, 'sender notices enqueued');
      this.onEnqueued();
    }
    return pending.length;
  }

  start(intervalMs: number): void {
    const tick = () => {
      this.running = this.runOnce()
        .then(() => undefined)
        .catch((err: unknown) =>
          this.log.error({ evt: 'SENDER_NOTICES_FAILED', err }, 'sender notices failed'),
        );
    };
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
