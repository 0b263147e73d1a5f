// Fault: bad input through the full pipeline of the real process: the project's broken-message generator
// and 10,000 recipients. No crash, bounded memory and time, each message with an outcome. (A MIME corpus
// from outside the project goes through the same harness with npm run eval:mime -- PATH.)
import { expect } from 'chai';
import { badInputHarness } from './bad-input-harness.js';
import { openWork, report, waitUntil } from './support.js';

const head = (subject: string, extra = '') =>
  `From: staff@clinic.example\r\nTo: partner@partner.example\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n${extra}`;

/** The project's broken-message generator: each entry is one kind of breakage, at a size that hurts. */
function generated(): Array<[string, Buffer]> {
  const deep = (() => {
    let body = 'Content-Type: text/plain\r\n\r\ninnermost\r\n';
    for (let i = 0; i < 1000; i++)
      body = `Content-Type: multipart/mixed; boundary="d${i}"\r\n\r\n--d${i}\r\n${body}--d${i}--\r\n`;
    return head('deep nesting') + body;
  })();
  const manyParts = (() => {
    const parts: string[] = [];
    for (let i = 0; i < 100_000; i++) parts.push(`--p\r\n\r\n${i}\r\n`);
    return (
      head('100000 parts', 'Content-Type: multipart/mixed; boundary="p"\r\n\r\n') +
      parts.join('') +
      '--p--\r\n'
    );
  })();
  const cases: Array<[string, string | Buffer]> = [
    [
      'missing boundaries (declared, never used)',
      head('no boundary', 'Content-Type: multipart/mixed; boundary="nope"\r\n\r\n') + 'text only\r\n',
    ],
    [
      'missing closing boundary',
      head('open', 'Content-Type: multipart/mixed; boundary="o"\r\n\r\n') +
        '--o\r\nContent-Type: text/plain\r\n\r\nnever closed\r\n',
    ],
    [
      'multipart without boundary parameter',
      head('nobound', 'Content-Type: multipart/alternative\r\n\r\n') + '--\r\nx\r\n',
    ],
    [
      'base64 over garbage',
      head('b64', 'Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n') +
        '!!@@##$$ not base64 at all ====\r\n',
    ],
    [
      'base64 on a multipart container',
      head(
        'b64mp',
        'Content-Type: multipart/mixed; boundary="q"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
      ) + '--q\r\n\r\nx\r\n--q--\r\n',
    ],
    [
      'broken quoted-printable',
      head('qp', 'Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n') +
        '=ZZ=\r\n=4\r\n=\r\n',
    ],
    [
      'unknown transfer encoding',
      head('x-enc', 'Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode-ish\r\n\r\n') +
        'begin 644 x\r\nend\r\n',
    ],
    [
      '7bit declared, 8-bit sent',
      Buffer.concat([
        Buffer.from(head('8bit body', 'Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n')),
        Buffer.from([0xe9, 0xff, 0x80, 0x0d, 0x0a]),
      ]),
    ],
    ['deep nesting (1000 levels)', deep],
    [
      'huge header (1 MB line)',
      head('huge', `X-Huge: ${'h'.repeat(1024 * 1024)}\r\nContent-Type: text/plain\r\n\r\n`) +
        'small body\r\n',
    ],
    [
      '50,000 header lines',
      head('many headers', Array.from({ length: 50_000 }, (_, i) => `X-H${i}: v\r\n`).join('') + '\r\n') +
        'body\r\n',
    ],
    [
      'NUL bytes in body and headers',
      head('nul\0subject', 'Content-Type: text/plain\r\nX-Nul: a\0b\r\n\r\n') + 'a\0b\0c\r\n',
    ],
    [
      '8-bit bytes in headers',
      Buffer.concat([
        Buffer.from('From: Dr. M'),
        Buffer.from([0xfc, 0x6c, 0x6c, 0x65, 0x72]),
        Buffer.from(' <staff@clinic.example>\r\nTo: partner@partner.example\r\nSubject: r'),
        Buffer.from([0xe9, 0xff, 0xfe]),
        Buffer.from('sum\r\n\r\nbody\r\n'),
      ]),
    ],
    ['100,000 tiny parts', manyParts],
    ['no header/body separator', 'this is not even a header line\r\nnor this\r\n'],
    ['empty message', ''],
  ];
  return cases.map(([name, body]) => [name, typeof body === 'string' ? Buffer.from(body, 'latin1') : body]);
}

describe('fault: bad input through the full pipeline (real process)', function () {
  this.timeout(400000);
  const h = badInputHarness();

  it('generated breakage (boundaries, encodings, 1000-deep nesting, 1 MB header, NUL, 8-bit, 100,000 parts)', async () => {
    const inputs = generated();
    const { refused } = await h.run('generated', inputs);
    // A refusal is allowed only with a proper SMTP reply (5xx for bytes we never take, e.g. NUL if refused).
    for (const r of refused) expect(r).to.match(/: [45]\d\d /);
    expect(openWork(h.dataDir).messages).to.equal(0);
  });

  it('10,000 recipients: 452 past the limit, the rest in another transaction, each recipient once', async () => {
    const { connect } = await import('node:net');
    const port = h.child.smtpPort;
    const before = h.capture.count;
    const transaction = async (rcpts: string[]) => {
      const s = connect({ port, host: '127.0.0.1' });
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      await new Promise<void>((r) => s.once('connect', () => r()));
      await waitUntil(() => text.includes('\r\n'), 5000, 'greeting');
      s.write(
        'EHLO c\r\nMAIL FROM:<staff@clinic.example>\r\n' + rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join(''),
      );
      const finals = () => text.split('\r\n').filter((l) => /^\d{3} /.test(l)).length;
      await waitUntil(() => finals() >= rcpts.length + 3, 60000, 'RCPT replies');
      s.write('DATA\r\n');
      await waitUntil(() => /\r\n354 /.test(text), 10000, '354');
      s.write(head('many recipients', 'Content-Type: text/plain\r\n\r\n') + 'hello all\r\n.\r\nQUIT\r\n');
      await waitUntil(() => /\r\n221 /.test(text), 30000, 'the end of the transaction');
      s.destroy();
      const codes = text
        .split('\r\n')
        .filter((l) => /^\d{3} /.test(l))
        .map((l) => l.slice(0, 3));
      return codes;
    };
    const all = Array.from({ length: 10_000 }, (_, i) => `u${i}@partner.example`);
    const first = await transaction(all);
    const over = first.filter((c) => c === '452').length;
    expect(over, '452 for every recipient past maxRecipients (100)').to.equal(9_900);
    const second = await transaction(all.slice(100, 200));
    expect(second.filter((c) => c === '452').length).to.equal(0);
    await h.capture.waitFor(before + 2, 60000);
    const got = h.capture.messages
      .slice(before)
      .filter((m) => m.raw.toString().includes('Subject: many recipients'))
      .flatMap((m) => m.to);
    expect(got.length, 'each recipient once').to.equal(200);
    expect(new Set(got)).to.deep.equal(new Set(all.slice(0, 200)));
    report(
      `      10,000 RCPTs: 100 accepted, ${over} × 452; the next 100 in a second transaction; 200 delivered once each`,
    );
    expect(h.child.child.exitCode).to.equal(null);
  });
});
