// Secure pickup: a message's content sealed once under a per-message data key, one pickup per recipient
// whose password-derived key wraps that data key. Never stores a token, password or data key in clear.
//
// At rest:
//   data/pickups/<contentId>   'PHGP' v1 iv(12) AES-256-GCM(dataKey, serialised content) tag(16); the content is
//                              written as the message is read (PickupContentWriter), attachments never held whole
//   pickups.wrapped_key        salt(16) iv(12) AES-256-GCM(kek, dataKey) tag(16), AAD = pickup id + content id
//   pickups.token_hash         SHA-256 of the link token
//   pickup_escrow.wrapped      the data key sealed to the sender's and admins' X25519 keys (store/user-keys.ts),
//                              whose private keys open only with their owners' sign-in passwords: re-issue
// The database holds wrapped keys but no password; the disk holds content but no key: neither opens it alone.
// Revocation and expiry null the wrapped key (crypto-shredding); the file goes once no live pickup needs it.
import {
  createCipheriv,
  createDecipheriv,
  type CipherGCM,
  createHash,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import path from 'node:path';
import { GatewayError, type ErrorCode } from '../config/errors.js';
import type { PickupConfig } from '../config/schema.js';
import { appendAudit, lockAuditChain } from './audit.js';
import { syncDir } from './sealed-file.js';
import type { Store, Trx } from './store.js';
import { findUserKey, openEscrow, openUserKey, sealForEscrow, type EscrowRecipient } from './user-keys.js';

export type { PickupConfig };

export interface PickupAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
  cid?: string;
  inline?: boolean;
}

export interface PickupContent {
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  /** ISO 8601. */
  date: string;
  text: string;
  html: string | null;
  attachments: PickupAttachment[];
}

/** A pickup's content without its attachments' bytes (what its page and the API show). */
export interface PickupOutline extends Omit<PickupContent, 'attachments'> {
  attachments: Array<Omit<PickupAttachment, 'content'> & { size: number }>;
}

export interface CreatedPickup {
  id: string;
  rcpt: string;
  /** The link token for `<PUBLIC_URL>/p/<token>`; only its hash is stored. */
  token: string;
  /** Shown grouped (`xxxx-xxxx-xxxx-xxxx-xxxx`); never stored. */
  password: string;
  /** Short code for phone support; not secret. */
  reference: string;
  expiresAt: number;
}

export interface PickupRow {
  id: string;
  content_id: string;
  message_id: string;
  sender: string;
  rcpt: string;
  token_hash: string;
  reference: string;
  wrapped_key: string | null;
  status: 'active' | 'revoked' | 'expired';
  created_at: number;
  expires_at: number;
  fetched_at: number | null;
  opened_at: number | null;
  downloaded_at: number | null;
  ended_at: number | null;
  ended_by: string | null;
  failures: number;
  locked_until: number | null;
  hard_locked: boolean | number;
}

export const PICKUP_DIR = 'pickups';
const CONTENT_MAGIC = Buffer.from('PHGP', 'ascii');
const SERIAL_MAGIC = Buffer.from('PKC1', 'ascii');
/** Streamed serialisation: 'PKC2', attachment bytes, then meta (with each attachment's offset) and u32be(metaLen). */
const STREAM_MAGIC = Buffer.from('PKC2', 'ascii');
const VERSION = 1;
const IV_LEN = 12;
const TAG_LEN = 16;
const KEY_LEN = 32;
const SALT_LEN = 16;

// ---------------------------------------------------------------------------------------------------
// Secrets

/**
 * The password alphabet: digits and lower-case letters without look-alikes (0/o, 1/l/i) — 8 digits
 * (2–9) + 23 letters = 31 symbols. Case does not matter when typed (input is lower-cased).
 */
export const PASSWORD_ALPHABET = '23456789abcdefghjkmnpqrstuvwxyz';
/** Five groups of four: `xxxx-xxxx-xxxx-xxxx-xxxx`. */
export const PASSWORD_LENGTH = 20;
/** log2(31) × 20 = 4.954 × 20 = 99.08 bits, above the 80 bits the design asks for. */
export const PASSWORD_BITS = Math.log2(PASSWORD_ALPHABET.length) * PASSWORD_LENGTH;
/** 18 random bytes = 144 bits, 24 base64url characters. */
export const TOKEN_BYTES = 18;
const REFERENCE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
const REFERENCE_LENGTH = 8;

/** Uniform symbols by rejection sampling: bytes ≥ 248 (8 × 31) would bias the first symbols. */
function randomSymbols(alphabet: string, count: number): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < count) {
    for (const byte of randomBytes(count * 2)) {
      if (byte < limit && out.length < count) out += alphabet[byte % alphabet.length]!;
    }
  }
  return out;
}

export function generatePassword(): string {
  return randomSymbols(PASSWORD_ALPHABET, PASSWORD_LENGTH).replace(/(.{4})(?!$)/g, '$1-');
}

/** What the reader typed, as the symbols only: case, spaces and dashes are forgiven. */
export function normalizePassword(typed: string): string {
  return typed.toLowerCase().replace(/[\s\-_.]+/g, '');
}

export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(`phigw-pickup-token:${token}`).digest('hex');
}

function newId(): string {
  return randomBytes(16).toString('hex');
}

// ---------------------------------------------------------------------------------------------------
// Key wrapping

/**
 * The key-encryption key. HKDF-SHA256, not scrypt: the password is generated with 99 bits, so an offline
 * search of the wrapped key (one HMAC + one GCM tag per guess) needs ~2^98 tries — about 10^16 years at
 * 10^12 guesses/s — and a slow KDF would add nothing but CPU time on every open (the design: "a fast KDF
 * suffices"; scrypt is for passwords people choose). The pickup id is part of `info` and of the GCM AAD,
 * so a wrapped key copied onto another pickup's row does not open.
 */
function deriveKek(password: string, salt: Buffer, pickupId: string): Buffer {
  return Buffer.from(
    hkdfSync('sha256', normalizePassword(password), salt, `phi-gateway pickup kek v1|${pickupId}`, KEY_LEN),
  );
}

function wrapAad(pickupId: string, contentId: string): Buffer {
  return Buffer.from(`phigw-pickup-wrap:${pickupId}:${contentId}`);
}

function wrapDataKey(dataKey: Buffer, password: string, pickupId: string, contentId: string): string {
  const salt = randomBytes(SALT_LEN);
  const iv = randomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', deriveKek(password, salt, pickupId), iv);
  cipher.setAAD(wrapAad(pickupId, contentId));
  const ct = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return Buffer.concat([salt, iv, ct, cipher.getAuthTag()]).toString('base64');
}

/** The data key, or null for a wrong password. The GCM tag check is constant-time (OpenSSL CRYPTO_memcmp). */
function unwrapDataKey(
  wrapped: string,
  password: string,
  pickupId: string,
  contentId: string,
): Buffer | null {
  const blob = Buffer.from(wrapped, 'base64');
  if (blob.length !== SALT_LEN + IV_LEN + KEY_LEN + TAG_LEN) return null;
  try {
    const salt = blob.subarray(0, SALT_LEN);
    const decipher = createDecipheriv(
      'aes-256-gcm',
      deriveKek(password, salt, pickupId),
      blob.subarray(SALT_LEN, SALT_LEN + IV_LEN),
    );
    decipher.setAAD(wrapAad(pickupId, contentId));
    decipher.setAuthTag(blob.subarray(SALT_LEN + IV_LEN + KEY_LEN));
    return Buffer.concat([
      decipher.update(blob.subarray(SALT_LEN + IV_LEN, SALT_LEN + IV_LEN + KEY_LEN)),
      decipher.final(),
    ]);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// Serialisation: 'PKC1' u32be(metaLen) meta(JSON: headers, text, html, attachment descriptors) then the
// attachment bytes back to back, so large attachments are never base64-inflated inside JSON.

interface SerialMeta {
  from: string;
  to: string[];
  cc: string[];
  subject: string;
  date: string;
  text: string;
  html: string | null;
  attachments: Array<{
    filename: string;
    contentType: string;
    size: number;
    /** PKC2 only: where the attachment's bytes start in the serialised content. */
    offset?: number;
    cid?: string;
    inline?: boolean;
  }>;
}

export function serializeContent(content: PickupContent): Buffer {
  return Buffer.concat(serializedPieces(content));
}

/** The serialised content as pieces in order (the attachments are the caller's buffers, not copies). */
function serializedPieces(content: PickupContent): Buffer[] {
  const meta: SerialMeta = {
    from: content.from,
    to: content.to,
    cc: content.cc,
    subject: content.subject,
    date: content.date,
    text: content.text,
    html: content.html,
    attachments: content.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      size: a.content.length,
      ...(a.cid !== undefined ? { cid: a.cid } : {}),
      ...(a.inline !== undefined ? { inline: a.inline } : {}),
    })),
  };
  const metaBuf = Buffer.from(JSON.stringify(meta), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(metaBuf.length);
  return [SERIAL_MAGIC, len, metaBuf, ...content.attachments.map((a) => a.content)];
}

export function deserializeContent(buf: Buffer): PickupContent {
  if (buf.length >= 8 && buf.subarray(0, 4).equals(STREAM_MAGIC)) return deserializeStreamed(buf);
  if (buf.length < 8 || !buf.subarray(0, 4).equals(SERIAL_MAGIC))
    throw new GatewayError('SPOOL_CORRUPT', 'not serialised pickup content');
  const metaLen = buf.readUInt32BE(4);
  const meta = JSON.parse(buf.subarray(8, 8 + metaLen).toString('utf8')) as SerialMeta;
  let off = 8 + metaLen;
  const attachments = meta.attachments.map((a) => {
    const content = buf.subarray(off, off + a.size);
    if (content.length !== a.size) throw new GatewayError('SPOOL_CORRUPT', 'pickup content is truncated');
    off += a.size;
    return {
      filename: a.filename,
      contentType: a.contentType,
      content,
      ...(a.cid !== undefined ? { cid: a.cid } : {}),
      ...(a.inline !== undefined ? { inline: a.inline } : {}),
    };
  });
  return { ...meta, attachments };
}

function deserializeStreamed(buf: Buffer): PickupContent {
  const metaLen = buf.readUInt32BE(buf.length - 4);
  const metaStart = buf.length - 4 - metaLen;
  if (metaStart < 4) throw new GatewayError('SPOOL_CORRUPT', 'pickup content is truncated');
  const meta = JSON.parse(buf.subarray(metaStart, buf.length - 4).toString('utf8')) as SerialMeta;
  const attachments = meta.attachments.map((a) => {
    const off = a.offset ?? -1;
    if (off < 4 || off + a.size > metaStart)
      throw new GatewayError('SPOOL_CORRUPT', 'pickup content is truncated');
    return {
      filename: a.filename,
      contentType: a.contentType,
      content: buf.subarray(off, off + a.size),
      ...(a.cid !== undefined ? { cid: a.cid } : {}),
      ...(a.inline !== undefined ? { inline: a.inline } : {}),
    };
  });
  return { ...meta, attachments };
}

// ---------------------------------------------------------------------------------------------------
// Content files

export function pickupDir(store: Store): string {
  return path.join(store.dataDir, PICKUP_DIR);
}

function contentAad(header: Buffer, contentId: string): Buffer {
  return Buffer.concat([header, Buffer.from(`phigw-pickup-content:${contentId}`)]);
}

/** Plaintext encrypted and written per step when a content file is written. */
const WRITE_SLICE = 1024 * 1024;

/** Pickup content written and sealed by PickupContentWriter, ready for createPickups to hand out. */
export interface WrittenContent {
  contentId: string;
  /** The content's data key; createPickups wraps it for each recipient, then wipes it. */
  dataKey: Buffer;
  /** Plaintext bytes. */
  size: number;
}

/**
 * Writes a pickup content file as the message is read: attachment bodies are encrypted and written as they
 * arrive (in any order, each at its place in the attachment list), the rest of the content at the end. The
 * file is a temp file until `finish` (fsync, rename, directory fsync); `abort` removes it. Nothing readable
 * reaches the disk.
 */
export class PickupContentWriter {
  private offset = 0;
  private readonly entries: Array<SerialMeta['attachments'][number] | undefined> = [];
  private current: { index: number; size: number } | undefined;
  private done = false;

  private constructor(
    private readonly dir: string,
    readonly contentId: string,
    private readonly dataKey: Buffer,
    private readonly cipher: CipherGCM,
    private readonly handle: FileHandle,
  ) {}

  static async open(store: Store): Promise<PickupContentWriter> {
    const dir = pickupDir(store);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const contentId = newId();
    const dataKey = randomBytes(KEY_LEN);
    const iv = randomBytes(IV_LEN);
    const header = Buffer.concat([CONTENT_MAGIC, Buffer.from([VERSION]), iv]);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    cipher.setAAD(contentAad(header, contentId));
    const handle = await open(path.join(dir, `${contentId}.tmp`), 'wx', 0o600);
    const writer = new PickupContentWriter(dir, contentId, dataKey, cipher, handle);
    try {
      await writer.writeRaw(header, true);
      await writer.write(STREAM_MAGIC);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return writer;
  }

  /** Encrypted bytes gathered into writes of about WRITE_SLICE (decoded attachments arrive in small chunks). */
  private pending: Buffer[] = [];
  private pendingLen = 0;

  private async writeRaw(buf: Buffer, flush = false): Promise<void> {
    this.pending.push(buf);
    this.pendingLen += buf.length;
    if (!flush && this.pendingLen < WRITE_SLICE) return;
    const out = Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    for (let off = 0; off < out.length;)
      off += (await this.handle.write(out, off, out.length - off)).bytesWritten;
  }

  /** Encrypts and writes plaintext a slice at a time (a large buffer is never copied whole). */
  private async write(plain: Buffer): Promise<void> {
    for (let at = 0; at < plain.length; at += WRITE_SLICE)
      await this.writeRaw(this.cipher.update(plain.subarray(at, at + WRITE_SLICE)));
    this.offset += plain.length;
    if (this.current) this.current.size += plain.length;
  }

  /** Starts attachment `index` (0-based, its place in the content); its body follows with `body`. */
  begin(index: number, a: Omit<PickupAttachment, 'content'>): void {
    if (this.current || this.entries[index]) throw new Error('pickup content: attachment out of turn');
    this.entries[index] = {
      filename: a.filename,
      contentType: a.contentType,
      size: 0,
      offset: this.offset,
      ...(a.cid !== undefined ? { cid: a.cid } : {}),
      ...(a.inline !== undefined ? { inline: a.inline } : {}),
    };
    this.current = { index, size: 0 };
  }

  body(chunk: Buffer): Promise<void> {
    if (!this.current) throw new Error('pickup content: body outside an attachment');
    return this.write(chunk);
  }

  end(): void {
    const cur = this.current!;
    this.entries[cur.index]!.size = cur.size;
    this.current = undefined;
  }

  /** A whole attachment at once. */
  async attachment(index: number, a: PickupAttachment): Promise<void> {
    this.begin(index, a);
    await this.body(a.content);
    this.end();
  }

  /** Writes the rest of the content, seals and syncs the file. Every attachment must have been written. */
  async finish(rest: Omit<PickupContent, 'attachments'>): Promise<WrittenContent> {
    if (this.current || [...this.entries].some((e) => e === undefined))
      throw new Error('pickup content: attachment missing');
    const meta: SerialMeta = {
      from: rest.from,
      to: rest.to,
      cc: rest.cc,
      subject: rest.subject,
      date: rest.date,
      text: rest.text,
      html: rest.html,
      attachments: this.entries as SerialMeta['attachments'],
    };
    const metaBuf = Buffer.from(JSON.stringify(meta), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(metaBuf.length);
    try {
      await this.write(metaBuf);
      await this.write(len);
      await this.writeRaw(Buffer.concat([this.cipher.final(), this.cipher.getAuthTag()]), true);
      await this.handle.sync();
      this.done = true;
      await this.handle.close();
      const finalPath = path.join(this.dir, this.contentId);
      await rename(`${finalPath}.tmp`, finalPath);
      await syncDir(this.dir);
    } catch (err) {
      await this.abort();
      throw err;
    }
    return { contentId: this.contentId, dataKey: this.dataKey, size: this.offset };
  }

  /** Gives up: the temp file (or the file, after finish) is removed and the key wiped. Idempotent. */
  async abort(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.handle.close().catch(() => undefined);
    }
    this.dataKey.fill(0);
    await unlink(path.join(this.dir, `${this.contentId}.tmp`)).catch(() => undefined);
    await unlink(path.join(this.dir, this.contentId)).catch(() => undefined);
  }
}

/** Seals content held in memory (a reply, a file sent from the web) through the same writer. */
export async function writePickupContent(store: Store, content: PickupContent): Promise<WrittenContent> {
  const writer = await PickupContentWriter.open(store);
  try {
    for (const [i, a] of content.attachments.entries()) await writer.attachment(i, a);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.finish(content);
}

/** Ciphertext read per step when a content file is read as a stream. */
const READ_SLICE = 256 * 1024;

/**
 * A content file's plaintext in slices, read from start to end without holding it, each with its offset in the
 * plaintext; the tag is checked after the last slice, and the generator completes only if it passed (a file that
 * fails rejects with SPOOL_CORRUPT instead). Nothing from it may be trusted, or let go of as whole, before then.
 */
async function* contentSlices(
  store: Store,
  contentId: string,
  dataKey: Buffer,
): AsyncGenerator<{ plain: Buffer; offset: number }, number> {
  let handle: FileHandle;
  try {
    handle = await open(path.join(pickupDir(store), contentId), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new GatewayError('SPOOL_MISSING', 'pickup content is gone', { cause: err });
    throw err;
  }
  try {
    const size = (await handle.stat()).size;
    const headerLen = 4 + 1 + IV_LEN;
    if (size < headerLen + TAG_LEN) throw new GatewayError('SPOOL_CORRUPT', 'not a pickup content file');
    const header = Buffer.alloc(headerLen);
    const tag = Buffer.alloc(TAG_LEN);
    await handle.read(header, 0, headerLen, 0);
    await handle.read(tag, 0, TAG_LEN, size - TAG_LEN);
    if (!header.subarray(0, 4).equals(CONTENT_MAGIC) || header[4] !== VERSION)
      throw new GatewayError('SPOOL_CORRUPT', 'not a pickup content file');
    const decipher = createDecipheriv('aes-256-gcm', dataKey, header.subarray(5));
    decipher.setAAD(contentAad(header, contentId));
    decipher.setAuthTag(tag);
    const end = size - TAG_LEN;
    const slice = Buffer.alloc(Math.max(1, Math.min(READ_SLICE, end - headerLen)));
    let offset = 0;
    for (let at = headerLen; at < end;) {
      const { bytesRead } = await handle.read(slice, 0, Math.min(slice.length, end - at), at);
      if (bytesRead === 0) throw new GatewayError('SPOOL_CORRUPT', 'pickup content is truncated');
      at += bytesRead;
      // update() answers with new memory: the slice read into next is not what is handed out.
      const plain = decipher.update(slice.subarray(0, bytesRead));
      yield { plain, offset };
      offset += plain.length;
    }
    try {
      decipher.final();
    } catch (err) {
      throw new GatewayError('SPOOL_CORRUPT', 'pickup content failed authentication', { cause: err });
    }
    return offset;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The plaintext bytes of [start, end) (clamped to what the file has), from one pass over the file. */
async function readContentRanges(
  store: Store,
  contentId: string,
  dataKey: Buffer,
  ranges: ReadonlyArray<readonly [number, number]>,
): Promise<{ parts: Buffer[]; plainLength: number }> {
  const pieces: Buffer[][] = ranges.map(() => []);
  let plainLength = 0;
  for await (const { plain, offset } of contentSlices(store, contentId, dataKey)) {
    ranges.forEach(([start, end], k) => {
      const from = Math.max(start, offset);
      const to = Math.min(end, offset + plain.length);
      // Copied: a few bytes must not keep a whole slice alive.
      if (from < to) pieces[k]!.push(Buffer.from(plain.subarray(from - offset, to - offset)));
    });
    plainLength = offset + plain.length;
  }
  return { parts: pieces.map((p) => Buffer.concat(p)), plainLength };
}

/** What a content file holds: its outline and where each attachment's bytes are in the plaintext. */
interface ContentLayout {
  outline: PickupOutline;
  offsets: number[];
}

/**
 * A content file's layout, read without holding its attachments: a pass for the serialisation's frame (its first
 * bytes, and the length of a streamed file's meta at its end), then a pass for the meta. Both passes check the tag:
 * nothing is read from a file that fails it.
 */
async function readContentLayout(store: Store, contentId: string, dataKey: Buffer): Promise<ContentLayout> {
  const size = await fileSize(store, contentId);
  const plainLength = Math.max(0, size - (4 + 1 + IV_LEN) - TAG_LEN);
  const frame = await readContentRanges(store, contentId, dataKey, [
    [0, 8],
    [plainLength - 4, plainLength],
  ]);
  const [head, tail] = frame.parts as [Buffer, Buffer];
  if (frame.plainLength !== plainLength || head.length < 8 || tail.length < 4)
    throw new GatewayError('SPOOL_CORRUPT', 'pickup content is truncated');
  const streamed = head.subarray(0, 4).equals(STREAM_MAGIC);
  if (!streamed && !head.subarray(0, 4).equals(SERIAL_MAGIC))
    throw new GatewayError('SPOOL_CORRUPT', 'not serialised pickup content');
  const metaLen = streamed ? tail.readUInt32BE(0) : head.readUInt32BE(4);
  const metaStart = streamed ? plainLength - 4 - metaLen : 8;
  if (metaStart < (streamed ? 4 : 8) || metaStart + metaLen > plainLength)
    throw new GatewayError('SPOOL_CORRUPT', 'pickup content is truncated');
  const [metaBuf] = (await readContentRanges(store, contentId, dataKey, [[metaStart, metaStart + metaLen]]))
    .parts as [Buffer];
  let meta: SerialMeta;
  try {
    meta = JSON.parse(metaBuf.toString('utf8')) as SerialMeta;
  } catch (err) {
    // Only a file changed between the passes can get here (each passed its tag).
    throw new GatewayError('SPOOL_CORRUPT', 'pickup content changed while read', { cause: err });
  }
  const offsets: number[] = [];
  let next = metaStart + metaLen;
  for (const a of meta.attachments) {
    const off = streamed ? (a.offset ?? -1) : next;
    const limit = streamed ? metaStart : plainLength;
    if (off < (streamed ? 4 : metaStart + metaLen) || off + a.size > limit)
      throw new GatewayError('SPOOL_CORRUPT', 'pickup content is truncated');
    offsets.push(off);
    next = off + a.size;
  }
  const outline: PickupOutline = {
    ...meta,
    attachments: meta.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      size: a.size,
      ...(a.cid !== undefined ? { cid: a.cid } : {}),
      ...(a.inline !== undefined ? { inline: a.inline } : {}),
    })),
  };
  return { outline, offsets };
}

async function fileSize(store: Store, contentId: string): Promise<number> {
  try {
    return (await stat(path.join(pickupDir(store), contentId))).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new GatewayError('SPOOL_MISSING', 'pickup content is gone', { cause: err });
    throw err;
  }
}

/** A pickup's content without its attachments' bytes: what its page shows, read in slices whatever its size. */
export async function readPickupOutline(
  store: Store,
  pickup: Pick<PickupRow, 'content_id'>,
  dataKey: Buffer,
): Promise<PickupOutline> {
  return (await readContentLayout(store, pickup.content_id, dataKey)).outline;
}

/**
 * One attachment of a pickup as a stream of its bytes, read in slices (an attachment of any size is never held
 * whole), or null when the content has no such attachment. The stream ends only after the whole file passed its
 * tag: its last slice is held back until then, and a file that fails fails the stream (SPOOL_CORRUPT) before its
 * last byte, so a reader never sees a complete attachment from a damaged file.
 */
export async function openPickupAttachment(
  store: Store,
  pickup: Pick<PickupRow, 'content_id'>,
  dataKey: Buffer,
  index: number,
): Promise<{ attachment: PickupOutline['attachments'][number]; stream: Readable } | null> {
  const { outline, offsets } = await readContentLayout(store, pickup.content_id, dataKey);
  const attachment = outline.attachments[index];
  const start = offsets[index];
  if (!attachment || start === undefined) return null;
  const end = start + attachment.size;
  // The key is the caller's, wiped when its session ends: the stream reads with its own copy, wiped when done.
  const key = Buffer.from(dataKey);
  async function* bytes(): AsyncGenerator<Buffer> {
    let held: Buffer | null = null;
    try {
      for await (const { plain, offset } of contentSlices(store, pickup.content_id, key)) {
        const from = Math.max(start!, offset);
        const to = Math.min(end, offset + plain.length);
        if (from >= to) continue;
        if (held) yield held;
        held = plain.subarray(from - offset, to - offset);
      }
      // Here the whole file passed its tag.
      if (held) yield held;
    } finally {
      key.fill(0);
    }
  }
  return { attachment, stream: Readable.from(bytes()) };
}

// ---------------------------------------------------------------------------------------------------
// Creating

export async function createPickups(
  store: Store,
  input: {
    messageId: string;
    sender: string;
    recipients: string[];
    /** The content, or content already written and sealed by a PickupContentWriter (createPickups owns it now). */
    content: PickupContent | WrittenContent;
    expiresAt: number;
    actor?: string;
    /** Accounts that may re-issue the password later: the data key is sealed to each one's public key. */
    escrow?: EscrowRecipient[];
  },
): Promise<CreatedPickup[]> {
  if (input.recipients.length === 0) {
    if ('contentId' in input.content) await removeWritten(store, input.content);
    return [];
  }
  const now = Date.now();
  const written =
    'contentId' in input.content ? input.content : await writePickupContent(store, input.content);
  const { contentId, dataKey, size: plainSize } = written;
  const created: CreatedPickup[] = [];
  const rows: PickupRow[] = [];
  const escrowRows: Array<{
    pickup_id: string;
    user_id: number;
    key_id: string;
    wrapped: string;
    created_at: number;
  }> = [];
  for (const rcpt of input.recipients) {
    const id = newId();
    const token = generateToken();
    const password = generatePassword();
    const reference = randomSymbols(REFERENCE_ALPHABET, REFERENCE_LENGTH);
    created.push({ id, rcpt, token, password, reference, expiresAt: input.expiresAt });
    rows.push({
      id,
      content_id: contentId,
      message_id: input.messageId,
      sender: input.sender,
      rcpt,
      token_hash: hashToken(token),
      reference,
      wrapped_key: wrapDataKey(dataKey, password, id, contentId),
      status: 'active',
      created_at: now,
      expires_at: input.expiresAt,
      fetched_at: null,
      opened_at: null,
      downloaded_at: null,
      ended_at: null,
      ended_by: null,
      failures: 0,
      locked_until: null,
      hard_locked: false,
    });
    for (const to of input.escrow ?? [])
      escrowRows.push({
        pickup_id: id,
        user_id: to.userId,
        key_id: to.keyId,
        wrapped: sealForEscrow(dataKey, to, { pickupId: id, contentId, rcpt }),
        created_at: now,
      });
  }
  dataKey.fill(0);
  try {
    await store.write(
      async (trx) => {
        await trx('pickup_contents').insert({
          id: contentId,
          message_id: input.messageId,
          created_at: now,
          size: plainSize,
          purged_at: null,
        });
        for (const row of rows) {
          await trx('pickups').insert(row);
          for (const e of escrowRows) if (e.pickup_id === row.id) await trx('pickup_escrow').insert(e);
          await appendAudit(
            trx,
            {
              type: 'pickup.created',
              messageId: input.messageId,
              actor: input.actor ?? 'gateway',
              detail: { pickup: row.id, reference: row.reference, expiresAt: row.expires_at },
            },
            now,
          );
        }
      },
      { durable: true },
    );
  } catch (err) {
    await unlink(path.join(pickupDir(store), contentId)).catch(() => undefined);
    throw err;
  }
  return created;
}

/** Written content no pickup will point at: the file goes and its key is wiped. */
async function removeWritten(store: Store, written: WrittenContent): Promise<void> {
  written.dataKey.fill(0);
  await unlink(path.join(pickupDir(store), written.contentId)).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------------
// Looking up and fetching

export function findPickupByToken(db: Store['db'] | Trx, token: string): Promise<PickupRow | undefined> {
  if (!/^[A-Za-z0-9_-]{16,64}$/.test(token)) return Promise.resolve(undefined);
  const hash = hashToken(token);
  return (db('pickups').where({ token_hash: hash }).first() as Promise<PickupRow | undefined>).then((row) =>
    // The index lookup already matched; the constant-time compare is belt and braces.
    row && timingSafeEqual(Buffer.from(row.token_hash), Buffer.from(hash)) ? normalizeRow(row) : undefined,
  );
}

function normalizeRow(row: PickupRow): PickupRow {
  const num = (v: number | null) => (v === null ? null : Number(v));
  return {
    ...row,
    created_at: Number(row.created_at),
    expires_at: Number(row.expires_at),
    fetched_at: num(row.fetched_at),
    opened_at: num(row.opened_at),
    downloaded_at: num(row.downloaded_at),
    ended_at: num(row.ended_at),
    locked_until: num(row.locked_until),
    failures: Number(row.failures),
    hard_locked: !!row.hard_locked,
  };
}

/** Live: not revoked, not expired, key not destroyed. */
export function isLive(row: PickupRow, now = Date.now()): boolean {
  return row.status === 'active' && row.expires_at > now && !!row.wrapped_key;
}

export type FetchResult =
  { kind: 'unknown' } | { kind: 'gone'; pickup: PickupRow } | { kind: 'live'; pickup: PickupRow };

/**
 * A link was fetched (the password page was shown). Records the fetch and audits it; nothing else changes,
 * since mail scanners fetch links too.
 */
export async function markFetched(
  store: Store,
  token: string,
  ctx: { ip: string; now?: number },
): Promise<FetchResult> {
  const now = ctx.now ?? Date.now();
  const pickup = await findPickupByToken(store.db, token);
  if (!pickup) return { kind: 'unknown' };
  await store.write(async (trx) => {
    if (pickup.fetched_at === null) await trx('pickups').where({ id: pickup.id }).update({ fetched_at: now });
    await appendAudit(
      trx,
      {
        type: 'pickup.fetched',
        messageId: pickup.message_id,
        actor: 'recipient',
        detail: { pickup: pickup.id, ip: ctx.ip },
      },
      now,
    );
  });
  return isLive(pickup, now) ? { kind: 'live', pickup } : { kind: 'gone', pickup };
}

// ---------------------------------------------------------------------------------------------------
// Opening, with per-pickup and per-IP brute-force limits kept in the database (shared by all nodes)

export type OpenFailure = {
  ok: false;
  code: Extract<ErrorCode, 'PICKUP_UNKNOWN' | 'PICKUP_GONE' | 'PICKUP_LOCKED' | 'PICKUP_WRONG_PASSWORD'>;
  status: 404 | 410 | 423 | 401;
  /** For 423: seconds until a new attempt may succeed (a hard lock gives the lockout duration as a hint). */
  retryAfter?: number;
  /** For 423: only the sender or an admin can lift it. */
  hard?: boolean;
  pickup?: PickupRow;
};

export type OpenResult =
  { ok: true; pickup: PickupRow; content: PickupOutline; dataKey: Buffer; firstOpen: boolean } | OpenFailure;

function fail(code: OpenFailure['code'], extra: Partial<OpenFailure> = {}): OpenFailure {
  const status = (
    { PICKUP_UNKNOWN: 404, PICKUP_GONE: 410, PICKUP_LOCKED: 423, PICKUP_WRONG_PASSWORD: 401 } as const
  )[code];
  return { ok: false, code, status, ...extra };
}

interface IpRow {
  ip: string;
  failures: number;
  window_started_at: number;
  locked_until: number | null;
}

function secondsUntil(t: number, now: number): number {
  return Math.max(1, Math.ceil((t - now) / 1000));
}

/** Counts one failure against the client IP; returns the lock's end when this failure locks it. */
async function countIpFailure(
  trx: Trx,
  ip: string,
  limits: PickupConfig,
  now: number,
): Promise<number | null> {
  const row = (await trx('pickup_ip_limits').where({ ip }).first()) as IpRow | undefined;
  let failures =
    row && now - Number(row.window_started_at) <= limits.lockoutDuration ? Number(row.failures) : 0;
  const windowStart = row && failures > 0 ? Number(row.window_started_at) : now;
  failures++;
  let lockedUntil: number | null = row?.locked_until ? Number(row.locked_until) : null;
  let locked: number | null = null;
  if (failures >= limits.maxFailures) {
    lockedUntil = now + limits.lockoutDuration;
    locked = lockedUntil;
    failures = 0;
  }
  const values = { failures, window_started_at: windowStart, locked_until: lockedUntil };
  if (row) await trx('pickup_ip_limits').where({ ip }).update(values);
  else await trx('pickup_ip_limits').insert({ ip, ...values });
  return locked;
}

/**
 * Tries a password. The decision (lock checks, the password check, counting) runs inside one store write,
 * so concurrent guesses are serialised and cannot overshoot the limits. Outcomes: 404 unknown token,
 * 410 revoked/expired, 423 locked (this pickup or this client IP), 401 wrong password; the failure that
 * reaches a limit answers 423 at once. Every attempt on a known pickup is audited with its id and the IP.
 */
export async function openPickup(
  store: Store,
  token: string,
  password: string,
  ctx: { ip: string; now?: number },
  limits: PickupConfig,
): Promise<OpenResult> {
  const now = ctx.now ?? Date.now();
  const ip = ctx.ip.slice(0, 64);
  const decision = await store.write(
    async (
      trx,
    ): Promise<OpenFailure | { ok: true; pickup: PickupRow; dataKey: Buffer; firstOpen: boolean }> => {
      // Several nodes (PostgreSQL): the failure counters below are read, then written; attempts on other
      // nodes wait here until this one commits, so none is lost. (Every outcome is audited anyway.)
      await lockAuditChain(trx);
      const pickup = await findPickupByToken(trx, token);
      const ipRow = (await trx('pickup_ip_limits').where({ ip }).first()) as IpRow | undefined;
      const ipLockedUntil =
        ipRow?.locked_until && Number(ipRow.locked_until) > now ? Number(ipRow.locked_until) : null;
      const audit = (type: string, detail: Record<string, string | number | boolean | null>) =>
        appendAudit(
          trx,
          {
            type,
            messageId: pickup?.message_id ?? null,
            actor: 'recipient',
            detail: { pickup: pickup?.id ?? null, ip, ...detail },
          },
          now,
        );
      if (ipLockedUntil !== null) {
        if (pickup) await audit('pickup.unlock_failed', { reason: 'ip_locked' });
        return fail('PICKUP_LOCKED', {
          retryAfter: secondsUntil(ipLockedUntil, now),
          ...(pickup ? { pickup } : {}),
        });
      }
      if (!pickup) {
        // Token guessing is hopeless at 144 bits, but it still counts against the client's IP.
        await countIpFailure(trx, ip, limits, now);
        return fail('PICKUP_UNKNOWN');
      }
      if (!isLive(pickup, now)) {
        await audit('pickup.unlock_failed', { reason: 'gone' });
        return fail('PICKUP_GONE', { pickup });
      }
      if (pickup.hard_locked) {
        await audit('pickup.unlock_failed', { reason: 'hard_locked' });
        return fail('PICKUP_LOCKED', {
          retryAfter: Math.ceil(limits.lockoutDuration / 1000),
          hard: true,
          pickup,
        });
      }
      if (pickup.locked_until !== null && pickup.locked_until > now) {
        await audit('pickup.unlock_failed', { reason: 'locked' });
        return fail('PICKUP_LOCKED', { retryAfter: secondsUntil(pickup.locked_until, now), pickup });
      }
      const dataKey = unwrapDataKey(pickup.wrapped_key!, password, pickup.id, pickup.content_id);
      if (!dataKey) {
        const failures = pickup.failures + 1;
        const hard = failures >= limits.hardLockFailures;
        const lockedUntil =
          !hard && failures % limits.maxFailures === 0 ? now + limits.lockoutDuration : null;
        await trx('pickups')
          .where({ id: pickup.id })
          .update({ failures, hard_locked: hard, ...(lockedUntil ? { locked_until: lockedUntil } : {}) });
        await audit('pickup.unlock_failed', { reason: 'wrong_password', failures });
        const ipLock = await countIpFailure(trx, ip, limits, now);
        if (hard || lockedUntil) {
          await audit('pickup.locked', { scope: 'pickup', hard, until: lockedUntil });
          return fail('PICKUP_LOCKED', {
            retryAfter: hard ? Math.ceil(limits.lockoutDuration / 1000) : secondsUntil(lockedUntil!, now),
            hard,
            pickup,
          });
        }
        if (ipLock) {
          await audit('pickup.locked', { scope: 'ip', hard: false, until: ipLock });
          return fail('PICKUP_LOCKED', { retryAfter: secondsUntil(ipLock, now), pickup });
        }
        return fail('PICKUP_WRONG_PASSWORD', { pickup });
      }
      const firstOpen = pickup.opened_at === null;
      await trx('pickups')
        .where({ id: pickup.id })
        .update({ failures: 0, locked_until: null, ...(firstOpen ? { opened_at: now } : {}) });
      await audit('pickup.unlocked', { first: firstOpen });
      if (firstOpen && limits.openedNotice) await addNotice(trx, 'opened', pickup, null, now);
      return {
        ok: true,
        pickup: { ...pickup, failures: 0, locked_until: null, opened_at: pickup.opened_at ?? now },
        dataKey,
        firstOpen,
      };
    },
  );
  if (!decision.ok) return decision;
  try {
    const content = await readPickupOutline(store, decision.pickup, decision.dataKey);
    return { ...decision, content };
  } catch (err) {
    // Purged between the check and the read (expired or revoked at that moment): gone, not an error.
    if (err instanceof GatewayError && err.code === 'SPOOL_MISSING')
      return fail('PICKUP_GONE', { pickup: decision.pickup });
    throw err;
  }
}

/** Lifts a pickup's lock (temporary or hard) and its failure count; for the sender or an admin. */
export async function unlockPickup(store: Store, id: string, actor: string): Promise<boolean> {
  return store.write(async (trx) => {
    const row = (await trx('pickups').where({ id }).first()) as PickupRow | undefined;
    if (!row) return false;
    await trx('pickups').where({ id }).update({ failures: 0, locked_until: null, hard_locked: false });
    await appendAudit(trx, {
      type: 'pickup.lock_lifted',
      messageId: row.message_id,
      actor,
      detail: { pickup: id },
    });
    return true;
  });
}

// ---------------------------------------------------------------------------------------------------
// Re-issuing a password: the holder of an escrow seal (the sender or an admin) opens the data key with their
// own sign-in password and wraps it under a NEW generated password. The old password stops working.

export type ReissueRefusal = 'unknown' | 'gone' | 'no_escrow' | 'key_reset' | 'wrong_password';

export type ReissueCheck =
  | { ok: true; pickup: PickupRow; escrow: { key_id: string; wrapped: string } }
  | { ok: false; code: Exclude<ReissueRefusal, 'wrong_password'>; pickup?: PickupRow };

/**
 * Whether `userId` can re-issue this pickup's password, before asking for their password: it must be live,
 * and sealed to the user's current key. no_escrow: sealed to nobody (sent before re-issue existed, or when no
 * account had a key); key_reset: sealed to others, or to a key of this user's that was since replaced.
 */
export async function checkReissue(db: Store['db'], pickupId: string, userId: number): Promise<ReissueCheck> {
  const raw = (await db('pickups').where({ id: pickupId }).first()) as PickupRow | undefined;
  if (!raw) return { ok: false, code: 'unknown' };
  const pickup = normalizeRow(raw);
  if (!isLive(pickup)) return { ok: false, code: 'gone', pickup };
  const escrow = (await db('pickup_escrow').where({ pickup_id: pickupId, user_id: userId }).first()) as
    { key_id: string; wrapped: string } | undefined;
  const key = await findUserKey(db, userId);
  if (escrow && key && escrow.key_id === key.key_id) return { ok: true, pickup, escrow };
  const [any] = (await db('pickup_escrow').where({ pickup_id: pickupId }).count({ n: '*' })) as Array<{
    n: number | string;
  }>;
  return { ok: false, code: Number(any?.n ?? 0) > 0 ? 'key_reset' : 'no_escrow', pickup };
}

/** How the new password leaves: built and sealed before the write, enqueued inside it, discarded if it loses. */
export interface ReissueDelivery {
  route: string;
  enqueue(trx: Trx, now: number): Promise<void>;
  discard(): Promise<void>;
}

/**
 * Re-issues a pickup's password for the holder of an escrow seal. `signInPassword` must already be checked
 * against the account (the caller's re-authentication); here it opens the user's private key. The new
 * password exists only in memory and in the delivery it is handed to; the pickup's failure counters and
 * locks are reset and open recipient sessions end. Audited as pickup.password_reissued (never the password).
 */
export async function reissuePassword(
  store: Store,
  input: {
    pickupId: string;
    userId: number;
    signInPassword: string;
    actor: string;
    deliver: (pickup: PickupRow, password: string) => Promise<ReissueDelivery>;
  },
): Promise<{ ok: true; pickup: PickupRow; route: string } | { ok: false; code: ReissueRefusal }> {
  const check = await checkReissue(store.db, input.pickupId, input.userId);
  if (!check.ok) return { ok: false, code: check.code };
  const { pickup } = check;
  const privateKey = await openUserKey(store, input.userId, input.signInPassword);
  if (!privateKey) return { ok: false, code: 'wrong_password' };
  const dataKey = openEscrow(
    check.escrow.wrapped,
    privateKey,
    { userId: input.userId, keyId: check.escrow.key_id },
    { pickupId: pickup.id, contentId: pickup.content_id, rcpt: pickup.rcpt },
  );
  if (!dataKey) return { ok: false, code: 'key_reset' };
  const password = generatePassword();
  const wrapped = wrapDataKey(dataKey, password, pickup.id, pickup.content_id);
  dataKey.fill(0);
  const delivery = await input.deliver(pickup, password);
  const now = Date.now();
  let done = false;
  try {
    done = await store.write(
      async (trx) => {
        await lockAuditChain(trx);
        const current = (await trx('pickups').where({ id: pickup.id }).first()) as PickupRow | undefined;
        // Revoked, expired or re-issued by someone else meanwhile: this one loses.
        if (!current || current.wrapped_key !== pickup.wrapped_key || !isLive(normalizeRow(current), now))
          return false;
        await trx('pickups')
          .where({ id: pickup.id })
          .update({ wrapped_key: wrapped, failures: 0, locked_until: null, hard_locked: false });
        // Whoever had it open with the old password signs in again with the new one.
        await trx('pickup_sessions').where({ pickup_id: pickup.id }).delete();
        await delivery.enqueue(trx, now);
        await appendAudit(
          trx,
          {
            type: 'pickup.password_reissued',
            messageId: pickup.message_id,
            actor: input.actor,
            detail: { pickup: pickup.id, route: delivery.route },
          },
          now,
        );
        return true;
      },
      { syncDirs: ['blobs'], durable: true },
    );
  } finally {
    if (!done) await delivery.discard();
  }
  return done ? { ok: true, pickup, route: delivery.route } : { ok: false, code: 'gone' };
}

/** Records an attachment download (the first sets downloaded_at); audited with the pickup id and IP. */
export async function recordDownload(
  store: Store,
  pickup: Pick<PickupRow, 'id' | 'message_id'>,
  attachmentId: string,
  ctx: { ip: string },
): Promise<void> {
  const now = Date.now();
  await store.write(async (trx) => {
    await trx('pickups').where({ id: pickup.id }).whereNull('downloaded_at').update({ downloaded_at: now });
    await appendAudit(
      trx,
      {
        type: 'pickup.downloaded',
        messageId: pickup.message_id,
        actor: 'recipient',
        detail: { pickup: pickup.id, attachment: attachmentId, ip: ctx.ip },
      },
      now,
    );
  });
}

// ---------------------------------------------------------------------------------------------------
// Ending: revocation, expiry, and removal of content no live pickup needs

async function endPickup(
  trx: Trx,
  row: PickupRow,
  status: 'revoked' | 'expired',
  actor: string,
  now: number,
) {
  await trx('pickups')
    .where({ id: row.id })
    .update({ status, wrapped_key: null, ended_at: now, ended_by: actor });
  await trx('pickup_escrow').where({ pickup_id: row.id }).delete();
  await trx('pickup_sessions').where({ pickup_id: row.id }).delete();
  await appendAudit(
    trx,
    {
      type: status === 'revoked' ? 'pickup.revoked' : 'pickup.expired',
      messageId: row.message_id,
      actor,
      detail: { pickup: row.id },
    },
    now,
  );
}

/**
 * Deletes content files that no live pickup needs (their keys are already destroyed, so this is tidiness
 * on top of crypto-shredding). Safe to repeat after a crash. Returns how many files were removed.
 */
export async function purgeUnneededContents(store: Store): Promise<number> {
  const rows = (await store
    .db('pickup_contents as c')
    .whereNull('c.purged_at')
    .whereNotExists(function () {
      void this.select(1).from('pickups as p').whereRaw('p.content_id = c.id').where('p.status', 'active');
    })
    .select('c.id')) as Array<{ id: string }>;
  for (const { id } of rows) {
    await unlink(path.join(pickupDir(store), id)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  if (rows.length > 0) {
    await syncDir(pickupDir(store));
    const now = Date.now();
    await store.write(async (trx) => {
      await trx('pickup_contents')
        .whereIn(
          'id',
          rows.map((r) => r.id),
        )
        .update({ purged_at: now });
    });
  }
  return rows.length;
}

/** Revokes a pickup: its wrapped key and sessions are destroyed at once. False when unknown or already ended. */
export async function revokePickup(store: Store, id: string, actor: string): Promise<boolean> {
  const now = Date.now();
  const done = await store.write(
    async (trx) => {
      const row = (await trx('pickups').where({ id }).first()) as PickupRow | undefined;
      if (!row || row.status !== 'active') return false;
      await endPickup(trx, normalizeRow(row), 'revoked', actor, now);
      return true;
    },
    { durable: true },
  );
  if (done) await purgeUnneededContents(store);
  return done;
}

/** Expires every pickup past its date (destroying its key) and removes content nobody needs. Returns the count. */
export async function expirePickups(store: Store, now = Date.now()): Promise<number> {
  const expired = await store.write(
    async (trx) => {
      const rows = (await trx('pickups')
        .where('status', 'active')
        .where('expires_at', '<=', now)
        .limit(1000)) as PickupRow[];
      for (const row of rows) await endPickup(trx, normalizeRow(row), 'expired', 'purger', now);
      return rows.length;
    },
    { durable: true },
  );
  await purgeUnneededContents(store);
  return expired;
}

// ---------------------------------------------------------------------------------------------------
// Listing (for staff and admin pages)

export type PickupStatus = 'sent' | 'fetched' | 'opened' | 'downloaded' | 'expired' | 'revoked' | 'locked';

export interface PickupSummary {
  id: string;
  messageId: string;
  reference: string;
  rcpt: string;
  sender: string;
  createdAt: number;
  expiresAt: number;
  status: PickupStatus;
  hardLocked: boolean;
}

export function pickupStatus(row: PickupRow, now = Date.now()): PickupStatus {
  if (row.status === 'revoked') return 'revoked';
  if (row.status === 'expired' || row.expires_at <= now) return 'expired';
  if (row.hard_locked || (row.locked_until !== null && row.locked_until > now)) return 'locked';
  if (row.downloaded_at !== null) return 'downloaded';
  if (row.opened_at !== null) return 'opened';
  if (row.fetched_at !== null) return 'fetched';
  return 'sent';
}

export async function listPickups(
  store: Store,
  filter: { sender?: string; messageId?: string; id?: string; reference?: string; limit?: number } = {},
): Promise<PickupSummary[]> {
  const q = store
    .db('pickups')
    .orderBy('created_at', 'desc')
    .limit(filter.limit ?? 200);
  if (filter.sender) void q.where('sender', filter.sender);
  if (filter.messageId) void q.where('message_id', filter.messageId);
  if (filter.id) void q.where('id', filter.id);
  if (filter.reference) void q.where('reference', filter.reference.toUpperCase());
  const now = Date.now();
  return ((await q) as PickupRow[]).map(normalizeRow).map((r) => ({
    id: r.id,
    messageId: r.message_id,
    reference: r.reference,
    rcpt: r.rcpt,
    sender: r.sender,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    status: pickupStatus(r, now),
    hardLocked: !!r.hard_locked,
  }));
}

// ---------------------------------------------------------------------------------------------------
// Notices for the sender ("opened", "a reply is waiting"): rows the gateway side polls and mails.

export interface PickupNotice {
  id: number;
  kind: 'opened' | 'reply';
  pickupId: string;
  replyId: string | null;
  messageId: string;
  /** The original sender: who gets the notice. */
  sender: string;
  /** The pickup recipient the notice is about. */
  rcpt: string;
  reference: string;
  createdAt: number;
}

export async function addNotice(
  trx: Trx,
  kind: PickupNotice['kind'],
  pickup: Pick<PickupRow, 'id' | 'message_id' | 'sender' | 'rcpt' | 'reference'>,
  replyId: string | null,
  now: number,
): Promise<void> {
  await trx('pickup_notices').insert({
    kind,
    pickup_id: pickup.id,
    reply_id: replyId,
    message_id: pickup.message_id,
    sender: pickup.sender,
    rcpt: pickup.rcpt,
    reference: pickup.reference,
    created_at: now,
    sent_at: null,
  });
}

/** Notices not yet sent, oldest first. The caller mails each and then calls markPickupNoticeSent. */
export async function listPendingPickupNotices(store: Store, limit = 100): Promise<PickupNotice[]> {
  const rows = (await store.db('pickup_notices').whereNull('sent_at').orderBy('id').limit(limit)) as Array<{
    id: number;
    kind: PickupNotice['kind'];
    pickup_id: string;
    reply_id: string | null;
    message_id: string;
    sender: string;
    rcpt: string;
    reference: string;
    created_at: number;
  }>;
  return rows.map((r) => ({
    id: Number(r.id),
    kind: r.kind,
    pickupId: r.pickup_id,
    replyId: r.reply_id,
    messageId: r.message_id,
    sender: r.sender,
    rcpt: r.rcpt,
    reference: r.reference,
    createdAt: Number(r.created_at),
  }));
}

export async function markPickupNoticeSent(store: Store, id: number, now = Date.now()): Promise<void> {
  await store.write((trx) =>
    trx('pickup_notices').where({ id }).whereNull('sent_at').update({ sent_at: now }),
  );
}
