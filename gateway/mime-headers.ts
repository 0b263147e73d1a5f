// Edits the header block of a raw message without touching its body (attachments and signatures stay
// byte-identical): replace or drop header fields. It never decodes or re-encodes the body.
import { encodeWords } from 'nodemailer/lib/mime-funcs';

export interface SplitMessage {
  /** Header lines, each with its CRLF, folded continuation lines included. */
  fields: string[];
  /** Everything after the blank line that ends the header block. */
  body: Buffer;
}

/** Splits a CRLF message into header fields (latin1, so bytes survive) and the body. */
export function splitMessage(raw: Buffer): SplitMessage {
  let end = raw.indexOf('\r\n\r\n');
  let bodyStart: number;
  if (end === -1) {
    end = raw.length;
    bodyStart = raw.length;
  } else {
    end += 2;
    bodyStart = end + 2;
  }
  const head = raw.subarray(0, end).toString('latin1');
  const fields: string[] = [];
  for (const line of head.split(/(?<=\r\n)/)) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && fields.length > 0)
      fields[fields.length - 1] += line;
    else fields.push(line);
  }
  return { fields, body: raw.subarray(bodyStart) };
}

export function fieldName(field: string): string {
  const colon = field.indexOf(':');
  return (colon === -1 ? field : field.slice(0, colon)).trim().toLowerCase();
}

/** Encodes a header value (RFC 2047 when it is not plain ASCII) and folds nothing: values stay short. */
export function encodeHeaderValue(value: string): string {
  const clean = value.replace(/[\r\n]+/g, ' ');
  return /^[\x20-\x7e]*$/.test(clean) ? clean : encodeWords(clean, 'Q', 52);
}

/**
 * Returns the message with `set` fields replaced (or added at the end of the header block) and `remove`
 * fields dropped. Names are case-insensitive; values are given decoded and encoded here.
 */
export function rewriteHeaders(
  raw: Buffer,
  edit: { set?: Record<string, string>; remove?: readonly string[] },
): Buffer {
  const { fields, body } = splitMessage(raw);
  const set = new Map(Object.entries(edit.set ?? {}).map(([k, v]) => [k.toLowerCase(), [k, v] as const]));
  const remove = new Set((edit.remove ?? []).map((n) => n.toLowerCase()));
  const out: string[] = [];
  const done = new Set<string>();
  for (const field of fields) {
    const name = fieldName(field);
    if (remove.has(name)) continue;
    const replacement = set.get(name);
    if (replacement) {
      if (!done.has(name)) out.push(`${replacement[0]}: ${encodeHeaderValue(replacement[1])}\r\n`);
      done.add(name);
      continue;
    }
    out.push(field);
  }
  for (const [name, [display, value]] of set) {
    if (!done.has(name)) out.push(`${display}: ${encodeHeaderValue(value)}\r\n`);
  }
  return Buffer.concat([Buffer.from(out.join('') + '\r\n', 'latin1'), body]);
}

/**
 * rewriteHeaders for a message read as a stream: the same bytes, with only the header block held (chunks are
 * gathered until the header's end is seen; a message whose header never ends is held whole, as it would be).
 */
export async function* rewriteHeadersStream(
  source: AsyncIterable<Buffer>,
  edit: { set?: Record<string, string>; remove?: readonly string[] },
): AsyncGenerator<Buffer> {
  let held: Buffer | null = Buffer.alloc(0);
  for await (const chunk of source) {
    if (held === null) {
      yield chunk;
      continue;
    }
    const from = Math.max(0, held.length - 3);
    held = Buffer.concat([held, chunk]);
    if (held.indexOf('\r\n\r\n', from) >= 0) {
      yield rewriteHeaders(held, edit);
      held = null;
    }
  }
  if (held !== null) yield rewriteHeaders(held, edit);
}
