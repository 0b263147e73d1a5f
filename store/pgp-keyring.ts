// The recipient keyring: OpenPGP public keys in the store, with where each came from, and the choice of
// the key to encrypt to. It never stores a secret key and never hands out a key that is not valid now.
import { createHash } from 'node:crypto';
import { request } from 'node:https';
import type { LookupFunction } from 'node:net';
import * as openpgp from 'openpgp';
import type { PgpConfig } from '../config/schema.js';
import { selectRows } from './fast-sql.js';
import { appendAudit } from './audit.js';
import type { Store, Trx } from './store.js';

export interface KeyInfo {
  /** Uppercase hex, no spaces. */
  fingerprint: string;
  userIds: string[];
  /** Lowercased addresses of the user IDs. */
  emails: string[];
  /** Creation time of the primary key, ms. */
  created: number;
  /** Expiry of the primary key, ms; null when it does not expire. */
  expires: number | null;
  revoked: boolean;
  /** Has an encryption key (primary or subkey) usable at import time. */
  canEncrypt: boolean;
  /** `import:<file name>`, `wkd:<domain>` or `api`. */
  source: string;
  importedAt: number;
}

/** A key chosen for one recipient address, valid at the time it was chosen. */
export interface RecipientKey {
  fingerprint: string;
  /** The recipient address it was chosen for, lowercased. */
  address: string;
  source: string;
  key: openpgp.PublicKey;
}

export interface ImportResult {
  imported: KeyInfo[];
  rejected: Array<{ fingerprint?: string; reason: string }>;
}

/** Fetches one WKD URL. `status` 200 with the key bytes, anything else means "no key here". */
export type WkdFetch = (url: URL, timeoutMs: number) => Promise<{ status: number; body: Uint8Array }>;

export interface KeyringOptions {
  /** Replaces the HTTPS fetch used for Web Key Directory lookups (tests: a local server and its CA). */
  wkdFetch?: WkdFetch;
}

interface KeyRow {
  fingerprint: string;
  armored: string;
  emails: string;
  user_ids: string;
  created_at: number | string;
  expires_at: number | string | null;
  revoked: number | boolean;
  can_encrypt: number | boolean;
  source: string;
  imported_at: number | string;
}

const MAX_WKD_BYTES = 256 * 1024;

export function normalizeFingerprint(fpr: string): string {
  return fpr.replace(/\s+/g, '').toUpperCase();
}

function rowToInfo(r: KeyRow): KeyInfo {
  return {
    fingerprint: r.fingerprint,
    userIds: JSON.parse(r.user_ids) as string[],
    emails: JSON.parse(r.emails) as string[],
    created: Number(r.created_at),
    expires: r.expires_at === null ? null : Number(r.expires_at),
    revoked: !!r.revoked,
    canEncrypt: !!r.can_encrypt,
    source: r.source,
    importedAt: Number(r.imported_at),
  };
}

/** The armour blocks of a file: several keys may come as one block or as blocks one after another. */
function armourBlocks(text: string): string[] {
  const re =
    /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP (?:PUBLIC|PRIVATE) KEY BLOCK-----/g;
  return [...text.matchAll(re)].map((m) => m[0]);
}

async function describe(key: openpgp.PublicKey, now: Date) {
  const userIds = key.users.map((u) => u.userID?.userID).filter((u): u is string => !!u);
  const emails = [
    ...new Set(key.users.map((u) => u.userID?.email?.trim().toLowerCase()).filter((e): e is string => !!e)),
  ];
  const revoked = await key.isRevoked(undefined, undefined, now).catch(() => false);
  const exp = await key.getExpirationTime().catch(() => null);
  const expires = exp instanceof Date ? exp.getTime() : null;
  const canEncrypt = await key.getEncryptionKey(undefined, now).then(
    () => true,
    () => false,
  );
  // Why the primary key itself is unusable, if it is (bad self-signature, weak algorithm…).
  const primaryProblem = await key.verifyPrimaryKey(now).then(
    () => null,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  return { userIds, emails, revoked, expires, canEncrypt, primaryProblem };
}

/** z-base-32 (as used by WKD), of 20 bytes. */
function zbase32(data: Uint8Array): string {
  const alphabet = 'ybndrfg8ejkmcpqxot1uwisza345h769';
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of data) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

/** The advanced and direct WKD URLs for an address (draft-koch-openpgp-webkey-service §3.1). */
export function wkdUrls(address: string): [URL, URL] {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  const hash = zbase32(createHash('sha1').update(local.toLowerCase(), 'utf8').digest());
  const l = encodeURIComponent(local);
  return [
    new URL(`https://openpgpkey.${domain}/.well-known/openpgpkey/${domain}/hu/${hash}?l=${l}`),
    new URL(`https://${domain}/.well-known/openpgpkey/hu/${hash}?l=${l}`),
  ];
}

/**
 * HTTPS GET with a timeout and a size cap; no redirects are followed and plain HTTP is refused.
 * `ca`, `lookup` and `port` exist for tests (a local server with its own CA); production passes none.
 */
export function httpsFetch(
  url: URL,
  timeoutMs: number,
  opts: { ca?: string | Buffer; lookup?: LookupFunction; port?: number } = {},
): Promise<{ status: number; body: Uint8Array }> {
  if (url.protocol !== 'https:') return Promise.reject(new Error('WKD is HTTPS only'));
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        timeout: timeoutMs,
        headers: { accept: 'application/octet-stream' },
        ...(opts.ca ? { ca: opts.ca } : {}),
        ...(opts.lookup ? { lookup: opts.lookup } : {}),
        ...(opts.port ? { port: opts.port } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_WKD_BYTES) req.destroy(new Error('WKD answer too large'));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    const timer = setTimeout(() => req.destroy(new Error('WKD lookup timed out')), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('timeout', () => req.destroy(new Error('WKD lookup timed out')));
    req.on('error', reject);
    req.end();
  });
}

export class Keyring {
  /** Parsed keys by fingerprint, tagged with the row's imported_at so an update elsewhere is noticed. */
  private parsed = new Map<string, { importedAt: number; key: openpgp.PublicKey }>();
  /** WKD answers by address: the time they are good until. */
  private wkdAnswers = new Map<string, number>();
  private wkdInflight = new Map<string, Promise<void>>();
  private readonly wkdFetch: WkdFetch;

  constructor(
    private readonly store: Store,
    private readonly config: PgpConfig,
    opts: KeyringOptions = {},
  ) {
    this.wkdFetch = opts.wkdFetch ?? ((url, timeout) => httpsFetch(url, timeout));
  }

  /** Imports every key of an armoured text. Re-importing a known key merges it (new revocation, expiry…). */
  async importArmored(text: string, source: string, now = new Date()): Promise<ImportResult> {
    const result: ImportResult = { imported: [], rejected: [] };
    const blocks = armourBlocks(text);
    if (blocks.length === 0) {
      result.rejected.push({ reason: 'no ASCII-armoured OpenPGP key found' });
      return result;
    }
    const keys: openpgp.PublicKey[] = [];
    for (const block of blocks) {
      try {
        for (const k of await openpgp.readKeys({ armoredKeys: block })) keys.push(k.toPublic());
      } catch (err) {
        result.rejected.push({ reason: `unreadable key block: ${(err as Error).message}` });
      }
    }
    await this.importKeys(keys, source, now, result);
    return result;
  }

  private async importKeys(
    keys: openpgp.PublicKey[],
    source: string,
    now: Date,
    result: ImportResult,
  ): Promise<void> {
    for (const incoming of keys) {
      const fingerprint = normalizeFingerprint(incoming.getFingerprint());
      const existing = (await this.store.db('pgp_keys').where({ fingerprint }).first()) as KeyRow | undefined;
      let key = incoming;
      if (existing) {
        try {
          const [stored] = await openpgp.readKeys({ armoredKeys: existing.armored });
          key = await stored!.toPublic().update(incoming, now);
        } catch (err) {
          result.rejected.push({
            fingerprint,
            reason: `cannot merge with the stored key: ${(err as Error).message}`,
          });
          continue;
        }
      }
      const d = await describe(key, now);
      if (d.emails.length === 0) {
        result.rejected.push({ fingerprint, reason: 'no user ID with an email address' });
        continue;
      }
      // A new key that cannot be used is refused; a known one is updated so that it stops being used.
      if (!existing) {
        let reason: string | null = null;
        if (d.revoked) reason = 'revoked';
        else if (d.expires !== null && d.expires <= now.getTime())
          reason = `expired on ${new Date(d.expires).toISOString().slice(0, 10)}`;
        else if (d.primaryProblem) reason = `unusable key: ${d.primaryProblem}`;
        else if (!d.canEncrypt) reason = 'no usable encryption key (sign-only, expired or revoked subkeys)';
        if (reason) {
          result.rejected.push({ fingerprint, reason });
          continue;
        }
      }
      const importedAt = Math.max(now.getTime(), Number(existing?.imported_at ?? 0) + 1);
      const row: KeyRow = {
        fingerprint,
        armored: key.armor(),
        emails: JSON.stringify(d.emails),
        user_ids: JSON.stringify(d.userIds),
        created_at: key.getCreationTime().getTime(),
        expires_at: d.expires,
        revoked: d.revoked,
        can_encrypt: d.canEncrypt && !d.primaryProblem,
        // A WKD refresh of a key an admin imported keeps the admin's record of where it came from.
        source: existing && source.startsWith('wkd:') ? existing.source : source,
        imported_at: importedAt,
      };
      await this.store.write(async (trx: Trx) => {
        if (existing) await trx('pgp_keys').where({ fingerprint }).update(row);
        else await trx('pgp_keys').insert(row);
        await trx('pgp_key_emails').where({ fingerprint }).delete();
        await trx('pgp_key_emails').insert(d.emails.map((email) => ({ email, fingerprint })));
        await appendAudit(trx, {
          type: existing ? 'pgp.key.updated' : 'pgp.key.imported',
          actor: source,
          detail: { fingerprint, revoked: d.revoked, canEncrypt: row.can_encrypt as boolean },
        });
      });
      this.parsed.set(fingerprint, { importedAt, key });
      result.imported.push(rowToInfo(row));
    }
  }

  async list(): Promise<KeyInfo[]> {
    const rows = (await this.store.db('pgp_keys').orderBy('imported_at')) as KeyRow[];
    return rows.map(rowToInfo);
  }

  async remove(fingerprint: string, actor = 'api'): Promise<boolean> {
    const fpr = normalizeFingerprint(fingerprint);
    if (!/^[0-9A-F]{32,64}$/.test(fpr)) return false;
    const removed = await this.store.write(async (trx) => {
      await trx('pgp_key_emails').where({ fingerprint: fpr }).delete();
      const n = await trx('pgp_keys').where({ fingerprint: fpr }).delete();
      if (n > 0) await appendAudit(trx, { type: 'pgp.key.removed', actor, detail: { fingerprint: fpr } });
      return n;
    });
    this.parsed.delete(fpr);
    return removed > 0;
  }

  /**
   * The key to encrypt to for `address`, or null. Used only if valid at `now`: not expired, not revoked,
   * a usable encryption (sub)key, and a valid user ID whose address is `address` (any case). The newest
   * such key wins. WKD is asked only for configured domains and only when no local key is valid.
   */
  async keyFor(address: string, now = new Date()): Promise<RecipientKey | null> {
    const addr = address.trim().toLowerCase();
    if (!/^[^@\s]+@[^@\s]+$/.test(addr)) return null;
    const local = await this.localKeyFor(addr, now);
    const domain = addr.slice(addr.lastIndexOf('@') + 1);
    if (!this.config.wkdDomains.map((d) => d.toLowerCase()).includes(domain)) return local?.chosen ?? null;
    // A key found by WKD before is refreshed after the cache period, so a revocation published there is seen.
    const fresh =
      local &&
      (!local.chosen.source.startsWith('wkd:') || local.importedAt + this.config.wkdCacheTtl > now.getTime());
    if (fresh) return local.chosen;
    await this.askWkd(address.trim(), addr, domain, now);
    return (await this.localKeyFor(addr, now))?.chosen ?? null;
  }

  private async localKeyFor(
    addr: string,
    now: Date,
  ): Promise<{ chosen: RecipientKey; importedAt: number } | null> {
    // On every PGP message (routing, then the build): fast-sql, not the query builder.
    const rows = await selectRows<Pick<KeyRow, 'fingerprint' | 'imported_at' | 'source'>>(
      this.store.db,
      'select k."fingerprint", k."imported_at", k."source" from "pgp_keys" k ' +
        'join "pgp_key_emails" e on e."fingerprint" = k."fingerprint" where e."email" = ?',
      [addr],
    );
    let best: { chosen: RecipientKey; importedAt: number; created: number } | null = null;
    for (const r of rows) {
      const importedAt = Number(r.imported_at);
      const key = await this.parsedKey(r.fingerprint, importedAt);
      if (!key || !(await usableFor(key, addr, now))) continue;
      const created = key.getCreationTime().getTime();
      if (best && (created < best.created || (created === best.created && importedAt <= best.importedAt)))
        continue;
      best = {
        chosen: { fingerprint: r.fingerprint, address: addr, source: r.source, key },
        importedAt,
        created,
      };
    }
    return best;
  }

  private async parsedKey(fingerprint: string, importedAt: number): Promise<openpgp.PublicKey | null> {
    const hit = this.parsed.get(fingerprint);
    if (hit && hit.importedAt === importedAt) return hit.key;
    const row = (await this.store.db('pgp_keys').where({ fingerprint }).first('armored', 'imported_at')) as
      Pick<KeyRow, 'armored' | 'imported_at'> | undefined;
    if (!row) return null;
    try {
      const [key] = await openpgp.readKeys({ armoredKeys: row.armored });
      if (!key) return null;
      this.parsed.set(fingerprint, { importedAt: Number(row.imported_at), key: key.toPublic() });
      return key.toPublic();
    } catch {
      return null;
    }
  }

  /** One lookup per address at a time; the answer (a key or "no key") is remembered for wkdCacheTtl. */
  private async askWkd(address: string, addr: string, domain: string, now: Date): Promise<void> {
    if ((this.wkdAnswers.get(addr) ?? 0) > now.getTime()) return;
    let inflight = this.wkdInflight.get(addr);
    if (!inflight) {
      inflight = this.lookupWkd(address, addr, domain, now).finally(() => this.wkdInflight.delete(addr));
      this.wkdInflight.set(addr, inflight);
    }
    await inflight;
  }

  private async lookupWkd(address: string, addr: string, domain: string, now: Date): Promise<void> {
    // Advanced method first; the direct method when the advanced one has no key (or no such host).
    for (const url of wkdUrls(address)) {
      let answer: { status: number; body: Uint8Array };
      try {
        answer = await this.wkdFetch(url, this.config.wkdTimeout);
      } catch {
        continue;
      }
      if (answer.status !== 200 || answer.body.length === 0) continue;
      let keys: openpgp.PublicKey[];
      try {
        keys = (await openpgp.readKeys({ binaryKeys: answer.body })).map((k) => k.toPublic());
      } catch {
        continue;
      }
      // Only keys that name this address: a WKD server may not hand us a key for someone else.
      const matching = keys.filter((k) => k.users.some((u) => u.userID?.email?.toLowerCase() === addr));
      if (matching.length === 0) continue;
      await this.importKeys(matching, `wkd:${domain}`, now, { imported: [], rejected: [] });
      break;
    }
    this.wkdAnswers.set(addr, now.getTime() + this.config.wkdCacheTtl);
  }
}

/** Valid now for this address: a valid, unrevoked user ID with the address, and an encryption key. */
async function usableFor(key: openpgp.PublicKey, addr: string, now: Date): Promise<boolean> {
  const emails = new Set(
    key.users.map((u) => u.userID?.email).filter((e): e is string => !!e && e.toLowerCase() === addr),
  );
  for (const email of emails) {
    try {
      await key.getEncryptionKey(undefined, now, { email });
      return true;
    } catch {
      // Expired, revoked, no encryption subkey, or this user ID is not validly bound: try the next.
    }
  }
  return false;
}
