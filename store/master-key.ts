// The master key wraps every per-file key. It comes from PHIGW_MASTER_KEY (64 hex or 44 base64 chars)
// or is generated once into the data dir with mode 0600. It is never logged or written anywhere else.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';

export function parseMasterKey(value: string): Buffer {
  const text = value.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new Error('PHIGW_MASTER_KEY must be 32 bytes, as 64 hex or base64 characters');
  return key;
}

export async function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  if (env.PHIGW_MASTER_KEY) return parseMasterKey(env.PHIGW_MASTER_KEY);
  const file = path.join(dataDir, 'master.key');
  try {
    return parseMasterKey(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(32);
  try {
    // 'wx': if another process created it first, use theirs rather than overwrite it.
    await writeFile(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return parseMasterKey(await readFile(file, 'utf8'));
    throw err;
  }
  await chmod(file, 0o600);
  return key;
}
