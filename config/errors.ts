// The error catalogue: one stable code per failure, with the SMTP reply or HTTP status it maps to.
// Messages here are shown to clients and written to logs, so they never carry message content.

export interface ErrorSpec {
  /** SMTP reply code and enhanced status, when the error reaches an SMTP client. */
  smtp?: { code: number; status: string; text: string };
  /** HTTP status, when the error reaches a web client. */
  http?: number;
}

export const errorCatalogue = {
  SMTP_AUTH_REQUIRED: { smtp: { code: 530, status: '5.7.0', text: 'Authentication required to relay' } },
  SMTP_RELAY_DENIED: { smtp: { code: 554, status: '5.7.1', text: 'Relay access denied' } },
  SMTP_AUTH_FAILED: { smtp: { code: 535, status: '5.7.8', text: 'Authentication credentials invalid' } },
  SMTP_TOO_LARGE: { smtp: { code: 552, status: '5.3.4', text: 'Message exceeds the maximum size' } },
  SMTP_BARE_LINE_ENDING: {
    smtp: { code: 550, status: '5.5.2', text: 'Bare CR or LF in message data is not allowed (use CRLF)' },
  },
  SMTP_BAD_ADDRESS: { smtp: { code: 553, status: '5.1.3', text: 'Address is not valid' } },
  SMTP_LOCAL_ERROR: {
    smtp: { code: 451, status: '4.3.0', text: 'Local error, message not accepted; try again later' },
  },
  SMTP_TOO_MANY_CONNECTIONS: {
    smtp: { code: 421, status: '4.7.0', text: 'Too many connections from your address; try again later' },
  },
  SMTP_SHUTTING_DOWN: {
    smtp: { code: 421, status: '4.3.2', text: 'Service shutting down; try again later' },
  },
  SPOOL_CORRUPT: {},
  SPOOL_MISSING: {},
  STAGE_FAILED: {},
  STAGE_TIMEOUT: {},
  DELIVERY_FAILED: {},
  CONFIG_INVALID: {},
  PGP_FAILED: {},
  BACKUP_PASSPHRASE: {},
  BACKUP_CORRUPT: {},
  BACKUP_REFUSED: {},
  MASTER_KEY_IN_USE: {},
  NOT_FOUND: { http: 404 },
  PICKUP_UNKNOWN: { http: 404 },
  PICKUP_GONE: { http: 410 },
  PICKUP_LOCKED: { http: 423 },
  PICKUP_WRONG_PASSWORD: { http: 401 },
  PICKUP_NO_SESSION: { http: 401 },
  /** An OCR worker failed or crashed while reading an image (the worker is replaced). */
  OCR_FAILED: {},
  /** OCR of an image took longer than allowed (the worker is killed and replaced). */
  OCR_TIMEOUT: {},
  /** The OCR pool was closed. */
  OCR_CLOSED: {},
  /** An image format outside the redaction allow-list. */
  REDACT_UNSUPPORTED: { http: 415 },
  /** An image with more pixels (or pages) than allowed. */
  REDACT_TOO_LARGE: { http: 413 },
  /** An image that cannot be decoded (corrupt or truncated). */
  REDACT_UNREADABLE: { http: 422 },
  /** PHI is still readable after redaction: the image must be quarantined, never released. */
  REDACT_UNSAFE: { http: 422 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/** An error with a stable code; `cause` keeps the original error for operators (never shown to clients). */
export class GatewayError extends Error {
  override name = 'GatewayError';
  constructor(
    readonly code: ErrorCode,
    message?: string,
    options?: { cause?: unknown },
  ) {
    const spec: ErrorSpec = errorCatalogue[code];
    super(message ?? spec.smtp?.text ?? code, options);
  }

  /** An Error shaped the way smtp-server expects for a reply (responseCode + text with enhanced status). */
  toSmtpReply(): Error & { responseCode: number } {
    const spec: ErrorSpec = errorCatalogue[this.code];
    const smtp = spec.smtp ?? errorCatalogue.SMTP_LOCAL_ERROR.smtp;
    const reply = new Error(`${smtp.status} ${this.message}`) as Error & { responseCode: number };
    reply.responseCode = smtp.code;
    return reply;
  }
}

/** The error's code if it is one of ours, for logs; never its message text from a library (could echo input). */
export function errorCode(err: unknown): string {
  if (err instanceof GatewayError) return err.code;
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'UNKNOWN';
}
