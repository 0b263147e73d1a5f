// The organisation's own OpenPGP key, which signs every PGP/MIME message: generated on first run and kept
// only as a sealed blob (AES-256-GCM under the master key). A private key never lies on disk in clear.
import { randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';
import { appendAudit } from '../store/audit.js';
import type { Store } from '../store/store.js';

export interface OrgKey {
  /** Decrypted, ready to sign. */
  privateKey: openpgp.PrivateKey;
  publicKey: openpgp.PublicKey;
  publicArmored: string;
  /** Uppercase hex, no spaces. */
  fingerprint: string;
}

interface OrgKeyRow {
  fingerprint: string;
  blob_id: string;
}

// One promise per store: callers in one process racing at first start share a single generation.
const loading = new WeakMap<Store, Promise<OrgKey>>();

/** Loads the organisation key, generating and storing it the first time. Safe when callers race. */
export function loadOrgKey(store: Store, opts: { practiceName: string; hostname: string }): Promise<OrgKey> {
  let p = loading.get(store);
  if (!p) {
    p = loadOrCreate(store, opts);
    loading.set(store, p);
    p.catch(() => loading.delete(store));
  }
  return p;
}

async function readRow(store: Store): Promise<OrgKeyRow | undefined> {
  return (await store.db('org_keys').where({ name: 'pgp' }).first('fingerprint', 'blob_id')) as
    OrgKeyRow | undefined;
}

async function open(store: Store, row: OrgKeyRow): Promise<OrgKey> {
  const armored = (await store.unseal('blobs', row.blob_id)).toString('utf8');
  const privateKey = await openpgp.readPrivateKey({ armoredKey: armored });
  const publicKey = privateKey.toPublic();
  const fingerprint = privateKey.getFingerprint().toUpperCase();
  if (fingerprint !== row.fingerprint) throw new Error('organisation key blob does not match its record');
  return { privateKey, publicKey, publicArmored: publicKey.armor(), fingerprint };
}

function orgEmail(hostname: string): string {
  const host = hostname.trim().toLowerCase().replace(/\.$/, '');
  // openpgp refuses an address without a dotted domain; `.invalid` (RFC 6761) says it is not routable.
  return /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(host)
    ? `postmaster@${host}`
    : `postmaster@${host.replace(/[^a-z0-9-]/g, '') || 'localhost'}.invalid`;
}

async function loadOrCreate(store: Store, opts: { practiceName: string; hostname: string }): Promise<OrgKey> {
  const row = await readRow(store);
  if (row) return open(store, row);

  const { privateKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy', // Ed25519 signing + X25519 encryption subkey, v4: readable by GnuPG 2.2
    userIDs: [{ name: opts.practiceName, email: orgEmail(opts.hostname) }],
    format: 'object',
  });
  const fingerprint = privateKey.getFingerprint().toUpperCase();
  const blobId = `org-pgp-key-${randomBytes(8).toString('hex')}`;
  await store.seal('blobs', blobId, Buffer.from(privateKey.armor(), 'utf8'));
  // Another process may have generated one at the same time: the row inserted first wins, the loser's blob
  // is removed and everybody uses the winner's key.
  const won = await store.write(
    async (trx) => {
      await trx('org_keys')
        .insert({ name: 'pgp', fingerprint, blob_id: blobId, created_at: Date.now() })
        .onConflict('name')
        .ignore();
      const winner = (await trx('org_keys').where({ name: 'pgp' }).first('blob_id')) as OrgKeyRow;
      if (winner.blob_id === blobId)
        await appendAudit(trx, { type: 'pgp.org-key.generated', actor: 'system', detail: { fingerprint } });
      return winner.blob_id === blobId;
    },
    { syncDirs: ['blobs'] },
  );
  if (!won) {
    await store.removeSealed('blobs', blobId);
    const winner = await readRow(store);
    if (!winner) throw new Error('organisation key record vanished');
    return open(store, winner);
  }
  const publicKey = privateKey.toPublic();
  return { privateKey, publicKey, publicArmored: publicKey.armor(), fingerprint };
}
