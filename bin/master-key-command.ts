// `phi-gateway master-key rotate|rewrap|retire|status`: master key rotation without downtime. Prints key ids
// (hash prefixes) and counts only; never a key.
import { GatewayError } from '../config/errors.js';
import type { ResolvedConfig } from '../config/load.js';
import { loadMasterKeys, masterKeyId, rotateMasterKey } from '../store/master-key.js';
import { countUnderOldKeys, retireOldKeys, rewrapAll } from '../store/rewrap.js';
import { Store } from '../store/store.js';

export const MASTER_KEY_USAGE = `  master-key status                current and retired master key ids, items still under retired keys
  master-key rotate                make a new master key (the old one is kept to open old data)
  master-key rewrap                re-seal everything still under a retired key (after reloading the gateway)
  master-key retire                delete retired keys once nothing needs them
`;

export async function masterKeyCommand(
  config: ResolvedConfig,
  sub: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  if (sub !== 'status' && sub !== 'rotate' && sub !== 'rewrap' && sub !== 'retire') {
    process.stderr.write(
      `phi-gateway: master-key takes status, rotate, rewrap or retire\n\nusage:\n${MASTER_KEY_USAGE}`,
    );
    return 2;
  }
  try {
    if (sub === 'rotate') {
      const r = await rotateMasterKey(config.dataDir, env);
      process.stdout.write(
        `new master key ${r.current}; ${r.retired} retired (kept to open old data).\n` +
          'Next: reload the gateway (systemctl reload phi-gateway, or SIGHUP), then run "phi-gateway master-key rewrap".\n',
      );
      return 0;
    }
    const store = await Store.open(config, env);
    try {
      if (sub === 'status') {
        const keys = await loadMasterKeys(config.dataDir, env);
        process.stdout.write(`current: ${masterKeyId(keys[0]!)}\n`);
        for (const k of keys.slice(1)) process.stdout.write(`retired: ${masterKeyId(k)}\n`);
        process.stdout.write(`items under retired keys: ${await countUnderOldKeys(store)}\n`);
      } else if (sub === 'rewrap') {
        const r = await rewrapAll(store);
        process.stdout.write(`re-sealed ${r.files} files and ${r.values} values under the current key\n`);
      } else {
        const ids = await retireOldKeys(store);
        process.stdout.write(ids.length ? `deleted retired keys: ${ids.join(', ')}\n` : 'no retired keys\n');
      }
      return 0;
    } finally {
      await store.close();
    }
  } catch (err) {
    const code = err instanceof GatewayError ? ` [${err.code}]` : '';
    process.stderr.write(`phi-gateway: master-key ${sub} failed: ${(err as Error).message}${code}\n`);
    return 1;
  }
}
