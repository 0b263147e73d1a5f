// Staff and admin accounts. Passwords are kept only as scrypt hashes; comparison is constant-time.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Knex } from 'knex';

export type Role = 'staff' | 'admin' | 'auditor';

const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

function scrypt(password: string, salt: Buffer, len: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, len, opts, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: 256 * 1024 * 1024,
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Hash of a password nobody has, so a login for an unknown user costs the same as for a known one. */
let decoyHash: Promise<string> | undefined;

export interface UserRow {
  id: number;
  email: string;
  role: Role;
  password_hash: string;
  disabled: boolean | number;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function isPlausibleEmail(email: string): boolean {
  return /^[^\s@<>()[\],;:"]+@[^\s@<>()[\],;:"]+\.[^\s@<>()[\],;:"]+$/.test(email);
}

/** Generated passwords: 20 characters from an unambiguous alphabet (≈ 100 bits). */
export function generatePassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(20);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

export async function addUser(db: Knex, email: string, role: Role, password: string): Promise<void> {
  const normalised = normaliseEmail(email);
  if (!isPlausibleEmail(normalised)) throw new Error(`not an email address: ${email}`);
  if (password.length < 12) throw new Error('password must be at least 12 characters');
  const existing = (await db('users').where({ email: normalised }).first()) as UserRow | undefined;
  if (existing) throw new Error(`user ${normalised} already exists`);
  await db('users').insert({
    email: normalised,
    role,
    password_hash: await hashPassword(password),
    created_at: Date.now(),
  });
}

/** Returns the user when the password is right, otherwise null; takes the same time either way. */
export async function authenticate(db: Knex, email: string, password: string): Promise<UserRow | null> {
  const user = (await db('users')
    .where({ email: normaliseEmail(email) })
    .first()) as UserRow | undefined;
  if (!user || user.disabled) {
    decoyHash ??= hashPassword(generatePassword());
    await verifyPassword(password, await decoyHash);
    return null;
  }
  return (await verifyPassword(password, user.password_hash)) ? user : null;
}
