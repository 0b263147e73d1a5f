// Per-user X25519 key pairs that let a pickup's sender (or an admin) re-issue its password: each pickup's
// data key is also sealed to their public keys (ECIES), and a private key opens only with its owner's own
// sign-in password (scrypt), itself inside a master-key seal. Never stores or logs a password, a private key
// or a data key in clear; a user's password alone, or the database and disk alone, open nothing.
//
// At rest:
//   user_keys.public_key        raw X25519 public key, base64
//   user_keys.wrapped_private   master-key value (Store.encryptValue, purpose user-key:<id>) of
//                               v(1) log2N(1) r(1) p(1) salt(16) iv(12) AES-256-GCM(scrypt(password, salt), pkcs8) tag(16)
//                               AAD = user id + key id
//   pickup_escrow.wrapped       v(1) ephemeral public key(32) iv(12) AES-256-GCM(kek, data key)(32) tag(16)
//                               kek = HKDF-SHA256(X25519(eph, user), salt = eph pub | user pub, info = pickup + user)
//                               AAD = pickup id, content id, pickup recipient, user id, key id
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  scrypt as scryptCb,
  type KeyObject,
  type ScryptOptions,
} from 'node:crypto';
import type { Knex } from 'knex';
import type { Store, Trx } from './store.js';
import { normaliseEmail } from './users.js';

/** The sign-in password's own scrypt cost (store/users.ts): a stronger one here would add nothing, since the
 * password hash already allows a search at that cost. The salt differs, so the hash is never the key. */
const SCRYPT = { log2N: 15, r: 8, p: 1 } as const;
const WRAP_VERSION = 1;
const ESCROW_VERSION = 1;
const SALT_LEN = 16;
const IV_LEN = 12;
const TAG_LEN = 16;
const KEY_LEN = 32;
const RAW_PUBLIC_LEN = 32;

export interface UserKeyRow {
  user_id: number;
  key_id: string;
  public_key: string;
  wrapped_private: string;
  created_at: number;
  updated_at: number;
}

/** Someone a new pickup's data key is sealed to. */
export interface EscrowRecipient {
  userId: number;
  keyId: string;
  /** Raw X25519 public key, base64. */
  publicKey: string;
}

/** What an escrow seal is bound to, so a sealed key copied onto another row does not open. */
export interface EscrowBinding {
  pickupId: string;
  contentId: string;
  rcpt: string;
}

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, KEY_LEN, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function keyIdOf(rawPublic: Buffer): string {
  return createHash('sha256').update(rawPublic).digest('hex').slice(0, 32);
}

function rawPublicOf(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(String(jwk.x), 'base64url');
}

function publicKeyFromRaw(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

function privateAad(userId: number, keyId: string): Buffer {
  return Buffer.from(`phigw-user-key:v1:${userId}:${keyId}`);
}

async function wrapPrivate(
  store: Store,
  privateKey: KeyObject,
  password: string,
  userId: number,
  keyId: string,
): Promise<string> {
  const salt = randomBytes(SALT_LEN);
  const iv = randomBytes(IV_LEN);
  const kek = await scrypt(password, salt, {
    N: 1 << SCRYPT.log2N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    maxmem: 64 * 1024 * 1024,
  });
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(privateAad(userId, keyId));
  const ct = Buffer.concat([cipher.update(der), cipher.final()]);
  kek.fill(0);
  der.fill(0);
  const blob = Buffer.concat([
    Buffer.from([WRAP_VERSION, SCRYPT.log2N, SCRYPT.r, SCRYPT.p]),
    salt,
    iv,
    ct,
    cipher.getAuthTag(),
  ]);
  return store.encryptValue(`user-key:${userId}`, blob);
}

/** The private key, or null when the password is not the one it was wrapped with. */
async function unwrapPrivate(store: Store, row: UserKeyRow, password: string): Promise<KeyObject | null> {
  const userId = Number(row.user_id);
  const blob = store.decryptValue(`user-key:${userId}`, row.wrapped_private);
  if (blob.length < 4 + SALT_LEN + IV_LEN + TAG_LEN || blob[0] !== WRAP_VERSION) return null;
  const [log2N, r, p] = [blob[1]!, blob[2]!, blob[3]!];
  const salt = blob.subarray(4, 4 + SALT_LEN);
  const iv = blob.subarray(4 + SALT_LEN, 4 + SALT_LEN + IV_LEN);
  const ct = blob.subarray(4 + SALT_LEN + IV_LEN, blob.length - TAG_LEN);
  const kek = await scrypt(password, salt, { N: 1 << log2N, r, p, maxmem: 256 * 1024 * 1024 });
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, iv);
    decipher.setAAD(privateAad(userId, row.key_id));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_LEN));
    const der = Buffer.concat([decipher.update(ct), decipher.final()]);
    const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    der.fill(0);
    return key;
  } catch {
    return null;
  } finally {
    kek.fill(0);
  }
}

async function newKeyRow(store: Store, userId: number, password: string, now: number): Promise<UserKeyRow> {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const raw = rawPublicOf(publicKey);
  const keyId = keyIdOf(raw);
  return {
    user_id: userId,
    key_id: keyId,
    public_key: raw.toString('base64'),
    wrapped_private: await wrapPrivate(store, privateKey, password, userId, keyId),
    created_at: now,
    updated_at: now,
  };
}

export async function findUserKey(db: Knex | Trx, userId: number): Promise<UserKeyRow | undefined> {
  const row = (await db('user_keys').where({ user_id: userId }).first()) as UserKeyRow | undefined;
  return row
    ? {
        ...row,
        user_id: Number(row.user_id),
        created_at: Number(row.created_at),
        updated_at: Number(row.updated_at),
      }
    : undefined;
}

/**
 * Gives a user a key pair if they have none (at sign-in, SMTP AUTH, account creation: whenever the password is
 * in hand and known to be right). Returns whether one was made. Two sign-ins at once make one key: the first
 * insert wins and the other is dropped.
 */
export async function ensureUserKey(store: Store, userId: number, password: string): Promise<boolean> {
  if (await findUserKey(store.db, userId)) return false;
  const row = await newKeyRow(store, userId, password, Date.now());
  return store.write(async (trx) => {
    if (await findUserKey(trx, userId)) return false;
    await trx('user_keys').insert(row);
    return true;
  });
}

/**
 * The new wrapped private key for a password change (old password known right), to be written by
 * `applyUserKeyChange` inside the same transaction as the new password hash. A user without a key gets one.
 * If the old password does not open the key (it should), a fresh key replaces it.
 */
export async function prepareUserKeyChange(
  store: Store,
  userId: number,
  oldPassword: string,
  newPassword: string,
): Promise<{ kind: 'rewrap'; keyId: string; wrapped: string } | { kind: 'replace'; row: UserKeyRow }> {
  const now = Date.now();
  const current = await findUserKey(store.db, userId);
  const privateKey = current ? await unwrapPrivate(store, current, oldPassword) : null;
  if (current && privateKey)
    return {
      kind: 'rewrap',
      keyId: current.key_id,
      wrapped: await wrapPrivate(store, privateKey, newPassword, userId, current.key_id),
    };
  return { kind: 'replace', row: await newKeyRow(store, userId, newPassword, now) };
}

export async function applyUserKeyChange(
  trx: Trx,
  userId: number,
  change: Awaited<ReturnType<typeof prepareUserKeyChange>>,
): Promise<void> {
  if (change.kind === 'rewrap') {
    const updated = await trx('user_keys')
      .where({ user_id: userId, key_id: change.keyId })
      .update({ wrapped_private: change.wrapped, updated_at: Date.now() });
    if (updated > 0) return;
  }
  const row = change.kind === 'replace' ? change.row : undefined;
  await dropUserKey(trx, userId);
  if (row) await trx('user_keys').insert(row);
}

/**
 * Replaces a user's key pair after an admin reset their password: the old private key is unreadable without
 * the old password, so the escrow sealed to it is deleted too (those pickups can no longer be re-issued by
 * this user; admins still can).
 */
export async function resetUserKey(
  store: Store,
  trx: Trx,
  userId: number,
  newPassword: string,
): Promise<void> {
  await dropUserKey(trx, userId);
  await trx('user_keys').insert(await newKeyRow(store, userId, newPassword, Date.now()));
}

export async function dropUserKey(trx: Trx, userId: number): Promise<void> {
  await trx('pickup_escrow').where({ user_id: userId }).delete();
  await trx('user_keys').where({ user_id: userId }).delete();
}

/** A user's private key for re-issuing, or null when they have no key or the password does not open it. */
export async function openUserKey(store: Store, userId: number, password: string): Promise<KeyObject | null> {
  const row = await findUserKey(store.db, userId);
  return row ? unwrapPrivate(store, row, password) : null;
}

// ---------------------------------------------------------------------------------------------------
// Escrow of pickup data keys

/**
 * Who a new pickup's data key is sealed to: its sender's account (the SMTP AUTH user; for mail from a trusted
 * network without AUTH, the account whose address is the envelope sender, else the From address) and every
 * active admin. Accounts without a key pair yet (no password sign-in since this feature) get nothing.
 */
export async function escrowRecipientsFor(
  db: Knex,
  input: { messageId: string; sender: string },
): Promise<EscrowRecipient[]> {
  const message = (await db('messages').where({ id: input.messageId }).first('auth_user', 'mail_from')) as
    { auth_user: string | null; mail_from: string } | undefined;
  const owners = (message?.auth_user ? [message.auth_user] : [message?.mail_from ?? '', input.sender])
    .map(normaliseEmail)
    .filter((e) => e !== '');
  const rows = (await db('users as u')
    .join('user_keys as k', 'k.user_id', 'u.id')
    .where('u.disabled', false)
    .where((q) => {
      void q.where('u.role', 'admin');
      if (owners.length > 0)
        void q.orWhere((o) => void o.whereIn('u.email', owners).where('u.role', 'staff'));
    })
    .select('u.id', 'u.email', 'u.role', 'k.key_id', 'k.public_key')) as Array<{
    id: number;
    email: string;
    role: string;
    key_id: string;
    public_key: string;
  }>;
  // One owner only: the first of the candidates that has an account (admins are in anyway).
  const owner = owners.find((e) => rows.some((r) => r.email === e));
  return rows
    .filter((r) => r.role === 'admin' || r.email === owner)
    .map((r) => ({ userId: Number(r.id), keyId: r.key_id, publicKey: r.public_key }));
}

function escrowAad(b: EscrowBinding, userId: number, keyId: string): Buffer {
  return Buffer.from(
    `phigw-pickup-escrow:v1:${b.pickupId}:${b.contentId}:${b.rcpt.toLowerCase()}:${userId}:${keyId}`,
  );
}

function escrowKek(
  shared: Buffer,
  ephRaw: Buffer,
  userRaw: Buffer,
  b: EscrowBinding,
  userId: number,
): Buffer {
  return Buffer.from(
    hkdfSync(
      'sha256',
      shared,
      Buffer.concat([ephRaw, userRaw]),
      `phi-gateway pickup escrow v1|${b.pickupId}|${userId}`,
      KEY_LEN,
    ),
  );
}

/** ECIES: a fresh ephemeral X25519 key, HKDF, AES-256-GCM. */
export function sealForEscrow(dataKey: Buffer, to: EscrowRecipient, binding: EscrowBinding): string {
  const userRaw = Buffer.from(to.publicKey, 'base64');
  if (userRaw.length !== RAW_PUBLIC_LEN) throw new Error('not an X25519 public key');
  const eph = generateKeyPairSync('x25519');
  const ephRaw = rawPublicOf(eph.publicKey);
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: publicKeyFromRaw(userRaw) });
  const kek = escrowKek(shared, ephRaw, userRaw, binding, to.userId);
  shared.fill(0);
  const iv = randomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(escrowAad(binding, to.userId, to.keyId));
  const ct = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  kek.fill(0);
  return Buffer.concat([Buffer.from([ESCROW_VERSION]), ephRaw, iv, ct, cipher.getAuthTag()]).toString(
    'base64',
  );
}

/** The data key, or null when this seal is not for this key and binding. */
export function openEscrow(
  wrapped: string,
  privateKey: KeyObject,
  holder: { userId: number; keyId: string },
  binding: EscrowBinding,
): Buffer | null {
  const blob = Buffer.from(wrapped, 'base64');
  if (blob.length !== 1 + RAW_PUBLIC_LEN + IV_LEN + KEY_LEN + TAG_LEN || blob[0] !== ESCROW_VERSION)
    return null;
  try {
    const ephRaw = blob.subarray(1, 1 + RAW_PUBLIC_LEN);
    const userRaw = rawPublicOf(createPublicKey(privateKey));
    const shared = diffieHellman({ privateKey, publicKey: publicKeyFromRaw(ephRaw) });
    const kek = escrowKek(shared, ephRaw, userRaw, binding, holder.userId);
    shared.fill(0);
    const ivAt = 1 + RAW_PUBLIC_LEN;
    const decipher = createDecipheriv('aes-256-gcm', kek, blob.subarray(ivAt, ivAt + IV_LEN));
    decipher.setAAD(escrowAad(binding, holder.userId, holder.keyId));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_LEN));
    const out = Buffer.concat([
      decipher.update(blob.subarray(ivAt + IV_LEN, ivAt + IV_LEN + KEY_LEN)),
      decipher.final(),
    ]);
    kek.fill(0);
    return out;
  } catch {
    return null;
  }
}
