// `phi-gateway backup FILE` / `restore FILE`: encrypted backups of the data directory (see store/backup.ts).
// The passphrase comes from PHIGW_BACKUP_PASSPHRASE or stdin; it is never printed, logged or stored.
import { readFileSync } from 'node:fs';
import { GatewayError } from '../config/errors.js';
import type { ResolvedConfig } from '../config/load.js';
import { restoreBackup, writeBackup } from '../store/backup.js';

export const BACKUP_USAGE = `  backup FILE                      write an encrypted backup of the data directory (safe while running);
                                   passphrase from PHIGW_BACKUP_PASSPHRASE or stdin
  restore [--force] FILE           restore a backup into an empty data directory (--force replaces one)
`;

function usage(message: string): number {
  process.stderr.write(`phi-gateway: ${message}\n\nusage:\n${BACKUP_USAGE}`);
  return 2;
}

function readPassphrase(env: NodeJS.ProcessEnv): string {
  if (env.PHIGW_BACKUP_PASSPHRASE) return env.PHIGW_BACKUP_PASSPHRASE;
  if (process.stdin.isTTY) return '';
  try {
    // First line only, so `printf '%s\n' "$PASS" | phi-gateway backup FILE` works.
    return readFileSync(0, 'utf8').split(/\r?\n/)[0] ?? '';
  } catch {
    return '';
  }
}

/** Runs `backup FILE` or `restore [--force] FILE`; returns the exit code. */
export async function backupCommand(
  config: ResolvedConfig,
  command: 'backup' | 'restore',
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const force = args.includes('--force');
  const files = args.filter((a) => a !== '--force');
  if (files.length !== 1 || files[0]!.startsWith('-') || (force && command === 'backup'))
    return usage(command === 'backup' ? 'backup takes FILE' : 'restore takes [--force] FILE');
  const file = files[0]!;
  if (config.databaseUrl)
    return usage(
      `${command} covers the SQLite store; with PostgreSQL use pg_dump and copy the data directory`,
    );
  const passphrase = readPassphrase(env);
  if (!passphrase) {
    process.stderr.write(
      'phi-gateway: a backup passphrase is required: set PHIGW_BACKUP_PASSPHRASE or give it on stdin\n',
    );
    return 2;
  }
  try {
    if (command === 'backup') {
      const r = await writeBackup(config.dataDir, file, passphrase, { env });
      process.stdout.write(
        `backup written: ${file} (${r.files} files, ${r.bytes} bytes before encryption)\n`,
      );
    } else {
      const r = await restoreBackup(file, config.dataDir, passphrase, { force });
      process.stdout.write(`restored ${r.files} files (${r.bytes} bytes) into ${config.dataDir}\n`);
    }
    return 0;
  } catch (err) {
    const code = err instanceof GatewayError ? err.code : (err as NodeJS.ErrnoException).code;
    process.stderr.write(
      `phi-gateway: ${command} failed: ${(err as Error).message}${code ? ` [${code}]` : ''}\n`,
    );
    return 1;
  }
}
