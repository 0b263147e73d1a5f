// Secure replies from pickup recipients: sealed at rest under the gateway's master key (blobs/reply-<id>),
// with a notice row for the original sender. Never logs or audits reply content or file names.
import { randomBytes } from 'node:crypto';
import type { PickupConfig } from '../config/schema.js';
import { appendAudit } from './audit.js';
import {
  addNotice,
  deserializeContent,
  serializeContent,
  type PickupContent,
  type PickupRow,
} from './pickups.js';
import type { Store } from './store.js';

export interface ReplySummary {
  id: string;
  pickupId: string;
  messageId: string;
  /** The original sender, to whom the reply is addressed. */
  sender: string;
  /** The pickup recipient who wrote it. */
  rcpt: string;
  delivery: 'sealed' | 'direct';
  size: number;
  attachments: number;
  createdAt: number;
  readAt: number | null;
}

interface ReplyRow {
  id: string;
  pickup_id: string;
  message_id: string;
  sender: string;
  rcpt: string;
  delivery: 'sealed' | 'direct';
  size: number;
  attachments: number;
  created_at: number;
  read_at: number | null;
}

function blobId(replyId: string): string {
  return `reply-${replyId}`;
}

function toSummary(r: ReplyRow): ReplySummary {
  return {
    id: r.id,
    pickupId: r.pickup_id,
    messageId: r.message_id,
    sender: r.sender,
    rcpt: r.rcpt,
    delivery: r.delivery,
    size: Number(r.size),
    attachments: Number(r.attachments),
    createdAt: Number(r.created_at),
    readAt: r.read_at === null ? null : Number(r.read_at),
  };
}

/**
 * Stores a recipient's reply sealed and queues a 'reply' notice for the sender. With replyDelivery
 * 'direct' the gateway side delivers the reply itself (readReply) instead of a "sign in to read" notice;
 * the row's `delivery` tells it which. Audited 'pickup.replied' with ids, counts and the client IP.
 */
export async function createReply(
  store: Store,
  input: {
    pickup: Pick<PickupRow, 'id' | 'message_id' | 'sender' | 'rcpt' | 'reference'>;
    subject: string;
    text: string;
    attachments: PickupContent['attachments'];
    ip: string;
  },
  limits: Pick<PickupConfig, 'replyDelivery'>,
): Promise<string> {
  const id = randomBytes(16).toString('hex');
  const now = Date.now();
  const content: PickupContent = {
    from: input.pickup.rcpt,
    to: [input.pickup.sender],
    cc: [],
    subject: input.subject,
    date: new Date(now).toISOString(),
    text: input.text,
    html: null,
    attachments: input.attachments,
  };
  const { size } = await store.seal('blobs', blobId(id), serializeContent(content));
  await store.write(
    async (trx) => {
      await trx('pickup_replies').insert({
        id,
        pickup_id: input.pickup.id,
        message_id: input.pickup.message_id,
        sender: input.pickup.sender,
        rcpt: input.pickup.rcpt,
        delivery: limits.replyDelivery,
        size,
        attachments: input.attachments.length,
        created_at: now,
        read_at: null,
      });
      await addNotice(trx, 'reply', input.pickup, id, now);
      await appendAudit(
        trx,
        {
          type: 'pickup.replied',
          messageId: input.pickup.message_id,
          actor: 'recipient',
          detail: { pickup: input.pickup.id, reply: id, attachments: input.attachments.length, ip: input.ip },
        },
        now,
      );
    },
    { syncDirs: ['blobs'] },
  );
  return id;
}

export async function listReplies(
  store: Store,
  filter: { sender?: string; pickupId?: string; messageId?: string; limit?: number } = {},
): Promise<ReplySummary[]> {
  const q = store
    .db('pickup_replies')
    .orderBy('created_at', 'desc')
    .limit(filter.limit ?? 200);
  if (filter.sender) void q.where('sender', filter.sender);
  if (filter.pickupId) void q.where('pickup_id', filter.pickupId);
  if (filter.messageId) void q.where('message_id', filter.messageId);
  return ((await q) as ReplyRow[]).map(toSummary);
}

/** Opens a reply (for the signed-in sender, an admin, or the gateway delivering it); audited 'pickup.reply_read'. */
export async function readReply(
  store: Store,
  id: string,
  actor: string,
): Promise<{ reply: ReplySummary; content: PickupContent } | null> {
  const row = (await store.db('pickup_replies').where({ id }).first()) as ReplyRow | undefined;
  if (!row) return null;
  const content = deserializeContent(await store.unseal('blobs', blobId(id)));
  const now = Date.now();
  await store.write(async (trx) => {
    await trx('pickup_replies').where({ id }).whereNull('read_at').update({ read_at: now });
    await appendAudit(
      trx,
      {
        type: 'pickup.reply_read',
        messageId: row.message_id,
        actor,
        detail: { reply: id, pickup: row.pickup_id },
      },
      now,
    );
  });
  return { reply: toSummary({ ...row, read_at: row.read_at ?? now }), content };
}
