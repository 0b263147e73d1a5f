// A next hop that misbehaves on cue: refuses, flaps, stalls, answers 4xx/5xx or drops the connection
// mid-DATA, or answers 250 late. It records a message once it has committed it (at the final dot, before
// its 250 is written; a late 250 is marked), so "sent twice" is exact.
import { createServer, type Server, type Socket } from 'node:net';

export type HopAction =
  | { kind: 'ok' }
  /** Greeting withheld this long (past the client's greeting timeout). */
  | { kind: 'slow-greeting'; ms: number }
  /** Reply to RCPT withheld this long. */
  | { kind: 'slow-rcpt'; ms: number }
  /** Reply to every RCPT with this code. */
  | { kind: 'rcpt-reply'; code: number; text: string }
  /** Close the socket after this many bytes of DATA (before the final dot is answered). */
  | { kind: 'drop-mid-data'; after: number }
  /** Close at once without a greeting. */
  | { kind: 'hang-up' }
  /**
   * Take the message at the final dot (it is committed: the hop will pass it on) but write the 250 only
   * this long afterwards, whether or not the client is still there to read it.
   */
  | { kind: 'slow-250'; ms: number };

export interface HopMessage {
  from: string;
  to: string[];
  raw: Buffer;
  at: number;
  /** Committed by a 'slow-250' connection: the client may have given up before the 250 was written. */
  late?: boolean;
}

export class ScriptedHop {
  readonly messages: HopMessage[] = [];
  connections = 0;
  private server?: Server;
  private sockets = new Set<Socket>();
  private down = false;
  port = 0;

  /** Decides, per connection (1-based count), how the hop behaves on it. */
  constructor(private readonly behave: (conn: number, rcpt?: string) => HopAction = () => ({ kind: 'ok' })) {}

  async start(port = 0): Promise<number> {
    this.down = false;
    const server = createServer((s) => this.serve(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this.port;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Goes down: no new connections; open ones get 421 at their next command or lose an unfinished DATA. */
  async stop(): Promise<void> {
    this.down = true;
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) if (!s.destroyed && (s as Socket & { idle?: boolean }).idle) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    const conn = ++this.connections;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const first = this.behave(conn);
    if (first.kind === 'hang-up') {
      socket.destroy();
      return;
    }
    let from = '';
    let to: string[] = [];
    let inData = false;
    let data: Buffer[] = [];
    let dataBytes = 0;
    let pending = Buffer.alloc(0);
    let busy = false;
    const marked = socket as Socket & { idle?: boolean };
    const reply = (line: string) => {
      if (!socket.destroyed) socket.write(line + '\r\n');
    };
    const handle = async (line: string): Promise<void> => {
      if (this.down) {
        reply('421 4.3.2 going down');
        socket.end();
        return;
      }
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO' || verb === 'HELO') reply('250 scripted-hop');
      else if (verb === 'MAIL') {
        from = /<([^>]*)>/.exec(line)?.[1] ?? '';
        to = [];
        reply('250 2.1.0 ok');
      } else if (verb === 'RCPT') {
        const rcpt = /<([^>]*)>/.exec(line)?.[1] ?? '';
        const a = this.behave(conn, rcpt);
        if (a.kind === 'slow-rcpt') await new Promise((r) => setTimeout(r, a.ms));
        if (a.kind === 'rcpt-reply') reply(`${a.code} ${a.text}`);
        else {
          to.push(rcpt);
          reply('250 2.1.5 ok');
        }
      } else if (verb === 'DATA') {
        if (to.length === 0) return reply('554 5.5.1 no valid recipients');
        inData = true;
        data = [];
        dataBytes = 0;
        reply('354 go ahead');
      } else if (verb === 'RSET') {
        from = '';
        to = [];
        reply('250 ok');
      } else if (verb === 'NOOP') reply('250 ok');
      else if (verb === 'QUIT') {
        reply('221 bye');
        socket.end();
      } else reply('502 5.5.2 not implemented');
    };
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          if (inData) {
            const end = pending.indexOf('\r\n.\r\n');
            const action = this.behave(conn);
            const seen = dataBytes + (end === -1 ? pending.length : end);
            if ((action.kind === 'drop-mid-data' && seen >= action.after) || (this.down && end === -1)) {
              socket.destroy();
              return;
            }
            if (end === -1) {
              // Keep the last 4 bytes: the terminator may straddle chunks.
              const keep = Math.min(4, pending.length);
              data.push(pending.subarray(0, pending.length - keep));
              dataBytes += pending.length - keep;
              pending = pending.subarray(pending.length - keep);
              return;
            }
            data.push(pending.subarray(0, end + 2));
            pending = pending.subarray(end + 5);
            inData = false;
            if (this.down) {
              socket.destroy();
              return;
            }
            const raw = Buffer.from(Buffer.concat(data).toString('latin1').replace(/^\.\./gm, '.'), 'latin1');
            const late = action.kind === 'slow-250';
            this.messages.push({ from, to: [...to], raw, at: Date.now(), ...(late ? { late } : {}) });
            const id = this.messages.length;
            if (action.kind === 'slow-250') await new Promise((r) => setTimeout(r, action.ms));
            reply(`250 2.0.0 queued as m${id}`);
            continue;
          }
          const nl = pending.indexOf('\r\n');
          if (nl === -1) return;
          const line = pending.subarray(0, nl).toString('latin1');
          pending = pending.subarray(nl + 2);
          marked.idle = false;
          await handle(line);
          marked.idle = true;
        }
      } finally {
        busy = false;
      }
    };
    socket.on('data', (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      void pump().then(() => (pending.length > 0 && !busy && !socket.destroyed ? pump() : undefined));
    });
    const greet = () => {
      marked.idle = true;
      if (this.down) return socket.destroy();
      reply('220 scripted-hop ESMTP');
    };
    if (first.kind === 'slow-greeting') setTimeout(greet, first.ms);
    else greet();
  }
}
