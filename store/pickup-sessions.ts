// Recipient sessions for an opened pickup, kept in the database (shared by all web nodes). The session row
// holds the pickup's data key only encrypted under a key that lives in the cookie, never the key itself.
//
// Cookie value: base64url(sid, 18 bytes) "." base64url(sessionKey, 32 bytes)
// Row:          id = SHA-256(sid), pickup_id, sealed_key = iv(12) AES-256-GCM(sessionKey, dataKey) tag(16)
//               with AAD = row id + pickup id (a sealed key moved to another row or pickup does not open).
// So the database alone (a backup, a read-only SQL injection) cannot open content: it lacks sessionKey;
// the cookie alone is useless once the row is gone (idle timeout, revocation, expiry, sign-out), and a
// row's id reveals nothing of the sid that finds it. Sessions end after `sessionIdleTimeout` without use,
// and in any case after MAX_SESSION_AGE; revocation and expiry delete them (store/pickups.ts endPickup).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { PickupConfig } from '../config/schema.js';
import { isLive, type PickupRow } from './pickups.js';
import type { Store } from './store.js';

const IV_LEN = 12;
const TAG_LEN = 16;
const SID_BYTES = 18;
const KEY_BYTES = 32;
/** Absolute session lifetime, however active: 8 hours. */
export const MAX_SESSION_AGE = 8 * 60 * 60 * 1000;
/** last_seen_at is refreshed at most this often, so reading a page is not a write per request. */
const TOUCH_EVERY = 15 * 1000;

interface SessionRow {
  id: string;
  pickup_id: string;
  sealed_key: string;
  created_at: number;
  last_seen_at: number;
}

function rowId(sid: Buffer): string {
  return createHash('sha256').update('phigw-pickup-session:').update(sid).digest('hex');
}

function aad(id: string, pickupId: string): Buffer {
  return Buffer.from(`phigw-pickup-session:${id}:${pickupId}`);
}

/** Starts a session for an opened pickup; returns the cookie value (the only copy of the session key). */
export async function createPickupSession(
  store: Store,
  pickup: Pick<PickupRow, 'id'>,
  dataKey: Buffer,
  now = Date.now(),
): Promise<string> {
  const sid = randomBytes(SID_BYTES);
  const key = randomBytes(KEY_BYTES);
  const id = rowId(sid);
  const iv = randomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(id, pickup.id));
  const sealed = Buffer.concat([iv, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
  await store.write(async (trx) => {
    // Opportunistic clean-up of this pickup's stale sessions.
    await trx('pickup_sessions')
      .where({ pickup_id: pickup.id })
      .where('created_at', '<', now - MAX_SESSION_AGE)
      .delete();
    await trx('pickup_sessions').insert({
      id,
      pickup_id: pickup.id,
      sealed_key: sealed.toString('base64'),
      created_at: now,
      last_seen_at: now,
    });
  });
  return `${sid.toString('base64url')}.${key.toString('base64url')}`;
}

function parseCookie(value: string): { sid: Buffer; key: Buffer } | null {
  const m = /^([A-Za-z0-9_-]{24})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!m) return null;
  const sid = Buffer.from(m[1]!, 'base64url');
  const key = Buffer.from(m[2]!, 'base64url');
  return sid.length === SID_BYTES && key.length === KEY_BYTES ? { sid, key } : null;
}

/**
 * The session's pickup and data key, or null when the cookie is malformed, unknown, idle too long, too old,
 * tampered with, or its pickup is no longer live (revoked, expired, key destroyed).
 */
export async function resumePickupSession(
  store: Store,
  cookie: string,
  pickup: PickupRow,
  limits: Pick<PickupConfig, 'sessionIdleTimeout'>,
  now = Date.now(),
): Promise<{ dataKey: Buffer } | null> {
  const parsed = parseCookie(cookie);
  if (!parsed) return null;
  const id = rowId(parsed.sid);
  const row = (await store.db('pickup_sessions').where({ id }).first()) as SessionRow | undefined;
  if (!row || row.pickup_id !== pickup.id) return null;
  const lastSeen = Number(row.last_seen_at);
  if (
    now - lastSeen > limits.sessionIdleTimeout ||
    now - Number(row.created_at) > MAX_SESSION_AGE ||
    !isLive(pickup, now)
  ) {
    await store.write((trx) => trx('pickup_sessions').where({ id }).delete());
    return null;
  }
  const blob = Buffer.from(row.sealed_key, 'base64');
  let dataKey: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', parsed.key, blob.subarray(0, IV_LEN));
    decipher.setAAD(aad(id, pickup.id));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_LEN));
    dataKey = Buffer.concat([
      decipher.update(blob.subarray(IV_LEN, blob.length - TAG_LEN)),
      decipher.final(),
    ]);
  } catch {
    return null;
  }
  if (now - lastSeen > TOUCH_EVERY)
    await store.write((trx) => trx('pickup_sessions').where({ id }).update({ last_seen_at: now }));
  return { dataKey };
}

/** Ends a session (sign-out). */
export async function endPickupSession(store: Store, cookie: string): Promise<void> {
  const parsed = parseCookie(cookie);
  if (!parsed) return;
  const id = rowId(parsed.sid);
  await store.write((trx) => trx('pickup_sessions').where({ id }).delete());
}

/** Deletes idle and over-age sessions of every pickup (the purger calls this). */
export async function purgePickupSessions(
  store: Store,
  limits: Pick<PickupConfig, 'sessionIdleTimeout'>,
  now = Date.now(),
): Promise<number> {
  return store.write((trx) =>
    trx('pickup_sessions')
      .where('last_seen_at', '<', now - limits.sessionIdleTimeout)
      .orWhere('created_at', '<', now - MAX_SESSION_AGE)
      .delete(),
  );
}
