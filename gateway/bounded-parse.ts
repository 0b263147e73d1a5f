// The scan's parse of a message: mailparser's simpleParser, except that an attachment's body is kept only
// when the scan will read it (extract.ts decides from its first bytes and size), so memory does not follow
// attachment size. It must never change what the scan sees of a part it reads: same text, same flags.
import { isAscii, isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import mailsplit from '@zone-eu/mailsplit';
import { MailParser, type Attachment, type ParsedMail } from 'mailparser';
import { CLASSIFY_BYTES, needsWholeContent, setDrainedSize } from './extract.js';
import { fieldName, splitMessage } from './mime-headers.js';

/** Slices fed to the parser: it works through a large message a slice at a time, never all of it at once. */
const FEED_BYTES = 64 * 1024;

type MailParserOptions = ConstructorParameters<typeof MailParser>[0];

/**
 * `raw` as a stream of slices (views, not copies). mailparser given one large buffer decodes it in one go
 * (base64 bodies become one string as large as the message); given slices, it works through them in steps.
 */
export function inSlices(raw: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < raw.length; at += FEED_BYTES) yield raw.subarray(at, at + FEED_BYTES);
    })(),
    { objectMode: false },
  );
}

/**
 * Where an attachment's body goes as it is decoded. `finish` sets `attachment.content` to what was kept; a sink
 * may be async (a file): the parser waits for each chunk, so a slow sink slows the parse instead of piling up.
 */
export interface AttachmentSink {
  take(chunk: Buffer): void | Promise<void>;
  finish(): void | Promise<void>;
}

/** The scan's sink: all chunks while the scan may need them, else the attachment's first bytes and a count. */
class ScanSink implements AttachmentSink {
  private chunks: Buffer[] = [];
  private kept = 0;
  private size = 0;
  private head: Buffer | null = null;

  constructor(
    private readonly attachment: Attachment,
    private readonly maxBytes: number,
  ) {}

  take(chunk: Buffer): void {
    this.size += chunk.length;
    if (this.head) return;
    this.chunks.push(chunk);
    this.kept += chunk.length;
    const decided = this.kept - chunk.length >= CLASSIFY_BYTES;
    if (!decided && this.kept >= CLASSIFY_BYTES) {
      const start = Buffer.concat(this.chunks, this.kept);
      this.chunks = [start];
      const a = this.attachment;
      if (!needsWholeContent(start, a.contentType ?? '', a.filename)) this.drain(start);
    }
    // Past the limit the scan only flags the part 'too-large': its bytes are not needed either.
    if (!this.head && this.kept > this.maxBytes) this.drain(Buffer.concat(this.chunks, this.kept));
  }

  private drain(start: Buffer): void {
    this.head = Buffer.from(start.subarray(0, CLASSIFY_BYTES));
    this.chunks = [];
    this.kept = 0;
  }

  finish(): void {
    if (this.head) {
      this.attachment.content = this.head;
      setDrainedSize(this.attachment, this.size);
    } else {
      this.attachment.content = Buffer.concat(this.chunks, this.kept);
    }
    this.chunks = [];
  }
}

/**
 * Parses `raw` like simpleParser(raw, options) for the scan: the same headers, text, HTML and attachment
 * list, but the body of an attachment larger than `maxAttachmentBytes`, or one that is known from its first
 * bytes to be unreadable (an image, an unknown binary …), is counted, not kept (extract.ts reads its size).
 */
export async function parseForScan(
  raw: Buffer | Readable,
  options: MailParserOptions,
  maxAttachmentBytes: number,
): Promise<ParsedMail> {
  const sinks = (a: Attachment) => new ScanSink(a, maxAttachmentBytes);
  // Only where the parser would not render the text as HTML (skipTextToHtml, as the scan parses): it renders the
  // whole body, which the header's parse here does not see.
  const plain = Buffer.isBuffer(raw) && options?.skipTextToHtml ? plainTextBody(raw) : null;
  if (!plain) return parseWithSinks(raw, options, sinks);
  // The header read as the parser reads it (subject, addresses, fields: as for the whole message), the body as it is.
  const mail = readHeader(plain.header, options) ?? (await parseWithSinks(plain.header, options, sinks));
  mail.text = plain.text;
  return mail;
}

/** The fields simpleParser copies from the header map onto the mail (those present), in its order. */
const MAIL_FIELDS = [
  'subject',
  'references',
  'date',
  'to',
  'from',
  'cc',
  'bcc',
  'message-id',
  'in-reply-to',
  'reply-to',
] as const;

/** Copies MAIL_FIELDS from the header map onto the mail, named as simpleParser names them ("message-id" → messageId). */
function copyMailFields(headers: ParsedMail['headers'], mail: Record<string, unknown>): void {
  for (const name of MAIL_FIELDS)
    if (headers.has(name))
      mail[name.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())] = headers.get(name);
}

/** mailsplit's default limit of a header block (MAX_HEAD_SIZE), unless the options set maxHeadSize. */
const MAX_HEAD_BYTES = 1024 * 1024;

/**
 * Whether mailsplit would take this header block within its limit: each line counts its bytes, at least 64
 * (HEADER_LINE_MIN_COST), the blank line that ends the block its own. At the limit or past it, the parser decides.
 */
function headerWithinLimit(header: Buffer, limit: number): boolean {
  let cost = 0;
  let at = 0;
  while (at < header.length) {
    const nl = header.indexOf(0x0a, at);
    const end = nl < 0 ? header.length : nl + 1;
    const len = end - at;
    cost += len === 2 ? len : Math.max(len, 64);
    if (cost >= limit) return false;
    at = end;
  }
  return true;
}

/** One parser per options object, only for its header decoding (processHeaders keeps no state of its own). */
const headerReaders = new WeakMap<object, { processHeaders?: (lines: unknown) => ParsedMail['headers'] }>();

/**
 * A message of header only (no body, no attachment) as simpleParser reads it, without the parser's streams: the
 * header block split into fields by mailsplit's Headers, each decoded by mailparser's own processHeaders, as the
 * parser does for a message's root part. The streams cost more than the rest of a plain-text message's parse
 * (~0.8 ms, a third of it garbage collection, for a header of 1 KB). Null when that method is not there (another
 * mailparser) or the header is too large for this shortcut: the caller then runs the parser.
 */
function readHeader(header: Buffer, options: MailParserOptions): ParsedMail | null {
  const limit = (options as { maxHeadSize?: number } | undefined)?.maxHeadSize || MAX_HEAD_BYTES;
  if (!headerWithinLimit(header, limit)) return null;
  const key = options ?? headerReaders;
  let reader = headerReaders.get(key);
  if (!reader) {
    reader = new MailParser(options) as unknown as {
      processHeaders?: (lines: unknown) => ParsedMail['headers'];
    };
    headerReaders.set(key, reader);
  }
  if (typeof reader.processHeaders !== 'function') return null;
  const fields = new mailsplit.Headers(header, options as { Iconv?: unknown }).getList();
  const headers = reader.processHeaders(fields);
  const mail: Record<string, unknown> = { attachments: [], headers, headerLines: fields };
  copyMailFields(headers, mail);
  mail.html = false;
  // What the parser gives for a text it does not render (skipTextToHtml, which parseForScan requires here).
  mail.textAsHtml = '';
  return mail as unknown as ParsedMail;
}

/**
 * The text of a message that is a single plain-text part with nothing to decode — Content-Type absent or text/plain
 * with no parameter but a charset of utf-8 or us-ascii, transfer encoding absent, 7bit or 8bit, no
 * Content-Disposition, the body valid in its charset — as mailparser reads it (line ends as LF), or null for any
 * other message. mailparser splits a body into lines in JavaScript and joins them again: for such a message that was
 * most of the scan's parse (2.5 of 2.9 ms for 100 KB). test/gateway/bounded-parse.test.ts holds it to mailparser.
 */
export function plainTextBody(raw: Buffer): { header: Buffer; text: string } | null {
  // No blank line after the header: an empty body, refused below.
  const { fields, body } = splitMessage(raw);
  let type: string | null = null;
  let encoding: string | null = null;
  for (const field of fields) {
    // A line end other than CRLF, a field without a name, or a header that opens with a continuation line: let the
    // parser judge it.
    if (/(?<!\r)\n|\r(?!\n)/.test(field) || field.indexOf(':') < 1 || /^[ \t]/.test(field)) return null;
    const name = fieldName(field);
    // The value unfolded (the CRLF before each continuation line dropped) and without its own line end.
    const value = field.slice(field.indexOf(':') + 1).replaceAll('\r\n', '');
    if (name === 'content-disposition') return null;
    if (name === 'content-type') {
      if (type !== null) return null;
      type = value;
    } else if (name === 'content-transfer-encoding') {
      if (encoding !== null) return null;
      encoding = value;
    }
  }
  // Spaces and tabs only around the values: another blank (a byte read as latin1 here) the parser reads otherwise.
  let utf8 = false;
  if (type !== null) {
    const m =
      /^[ \t]*text\/plain[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*("?)(utf-8|us-ascii)\1[ \t]*)?;?[ \t]*$/i.exec(
        type,
      );
    if (!m) return null;
    utf8 = m[2]?.toLowerCase() === 'utf-8';
  }
  if (encoding !== null && !/^[ \t]*(?:7bit|8bit)[ \t]*$/i.test(encoding)) return null;
  if (body.length === 0 || !(utf8 ? isUtf8(body) : isAscii(body))) return null;
  return {
    header: raw.subarray(0, raw.length - body.length),
    text: body.toString('utf8').replaceAll('\r\n', '\n'),
  };
}

/**
 * Parses `raw` like simpleParser(raw, options), each attachment's body going to the sink `sinkFor` gives it
 * (its 0-based index among the attachments) instead of into memory. Fails if the input or any sink fails.
 */
export async function parseWithSinks(
  raw: Buffer | Readable,
  options: MailParserOptions,
  sinkFor: (attachment: Attachment, index: number) => AttachmentSink,
): Promise<ParsedMail> {
  // Filled in as simpleParser fills its result; the shape is mailparser's ParsedMail.
  const attachments: Attachment[] = [];
  const mail: Record<string, unknown> & { headers?: ParsedMail['headers'] } = { attachments };
  const parser = new MailParser(options);
  parser.on('headers', (headers) => {
    mail.headers = headers;
    mail.headerLines = parser.headerLines;
    const otp = (parser as unknown as { otp?: unknown }).otp;
    if (otp) mail.otp = otp;
  });
  let reading = false;
  // A failure inside an attachment stream or a sink fails the whole parse (fail closed), as a parser error does.
  let failed: Error | undefined;
  const reader = async (): Promise<void> => {
    reading = true;
    for (;;) {
      const data = parser.read() as
        | null
        | { type: 'text'; text?: string; html?: string; textAsHtml?: string; textConversionError?: Error }
        | (Omit<Attachment, 'content' | 'release'> & {
            type: 'attachment';
            content: Readable;
            release: () => void;
          });
      if (data === null) break;
      if (data.type === 'text') {
        for (const key of ['text', 'html', 'textAsHtml', 'textConversionError'] as const)
          if (key in data) mail[key] = data[key];
        continue;
      }
      const stream = data.content;
      const attachment = data as unknown as Attachment;
      const sink = sinkFor(attachment, attachments.length);
      attachments.push(attachment);
      try {
        for await (const chunk of stream) if (!failed) await sink.take(chunk as Buffer);
        if (!failed) await sink.finish();
      } catch (err) {
        failed ??= err as Error;
        stream.resume();
      }
      data.release();
    }
    reading = false;
  };
  const read = () => {
    if (!reading) void reader();
  };
  parser.on('readable', read);
  const ended = new Promise<void>((resolve, reject) => {
    parser.once('end', resolve);
    parser.once('error', reject);
  });
  await Promise.all([pipeline(Buffer.isBuffer(raw) ? inSlices(raw) : raw, parser), ended]);
  if (failed) throw failed;
  if (mail.headers) copyMailFields(mail.headers, mail);
  // As simpleParser with keepCidLinks unset: cid links are resolved (skipImageLinks leaves the HTML as is).
  mail.html = await new Promise<string | false>((resolve, reject) =>
    parser.updateImageLinks(
      (a, done) =>
        done(null, `data:${a.contentType};base64,${(a.content as unknown as Buffer).toString('base64')}`),
      (err: Error | null, html?: string | false) => (err ? reject(err) : resolve(html ?? false)),
    ),
  );
  return mail as unknown as ParsedMail;
}
