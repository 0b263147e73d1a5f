// `phi-gateway pickups …` and the account commands that go with support work: list pickups, revoke one
// (its wrapped key is destroyed, so it can never be opened again), lift a lock. Prints ids and states only.
import type { ResolvedConfig } from '../config/load.js';
import { listPickups, revokePickup, unlockPickup } from '../store/pickups.js';
import { Store } from '../store/store.js';

export const PICKUPS_USAGE = `  pickups list [--json] [--sender EMAIL] [--message ID]
                                   secure pickups, newest first, with their status
  pickups revoke ID                revoke a pickup (it can never be opened again)
  pickups unlock ID                lift a pickup's lock after failed passwords
`;

function opt(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

export async function pickupsCommand(
  config: ResolvedConfig,
  sub: string | undefined,
  args: string[],
): Promise<number> {
  const store = await Store.open(config);
  try {
    if (sub === 'list') {
      const rows = await listPickups(store, {
        sender: opt(args, '--sender')?.toLowerCase(),
        messageId: opt(args, '--message'),
        limit: 1000,
      });
      if (args.includes('--json')) {
        for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
        return 0;
      }
      if (rows.length === 0) {
        process.stdout.write('no pickups\n');
        return 0;
      }
      process.stdout.write(
        'ID                               REFERENCE  STATUS      CREATED           EXPIRES           RECIPIENT\n',
      );
      for (const r of rows) {
        process.stdout.write(
          `${r.id.padEnd(32)} ${r.reference.padEnd(10)} ${(r.status + (r.hardLocked ? '!' : '')).padEnd(11)} ${day(r.createdAt)}  ${day(r.expiresAt)}  ${r.rcpt}\n`,
        );
      }
      return 0;
    }
    if ((sub === 'revoke' || sub === 'unlock') && args[0]) {
      const id = args[0];
      const ok =
        sub === 'revoke' ? await revokePickup(store, id, 'cli') : await unlockPickup(store, id, 'cli');
      if (!ok) {
        process.stderr.write(`phi-gateway: no ${sub === 'revoke' ? 'live' : 'locked'} pickup ${id}\n`);
        return 1;
      }
      process.stdout.write(sub === 'revoke' ? `${id}: revoked; its key is destroyed\n` : `${id}: unlocked\n`);
      return 0;
    }
    process.stderr.write(`phi-gateway: pickups takes list, revoke ID or unlock ID\n\n${PICKUPS_USAGE}`);
    return 2;
  } finally {
    await store.close();
  }
}
