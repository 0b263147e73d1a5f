// PGP/MIME (RFC 3156) for the gateway: wraps a whole original message body, with protected headers,
// into one signed-and-encrypted OpenPGP message (from a buffer, or as a stream); and tells mail that is already encrypted. The outer
// message must never carry anything of the original beyond the addressing headers and a neutral subject.
import { randomBytes } from 'node:crypto';
import * as openpgp from 'openpgp';
import { GatewayError } from '../config/errors.js';
import type { OrgKey } from '../store/org-key.js';
import type { RecipientKey } from '../store/pgp-keyring.js';

export interface PgpMimeInput {
  /** The original RFC 5322 message as received (CRLF line ends). */
  raw: Buffer;
  /** One key per recipient of this envelope; the message is encrypted to all of them. */
  recipientKeys: Array<Pick<RecipientKey, 'key'>>;
  /** Signs the message (one combined signed-and-encrypted OpenPGP message, RFC 3156 §6.2). */
  signingKey: Pick<OrgKey, 'privateKey'>;
  /** The Subject of the outer message, e.g. "Secure message from <practice>". */
  outerSubject: string;
  /** Replaces the Subject inside (e.g. with a [secure] tag removed); default: the original Subject line. */
  innerSubject?: string;
  /** Header lines for the outer message (each CRLF-terminated), e.g. trace headers; put first. */
  extraHeaders?: string;
}

interface Field {
  /** Lowercased field name. */
  name: string;
  /** The whole field as received, folding kept, with its final CRLF (latin1: bytes kept as they are). */
  raw: string;
}

/** Headers that name the message and its people: kept outside (and inside) the encryption. */
const OUTER_KEPT = new Set([
  'from',
  'to',
  'cc',
  'date',
  'message-id',
  'reply-to',
  'in-reply-to',
  'references',
]);
/** Copied into the encrypted part as protected headers (Protected Headers for Cryptographic E-mail). */
const PROTECTED = new Set([...OUTER_KEPT, 'subject']);

/** Splits a message into its header block (with the final CRLF of the last field) and its body. */
function splitMessage(raw: Buffer): { head: string; body: Buffer } {
  if (raw[0] === 0x0d && raw[1] === 0x0a) return { head: '', body: raw.subarray(2) };
  let end = raw.indexOf('\r\n\r\n');
  let sep = 4;
  if (end < 0) {
    end = raw.indexOf('\n\n');
    sep = 2;
  }
  if (end < 0) return { head: raw.toString('latin1'), body: raw.subarray(raw.length) };
  return { head: raw.toString('latin1', 0, end + sep / 2), body: raw.subarray(end + sep) };
}

function parseFields(head: string): Field[] {
  const fields: Field[] = [];
  const lines = head.split(/(?<=\n)/);
  for (const line of lines) {
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0) {
      fields[fields.length - 1]!.raw += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // not a header field (e.g. an mbox "From " line): dropped
    fields.push({ name: line.slice(0, colon).trim().toLowerCase(), raw: line });
  }
  for (const f of fields) if (!f.raw.endsWith('\n')) f.raw += '\r\n';
  return fields;
}

/** `text` without trailing characters from `chars` (a loop: a regex here would be quadratic on spaces). */
function trimEndOf(text: string, chars: string): string {
  let end = text.length;
  while (end > 0 && chars.includes(text[end - 1]!)) end--;
  return text.slice(0, end);
}

function fieldValue(f: Field): string {
  return f.raw
    .slice(f.raw.indexOf(':') + 1)
    .replace(/\r?\n[ \t]/g, ' ')
    .trim();
}

/** A Subject field for a string given by us: one line, RFC 2047 encoded when not plain ASCII. */
function subjectField(text: string): string {
  const clean = text.replace(/[\r\n]+/g, ' ').trim();
  if (/^[\x20-\x7e]*$/.test(clean)) return `Subject: ${clean}\r\n`;
  const words: string[] = [];
  let chunk = '';
  for (const ch of clean) {
    if (Buffer.byteLength(chunk + ch, 'utf8') > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk) words.push(chunk);
  return `Subject: ${words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join('\r\n ')}\r\n`;
}

// CRC-24 of RFC 4880 §6.1, computed as a 32-bit MSB-first CRC (register shifted left by 8) so that four
// bytes go per step ("slicing by 4"): a byte at a time was the slowest part of armouring a megabyte.
const CRC24_TABLES = (() => {
  const t = [0, 1, 2, 3].map(() => new Int32Array(256));
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let j = 0; j < 8; j++) c = c & 0x80000000 ? (c << 1) ^ 0x864cfb00 : c << 1;
    t[0]![i] = c;
  }
  for (let k = 1; k < 4; k++)
    for (let i = 0; i < 256; i++) {
      const p = t[k - 1]![i]!;
      t[k]![i] = (p << 8) ^ t[0]![(p >>> 24) & 0xff]!;
    }
  return t as [Int32Array, Int32Array, Int32Array, Int32Array];
})();

function crc24(data: Uint8Array): number {
  return (crc24Update(0xb704ce00 | 0, data) >>> 8) & 0xffffff;
}

/** Runs the CRC-24 register `r` (initially 0xb704ce00) over `data`; the CRC is `(r >>> 8) & 0xffffff` at the end. */
function crc24Update(r: number, data: Uint8Array): number {
  const [t0, t1, t2, t3] = CRC24_TABLES;
  const n = data.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    r ^= (data[i]! << 24) | (data[i + 1]! << 16) | (data[i + 2]! << 8) | data[i + 3]!;
    r = t3[r >>> 24]! ^ t2[(r >>> 16) & 0xff]! ^ t1[(r >>> 8) & 0xff]! ^ t0[r & 0xff]!;
  }
  for (; i < n; i++) r = (r << 8) ^ t0[((r >>> 24) ^ data[i]!) & 0xff]!;
  return r;
}

/**
 * `before`, then `data` in ASCII armour with CRLF line ends, then `after`: one buffer, written once. With the CRC24
 * line: RFC 9580 makes it optional, but GnuPG 2.2 (still the Debian default) misreads the END line as data without
 * it.
 */
function armoured(data: Uint8Array, before: Buffer, after: Buffer): Buffer {
  const tail = armourTail(crc24(data));
  const start = before.length + ARMOUR_HEAD.length;
  const size = start + linesLength(data.length) + tail.length + after.length;
  // Whole lines are written two characters at a time: they must start at an even offset of the memory.
  const skew = start & 1;
  const out = Buffer.allocUnsafeSlow(size + skew).subarray(skew);
  before.copy(out, 0);
  ARMOUR_HEAD.copy(out, before.length);
  const end = writeLines(data, out, start);
  tail.copy(out, end);
  after.copy(out, end + tail.length);
  return out;
}

const ARMOUR_HEAD = Buffer.from('-----BEGIN PGP MESSAGE-----\r\n\r\n', 'latin1');

/** The CRC-24 line and the END line. */
function armourTail(crc: number): Buffer {
  return Buffer.from(
    `=${Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]).toString('base64')}\r\n-----END PGP MESSAGE-----\r\n`,
    'latin1',
  );
}

/** Header fields, each line CRLF-terminated, no empty line (which would end the header), no bare CR/LF. */
function validHeaderLines(text: string): boolean {
  if (text === '') return true;
  if (!text.endsWith('\r\n')) return false;
  const lines = text.slice(0, -2).split('\r\n');
  return (
    /^[!-9;-~]+:/.test(lines[0]!) &&
    lines.every((l) => l !== '' && !/[\r\n]/.test(l) && (/^[ \t]/.test(l) || /^[!-9;-~]+:/.test(l)))
  );
}

/** What surrounds the ciphertext: the inner entity's header, and the outer message before and after the armour. */
interface PgpMimeFrame {
  /** The inner entity's header block, with its empty line (the original body follows it untouched). */
  innerHead: Buffer;
  /** Extra headers, the outer header, the version part and the encrypted part's header. */
  outerHead: Buffer;
  /** The closing boundary, after the armour. */
  tail: Buffer;
}

function pgpMimeFrame(
  head: string,
  input: Pick<PgpMimeInput, 'recipientKeys' | 'outerSubject' | 'innerSubject' | 'extraHeaders'>,
): PgpMimeFrame {
  if (input.recipientKeys.length === 0) throw new GatewayError('PGP_FAILED', 'no recipient key');
  const extra = input.extraHeaders ?? '';
  if (!validHeaderLines(extra))
    throw new GatewayError('PGP_FAILED', 'extraHeaders must be CRLF-terminated header lines');
  const fields = parseFields(head);

  // The inner entity: the original body entity (its Content-* fields and body bytes untouched), with the
  // protected headers beside its Content-Type and `protected-headers="v1"` on it.
  let inner = '';
  const contentType = fields.find((f) => f.name === 'content-type');
  inner += contentType
    ? `${trimEndOf(contentType.raw, ' \t\r\n;')};\r\n protected-headers="v1"\r\n`
    : 'Content-Type: text/plain; charset=us-ascii; protected-headers="v1"\r\n';
  for (const f of fields) {
    if (f.name.startsWith('content-') && f !== contentType) inner += f.raw;
  }
  for (const f of fields) {
    if (!PROTECTED.has(f.name)) continue;
    if (f.name === 'subject' && input.innerSubject !== undefined) continue;
    inner += f.raw;
  }
  if (input.innerSubject !== undefined) inner += subjectField(input.innerSubject);
  inner += '\r\n';

  const boundary = `phigw-pgp-${randomBytes(12).toString('hex')}`;
  let outer = '';
  for (const f of fields) if (OUTER_KEPT.has(f.name)) outer += f.raw;
  outer +=
    subjectField(input.outerSubject) +
    'MIME-Version: 1.0\r\n' +
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="${boundary}"\r\n` +
    'X-PHI-Gateway-Kind: pgp\r\n' +
    '\r\n' +
    'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n' +
    `--${boundary}\r\n` +
    'Content-Type: application/pgp-encrypted\r\n' +
    'Content-Description: PGP/MIME version identification\r\n' +
    '\r\n' +
    'Version: 1\r\n' +
    '\r\n' +
    `--${boundary}\r\n` +
    'Content-Type: application/octet-stream; name="encrypted.asc"\r\n' +
    'Content-Description: OpenPGP encrypted message\r\n' +
    'Content-Disposition: inline; filename="encrypted.asc"\r\n' +
    '\r\n';
  return {
    innerHead: Buffer.from(inner, 'latin1'),
    outerHead: Buffer.concat([
      Buffer.from(extra, 'utf8'), // our own lines, given as text
      Buffer.from(outer, 'latin1'), // the original's lines: their bytes as received
    ]),
    tail: Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  };
}

/**
 * One OpenPGP message (binary) encrypted to the recipients and signed by the organisation: a byte array for bytes,
 * a stream for a stream. Throws GatewayError PGP_FAILED.
 */
async function encryptAndSign(
  input: Pick<PgpMimeInput, 'recipientKeys' | 'signingKey'>,
  binary: Uint8Array | ReadableStream<Uint8Array>,
): Promise<Uint8Array | ReadableStream<Uint8Array>> {
  try {
    const message = await openpgp.createMessage({ binary, format: 'binary' });
    // The declared result type names web-stream types that type-aware lint cannot resolve: say what it is.
    return (await openpgp.encrypt({
      message,
      encryptionKeys: input.recipientKeys.map((k) => k.key),
      signingKeys: input.signingKey.privateKey,
      format: 'binary',
    })) as Uint8Array | ReadableStream<Uint8Array>;
  } catch (err) {
    throw new GatewayError('PGP_FAILED', 'OpenPGP encryption failed', { cause: err });
  }
}

/** Builds the RFC 3156 multipart/encrypted message for one envelope. Throws GatewayError PGP_FAILED. */
export async function buildPgpMime(input: PgpMimeInput): Promise<Buffer> {
  const { head, body } = splitMessage(input.raw);
  const frame = pgpMimeFrame(head, input);
  const payload = Buffer.concat([frame.innerHead, body]);

  const encrypted = (await encryptAndSign(input, payload)) as Uint8Array;
  return armoured(encrypted, frame.outerHead, frame.tail);
}

export type PgpMimeStreamInput = Omit<PgpMimeInput, 'raw'> & {
  /** The original RFC 5322 message, read as it comes: only its header is ever held whole. */
  source: AsyncIterable<Uint8Array>;
};

/**
 * The original's header block and what follows it: chunks are gathered only until the header ends (the same
 * split as splitMessage: the first CRLF CRLF, or a leading CRLF; a message with neither is held whole, as the
 * buffer path would).
 */
async function readHead(
  it: AsyncIterator<Uint8Array>,
): Promise<{ head: string; body: Buffer; ended: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let searched = 0;
  for (;;) {
    const next = await it.next();
    if (next.done) {
      const { head, body } = splitMessage(Buffer.concat(chunks, size));
      return { head, body, ended: true };
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    chunks.push(chunk);
    size += chunk.length;
    const all = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
    chunks.length = 0;
    chunks.push(all);
    if (all.length >= 2 && all[0] === 0x0d && all[1] === 0x0a) return { ...splitMessage(all), ended: false };
    const end = all.indexOf('\r\n\r\n', Math.max(0, searched - 3));
    searched = all.length;
    if (end >= 0) {
      return { head: all.toString('latin1', 0, end + 2), body: all.subarray(end + 4), ended: false };
    }
  }
}

/**
 * ASCII armour as the ciphertext comes (the same bytes as `armour`): whole 48-byte groups become 64-column
 * lines at once, the remainder waits for the next chunk; the CRC-24 runs over everything.
 */
class Armourer {
  private crc = 0xb704ce00 | 0;
  private held: Buffer = Buffer.alloc(0);

  head(): Buffer {
    // A copy: what is yielded may be moved to another thread.
    return Buffer.from(ARMOUR_HEAD);
  }

  push(data: Uint8Array): Buffer {
    this.crc = crc24Update(this.crc, data);
    const all = this.held.length === 0 ? Buffer.from(data) : Buffer.concat([this.held, data]);
    const whole = all.length - (all.length % 48);
    this.held = Buffer.from(all.subarray(whole));
    return lines(all.subarray(0, whole));
  }

  end(): Buffer {
    const crc = (this.crc >>> 8) & 0xffffff;
    return Buffer.concat([lines(this.held), armourTail(crc)]);
  }
}

const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');
/**
 * The two base64 characters of every 12-bit value, as one 16-bit unit each: written through a byte view, so
 * the units hold the characters in memory order whatever the machine's byte order.
 */
const BASE64_PAIRS = (() => {
  const pairs = new Uint16Array(4096);
  const bytes = new Uint8Array(pairs.buffer);
  for (let v = 0; v < 4096; v++) {
    bytes[2 * v] = BASE64[v >> 6]!;
    bytes[2 * v + 1] = BASE64[v & 63]!;
  }
  return pairs;
})();
const CRLF_UNIT = new Uint16Array(Uint8Array.of(0x0d, 0x0a).buffer)[0]!;

/** The length of the base64 of `n` bytes in 64-column CRLF lines (the last one shorter; none for none). */
function linesLength(n: number): number {
  const chars = 4 * Math.ceil(n / 3);
  return chars + 2 * Math.ceil(chars / 64);
}

/**
 * Writes the base64 of `src` in 64-column CRLF lines into `dst` from `pos` (an even offset of the memory
 * underneath) and returns where it ended: exactly `pos + linesLength(src.length)`. Whole lines (48 bytes in)
 * go two characters per store from a table, straight into the output: Node's own base64 makes a string that
 * must then be copied and cut into lines, ~1 ms of the PGP thread for a 100 KB message against ~0.2 this way.
 */
function writeLines(src: Uint8Array, dst: Uint8Array, pos: number): number {
  const n = src.length;
  const whole = n - (n % 48);
  const units = new Uint16Array(dst.buffer, dst.byteOffset + pos, (whole / 48) * 33);
  let u = 0;
  let i = 0;
  while (i < whole) {
    for (const end = i + 48; i < end; i += 3) {
      const b0 = src[i]!;
      const b1 = src[i + 1]!;
      const b2 = src[i + 2]!;
      units[u++] = BASE64_PAIRS[(b0 << 4) | (b1 >> 4)]!;
      units[u++] = BASE64_PAIRS[((b1 & 15) << 8) | b2]!;
    }
    units[u++] = CRLF_UNIT;
  }
  let p = pos + 2 * u;
  if (i < n) {
    // The last, shorter line: a byte at a time, with "=" padding.
    for (; i < n; i += 3) {
      const b0 = src[i]!;
      const b1 = i + 1 < n ? src[i + 1]! : 0;
      const b2 = i + 2 < n ? src[i + 2]! : 0;
      dst[p++] = BASE64[b0 >> 2]!;
      dst[p++] = BASE64[((b0 & 3) << 4) | (b1 >> 4)]!;
      dst[p++] = i + 1 < n ? BASE64[((b1 & 15) << 2) | (b2 >> 6)]! : 0x3d;
      dst[p++] = i + 2 < n ? BASE64[b2 & 63]! : 0x3d;
    }
    dst[p++] = 0x0d;
    dst[p++] = 0x0a;
  }
  // Every byte of the span is written, so nothing of a buffer allocated unfilled can show through.
  if (p !== pos + linesLength(n)) throw new GatewayError('PGP_FAILED', 'armour length mismatch');
  return p;
}

/** The base64 of `data` in 64-column CRLF lines, in a buffer of its own. */
function lines(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(linesLength(data.length));
  writeLines(data, out, 0);
  return out;
}

/**
 * buildPgpMime for a message read as a stream: the same format, made as it goes. The header is read from the
 * start of `source`, the body bytes follow it into OpenPGP untouched, and the PGP/MIME framing is yielded
 * around the armour as the ciphertext comes. Only a source that ended cleanly gives a complete result; an
 * error anywhere (source, OpenPGP) is thrown from the generator (PGP_FAILED for OpenPGP's own), so a caller
 * writing what it yields must throw the partial result away then.
 */
export async function* buildPgpMimeStream(input: PgpMimeStreamInput): AsyncGenerator<Buffer> {
  const it = input.source[Symbol.asyncIterator]();
  let sourceDone = false;
  let sourceError: Error | undefined;
  try {
    const { head, body, ended } = await readHead(it).catch((err: unknown) => {
      sourceDone = true;
      throw err;
    });
    sourceDone = ended;
    const frame = pgpMimeFrame(head, input);
    let first: Buffer | null = Buffer.concat([frame.innerHead, body]);
    const plain = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (first) {
          controller.enqueue(first);
          first = null;
          return;
        }
        if (sourceDone) return controller.close();
        let next: IteratorResult<Uint8Array>;
        try {
          next = await it.next();
        } catch (err) {
          sourceDone = true; // a failed iterator is finished: nothing to return
          sourceError = err instanceof Error ? err : new Error(String(err));
          throw err;
        }
        if (next.done) {
          sourceDone = true;
          controller.close();
        } else controller.enqueue(next.value);
      },
      async cancel() {
        sourceDone = true;
        await it.return?.();
      },
    });
    const encrypted = (await encryptAndSign(input, plain)) as ReadableStream<Uint8Array>;
    yield frame.outerHead;
    const armourer = new Armourer();
    yield armourer.head();
    const reader = encrypted.getReader();
    try {
      for (;;) {
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch (err) {
          // The source's own error (a spool failing its tag) is passed on as it is: it decides the outcome.
          if (sourceError !== undefined) throw sourceError;
          throw new GatewayError('PGP_FAILED', 'OpenPGP encryption failed', { cause: err });
        }
        if (next.done) break;
        const out = armourer.push(next.value);
        if (out.length > 0) yield out;
      }
    } finally {
      reader.releaseLock();
    }
    if (!sourceDone || sourceError !== undefined)
      throw new GatewayError('PGP_FAILED', 'OpenPGP ended before the message');
    yield Buffer.concat([armourer.end(), frame.tail]);
  } finally {
    if (!sourceDone) await it.return?.();
  }
}

// ---- Detection of mail that is already encrypted -------------------------------------------------------

interface ContentType {
  type: string;
  params: Map<string, string>;
}

function parseContentType(value: string | undefined): ContentType | null {
  if (!value) return null;
  const m = /^\s*([^\s;/]+\/[^\s;]+)\s*(.*)$/s.exec(value);
  if (!m) return null;
  const params = new Map<string, string>();
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))/g;
  for (const p of m[2]!.matchAll(re))
    params.set(p[1]!.toLowerCase(), (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1'));
  return { type: m[1]!.toLowerCase(), params };
}

function decodeQuotedPrintable(text: string): Buffer {
  const s = text.replace(/=\r?\n/g, '');
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x3d && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c & 0xff);
  }
  return Buffer.from(out);
}

function decodeBody(body: Buffer, cte: string | undefined): Buffer {
  const enc = (cte ?? '').trim().toLowerCase();
  if (enc === 'base64') return Buffer.from(body.toString('latin1'), 'base64');
  if (enc === 'quoted-printable') return decodeQuotedPrintable(body.toString('latin1'));
  return body;
}

/**
 * True when the armour holds an encrypted OpenPGP message: one or more session-key packets (PKESK, SKESK;
 * marker packets allowed) followed by an encrypted data packet. A label alone is not enough: clear text
 * dressed up as "encrypted" must not pass through unprotected.
 */
function armourIsEncrypted(text: string): boolean {
  // Plain index scanning, no backtracking regex: this runs on whatever a sender puts in a message.
  const begin = text.indexOf('-----BEGIN PGP MESSAGE-----');
  const end = text.indexOf('-----END PGP MESSAGE-----', begin + 1);
  if (begin < 0 || end < 0) return false;
  const lines = text.slice(begin, end).split(/\r?\n/);
  const blank = lines.findIndex((l, i) => i > 0 && l.trim() === ''); // armour headers end at a blank line
  if (blank < 0) return false;
  const body = lines
    .slice(blank + 1)
    .filter((l) => !/^=[A-Za-z0-9+/]{4}\s*$/.test(l)) // the CRC-24 line
    .join('')
    .replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) return false;
  return packetsAreEncrypted(Buffer.from(body, 'base64'));
}

function packetsAreEncrypted(data: Buffer): boolean {
  let i = 0;
  let sessionKeys = 0;
  while (i < data.length) {
    const b = data[i]!;
    if (!(b & 0x80)) return false;
    let tag: number;
    let len: number;
    let hdr: number;
    if (b & 0x40) {
      tag = b & 0x3f;
      const l0 = data[i + 1];
      if (l0 === undefined) return false;
      if (l0 < 192) [len, hdr] = [l0, 2];
      else if (l0 < 224) [len, hdr] = [((l0 - 192) << 8) + (data[i + 2] ?? 0) + 192, 3];
      else if (l0 === 255) [len, hdr] = [data.readUInt32BE(Math.min(i + 2, data.length - 4)), 6];
      else [len, hdr] = [-1, 2]; // partial length: only data packets may use it
    } else {
      tag = (b >> 2) & 0x0f;
      const lt = b & 3;
      if (lt === 0) [len, hdr] = [data[i + 1] ?? 0, 2];
      else if (lt === 1) [len, hdr] = [data.length >= i + 3 ? data.readUInt16BE(i + 1) : 0, 3];
      else if (lt === 2) [len, hdr] = [data.length >= i + 5 ? data.readUInt32BE(i + 1) : 0, 5];
      else [len, hdr] = [-1, 1];
    }
    if (tag === 9 || tag === 18 || tag === 20) return sessionKeys > 0;
    if (tag !== 1 && tag !== 3 && tag !== 10) return false;
    if (tag !== 10) sessionKeys++;
    if (len < 0) return false;
    i += hdr + len;
  }
  return false;
}

// DER of the CMS content types (RFC 5652 envelopedData 1.2.840.113549.1.7.3; RFC 5083 authEnvelopedData).
const ENVELOPED_OIDS = [
  Buffer.from('06092a864886f70d010703', 'hex'),
  Buffer.from('060b2a864886f70d0109100117', 'hex'),
];

function cmsIsEnveloped(der: Buffer): boolean {
  if (der[0] !== 0x30 || der.length < 4) return false;
  const l = der[1]!;
  const off = l < 0x80 ? 2 : 2 + (l & 0x7f);
  return ENVELOPED_OIDS.some((oid) => der.subarray(off, off + oid.length).equals(oid));
}

/** Splits a multipart body into its parts (each with headers and body), by the boundary. */
function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const text = body.toString('latin1');
  const delim = `--${boundary}`;
  const parts: Buffer[] = [];
  const lines = text.split(/\r?\n/);
  let current: string[] | null = null;
  for (const line of lines) {
    const trimmed = line.trimEnd();
    if (trimmed === `${delim}--`) {
      if (current) parts.push(Buffer.from(current.join('\r\n'), 'latin1'));
      return parts;
    }
    if (trimmed === delim) {
      if (current) parts.push(Buffer.from(current.join('\r\n'), 'latin1'));
      current = [];
      continue;
    }
    current?.push(line);
  }
  if (current) parts.push(Buffer.from(current.join('\r\n'), 'latin1'));
  return parts;
}

function entity(raw: Buffer): { fields: Field[]; body: Buffer; get(name: string): string | undefined } {
  const { head, body } = splitMessage(raw);
  const fields = parseFields(head);
  return {
    fields,
    body,
    get: (name) => {
      const f = fields.find((x) => x.name === name);
      return f ? fieldValue(f) : undefined;
    },
  };
}

/** Top-level types detectEncrypted looks into; any other type is never end-to-end encrypted for it. */
const MAYBE_ENCRYPTED = new Set([
  'multipart/encrypted',
  'application/pkcs7-mime',
  'application/x-pkcs7-mime',
  'text/plain',
]);

/**
 * From the first bytes of a message: false when detectEncrypted would surely return null, so a large message
 * need not be read whole to know: its top-level type is none it looks into, or it is text whose body does not
 * open with an armour block (inline PGP is a body that is one block and nothing else). True when unsure: the
 * header does not end within `prefix`, too little of the body is in it, or its transfer encoding is not read
 * here. (A false where detectEncrypted would say encrypted only means the message is protected once more.)
 */
export function mayBeEncrypted(prefix: Buffer): boolean {
  if (prefix.indexOf('\r\n\r\n') === -1) return true;
  const top = entity(prefix);
  const ct = parseContentType(top.get('content-type'));
  if (ct !== null && !MAYBE_ENCRYPTED.has(ct.type)) return false;
  if (ct !== null && ct.type !== 'text/plain') return true;
  const start = textStart(top.body, top.get('content-transfer-encoding'));
  return start === null || start.length < ARMOUR_BEGIN.length || start.startsWith(ARMOUR_BEGIN);
}

const ARMOUR_BEGIN = '-----BEGIN PGP MESSAGE-----';

/**
 * The first characters of a text body (perhaps cut short) after its leading blanks, decoded as detectEncrypted
 * decodes it (latin1, trimmed as String.trim does); null for a transfer encoding not read here.
 */
function textStart(body: Buffer, cte: string | undefined): string | null {
  const enc = (cte ?? '').trim().toLowerCase();
  const head = body.subarray(0, 4096);
  if (enc === 'base64') {
    // Whole groups of four only: the body may be cut anywhere.
    const chars = head.toString('latin1').replace(/[^A-Za-z0-9+/]/g, '');
    return Buffer.from(chars.slice(0, chars.length - (chars.length % 4)), 'base64')
      .toString('latin1')
      .trimStart();
  }
  if (enc === 'quoted-printable') return null;
  return head.toString('latin1').trimStart();
}

const PGP_BEGIN = Buffer.from('-----BEGIN PGP MESSAGE-----');
const PGP_END = Buffer.from('-----END PGP MESSAGE-----');

/** Bytes that String.prototype.trim removes from a latin1 string: tab to carriage return, space, no-break space. */
function isTrimmedByte(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0xa0;
}

/**
 * Whether a message is already encrypted end to end, so it may pass through as it is:
 * - `pgp-mime`: top-level multipart/encrypted, protocol application/pgp-encrypted, "Version: 1" then an
 *   encrypted OpenPGP message;
 * - `pgp-inline`: a single text part whose whole body is one encrypted `PGP MESSAGE` armour block;
 * - `smime`: top-level application/(x-)pkcs7-mime whose CMS content is enveloped or authEnveloped data.
 * The payload is checked, not only the label. Signed-only mail, a message that merely quotes an armour
 * line, inline PGP with clear attachments or encrypted parts nested in a multipart/mixed are not
 * encrypted (null): they get protected again, which costs nothing but a second layer.
 */
export function detectEncrypted(raw: Buffer): 'pgp-mime' | 'pgp-inline' | 'smime' | null {
  const top = entity(raw);
  const ct = parseContentType(top.get('content-type')) ?? {
    type: 'text/plain',
    params: new Map<string, string>(),
  };
  if (ct.type === 'multipart/encrypted') {
    const boundary = ct.params.get('boundary');
    if (ct.params.get('protocol')?.toLowerCase() !== 'application/pgp-encrypted' || !boundary) return null;
    const parts = splitMultipart(top.body, boundary).map(entity);
    const [control, data] = parts;
    if (parts.length !== 2 || !control || !data) return null;
    if (parseContentType(control.get('content-type'))?.type !== 'application/pgp-encrypted') return null;
    if (!/^\s*Version:\s*1\s*$/m.test(control.body.toString('latin1'))) return null;
    if (parseContentType(data.get('content-type'))?.type !== 'application/octet-stream') return null;
    const text = decodeBody(data.body, data.get('content-transfer-encoding')).toString('latin1');
    return armourIsEncrypted(text) ? 'pgp-mime' : null;
  }
  if (ct.type === 'application/pkcs7-mime' || ct.type === 'application/x-pkcs7-mime') {
    const smimeType = ct.params.get('smime-type')?.toLowerCase();
    if (smimeType && smimeType !== 'enveloped-data' && smimeType !== 'authenveloped-data') return null;
    return cmsIsEnveloped(decodeBody(top.body, top.get('content-transfer-encoding'))) ? 'smime' : null;
  }
  if (ct.type === 'text/plain') {
    // The armour alone, blanks around it allowed (as String.prototype.trim reads latin1): tested on the bytes, so that
    // the common case, a plain message, never becomes a string as large as itself.
    const body = decodeBody(top.body, top.get('content-transfer-encoding'));
    let start = 0;
    let end = body.length;
    while (start < end && isTrimmedByte(body[start]!)) start++;
    while (end > start && isTrimmedByte(body[end - 1]!)) end--;
    if (
      end - start < PGP_BEGIN.length || // (the longer of the two lines)
      body.compare(PGP_BEGIN, 0, PGP_BEGIN.length, start, start + PGP_BEGIN.length) !== 0 ||
      body.compare(PGP_END, 0, PGP_END.length, end - PGP_END.length, end) !== 0
    )
      return null;
    const text = body.toString('latin1', start, end);
    if (text.indexOf('-----BEGIN PGP MESSAGE-----', 1) >= 0) return null; // one block, nothing around it
    return armourIsEncrypted(text) ? 'pgp-inline' : null;
  }
  return null;
}
