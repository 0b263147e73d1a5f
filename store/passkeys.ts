// WebAuthn credentials (passkeys) of staff and admins, and the short-lived challenges of a ceremony.
// Only public keys are stored; nothing here can sign in on its own, and nothing is logged.
import type { Knex } from 'knex';
import type { Store } from './store.js';

export interface PasskeyRow {
  id: number;
  userId: number;
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

interface Raw {
  id: number;
  user_id: number;
  credential_id: string;
  public_key: string;
  counter: number | string;
  transports: string;
  name: string;
  created_at: number | string;
  last_used_at: number | string | null;
}

function fromRaw(r: Raw): PasskeyRow {
  let transports: string[] = [];
  try {
    const parsed = JSON.parse(r.transports) as unknown;
    if (Array.isArray(parsed)) transports = parsed.filter((t): t is string => typeof t === 'string');
  } catch {
    transports = [];
  }
  return {
    id: Number(r.id),
    userId: Number(r.user_id),
    credentialId: r.credential_id,
    publicKey: new Uint8Array(Buffer.from(r.public_key, 'base64url')),
    counter: Number(r.counter),
    transports,
    name: r.name,
    createdAt: Number(r.created_at),
    lastUsedAt: r.last_used_at === null ? null : Number(r.last_used_at),
  };
}

export async function listPasskeys(db: Knex, userId: number): Promise<PasskeyRow[]> {
  const rows = (await db('passkeys').where({ user_id: userId }).orderBy('created_at', 'asc')) as Raw[];
  return rows.map(fromRaw);
}

export async function findPasskey(db: Knex, credentialId: string): Promise<PasskeyRow | null> {
  const row = (await db('passkeys').where({ credential_id: credentialId }).first()) as Raw | undefined;
  return row ? fromRaw(row) : null;
}

export async function addPasskey(
  trx: Knex.Transaction,
  p: {
    userId: number;
    credentialId: string;
    publicKey: Uint8Array;
    counter: number;
    transports: string[];
    name: string;
  },
): Promise<number> {
  const [row] = (await trx('passkeys')
    .insert({
      user_id: p.userId,
      credential_id: p.credentialId,
      public_key: Buffer.from(p.publicKey).toString('base64url'),
      counter: p.counter,
      transports: JSON.stringify(p.transports),
      name: p.name,
      created_at: Date.now(),
    })
    .returning('id')) as Array<{ id: number } | number>;
  return typeof row === 'number' ? row : Number(row?.id);
}

/** Records a use; the counter only moves forward (the verifier refused a step back already). */
export async function touchPasskey(trx: Knex.Transaction, id: number, counter: number): Promise<void> {
  await trx('passkeys').where({ id }).update({ counter, last_used_at: Date.now() });
}

export async function removePasskey(trx: Knex.Transaction, userId: number, id: number): Promise<boolean> {
  return (await trx('passkeys').where({ id, user_id: userId }).delete()) > 0;
}

/** Keeps a challenge for `ttlMs` under `idHash`; a newer one for the same key replaces it. */
export async function putChallenge(
  store: Store,
  c: {
    idHash: string;
    purpose: 'register' | 'login';
    userId: number | null;
    challenge: string;
    ttlMs: number;
  },
): Promise<void> {
  const now = Date.now();
  await store.write(async (trx) => {
    await trx('webauthn_challenges').where('expires_at', '<', now).delete();
    await trx('webauthn_challenges')
      .insert({
        id_hash: c.idHash,
        purpose: c.purpose,
        user_id: c.userId,
        challenge: c.challenge,
        expires_at: now + c.ttlMs,
      })
      .onConflict('id_hash')
      .merge();
  });
}

/** Takes a challenge out (single use): a second answer to the same challenge finds nothing. */
export async function takeChallenge(
  store: Store,
  idHash: string,
  purpose: 'register' | 'login',
): Promise<{ challenge: string; userId: number | null } | null> {
  return store.write(async (trx) => {
    const row = (await trx('webauthn_challenges').where({ id_hash: idHash, purpose }).first()) as
      { challenge: string; user_id: number | null; expires_at: number | string } | undefined;
    if (!row) return null;
    await trx('webauthn_challenges').where({ id_hash: idHash }).delete();
    if (Number(row.expires_at) < Date.now()) return null;
    return { challenge: row.challenge, userId: row.user_id === null ? null : Number(row.user_id) };
  });
}
