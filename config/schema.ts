// The one typed schema for phi-gateway's configuration: every key, its default and its unit live here.
// Types everywhere else are derived from it; nothing may read settings that are not declared here.
import { z } from 'zod';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const port = z.number().int().min(0).max(65535);

export const smtpSchema = z.strictObject({
  /** Address the SMTP listener binds to. Env: PHIGW_SMTP_HOST. */
  host: z.string().default('127.0.0.1'),
  /** SMTP port. 2525 so the default runs unprivileged. Env: PHIGW_SMTP_PORT. */
  port: port.default(2525),
  /** Name used in the greeting banner and in Received headers. Defaults to the machine's host name. */
  hostname: z.string().optional(),
  /** Largest message accepted, in bytes (announced with SIZE, enforced with 552). 35 MB. */
  maxMessageSize: z
    .number()
    .int()
    .positive()
    .default(35 * 1024 * 1024),
  /** Most recipients in one transaction; more get 452 4.5.3 and the client sends them in another. */
  maxRecipients: z.number().int().positive().default(100),
  /** Most simultaneous SMTP connections in total. */
  maxClients: z.number().int().positive().default(200),
  /**
   * Most simultaneous SMTP connections from one IP address; more get 421 at once, so one host cannot take
   * every slot of maxClients (Postfix smtpd_client_connection_count_limit). Trusted networks are exempt.
   */
  maxClientsPerIp: z.number().int().positive().default(20),
  /**
   * Networks (CIDR) that may relay without AUTH, like Postfix mynetworks. Default: loopback only.
   * Every other client must STARTTLS and AUTH before it can send; nobody else may relay.
   */
  trustedNetworks: z.array(z.string()).default(['127.0.0.0/8', '::1/128']),
  /** PEM certificate and key files for STARTTLS. When unset, a self-signed pair is generated once in the data dir. */
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
  /** Idle time before an SMTP connection is dropped, in milliseconds. */
  socketTimeout: z
    .number()
    .int()
    .positive()
    .default(5 * MINUTE),
  /** On shutdown, how long open transactions may take to finish before connections are closed, in milliseconds. */
  closeTimeout: z
    .number()
    .int()
    .positive()
    .default(30 * SECOND),
});

export const webSchema = z.strictObject({
  /** Address the web listener binds to. Env: PHIGW_WEB_HOST. */
  host: z.string().default('127.0.0.1'),
  /** Web port. Env: PHIGW_WEB_PORT. */
  port: port.default(8080),
  /** Base of the links put in mail. Env: PHIGW_PUBLIC_URL. Default: http://127.0.0.1:<web port>. */
  publicUrl: z.url({ protocol: /^https?$/ }).optional(),
  /**
   * Reverse proxies (addresses or CIDRs; also express's names loopback, linklocal, uniquelocal) whose
   * X-Forwarded-For / X-Forwarded-Proto are believed. Default none: the socket's peer is the client, so
   * per-IP limits cannot be dodged with a forged header. Passed to express `trust proxy`.
   */
  trustProxy: z.array(z.string().min(1)).default([]),
  /** PEM certificate and key files to serve HTTPS directly (set both or neither); reloaded on SIGHUP. */
  tlsCert: z.string().optional(),
  tlsKey: z.string().optional(),
});

export const relaySchema = z.strictObject({
  /**
   * Next hop: smtp://[user:pass@]host[:port] (STARTTLS when offered) or smtps://… (implicit TLS).
   * Env: PHIGW_RELAY_URL. When unset, the built-in outbox stores outgoing mail and shows it at /outbox.
   */
  url: z
    .string()
    .regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://')
    .optional(),
  /** Pooled connections kept open to the next hop. */
  maxConnections: z.number().int().positive().default(5),
  /** Messages sent over one pooled connection before it is recycled. */
  maxMessagesPerConnection: z.number().int().positive().default(1000),
  /** Time allowed for one delivery attempt (connect, transfer, reply), in milliseconds. */
  timeout: z
    .number()
    .int()
    .positive()
    .default(2 * MINUTE),
  /**
   * Time allowed for the next hop's reply after the end of the message, in milliseconds (RFC 5321
   * 4.5.3.2.6 asks for 10 minutes: a server may do its own checks then). A next hop that has taken the
   * message but answers after this gets it again on the retry, so keep it long.
   */
  dataTimeout: z
    .number()
    .int()
    .positive()
    .default(10 * MINUTE),
  /**
   * Send to an smtp:// next hop that does not offer STARTTLS. Off: STARTTLS is required (a next hop on
   * loopback is exempt, as nothing crosses a network). Turning it on lets anyone on the path who strips the
   * STARTTLS offer read every message in transit.
   */
  allowPlaintext: z.boolean().default(false),
  /**
   * Accept any certificate from the next hop. Off: the next hop's certificate must be valid.
   * Turning it on allows a man in the middle on the path to the relay to read all mail.
   */
  allowInvalidCertificates: z.boolean().default(false),
});

export const queueSchema = z.strictObject({
  /**
   * Messages processed (parse → scan → route → act) at once. Most of that time is spent waiting for the
   * scan and PGP threads, so enough must be in flight to keep them busy; their memory is bounded apart
   * (64 MB of received mail in the pipeline at once).
   */
  workers: z.number().int().positive().default(32),
  /** Deliveries to the next hop in flight at once. */
  deliveryConcurrency: z.number().int().positive().default(10),
  /** Longest a single pipeline stage may run before the message is deferred, in milliseconds. */
  stageTimeout: z
    .number()
    .int()
    .positive()
    .default(60 * SECOND),
  /** Processing attempts before a message that keeps failing is held in quarantine with the reason. */
  maxProcessingAttempts: z.number().int().positive().default(5),
  /** First retry delay after a temporary failure, in milliseconds; doubles each time. 1 minute. */
  retryInitialDelay: z
    .number()
    .int()
    .positive()
    .default(1 * MINUTE),
  /** Retry delay ceiling, in milliseconds. 1 hour. */
  retryMaxDelay: z
    .number()
    .int()
    .positive()
    .default(1 * HOUR),
  /** How long delivery is retried before the sender gets a bounce, in milliseconds. 5 days. */
  maxQueueAge: z
    .number()
    .int()
    .positive()
    .default(5 * DAY),
  /** How often the queue looks for due work besides being woken by new mail, in milliseconds. */
  pollInterval: z
    .number()
    .int()
    .positive()
    .default(1 * SECOND),
});

export const dlpSchema = z.strictObject({
  /**
   * DLP rule pack (YAML). Default: <dataDir>/dlp-rules.yaml once it exists (admin publishes write it),
   * else config/dlp-rules.yaml shipped with phi-gateway (config/rules-file.ts). Changes to the file are
   * picked up without a restart; an invalid file is refused with the reason and the previous rules stay.
   */
  rulesFile: z.string().optional(),
  /** How often the rules file is checked for changes, in milliseconds. */
  reloadInterval: z
    .number()
    .int()
    .positive()
    .default(2 * SECOND),
  /**
   * Threads that parse and scan messages off the main thread (which keeps SMTP intake, the queue and
   * delivery). Default: 1 on a machine with 2 or more CPUs, else 0 (scan on the main thread).
   */
  scanThreads: z.number().int().min(0).max(16).optional(),
});

const domainList = z.array(z.string().toLowerCase()).default([]);

export const policySchema = z.strictObject({
  /**
   * Domains of the practice itself (and its own mail server): mail to them stays inside, so it leaves in
   * clear even when it holds PHI. Exact domains; `*.example.org` also covers its subdomains.
   */
  internalDomains: domainList,
  /** Recipient addresses or domains exempt from protection by an admin (an allow-list; use sparingly). */
  exemptRecipients: domainList,
  /** Recipient domains whose mail is always protected, PHI or not. */
  alwaysProtectDomains: domainList,
  /** Recipient domains that must get PGP: without a valid key the message is held, never sent as a pickup. */
  requirePgpDomains: domainList,
  /** Recipient domains that may not get a pickup: without a key the message is quarantined. */
  noPickupDomains: domainList,
  /** Subject tags that force protection (matched in brackets, any case, spaces tolerated) and are removed. */
  subjectTags: z.array(z.string()).default(['secure', 'encrypt']),
  /** Header values that force protection, as `Header-Name: value` (any case), e.g. Outlook's Sensitivity. */
  protectHeaders: z.array(z.string()).default(['Sensitivity: Company-Confidential']),
  /** The outer subject of protected mail whose subject holds PHI. `{practice}` is the practice name. */
  neutralSubject: z.string().default('Secure message from {practice}'),
});

export const pgpSchema = z.strictObject({
  /** Recipient domains whose keys may be looked up by Web Key Directory (HTTPS). Empty: WKD is off. */
  wkdDomains: domainList,
  /** Time allowed for one WKD lookup, in milliseconds. */
  wkdTimeout: z
    .number()
    .int()
    .positive()
    .default(5 * SECOND),
  /** How long a WKD answer (a key or "no key") is cached, in milliseconds. 1 day. */
  wkdCacheTtl: z
    .number()
    .int()
    .positive()
    .default(1 * DAY),
});

export const pickupSchema = z.strictObject({
  /** How long a pickup can be opened, in milliseconds. 30 days. Rules may set their own. */
  expiry: z
    .number()
    .int()
    .positive()
    .default(30 * DAY),
  /** Where the password goes: a separate email to the recipient, the sender (to pass on by phone), or an SMS webhook. */
  passwordDelivery: z.enum(['email', 'sender', 'sms']).default('email'),
  /** Delay between the notice and the password mail, in milliseconds. The password never goes first. */
  passwordDelay: z
    .number()
    .int()
    .min(0)
    .default(1 * MINUTE),
  /** For passwordDelivery: sms — URL that receives `{"to", "text", "reference"}` as JSON by POST. */
  smsWebhookUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Notices come from the sender's address by default; set an address here to send them from the gateway (Reply-To is the sender). */
  notifyFrom: z.string().optional(),
  /** Failed passwords before a pickup (and the client's IP) is locked for lockoutDuration. */
  maxFailures: z.number().int().positive().default(5),
  /** How long a temporary lock lasts, in milliseconds. 15 minutes. */
  lockoutDuration: z
    .number()
    .int()
    .positive()
    .default(15 * MINUTE),
  /** Failed passwords before a hard lock that only the sender or an admin can lift. */
  hardLockFailures: z.number().int().positive().default(20),
  /** An opened pickup's session ends after this long without use, in milliseconds. 15 minutes. */
  sessionIdleTimeout: z
    .number()
    .int()
    .positive()
    .default(15 * MINUTE),
  /** Secure replies: kept sealed for the sender to read after signing in, or delivered straight to the sender. */
  replyDelivery: z.enum(['sealed', 'direct']).default('sealed'),
  /** Tell the sender when a recipient first opens a pickup. */
  openedNotice: z.boolean().default(true),
  /** How often expired pickups are purged, in milliseconds. */
  purgeInterval: z
    .number()
    .int()
    .positive()
    .default(10 * MINUTE),
});

export const redactionSchema = z.strictObject({
  /** Redact images of mail sent as a pickup: for external recipients (default), always, or never. */
  gateway: z.enum(['external', 'on', 'off']).default('external'),
  /** How a region is hidden: a frosted fill made from its surroundings, or a solid box. */
  mode: z.enum(['frost', 'solid']).default('frost'),
  /** OCR workers (tesseract.js). 0: one per core. */
  workers: z.number().int().min(0).default(0),
  /** Images larger than this many pixels are refused (sharp limitInputPixels). */
  maxInputPixels: z.number().int().positive().default(100_000_000),
  /** Images are scaled down to at most this many pixels for OCR. */
  ocrMaxPixels: z.number().int().positive().default(12_000_000),
  /** Time allowed to redact one image, in milliseconds. */
  timeout: z
    .number()
    .int()
    .positive()
    .default(60 * SECOND),
});

export const configSchema = z.strictObject({
  /** Where state lives: database, spool, blobs, keys. Env: PHIGW_DATA_DIR. */
  dataDir: z.string().default('./data'),
  /** PostgreSQL URL for scale-out. Env: PHIGW_DATABASE_URL. Default: SQLite file in the data dir. */
  databaseUrl: z.string().optional(),
  /**
   * This node's name on the queue leases it takes; unique per node sharing a database, stable across its
   * restarts (a restarted node resumes its own leases at once). Env: PHIGW_NODE_ID. Default: the host name.
   */
  nodeId: z.string().min(1).max(64).optional(),
  /** The practice's name, shown in notices and neutral subjects. */
  practiceName: z.string().default('Your practice'),
  /** Log level: fatal, error, warn, info, debug. Logs never carry message content at any level. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'),
  smtp: smtpSchema.default(() => smtpSchema.parse({})),
  web: webSchema.default(() => webSchema.parse({})),
  relay: relaySchema.default(() => relaySchema.parse({})),
  queue: queueSchema.default(() => queueSchema.parse({})),
  dlp: dlpSchema.default(() => dlpSchema.parse({})),
  policy: policySchema.default(() => policySchema.parse({})),
  pgp: pgpSchema.default(() => pgpSchema.parse({})),
  pickup: pickupSchema.default(() => pickupSchema.parse({})),
  redaction: redactionSchema.default(() => redactionSchema.parse({})),
});

export type Config = z.infer<typeof configSchema>;
export type SmtpConfig = z.infer<typeof smtpSchema>;
export type RelayConfig = z.infer<typeof relaySchema>;
export type QueueConfig = z.infer<typeof queueSchema>;
export type DlpConfig = z.infer<typeof dlpSchema>;
export type PolicyConfig = z.infer<typeof policySchema>;
export type PgpConfig = z.infer<typeof pgpSchema>;
export type PickupConfig = z.infer<typeof pickupSchema>;
export type RedactionConfig = z.infer<typeof redactionSchema>;
