// The next-hop SMTP client against real sockets: a scripted server that checks the exact command order
// (pipelined or one at a time), smtp-server for STARTTLS and AUTH, and the DATA encoding.
import net from 'node:net';
import { expect } from 'chai';
import { generate } from 'selfsigned';
import { SMTPServer } from 'smtp-server';
import {
  dataPayload,
  DotStuffer,
  SmtpError,
  SmtpPool,
  type SmtpClientOptions,
} from '../../gateway/smtp-client.js';
import { RelayTransport, TransportError } from '../../gateway/transport.js';
import { relaySchema } from '../../config/schema.js';
import { randomFrom } from '../support/random.js';

interface Script {
  pipelining: boolean;
  /** Reply to a command line (without CRLF); undefined → 250 OK. */
  reply?: (line: string) => string | undefined;
  /** Reply to the final dot (null: never); `finalDelay` ms after the dot. */
  final?: (n: number) => string | null;
  finalDelay?: number;
  /** Close the connection after this many transactions. */
  closeAfter?: number;
  /** Hold the replies to MAIL and RCPT until DATA has arrived (only a pipelining client gets any). */
  holdUntilData?: boolean;
}

/** A scripted next hop: answers line by line, records commands, and notes any pipelining it did not offer. */
class ScriptedServer {
  readonly commands: string[] = [];
  readonly bodies: Buffer[] = [];
  violations = 0;
  connections = 0;
  private server = net.createServer((s) => this.serve(s));
  port = 0;

  constructor(private readonly script: Script) {}

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private serve(socket: net.Socket): void {
    this.connections++;
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let inData = false;
    let transactions = 0;
    let held = '';
    const answer = (line: string) => {
      const custom = this.script.reply?.(line);
      if (/^EHLO/i.test(line))
        return `250-scripted\r\n${this.script.pipelining ? '250-PIPELINING\r\n' : ''}250 8BITMIME\r\n`;
      if (custom) return `${custom}\r\n`;
      if (/^DATA/i.test(line)) return '354 go ahead\r\n';
      if (/^QUIT/i.test(line)) return '221 bye\r\n';
      return '250 OK\r\n';
    };
    socket.write('220 scripted ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          const lone = buf.subarray(0, 3).toString() === '.\r\n' ? 0 : -1;
          if (end === -1 && lone === -1) return;
          const bodyEnd = lone === 0 ? 0 : end + 2;
          this.bodies.push(buf.subarray(0, bodyEnd));
          buf = buf.subarray(lone === 0 ? 3 : end + 5);
          inData = false;
          transactions++;
          const final = this.script.final ? this.script.final(this.bodies.length) : '250 queued';
          const delay = this.script.finalDelay ?? 0;
          if (final !== null)
            if (delay > 0) setTimeout(() => socket.write(`${final}\r\n`), delay);
            else socket.write(`${final}\r\n`);
          if (this.script.closeAfter && transactions >= this.script.closeAfter) socket.destroy();
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl === -1) return;
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 2);
        this.commands.push(line);
        // Without PIPELINING offered, a client must wait for each reply: more bytes already here is a fault.
        if (!this.script.pipelining && buf.length > 0 && !/^DATA/i.test(line)) this.violations++;
        const reply = answer(line);
        if (/^DATA/i.test(line) && reply.startsWith('354')) inData = true;
        if (this.script.holdUntilData && /^(MAIL|RCPT)/i.test(line)) held += reply;
        else {
          socket.write(held + reply);
          held = '';
        }
        if (/^QUIT/i.test(line)) socket.end();
      }
    });
  }
}

function options(port: number, over: Partial<SmtpClientOptions> = {}): SmtpClientOptions {
  return {
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: false,
    name: 'gw.test',
    tls: { rejectUnauthorized: true },
    connectTimeout: 2000,
    replyTimeout: 2000,
    maxConnections: 2,
    maxMessagesPerConnection: 100,
    ...over,
  };
}

const MSG = Buffer.from('Subject: hi\r\n\r\nline one\r\nline two\r\n');

describe('next-hop SMTP client', function () {
  this.timeout(20000);
  const servers: Array<{ stop(): Promise<void> }> = [];
  const pools: SmtpPool[] = [];
  afterEach(async () => {
    for (const p of pools.splice(0)) await p.close();
    for (const s of servers.splice(0)) await s.stop();
  });

  async function scripted(script: Script): Promise<ScriptedServer> {
    const s = new ScriptedServer(script);
    await s.start();
    servers.push(s);
    return s;
  }
  function pool(opts: SmtpClientOptions): SmtpPool {
    const p = new SmtpPool(opts);
    pools.push(p);
    return p;
  }

  describe('DATA encoding', () => {
    const rows: Array<[string, string, string]> = [
      ['CRLF text, no leading dots: as is', 'a\r\nb\r\n', 'a\r\nb\r\n.\r\n'],
      ['a dot inside a line: as is', 'a.b\r\nc. d\r\n', 'a.b\r\nc. d\r\n.\r\n'],
      ['no final line end: one is added', 'a\r\nb', 'a\r\nb\r\n.\r\n'],
      ['empty message', '', '.\r\n'],
      ['a line that starts with a dot is doubled', 'a\r\n.b\r\n', 'a\r\n..b\r\n.\r\n'],
      ['a first line that is a dot', '.\r\nx\r\n', '..\r\nx\r\n.\r\n'],
      ['a lone dot line in the middle', 'a\r\n.\r\nb\r\n', 'a\r\n..\r\nb\r\n.\r\n'],
      ['bare LF becomes CRLF', 'a\nb\n', 'a\r\nb\r\n.\r\n'],
      ['lone CR becomes CRLF', 'a\rb\r\n', 'a\r\nb\r\n.\r\n'],
      ['bare LF then a dot', 'a\n.b', 'a\r\n..b\r\n.\r\n'],
    ];
    for (const [name, input, want] of rows) {
      it(name, () => {
        const out = Buffer.concat(dataPayload(Buffer.from(input, 'latin1'))).toString('latin1');
        expect(out).to.equal(want);
      });
    }
    it('does not copy a message that needs no change', () => {
      const raw = Buffer.from('Subject: x\r\n\r\nbody\r\n');
      expect(dataPayload(raw)[0]).to.equal(raw);
    });
    it('keeps 8-bit bytes as they are', () => {
      const raw = Buffer.from([0x61, 0xe9, 0xff, 0x0d, 0x0a]);
      expect(Buffer.concat(dataPayload(raw)).subarray(0, 5).equals(raw)).to.equal(true);
    });

    /** A streamed body, split at the given lengths, through DotStuffer: what goes on the wire. */
    function stuffed(raw: Buffer, cuts: number[]): Buffer {
      const st = new DotStuffer();
      const out: Buffer[] = [];
      let at = 0;
      for (const n of cuts) {
        out.push(st.push(raw.subarray(at, at + n)));
        at += n;
      }
      out.push(st.push(raw.subarray(at)), st.end());
      return Buffer.concat(out);
    }

    for (const [name, input, want] of rows) {
      it(`streamed, split at every byte: ${name}`, () => {
        const raw = Buffer.from(input, 'latin1');
        expect(stuffed(raw, Array<number>(raw.length).fill(1)).toString('latin1')).to.equal(want);
      });
    }

    it('streamed, gives the bytes the whole-message encoding gives, however the body is split', () => {
      // Seeded: the same 2,000 bodies of line ends, dots and letters, each split at random places.
      const rnd = randomFrom(7);
      const alphabet = [0x0d, 0x0a, 0x2e, 0x61, 0x20, 0xe9];
      let differences = 0;
      for (let k = 0; k < 2000; k++) {
        const raw = Buffer.from(Array.from({ length: rnd(40) }, () => alphabet[rnd(alphabet.length)]!));
        const cuts: number[] = [];
        for (let left = raw.length; left > 0;) {
          const n = 1 + rnd(left);
          cuts.push(n);
          left -= n;
        }
        if (!stuffed(raw, cuts).equals(Buffer.concat(dataPayload(raw)))) differences++;
      }
      expect(differences).to.equal(0);
    });

    describe('with the part from crlfFrom known to be CRLF only (a message the intake checked)', () => {
      const rows: Array<[string, string, number, string]> = [
        ['no line-leading dot: as is', 'Received: x\r\nb\r\n', 13, 'Received: x\r\nb\r\n.\r\n'],
        ['a line-leading dot in the checked part', 'R: x\r\na\r\n.b\r\n', 6, 'R: x\r\na\r\n..b\r\n.\r\n'],
        ['a checked part that opens with a dot', 'R: x\r\n.b\r\n', 6, 'R: x\r\n..b\r\n.\r\n'],
        ['a bare LF before it is still mended', 'R\nx\r\nb\r\n', 5, 'R\r\nx\r\nb\r\n.\r\n'],
        ['a lone CR before it is still mended', 'R\rx\r\nb\r\n', 5, 'R\r\nx\r\nb\r\n.\r\n'],
        ['a CR that ends the unchecked part', 'R\r\nb\r\n', 1, 'R\r\nb\r\n.\r\n'],
      ];
      for (const [name, input, from, want] of rows) {
        it(name, () => {
          const out = Buffer.concat(dataPayload(Buffer.from(input, 'latin1'), from)).toString('latin1');
          expect(out).to.equal(want);
        });
      }

      it('gives the bytes a full check gives, on 2,000 random messages', () => {
        // A prefix of anything, then a part made of CRLF, dots and letters only (as the intake lets through).
        const rnd = randomFrom(19);
        const alphabet = ['\r', '\n', '.', 'a', ' '];
        const clean = ['\r\n', '.', 'a', ' ', '\u00e9'];
        let differences = 0;
        let stuffedLines = 0;
        for (let k = 0; k < 2000; k++) {
          const prefix = Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]!).join('');
          const rest = Array.from({ length: rnd(30) }, () => clean[rnd(clean.length)]!).join('');
          const raw = Buffer.from(prefix + rest, 'latin1');
          const full = Buffer.concat(dataPayload(raw));
          if (!Buffer.concat(dataPayload(raw, prefix.length)).equals(full)) differences++;
          if (full.length > raw.length + 3) stuffedLines++;
        }
        expect(differences).to.equal(0);
        // Most of them needed a dot doubled or a line end mended: the comparison is not of messages sent as they are.
        expect(stuffedLines).to.be.greaterThan(1000);
      });
    });
  });

  /** A body read as it is sent, from `parts`; `fail` throws after that many parts. */
  function streamed(parts: Buffer[], fail?: { after: number; err: Error }) {
    return () =>
      (async function* () {
        for (const [i, part] of parts.entries()) {
          if (fail && i === fail.after) throw fail.err;
          await new Promise((r) => setImmediate(r));
          yield part;
        }
      })();
  }

  it('sends a streamed body as it is read: the next hop gets the bytes a whole message gives', async () => {
    const server = await scripted({ pipelining: true });
    const p = pool(options(server.port));
    const body = Buffer.from('Subject: big\r\n\r\n' + 'line of text\r\n.dot line\n'.repeat(5000));
    const parts = Array.from({ length: Math.ceil(body.length / 4096) }, (_, i) =>
      body.subarray(i * 4096, (i + 1) * 4096),
    );
    const r = await p.send('gw@clinic.example', ['a@partner.example'], streamed(parts));
    expect(r.accepted).to.deep.equal(['a@partner.example']);
    const want = Buffer.concat(dataPayload(body));
    expect(Buffer.concat([server.bodies[0]!, Buffer.from('.\r\n')]).equals(want)).to.equal(true);
  });

  it('drops the connection before the final dot when a streamed body fails to read, and says why', async () => {
    const server = await scripted({ pipelining: true });
    const p = pool(options(server.port));
    const parts = Array.from({ length: 8 }, () => Buffer.from('x'.repeat(1000) + '\r\n'));
    const broken = new Error('spool failed its tag');
    const err = await p
      .send('gw@clinic.example', ['a@partner.example'], streamed(parts, { after: 5, err: broken }))
      .catch((e: unknown) => e);
    expect(err).to.equal(broken);
    await new Promise((r) => setTimeout(r, 200));
    expect(server.bodies, 'the next hop must never see the message end').to.deep.equal([]);
    // The pool goes on: the next message goes out on a new connection.
    const ok = await p.send('gw@clinic.example', ['a@partner.example'], MSG);
    expect(ok.accepted).to.deep.equal(['a@partner.example']);
    expect(server.bodies).to.have.length(1);
  });

  it('pipelines MAIL, every RCPT and DATA when the next hop offers PIPELINING', async () => {
    // This server answers nothing of the envelope until DATA has arrived: a client that waits times out.
    const s = await scripted({ pipelining: true, holdUntilData: true });
    const p = pool(options(s.port));
    const r = await p.send('staff@clinic.example', ['a@x.example', 'b@x.example'], MSG);
    const held = s.commands.join('|');
    expect(r.accepted).to.deep.equal(['a@x.example', 'b@x.example']);
    expect(r.rejected).to.deep.equal([]);
    expect(r.response).to.equal('250 queued');
    expect(held).to.equal(
      'EHLO gw.test|MAIL FROM:<staff@clinic.example>|RCPT TO:<a@x.example>|RCPT TO:<b@x.example>|DATA',
    );
    expect(s.bodies[0]!.toString()).to.equal(MSG.toString());
  });

  it('waits for each reply when the next hop does not offer PIPELINING', async () => {
    const s = await scripted({ pipelining: false });
    const p = pool(options(s.port));
    const r = await p.send('staff@clinic.example', ['a@x.example', 'b@x.example', 'c@x.example'], MSG);
    expect(r.accepted).to.have.length(3);
    expect(s.violations, 'commands sent before their reply').to.equal(0);
    expect(s.bodies).to.have.length(1);
  });

  for (const pipelining of [true, false]) {
    const mode = pipelining ? 'pipelined' : 'one at a time';
    it(`reports each refused recipient with its own reply and delivers to the others (${mode})`, async () => {
      const s = await scripted({
        pipelining,
        reply: (l) => (/^RCPT TO:<gone@/i.test(l) ? '550 5.1.1 no such user' : undefined),
      });
      const p = pool(options(s.port));
      const r = await p.send('s@c.example', ['a@x.example', 'gone@x.example'], MSG);
      expect(r.accepted).to.deep.equal(['a@x.example']);
      expect(r.rejected).to.deep.equal([
        { rcpt: 'gone@x.example', code: 550, response: '550 5.1.1 no such user' },
      ]);
      expect(s.bodies).to.have.length(1);
    });

    it(`sends no body when every recipient is refused, and the connection carries the next message (${mode})`, async () => {
      // Like a real server: DATA is refused (pipelined) when no recipient of this transaction was accepted.
      let anyAccepted = false;
      const s = await scripted({
        pipelining,
        reply: (l) => {
          if (/^MAIL/i.test(l)) anyAccepted = false;
          if (/^RCPT TO:<gone@/i.test(l)) return '550 no such user';
          if (/^RCPT/i.test(l)) anyAccepted = true;
          if (/^DATA/i.test(l) && !anyAccepted) return '554 no valid recipients';
          return undefined;
        },
      });
      const p = pool(options(s.port, { maxConnections: 1 }));
      const r = await p.send('s@c.example', ['gone@x.example'], MSG);
      expect(r.accepted).to.deep.equal([]);
      expect(r.rejected.map((x) => x.code)).to.deep.equal([550]);
      expect(s.bodies).to.have.length(0);
      expect(s.commands).to.include('RSET');
      const ok = await p.send('s@c.example', ['a@x.example'], MSG);
      expect(ok.accepted).to.deep.equal(['a@x.example']);
      expect(s.connections).to.equal(1);
    });
  }

  it('fails the whole transaction with the reply code when MAIL FROM is refused', async () => {
    const s = await scripted({
      pipelining: true,
      reply: (l) =>
        /^MAIL/i.test(l) ? '451 4.3.0 try later' : /^(RCPT|DATA)/i.test(l) ? '503 need MAIL' : undefined,
    });
    const p = pool(options(s.port));
    const err = (await p.send('s@c.example', ['a@x.example'], MSG).catch((e: unknown) => e)) as SmtpError;
    expect(err).to.be.instanceOf(SmtpError);
    expect(err.code).to.equal('EENVELOPE');
    expect(err.responseCode).to.equal(451);
    expect(s.bodies).to.have.length(0);
  });

  it('fails with the reply code when the message is refused after the final dot', async () => {
    const s = await scripted({ pipelining: true, final: () => '554 5.6.0 content refused' });
    const p = pool(options(s.port));
    const err = (await p.send('s@c.example', ['a@x.example'], MSG).catch((e: unknown) => e)) as SmtpError;
    expect(err.code).to.equal('EMESSAGE');
    expect(err.responseCode).to.equal(554);
    expect(err.response).to.equal('554 5.6.0 content refused');
  });

  it('times out when the final reply never comes, without a reply code', async () => {
    const s = await scripted({ pipelining: true, final: () => null });
    const p = pool(options(s.port, { replyTimeout: 300 }));
    const t0 = Date.now();
    const err = (await p.send('s@c.example', ['a@x.example'], MSG).catch((e: unknown) => e)) as SmtpError;
    expect(err.code).to.equal('ETIMEDOUT');
    expect(err.responseCode).to.equal(null);
    expect(Date.now() - t0).to.be.below(2000);
  });

  it('still times out on a connection that sat idle in the pool longer than the reply timeout', async () => {
    const s = await scripted({ pipelining: true, final: (n) => (n === 1 ? '250 queued' : null) });
    const p = pool(options(s.port, { replyTimeout: 200, maxConnections: 1 }));
    expect((await p.send('s@c.example', ['a@x.example'], MSG)).accepted).to.have.length(1);
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    const err = (await p.send('s@c.example', ['b@x.example'], MSG).catch((e: unknown) => e)) as SmtpError;
    expect(err.code).to.equal('ETIMEDOUT');
    expect(Date.now() - t0).to.be.below(2000);
    expect(s.connections, 'the second message went over the idle connection').to.equal(1);
  });

  it('waits dataTimeout, not the shorter reply timeout, for the reply after the final dot', async () => {
    const s = await scripted({ pipelining: true, finalDelay: 600 });
    const p = pool(options(s.port, { replyTimeout: 200, dataTimeout: 3000 }));
    const r = await p.send('s@c.example', ['a@x.example'], MSG);
    expect(r.response).to.equal('250 queued');
    // …and the shorter timeout applies again to the commands after it.
    const hung = await scripted({ pipelining: true, final: () => null });
    const q = pool(options(hung.port, { replyTimeout: 200, dataTimeout: 400 }));
    const t0 = Date.now();
    const err = (await q.send('s@c.example', ['a@x.example'], MSG).catch((e: unknown) => e)) as SmtpError;
    expect(err.code).to.equal('ETIMEDOUT');
    expect(Date.now() - t0).to.be.within(350, 2000);
  });

  it('reuses a connection, and opens a new one when the next hop closed it', async () => {
    const s = await scripted({ pipelining: true, closeAfter: 2 });
    const p = pool(options(s.port, { maxConnections: 1 }));
    for (let i = 0; i < 5; i++) {
      const r = await p.send('s@c.example', [`r${i}@x.example`], MSG);
      expect(r.accepted).to.deep.equal([`r${i}@x.example`]);
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(s.bodies).to.have.length(5);
    expect(s.connections).to.equal(3);
  });

  it('a next hop that refuses the session (554 greeting) is an outage to retry, not a refusal of the message', async () => {
    const server = net.createServer((sock) => {
      sock.on('error', () => undefined);
      sock.end('554 5.7.1 no service for you\r\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    servers.push({ stop: () => new Promise<void>((r) => server.close(() => r())) });
    const port = (server.address() as net.AddressInfo).port;
    const config = relaySchema.parse({});
    const t = new RelayTransport({ ...config, url: `smtp://127.0.0.1:${port}` }, 'gw.test');
    const err = (await t
      .send({ from: 's@c.example', to: ['a@x.example'], raw: MSG, kind: 'relay' })
      .catch((e: unknown) => e)) as TransportError;
    await t.close();
    expect(err).to.be.instanceOf(TransportError);
    expect(err.transient).to.equal(true);
    expect(err.code).to.equal(null);
    expect(err.response).to.include('no service');
  });

  it('refuses an address that would inject a command', async () => {
    const s = await scripted({ pipelining: true });
    const p = pool(options(s.port));
    const err = (await p
      .send('s@c.example', ['a@x.example>\r\nRCPT TO:<evil@x.example'], MSG)
      .catch((e: unknown) => e)) as SmtpError;
    expect(err).to.be.instanceOf(SmtpError);
    expect(s.commands.some((c) => c.includes('evil'))).to.equal(false);
  });

  describe('STARTTLS and AUTH (smtp-server)', () => {
    let pems: { private: string; cert: string };
    before(async () => {
      pems = await generate([{ name: 'commonName', value: 'localhost' }], {
        keySize: 2048,
        algorithm: 'sha256',
      });
    });

    async function tlsServer(opts: { offerTls: boolean; auth: boolean }) {
      const seen = { secureAtMail: [] as boolean[], users: [] as string[], bodies: 0 };
      const server = new SMTPServer({
        key: pems.private,
        cert: pems.cert,
        logger: false,
        authOptional: !opts.auth,
        disabledCommands: [...(opts.offerTls ? [] : ['STARTTLS']), ...(opts.auth ? [] : ['AUTH'])],
        authMethods: ['PLAIN', 'LOGIN'],
        onAuth: (auth, _session, cb) => {
          if (auth.username === 'gw' && auth.password === 's3cret:/@') {
            seen.users.push(auth.username);
            return cb(null, { user: auth.username });
          }
          return cb(new Error('bad login'));
        },
        onMailFrom: (_a, session, cb) => {
          seen.secureAtMail.push(session.secure);
          cb();
        },
        onData: (stream, _s, cb) => {
          stream.resume();
          stream.on('end', () => {
            seen.bodies++;
            cb();
          });
        },
      });
      server.on('error', () => undefined);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      servers.push({ stop: () => new Promise<void>((r) => server.close(() => r())) });
      return { port: (server.server.address() as net.AddressInfo).port, seen };
    }

    it('upgrades with STARTTLS, then logs in, before any envelope', async () => {
      const { port, seen } = await tlsServer({ offerTls: true, auth: true });
      const p = pool(
        options(port, {
          requireTLS: true,
          tls: { rejectUnauthorized: false },
          auth: { user: 'gw', pass: 's3cret:/@' },
        }),
      );
      const r = await p.send('s@c.example', ['a@x.example'], MSG);
      expect(r.accepted).to.deep.equal(['a@x.example']);
      expect(seen.secureAtMail).to.deep.equal([true]);
      expect(seen.users).to.deep.equal(['gw']);
    });

    it('takes the credentials from the relay URL, and a refused login is retried later, never bounced', async () => {
      const { port, seen } = await tlsServer({ offerTls: true, auth: true });
      const config = relaySchema.parse({ allowInvalidCertificates: true });
      const good = new RelayTransport(
        { ...config, url: `smtp://gw:${encodeURIComponent('s3cret:/@')}@127.0.0.1:${port}` },
        'gw.test',
      );
      const ok = await good.send({ from: 's@c.example', to: ['a@x.example'], raw: MSG, kind: 'relay' });
      expect(ok.accepted).to.deep.equal(['a@x.example']);
      await good.close();
      const bad = new RelayTransport({ ...config, url: `smtp://gw:wrong@127.0.0.1:${port}` }, 'gw.test');
      const err = (await bad
        .send({ from: 's@c.example', to: ['a@x.example'], raw: MSG, kind: 'relay' })
        .catch((e: unknown) => e)) as TransportError;
      await bad.close();
      expect(err).to.be.instanceOf(TransportError);
      expect(err.transient).to.equal(true);
      expect(err.code).to.equal(null);
      expect(err.response).to.not.include('wrong');
      expect(seen.bodies).to.equal(1);
    });

    it('refuses to send when TLS is required and the next hop offers no STARTTLS', async () => {
      const { port, seen } = await tlsServer({ offerTls: false, auth: false });
      const p = pool(options(port, { requireTLS: true }));
      const err = (await p.send('s@c.example', ['a@x.example'], MSG).catch((e: unknown) => e)) as SmtpError;
      expect(err.code).to.equal('ETLS');
      expect(seen.secureAtMail).to.deep.equal([]);
    });

    it('refuses a certificate it cannot verify', async () => {
      const { port, seen } = await tlsServer({ offerTls: true, auth: false });
      const p = pool(options(port, { requireTLS: true, tls: { rejectUnauthorized: true } }));
      const err = (await p.send('s@c.example', ['a@x.example'], MSG).catch((e: unknown) => e)) as SmtpError;
      expect(err.code).to.equal('ETLS');
      expect(seen.secureAtMail).to.deep.equal([]);
    });
  });
});
