// Test helpers for OpenPGP: small fast ECC keys made with openpgp (memoised per process), a store in a temp
// dir, and a throw-away GnuPG home to decrypt and verify with the real gpg.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { loadConfig } from '../../config/load.js';
import { Store } from '../../store/store.js';

export interface TestKey {
  email: string;
  privateArmored: string;
  publicArmored: string;
  privateKey: openpgp.PrivateKey;
  fingerprint: string;
}

const made = new Map<string, Promise<TestKey>>();

export interface MakeKeyOptions {
  /** Seconds the key is valid for after `date`; 0 = never expires. */
  expiresIn?: number;
  /** Creation date (default now). */
  date?: Date;
  /** No encryption subkey. */
  signOnly?: boolean;
  name?: string;
  /** Memo tag: same email and tag give the same key. */
  tag?: string;
}

/** A key for `email`; the same arguments give the same key within one test run. */
export function makeKey(email: string, opts: MakeKeyOptions = {}): Promise<TestKey> {
  const memo = `${email}|${opts.tag ?? ''}|${opts.expiresIn ?? 0}|${opts.date?.getTime() ?? ''}|${!!opts.signOnly}`;
  let p = made.get(memo);
  if (!p) {
    p = (async () => {
      const { privateKey } = await openpgp.generateKey({
        type: 'ecc',
        curve: 'curve25519Legacy',
        userIDs: [{ name: opts.name ?? 'Test Person', email }],
        keyExpirationTime: opts.expiresIn ?? 0,
        ...(opts.date ? { date: opts.date } : {}),
        ...(opts.signOnly ? { subkeys: [] } : {}),
        format: 'object',
      });
      return {
        email,
        privateKey,
        privateArmored: privateKey.armor(),
        publicArmored: privateKey.toPublic().armor(),
        fingerprint: privateKey.getFingerprint().toUpperCase(),
      };
    })();
    made.set(memo, p);
  }
  return p;
}

export async function openStore(dir: string): Promise<Store> {
  return Store.open(loadConfig({ PHIGW_DATA_DIR: dir, PHIGW_CONFIG: '' }));
}

/** A fresh GNUPGHOME; `gpg(args, input)` runs gpg in batch mode against it. */
export async function gnupgHome(): Promise<{
  home: string;
  gpg(args: string[], input?: Buffer | string): { code: number | null; stdout: Buffer; stderr: string };
  /** Stops this home's gpg-agent and removes the directory. */
  close(): Promise<void>;
}> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'phigw-gnupg-'));
  return {
    home,
    gpg(args, input) {
      const r = spawnSync(
        'gpg',
        [
          '--batch',
          '--no-tty',
          '--homedir',
          home,
          '--pinentry-mode',
          'loopback',
          '--passphrase',
          '',
          ...args,
        ],
        { input: input ?? '', maxBuffer: 64 * 1024 * 1024 },
      );
      return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
    },
    async close() {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']);
      await rm(home, { recursive: true, force: true });
    },
  };
}
