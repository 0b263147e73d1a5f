// Benchmark mail: realistic plain-text MIME messages of a chosen size, each with a unique Message-ID and
// an X-Bench-Seq header so the next hop can match what arrives to what was sent. Never carries PHI.
import { createHash } from 'node:crypto';

export interface BenchMessage {
  seq: number;
  mailFrom: string;
  rcptTo: string;
  /** Size of the message itself (headers + body), before dot-stuffing. */
  size: number;
  /** The DATA payload on the wire: dot-stuffed message followed by the terminating ".\r\n". */
  wire: Buffer;
  /** SHA-256 (hex) of the body as sent, so the next hop can check it arrived unchanged. */
  bodySha256: string;
}

// Office chatter only: no names with dates, no numbers that look like record or insurance ids.
const WORDS = (
  'schedule supply order delivery gloves masks sterilizer pouches invoice vendor meeting staff ' +
  'training room front desk reception calendar update review policy checklist inventory shelf ' +
  'cabinet printer toner paper courier parking lunch break rota shift cover holiday closure ' +
  'maintenance technician service contract renewal quote approval budget team notice reminder ' +
  'weekly monthly agenda minutes follow up thanks please confirm attached summary next steps ' +
  'the a to of and for on in with by from at as is are will be this that our your we you it'
).split(' ');

/** Small deterministic PRNG (mulberry32), so a message's text depends only on its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sentence(rand: () => number): string {
  const n = 6 + Math.floor(rand() * 12);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  const text = words.join(' ');
  return `${text[0]!.toUpperCase()}${text.slice(1)}.`;
}

/** Wraps text at 72 columns with CRLF line ends, as mail clients do for text/plain. */
function wrap(text: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > 72) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\r\n');
}

/**
 * Bodies already made, by seed and size: warm-up rounds send the same bodies again under another run tag, and
 * making 300 bodies of 100 KB takes longer (~1.5 s) than relaying them, so without it the relay idled through
 * half of its warm-up. Only warm-ups pass one; measured runs make every body afresh.
 */
export type BodyCache = Map<string, { body: string; sha256: string }>;

function cachedBody(
  cache: BodyCache | undefined,
  seed: number,
  targetBytes: number,
  prefix = '',
): { body: string; sha256: string } {
  const key = `${seed}:${targetBytes}:${prefix}`;
  const hit = cache?.get(key);
  if (hit) return hit;
  const body = prefix + makeBody(prng(seed), targetBytes);
  const made = { body, sha256: createHash('sha256').update(body, 'latin1').digest('hex') };
  cache?.set(key, made);
  return made;
}

function makeBody(rand: () => number, targetBytes: number): string {
  const signature = '--\r\nFront desk\r\nExample Family Dental\r\n';
  const paragraphs: string[] = ['Hello team,'];
  // Each paragraph is followed by a blank line (4 bytes); the last one is cut to land on the target size.
  let length = paragraphs[0]!.length + 4 + signature.length;
  while (length < targetBytes) {
    const words: string[] = [];
    const sentences = 2 + Math.floor(rand() * 4);
    for (let i = 0; i < sentences; i++) words.push(...sentence(rand).split(' '));
    let wrapped = wrap(words.join(' '));
    while (length + wrapped.length + 4 > targetBytes && words.length > 1) {
      words.pop();
      wrapped = wrap(`${words.join(' ').replace(/\.$/, '')}.`);
    }
    paragraphs.push(wrapped);
    length += wrapped.length + 4;
  }
  return `${paragraphs.join('\r\n\r\n')}\r\n\r\n${signature}`;
}

/** Doubles a leading dot on every line (RFC 5321 4.5.2). */
function dotStuff(message: Buffer): Buffer {
  const text = message.toString('latin1');
  const stuffed = text.replace(/(^|\r\n)\./g, '$1..');
  return stuffed.length === text.length ? message : Buffer.from(stuffed, 'latin1');
}

export function makeMessage(seq: number, run: string, targetBytes: number, cache?: BodyCache): BenchMessage {
  const mailFrom = 'frontdesk@practice.example';
  const rcptTo = `orders${seq % 50}@vendor.example`;
  const date = new Date(Date.UTC(2025, 0, 6, 9, 0, 0) + seq * 1000).toUTCString().replace('GMT', '+0000');
  const headerLines = [
    `Date: ${date}`,
    `From: "Front Desk" <${mailFrom}>`,
    `To: "Orders" <${rcptTo}>`,
    `Subject: Supply order and schedule update ${seq}`,
    `Message-ID: <${run}.${seq}@bench.practice.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    'X-Mailer: phi-gateway-bench',
    `X-Bench-Run: ${run}`,
    `X-Bench-Seq: ${seq}`,
  ];
  // The body hash header has a fixed length, so the body size can be chosen before the hash is known.
  const headerBytes = headerLines.join('\r\n').length + '\r\nX-Bench-Body-Sha256: '.length + 64 + 4;
  const made = cachedBody(cache, seq * 2654435761 + run.length, Math.max(200, targetBytes - headerBytes));
  const body = made.body;
  const bodySha256 = made.sha256;
  headerLines.push(`X-Bench-Body-Sha256: ${bodySha256}`);
  const message = Buffer.from(`${headerLines.join('\r\n')}\r\n\r\n${body}`, 'latin1');
  const wire = Buffer.concat([dotStuff(message), Buffer.from('.\r\n', 'latin1')]);
  return { seq, mailFrom, rcptTo, size: message.length, wire, bodySha256 };
}

export function makeMessages(
  count: number,
  run: string,
  targetBytes: number,
  cache?: BodyCache,
): BenchMessage[] {
  return Array.from({ length: count }, (_, seq) => makeMessage(seq, run, targetBytes, cache));
}

/**
 * Mail for the protected paths: `[secure]` in the subject and a synthetic patient line (made-up name, date
 * of birth and record number), padded with office text to about `targetBytes`. The gateway must protect it
 * (PGP for a recipient with a key, a pickup otherwise); the next hop matches it by Message-ID or recipient.
 */
export function makePhiMessage(
  seq: number,
  run: string,
  targetBytes: number,
  rcptTo: string,
  cache?: BodyCache,
): BenchMessage {
  const mailFrom = 'frontdesk@practice.example';
  const date = new Date(Date.UTC(2025, 0, 6, 9, 0, 0) + seq * 1000).toUTCString().replace('GMT', '+0000');
  const headerLines = [
    `Date: ${date}`,
    `From: "Front Desk" <${mailFrom}>`,
    `To: <${rcptTo}>`,
    `Subject: [secure] Results ${seq}`,
    `Message-ID: <${run}.${seq}@bench.practice.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
  ];
  const head = headerLines.join('\r\n');
  const phi =
    `Patient: Jane Roe, DOB 04/12/1961, MRN ${4821337 + seq}. ` +
    'Diagnosed with type 2 diabetes; metformin prescribed.\r\n\r\n';
  const made = cachedBody(
    cache,
    seq * 2246822519 + run.length,
    Math.max(200, targetBytes - head.length - 4 - phi.length),
    phi,
  );
  const body = made.body;
  const message = Buffer.from(`${head}\r\n\r\n${body}`, 'latin1');
  const wire = Buffer.concat([dotStuff(message), Buffer.from('.\r\n', 'latin1')]);
  const bodySha256 = made.sha256;
  return { seq, mailFrom, rcptTo, size: message.length, wire, bodySha256 };
}
