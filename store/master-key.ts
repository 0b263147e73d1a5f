// The master key wraps every per-file key. It comes from PHIGW_MASTER_KEY (64 hex or 44 base64 chars)
// or is generated once into the data dir with mode 0600. It is never logged or written anywhere else.
// Rotation keeps previous keys in master-keys/ (0600) so old data still opens until it is re-wrapped.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, chmod, mkdir, readdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from './sealed-file.js';

export const RETIRED_KEYS_DIR = 'master-keys';

export function parseMasterKey(value: string): Buffer {
  const text = value.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new Error('PHIGW_MASTER_KEY must be 32 bytes, as 64 hex or base64 characters');
  return key;
}

/** A short public name for a key (not secret: a hash prefix), for file names and messages. */
export function masterKeyId(key: Buffer): string {
  return createHash('sha256').update('phigw-master-key-id').update(key).digest('hex').slice(0, 12);
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

/** The current key first, then the retired ones that still open old data (newest first). */
export async function loadMasterKeys(
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Buffer[]> {
  const current = await loadMasterKey(dataDir, env);
  const dir = path.join(dataDir, RETIRED_KEYS_DIR);
  const names = (await readdir(dir).catch(() => [] as string[]))
    .filter((n) => n.endsWith('.key'))
    .sort()
    .reverse();
  const keys = [current];
  for (const name of names) {
    const key = parseMasterKey(await readFile(path.join(dir, name), 'utf8'));
    if (!keys.some((k) => k.equals(key))) keys.push(key);
  }
  return keys;
}

async function writeDurable(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
}

/**
 * Makes a new current master key. The previous one is kept in master-keys/ first (durably), so at no moment
 * is data without a key that opens it. Refused when the key comes from PHIGW_MASTER_KEY (rotate it there).
 */
export async function rotateMasterKey(
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ retired: string; current: string }> {
  if (env.PHIGW_MASTER_KEY)
    throw new Error(
      'the master key comes from PHIGW_MASTER_KEY; rotation works on master.key in the data dir',
    );
  const old = await loadMasterKey(dataDir, env);
  const dir = path.join(dataDir, RETIRED_KEYS_DIR);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  await writeDurable(path.join(dir, `${stamp}-${masterKeyId(old)}.key`), old.toString('hex') + '\n');
  await syncDir(dir);
  const next = randomBytes(32);
  await writeDurable(path.join(dataDir, 'master.key'), next.toString('hex') + '\n');
  await syncDir(dataDir);
  return { retired: masterKeyId(old), current: masterKeyId(next) };
}

/** Deletes the retired keys (after everything was re-wrapped); returns their ids. */
export async function deleteRetiredKeys(dataDir: string): Promise<string[]> {
  const dir = path.join(dataDir, RETIRED_KEYS_DIR);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.key'));
  for (const name of names) await unlink(path.join(dir, name));
  if (names.length > 0) await syncDir(dir);
  return names.map((n) => n.replace(/\.key$/, ''));
}
