// Encrypted, streamed backups of a data directory (SQLite snapshot + sealed files + keys) and their restore.
// A backup never holds anything in clear, and a restore never leaves a partly written data directory behind.
//
// File format (version 1), all integers big-endian:
//   header   magic "PHGWBAK" (7) | version (1) | kdf id 1=scrypt (1) | log2 N (1) | r (1) | p (1)
//            | salt (16) | chunk size (4) | HMAC-SHA256(macKey, the preceding header bytes) (32)
//   chunks   flags+length (4: bit 31 = last chunk, bits 0..30 = plaintext length ≤ chunk size)
//            | AES-256-GCM ciphertext | tag (16)
//            key = scrypt(passphrase, salt)[0..32], macKey = [32..64]; nonce = flag byte (1 = last) | 0 0 0
//            | chunk counter (8); AAD = header | the 4 flags+length bytes. Exactly one last chunk, then EOF.
//   content  the concatenated plaintext of the chunks is a sequence of records:
//            'M' len(4) JSON manifest {format, createdAt}
//            'F' nameLen(2) name (UTF-8, relative, '/'-separated) mode(4) size(8) bytes…
//            'Z' files(4) bytes(8)                       — end of the archive; nothing may follow
// The header MAC tells a wrong passphrase from a damaged file; the counter nonce and the last-chunk flag
// make reordered, dropped, duplicated or truncated chunks fail authentication.
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  scrypt,
  timingSafeEqual,
} from 'node:crypto';
import { createRequire } from 'node:module';
import { link, mkdir, open, readdir, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../config/errors.js';
import { loadMasterKey } from './master-key.js';
import { syncDir } from './sealed-file.js';

const MAGIC = Buffer.from('PHGWBAK', 'ascii');
const VERSION = 1;
const KDF_SCRYPT = 1;
const SALT_LEN = 16;
const MAC_LEN = 32;
const TAG_LEN = 16;
const HEADER_FIELDS_LEN = MAGIC.length + 1 + 1 + 3 + SALT_LEN + 4;
const HEADER_LEN = HEADER_FIELDS_LEN + MAC_LEN;
const LAST_FLAG = 0x80000000;
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** scrypt N = 2^16, r = 8: 64 MiB and ~0.2 s per attempt, which is what an offline guesser pays too. */
export const DEFAULT_KDF = { log2N: 16, r: 8, p: 1 } as const;
export const MIN_PASSPHRASE_LENGTH = 12;

const DB_FILE = 'phi-gateway.sqlite';
/** Files that are the live database (copied through the online backup API instead) or transient. */
const SKIP_TOP = new Set([DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`, `${DB_FILE}-journal`]);
const SNAPSHOT_PREFIX = '.backup-';
const STAGING_PREFIX = '.restore-';

export interface KdfParams {
  log2N: number;
  r: number;
  p: number;
}

export interface BackupSummary {
  files: number;
  bytes: number;
  /** Snapshot attempts: more than 1 when the gateway deleted a referenced file during the first one. */
  attempts: number;
}

export interface RestoreSummary {
  files: number;
  bytes: number;
}

// ---------------------------------------------------------------------------------------------------
// Keys and chunk encryption

async function deriveKeys(
  passphrase: string,
  salt: Buffer,
  kdf: KdfParams,
): Promise<{ key: Buffer; macKey: Buffer }> {
  if (kdf.log2N < 10 || kdf.log2N > 22 || kdf.r < 1 || kdf.r > 32 || kdf.p < 1 || kdf.p > 16)
    throw new GatewayError('BACKUP_CORRUPT', 'backup header has unsupported key-derivation parameters');
  const N = 2 ** kdf.log2N;
  const out = await new Promise<Buffer>((resolve, reject) =>
    scrypt(
      passphrase.normalize('NFC'),
      salt,
      64,
      { N, r: kdf.r, p: kdf.p, maxmem: 128 * N * kdf.r * kdf.p + 32 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );
  return { key: out.subarray(0, 32), macKey: out.subarray(32, 64) };
}

function nonce(counter: bigint, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n[0] = last ? 1 : 0;
  n.writeBigUInt64BE(counter, 4);
  return n;
}

function chunkAad(header: Buffer, framing: Buffer): Buffer {
  return Buffer.concat([header, framing]);
}

/** Gathers plaintext into chunks and writes each one encrypted; memory is one chunk. */
class ChunkWriter {
  private readonly buf: Buffer;
  private filled = 0;
  private counter = 0n;

  constructor(
    private readonly out: FileHandle,
    private readonly key: Buffer,
    private readonly header: Buffer,
    chunkSize: number,
  ) {
    this.buf = Buffer.alloc(chunkSize);
  }

  async write(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (this.filled === this.buf.length) await this.seal(false);
      const n = data.copy(this.buf, this.filled, off);
      this.filled += n;
      off += n;
    }
  }

  async finish(): Promise<void> {
    await this.seal(true);
  }

  private async seal(last: boolean): Promise<void> {
    const framing = Buffer.alloc(4);
    framing.writeUInt32BE((this.filled | (last ? LAST_FLAG : 0)) >>> 0);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce(this.counter, last));
    cipher.setAAD(chunkAad(this.header, framing));
    const enc = Buffer.concat([cipher.update(this.buf.subarray(0, this.filled)), cipher.final()]);
    await writeAll(this.out, Buffer.concat([framing, enc, cipher.getAuthTag()]));
    this.counter++;
    this.filled = 0;
  }
}

async function writeAll(handle: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) off += (await handle.write(buf, off, buf.length - off)).bytesWritten;
}

/** Reads exactly `n` bytes at the handle's position; fewer only at end of file. */
async function readUpTo(handle: FileHandle, n: number): Promise<Buffer> {
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await handle.read(buf, got, n - got, null);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === n ? buf : buf.subarray(0, got);
}

function corrupt(message: string, cause?: unknown): GatewayError {
  return new GatewayError('BACKUP_CORRUPT', message, cause === undefined ? undefined : { cause });
}

interface ParsedHeader {
  raw: Buffer;
  kdf: KdfParams;
  salt: Buffer;
  chunkSize: number;
}

function parseHeader(raw: Buffer): ParsedHeader {
  if (raw.length < HEADER_LEN || !raw.subarray(0, MAGIC.length).equals(MAGIC))
    throw corrupt('not a phi-gateway backup (bad magic or too short)');
  let o = MAGIC.length;
  const version = raw[o++]!;
  if (version !== VERSION) throw corrupt(`unsupported backup format version ${version}`);
  if (raw[o++] !== KDF_SCRYPT) throw corrupt('unsupported key derivation in backup header');
  const kdf = { log2N: raw[o]!, r: raw[o + 1]!, p: raw[o + 2]! };
  o += 3;
  const salt = raw.subarray(o, o + SALT_LEN);
  o += SALT_LEN;
  const chunkSize = raw.readUInt32BE(o);
  if (chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE) throw corrupt('backup header has an invalid chunk size');
  return { raw, kdf, salt, chunkSize };
}

/** Yields the authenticated plaintext of each chunk, in order; throws on any defect before yielding it. */
async function* readChunks(handle: FileHandle, header: ParsedHeader, key: Buffer): AsyncGenerator<Buffer> {
  let counter = 0n;
  for (;;) {
    const framing = await readUpTo(handle, 4);
    if (framing.length < 4) throw corrupt(`backup is truncated (ends before chunk ${counter})`);
    const word = framing.readUInt32BE(0);
    const last = (word & LAST_FLAG) !== 0;
    const len = word & ~LAST_FLAG;
    if (len > header.chunkSize) throw corrupt(`backup chunk ${counter} has an invalid length`);
    const body = await readUpTo(handle, len + TAG_LEN);
    if (body.length < len + TAG_LEN) throw corrupt(`backup is truncated (inside chunk ${counter})`);
    const decipher = createDecipheriv('aes-256-gcm', key, nonce(counter, last));
    decipher.setAAD(chunkAad(header.raw, framing));
    decipher.setAuthTag(body.subarray(len));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(body.subarray(0, len)), decipher.final()]);
    } catch (err) {
      throw corrupt(`backup chunk ${counter} failed authentication (damaged or tampered)`, err);
    }
    yield plain;
    counter++;
    if (last) {
      if ((await readUpTo(handle, 1)).length !== 0) throw corrupt('backup has data after its last chunk');
      return;
    }
  }
}

/** Reads records across chunk boundaries. */
class PlainReader {
  private cur: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(private readonly chunks: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    while (this.cur.length === 0) {
      if (this.done) return false;
      const next = await this.chunks.next();
      if (next.done) {
        this.done = true;
        return false;
      }
      this.cur = next.value;
    }
    return true;
  }

  /** Exactly `n` bytes (small reads: record headers). */
  async take(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) throw corrupt('backup content ends inside a record');
      const piece = this.cur.subarray(0, need);
      this.cur = this.cur.subarray(piece.length);
      parts.push(piece);
      need -= piece.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  /** `n` bytes as they come (file contents), without gathering them. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let need = n;
    while (need > 0) {
      if (!(await this.fill())) throw corrupt('backup content ends inside a file');
      const piece = this.cur.subarray(0, Math.min(need, this.cur.length));
      this.cur = this.cur.subarray(piece.length);
      need -= piece.length;
      yield piece;
    }
  }

  /** True when every chunk has been read and consumed (the last chunk was authenticated). */
  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }
}

// ---------------------------------------------------------------------------------------------------
// Snapshot of a live data directory

interface SqliteDb {
  backup(file: string, opts: { progress: () => number }): Promise<unknown>;
  prepare(sql: string): { all(...params: unknown[]): unknown[] };
  close(): void;
}
type SqliteCtor = new (file: string, opts?: { readonly?: boolean; fileMustExist?: boolean }) => SqliteDb;
const requireCjs = createRequire(import.meta.url);

function openSqlite(file: string, readonly: boolean): SqliteDb {
  const Database = requireCjs('better-sqlite3') as SqliteCtor;
  return new Database(file, { readonly, fileMustExist: true });
}

function skipName(rel: string, exclude: Set<string>): boolean {
  const base = path.posix.basename(rel);
  return (
    (!rel.includes('/') && SKIP_TOP.has(rel)) ||
    base.endsWith('.tmp') ||
    base.startsWith(SNAPSHOT_PREFIX) ||
    base.startsWith(STAGING_PREFIX) ||
    exclude.has(rel)
  );
}

/** Relative '/'-separated paths of the regular files under `root`, except the live database and temp files. */
async function listFiles(root: string, exclude: Set<string>, rel = ''): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(path.join(root, rel), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw err;
  }
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (skipName(r, exclude)) continue;
    if (e.isDirectory()) out.push(...(await listFiles(root, exclude, r)));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/** Hard-links every file not yet in the snapshot: a file the gateway deletes later stays readable there. */
async function linkPass(
  dataDir: string,
  snapDir: string,
  have: Set<string>,
  exclude: Set<string>,
): Promise<void> {
  for (const rel of await listFiles(dataDir, exclude)) {
    if (have.has(rel)) continue;
    const to = path.join(snapDir, 'files', rel);
    await mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
    try {
      await link(path.join(dataDir, rel), to);
      have.add(rel);
    } catch (err) {
      // Gone between listing and linking: it was deleted, so no snapshot taken from now on refers to it.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Files the database copy says must exist; a missing one means the snapshot raced a deletion. */
function missingReferences(dbCopy: string, have: Set<string>): number {
  const db = openSqlite(dbCopy, true);
  try {
    const ids = (sql: string) => (db.prepare(sql).all() as Array<{ id: string }>).map((r) => r.id);
    let missing = 0;
    // A small message's sealed content is in the database itself (sealed_inline), so in the snapshot.
    for (const id of ids(
      `SELECT m.id AS id FROM messages m WHERE m.spool_removed = 0
         AND NOT EXISTS (SELECT 1 FROM sealed_inline s WHERE s.area = 'spool' AND s.id = m.id)`,
    ))
      if (!have.has(`spool/${id}`)) missing++;
    for (const id of ids(
      `SELECT c.id AS id FROM pickup_contents c WHERE c.purged_at IS NULL
         AND EXISTS (SELECT 1 FROM pickups p WHERE p.content_id = c.id AND p.status = 'active')`,
    ))
      if (!have.has(`pickups/${id}`)) missing++;
    return missing;
  } finally {
    db.close();
  }
}

async function removeStaleDirs(dataDir: string, prefix: string): Promise<void> {
  for (const name of await readdir(dataDir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = pid > 0;
    } catch {
      alive = false;
    }
    if (!alive) await rm(path.join(dataDir, name), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Backup

/**
 * Writes an encrypted backup of `dataDir` to `outFile` (temp file, fsync, rename) while a gateway may be
 * running on it. The database is copied with SQLite's online backup API in one step (a consistent
 * snapshot); sealed files are hard-linked before and after it, so every file the snapshot refers to is
 * kept even if the gateway deletes it meanwhile, which is checked (and the snapshot retaken if needed).
 */
export async function writeBackup(
  dataDir: string,
  outFile: string,
  passphrase: string,
  opts: { env?: NodeJS.ProcessEnv; kdf?: KdfParams; chunkSize?: number } = {},
): Promise<BackupSummary> {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH)
    throw new GatewayError(
      'BACKUP_PASSPHRASE',
      `the backup passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`,
    );
  const dbFile = path.join(dataDir, DB_FILE);
  if (!(await stat(dbFile).catch(() => undefined))?.isFile())
    throw new GatewayError('BACKUP_REFUSED', `no SQLite database in ${dataDir}`);
  const out = path.resolve(outFile);
  const exclude = new Set<string>();
  const relOut = path.relative(dataDir, out);
  if (!relOut.startsWith('..') && !path.isAbsolute(relOut)) {
    exclude.add(relOut.split(path.sep).join('/'));
  }
  const masterKey = await loadMasterKey(dataDir, opts.env ?? process.env);

  await removeStaleDirs(dataDir, SNAPSHOT_PREFIX);
  const snapDir = path.join(dataDir, `${SNAPSHOT_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(snapDir, { mode: 0o700 });
  const tmpOut = `${out}.tmp`;
  let handle: FileHandle | undefined;
  let ok = false;
  try {
    const have = new Set<string>();
    const dbCopy = path.join(snapDir, DB_FILE);
    let attempts = 0;
    for (;;) {
      attempts++;
      await linkPass(dataDir, snapDir, have, exclude);
      await rm(dbCopy, { force: true });
      const live = openSqlite(dbFile, true);
      try {
        // All pages in one step: a step that sees a concurrent write would start over, and under
        // constant load a paced backup might never finish.
        await live.backup(dbCopy, { progress: () => 0x7fffffff });
      } finally {
        live.close();
      }
      await linkPass(dataDir, snapDir, have, exclude);
      if (missingReferences(dbCopy, have) === 0) break;
      if (attempts >= 5)
        throw new GatewayError('BACKUP_REFUSED', 'could not take a consistent snapshot in 5 attempts');
    }

    const kdf = opts.kdf ?? DEFAULT_KDF;
    const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    const salt = randomBytes(SALT_LEN);
    const { key, macKey } = await deriveKeys(passphrase, salt, kdf);
    const fields = Buffer.alloc(HEADER_FIELDS_LEN);
    let o = MAGIC.copy(fields, 0);
    fields[o++] = VERSION;
    fields[o++] = KDF_SCRYPT;
    fields[o++] = kdf.log2N;
    fields[o++] = kdf.r;
    fields[o++] = kdf.p;
    o += salt.copy(fields, o);
    fields.writeUInt32BE(chunkSize, o);
    const header = Buffer.concat([fields, createHmac('sha256', macKey).update(fields).digest()]);

    handle = await open(tmpOut, 'w', 0o600);
    await writeAll(handle, header);
    const w = new ChunkWriter(handle, key, header, chunkSize);
    const manifest = Buffer.from(JSON.stringify({ format: VERSION, createdAt: new Date().toISOString() }));
    const mHead = Buffer.alloc(5);
    mHead.write('M', 0, 'latin1');
    mHead.writeUInt32BE(manifest.length, 1);
    await w.write(Buffer.concat([mHead, manifest]));

    let files = 0;
    let bytes = 0;
    const addFile = async (name: string, from: string | Buffer, mode: number): Promise<void> => {
      const nameBuf = Buffer.from(name, 'utf8');
      const src = Buffer.isBuffer(from) ? undefined : await open(from, 'r');
      try {
        const size = Buffer.isBuffer(from) ? from.length : (await src!.stat()).size;
        const head = Buffer.alloc(1 + 2 + nameBuf.length + 4 + 8);
        head.write('F', 0, 'latin1');
        head.writeUInt16BE(nameBuf.length, 1);
        nameBuf.copy(head, 3);
        head.writeUInt32BE(mode & 0o777, 3 + nameBuf.length);
        head.writeBigUInt64BE(BigInt(size), 7 + nameBuf.length);
        await w.write(head);
        if (Buffer.isBuffer(from)) await w.write(from);
        else {
          const piece = Buffer.alloc(Math.min(chunkSize, 1024 * 1024));
          let left = size;
          while (left > 0) {
            const { bytesRead } = await src!.read(piece, 0, Math.min(piece.length, left), null);
            if (bytesRead === 0) throw new Error(`${name} shrank while it was being backed up`);
            await w.write(piece.subarray(0, bytesRead));
            left -= bytesRead;
          }
        }
        files++;
        bytes += size;
      } finally {
        await src?.close();
      }
    };

    await addFile(DB_FILE, dbCopy, 0o600);
    const linked = [...have].sort();
    for (const rel of linked) {
      const p = path.join(snapDir, 'files', rel);
      await addFile(rel, p, (await stat(p)).mode);
    }
    // The master key may come from PHIGW_MASTER_KEY rather than the data dir; a backup without it is useless.
    if (!have.has('master.key'))
      await addFile('master.key', Buffer.from(masterKey.toString('hex') + '\n'), 0o600);

    const end = Buffer.alloc(13);
    end.write('Z', 0, 'latin1');
    end.writeUInt32BE(files, 1);
    end.writeBigUInt64BE(BigInt(bytes), 5);
    await w.write(end);
    await w.finish();
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmpOut, out);
    await syncDir(path.dirname(out));
    ok = true;
    return { files, bytes, attempts };
  } finally {
    await handle?.close().catch(() => undefined);
    if (!ok) await rm(tmpOut, { force: true });
    await rm(snapDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Restore

function checkName(name: string): string {
  const parts = name.split('/');
  if (
    !name ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.includes('\0') ||
    parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith(STAGING_PREFIX))
  )
    throw corrupt('backup names a file outside the data directory');
  return parts.join(path.sep);
}

/** Reads the header and proves the passphrase (header MAC) before anything else. */
async function openBackup(file: string, passphrase: string) {
  const handle = await open(file, 'r');
  try {
    const header = parseHeader(await readUpTo(handle, HEADER_LEN));
    const { key, macKey } = await deriveKeys(passphrase, header.salt, header.kdf);
    const mac = createHmac('sha256', macKey).update(header.raw.subarray(0, HEADER_FIELDS_LEN)).digest();
    if (!timingSafeEqual(mac, header.raw.subarray(HEADER_FIELDS_LEN, HEADER_LEN)))
      throw new GatewayError(
        'BACKUP_PASSPHRASE',
        'wrong backup passphrase (or the backup header is damaged)',
      );
    return { handle, header, key };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Restores `file` into `dataDir`. The directory must be empty (or absent) unless `force`, which replaces its
 * contents. Everything is first written to a staging directory inside `dataDir`, chunk by authenticated
 * chunk; only when the whole backup has been verified (last chunk, end record, counts) are the files moved
 * into place. On any error the staging directory is removed and `dataDir` is as it was.
 */
export async function restoreBackup(
  file: string,
  dataDir: string,
  passphrase: string,
  opts: { force?: boolean } = {},
): Promise<RestoreSummary> {
  const existing = await readdir(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing && existing.length > 0 && !opts.force)
    throw new GatewayError(
      'BACKUP_REFUSED',
      `${dataDir} is not empty; restore into an empty data directory (or use --force to replace it)`,
    );
  const { handle, header, key } = await openBackup(file, passphrase);
  const created = !existing;
  const staging = path.join(dataDir, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  let moved = false;
  try {
    await mkdir(staging, { recursive: true, mode: 0o700 });
    const reader = new PlainReader(readChunks(handle, header, key));
    const m = await reader.take(5);
    if (m.toString('latin1', 0, 1) !== 'M') throw corrupt('backup does not start with a manifest');
    const manifest = JSON.parse((await reader.take(m.readUInt32BE(1))).toString('utf8')) as {
      format?: unknown;
    };
    if (manifest.format !== VERSION) throw corrupt('backup manifest has an unknown format');
    let files = 0;
    let bytes = 0;
    const names: string[] = [];
    for (;;) {
      const type = (await reader.take(1)).toString('latin1');
      if (type === 'Z') {
        const end = await reader.take(12);
        if (end.readUInt32BE(0) !== files || Number(end.readBigUInt64BE(4)) !== bytes)
          throw corrupt('backup end record does not match its contents');
        if (!(await reader.atEnd())) throw corrupt('backup has records after its end');
        break;
      }
      if (type !== 'F') throw corrupt('backup has an unknown record');
      const nameLen = (await reader.take(2)).readUInt16BE(0);
      const name = (await reader.take(nameLen)).toString('utf8');
      const rel = checkName(name);
      const meta = await reader.take(12);
      const mode = meta.readUInt32BE(0) & 0o700;
      const size = Number(meta.readBigUInt64BE(4));
      const to = path.join(staging, rel);
      await mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
      const out = await open(to, 'wx', mode || 0o600);
      try {
        for await (const piece of reader.stream(size)) await writeAll(out, piece);
        await out.sync();
      } finally {
        await out.close();
      }
      names.push(name);
      files++;
      bytes += size;
    }
    if (!names.includes(DB_FILE) || !names.includes('master.key'))
      throw corrupt('backup lacks the database or the master key');

    // Verified end to end: replace the directory's contents with the staged ones.
    if (existing && existing.length > 0) {
      for (const name of existing) await rm(path.join(dataDir, name), { recursive: true, force: true });
    }
    const dirs = new Set<string>();
    for (const entry of await readdir(staging)) {
      await rename(path.join(staging, entry), path.join(dataDir, entry));
      dirs.add(path.join(dataDir, entry));
    }
    moved = true;
    for (const d of dirs) if ((await stat(d)).isDirectory()) await syncDir(d);
    await rmdir(staging);
    await syncDir(dataDir);
    return { files, bytes };
  } catch (err) {
    if (!moved) {
      await rm(staging, { recursive: true, force: true });
      if (created) await rmdir(dataDir).catch(() => undefined);
    }
    throw err instanceof GatewayError || !(err instanceof SyntaxError)
      ? err
      : corrupt('backup manifest is not valid JSON', err);
  } finally {
    await handle.close();
  }
}
