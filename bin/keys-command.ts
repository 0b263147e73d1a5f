// `phi-gateway keys …`: the recipient keyring and the organisation's public key, for operators.
// Prints fingerprints, addresses and dates of keys; never a private key.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ResolvedConfig } from '../config/load.js';
import type { KeyInfo } from '../store/pgp-keyring.js';
import { Store } from '../store/store.js';

export const KEYS_USAGE = `  keys import FILE                 add the ASCII-armoured OpenPGP public keys in FILE to the keyring
  keys list [--json]               the keyring
  keys remove FPR                  remove a key by fingerprint
  keys org                         print the organisation's public key (to give to partners)
`;

function day(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString().slice(0, 10);
}

function status(k: KeyInfo, now: number): string {
  if (k.revoked) return 'revoked';
  if (k.expires !== null && k.expires <= now) return 'expired';
  if (!k.canEncrypt) return 'no-encrypt';
  return 'valid';
}

function usage(message: string): number {
  process.stderr.write(`phi-gateway: ${message}\n\nusage:\n${KEYS_USAGE}`);
  return 2;
}

/** Runs `keys <sub> …`; returns the exit code. */
export async function keysCommand(
  config: ResolvedConfig,
  sub: string | undefined,
  args: string[],
): Promise<number> {
  if (sub !== 'import' && sub !== 'list' && sub !== 'remove' && sub !== 'org')
    return usage('keys takes import FILE, list [--json], remove FPR or org');
  if ((sub === 'import' || sub === 'remove') && !args[0]) return usage(`keys ${sub} needs an argument`);
  let text = '';
  if (sub === 'import') {
    try {
      text = await readFile(args[0]!, 'utf8');
    } catch (err) {
      process.stderr.write(
        `phi-gateway: cannot read ${args[0]}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`,
      );
      return 1;
    }
  }
  // Loaded here: openpgp is large, and cli.ts imports this file for every command.
  const [{ Keyring }, { loadOrgKey }] = await Promise.all([
    import('../store/pgp-keyring.js'),
    import('../store/org-key.js'),
  ]);
  const store = await Store.open(config);
  try {
    const keyring = new Keyring(store, config.pgp);
    switch (sub) {
      case 'import': {
        const { imported, rejected } = await keyring.importArmored(text, `import:${path.basename(args[0]!)}`);
        for (const k of imported)
          process.stdout.write(
            `imported ${k.fingerprint} ${k.emails.join(',')} expires ${day(k.expires)}${k.revoked ? ' (revoked)' : ''}\n`,
          );
        for (const r of rejected) process.stdout.write(`rejected ${r.fingerprint ?? '-'}: ${r.reason}\n`);
        return imported.length > 0 ? 0 : 1;
      }
      case 'list': {
        const keys = await keyring.list();
        const now = Date.now();
        if (args.includes('--json')) {
          for (const k of keys) process.stdout.write(JSON.stringify({ ...k, status: status(k, now) }) + '\n');
          return 0;
        }
        process.stdout.write(`${keys.length} key(s)\n`);
        if (keys.length === 0) return 0;
        process.stdout.write(
          `\n${'FINGERPRINT'.padEnd(40)}  ${'STATUS'.padEnd(10)}  EXPIRES     SOURCE                EMAILS\n`,
        );
        for (const k of keys)
          process.stdout.write(
            `${k.fingerprint.padEnd(40)}  ${status(k, now).padEnd(10)}  ${day(k.expires).padEnd(10)}  ${k.source.padEnd(20)}  ${k.emails.join(', ')}\n`,
          );
        return 0;
      }
      case 'remove': {
        if (await keyring.remove(args.join(''), 'cli')) {
          process.stdout.write(`removed ${args.join('').replace(/\s+/g, '').toUpperCase()}\n`);
          return 0;
        }
        process.stderr.write(`phi-gateway: no key with fingerprint ${args.join(' ')}\n`);
        return 1;
      }
      case 'org': {
        const org = await loadOrgKey(store, {
          practiceName: config.practiceName,
          hostname: config.smtp.hostname ?? os.hostname(),
        });
        process.stdout.write(org.publicArmored.replace(/\r?\n$/, '') + '\n');
        return 0;
      }
    }
  } finally {
    await store.close();
  }
}
