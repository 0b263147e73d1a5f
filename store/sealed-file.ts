// Sealed files: everything phi-gateway keeps on disk (spool, generated mail, outbox) is written here,
// AES-256-GCM under a fresh key per file, that key wrapped by the master key. A file is durable when
// writeSealed resolves (temp file, fsync, rename) and self-checking: a torn or edited file fails to open.
import { createCipheriv, createDecipheriv, randomBytes, type DecipherGCM } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GatewayError } from '../config/errors.js';

const MAGIC = Buffer.from('PHGS', 'ascii');
const VERSION = 1;
const IV_LEN = 12;
const TAG_LEN = 16;
const KEY_LEN = 32;
// magic(4) version(1) wrapIv(12) wrappedKey(32) wrapTag(16) dataIv(12)
const HEADER_LEN = 4 + 1 + IV_LEN + KEY_LEN + TAG_LEN + IV_LEN;

function wrapKey(masterKey: Buffer, id: string, dataKey: Buffer): Buffer {
  const iv = randomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
  cipher.setAAD(Buffer.from(`phigw-key:${id}`));
  const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return Buffer.concat([iv, wrapped, cipher.getAuthTag()]);
}

function unwrapKey(masterKey: Buffer, id: string, blob: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', masterKey, blob.subarray(0, IV_LEN));
  decipher.setAAD(Buffer.from(`phigw-key:${id}`));
  decipher.setAuthTag(blob.subarray(IV_LEN + KEY_LEN, IV_LEN + KEY_LEN + TAG_LEN));
  return Buffer.concat([decipher.update(blob.subarray(IV_LEN, IV_LEN + KEY_LEN)), decipher.final()]);
}

export interface SealedWriteResult {
  path: string;
  /** Plaintext bytes written. */
  size: number;
  /**
   * With `inlineMax`: the sealed bytes when they fit, in which case no file was written and the caller
   * stores them (in the database row's transaction). Null when a file was written.
   */
  inline: Buffer | null;
}

/** Seals a buffer in memory: the same format as a sealed file, for storage elsewhere (a database row). */
export function sealBuffer(id: string, masterKey: Buffer, plain: Buffer): Buffer {
  const dataKey = randomBytes(KEY_LEN);
  const dataIv = randomBytes(IV_LEN);
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION]), wrapKey(masterKey, id, dataKey), dataIv]);
  const cipher = createCipheriv('aes-256-gcm', dataKey, dataIv);
  cipher.setAAD(header);
  return Buffer.concat([header, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Encrypts `source` into `dir/id`, durably: written to `dir/id.tmp`, fsynced, then renamed.
 * The caller must fsync `dir` (see syncDir) before relying on the rename, so many writes can share one
 * directory sync. `inspect` sees every plaintext chunk and may throw to abort (nothing is left behind).
 */
export async function writeSealed(
  dir: string,
  id: string,
  masterKey: Buffer,
  source: Readable | Buffer,
  inspect?: (chunk: Buffer) => void,
  opts: { inlineMax?: number } = {},
): Promise<SealedWriteResult> {
  const finalPath = path.join(dir, id);
  const tmpPath = `${finalPath}.tmp`;
  const dataKey = randomBytes(KEY_LEN);
  const dataIv = randomBytes(IV_LEN);
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION]), wrapKey(masterKey, id, dataKey), dataIv]);
  const cipher = createCipheriv('aes-256-gcm', dataKey, dataIv);
  cipher.setAAD(header);
  // The file is opened at the first write: a result that stays within `inlineMax` never touches the disk.
  let handle: FileHandle | undefined;
  let size = 0;
  let ok = false;
  try {
    // Chunks are gathered into ~256 KB writes: fewer syscalls than one write per socket chunk.
    const pending: Buffer[] = [header];
    let pendingLen = header.length;
    const flush = async (): Promise<void> => {
      if (pendingLen === 0) return;
      handle ??= await open(tmpPath, 'wx', 0o600);
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
      pending.length = 0;
      pendingLen = 0;
      // A short write (as on a nearly full disk) must not leave a torn file behind a resolved promise.
      for (let off = 0; off < buf.length;)
        off += (await handle.write(buf, off, buf.length - off)).bytesWritten;
    };
    const flushAt = Math.max(256 * 1024, opts.inlineMax ?? 0);
    const take = async (chunk: Buffer): Promise<void> => {
      inspect?.(chunk);
      size += chunk.length;
      const enc = cipher.update(chunk);
      pending.push(enc);
      pendingLen += enc.length;
      if (pendingLen >= flushAt) await flush();
    };
    if (Buffer.isBuffer(source)) await take(source);
    // destroyOnReturn false: when inspect refuses, the caller still owns the stream (SMTP must drain it).
    else for await (const chunk of source.iterator({ destroyOnReturn: false })) await take(chunk as Buffer);
    pending.push(cipher.final(), cipher.getAuthTag());
    pendingLen += TAG_LEN;
    if (!handle && opts.inlineMax !== undefined && pendingLen <= opts.inlineMax) {
      ok = true;
      return { path: finalPath, size, inline: Buffer.concat(pending, pendingLen) };
    }
    await flush();
    await handle!.sync();
    ok = true;
  } finally {
    if (handle) {
      await handle.close();
      if (!ok) await unlink(tmpPath).catch(() => undefined);
    }
  }
  await rename(tmpPath, finalPath);
  return { path: finalPath, size, inline: null };
}

/** fsync a directory so renames into it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Plaintext at least this large is read into shared memory, so a scan thread can read it without a copy. */
export const SHARED_PLAIN_MIN = 1024 * 1024;
/** Ciphertext read and decrypted per step: memory for reading a file does not grow with its size. */
const READ_CHUNK = 1024 * 1024;

/**
 * A sealed file opened for reading step by step: its header checked and its key unwrapped (a wrong key or a
 * file that is not sealed fails here, before any plaintext), the plaintext size known. `chunks` decrypts it
 * READ_CHUNK at a time and checks the tag after the last one: it throws SPOOL_CORRUPT then if the file was
 * edited or truncated. Plaintext seen before that is unauthenticated: a reader may look at it, but must commit
 * or send nothing it derived from it unless `chunks` finished without error.
 */
export interface SealedReader {
  plainSize: number;
  chunks(): AsyncGenerator<Buffer>;
  /** Closes the file (done by `chunks` when it ends; for a reader given up before). Idempotent. */
  close(): Promise<void>;
}

export async function openSealedReader(
  dir: string,
  id: string,
  masterKey: Buffer | readonly Buffer[],
): Promise<SealedReader> {
  let handle: FileHandle;
  try {
    handle = await open(path.join(dir, id), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new GatewayError('SPOOL_MISSING', 'sealed file is missing', { cause: err });
    throw err;
  }
  const readAt = async (buf: Buffer, position: number): Promise<void> => {
    for (let off = 0; off < buf.length;) {
      const { bytesRead } = await handle.read(buf, off, buf.length - off, position + off);
      if (bytesRead === 0) throw new GatewayError('SPOOL_CORRUPT', 'sealed file shrank while read');
      off += bytesRead;
    }
  };
  let decipher: DecipherGCM;
  let plainSize: number;
  try {
    const size = (await handle.stat()).size;
    if (size < HEADER_LEN + TAG_LEN) throw new GatewayError('SPOOL_CORRUPT', 'sealed file is truncated');
    const header = Buffer.alloc(HEADER_LEN);
    await readAt(header, 0);
    const tag = Buffer.alloc(TAG_LEN);
    await readAt(tag, size - TAG_LEN);
    decipher = openDecipher(header, id, Buffer.isBuffer(masterKey) ? [masterKey] : masterKey).decipher;
    decipher.setAuthTag(tag);
    plainSize = size - HEADER_LEN - TAG_LEN;
  } catch (err) {
    await handle.close();
    throw err;
  }
  let started = false;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  return {
    plainSize,
    close,
    async *chunks() {
      if (started) throw new Error('a sealed reader is read once');
      started = true;
      try {
        const chunk = Buffer.alloc(Math.min(READ_CHUNK, Math.max(plainSize, 1)));
        for (let at = 0; at < plainSize;) {
          const part = chunk.subarray(0, Math.min(chunk.length, plainSize - at));
          await readAt(part, HEADER_LEN + at);
          at += part.length;
          yield decipher.update(part);
        }
        try {
          decipher.final();
        } catch (err) {
          throw new GatewayError('SPOOL_CORRUPT', 'sealed file failed authentication', { cause: err });
        }
      } finally {
        await close();
      }
    },
  };
}

/**
 * Reads and authenticates a sealed file. Resolves only with plaintext whose integrity is proven;
 * a torn, truncated, swapped or edited file is refused with SPOOL_CORRUPT, a missing one with SPOOL_MISSING.
 * The file is decrypted step by step into one buffer of the plaintext's size (never the whole file plus
 * copies of it); that buffer is shared memory (SharedArrayBuffer) from SHARED_PLAIN_MIN on, so a scan
 * thread can read it without a copy. Nothing of it is returned before the final tag check passes.
 */
export async function readSealed(
  dir: string,
  id: string,
  masterKey: Buffer | readonly Buffer[],
  /** Bytes placed before the plaintext in the same buffer (trace headers for a relay): no copy to join them. */
  prefix?: Buffer,
): Promise<Buffer> {
  const reader = await openSealedReader(dir, id, masterKey);
  const n = reader.plainSize + (prefix?.length ?? 0);
  const plain = n >= SHARED_PLAIN_MIN ? Buffer.from(new SharedArrayBuffer(n)) : Buffer.alloc(n);
  let at = prefix ? prefix.copy(plain) : 0;
  try {
    for await (const chunk of reader.chunks()) at += chunk.copy(plain, at);
  } catch (err) {
    // Unauthenticated plaintext never leaves: wipe what was decrypted before the tag said no.
    plain.fill(0);
    throw err;
  }
  return plain;
}

export function openSealedBuffer(data: Buffer, id: string, masterKey: Buffer | readonly Buffer[]): Buffer {
  return openSealedWith(data, id, Buffer.isBuffer(masterKey) ? [masterKey] : masterKey).plain;
}

/**
 * Opens a sealed file with the first of `masterKeys` that unwraps its key (current key first, then keys
 * retired by a rotation); `keyIndex` says which one did, so a re-wrap knows what is still under an old key.
 */
export function openSealedWith(
  data: Buffer,
  id: string,
  masterKeys: readonly Buffer[],
): { plain: Buffer; keyIndex: number } {
  if (data.length < HEADER_LEN + TAG_LEN) {
    throw new GatewayError('SPOOL_CORRUPT', 'sealed file is truncated or not a sealed file');
  }
  const { decipher, keyIndex } = openDecipher(data.subarray(0, HEADER_LEN), id, masterKeys);
  try {
    decipher.setAuthTag(data.subarray(data.length - TAG_LEN));
    const plain = Buffer.concat([
      decipher.update(data.subarray(HEADER_LEN, data.length - TAG_LEN)),
      decipher.final(),
    ]);
    return { plain, keyIndex };
  } catch (err) {
    throw new GatewayError('SPOOL_CORRUPT', 'sealed file failed authentication', { cause: err });
  }
}

/** Checks a sealed header, unwraps its data key with the first master key that opens it, and sets up GCM. */
function openDecipher(
  header: Buffer,
  id: string,
  masterKeys: readonly Buffer[],
): { decipher: DecipherGCM; keyIndex: number } {
  if (!header.subarray(0, 4).equals(MAGIC) || header[4] !== VERSION) {
    throw new GatewayError('SPOOL_CORRUPT', 'sealed file is truncated or not a sealed file');
  }
  const wrapped = header.subarray(5, 5 + IV_LEN + KEY_LEN + TAG_LEN);
  let dataKey: Buffer | undefined;
  let keyIndex = -1;
  for (let i = 0; i < masterKeys.length && !dataKey; i++) {
    try {
      dataKey = unwrapKey(masterKeys[i]!, id, wrapped);
      keyIndex = i;
    } catch {
      // not this key
    }
  }
  if (!dataKey)
    throw new GatewayError('SPOOL_CORRUPT', 'sealed file failed authentication (no master key opens it)');
  const decipher = createDecipheriv('aes-256-gcm', dataKey, header.subarray(HEADER_LEN - IV_LEN));
  decipher.setAAD(header.subarray(0, HEADER_LEN));
  return { decipher, keyIndex };
}

/** Removes a sealed file. Its key dies with it: the wrapped key lives only in the file's header. */
export async function removeSealed(dir: string, id: string): Promise<void> {
  await unlink(path.join(dir, id)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
