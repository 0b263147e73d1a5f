// The spool: a message is sealed to disk (fsync, rename), the directory synced and its row committed,
// in that order, before anyone may answer 250. Recovery reconciles files and rows after a crash.
import type { Readable } from 'node:stream';
import type { Logger } from '../config/log.js';
import { appendAudit } from '../store/audit.js';
import { insertRow } from '../store/fast-sql.js';
import type { Store } from '../store/store.js';
import { newQueueId } from './ids.js';

export interface IntakeMeta {
  mailFrom: string;
  rcptTo: string[];
  clientIp: string;
  clientHelo: string;
  authUser: string | null;
  tls: boolean;
}

export interface SpoolHooks {
  /** Sees each plaintext chunk; throwing aborts the spool and removes the partial file. */
  inspect?: (chunk: Buffer) => void;
  /** Runs after the last chunk; throwing refuses the message. */
  finish?: () => void;
  /** The Received header for this message. */
  trace: (id: string, now: Date) => string;
  /** 'queued' leaves the message for the workers' next claim (mail not from intake, e.g. the web). */
  state?: 'processing' | 'queued';
}

/** How long a worker may hold a message before another may take it over. */
export const MESSAGE_LEASE_MS = 10 * 60 * 1000;

export interface SpooledMessage {
  id: string;
  mail_from: string;
  rcpt_to: string;
  trace: string;
  attempts: number;
  created_at: number;
  /** Bytes as received. */
  size: number;
}

/**
 * Spools a message durably and returns its row, already claimed for processing (leased), so the caller can
 * hand it straight to a worker. Any failure leaves nothing behind.
 */
export async function spoolMessage(
  store: Store,
  meta: IntakeMeta,
  source: Readable | Buffer,
  hooks: SpoolHooks,
): Promise<SpooledMessage> {
  const now = Date.now();
  const id = newQueueId(now);
  const trace = hooks.trace(id, new Date(now));
  const rcptTo = JSON.stringify(meta.rcptTo);
  const sealed = await store.sealForRow('spool', id, source, hooks.inspect);
  const { size } = sealed;
  try {
    hooks.finish?.();
    await store.write(
      async (trx) => {
        await insertRow(trx, 'messages', {
          id,
          state: hooks.state ?? 'processing',
          lease_until: hooks.state === 'queued' ? null : now + MESSAGE_LEASE_MS,
          lease_owner: hooks.state === 'queued' ? null : store.nodeId,
          created_at: now,
          updated_at: now,
          next_attempt_at: now,
          attempts: 0,
          size,
          mail_from: meta.mailFrom,
          rcpt_to: rcptTo,
          client_ip: meta.clientIp,
          client_helo: meta.clientHelo.slice(0, 255),
          auth_user: meta.authUser,
          tls: meta.tls,
          trace,
        });
        await store.commitSealed(trx, 'spool', id, sealed);
        await appendAudit(
          trx,
          {
            type: 'message.accepted',
            messageId: id,
            actor: meta.authUser ?? `ip:${meta.clientIp}`,
            detail: { size, recipients: meta.rcptTo.length, tls: meta.tls },
          },
          now,
        );
      },
      { syncDirs: store.sealedSyncDirs('spool', sealed), durable: true },
    );
  } catch (err) {
    // The row and any inline copy were in the failed transaction; only a file can be left.
    await store.removeSealedFile('spool', id).catch(() => undefined);
    throw err;
  }
  return { id, mail_from: meta.mailFrom, rcpt_to: rcptTo, trace, attempts: 0, created_at: now, size };
}

/**
 * After a crash: torn temp files are removed; a sealed file without a row was never acknowledged
 * (the client got no 250 and will retry), so it is removed too. Rows whose file is gone are handled
 * by the pipeline, which holds them with SPOOL_MISSING.
 */
export async function recoverSpool(store: Store, log: Logger): Promise<void> {
  const { ids, tornRemoved } = await store.scanArea('spool');
  const known = new Set<string>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const rows = (await store.db('messages').whereIn('id', chunk).select('id')) as Array<{ id: string }>;
    for (const r of rows) known.add(r.id);
  }
  let orphans = 0;
  for (const id of ids) {
    // Shared data directory (several nodes): a young file without a row is another node's message in intake.
    if (!known.has(id) && (await store.isLeftover('spool', id))) {
      await store.removeSealed('spool', id);
      orphans++;
    }
  }
  const blobs = await store.scanArea('blobs');
  if (tornRemoved || orphans || blobs.tornRemoved) {
    log.warn(
      {
        evt: 'SPOOL_RECOVERED',
        tornRemoved: tornRemoved + blobs.tornRemoved,
        unacknowledgedRemoved: orphans,
      },
      'spool recovered',
    );
  }
}
