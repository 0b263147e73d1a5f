// Turns a parsed message into the text parts the DLP analyzer scans, and flags what cannot be read as text
// (images, encrypted, corrupt, too large or too deep), so the rules can fail closed on it.
// Never puts a file name in a part id or a flag (names can hold PHI), never trusts a declared size, never writes to disk.
import { convert as htmlToText, type HtmlToTextOptions } from 'html-to-text';
import { simpleParser, type Attachment, type ParsedMail, type StructuredHeader } from 'mailparser';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';
import { fromBufferPromise, type Entry, type ZipFile } from 'yauzl';
import type { TextPart } from '../dlp/types.js';

export interface ExtractLimits {
  /** Characters of text handed to the analyzer for one message, all parts together. Past it, parts are cut and flagged. */
  maxTotalText: number;
  /**
   * How deep containers (zip archives, attached messages, winmail.dat, files inside a PDF) may nest. An attachment of
   * the message is at depth 0, a member of a zip attached to it at depth 1 …; a container whose members would lie
   * deeper than this is flagged 'too-deep' instead of opened.
   */
  maxDepth: number;
  /**
   * Archive members read for one message (zip members, and the XML parts of DOCX/XLSX/PPTX/ODF files); also the most
   * entries one archive may list. Past either, the archive is flagged 'too-many-members'.
   */
  maxMembers: number;
  /**
   * Bytes decompressed for one message: zip members (declared sizes checked before reading, actual bytes counted
   * while reading) and the Flate streams of PDFs (inflated with a cap before PDF.js sees them).
   */
  maxDecompressedBytes: number;
  /** Largest attachment, archive member or HTML body (bytes) that is parsed; a larger one is flagged 'too-large'. */
  maxAttachmentBytes: number;
  /** Pages read from one PDF; a longer one is read up to here and flagged 'too-large'. */
  maxPdfPages: number;
}

export const DEFAULT_EXTRACT_LIMITS: Readonly<ExtractLimits> = Object.freeze({
  maxTotalText: 20 * 1024 * 1024,
  maxDepth: 3,
  maxMembers: 1000,
  maxDecompressedBytes: 100 * 1024 * 1024,
  maxAttachmentBytes: 25 * 1024 * 1024,
  maxPdfPages: 2000,
});

/** Why something could not be scanned as text. Stable codes: they end up in rule explanations and audit records. */
export type FlagReason =
  /** An image attachment (OCR and redaction handle it later). */
  | 'image'
  /** A PDF page with (almost) no text: likely a scan or fax. */
  | 'scanned-pdf'
  /** A DOCX/XLSX/PPTX/ODF file with pictures in it. */
  | 'embedded-images'
  | 'encrypted-pdf'
  /** A password-protected Office file (an encrypted OOXML package inside a compound file). */
  | 'encrypted-office'
  /** PGP or S/MIME encrypted content. */
  | 'encrypted'
  | 'password-zip'
  | 'corrupt'
  | 'too-large'
  | 'too-deep'
  | 'too-many-members'
  /** A binary format nothing here reads (legacy .doc/.xls, audio, video, 7z, rar …). */
  | 'unsupported';

export interface AttachmentFlag {
  /** The part id, as in TextPart ids: 'attachment:2', 'attachment:2/3' … never a file name. */
  part: string;
  kind: 'image' | 'unreadable';
  reason: FlagReason;
}

export interface Extracted {
  parts: TextPart[];
  flags: AttachmentFlag[];
}

/** The same parser settings as the pipeline's parse stage, for messages attached to messages. */
const PARSE_OPTIONS = {
  skipImageLinks: true,
  skipTextLinks: true,
  maxHtmlLengthToParse: 10 * 1024 * 1024,
} as const;

// ---------------------------------------------------------------------------------------------------------
// Recognising what an attachment is: bytes first (a name or a type can lie), then the declared type and name.

type Format =
  | 'text'
  | 'html'
  | 'rtf'
  | 'pdf'
  | 'zip'
  | 'tnef'
  | 'message'
  | 'cfb'
  | 'image'
  | 'encrypted'
  | 'signature'
  | 'unknown';

const TEXT_TYPES = new Set([
  'application/json',
  'application/xml',
  'application/x-ndjson',
  'application/ndjson',
  'application/csv',
  'application/hl7-v2',
  'application/x-hl7',
  'application/edi-x12',
  'application/edi-consent',
  'application/edifact',
  'application/javascript',
  'application/x-yaml',
  'application/yaml',
  'application/sql',
  'application/x-sh',
  'application/pgp-keys',
]);
const TEXT_EXTENSIONS = new Set([
  'txt',
  'text',
  'csv',
  'tsv',
  'tab',
  'json',
  'ndjson',
  'xml',
  'ics',
  'ical',
  'vcf',
  'vcard',
  'hl7',
  'hl7v2',
  'edi',
  'x12',
  '837',
  '835',
  '270',
  '271',
  'md',
  'log',
  'ccd',
  'cda',
  'ccda',
  'yaml',
  'yml',
  'sql',
  'ini',
  'cfg',
  'conf',
  'svg',
  'eml.txt',
]);
const IMAGE_EXTENSIONS = new Set([
  'png',
  'jpg',
  'jpeg',
  'jpe',
  'gif',
  'bmp',
  'tif',
  'tiff',
  'webp',
  'heic',
  'heif',
  'jp2',
  'ico',
  'dcm',
  'dicom',
]);
const ZIP_TYPES = new Set([
  'application/zip',
  'application/x-zip-compressed',
  'application/x-zip',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  'application/vnd.oasis.opendocument.text',
  'application/vnd.oasis.opendocument.spreadsheet',
]);
const ZIP_EXTENSIONS = new Set(['zip', 'docx', 'docm', 'xlsx', 'xlsm', 'pptx', 'odt', 'ods', 'odp']);
const SIGNATURE_TYPES = new Set([
  'application/pkcs7-signature',
  'application/x-pkcs7-signature',
  'application/pgp-signature',
]);
const ENCRYPTED_TYPES = new Set([
  'application/pkcs7-mime',
  'application/x-pkcs7-mime',
  'application/pgp-encrypted',
]);

function startsWith(buf: Buffer, bytes: readonly number[], at = 0): boolean {
  if (buf.length < at + bytes.length) return false;
  return bytes.every((b, i) => buf[at + i] === b);
}

function sniff(buf: Buffer): Format | null {
  // PDF readers accept the header anywhere in the first kilobyte.
  if (buf.subarray(0, 1024).includes('%PDF-')) return 'pdf';
  if (startsWith(buf, [0x50, 0x4b, 0x03, 0x04]) || startsWith(buf, [0x50, 0x4b, 0x05, 0x06])) return 'zip';
  if (startsWith(buf, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1])) return 'cfb';
  if (startsWith(buf, [0x78, 0x9f, 0x3e, 0x22])) return 'tnef';
  if (
    startsWith(buf, [0x89, 0x50, 0x4e, 0x47]) ||
    startsWith(buf, [0xff, 0xd8, 0xff]) ||
    startsWith(buf, [0x47, 0x49, 0x46, 0x38]) ||
    startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) ||
    startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a]) ||
    startsWith(buf, [0x42, 0x4d]) ||
    (startsWith(buf, [0x52, 0x49, 0x46, 0x46]) && startsWith(buf, [0x57, 0x45, 0x42, 0x50], 8)) ||
    (startsWith(buf, [0x66, 0x74, 0x79, 0x70], 4) &&
      /^(heic|heix|mif1|avif)/.test(buf.toString('latin1', 8, 12))) ||
    startsWith(buf, [0x44, 0x49, 0x43, 0x4d], 128)
  ) {
    return 'image';
  }
  // gzip, 7z, rar, bzip2, xz: archives nothing here opens.
  if (
    startsWith(buf, [0x1f, 0x8b]) ||
    startsWith(buf, [0x37, 0x7a, 0xbc, 0xaf]) ||
    startsWith(buf, [0x52, 0x61, 0x72, 0x21]) ||
    startsWith(buf, [0x42, 0x5a, 0x68]) ||
    startsWith(buf, [0xfd, 0x37, 0x7a, 0x58])
  ) {
    return 'unknown';
  }
  return null;
}

/** Text if the first 8 KB hold no NUL and hardly any other control characters (bytes above 0x7f count as text). */
function looksLikeText(buf: Buffer): boolean {
  if (startsWith(buf, [0xff, 0xfe]) || startsWith(buf, [0xfe, 0xff])) return true;
  const sample = buf.subarray(0, 8192);
  let control = 0;
  for (const b of sample) {
    if (b === 0) return false;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b) control++;
  }
  return control <= sample.length / 100;
}

function extensionOf(name: string | undefined): string {
  const base = (name ?? '').toLowerCase().trim();
  const dot = base.lastIndexOf('.');
  return dot === -1 ? '' : base.slice(dot + 1);
}

/** Bytes at the start of an attachment that decide its format: classify reads no further than this. */
export const CLASSIFY_BYTES = 8192;

/** Formats whose reading needs every byte; the others are decided by their first CLASSIFY_BYTES alone. */
const READ_WHOLE: ReadonlySet<Format> = new Set([
  'text',
  'html',
  'rtf',
  'pdf',
  'zip',
  'tnef',
  'message',
  'cfb',
]);

/**
 * Whether scanning an attachment needs all its bytes, from its first CLASSIFY_BYTES (or all of it when
 * shorter): false for an image, an encrypted part, a signature or a binary nothing here reads.
 */
export function needsWholeContent(head: Buffer, contentType: string, filename: string | undefined): boolean {
  return READ_WHOLE.has(classify(head, contentType, filename));
}

/** Attachments whose body the scan's parse counted instead of keeping (bounded-parse.ts): their true size. */
const drainedSizes = new WeakMap<Attachment, number>();

/** Marks `a` as kept only in part: `a.content` holds its first bytes, `size` is how large it really is. */
export function setDrainedSize(a: Attachment, size: number): void {
  drainedSizes.set(a, size);
}

function classify(buf: Buffer, contentType: string, filename: string | undefined): Format {
  const sniffed = sniff(buf);
  if (sniffed) return sniffed;
  const ct = contentType.toLowerCase().split(';')[0]!.trim();
  const ext = extensionOf(filename);
  if (SIGNATURE_TYPES.has(ct) || ext === 'p7s') return 'signature';
  if (ENCRYPTED_TYPES.has(ct) || ext === 'p7m' || ext === 'pgp' || ext === 'gpg') return 'encrypted';
  if (ct === 'message/rfc822' || ct === 'message/global' || ext === 'eml') return 'message';
  if (
    ct === 'application/ms-tnef' ||
    ct === 'application/vnd.ms-tnef' ||
    (filename ?? '').toLowerCase() === 'winmail.dat'
  )
    return 'tnef';
  if (ct === 'image/svg+xml' || ext === 'svg') return 'text';
  if (ct.startsWith('image/') || IMAGE_EXTENSIONS.has(ext)) return 'image';
  if (ct === 'application/pdf' || ext === 'pdf') return 'pdf';
  if (ZIP_TYPES.has(ct) || ZIP_EXTENSIONS.has(ext)) return 'zip';
  if (
    ct === 'text/html' ||
    ct === 'application/xhtml+xml' ||
    ext === 'html' ||
    ext === 'htm' ||
    ext === 'xhtml'
  )
    return 'html';
  if (ct === 'text/rtf' || ct === 'application/rtf' || ext === 'rtf') return 'rtf';
  if (
    ct.startsWith('text/') ||
    ct.startsWith('message/') ||
    TEXT_TYPES.has(ct) ||
    ct.endsWith('+xml') ||
    ct.endsWith('+json') ||
    TEXT_EXTENSIONS.has(ext)
  )
    return 'text';
  if (looksLikeText(buf)) return 'text';
  return 'unknown';
}

// ---------------------------------------------------------------------------------------------------------
// Text decoding.

function decoderFor(label: string): TextDecoder | null {
  try {
    return new TextDecoder(label);
  } catch {
    return null;
  }
}

/** Decodes bytes as text: a BOM wins, then the declared charset, then UTF-8, then Windows-1252 when UTF-8 does not fit. */
function decodeText(buf: Buffer, charset?: string): string {
  if (startsWith(buf, [0xef, 0xbb, 0xbf])) return new TextDecoder('utf-8').decode(buf.subarray(3));
  if (startsWith(buf, [0xff, 0xfe])) return new TextDecoder('utf-16le').decode(buf.subarray(2));
  if (startsWith(buf, [0xfe, 0xff])) return new TextDecoder('utf-16be').decode(buf.subarray(2));
  const declared = charset ? decoderFor(charset.trim()) : null;
  if (declared) return declared.decode(buf);
  const utf8 = new TextDecoder('utf-8').decode(buf);
  let bad = 0;
  for (let i = utf8.indexOf('\ufffd'); i !== -1 && bad <= 8; i = utf8.indexOf('\ufffd', i + 1)) bad++;
  return bad > 8 ? new TextDecoder('windows-1252').decode(buf) : utf8;
}

const ENTITY = /&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|lt|gt|amp|quot|apos|nbsp);/g;
const NAMED_ENTITIES: Record<string, string> = {
  lt: '<',
  gt: '>',
  amp: '&',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
};

function decodeEntities(text: string): string {
  return text.replace(ENTITY, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff)
        ? String.fromCodePoint(code)
        : whole;
    }
    return NAMED_ENTITIES[ref] ?? whole;
  });
}

/** Removes markup, keeping the text between tags. `<[^<>]*>` stops at the next '<', so this stays linear. */
function stripTags(xml: string, lineBreakTags?: RegExp): string {
  const broken = lineBreakTags ? xml.replace(lineBreakTags, '\n') : xml;
  return decodeEntities(broken.replace(/<[^<>]*>/g, ''));
}

const HTML_OPTIONS: HtmlToTextOptions = {
  // Wrapping would split HL7 segments and other lines the recognizers read whole.
  wordwrap: false,
  selectors: [
    { selector: 'img', format: 'altText' },
    {
      selector: 'table',
      format: 'dataTable',
      options: { uppercaseHeaderCells: false, maxColumnWidth: 10_000 },
    },
  ],
  formatters: {
    // The alt text may describe the picture; the source (often a data: URI) is noise.
    altText: (elem, _walk, builder) => {
      const alt = (elem as { attribs?: Record<string, string> }).attribs?.alt;
      if (alt) builder.addInline(alt);
    },
  },
};

/** Elements that never hold others, or that HTML closes by itself: they do not count towards nesting. */
const HTML_FLAT = new Set([
  'br',
  'img',
  'hr',
  'meta',
  'link',
  'input',
  'col',
  'area',
  'base',
  'wbr',
  'source',
  'track',
  'embed',
  'param',
  'p',
  'li',
  'td',
  'th',
  'tr',
  'option',
  'dt',
  'dd',
]);
const HTML_TAG = /<(\/?)([a-zA-Z][a-zA-Z0-9-]{0,30})[^<>]*>/g;
/** Past this nesting the converter's recursion gets slow and then overflows the stack. */
const HTML_MAX_NESTING = 1000;

function htmlNesting(html: string): number {
  let depth = 0;
  let max = 0;
  HTML_TAG.lastIndex = 0;
  for (let m = HTML_TAG.exec(html); m; m = HTML_TAG.exec(html)) {
    if (HTML_FLAT.has(m[2]!.toLowerCase()) || m[0].endsWith('/>')) continue;
    depth = m[1] ? Math.max(0, depth - 1) : depth + 1;
    if (depth > max) max = depth;
  }
  return max;
}

function htmlText(html: string): string {
  if (htmlNesting(html) <= HTML_MAX_NESTING) {
    try {
      return htmlToText(html, { ...HTML_OPTIONS, limits: { maxInputLength: html.length + 1 } });
    } catch {
      // Fall through: the text is still scanned, only less tidily.
    }
  }
  // Hostile or broken nesting: strip the tags instead of walking a tree; no text is lost to a depth limit.
  return stripTags(
    html.replace(/<(script|style)[^<>]*>[^<]*<\/\1>/gi, ''),
    /<\/(p|div|tr|li|h[1-6])>|<br[^<>]*>/gi,
  );
}

// ---------------------------------------------------------------------------------------------------------
// RTF (TNEF bodies and .rtf attachments): compressed RTF (MS-OXRTFCP) and a plain-text reading of RTF.

const RTF_PREBUF =
  '{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx';

/** Decompresses PR_RTF_COMPRESSED. Output is capped at `max` bytes whatever the header claims. */
function decompressRtf(buf: Buffer, max: number): Buffer {
  if (buf.length < 16) throw new Error('short compressed RTF');
  const rawSize = buf.readUInt32LE(4);
  const type = buf.readUInt32LE(8);
  // Each 2-byte reference yields at most 17 bytes: a header claiming more than that is not believed.
  const limit = Math.min(rawSize, max, buf.length * 9);
  if (type === 0x414c454d) return buf.subarray(16, 16 + limit); // 'MELA': stored uncompressed
  if (type !== 0x75465a4c) throw new Error('unknown RTF compression'); // 'LZFu'
  const dict = Buffer.alloc(4096);
  dict.write(RTF_PREBUF, 'latin1');
  let write = RTF_PREBUF.length;
  const out = Buffer.alloc(limit);
  let o = 0;
  let p = 16;
  while (p < buf.length && o < limit) {
    const control = buf[p++]!;
    for (let bit = 0; bit < 8 && o < limit; bit++) {
      if ((control & (1 << bit)) === 0) {
        if (p >= buf.length) return out.subarray(0, o);
        const c = buf[p++]!;
        out[o++] = c;
        dict[write] = c;
        write = (write + 1) & 4095;
        continue;
      }
      if (p + 1 >= buf.length) return out.subarray(0, o);
      const word = (buf[p]! << 8) | buf[p + 1]!;
      p += 2;
      let offset = word >> 4;
      const length = (word & 15) + 2;
      if (offset === write) return out.subarray(0, o); // the end marker
      for (let i = 0; i < length && o < limit; i++) {
        const c = dict[offset]!;
        out[o++] = c;
        dict[write] = c;
        write = (write + 1) & 4095;
        offset = (offset + 1) & 4095;
      }
    }
  }
  return out.subarray(0, o);
}

/** Destinations whose content is not document text. */
const RTF_SKIP = new Set([
  'fonttbl',
  'colortbl',
  'stylesheet',
  'info',
  'pict',
  'object',
  'objdata',
  'themedata',
  'colorschememapping',
  'datastore',
  'latentstyles',
  'listtable',
  'listoverridetable',
  'rsidtbl',
  'generator',
  'xmlnstbl',
  'mmathPr',
  'fldinst',
  'filetbl',
  'revtbl',
  'pgdsctbl',
  'wgrffmtfilter',
  'fchars',
  'lchars',
  'bkmkstart',
  'bkmkend',
  'pntext',
  'pntxta',
  'pntxtb',
  'htmltag',
]);
const RTF_WORD = /\\([a-zA-Z]{1,32})(-?\d{1,10})? ?/y;
const WIN1252 = new TextDecoder('windows-1252');

/** A plain-text reading of RTF: control words dropped, \par as line breaks, \uN and \'hh decoded. Linear, no recursion. */
function rtfToText(rtf: string): string {
  const out: string[] = [];
  const stack: Array<{ skip: boolean; uc: number }> = [];
  let skip = false;
  let uc = 1;
  let pendingSkip = 0;
  let i = 0;
  let groupStart = false;
  while (i < rtf.length) {
    const c = rtf[i]!;
    if (c === '{') {
      stack.push({ skip, uc });
      groupStart = true;
      i++;
      continue;
    }
    if (c === '}') {
      const prev = stack.pop();
      if (prev) ({ skip, uc } = prev);
      groupStart = false;
      i++;
      continue;
    }
    const atGroupStart = groupStart;
    groupStart = false;
    if (c === '\\') {
      const next = rtf[i + 1];
      if (next === '*') {
        // \* marks an optional destination: never text for a reader that does not know it.
        skip = true;
        i += 2;
        continue;
      }
      if (next === "'") {
        const code = parseInt(rtf.slice(i + 2, i + 4), 16);
        i += 4;
        if (pendingSkip > 0) pendingSkip--;
        else if (!skip && !Number.isNaN(code)) out.push(WIN1252.decode(Uint8Array.of(code)));
        continue;
      }
      if (next === '\\' || next === '{' || next === '}') {
        if (!skip) out.push(next);
        i += 2;
        continue;
      }
      if (next === '~') {
        if (!skip) out.push(' ');
        i += 2;
        continue;
      }
      RTF_WORD.lastIndex = i;
      const m = RTF_WORD.exec(rtf);
      if (!m) {
        i += 2;
        continue;
      }
      i = RTF_WORD.lastIndex;
      const word = m[1]!;
      const param = m[2] === undefined ? undefined : Number(m[2]);
      if (atGroupStart && RTF_SKIP.has(word)) skip = true;
      else if (word === 'uc' && param !== undefined) uc = Math.max(0, Math.min(param, 8));
      else if (word === 'u' && param !== undefined) {
        if (!skip) out.push(String.fromCharCode(param < 0 ? param + 65536 : param));
        pendingSkip = uc;
      } else if (
        !skip &&
        (word === 'par' || word === 'line' || word === 'row' || word === 'sect' || word === 'page')
      )
        out.push('\n');
      else if (!skip && (word === 'tab' || word === 'cell')) out.push('\t');
      continue;
    }
    if (c < ' ' && c !== '\t') {
      // Raw line breaks are formatting in RTF; other control characters (a trailing NUL) are not text.
      i++;
      continue;
    }
    if (pendingSkip > 0) pendingSkip--;
    else if (!skip) out.push(c);
    i++;
  }
  return out.join('');
}

// ---------------------------------------------------------------------------------------------------------
// TNEF (winmail.dat, MS-OXTNEF): the message body and the attachments Outlook wrapped into it.

class TnefError extends Error {}

interface TnefAttachment {
  name?: string;
  data?: Buffer;
  /** An attached Outlook item: its own TNEF stream. */
  embedded?: Buffer;
}

interface Tnef {
  subject?: string;
  text?: string;
  html?: string;
  rtf?: string;
  attachments: TnefAttachment[];
}

const TNEF_SIGNATURE = 0x223e9f78;
const UTF16 = new TextDecoder('utf-16le');
/** MAPI property types with a fixed size in a TNEF property stream (short and boolean are padded to 4). */
const MAPI_FIXED: Record<number, number> = {
  0x0001: 4,
  0x0002: 4,
  0x0003: 4,
  0x0004: 4,
  0x0005: 8,
  0x0006: 8,
  0x0007: 8,
  0x000a: 4,
  0x000b: 4,
  0x0014: 8,
  0x0040: 8,
  0x0048: 16,
};
const MAPI_VARIABLE = new Set([0x000d, 0x001e, 0x001f, 0x0102, 0x00fb, 0x00fd, 0x00fe]);

class Reader {
  constructor(
    readonly buf: Buffer,
    public pos = 0,
    readonly end = buf.length,
  ) {}
  need(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new TnefError('truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}

function string8(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return WIN1252.decode(nul === -1 ? buf : buf.subarray(0, nul));
}

function unicode(buf: Buffer): string {
  const text = UTF16.decode(buf);
  const nul = text.indexOf('\u0000');
  return nul === -1 ? text : text.slice(0, nul);
}

interface MapiProp {
  id: number;
  type: number;
  values: Buffer[];
}

function readMapiProps(data: Buffer): MapiProp[] {
  const r = new Reader(data);
  const count = r.u32();
  const props: MapiProp[] = [];
  for (let n = 0; n < count; n++) {
    const type = r.u16();
    const id = r.u16();
    if (id >= 0x8000) {
      r.bytes(16); // property set GUID
      const kind = r.u32();
      if (kind === 0) r.u32();
      else {
        const len = r.u32();
        r.bytes(len + ((4 - (len % 4)) % 4));
      }
    }
    const base = type & 0x0fff;
    const multi = (type & 0x1000) !== 0;
    const values: Buffer[] = [];
    if (MAPI_VARIABLE.has(base)) {
      const nvalues = r.u32();
      for (let v = 0; v < nvalues; v++) {
        const len = r.u32();
        values.push(r.bytes(len));
        r.bytes((4 - (len % 4)) % 4);
      }
    } else {
      const size = MAPI_FIXED[base];
      if (size === undefined) throw new TnefError('unknown property type');
      const nvalues = multi ? r.u32() : 1;
      for (let v = 0; v < nvalues; v++) values.push(r.bytes(size));
    }
    props.push({ id, type: base, values });
  }
  return props;
}

function propText(p: MapiProp): string | undefined {
  const v = p.values[0];
  if (!v) return undefined;
  if (p.type === 0x001f) return unicode(v);
  if (p.type === 0x001e) return string8(v);
  return undefined;
}

/**
 * Reads a TNEF stream. Throws TnefError on a malformed stream; `partial` then holds what was read before the damage,
 * so the caller can scan that and still flag the rest.
 */
function parseTnef(buf: Buffer, partial: Tnef, maxRtf: number): Tnef {
  const r = new Reader(buf);
  if (r.u32() !== TNEF_SIGNATURE) throw new TnefError('not TNEF');
  r.u16(); // legacy key
  let current: TnefAttachment | undefined;
  while (r.pos < r.end) {
    const level = r.u8();
    const attr = r.u32();
    const len = r.u32();
    const data = r.bytes(len);
    r.u16(); // checksum: damage shows up as parse errors or garbage text, both of which are handled
    const id = attr & 0xffff;
    if (level === 0x02 && id === 0x9002) {
      current = {};
      partial.attachments.push(current);
    } else if (level === 0x01 && id === 0x8004) partial.subject = string8(data);
    else if (level === 0x01 && id === 0x800c) partial.text = string8(data);
    else if (level === 0x02 && id === 0x8010 && current) current.name ??= string8(data);
    else if (level === 0x02 && id === 0x800f && current) current.data = data;
    else if (id === 0x9003 && level === 0x01) {
      for (const p of readMapiProps(data)) {
        const v = p.values[0];
        if (p.id === 0x0037) partial.subject = propText(p) ?? partial.subject;
        else if (p.id === 0x1000) partial.text = propText(p) ?? partial.text;
        else if (p.id === 0x1013 && v)
          partial.html = p.type === 0x001f ? unicode(v) : p.type === 0x0102 ? decodeText(v) : string8(v);
        else if (p.id === 0x1009 && v) partial.rtf = rtfToText(decompressRtf(v, maxRtf).toString('latin1'));
      }
    } else if (id === 0x9005 && current) {
      for (const p of readMapiProps(data)) {
        const v = p.values[0];
        if (p.id === 0x3707) current.name = propText(p) ?? current.name;
        else if (p.id === 0x3704 || p.id === 0x3001) current.name ??= propText(p);
        else if (p.id === 0x3701 && v) {
          // PT_OBJECT: a 16-byte interface id, then (for an attached message) a TNEF stream of its own.
          if (p.type === 0x000d) current.embedded = v.subarray(16);
          else current.data ??= v;
        }
      }
    }
  }
  return partial;
}

// ---------------------------------------------------------------------------------------------------------
// Office Open XML and OpenDocument: zip packages of XML.

type OfficeKind = 'docx' | 'xlsx' | 'pptx' | 'odf';

function officeKind(names: ReadonlySet<string>): OfficeKind | null {
  if (names.has('word/document.xml')) return 'docx';
  if (names.has('xl/workbook.xml')) return 'xlsx';
  if (names.has('ppt/presentation.xml')) return 'pptx';
  if (names.has('content.xml') && names.has('mimetype')) return 'odf';
  return null;
}

/** The XML parts of an Office package that hold its text, in reading order. */
function officeTextParts(kind: OfficeKind, names: readonly string[]): string[] {
  const byNumber = (a: string, b: string) =>
    Number(/(\d+)\.xml$/.exec(a)?.[1] ?? 0) - Number(/(\d+)\.xml$/.exec(b)?.[1] ?? 0) || a.localeCompare(b);
  const pick = (re: RegExp) => names.filter((n) => re.test(n)).sort(byNumber);
  const meta = names.filter((n) => n === 'docProps/core.xml' || n === 'meta.xml');
  switch (kind) {
    case 'docx':
      return [
        ...pick(/^word\/document\.xml$/),
        ...pick(/^word\/(header|footer)\d*\.xml$/),
        ...pick(/^word\/(footnotes|endnotes|comments)\.xml$/),
        ...meta,
      ];
    case 'xlsx':
      return [
        ...pick(/^xl\/workbook\.xml$/),
        ...pick(/^xl\/sharedStrings\.xml$/),
        ...pick(/^xl\/worksheets\/sheet\d+\.xml$/),
        ...pick(/^xl\/comments\d*\.xml$/),
        ...meta,
      ];
    case 'pptx':
      return [
        ...pick(/^ppt\/slides\/slide\d+\.xml$/),
        ...pick(/^ppt\/notesSlides\/notesSlide\d+\.xml$/),
        ...meta,
      ];
    case 'odf':
      return [...pick(/^content\.xml$/), ...meta];
  }
}

function isOfficeMedia(name: string): boolean {
  return /^(word|xl|ppt)\/media\//.test(name) || name.startsWith('Pictures/');
}

function isOfficeEmbedding(name: string): boolean {
  return /^(word|xl|ppt)\/embeddings\//.test(name) || /^Object \d+\//.test(name);
}

/** XLSX shared strings: one entry per <si>, its runs joined. */
function sharedStrings(xml: string): string[] {
  const chunks = xml.split('</si>');
  chunks.pop();
  return chunks.map((chunk) => {
    const start = chunk.lastIndexOf('<si');
    const si = start === -1 ? chunk : chunk.slice(start);
    // Phonetic runs repeat the text in another script.
    return stripTags(dropElements(si, 'rPh'));
  });
}

/** Removes <name …>…</name> elements. indexOf, not a lazy regex: an unclosed element must not make it quadratic. */
function dropElements(xml: string, name: string): string {
  const open = `<${name}`;
  const close = `</${name}>`;
  let out = '';
  let pos = 0;
  for (let i = xml.indexOf(open, pos); i !== -1; i = xml.indexOf(open, pos)) {
    const j = xml.indexOf(close, i);
    if (j === -1) break;
    out += xml.slice(pos, i);
    pos = j + close.length;
  }
  return out + xml.slice(pos);
}

const SHEET_TAG = /<(\/?)(?:[A-Za-z]{1,16}:)?(row|c|v|t|is|f)([^<>]*)>/g;

/** Worksheet cells as text: cells tab-separated, rows on lines, shared-string cells resolved. */
function sheetText(xml: string, strings: readonly string[]): string {
  const lines: string[] = [];
  let row: string[] = [];
  let cellType = '';
  let capture = false;
  let value = '';
  let last = 0;
  SHEET_TAG.lastIndex = 0;
  for (let m = SHEET_TAG.exec(xml); m; m = SHEET_TAG.exec(xml)) {
    if (capture) value += xml.slice(last, m.index);
    last = SHEET_TAG.lastIndex;
    const closing = m[1] === '/';
    const name = m[2]!;
    const attrs = m[3] ?? '';
    const selfClosing = attrs.endsWith('/');
    if (name === 'row' && (closing || selfClosing)) {
      if (row.length > 0) lines.push(row.join('\t'));
      row = [];
    } else if (name === 'c' && !closing) {
      cellType = /\bt="([^"]{0,20})"/.exec(attrs)?.[1] ?? '';
      value = '';
      capture = false;
    } else if (name === 'c' && closing) {
      const text = decodeEntities(value);
      row.push(cellType === 's' ? (strings[Number(text)] ?? '') : text);
      value = '';
    } else if (name === 'v' || name === 't') {
      capture = !closing && !selfClosing;
    } else if (name === 'f') {
      capture = false;
    }
  }
  if (row.length > 0) lines.push(row.join('\t'));
  return lines.join('\n');
}

function officeXmlText(kind: OfficeKind, name: string, xml: string, strings: readonly string[]): string {
  if (name === 'docProps/core.xml' || name === 'meta.xml') return stripTags(xml, /<\/[^<>]*>/g);
  if (name === 'xl/workbook.xml') {
    // Sheet names can say whose data a sheet holds.
    return [...xml.matchAll(/<(?:[A-Za-z]{1,16}:)?sheet\s[^<>]*?name="([^"]{0,300})"/g)]
      .map((m) => decodeEntities(m[1]!))
      .join('\n');
  }
  if (name === 'xl/sharedStrings.xml') return '';
  if (kind === 'xlsx' && name.startsWith('xl/worksheets/')) return sheetText(xml, strings);
  if (kind === 'docx') return stripTags(xml.replace(/<w:tab\/>/g, '\t'), /<\/w:p>|<w:br\/>|<w:cr\/>/g);
  if (kind === 'pptx') return stripTags(xml, /<\/a:p>|<a:br\/>/g);
  return stripTags(xml, /<\/text:(p|h)>|<text:line-break\/>|<text:tab\/>/g);
}

// ---------------------------------------------------------------------------------------------------------
// PDF: PDF.js inflates content streams as it reads them and never asks how big they get, so a 100 KB file can hold
// gigabytes of operators. Flate streams are inflated here first, within the message's decompression budget.

/** How far back from "stream" a stream's dictionary may start. */
const PDF_DICT_LOOKBACK = 4096;
const PDF_FLATE_ONLY = /\/Filter\s*(?:\/FlateDecode|\[\s*\/FlateDecode\s*\])(?![A-Za-z])/;

/** Bytes the PDF's Flate streams inflate to, or null when that passes `budget`. Linear: each stream is visited once. */
function pdfInflatedBytes(pdf: Buffer, budget: number): number | null {
  let total = 0;
  let pos = 0;
  for (let s = pdf.indexOf('stream', pos); s !== -1; s = pdf.indexOf('stream', pos)) {
    pos = s + 6;
    if (s >= 3 && pdf.toString('latin1', s - 3, s) === 'end') continue;
    let dataStart = s + 6;
    if (pdf[dataStart] === 0x0d) dataStart++;
    if (pdf[dataStart] !== 0x0a) continue;
    dataStart++;
    const from = Math.max(0, s - PDF_DICT_LOOKBACK);
    const dictStart = pdf.subarray(from, s).lastIndexOf('<<');
    const dict = dictStart === -1 ? '' : pdf.toString('latin1', from + dictStart, s);
    const end = pdf.indexOf('endstream', dataStart);
    const dataEnd = end === -1 ? pdf.length : end;
    pos = Math.max(pos, dataEnd);
    if (!PDF_FLATE_ONLY.test(dict)) continue;
    try {
      const out = zlib.inflateSync(pdf.subarray(dataStart, dataEnd), {
        maxOutputLength: Math.max(1, budget - total),
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      });
      total += out.length;
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return null;
      // A damaged stream: PDF.js recovers what it can or fails, and a failure is flagged.
    }
  }
  return total;
}

// The reader itself runs in a worker thread: PDF.js works synchronously for seconds on hostile files (a
// small file of packed operators, nested forms), which would stall the event loop so that no timeout could fire.
// A worker keeps the gateway responsive, has its own heap limit, and is terminated when the caller gives up.

/** What the PDF worker sends back. */
interface PdfResult {
  outcome: 'read' | 'encrypted' | 'corrupt';
  /** Page text, filled-in form fields and document info, in reading order. */
  text: string[];
  /** Some page had (almost) no text: likely a scan or a fax. */
  scanned: boolean;
  /** The document has more pages than were read. */
  truncated: boolean;
  /** Reading stopped part-way on an error. */
  damaged: boolean;
  /** Files embedded in the PDF. */
  files: Array<{ name?: string; data: Uint8Array }>;
}

interface PdfJob {
  pdf: Uint8Array;
  maxPages: number;
  /** Where unpdf lives, resolved by the main thread. */
  unpdf: string;
}

/**
 * The worker's program. Its source text is what the worker runs, so it must use nothing from this module's scope.
 * Fonts are never compiled to code (CVE-2024-4367) nor loaded from the system or the network.
 */
async function pdfWorkerMain(): Promise<void> {
  const threads = await import('node:worker_threads');
  const parentPort = threads.parentPort;
  const job = threads.workerData as PdfJob;
  const result: PdfResult = {
    outcome: 'read',
    text: [],
    scanned: false,
    truncated: false,
    damaged: false,
    files: [],
  };
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  /** Text an annotation carries: form field values (filled-in forms) and comments. */
  const annotationText = (a: unknown): string[] => {
    if (!isRecord(a)) return [];
    const out: string[] = [];
    const value = a.fieldValue;
    if (typeof value === 'string') out.push(value);
    else if (Array.isArray(value)) out.push(...value.filter((v): v is string => typeof v === 'string'));
    for (const key of ['contentsObj', 'titleObj']) {
      const obj = a[key];
      if (isRecord(obj) && typeof obj.str === 'string') out.push(obj.str);
    }
    if (typeof a.alternativeText === 'string') out.push(a.alternativeText);
    return out.filter((t) => t.trim().length > 0);
  };
  const { getDocumentProxy } = (await import(job.unpdf)) as typeof import('unpdf');
  let doc: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    doc = await getDocumentProxy(job.pdf, {
      isEvalSupported: false,
      useSystemFonts: false,
      disableFontFace: true,
      verbosity: 0,
    });
  } catch (err) {
    result.outcome = isRecord(err) && err.name === 'PasswordException' ? 'encrypted' : 'corrupt';
    parentPort?.postMessage(result);
    return;
  }
  try {
    const pages = Math.min(doc.numPages, job.maxPages);
    result.truncated = doc.numPages > pages;
    for (let p = 1; p <= pages; p++) {
      const page = await doc.getPage(p);
      const content = await page.getTextContent();
      let pageText = '';
      for (const item of content.items) if ('str' in item) pageText += item.str + (item.hasEOL ? '\n' : '');
      const fields = ((await page.getAnnotations()) as unknown[]).flatMap(annotationText);
      if (pageText.replace(/\s+/g, '').length < 20 && fields.length === 0) result.scanned = true;
      result.text.push(pageText, ...fields);
      page.cleanup();
    }
    const { info } = await doc.getMetadata();
    if (isRecord(info))
      for (const key of ['Title', 'Subject', 'Author', 'Keywords'])
        if (typeof info[key] === 'string') result.text.push(info[key]);
    const files: unknown = await doc.getAttachments();
    if (isRecord(files)) {
      for (const file of Object.values(files)) {
        if (!isRecord(file) || !(file.content instanceof Uint8Array)) continue;
        result.files.push({
          name: typeof file.filename === 'string' ? file.filename : undefined,
          data: file.content,
        });
      }
    }
  } catch {
    result.damaged = true;
  } finally {
    await doc.destroy();
  }
  parentPort?.postMessage(result);
}

const PDF_WORKER_SOURCE = `(${pdfWorkerMain.toString()})()`;
/** Heap for one PDF worker; a file that needs more is flagged too large. */
const PDF_WORKER_HEAP_MB = 512;

/** Reads a PDF in a fresh worker. Rejects with the signal's reason on abort, or with the worker's error. */
function readPdf(content: Buffer, maxPages: number, signal?: AbortSignal): Promise<PdfResult> {
  signal?.throwIfAborted();
  // A copy, handed over to the worker.
  const pdf = new Uint8Array(content);
  const job: PdfJob = { pdf, maxPages, unpdf: import.meta.resolve('unpdf') };
  const worker = new Worker(PDF_WORKER_SOURCE, {
    eval: true,
    workerData: job,
    transferList: [pdf.buffer],
    resourceLimits: { maxOldGenerationSizeMb: PDF_WORKER_HEAP_MB },
    // PDF.js warnings could quote the document: nothing the worker prints reaches the logs.
    stdout: true,
    stderr: true,
  });
  worker.stdout.resume();
  worker.stderr.resume();
  return new Promise<PdfResult>((resolve, reject) => {
    let settled = false;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      settle();
    };
    const onAbort = () => finish(() => reject(signal?.reason as Error));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (result: PdfResult) => finish(() => resolve(result)));
    worker.once('error', (err) => finish(() => reject(err)));
    worker.once('exit', (code) => finish(() => reject(new Error(`PDF worker exited with code ${code}`))));
  });
}

// ---------------------------------------------------------------------------------------------------------
// The walk over a message.

function charsetOf(a: Attachment): string | undefined {
  const header = a.headers.get('content-type') as StructuredHeader | undefined;
  return typeof header === 'object' && header !== null && 'params' in header
    ? header.params.charset
    : undefined;
}

interface Meta {
  contentType: string;
  filename?: string;
  charset?: string;
}

class Extraction {
  readonly parts: TextPart[] = [];
  readonly flags: AttachmentFlag[] = [];
  private textLeft: number;
  private bytesLeft: number;
  private membersLeft: number;

  constructor(
    private readonly limits: ExtractLimits,
    private readonly signal?: AbortSignal,
  ) {
    this.textLeft = limits.maxTotalText;
    this.bytesLeft = limits.maxDecompressedBytes;
    this.membersLeft = limits.maxMembers;
  }

  flag(part: string, kind: AttachmentFlag['kind'], reason: FlagReason): void {
    if (!this.flags.some((f) => f.part === part && f.kind === kind && f.reason === reason))
      this.flags.push({ part, kind, reason });
  }

  addText(id: string, text: string | undefined, kind: TextPart['kind']): void {
    if (!text || text.trim() === '') return;
    if (text.length > this.textLeft) {
      // Text past the budget is not scanned: flag it, so the rules treat the part as unreadable.
      this.flag(id, 'unreadable', 'too-large');
      text = text.slice(0, this.textLeft);
      if (text.trim() === '') return;
    }
    this.textLeft -= text.length;
    this.parts.push({ id, text, kind });
  }

  /** The subject, bodies and attachments of a message; `prefix` is '' for the message itself. */
  async message(parsed: ParsedMail, prefix: string, depth: number): Promise<void> {
    const top = prefix === '';
    const id = (name: string) => (top ? name : `${prefix}/${name}`);
    // An attached message's subject is about that message, not this one: it does not pair with every part.
    this.addText(id('subject'), parsed.subject, top ? 'subject' : 'attachment');
    this.addText(id('text'), parsed.text, top ? 'body' : 'attachment');
    if (typeof parsed.html === 'string') this.html(id('html'), parsed.html, top ? 'body' : 'attachment');
    let n = 0;
    for (const a of parsed.attachments) {
      n++;
      const meta: Meta = { contentType: a.contentType ?? '', filename: a.filename, charset: charsetOf(a) };
      const id = top ? `attachment:${n}` : `${prefix}/${n}`;
      await this.attachment(a.content, meta, id, depth, drainedSizes.get(a));
    }
  }

  private html(id: string, html: string, kind: TextPart['kind']): void {
    if (html.length > this.limits.maxAttachmentBytes) {
      this.flag(id, 'unreadable', 'too-large');
      html = html.slice(0, this.limits.maxAttachmentBytes);
    }
    this.addText(id, htmlText(html), kind);
  }

  /** One attachment or archive member at `depth` (0 for the message's own attachments). Throws only when the caller aborts. */
  /** `drainedSize`: only the first bytes of the attachment are in `content`, and this is its real size. */
  async attachment(
    content: Buffer,
    meta: Meta,
    id: string,
    depth: number,
    drainedSize?: number,
  ): Promise<void> {
    this.signal?.throwIfAborted();
    if (meta.filename) this.addText(`${id}:name`, meta.filename, 'attachment');
    const size = drainedSize ?? content.length;
    if (size === 0) return;
    if (size > this.limits.maxAttachmentBytes) {
      this.flag(id, 'unreadable', 'too-large');
      return;
    }
    // Only part of it was kept, yet reading it needs all: never scan half a part as if it were whole.
    if (drainedSize !== undefined && needsWholeContent(content, meta.contentType, meta.filename)) {
      this.flag(id, 'unreadable', 'too-large');
      return;
    }
    try {
      await this.read(content, meta, id, depth);
    } catch (err) {
      // The caller gave up (its timeout): stop the walk rather than report a half-read message as read.
      if (this.signal?.aborted) throw err;
      // A library choking on hostile input is what 'corrupt' means here; the rules fail closed on it.
      this.flag(id, 'unreadable', 'corrupt');
    }
  }

  private async read(content: Buffer, meta: Meta, id: string, depth: number): Promise<void> {
    switch (classify(content, meta.contentType, meta.filename)) {
      case 'signature':
        return;
      case 'image':
        return this.flag(id, 'image', 'image');
      case 'encrypted':
        return this.flag(id, 'unreadable', 'encrypted');
      case 'text':
        return this.addText(id, decodeText(content, meta.charset), 'attachment');
      case 'html':
        return this.html(id, decodeText(content, meta.charset), 'attachment');
      case 'rtf':
        return this.addText(id, rtfToText(content.toString('latin1')), 'attachment');
      case 'pdf':
        return this.pdf(content, id, depth);
      case 'zip':
        return this.zip(content, id, depth);
      case 'tnef':
        return this.tnef(content, id, depth);
      case 'message':
        return this.attachedMessage(content, id, depth);
      case 'cfb':
        // A password-protected DOCX/XLSX is an encrypted package inside a compound file; other compound files are
        // legacy Office documents or Outlook items, which nothing here reads.
        return this.flag(
          id,
          'unreadable',
          content.includes('EncryptedPackage', 0, 'utf16le') ? 'encrypted-office' : 'unsupported',
        );
      case 'unknown':
        return this.flag(id, 'unreadable', 'unsupported');
    }
  }

  /** Containers open only while their members stay within the depth limit. */
  private tooDeep(id: string, depth: number): boolean {
    if (depth + 1 <= this.limits.maxDepth) return false;
    this.flag(id, 'unreadable', 'too-deep');
    return true;
  }

  private async attachedMessage(content: Buffer, id: string, depth: number): Promise<void> {
    if (this.tooDeep(id, depth)) return;
    const inner = await simpleParser(content, PARSE_OPTIONS);
    await this.message(inner, id, depth + 1);
  }

  private async pdf(content: Buffer, id: string, depth: number): Promise<void> {
    const inflated = pdfInflatedBytes(content, this.bytesLeft);
    if (inflated === null) {
      this.flag(id, 'unreadable', 'too-large');
      return;
    }
    this.bytesLeft -= inflated;
    let result: PdfResult;
    try {
      result = await readPdf(content, this.limits.maxPdfPages, this.signal);
    } catch (err) {
      if (this.signal?.aborted) throw err;
      this.flag(
        id,
        'unreadable',
        (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'too-large' : 'corrupt',
      );
      return;
    }
    if (result.outcome !== 'read') {
      this.flag(id, 'unreadable', result.outcome === 'encrypted' ? 'encrypted-pdf' : 'corrupt');
      return;
    }
    this.addText(id, result.text.join('\n'), 'attachment');
    // A PDF with no text layer is a scan or fax: as likely to be a record as anything. Fail closed.
    if (result.scanned) this.flag(id, 'unreadable', 'scanned-pdf');
    if (result.truncated) this.flag(id, 'unreadable', 'too-large');
    if (result.damaged) this.flag(id, 'unreadable', 'corrupt');
    if (result.files.length === 0 || this.tooDeep(id, depth)) return;
    let n = 0;
    for (const file of result.files) {
      n++;
      await this.attachment(
        Buffer.from(file.data),
        { contentType: '', filename: file.name },
        `${id}/${n}`,
        depth + 1,
      );
    }
  }

  private async tnef(content: Buffer, id: string, depth: number): Promise<void> {
    const tnef: Tnef = { attachments: [] };
    let damaged = false;
    try {
      parseTnef(content, tnef, this.limits.maxAttachmentBytes);
    } catch {
      damaged = true;
    }
    this.addText(`${id}/subject`, tnef.subject, 'attachment');
    this.addText(`${id}/text`, tnef.text, 'attachment');
    if (tnef.html) this.html(`${id}/html`, tnef.html, 'attachment');
    this.addText(`${id}/rtf`, tnef.rtf, 'attachment');
    if (damaged) this.flag(id, 'unreadable', 'corrupt');
    if (tnef.attachments.length === 0 || this.tooDeep(id, depth)) return;
    let n = 0;
    for (const a of tnef.attachments) {
      n++;
      const memberId = `${id}/${n}`;
      if (a.embedded) await this.embeddedTnef(a.embedded, a.name, memberId, depth + 1);
      else if (a.data)
        await this.attachment(a.data, { contentType: '', filename: a.name }, memberId, depth + 1);
      else if (a.name) this.addText(`${memberId}:name`, a.name, 'attachment');
    }
  }

  private async embeddedTnef(
    stream: Buffer,
    name: string | undefined,
    id: string,
    depth: number,
  ): Promise<void> {
    if (name) this.addText(`${id}:name`, name, 'attachment');
    if (startsWith(stream, [0x78, 0x9f, 0x3e, 0x22])) return this.tnef(stream, id, depth);
    await this.attachment(stream, { contentType: '' }, id, depth);
  }

  private async zip(content: Buffer, id: string, depth: number): Promise<void> {
    let zip: ZipFile;
    try {
      zip = await fromBufferPromise(content, {
        lazyEntries: true,
        decodeStrings: true,
        validateEntrySizes: true,
        strictFileNames: false,
      });
    } catch {
      this.flag(id, 'unreadable', 'corrupt');
      return;
    }
    const entries: Entry[] = [];
    try {
      for await (const entry of zip.eachEntry()) {
        if (entry.fileName.endsWith('/')) continue;
        if (entries.length >= this.limits.maxMembers) {
          this.flag(id, 'unreadable', 'too-many-members');
          break;
        }
        entries.push(entry);
      }
    } catch {
      // A broken central directory: read what was listed, flag the rest.
      this.flag(id, 'unreadable', 'corrupt');
    }
    const names = new Set(entries.map((e) => e.fileName));
    const office = officeKind(names);
    if (office) return this.office(zip, entries, office, id, depth);
    if (entries.length > 0 && this.tooDeep(id, depth)) return;
    let n = 0;
    for (const entry of entries) {
      n++;
      const memberId = `${id}/${n}`;
      const data = await this.readEntry(zip, entry, id, memberId);
      // The member's name (its path in the archive) is scanned as text and helps tell its type; it never becomes an id.
      if (data)
        await this.attachment(data, { contentType: '', filename: entry.fileName }, memberId, depth + 1);
      else this.addText(`${memberId}:name`, entry.fileName, 'attachment');
    }
  }

  private async office(
    zip: ZipFile,
    entries: readonly Entry[],
    kind: OfficeKind,
    id: string,
    depth: number,
  ): Promise<void> {
    const byName = new Map(entries.map((e) => [e.fileName, e]));
    const texts: string[] = [];
    let strings: string[] = [];
    for (const name of officeTextParts(kind, [...byName.keys()])) {
      const data = await this.readEntry(zip, byName.get(name)!, id, id);
      if (!data) continue;
      const xml = decodeText(data);
      if (name === 'xl/sharedStrings.xml') strings = sharedStrings(xml);
      texts.push(officeXmlText(kind, name, xml, strings));
    }
    this.addText(id, texts.filter((t) => t.trim() !== '').join('\n\n'), 'attachment');
    if (entries.some((e) => isOfficeMedia(e.fileName))) this.flag(id, 'image', 'embedded-images');
    // Files embedded in the document (a spreadsheet in a letter, say) are attachments of it.
    const embedded = entries.filter((e) => isOfficeEmbedding(e.fileName));
    if (embedded.length === 0 || this.tooDeep(id, depth)) return;
    let n = 0;
    for (const entry of embedded) {
      n++;
      const memberId = `${id}/${n}`;
      const data = await this.readEntry(zip, entry, id, memberId);
      if (data)
        await this.attachment(
          data,
          { contentType: '', filename: entry.fileName.slice(entry.fileName.lastIndexOf('/') + 1) },
          memberId,
          depth + 1,
        );
    }
  }

  /** Decompresses one member within the budgets: declared size checked first, actual bytes counted as they come. */
  private async readEntry(
    zip: ZipFile,
    entry: Entry,
    archiveId: string,
    memberId: string,
  ): Promise<Buffer | null> {
    if (entry.isEncrypted()) {
      this.flag(archiveId, 'unreadable', 'password-zip');
      return null;
    }
    if (!entry.canDecodeFileData()) {
      this.flag(memberId, 'unreadable', 'unsupported');
      return null;
    }
    if (this.membersLeft <= 0) {
      this.flag(archiveId, 'unreadable', 'too-many-members');
      return null;
    }
    const declared = entry.uncompressedSize;
    if (declared > this.limits.maxAttachmentBytes || declared > this.bytesLeft) {
      this.flag(memberId, 'unreadable', 'too-large');
      return null;
    }
    this.membersLeft--;
    this.bytesLeft -= declared;
    const chunks: Buffer[] = [];
    let total = 0;
    let stream: Readable | undefined;
    try {
      stream = await zip.openReadStreamPromise(entry);
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        total += chunk.length;
        // yauzl checks this too; counting here means a lying header never costs more than it declared.
        if (total > declared) throw new Error('member larger than declared');
        chunks.push(chunk);
      }
    } catch {
      stream?.destroy();
      this.flag(memberId, 'unreadable', 'corrupt');
      return null;
    }
    return Buffer.concat(chunks, total);
  }
}

/**
 * The text parts of a parsed message for the analyzer, and flags for what could not be read as text.
 * Bad attachments become flags, never exceptions. The caller bounds the time it takes; aborting `signal` when it
 * gives up stops the work too (a timeout alone would leave a hostile PDF burning CPU after the message was deferred),
 * and the promise then rejects with the signal's reason.
 */
export async function extractParts(
  parsed: ParsedMail,
  limits: Partial<ExtractLimits> = {},
  signal?: AbortSignal,
): Promise<Extracted> {
  const run = new Extraction({ ...DEFAULT_EXTRACT_LIMITS, ...limits }, signal);
  await run.message(parsed, '', 0);
  return { parts: run.parts, flags: run.flags };
}
