// Delivery status notifications (RFC 3464 multipart/report) to the sender of mail that could not be
// delivered. They name the recipients and the next hop's reason; they never quote the message content
// or its subject (which may hold PHI), only its Message-ID and date.
import { randomBytes } from 'node:crypto';

export interface BounceRecipient {
  rcpt: string;
  /** 5.x.x status, e.g. 5.1.1, or 4.4.7 for an expired queue lifetime. */
  status: string;
  /** The next hop's reply, or our reason. */
  diagnostic: string;
  /** 'failed' for a permanent refusal, 'delayed' is not used: only final failures bounce. */
  action: 'failed';
  remoteMta?: string;
}

export interface BounceInput {
  reportingMta: string;
  queueId: string;
  sender: string;
  recipients: BounceRecipient[];
  arrivalDate: Date;
  /** Header lines of the original that are safe to quote (Message-ID, Date, From, To). */
  originalHeaders: string;
  /** Replaces the closing advice (e.g. why a rule refused the message and how to send it safely). */
  advice?: string;
  /** Subject of the report. */
  subject?: string;
  now?: Date;
}

function statusFromCode(code: number | null, response: string): string {
  // The enhanced code can only come first after the reply code (RFC 3463), not anywhere in the text.
  const enhanced = /^(?:\d{3}[ -])?([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(response);
  if (enhanced) return `${enhanced[1]}.${enhanced[2]}.${enhanced[3]}`;
  if (code !== null && code >= 500) return '5.0.0';
  return '4.0.0';
}

export function bounceStatus(code: number | null, response: string): string {
  const s = statusFromCode(code, response);
  return s.startsWith('5') ? s : `5${s.slice(1)}`;
}

function rfc2822Date(d: Date): string {
  return d.toUTCString().replace('GMT', '+0000');
}

const SAFE_HEADERS = /^(message-id|date|from|to|cc):/i;

/** Picks the original's header lines that are safe to quote back to the sender (never Subject). */
export function safeOriginalHeaders(raw: Buffer): string {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end === -1 ? Math.min(raw.length, 64 * 1024) : end).toString('utf8');
  const unfolded = head.replace(/\r\n[ \t]+/g, ' ').split('\r\n');
  return unfolded
    .filter((line) => SAFE_HEADERS.test(line))
    .map((l) => l.slice(0, 998))
    .join('\r\n');
}

export function buildBounce(input: BounceInput): Buffer {
  const now = input.now ?? new Date();
  const boundary = `phigw-${randomBytes(12).toString('hex')}`;
  const list = input.recipients.map((r) => `  <${r.rcpt}>: ${r.diagnostic}`).join('\r\n');
  const human =
    `This is the mail system at ${input.reportingMta} (phi-gateway).\r\n\r\n` +
    `Your message could not be delivered to ${input.recipients.length === 1 ? 'this recipient' : 'these recipients'}:\r\n\r\n` +
    `${list}\r\n\r\n` +
    `Queue id: ${input.queueId}\r\n` +
    (input.advice ??
      'The original message is not attached. If you need to send it again, check the address and send it anew.') +
    '\r\n';
  const perRecipient = input.recipients
    .map((r) =>
      [
        `Final-Recipient: rfc822; ${r.rcpt}`,
        `Action: ${r.action}`,
        `Status: ${r.status}`,
        ...(r.remoteMta ? [`Remote-MTA: dns; ${r.remoteMta}`] : []),
        `Diagnostic-Code: smtp; ${r.diagnostic.replace(/[\r\n]+/g, ' ')}`,
      ].join('\r\n'),
    )
    .join('\r\n\r\n');
  const status =
    `Reporting-MTA: dns; ${input.reportingMta}\r\n` +
    `X-PHI-Gateway-Queue-ID: ${input.queueId}\r\n` +
    `Arrival-Date: ${rfc2822Date(input.arrivalDate)}\r\n\r\n` +
    perRecipient +
    '\r\n';
  const message =
    `From: Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>\r\n` +
    `To: <${input.sender}>\r\n` +
    `Subject: ${input.subject ?? 'Undelivered Mail Returned to Sender'}\r\n` +
    `Date: ${rfc2822Date(now)}\r\n` +
    `Message-ID: <${input.queueId}.${randomBytes(6).toString('hex')}@${input.reportingMta}>\r\n` +
    `Auto-Submitted: auto-replied\r\n` +
    `X-PHI-Gateway-Kind: bounce\r\n` +
    `MIME-Version: 1.0\r\n` +
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"\r\n` +
    `\r\n` +
    `This is a MIME-encapsulated message.\r\n\r\n` +
    `--${boundary}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
    human +
    `\r\n--${boundary}\r\n` +
    `Content-Type: message/delivery-status\r\n\r\n` +
    status +
    `\r\n--${boundary}\r\n` +
    `Content-Type: text/rfc822-headers\r\n\r\n` +
    (input.originalHeaders ? input.originalHeaders + '\r\n' : '') +
    `\r\n--${boundary}--\r\n`;
  return Buffer.from(message, 'utf8');
}
