// Fault: hostile SMTP clients against the real gateway process: CR/LF/NUL inside commands and parameters,
// pipelining abuse, slowloris, a flood of connections from one IP. Refused cleanly; others unaffected.
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import { expect } from 'chai';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, spawnGateway, tempDir, type ChildGateway } from '../support/gateway.js';
import { makeMessage } from '../support/smtp-client.js';
import { report, sendRaw, seqMessage, sleep, smtpClient, waitUntil } from './support.js';

/** Opens a connection, waits for the greeting, writes each step, and returns everything the server said. */
async function talk(
  port: number,
  steps: Array<string | Buffer>,
  opts: { host?: string; localAddress?: string; pause?: number; linger?: number } = {},
): Promise<string> {
  const socket = connect({ port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress });
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  await waitUntil(() => text.includes('\r\n') || socket.destroyed, 5000, 'a greeting');
  for (const s of steps) {
    if (socket.destroyed) break;
    socket.write(s);
    await sleep(opts.pause ?? 50);
  }
  await sleep(opts.linger ?? 300);
  socket.destroy();
  return text;
}

function externalIPv4(): string | undefined {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

const EVIL = 'evil@attacker.example';
const LEGIT = 'legit@partner.example';
const msg = (tag: string) =>
  makeMessage({ to: LEGIT, subject: `abuse ${tag}`, body: `case ${tag}` }) + '.\r\n';

/** Each case injects EVIL (or a control byte) into a command or parameter of an otherwise normal session. */
const injections: Array<[string, Array<string | Buffer>]> = [
  [
    'bare CR joins two RCPTs',
    ['EHLO c\r\n', 'MAIL FROM:<staff@clinic.example>\r\n', `RCPT TO:<${LEGIT}>\rRCPT TO:<${EVIL}>\r\n`],
  ],
  [
    'bare LF joins two RCPTs',
    ['EHLO c\r\n', 'MAIL FROM:<staff@clinic.example>\r\n', `RCPT TO:<${LEGIT}>\nRCPT TO:<${EVIL}>\r\n`],
  ],
  [
    'NUL inside an address',
    ['EHLO c\r\n', 'MAIL FROM:<staff@clinic.example>\r\n', `RCPT TO:<${LEGIT}\0${EVIL}>\r\n`],
  ],
  ['NUL in MAIL FROM', ['EHLO c\r\n', `MAIL FROM:<sta\0ff@clinic.example>\r\n`]],
  ['NUL and CR in EHLO', ['EHLO cli\0ent\rX-Injected: 1\r\n', 'MAIL FROM:<staff@clinic.example>\r\n']],
  [
    'CR in a MAIL parameter',
    ['EHLO c\r\n', `MAIL FROM:<staff@clinic.example> BODY=8BITMIME\rRCPT TO:<${EVIL}>\r\n`],
  ],
  [
    'NUL in a RCPT parameter',
    [
      'EHLO c\r\n',
      'MAIL FROM:<staff@clinic.example>\r\n',
      `RCPT TO:<${LEGIT}> NOTIFY=SUCCESS\0ORCPT=rfc822;${EVIL}\r\n`,
    ],
  ],
  [
    '8-bit bytes in a command',
    [
      'EHLO c\r\n',
      Buffer.from([...Buffer.from('MAIL FROM:<st'), 0xff, 0xfe, ...Buffer.from('aff@clinic.example>\r\n')]),
    ],
  ],
  ['a 64 KB command line', ['EHLO c\r\n', `MAIL FROM:<${'a'.repeat(65536)}@clinic.example>\r\n`]],
];

describe('fault: SMTP abuse (real process)', function () {
  this.timeout(120000);
  let capture: CaptureServer;
  let child: ChildGateway | undefined;
  let dataDir: string;
  const ip = externalIPv4();

  before(async () => {
    capture = new CaptureServer();
    await capture.start();
    dataDir = await tempDir('phigw-fault-abuse-');
    child = await spawnGateway({
      dataDir,
      relayUrl: capture.url,
      overrides: {
        logLevel: 'warn',
        smtp: { host: '0.0.0.0', maxClients: 40, maxClientsPerIp: 10, socketTimeout: 60000 },
      },
    });
  });

  after(async () => {
    await child?.kill('SIGTERM');
    await capture.stop();
    await removeDir(dataDir);
  });

  afterEach(() => {
    expect(child!.child.exitCode, 'the gateway is still running').to.equal(null);
  });

  it('CR/LF/NUL/8-bit in commands and parameters: no control byte and no injected recipient gets through', async () => {
    const before = capture.count;
    const transcripts: string[] = [];
    for (const [name, steps] of injections) {
      const t = await talk(child!.smtpPort, [
        ...steps,
        `RCPT TO:<${LEGIT}>\r\n`,
        'DATA\r\n',
        msg(name),
        'QUIT\r\n',
      ]);
      transcripts.push(t);
      expect(t, name).to.match(/^220 /);
    }
    await sleep(2000);
    const arrived = capture.messages.slice(before);
    const rcpts = arrived.flatMap((m) => m.to);
    const froms = arrived.map((m) => m.from);
    report(
      `      ${injections.length} injection cases → ${arrived.length} messages relayed, recipients: ${[...new Set(rcpts)].join(',')}`,
    );
    for (const a of [...rcpts, ...froms])
      expect(a, 'an address with a control or 8-bit byte').to.match(/^[\x21-\x7e]*$/);
    // Only a bare LF ends a command line (as in Postfix by default): the same client could have sent that
    // RCPT anyway, so no trust boundary is crossed. CR, NUL and parameters must never split a command.
    const withEvil = injections
      .map(([name]) => name)
      .filter((name) =>
        arrived.some((m) => m.raw.toString().includes(`abuse ${name}`) && m.to.includes(EVIL)),
      );
    report(`      injected recipient accepted only in: ${withEvil.join(', ') || 'none'}`);
    expect(withEvil.filter((n) => n !== 'bare LF joins two RCPTs')).to.deep.equal([]);
    for (const m of arrived) {
      const received = m.raw.toString('latin1').split('\r\n\r\n')[0]!;
      expect(received, 'control bytes from EHLO in our trace header').not.to.match(/[\0\r](?!\n)/);
    }
    // And a normal client still gets through.
    const t = smtpClient(child!.smtpPort);
    const ok = await sendRaw(t, seqMessage(1), 'staff@clinic.example', [LEGIT]);
    t.close();
    expect(ok.response).to.match(/^250 /);
  });

  it('pipelining abuse: a whole session in one write, 150 recipients, two messages: 452 past the limit, both intact', async () => {
    const before = capture.count;
    const rcpts = Array.from({ length: 150 }, (_, i) => `RCPT TO:<p${i}@partner.example>\r\n`).join('');
    const one = makeMessage({ subject: 'pipelined one', body: 'first' });
    const two = makeMessage({ subject: 'pipelined two', body: 'second' });
    const blob =
      'EHLO c\r\nMAIL FROM:<staff@clinic.example>\r\n' +
      rcpts +
      'DATA\r\n' +
      one +
      '.\r\n' +
      'MAIL FROM:<staff@clinic.example>\r\nRCPT TO:<second@partner.example>\r\nDATA\r\n' +
      two +
      '.\r\nQUIT\r\n';
    const t = await talk(child!.smtpPort, [blob], { linger: 2000 });
    const codes = t
      .split('\r\n')
      .filter((l) => /^\d{3} /.test(l))
      .map((l) => l.slice(0, 3));
    expect(codes.filter((c) => c === '452').length, 'recipients over maxRecipients (100)').to.equal(50);
    expect(codes.filter((c) => c === '250').length, t.slice(-400)).to.be.at.least(100 + 2 + 2);
    await capture.waitFor(before + 2);
    const arrived = capture.messages.slice(before);
    const first = arrived.find((m) => m.raw.toString().includes('pipelined one'))!;
    const second = arrived.find((m) => m.raw.toString().includes('pipelined two'))!;
    expect(first.to.length).to.equal(100);
    expect(second.to).to.deep.equal(['second@partner.example']);
    expect(first.raw.toString()).not.to.contain('pipelined two');
    expect(second.raw.toString()).not.to.contain('pipelined one');
  });

  it('slowloris (a byte every 2 s on 8 connections): a well-behaved client sends and gets 250 meanwhile', async () => {
    let stop = false;
    const sockets: Socket[] = [];
    const loris = Array.from({ length: 8 }, async () => {
      const s = connect({ port: child!.smtpPort, host: '127.0.0.1' });
      sockets.push(s);
      s.on('error', () => undefined);
      const line = 'EHLO slow.example.org.with.a.long.name\r\n';
      for (let i = 0; !stop && !s.destroyed; i = (i + 1) % line.length) {
        s.write(line[i]!);
        await sleep(2000);
      }
    });
    await sleep(3000);
    const started = Date.now();
    const t = smtpClient(child!.smtpPort);
    const replies: string[] = [];
    for (let i = 0; i < 5; i++)
      replies.push((await sendRaw(t, seqMessage(500 + i), 'staff@clinic.example', [LEGIT])).response);
    t.close();
    const ms = Date.now() - started;
    stop = true;
    for (const s of sockets) s.destroy();
    await Promise.all(loris);
    report(`      slowloris: 8 slow connections open; 5 normal messages accepted in ${ms} ms`);
    expect(
      replies.every((r) => r.startsWith('250 ')),
      replies.join(' | '),
    ).to.equal(true);
    expect(ms).to.be.below(5000);
  });

  it('too many connections from one IP: the excess gets 421 and is closed; a client from another IP is unaffected', async () => {
    expect(ip, 'this test needs a non-loopback IPv4 address').to.be.a('string');
    const flood: Socket[] = [];
    const greetings: string[] = [];
    for (let i = 0; i < 25; i++) {
      const s = connect({ port: child!.smtpPort, host: ip!, localAddress: ip! });
      s.on('error', () => undefined);
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString()));
      flood.push(s);
      await new Promise<void>((r) => s.once('connect', () => r()));
      await waitUntil(() => text.includes('\r\n') || s.destroyed, 5000, 'a reply to the flood');
      greetings.push(text.slice(0, 3));
    }
    const refused = greetings.filter((g) => g === '421').length;
    const welcomed = greetings.filter((g) => g === '220').length;
    const t = smtpClient(child!.smtpPort);
    const ok = await sendRaw(t, seqMessage(900), 'staff@clinic.example', [LEGIT]);
    t.close();
    for (const s of flood) s.destroy();
    report(
      `      flood of 25 from ${ip}: ${welcomed} × 220, ${refused} × 421; loopback client: ${ok.response.slice(0, 3)}`,
    );
    expect(welcomed, 'maxClientsPerIp').to.equal(10);
    expect(refused).to.equal(15);
    expect(ok.response).to.match(/^250 /);
    // Once the flood is gone, that IP may connect again.
    await sleep(300);
    const again = await talk(child!.smtpPort, ['QUIT\r\n'], { host: ip!, localAddress: ip! });
    expect(again).to.match(/^220 /);
  });
});
