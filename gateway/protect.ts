// The route and act stages with protection: decide per recipient (policy.ts), then build what leaves —
// the original in clear, one PGP/MIME message for the keyed recipients, or a sealed pickup with a notice
// and a separate password for everyone else. Everything it produces is sealed before the envelopes that
// point at it commit; it never hands anything readable to delivery for a protected recipient.
import { Readable } from 'node:stream';
import type { Attachment, ParsedMail, AddressObject } from 'mailparser';
import type { ResolvedConfig } from '../config/load.js';
import { GatewayError } from '../config/errors.js';
import type { Store } from '../store/store.js';
import {
  PickupContentWriter,
  type CreatedPickup,
  type PickupAttachment,
  type PickupContent,
  type WrittenContent,
} from '../store/pickups.js';
import { inSlices, parseWithSinks } from './bounded-parse.js';
import { STREAM_MIN } from './workers.js';
import { newQueueId } from './ids.js';
import { fieldName, rewriteHeaders, rewriteHeadersStream, splitMessage } from './mime-headers.js';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Verdict } from './scan.js';
import {
  buildPasswordForSender,
  buildPasswordMail,
  buildPickupNotice,
  smsPayload,
  type NoticeContext,
  type Party,
} from './notices.js';
import type { MessageContext, PlannedEnvelope, Stage, StageVerdict } from './pipeline.js';
import { PARSE_OPTIONS, parsedOf, rawOf, traceHeaders } from './pipeline.js';
import {
  decideRoutes,
  findTriggers,
  subjectHoldsPhi,
  type EncryptedKind,
  type RecipientRoute,
} from './policy.js';

export type { CreatedPickup, PickupContent, WrittenContent };

/** What protection needs from the keyring, the PGP/MIME builder and the pickup store. */
export interface Protection {
  detectEncrypted(raw: Buffer): EncryptedKind | null;
  hasKey(address: string): Promise<boolean>;
  /** One PGP/MIME message for all `rcpts` (encrypted to each one's key, signed by the organisation). */
  encrypt(input: {
    raw: Buffer;
    rcpts: string[];
    outerSubject: string;
    extraHeaders: string;
  }): Promise<Buffer>;
  /**
   * `encrypt` for a message read as a stream (large mail): the PGP/MIME message is returned as a stream made as
   * `source` is read. It fails (before its end) if `source` does, with the source's error, or if encryption or
   * `signal` does: only a stream that ended cleanly is a whole message.
   */
  encryptStream?(
    input: { source: AsyncIterable<Buffer>; rcpts: string[]; outerSubject: string; extraHeaders: string },
    signal?: AbortSignal,
  ): Promise<Readable>;
  createPickups(input: {
    messageId: string;
    sender: string;
    recipients: string[];
    /** In memory, or already sealed into a pickup content file (which createPickups then owns). */
    content: PickupContent | WrittenContent;
    expiresAt: number;
  }): Promise<CreatedPickup[]>;
  /** Optional image redaction of pickup attachments (external recipients). Returns the content to seal. */
  redact?(
    content: PickupContent,
    signal: AbortSignal,
  ): Promise<{ content: PickupContent; redacted: number; boxes: number; indexes?: number[] }>;
  /** Which attachments `redact` may change (those are kept in memory for it); without it, all are. */
  redactable?(a: { contentType: string; filename: string }): boolean;
  /** Stops what it runs in the background (the PGP thread). */
  close?(): Promise<void>;
}

function addressList(field: AddressObject | AddressObject[] | undefined): string[] {
  const objs = Array.isArray(field) ? field : field ? [field] : [];
  return objs.flatMap((o) =>
    o.value.map((a) => (a.name ? `${a.name} <${a.address ?? ''}>` : (a.address ?? ''))),
  );
}

function senderParty(parsed: ParsedMail, mailFrom: string): Party {
  const first = parsed.from?.value[0];
  const address = first?.address || mailFrom;
  return { name: first?.name ?? '', address };
}

/** The pickup's content, from the parsed original (the real subject, without the tag). */
export function pickupContent(parsed: ParsedMail, subject: string): PickupContent {
  return {
    from: addressList(parsed.from)[0] ?? '',
    to: addressList(parsed.to),
    cc: addressList(parsed.cc),
    subject,
    date: (parsed.date ?? new Date()).toISOString(),
    text: parsed.text ?? '',
    html: typeof parsed.html === 'string' ? parsed.html : null,
    attachments: parsed.attachments.map((a, i) => ({ ...pickupAttachmentMeta(a, i), content: a.content })),
  };
}

/** How attachment `i` of the original is described in its pickup. */
function pickupAttachmentMeta(a: Attachment, i: number): Omit<PickupAttachment, 'content'> {
  return {
    filename: a.filename ?? `attachment-${i + 1}`,
    contentType: a.contentType || 'application/octet-stream',
    ...(a.cid ? { cid: a.cid } : {}),
    ...(a.related || a.contentDisposition === 'inline' ? { inline: true } : {}),
  };
}

/**
 * Reads the original (streamed from the spool) straight into a pickup content file: each attachment's body is
 * encrypted and written as it is decoded, except those `keep` asks for (images to redact), which come back in
 * memory in `parsed`; every other attachment there has an empty body. `written` is sealed only if the whole
 * message was read, its spool tag checked; any failure removes the file.
 */
async function streamIntoPickup(
  source: Buffer | Readable,
  writer: PickupContentWriter,
  keep: (a: Omit<PickupAttachment, 'content'>) => boolean,
): Promise<{ parsed: ParsedMail; kept: Set<number> }> {
  const kept = new Set<number>();
  const parsed = await parseWithSinks(source, PARSE_OPTIONS, (a, i) => {
    const meta = pickupAttachmentMeta(a, i);
    if (keep(meta)) {
      kept.add(i);
      const chunks: Buffer[] = [];
      return {
        take: (c) => void chunks.push(c),
        finish: () => void (a.content = Buffer.concat(chunks)),
      };
    }
    writer.begin(i, meta);
    return {
      take: (c) => writer.body(c),
      finish: () => {
        writer.end();
        a.content = Buffer.alloc(0);
      },
    };
  });
  return { parsed, kept };
}

/**
 * How images of a pickup are treated: the fired rules' own setting (any 'on' wins, then 'off'; 'clear-copy'
 * only when every acting rule that fired asks for it), else the gateway setting (external → on: pickups
 * always go to external recipients).
 */
export function redactionMode(
  verdict: Verdict,
  gatewayDefault: 'external' | 'on' | 'off',
): 'on' | 'off' | 'clear-copy' {
  const acting = verdict.explanation.filter((e) => !e.monitorOnly && e.action !== 'log');
  const modes = acting.map((e) => e.redaction);
  if (modes.includes('on')) return 'on';
  if (acting.length > 0 && modes.every((m) => m === 'clear-copy')) return 'clear-copy';
  if (modes.includes('off')) return 'off';
  return gatewayDefault === 'off' ? 'off' : 'on';
}

/** The original's headers with a new body: its text, HTML and attachments, images replaced by redacted ones. */
async function buildRedactedCopy(raw: Buffer, content: PickupContent): Promise<Buffer> {
  const composer = new MailComposer({
    text: content.text,
    ...(content.html ? { html: content.html } : {}),
    attachments: content.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: a.content,
      ...(a.cid ? { cid: a.cid } : {}),
    })),
  });
  const built = (await composer.compile().build()).toString('latin1').replace(/\r?\n/g, '\r\n');
  const { fields: bodyFields, body } = splitMessage(Buffer.from(built, 'latin1'));
  const { fields } = splitMessage(raw);
  const mimeNames = new Set(['content-type', 'content-transfer-encoding', 'mime-version']);
  const head = [
    ...fields.filter((f) => !mimeNames.has(fieldName(f))),
    ...bodyFields.filter((f) => mimeNames.has(fieldName(f))),
    'X-PHI-Gateway-Kind: relay-redacted\r\n',
  ];
  return Buffer.concat([Buffer.from(head.join('') + '\r\n', 'latin1'), body]);
}

/** The config in force for the next message: the file's, with an admin's UI settings in place (store/settings.ts). */
export type CurrentConfig = () => Promise<ResolvedConfig>;

export function routeStage(
  fileConfig: ResolvedConfig,
  protection: Protection,
  current?: CurrentConfig,
): Stage {
  return {
    name: 'route',
    async run(ctx): Promise<StageVerdict> {
      const config = current ? await current() : fileConfig;
      const { verdict, headline } = ctx;
      if (!verdict || !headline) throw new GatewayError('STAGE_FAILED', 'route before scan');
      ctx.triggers = findTriggers(headline, config.policy);
      // A streamed message whose header rules it out is not loaded whole just to be told it is not encrypted.
      ctx.encrypted =
        !ctx.raw && ctx.maybeEncrypted === false ? null : protection.detectEncrypted(await rawOf(ctx));
      const decision = await decideRoutes({
        verdict,
        triggers: ctx.triggers,
        encrypted: ctx.encrypted,
        rcptTo: ctx.rcptTo,
        policy: config.policy,
        hasKey: (a) => protection.hasKey(a),
        release: ctx.release ?? null,
      });
      ctx.decision = decision;
      if (decision.kind === 'quarantine') return { verdict: 'quarantine', reason: decision.reason };
      if (decision.kind === 'block') return { verdict: 'reject', reason: 'BLOCKED_BY_RULE' };
      ctx.routes = decision.routes;
      return { verdict: 'continue' };
    },
  };
}

function byAction(routes: readonly RecipientRoute[], action: RecipientRoute['action']): string[] {
  return routes.filter((r) => r.action === action).map((r) => r.rcpt);
}

export function actStage(
  fileConfig: ResolvedConfig,
  store: Store,
  protection: Protection,
  hostname: string,
  current?: CurrentConfig,
): Stage {
  const seal = async (ctx: MessageContext, content: Buffer | Readable): Promise<string> => {
    const id = newQueueId();
    let sealed;
    try {
      sealed = await store.sealForRow('blobs', id, content);
    } catch (err) {
      // A stream that failed, or was not read to its end: its producer stops (writeSealed removed the file).
      if (!Buffer.isBuffer(content)) content.destroy();
      throw err;
    }
    (ctx.sealedBlobs ??= []).push({ id, sealed });
    return id;
  };
  return {
    name: 'act',
    async run(ctx, signal): Promise<StageVerdict> {
      const config = current ? await current() : fileConfig;
      const { routes, headline, verdict, triggers } = ctx;
      if (!routes || !headline || !verdict || !triggers)
        throw new GatewayError('STAGE_FAILED', 'act before route');
      const plan: PlannedEnvelope[] = [];
      const trace = traceHeaders(ctx);
      const tagRemoved = triggers.subjectWithoutTag;
      // The original as it may leave in clear: byte-identical, or with only the tag taken out of the subject.
      let clearRaw: string | null = null;
      const clean = byAction(routes, 'clean');
      if (clean.length > 0) {
        if (tagRemoved === null) {
          for (const rcpt of clean) plan.push({ rcpt, kind: 'relay', content: 'spool', prefix: trace });
        } else {
          // The copy with the tag taken out of its subject, sealed as the original is read (never whole).
          const original = ctx.raw ? inSlices(ctx.raw) : await ctx.open();
          async function* copy(removed: string): AsyncGenerator<Buffer> {
            yield Buffer.from(trace, 'latin1');
            yield* rewriteHeadersStream(original, { set: { Subject: removed } });
          }
          try {
            clearRaw = await seal(ctx, Readable.from(copy(tagRemoved), { objectMode: false }));
          } catch (err) {
            original.destroy(); // read part way, or not at all
            throw err;
          }
          for (const rcpt of clean)
            plan.push({ rcpt, kind: 'relay', content: 'blob', blobId: clearRaw, prefix: '' });
        }
      }
      const realSubject = tagRemoved ?? headline.subject;
      const neutral = config.policy.neutralSubject.replace(/\{practice\}/g, config.practiceName);
      const outerSubject = subjectHoldsPhi(verdict) ? neutral : realSubject || neutral;

      const pgp = byAction(routes, 'pgp');
      if (pgp.length > 0) {
        let blobId: string;
        if (protection.encryptStream && (!ctx.raw || ctx.raw.length >= STREAM_MIN)) {
          // Large mail: read from the spool, encrypted in the PGP thread and sealed as it comes; never whole.
          // The blob counts only if the spool's tag passed at its end (else the stream fails, the file goes).
          const spool = ctx.raw ? inSlices(ctx.raw) : await ctx.open();
          const source =
            tagRemoved === null
              ? (spool as AsyncIterable<Buffer>)
              : rewriteHeadersStream(spool, { set: { Subject: tagRemoved } });
          let encrypted: Readable;
          try {
            encrypted = await protection.encryptStream(
              { source, rcpts: pgp, outerSubject, extraHeaders: trace },
              signal,
            );
          } catch (err) {
            spool.destroy();
            throw err;
          }
          blobId = await seal(ctx, encrypted);
        } else {
          const raw = await rawOf(ctx);
          const inner = tagRemoved === null ? raw : rewriteHeaders(raw, { set: { Subject: tagRemoved } });
          const encrypted = await protection.encrypt({
            raw: inner,
            rcpts: pgp,
            outerSubject,
            extraHeaders: trace,
          });
          blobId = await seal(ctx, encrypted);
        }
        for (const rcpt of pgp) plan.push({ rcpt, kind: 'pgp', content: 'blob', blobId, prefix: '' });
      }

      const pickup = byAction(routes, 'pickup');
      ctx.pickups = [];
      if (pickup.length > 0) {
        const mode = redactionMode(verdict, config.redaction.gateway);
        const redacting = protection.redact !== undefined && mode !== 'off';
        // clear-copy rebuilds the whole message around the redacted images: it needs every attachment in memory.
        // Otherwise the original streams into the pickup file, and only images to redact are held.
        const streamed = !(redacting && mode === 'clear-copy');
        let writer: PickupContentWriter | undefined;
        let parsed: ParsedMail;
        let kept = new Set<number>();
        if (streamed) {
          writer = await PickupContentWriter.open(store);
          try {
            const source = ctx.raw ? ctx.raw : await ctx.open();
            ({ parsed, kept } = await streamIntoPickup(
              source,
              writer,
              (a) => redacting && (protection.redactable?.(a) ?? true),
            ));
          } catch (err) {
            await writer.abort();
            throw err;
          }
        } else parsed = await parsedOf(ctx);
        const original = pickupContent(parsed, realSubject);
        let content = original;
        if (redacting) {
          try {
            const result = await protection.redact!(original, signal);
            ctx.redaction = {
              attachments: result.redacted,
              boxes: result.boxes,
              mode,
              indexes: result.indexes ?? [],
            };
            if (mode === 'on') content = result.content;
            else {
              // clear-copy: the pickup keeps the original; each recipient also gets the message in clear with
              // its images redacted (only chosen when every acting rule that fired is about images alone).
              const raw = await rawOf(ctx);
              const copy = await buildRedactedCopy(
                tagRemoved === null ? raw : rewriteHeaders(raw, { set: { Subject: tagRemoved } }),
                result.content,
              );
              const blobId = await seal(ctx, Buffer.concat([Buffer.from(trace, 'latin1'), copy]));
              for (const rcpt of pickup)
                plan.push({ rcpt, kind: 'relay-redacted', content: 'blob', blobId, prefix: '' });
            }
          } catch (err) {
            await writer?.abort();
            // An image that still shows PHI after redaction is never released: the message is held.
            if (err instanceof GatewayError && err.code === 'REDACT_UNSAFE')
              return { verdict: 'quarantine', reason: 'REDACTION_UNSAFE' };
            throw err;
          }
        }
        let sealedContent: PickupContent | WrittenContent = content;
        if (writer) {
          // The attachments held in memory (images, redacted or not) join the streamed ones in the file.
          try {
            for (const i of kept) await writer.attachment(i, content.attachments[i]!);
            sealedContent = await writer.finish(content);
          } catch (err) {
            await writer.abort();
            throw err;
          }
        }
        const sender = senderParty(parsed, ctx.mailFrom);
        let created: CreatedPickup[];
        try {
          created = await protection.createPickups({
            messageId: ctx.id,
            sender: sender.address,
            recipients: pickup,
            content: sealedContent,
            expiresAt: Date.now() + config.pickup.expiry,
          });
        } catch (err) {
          if (writer) await writer.abort();
          throw err;
        }
        ctx.pickups = created;
        const notice: NoticeContext = {
          practice: config.practiceName,
          hostname,
          sender,
          notifyFrom: config.pickup.notifyFrom,
          inReplyTo: parsed.messageId,
        };
        const route = config.pickup.passwordDelivery;
        for (const p of created) {
          const link = `${config.publicUrl}/p/${p.token}`;
          const noticeBlob = await seal(
            ctx,
            await buildPickupNotice(notice, {
              rcpt: p.rcpt,
              link,
              reference: p.reference,
              expiresAt: p.expiresAt,
              passwordRoute: route,
            }),
          );
          const noticeIndex = plan.length;
          plan.push({ rcpt: p.rcpt, kind: 'pickup-notice', content: 'blob', blobId: noticeBlob, prefix: '' });
          if (route === 'email') {
            const blobId = await seal(ctx, await buildPasswordMail(notice, p));
            plan.push({
              rcpt: p.rcpt,
              kind: 'pickup-password',
              content: 'blob',
              blobId,
              prefix: '',
              after: noticeIndex,
              afterDelay: config.pickup.passwordDelay,
            });
          } else if (route === 'sender') {
            const blobId = await seal(ctx, await buildPasswordForSender(notice, p));
            plan.push({
              rcpt: sender.address,
              kind: 'pickup-password',
              content: 'blob',
              blobId,
              prefix: '',
              mailFrom: '',
              after: noticeIndex,
              afterDelay: 0,
            });
          } else {
            const blobId = await seal(ctx, smsPayload(notice, p));
            plan.push({
              rcpt: p.rcpt,
              kind: 'pickup-password-sms',
              content: 'blob',
              blobId,
              prefix: '',
              after: noticeIndex,
              afterDelay: config.pickup.passwordDelay,
            });
          }
        }
      }

      for (const r of routes) {
        if (r.action === 'hold')
          plan.push({ rcpt: r.rcpt, kind: 'relay', content: 'spool', prefix: trace, hold: r.reason });
      }
      ctx.plan = plan;
      return { verdict: 'continue' };
    },
  };
}
