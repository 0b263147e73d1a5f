// The SMTP client for the next hop: a small pool of persistent connections that send each message as one
// pipelined envelope (RFC 2920: MAIL, every RCPT and DATA in one write, the dot-stuffed body in a second).
// STARTTLS when offered, and required off loopback unless configured otherwise; AUTH PLAIN/LOGIN from the
// relay URL. It reports the next hop's replies; it never retries a message itself, logs nothing and never
// sends a byte of a message before TLS is up when TLS is required.
import net from 'node:net';
import tls from 'node:tls';

export interface SmtpClientOptions {
  host: string;
  port: number;
  /** smtps: TLS from the first byte. */
  secure: boolean;
  /** Refuse to send unless the connection is encrypted (STARTTLS missing or failed → error). */
  requireTLS: boolean;
  auth?: { user: string; pass: string };
  /** Our name in EHLO. */
  name: string;
  tls: tls.ConnectionOptions;
  /** Connecting and the greeting, in ms. */
  connectTimeout: number;
  /** Waiting for any one reply, in ms. */
  replyTimeout: number;
  /** Waiting for the reply after the final dot, in ms (RFC 5321: 10 minutes); default replyTimeout. */
  dataTimeout?: number;
  maxConnections: number;
  maxMessagesPerConnection: number;
  /** An unused connection is closed after this long (ms). */
  idleTimeout?: number;
}

export interface RcptResult {
  rcpt: string;
  code: number;
  response: string;
}

export interface EnvelopeResult {
  accepted: string[];
  rejected: RcptResult[];
  /** The reply to the final dot, or the reply that ended the transaction. */
  response: string;
}

/**
 * The transaction failed as a whole. `code` is the next hop's reply code when it gave one (MAIL FROM or
 * DATA refused, or the reply to the final dot); null for network, TLS, timeout and protocol errors.
 */
export class SmtpError extends Error {
  override name = 'SmtpError';
  constructor(
    message: string,
    /** ECONNECTION, ETIMEDOUT, ETLS, EAUTH, EPROTOCOL, EENVELOPE, EMESSAGE. */
    readonly code: string,
    readonly responseCode: number | null,
    readonly response: string,
  ) {
    super(message);
  }
}

interface Reply {
  code: number;
  lines: string[];
}

function replyText(r: Reply): string {
  return r.lines.join('\n');
}

const CRLF = Buffer.from('\r\n');
const DOT_CRLF = Buffer.from('.\r\n');
const CRLF_DOT_CRLF = Buffer.from('\r\n.\r\n');
const DOT_ONLY = Buffer.from('.');

/**
 * The DATA payload: the message with CRLF line ends, every line that starts with '.' doubled (RFC 5321
 * 4.5.2), then the terminating dot. Messages already in CRLF form without leading dots are not copied.
 *
 * `crlfFrom`: from this offset on, every CR and LF of `raw` is known to be part of a CRLF (a message the intake took:
 * it refuses any other, see LineEndingChecker); only the bytes before it are searched for bare ones. A 100 KB message
 * is then read by one search for a line-leading dot (24 against 100 µs).
 */
export function dataPayload(raw: Buffer, crlfFrom = raw.length): Buffer[] {
  const LF = 0x0a;
  const CR = 0x0d;
  const DOT = 0x2e;
  const checkTo = Math.max(0, Math.min(crlfFrom, raw.length));
  let needsWork = raw.length > 0 && raw[0] === DOT;
  for (let i = raw.indexOf(LF); i !== -1 && i < checkTo && !needsWork; i = raw.indexOf(LF, i + 1)) {
    if (i === 0 || raw[i - 1] !== CR) needsWork = true;
  }
  // A lone CR is turned into CRLF as well: a line end is never left for the next hop to guess.
  for (let i = raw.indexOf(CR); i !== -1 && i < checkTo && !needsWork; i = raw.indexOf(CR, i + 1)) {
    if (raw[i + 1] !== LF) needsWork = true;
  }
  // With no bare line end, a line starts with a dot only right after an LF.
  if (!needsWork && raw.indexOf('\n.') !== -1) needsWork = true;
  let body = raw;
  if (needsWork) {
    const chunks: Buffer[] = [];
    let start = 0;
    let atLineStart = true;
    for (let i = 0; i < raw.length; i++) {
      const b = raw[i]!;
      if (atLineStart && b === DOT) {
        chunks.push(raw.subarray(start, i), DOT_ONLY);
        start = i; // the dot itself goes out with the rest of its line
      }
      atLineStart = b === LF || b === CR;
      if (b === CR && raw[i + 1] === LF) i++;
      else if (b === CR || b === LF) {
        chunks.push(raw.subarray(start, i), CRLF);
        start = i + 1;
      }
    }
    chunks.push(raw.subarray(start));
    body = Buffer.concat(chunks);
  }
  const endsWithCrlf = body.length >= 2 && body[body.length - 2] === CR && body[body.length - 1] === LF;
  if (body.length === 0) return [DOT_CRLF];
  return [body, endsWithCrlf ? DOT_CRLF : CRLF_DOT_CRLF];
}

/** A message body read as it is sent (a large message streamed from the spool), opened anew per attempt. */
export type BodySource = () => AsyncIterable<Buffer>;

/**
 * dataPayload for a body that arrives in chunks: the same bytes on the wire however the body is split
 * (CRLF line ends, leading dots doubled, the terminating dot after `end`), one chunk in memory at a time.
 */
export class DotStuffer {
  private atLineStart = true;
  /** A CR ended the last chunk: whether it begins a CRLF is known only from the next byte. */
  private pendingCr = false;
  private emitted = false;

  push(chunk: Uint8Array): Buffer {
    // Worst case: every byte a bare line end (2 bytes) or a line-leading dot (2 bytes), plus a held CR.
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let n = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.pendingCr) {
        this.pendingCr = false;
        out[n++] = 0x0d;
        out[n++] = 0x0a;
        this.atLineStart = true;
        if (b === 0x0a) continue; // CRLF
        // A lone CR became CRLF; `b` starts the next line.
      }
      if (b === 0x0d) {
        this.pendingCr = true;
        continue;
      }
      if (b === 0x0a) {
        out[n++] = 0x0d;
        out[n++] = 0x0a;
        this.atLineStart = true;
        continue;
      }
      if (this.atLineStart && b === 0x2e) out[n++] = 0x2e;
      out[n++] = b;
      this.atLineStart = false;
    }
    if (n > 0) this.emitted = true;
    return out.subarray(0, n);
  }

  /** What ends the DATA: a held CR as CRLF, then the terminating dot (after a CRLF if the body lacks one). */
  end(): Buffer {
    if (this.pendingCr) {
      this.pendingCr = false;
      this.emitted = true;
      this.atLineStart = true;
      return Buffer.concat([CRLF, DOT_CRLF]);
    }
    return !this.emitted || this.atLineStart ? DOT_CRLF : CRLF_DOT_CRLF;
  }
}

function xtextAddress(address: string): string {
  // Envelope addresses were validated at intake (no CR/LF/NUL, no '<' '>'); guard again, never inject.
  if (/[\r\n\0<>]/.test(address)) throw new SmtpError('invalid address', 'EENVELOPE', null, '');
  return `<${address}>`;
}

/** One connection to the next hop, after greeting, EHLO, STARTTLS and AUTH. One transaction at a time. */
export class SmtpConnection {
  private socket: net.Socket;
  private buffer = '';
  private lines: string[] = [];
  private readonly waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private readonly ready: Reply[] = [];
  private failure?: Error;
  private extensions = new Set<string>();
  private authMechs = new Set<string>();
  messages = 0;
  closed = false;
  /** Whether the next hop has replied to anything of the current transaction. */
  answered = false;
  /** Whether the connection is encrypted. */
  encrypted: boolean;

  private constructor(
    socket: net.Socket,
    private readonly opts: SmtpClientOptions,
  ) {
    this.socket = socket;
    this.encrypted = opts.secure;
    this.attach(socket);
  }

  static async open(opts: SmtpClientOptions): Promise<SmtpConnection> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = opts.secure
        ? tls.connect({ ...opts.tls, host: opts.host, port: opts.port, servername: servername(opts) })
        : net.connect({ host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpError('connection timed out', 'ETIMEDOUT', null, ''));
      }, opts.connectTimeout);
      s.once(opts.secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.on('error', () => undefined); // the connection's own handlers come next
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        s.destroy();
        reject(
          new SmtpError(
            `connection failed: ${err.code ?? 'error'}`,
            opts.secure ? 'ETLS' : 'ECONNECTION',
            null,
            '',
          ),
        );
      });
    });
    socket.setNoDelay(true);
    const conn = new SmtpConnection(socket, opts);
    try {
      await conn.handshake();
      return conn;
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      this.fail(new SmtpError(`connection error: ${err.code ?? 'error'}`, 'ECONNECTION', null, '')),
    );
    socket.on('close', () => this.fail(new SmtpError('connection closed', 'ECONNECTION', null, '')));
    // A listener of its own: the callback form of setTimeout fires once, and an idle pooled connection
    // would use it up.
    socket.setTimeout(this.opts.replyTimeout);
    socket.on('timeout', () => {
      if (this.waiting.length > 0) {
        this.fail(new SmtpError('no reply in time', 'ETIMEDOUT', null, ''));
        socket.destroy();
      }
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) !== -1) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.lines.push(line);
      // "250-..." continues a reply; "250 ..." (or a bare code) ends it.
      if (line.length >= 4 && line[3] === '-') continue;
      const code = Number(line.slice(0, 3));
      const reply: Reply = {
        code: Number.isInteger(code) && code >= 200 && code < 600 ? code : 0,
        lines: this.lines,
      };
      this.lines = [];
      if (reply.code === 0) {
        this.fail(new SmtpError('malformed reply', 'EPROTOCOL', null, line.slice(0, 200)));
        this.socket.destroy();
        return;
      }
      this.answered = true;
      const w = this.waiting.shift();
      if (w) w.resolve(reply);
      else this.ready.push(reply);
    }
    if (this.buffer.length > 64 * 1024) {
      this.fail(new SmtpError('reply line too long', 'EPROTOCOL', null, ''));
      this.socket.destroy();
    }
  }

  private fail(err: Error): void {
    this.closed = true;
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }

  /** The next reply, in order (pipelined commands are answered in the order they were sent). */
  private reply(): Promise<Reply> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private write(data: string | Buffer | Buffer[]): void {
    if (this.closed) return;
    if (Array.isArray(data)) {
      if (data.length === 1) this.socket.write(data[0]!);
      else {
        this.socket.cork();
        for (const d of data) this.socket.write(d);
        this.socket.uncork();
      }
    } else this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  private async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  private async ehlo(): Promise<void> {
    let r = await this.command(`EHLO ${this.opts.name}`);
    if (r.code !== 250) {
      r = await this.command(`HELO ${this.opts.name}`);
      if (r.code !== 250) throw new SmtpError('HELO refused', 'EPROTOCOL', null, replyText(r));
      this.extensions = new Set();
      return;
    }
    this.extensions = new Set();
    this.authMechs = new Set();
    for (const line of r.lines.slice(1)) {
      const words = line.slice(4).trim().toUpperCase().split(/\s+/);
      const ext = words[0] ?? '';
      this.extensions.add(ext);
      if (ext === 'AUTH') for (const m of words.slice(1)) this.authMechs.add(m);
    }
  }

  private async handshake(): Promise<void> {
    const greeting = await Promise.race([
      this.reply(),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new SmtpError('no greeting in time', 'ETIMEDOUT', null, '')),
          this.opts.connectTimeout,
        ).unref(),
      ),
    ]);
    // Refusals before any envelope (greeting, HELO, STARTTLS, AUTH) say nothing about a message: they
    // carry no reply code, so the mail waits and is retried instead of bouncing.
    if (greeting.code !== 220)
      throw new SmtpError('next hop refused the connection', 'ECONNECTION', null, replyText(greeting));
    await this.ehlo();
    if (!this.encrypted && this.extensions.has('STARTTLS')) await this.startTls();
    // Never a byte of mail in clear when TLS is required, whatever the next hop offered.
    if (!this.encrypted && this.opts.requireTLS)
      throw new SmtpError('the next hop does not offer STARTTLS', 'ETLS', null, '');
    if (this.opts.auth) await this.authenticate(this.opts.auth);
  }

  private async startTls(): Promise<void> {
    const r = await this.command('STARTTLS');
    if (r.code !== 220) throw new SmtpError('STARTTLS refused', 'ETLS', r.code, replyText(r));
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.removeAllListeners('timeout');
    plain.on('error', () => undefined); // reported by the TLS socket on top of it
    plain.setTimeout(0);
    const secured = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ ...this.opts.tls, socket: plain, servername: servername(this.opts) });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new SmtpError('TLS handshake timed out', 'ETLS', null, ''));
      }, this.opts.connectTimeout);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.on('error', () => undefined);
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        s.destroy();
        reject(new SmtpError(`TLS handshake failed: ${err.code ?? 'error'}`, 'ETLS', null, ''));
      });
    });
    this.socket = secured;
    this.encrypted = true;
    this.buffer = '';
    this.lines = [];
    this.attach(secured);
    await this.ehlo();
  }

  private async authenticate(auth: { user: string; pass: string }): Promise<void> {
    let r: Reply;
    if (this.authMechs.has('PLAIN') || !this.authMechs.has('LOGIN')) {
      r = await this.command(
        `AUTH PLAIN ${Buffer.from(`\0${auth.user}\0${auth.pass}`, 'utf8').toString('base64')}`,
      );
    } else {
      r = await this.command('AUTH LOGIN');
      if (r.code === 334) r = await this.command(Buffer.from(auth.user, 'utf8').toString('base64'));
      if (r.code === 334) r = await this.command(Buffer.from(auth.pass, 'utf8').toString('base64'));
    }
    // The reply may quote what we sent; it is kept out of the error.
    if (r.code !== 235)
      throw new SmtpError('authentication failed', 'EAUTH', r.code, `${r.code} authentication failed`);
  }

  /**
   * One transaction: envelope and DATA, pipelined when the next hop offers PIPELINING. A streamed body
   * (`BodySource`) is sent as it is read; if reading it fails, the connection is dropped before the final
   * dot (the next hop discards what it got) and the reader's error is thrown.
   */
  async send(
    from: string,
    to: readonly string[],
    raw: Buffer | BodySource,
    crlfFrom?: number,
  ): Promise<EnvelopeResult> {
    if (this.closed) throw this.failure ?? new SmtpError('connection closed', 'ECONNECTION', null, '');
    this.messages++;
    this.answered = false;
    const utf8 = [from, ...to].some((a) => /[^ -~]/.test(a)) && this.extensions.has('SMTPUTF8');
    const mail = `MAIL FROM:${xtextAddress(from)}${utf8 ? ' SMTPUTF8' : ''}\r\n`;
    const rcpts = to.map((r) => `RCPT TO:${xtextAddress(r)}\r\n`);
    const pipelining = this.extensions.has('PIPELINING');
    let mailReply: Reply;
    const rcptReplies: Reply[] = [];
    let dataReply: Reply;
    if (pipelining) {
      this.write(Buffer.from(mail + rcpts.join('') + 'DATA\r\n', utf8 ? 'utf8' : 'latin1'));
      mailReply = await this.reply();
      for (let i = 0; i < rcpts.length; i++) rcptReplies.push(await this.reply());
      dataReply = await this.reply();
    } else {
      this.write(Buffer.from(mail, utf8 ? 'utf8' : 'latin1'));
      mailReply = await this.reply();
      if (mailReply.code !== 250) {
        await this.reset();
        throw new SmtpError('MAIL FROM refused', 'EENVELOPE', mailReply.code, replyText(mailReply));
      }
      for (const r of rcpts) {
        this.write(Buffer.from(r, utf8 ? 'utf8' : 'latin1'));
        rcptReplies.push(await this.reply());
      }
      if (!rcptReplies.some((r) => r.code === 250 || r.code === 251)) {
        dataReply = { code: 554, lines: ['554 no valid recipients'] };
      } else dataReply = await this.command('DATA');
    }
    if (mailReply.code !== 250) {
      if (dataReply.code === 354) {
        this.write(DOT_CRLF);
        await this.reply();
      }
      await this.reset();
      throw new SmtpError('MAIL FROM refused', 'EENVELOPE', mailReply.code, replyText(mailReply));
    }
    const accepted: string[] = [];
    const rejected: RcptResult[] = [];
    rcptReplies.forEach((r, i) => {
      if (r.code === 250 || r.code === 251) accepted.push(to[i]!);
      else rejected.push({ rcpt: to[i]!, code: r.code, response: replyText(r) });
    });
    if (dataReply.code !== 354) {
      await this.reset();
      if (accepted.length === 0) return { accepted: [], rejected, response: replyText(dataReply) };
      throw new SmtpError('DATA refused', 'EMESSAGE', dataReply.code, replyText(dataReply));
    }
    if (accepted.length === 0) {
      // A pipelining hop that said 354 with no valid recipient: end the empty message, it is refused.
      this.write(DOT_CRLF);
      await this.reply();
      await this.reset();
      return { accepted: [], rejected, response: replyText(dataReply) };
    }
    if (Buffer.isBuffer(raw)) this.write(dataPayload(raw, crlfFrom));
    else await this.writeStreamed(raw());
    // The next hop may check the message before it answers: give it the longer timeout for this reply.
    const dataTimeout = this.opts.dataTimeout ?? this.opts.replyTimeout;
    this.socket.setTimeout(Math.max(dataTimeout, this.opts.replyTimeout));
    let final: Reply;
    try {
      final = await this.reply();
    } finally {
      if (!this.closed) this.socket.setTimeout(this.opts.replyTimeout);
    }
    if (final.code !== 250) {
      throw new SmtpError('message refused', 'EMESSAGE', final.code, replyText(final));
    }
    return { accepted, rejected, response: replyText(final) };
  }

  /** Writes a streamed body, dot-stuffed, waiting for the socket to drain; the final dot only once it all read. */
  private async writeStreamed(source: AsyncIterable<Buffer>): Promise<void> {
    const stuffer = new DotStuffer();
    try {
      for await (const chunk of source) {
        if (this.closed) throw this.failure ?? new SmtpError('connection closed', 'ECONNECTION', null, '');
        const out = stuffer.push(chunk);
        if (out.length > 0 && !this.socket.write(out)) await this.drained();
      }
    } catch (err) {
      // Never the final dot after a body that could not be read whole: the next hop must not accept it.
      this.destroy();
      throw err;
    }
    this.write(stuffer.end());
  }

  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        if (this.closed) reject(this.failure ?? new SmtpError('connection closed', 'ECONNECTION', null, ''));
        else resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Ends a failed transaction so the connection can carry the next one; a connection that cannot is closed. */
  private async reset(): Promise<void> {
    try {
      const r = await this.command('RSET');
      if (r.code !== 250) this.destroy();
    } catch {
      this.destroy();
    }
  }

  quit(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.end('QUIT\r\n');
    } catch {
      // already gone
    }
    const s = this.socket;
    setTimeout(() => s.destroy(), 1000).unref();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

function servername(opts: SmtpClientOptions): string | undefined {
  return net.isIP(opts.host) ? undefined : opts.host;
}

/**
 * A bounded pool: at most `maxConnections` connections, each carrying one transaction at a time and
 * recycled after `maxMessagesPerConnection`. A send that finds a reused connection closed by the next hop
 * before it answered anything is tried once more on a new connection (nothing of it was accepted).
 */
export class SmtpPool {
  private readonly idle: Array<{ conn: SmtpConnection; timer: NodeJS.Timeout }> = [];
  private open = 0;
  private readonly queue: Array<() => void> = [];
  private closing = false;

  constructor(private readonly opts: SmtpClientOptions) {}

  private async acquire(): Promise<{ conn: SmtpConnection; reused: boolean }> {
    for (;;) {
      if (this.closing) throw new SmtpError('client closed', 'ECONNECTION', null, '');
      const item = this.idle.pop();
      if (item) {
        clearTimeout(item.timer);
        if (!item.conn.closed) return { conn: item.conn, reused: true };
        this.open--;
        continue;
      }
      if (this.open < this.opts.maxConnections) {
        this.open++;
        try {
          return { conn: await SmtpConnection.open(this.opts), reused: false };
        } catch (err) {
          this.open--;
          this.next();
          throw err;
        }
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
  }

  private next(): void {
    this.queue.shift()?.();
  }

  private release(conn: SmtpConnection): void {
    if (conn.closed || this.closing || conn.messages >= this.opts.maxMessagesPerConnection) {
      conn.quit();
      this.open--;
    } else {
      const timer = setTimeout(() => {
        const i = this.idle.findIndex((x) => x.conn === conn);
        if (i >= 0) {
          this.idle.splice(i, 1);
          this.open--;
          conn.quit();
        }
      }, this.opts.idleTimeout ?? 30_000);
      timer.unref();
      this.idle.push({ conn, timer });
    }
    this.next();
  }

  /** One transaction on a pooled connection (see SmtpConnection.send; `crlfFrom` as dataPayload reads it). */
  async send(
    from: string,
    to: readonly string[],
    raw: Buffer | BodySource,
    crlfFrom?: number,
  ): Promise<EnvelopeResult> {
    for (let attempt = 0; ; attempt++) {
      const { conn, reused } = await this.acquire();
      try {
        return await conn.send(from, to, raw, crlfFrom);
      } catch (err) {
        conn.destroy();
        // A pooled connection the next hop had already closed: it answered nothing of this transaction,
        // so nothing of it can have been accepted; once more on a new connection.
        if (
          reused &&
          !conn.answered &&
          attempt === 0 &&
          err instanceof SmtpError &&
          err.code === 'ECONNECTION'
        )
          continue;
        throw err;
      } finally {
        this.release(conn);
      }
    }
  }

  close(): Promise<void> {
    this.closing = true;
    for (const { conn, timer } of this.idle.splice(0)) {
      clearTimeout(timer);
      this.open--;
      conn.quit();
    }
    for (const w of this.queue.splice(0)) w();
    return Promise.resolve();
  }
}
