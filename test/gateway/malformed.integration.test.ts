// Broken MIME must never stop the gateway: each message is relayed or held with a reason, and the
// gateway keeps accepting mail afterwards.
import { expect } from 'chai';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';
import { makeMessage, RawSmtp } from '../support/smtp-client.js';

function multipart(boundary: string, parts: string[], close = true): string {
  return parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('') + (close ? `--${boundary}--\r\n` : '');
}

function nested(depth: number): string {
  let body = 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
  for (let i = 0; i < depth; i++) {
    body = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n` + multipart(`b${i}`, [body]);
  }
  return `From: a@clinic.example\r\nTo: b@partner.example\r\nSubject: nested\r\nMIME-Version: 1.0\r\n${body}`;
}

const cases: Array<[string, string | Buffer]> = [
  [
    'missing closing boundary',
    'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zz"\r\n\r\n' +
      multipart('zz', ['Content-Type: text/plain\r\n\r\npart one'], false),
  ],
  [
    'boundary declared but never used',
    'Subject: x\r\nContent-Type: multipart/mixed; boundary="never"\r\n\r\njust text\r\n',
  ],
  [
    'multipart without a boundary parameter',
    'Subject: x\r\nContent-Type: multipart/mixed\r\n\r\n--\r\nstuff\r\n',
  ],
  [
    'invalid base64',
    'Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not*base64###\r\n====\r\n',
  ],
  [
    'truncated base64 attachment',
    'Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="q"\r\n\r\n' +
      multipart(
        'q',
        [
          'Content-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAw',
        ],
        false,
      ),
  ],
  [
    'broken quoted-printable',
    'Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nbad =ZZ soft=\r\n=\r\n=4\r\n',
  ],
  [
    'unknown transfer encoding',
    'Subject: x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unheard-of\r\n\r\nbody\r\n',
  ],
  [
    '8-bit bytes in headers',
    Buffer.concat([
      Buffer.from('Subject: caf'),
      Buffer.from([0xe9, 0xff, 0xfe]),
      Buffer.from('\r\nFrom: J\xf6rg <j@clinic.example>\r\n\r\nbody\r\n', 'latin1'),
    ]),
  ],
  ['NUL bytes in header and body', 'Subject: a\0b\r\n\r\nbody\0with\0nuls\r\n'],
  ['no header section at all', 'just a line of text with no headers\r\n'],
  ['a header line of 20 000 characters', `Subject: x\r\nX-Long: ${'a'.repeat(20000)}\r\n\r\nbody\r\n`],
  ['multipart nested 60 deep', nested(60)],
  [
    'charset nobody knows',
    'Subject: =?x-klingon?B?SGVsbG8=?=\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nbody\r\n',
  ],
];

describe('malformed MIME (integration)', function () {
  this.timeout(60000);
  let capture: CaptureServer;
  let gw: RunningGateway;

  before(async () => {
    capture = new CaptureServer();
    await capture.start();
    gw = await startGateway({ relayUrl: capture.url, overrides: { queue: { maxProcessingAttempts: 2 } } });
  });

  after(async () => {
    await gw.stop();
    await removeDir(gw.dataDir);
    await capture.stop();
  });

  it('relays or holds every broken message with a reason, and keeps accepting mail', async () => {
    const ids: string[] = [];
    for (const [name, body] of cases) {
      const c = await RawSmtp.open(gw.smtpPort);
      await c.cmd('EHLO client.example');
      await c.cmd('MAIL FROM:<staff@clinic.example>');
      await c.cmd(`RCPT TO:<${name.replace(/[^a-z0-9]+/gi, '-')}@partner.example>`);
      expect(await c.cmd('DATA')).to.match(/^354/);
      const data = Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1');
      const reply = await c.raw(Buffer.concat([data, Buffer.from('.\r\n')]));
      expect(reply, name).to.match(/^250 .*queued as ([0-9A-Z]+)/);
      ids.push(/queued as ([0-9A-Z]+)/.exec(reply)![1]!);
      c.close();
    }
    // Every message reaches a final place: delivered, or held with a reason.
    const end = Date.now() + 30000;
    let rows: Array<{ id: string; state: string; reason: string | null }> = [];
    while (Date.now() < end) {
      rows = (await gw.store
        .db('messages')
        .whereIn('id', ids)
        .select('id', 'state', 'reason')) as typeof rows;
      if (rows.every((r) => r.state === 'done' || r.state === 'held')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [i, [name]] of cases.entries()) {
      const row = rows.find((r) => r.id === ids[i])!;
      expect(['done', 'held'], `${name}: ${row.state}`).to.include(row.state);
      if (row.state === 'held')
        expect(row.reason, `${name} held without a reason`).to.be.a('string').and.not.equal('');
    }
    const delivered = rows.filter((r) => r.state === 'done').length;
    await capture.waitFor(delivered, 10000);
    // Still alive and relaying.
    const c = await RawSmtp.open(gw.smtpPort);
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<staff@clinic.example>');
    await c.cmd('RCPT TO:<after@partner.example>');
    await c.cmd('DATA');
    expect(await c.raw(makeMessage() + '.\r\n')).to.match(/^250/);
    c.close();
    await capture.waitFor(delivered + 1, 10000);
  });
});
