// Mail the gateway writes about secure pickups: the notice with the link, the password (by a separate
// mail, to the sender, or as an SMS text), and the sender's "opened" and "reply waiting" notices.
// None of them may carry PHI: no subject of the original, no body, no file names. A notice never
// holds the password and the password mail never holds the link.
import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface Party {
  /** Display name, may be empty. */
  name: string;
  address: string;
}

export interface NoticeContext {
  practice: string;
  hostname: string;
  /** Sender of the original (From header). */
  sender: Party;
  /** When set, notices come from this address with Reply-To the sender. */
  notifyFrom?: string | undefined;
  /** Original Message-ID, for threading (ids carry no PHI). */
  inReplyTo?: string | undefined;
}

export type PasswordRoute = 'email' | 'sender' | 'sms';

function dateText(ms: number): string {
  return new Date(ms).toLocaleDateString('en-US', {
    weekday: 'long',
    year: 'numeric',
    month: 'long',
    day: 'numeric',
    timeZone: 'UTC',
  });
}

function who(p: Party): string {
  return p.name ? `${p.name} <${p.address}>` : p.address;
}

function fromHeaders(ctx: NoticeContext): {
  from: string | { name: string; address: string };
  replyTo?: string;
} {
  if (ctx.notifyFrom) {
    const name = `${ctx.sender.name || ctx.sender.address} via ${ctx.practice}`;
    return { from: { name, address: ctx.notifyFrom }, replyTo: ctx.sender.address };
  }
  return {
    from: ctx.sender.name ? { name: ctx.sender.name, address: ctx.sender.address } : ctx.sender.address,
  };
}

/** The composed message with CRLF line ends, and our header spelt as the contract says. */
async function toWire(composer: MailComposer): Promise<Buffer> {
  const built = (await composer.compile().build()).toString('latin1').replace(/\r?\n/g, '\r\n');
  // nodemailer normalises header names (X-Phi-Gateway-Kind).
  const end = built.indexOf('\r\n\r\n');
  const head = built.slice(0, end).replace(/^X-Phi-Gateway-Kind:/im, 'X-PHI-Gateway-Kind:');
  return Buffer.from(head + built.slice(end), 'latin1');
}

async function compose(opts: {
  from: string | { name: string; address: string };
  to: string;
  replyTo?: string | undefined;
  subject: string;
  text: string;
  html: string;
  kind: string;
  hostname: string;
  inReplyTo?: string | undefined;
  autoSubmitted?: boolean;
}): Promise<Buffer> {
  const composer = new MailComposer({
    from: opts.from,
    to: opts.to,
    ...(opts.replyTo ? { replyTo: opts.replyTo } : {}),
    subject: opts.subject,
    text: opts.text,
    html: opts.html,
    messageId: `<${randomBytes(12).toString('hex')}@${opts.hostname}>`,
    date: new Date(),
    ...(opts.inReplyTo ? { inReplyTo: opts.inReplyTo, references: opts.inReplyTo } : {}),
    headers: {
      'X-PHI-Gateway-Kind': opts.kind,
      ...(opts.autoSubmitted ? { 'Auto-Submitted': 'auto-generated' } : {}),
    },
    textEncoding: 'quoted-printable',
  });
  return toWire(composer);
}

function htmlPage(paragraphs: string[]): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"></head><body style="font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#1a1a1a;max-width:36em">${paragraphs.join('')}</body></html>`;
}

const passwordWhere: Record<PasswordRoute, string> = {
  email: 'You will receive the password in a separate email.',
  sender: 'The sender will give you the password, for example by phone.',
  sms: 'You will receive the password by text message.',
};

/** The notice to the recipient: who sent it, the link, the expiry and a reference. */
export function buildPickupNotice(
  ctx: NoticeContext,
  p: { rcpt: string; link: string; reference: string; expiresAt: number; passwordRoute: PasswordRoute },
): Promise<Buffer> {
  const sender = who(ctx.sender);
  const expires = dateText(p.expiresAt);
  const text = [
    `${sender} sent you a secure message through ${ctx.practice}.`,
    '',
    'To read it, open this link:',
    p.link,
    '',
    passwordWhere[p.passwordRoute],
    `The message can be opened until ${expires}.`,
    `Reference: ${p.reference}`,
    '',
    `The message is kept encrypted; only the password opens it. ${ctx.practice} will never ask you for the password by email or phone.`,
    'If you were not expecting this message, you can ignore it.',
  ].join('\n');
  const html = htmlPage([
    `<p>${escapeHtml(sender)} sent you a secure message through ${escapeHtml(ctx.practice)}.</p>`,
    `<p><a href="${escapeHtml(p.link)}" style="display:inline-block;padding:12px 20px;background:#1d4f91;color:#ffffff;text-decoration:none;border-radius:4px">Open the secure message</a></p>`,
    `<p>Or copy this link into your browser:<br>${escapeHtml(p.link)}</p>`,
    `<p>${escapeHtml(passwordWhere[p.passwordRoute])}<br>The message can be opened until ${escapeHtml(expires)}.<br>Reference: ${escapeHtml(p.reference)}</p>`,
    `<p style="color:#555">The message is kept encrypted; only the password opens it. ${escapeHtml(ctx.practice)} will never ask you for the password by email or phone. If you were not expecting this message, you can ignore it.</p>`,
  ]);
  return compose({
    ...fromHeaders(ctx),
    to: p.rcpt,
    subject: `Secure message from ${ctx.practice}`,
    text,
    html,
    kind: 'pickup-notice',
    hostname: ctx.hostname,
    inReplyTo: ctx.inReplyTo,
  });
}

/** Said in a re-issued password's mail (the sender or an admin made a new one). */
const REPLACES = 'It replaces the password sent earlier, which no longer works.';

/** The password, by itself: no link, so neither mail alone opens the message. */
export function buildPasswordMail(
  ctx: NoticeContext,
  p: { rcpt: string; password: string; reference: string; reissued?: boolean },
): Promise<Buffer> {
  const sender = who(ctx.sender);
  const replaces = p.reissued ? [REPLACES] : [];
  const text = [
    `This is the ${p.reissued ? 'new ' : ''}password for the secure message ${sender} sent you through ${ctx.practice} (reference ${p.reference}).`,
    '',
    `Password: ${p.password}`,
    '',
    ...replaces,
    'The link to the message came in a separate email. Enter this password on the page that link opens.',
  ].join('\n');
  const html = htmlPage([
    `<p>This is the ${p.reissued ? 'new ' : ''}password for the secure message ${escapeHtml(sender)} sent you through ${escapeHtml(ctx.practice)} (reference ${escapeHtml(p.reference)}).</p>`,
    `<p>Password: <strong style="font-family:monospace;font-size:20px;letter-spacing:1px">${escapeHtml(p.password)}</strong></p>`,
    ...replaces.map((t) => `<p>${t}</p>`),
    '<p>The link to the message came in a separate email. Enter this password on the page that link opens.</p>',
  ]);
  return compose({
    ...fromHeaders(ctx),
    to: p.rcpt,
    subject: `Password for your secure message (reference ${p.reference})`,
    text,
    html,
    kind: 'pickup-password',
    hostname: ctx.hostname,
  });
}

/** Policy "sender": the password goes to the sender, who passes it on by phone. */
export function buildPasswordForSender(
  ctx: NoticeContext,
  p: { rcpt: string; password: string; reference: string; expiresAt: number; reissued?: boolean },
): Promise<Buffer> {
  const replaces = p.reissued ? [REPLACES] : [];
  const text = [
    `Your secure message to ${p.rcpt} was sent as a secure pickup (reference ${p.reference}).`,
    'Please give the recipient this password by phone or in person, not by email:',
    '',
    `Password: ${p.password}`,
    '',
    ...replaces,
    `The message can be opened until ${dateText(p.expiresAt)}.`,
  ].join('\n');
  const html = htmlPage([
    `<p>Your secure message to ${escapeHtml(p.rcpt)} was sent as a secure pickup (reference ${escapeHtml(p.reference)}).</p>`,
    '<p>Please give the recipient this password by phone or in person, not by email:</p>',
    `<p>Password: <strong style="font-family:monospace;font-size:20px">${escapeHtml(p.password)}</strong></p>`,
    ...replaces.map((t) => `<p>${t}</p>`),
    `<p>The message can be opened until ${escapeHtml(dateText(p.expiresAt))}.</p>`,
  ]);
  return compose({
    from: { name: ctx.practice, address: `postmaster@${ctx.hostname}` },
    to: ctx.sender.address,
    subject: `Password to pass on for your secure message (reference ${p.reference})`,
    text,
    html,
    kind: 'pickup-password',
    hostname: ctx.hostname,
    autoSubmitted: true,
  });
}

/** Policy "sms": the body POSTed to the SMS webhook. */
export function smsPayload(
  ctx: NoticeContext,
  p: { rcpt: string; password: string; reference: string },
): Buffer {
  return Buffer.from(
    JSON.stringify({
      to: p.rcpt,
      reference: p.reference,
      text: `${ctx.practice}: the password for your secure message (ref ${p.reference}) is ${p.password}`,
    }),
    'utf8',
  );
}

/** To the sender, when a recipient first opens a pickup. */
export function buildOpenedNotice(
  ctx: NoticeContext,
  p: { rcpt: string; reference: string; openedAt: number },
): Promise<Buffer> {
  const when = new Date(p.openedAt).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  const text = `${p.rcpt} opened your secure message (reference ${p.reference}) on ${when}.`;
  return compose({
    from: { name: ctx.practice, address: `postmaster@${ctx.hostname}` },
    to: ctx.sender.address,
    subject: `Your secure message was opened (reference ${p.reference})`,
    text,
    html: htmlPage([`<p>${escapeHtml(text)}</p>`]),
    kind: 'pickup-opened',
    hostname: ctx.hostname,
    autoSubmitted: true,
  });
}

/** To the sender, when a recipient replied securely: the reply waits sealed behind sign-in. */
export function buildReplyNotice(
  ctx: NoticeContext,
  p: { rcpt: string; reference: string; link: string },
): Promise<Buffer> {
  const text = [
    `${p.rcpt} replied securely to your message (reference ${p.reference}).`,
    '',
    'Sign in to read the reply:',
    p.link,
  ].join('\n');
  return compose({
    from: { name: ctx.practice, address: `postmaster@${ctx.hostname}` },
    to: ctx.sender.address,
    subject: `Secure reply waiting (reference ${p.reference})`,
    text,
    html: htmlPage([
      `<p>${escapeHtml(p.rcpt)} replied securely to your message (reference ${escapeHtml(p.reference)}).</p>`,
      `<p><a href="${escapeHtml(p.link)}">Sign in to read the reply</a></p>`,
    ]),
    kind: 'pickup-reply',
    hostname: ctx.hostname,
    autoSubmitted: true,
  });
}

/** To the sender, about what an admin did with a held message: no subject, no content, only its id. */
export function buildAdminNotice(ctx: NoticeContext, p: { subject: string; text: string }): Promise<Buffer> {
  return compose({
    from: { name: ctx.practice, address: `postmaster@${ctx.hostname}` },
    to: ctx.sender.address,
    subject: p.subject,
    text: p.text,
    html: htmlPage([`<p>${escapeHtml(p.text)}</p>`]),
    kind: 'quarantine-notice',
    hostname: ctx.hostname,
    autoSubmitted: true,
  });
}

/** Policy replyDelivery: direct — the recipient's secure reply itself, to the sender (internal next hop only). */
export async function buildDirectReply(
  ctx: NoticeContext,
  p: {
    rcpt: string;
    reference: string;
    content: {
      subject: string;
      text: string;
      attachments: Array<{ filename: string; contentType: string; content: Buffer }>;
    };
  },
): Promise<Buffer> {
  const composer = new MailComposer({
    from: { name: `${p.rcpt} (secure reply)`, address: `postmaster@${ctx.hostname}` },
    replyTo: p.rcpt,
    to: ctx.sender.address,
    subject: p.content.subject || `Secure reply (reference ${p.reference})`,
    text: `${p.content.text}\n\n-- \nSecure reply from ${p.rcpt} to your message (reference ${p.reference}), delivered by ${ctx.practice}.`,
    attachments: p.content.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: a.content,
    })),
    messageId: `<${randomBytes(12).toString('hex')}@${ctx.hostname}>`,
    date: new Date(),
    headers: { 'X-PHI-Gateway-Kind': 'pickup-reply' },
  });
  return toWire(composer);
}
