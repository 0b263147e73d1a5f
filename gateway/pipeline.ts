// The processing pipeline: named stages in a fixed order, each returning one of a closed set of verdicts.
// A stage that throws or runs past its timeout defers the message; nothing passes because a stage failed.
import { simpleParser, type ParsedMail } from 'mailparser';
import { GatewayError } from '../config/errors.js';
import type { SealedWriteResult } from '../store/sealed-file.js';
import type { Readable } from 'node:stream';
import { inSlices } from './bounded-parse.js';
import { mayBeEncrypted } from './pgp-mime.js';
import { headlineOf, type Headline, type Scanner, type Verdict } from './scan.js';
import type { EncryptedKind, MessageDecision, RecipientRoute, Triggers } from './policy.js';
import type { CreatedPickup } from './protect.js';

export interface MessageContext {
  id: string;
  mailFrom: string;
  rcptTo: string[];
  trace: string;
  /**
   * The whole message in memory: set from the start for small messages, loaded on first use (`rawOf`) for
   * large ones, which the scan and the pickup read as a stream from the sealed spool instead (`open`).
   */
  raw?: Buffer;
  loading?: Promise<Buffer>;
  /** Reads the whole message from the sealed spool (authenticated before it resolves). */
  load: () => Promise<Buffer>;
  /**
   * The message as a stream from the sealed spool. Its tag is checked at its end: the stream fails there with
   * SPOOL_CORRUPT if the file was edited or cut, so nothing derived from it may be used unless it ended cleanly.
   */
  open: () => Promise<Readable>;
  /** From the first bytes, read by a streamed scan: false when the message cannot be end-to-end encrypted. */
  maybeEncrypted?: boolean;
  /** The whole message parsed: made on first use (`parsedOf`), since clean mail never needs it here. */
  parsing?: Promise<ParsedMail>;
  /** The decoded subject and plain header fields, set by the scan stage. */
  headline?: Headline;
  verdict?: Verdict;
  /** An admin's release decision for a message that was held. */
  release?: 'protect' | 'clear' | null;
  triggers?: Triggers;
  encrypted?: EncryptedKind | null;
  decision?: MessageDecision;
  routes?: RecipientRoute[];
  plan?: PlannedEnvelope[];
  pickups?: CreatedPickup[];
  /** Images redacted for a pickup: how many, which attachments (1-based), boxes in all, and the mode. */
  redaction?: { attachments: number; boxes: number; mode?: string; indexes?: number[] };
  /**
   * Blobs sealed by the act stage (what leaves instead of the original). Small ones are still in memory and
   * go into the database in the enqueue transaction; files are removed again if the message is not enqueued.
   */
  sealedBlobs?: Array<{ id: string; sealed: SealedWriteResult }>;
}

/** One envelope to enqueue. */
export interface PlannedEnvelope {
  rcpt: string;
  /** X-PHI-Gateway-Kind of what leaves: relay (the original), pgp, pickup-notice, pickup-password … */
  kind: string;
  /** Envelope sender; default the message's. */
  mailFrom?: string;
  content: 'spool' | 'blob';
  blobId?: string;
  prefix: string;
  /** Held for an admin with this reason instead of being sent. */
  hold?: string;
  /** Waits until the planned envelope at this index is delivered, then `afterDelay` ms more. */
  after?: number;
  afterDelay?: number;
}

export type StageVerdict =
  | { verdict: 'continue' }
  | { verdict: 'quarantine'; reason: string }
  | { verdict: 'reject'; reason: string }
  | { verdict: 'defer'; reason: string };

export interface Stage {
  readonly name: string;
  /** `signal` aborts when the stage times out: long work (extraction, OCR) should stop then. */
  run(ctx: MessageContext, signal: AbortSignal): Promise<StageVerdict>;
}

const CONTINUE: StageVerdict = { verdict: 'continue' };

/** mailparser options for every parse of a message (the pipeline's and the scan threads'). */
export const PARSE_OPTIONS = {
  skipImageLinks: true,
  skipTextLinks: true,
  // textAsHtml is never used: building it cost the scan thread a fifth of a 5 KB message's parse.
  skipTextToHtml: true,
  maxHtmlLengthToParse: 10 * 1024 * 1024,
};

/** The whole message in memory, loaded from the spool on first use. */
export async function rawOf(ctx: MessageContext): Promise<Buffer> {
  if (ctx.raw) return ctx.raw;
  ctx.loading ??= ctx.load();
  ctx.raw = await ctx.loading;
  return ctx.raw;
}

/** Header bytes kept by headOf at most (a header that has not ended by then is cut there). */
const HEAD_MAX = 1024 * 1024;

/**
 * The message's header (its first bytes up to the blank line that ends it, at most HEAD_MAX), without loading
 * it whole: from memory when it is there, else read from the sealed spool (see headFrom).
 */
export async function headOf(ctx: MessageContext): Promise<Buffer> {
  return ctx.raw ?? headFrom(await ctx.open());
}

/**
 * The first bytes of a message read as a stream, up to the blank line that ends its header (at most HEAD_MAX).
 * The stream is read to its end all the same: from a sealed file, what is kept counts only once the file passed
 * its tag (a stream that fails rejects).
 */
export async function headFrom(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const kept: Buffer[] = [];
  let length = 0;
  let ended = false;
  for await (const chunk of source) {
    if (ended) continue;
    // The blank line may straddle two chunks: look from three bytes back.
    const from = Math.max(0, length - 3);
    kept.push(chunk);
    length += chunk.length;
    ended = length >= HEAD_MAX || Buffer.concat(kept).indexOf('\r\n\r\n', from) >= 0;
  }
  return Buffer.concat(kept).subarray(0, HEAD_MAX);
}

/**
 * The message parsed by mailparser, once per message context, when a stage first needs it: from memory when
 * it is there, else streamed from the sealed spool (the parse fails if the stream's final tag check does).
 */
export function parsedOf(ctx: MessageContext): Promise<ParsedMail> {
  ctx.parsing ??= (async () => simpleParser(ctx.raw ? inSlices(ctx.raw) : await ctx.open(), PARSE_OPTIONS))();
  return ctx.parsing;
}

/** The first chunk of a stream, kept aside while every chunk passes on. */
async function* withFirst(source: AsyncIterable<Buffer>, first: (chunk: Buffer) => void) {
  let seen = false;
  for await (const chunk of source) {
    if (!seen) first(chunk);
    seen = true;
    yield chunk;
  }
}

/**
 * Parse and DLP scan. A scanner with its own threads parses there and hands back the header fields routing
 * needs; otherwise the message is parsed here. A parse failure fails the stage like any scan failure.
 */
export function scanStage(scanner: Scanner): Stage {
  return {
    name: 'scan',
    async run(ctx, signal) {
      if (!ctx.raw && scanner.scanStream) {
        // A large message: the scan thread reads it as it is decrypted, and its verdict counts only if the
        // stream ended with the tag checked. The header (in the first chunk) tells routing whether it could be
        // end-to-end encrypted, so clean or pickup mail is never loaded whole.
        let prefix: Buffer | undefined;
        const source = withFirst(await ctx.open(), (c) => (prefix = c));
        const { verdict, headline } = await scanner.scanStream(source, signal);
        ctx.verdict = verdict;
        ctx.headline = headline;
        ctx.maybeEncrypted = prefix ? mayBeEncrypted(prefix) : true;
      } else if (scanner.scanRaw) {
        const { verdict, headline } = await scanner.scanRaw(await rawOf(ctx), signal);
        ctx.verdict = verdict;
        ctx.headline = headline;
      } else {
        const raw = await rawOf(ctx);
        const parsed = await parsedOf(ctx);
        ctx.verdict = await scanner.scan(parsed, signal, raw);
        ctx.headline = headlineOf(parsed);
      }
      return CONTINUE;
    },
  };
}

/** Trace headers added to clean mail, after the Received line; rule ids and type names only, never content. */
export function traceHeaders(ctx: MessageContext): string {
  const verdict = ctx.verdict;
  const monitored = verdict?.monitored.length ? `; monitored=${verdict.monitored.join(',')}` : '';
  const logged = verdict?.action === 'log' ? `; logged=${verdict.rules.join(',')}` : '';
  return `${ctx.trace}X-PHI-Gateway-Id: ${ctx.id}\r\nX-PHI-Gateway-Scan: ${verdict?.phi ? 'phi' : 'clean'}${logged}${monitored}\r\n`;
}

/** Runs one stage under a timeout. A timeout is an error like any other: the message is deferred. */
export async function runStage(stage: Stage, ctx: MessageContext, timeoutMs: number): Promise<StageVerdict> {
  let timer: NodeJS.Timeout | undefined;
  const controller = new AbortController();
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new GatewayError('STAGE_TIMEOUT', `stage ${stage.name} timed out`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([stage.run(ctx, controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
