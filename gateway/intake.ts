// SMTP intake: the thin edge. It checks who may relay, size, recipients and line endings, spools the
// message durably and only then answers 250. It never parses or scans content (the workers do).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { ResolvedConfig } from '../config/load.js';
import { GatewayError, errorCode } from '../config/errors.js';
import type { Logger } from '../config/log.js';
import { authenticate } from '../store/users.js';
import { ensureUserKey } from '../store/user-keys.js';
import type { Store } from '../store/store.js';
import { makeNetworkMatcher } from './networks.js';
import { installDataReader } from './smtp-data-reader.js';
import { spoolMessage, type IntakeMeta, type SpooledMessage } from './spool.js';
import { checkTls, loadTls } from './tls.js';

export interface IntakeOptions {
  config: ResolvedConfig;
  store: Store;
  log: Logger;
  /** Called after a message is durably spooled (and leased for processing), to hand it to the workers. */
  onSpooled: (message: SpooledMessage, plaintext: Buffer | undefined) => void;
}

type Reply = Error & { responseCode: number };

/** gateway/line-ends.wat, built into line-ends.wasm next to this module: one instance per thread. */
const lineEnds = new WebAssembly.Instance(
  new WebAssembly.Module(readFileSync(new URL('./line-ends.wasm', import.meta.url))),
).exports as unknown as { memory: WebAssembly.Memory; bare(n: number, carry: bigint): number };
/** The bytes after a chunk that the WebAssembly overwrites (see line-ends.wat). */
const LINE_ENDS_AFTER = 64;
let lineEndsBytes = new Uint8Array(lineEnds.memory.buffer);

/**
 * Finds bare CR or bare LF across chunk boundaries (SMTP smuggling relies on them). Each chunk is copied into the
 * WebAssembly's memory and read there 64 bytes at a time (line-ends.wat).
 */
export class LineEndingChecker {
  private lastWasCR = false;

  /** Returns false as soon as a bare CR or LF is seen. */
  check(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    const room = chunk.length + LINE_ENDS_AFTER;
    if (lineEndsBytes.length < room) {
      lineEnds.memory.grow(Math.ceil((room - lineEndsBytes.length) / 65536));
      lineEndsBytes = new Uint8Array(lineEnds.memory.buffer);
    }
    lineEndsBytes.set(chunk, 0);
    if (lineEnds.bare(chunk.length, this.lastWasCR ? 1n : 0n) !== 0) return false;
    this.lastWasCR = chunk[chunk.length - 1] === 0x0d;
    return true;
  }

  /** At end of data: a trailing lone CR is bare too. */
  finish(): boolean {
    return !this.lastWasCR;
  }
}

/**
 * No control bytes and no bytes that were not UTF-8 (the parser turns them into U+FFFD): such an address
 * would reach the next hop as something the client never sent.
 */
function cleanAddress(address: string): boolean {
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0xfffd) return false;
  }
  return true;
}

function protocolName(session: SMTPServerSession): string {
  const esmtp = session.openingCommand === 'EHLO';
  return `${esmtp ? 'ESMTP' : 'SMTP'}${session.secure ? 'S' : ''}${session.user ? 'A' : ''}`;
}

function traceHeader(session: SMTPServerSession, hostname: string, id: string, now: Date): string {
  const helo = String(session.hostNameAppearsAs || 'unknown').replace(/[^\x21-\x7e]/g, '?');
  const ip = session.remoteAddress.replace(/^::ffff:/, '');
  return (
    `Received: from ${helo} ([${ip}])\r\n\tby ${hostname} (phi-gateway) with ${protocolName(session)} id ${id};\r\n` +
    `\t${now.toUTCString().replace('GMT', '+0000')}\r\n`
  );
}

export class Intake {
  private server?: SMTPServer;
  private readonly isTrusted: (ip: string) => boolean;
  private readonly hostname: string;
  private openTransactions = 0;
  /** Open connections per untrusted client IP (sessions counted, so each is released once). */
  private readonly perIp = new Map<string, number>();
  private readonly counted = new Set<string>();

  constructor(private readonly opts: IntakeOptions) {
    this.isTrusted = makeNetworkMatcher(opts.config.smtp.trustedNetworks);
    this.hostname = opts.config.smtp.hostname ?? os.hostname();
  }

  get listening(): boolean {
    return !!this.server?.server.listening;
  }

  address(): { host: string; port: number } {
    const addr = this.server?.server.address();
    if (!addr || typeof addr === 'string') throw new Error('SMTP listener is not running');
    return { host: addr.address, port: addr.port };
  }

  async start(): Promise<void> {
    const { config, log, store } = this.opts;
    const smtp = config.smtp;
    const tls = await loadTls(smtp, config.dataDir, this.hostname);
    // smtp-server's DATA reader with a native search for line-starting dots (when its version is the one replaced).
    await installDataReader();
    const server = new SMTPServer({
      name: this.hostname,
      banner: 'phi-gateway ESMTP',
      key: tls.key,
      cert: tls.cert,
      minVersion: 'TLSv1.2',
      size: smtp.maxMessageSize,
      maxRecipients: smtp.maxRecipients,
      maxClients: smtp.maxClients,
      socketTimeout: smtp.socketTimeout,
      closeTimeout: smtp.closeTimeout,
      authMethods: ['PLAIN', 'LOGIN'],
      // AUTH only after STARTTLS: credentials never cross the wire in clear.
      allowInsecureAuth: false,
      // Trusted networks may send without AUTH; onMailFrom refuses everyone else.
      authOptional: true,
      disabledCommands: [],
      logger: false,
      disableReverseLookup: true,
      onConnect: (session, cb) => {
        log.debug({ evt: 'SMTP_CONNECT', session: session.id, ip: session.remoteAddress }, 'connection');
        const ip = session.remoteAddress;
        if (!this.isTrusted(ip)) {
          const open = this.perIp.get(ip) ?? 0;
          if (open >= smtp.maxClientsPerIp) {
            log.warn({ evt: 'SMTP_TOO_MANY_CONNECTIONS', session: session.id, ip }, 'per-IP limit');
            return cb(new GatewayError('SMTP_TOO_MANY_CONNECTIONS').toSmtpReply());
          }
          this.perIp.set(ip, open + 1);
          this.counted.add(session.id);
        }
        // AUTH is not even offered before STARTTLS, so no client is tempted to send a password in clear.
        if (!session.secure) session.disabledCommands = ['AUTH'];
        cb();
      },
      onClose: (session) => {
        if (!this.counted.delete(session.id)) return;
        const left = (this.perIp.get(session.remoteAddress) ?? 1) - 1;
        if (left > 0) this.perIp.set(session.remoteAddress, left);
        else this.perIp.delete(session.remoteAddress);
      },
      onSecure: (_socket, session, cb) => {
        session.disabledCommands = undefined;
        cb();
      },
      onAuth: (auth, session, cb) => {
        authenticate(store.db, auth.username ?? '', auth.password ?? '')
          .then((user) => {
            if (!user) {
              log.warn(
                { evt: 'SMTP_AUTH_FAILED', session: session.id, ip: session.remoteAddress },
                'auth failed',
              );
              cb(new GatewayError('SMTP_AUTH_FAILED').toSmtpReply());
              return;
            }
            log.info({ evt: 'SMTP_AUTH_OK', session: session.id, user: user.id }, 'auth ok');
            // A sender's first AUTH since password re-issue existed makes their key pair (once; errors only logged).
            const keyed =
              user.role === 'auditor'
                ? Promise.resolve()
                : ensureUserKey(store, user.id, auth.password ?? '').then(
                    () => undefined,
                    (err: unknown) => log.warn({ evt: 'USER_KEY_FAILED', user: user.id, err }, 'user key'),
                  );
            return keyed.then(() => cb(null, { user: user.email }));
          })
          .catch((err: unknown) => {
            log.error({ evt: 'SMTP_AUTH_ERROR', session: session.id, err }, 'auth lookup failed');
            cb(new GatewayError('SMTP_LOCAL_ERROR').toSmtpReply());
          });
      },
      onMailFrom: (address, session, cb) => {
        if (!cleanAddress(address.address)) return cb(new GatewayError('SMTP_BAD_ADDRESS').toSmtpReply());
        if (session.user || this.isTrusted(session.remoteAddress)) return cb();
        log.warn(
          { evt: 'SMTP_RELAY_DENIED', session: session.id, ip: session.remoteAddress },
          'relay denied',
        );
        cb(new GatewayError(session.secure ? 'SMTP_RELAY_DENIED' : 'SMTP_AUTH_REQUIRED').toSmtpReply());
      },
      onRcptTo: (address, session, cb) => {
        // Defence in depth: a client that skipped MAIL FROM checks still cannot add recipients.
        if (!session.user && !this.isTrusted(session.remoteAddress)) {
          return cb(new GatewayError('SMTP_RELAY_DENIED').toSmtpReply());
        }
        if (!/^[^@\s]+@[^@\s]+$/.test(address.address) || !cleanAddress(address.address))
          return cb(new GatewayError('SMTP_BAD_ADDRESS').toSmtpReply());
        cb();
      },
      onData: (stream, session, cb) => {
        this.openTransactions++;
        this.receive(stream, session)
          .then((id) => cb(null, `2.0.0 Ok: queued as ${id}`))
          .catch((err: Reply) => cb(err))
          .finally(() => this.openTransactions--);
      },
    });
    server.on('error', (err) => log.error({ evt: 'SMTP_SERVER_ERROR', err }, 'smtp server error'));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(smtp.port, smtp.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    log.info({ evt: 'SMTP_LISTENING', ...this.address() }, 'smtp listening');
  }

  /** Spools one DATA payload. Resolves with the queue id once durable; rejects with an SMTP reply. */
  private async receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const { store, log, onSpooled } = this.opts;
    const checker = new LineEndingChecker();
    let refusal: GatewayError | undefined;
    // Small messages are also kept in memory for the worker that takes them next (see plain-cache.ts).
    let kept: Buffer[] | undefined = [];
    let keptBytes = 0;
    const inspect = (chunk: Buffer) => {
      if (kept) {
        keptBytes += chunk.length;
        if (keptBytes > 1024 * 1024) kept = undefined;
        else kept.push(chunk);
      }
      if (stream.sizeExceeded) refusal = new GatewayError('SMTP_TOO_LARGE');
      else if (!checker.check(chunk)) refusal = new GatewayError('SMTP_BARE_LINE_ENDING');
      if (refusal) throw refusal;
    };
    const ended = new Promise<void>((resolve) => stream.once('end', resolve));
    const meta: IntakeMeta = {
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      rcptTo: session.envelope.rcptTo.map((r) => r.address),
      clientIp: session.remoteAddress,
      clientHelo: String(session.hostNameAppearsAs || ''),
      authUser: session.user ? String(session.user) : null,
      tls: !!session.secure,
    };
    try {
      const spooled = await spoolMessage(store, meta, stream, {
        inspect,
        finish: () => {
          if (stream.sizeExceeded) refusal = new GatewayError('SMTP_TOO_LARGE');
          else if (!checker.finish()) refusal = new GatewayError('SMTP_BARE_LINE_ENDING');
          if (refusal) throw refusal;
        },
        trace: (qid, now) => traceHeader(session, this.hostname, qid, now),
      });
      log.info(
        {
          evt: 'SMTP_ACCEPTED',
          session: session.id,
          qid: spooled.id,
          rcpts: meta.rcptTo.length,
          tls: meta.tls,
        },
        'accepted',
      );
      onSpooled(spooled, kept ? Buffer.concat(kept, keptBytes) : undefined);
      return spooled.id;
    } catch (err) {
      // Drain what is left of DATA so the reply lines up with the end of the transfer.
      stream.resume();
      await ended;
      const known =
        refusal ?? (err instanceof GatewayError && err.code.startsWith('SMTP_') ? err : undefined);
      if (known) {
        log.warn({ evt: 'SMTP_REFUSED', session: session.id, code: known.code }, 'message refused');
        throw known.toSmtpReply();
      }
      log.error(
        { evt: 'SPOOL_FAILED', session: session.id, err, code: errorCode(err) },
        'spool failed; answered 451',
      );
      throw new GatewayError('SMTP_LOCAL_ERROR').toSmtpReply();
    }
  }

  /** Stops accepting connections and waits for open transactions to finish (bounded by closeTimeout). */
  /**
   * Reads the certificate files again (renewal, SIGHUP). STARTTLS sessions started from now on get the new
   * pair; connections already open keep theirs. A pair that does not load is refused and the old one stays.
   */
  async reloadTls(): Promise<void> {
    const server = this.server;
    if (!server) return;
    const tls = await loadTls(this.opts.config.smtp, this.opts.config.dataDir, this.hostname);
    checkTls(tls);
    server.updateSecureContext({ key: tls.key, cert: tls.cert });
    this.opts.log.info({ evt: 'SMTP_TLS_RELOADED' }, 'TLS certificate reloaded');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    while (this.openTransactions > 0) await new Promise((r) => setTimeout(r, 20));
  }
}
