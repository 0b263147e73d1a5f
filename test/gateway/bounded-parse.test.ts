// The scan's bounded parse must see a message exactly as simpleParser does — the same verdict, part for part —
// while keeping only the attachment bodies the scan reads: an image, an unknown binary or an over-limit part is
// counted (its first bytes kept), a text, PDF, zip, TNEF, attached message or compound file is kept whole.
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { simpleParser, type ParsedMail } from 'mailparser';
import { parseForScan, plainTextBody } from '../../gateway/bounded-parse.js';
import { CLASSIFY_BYTES } from '../../gateway/extract.js';
import { PARSE_OPTIONS } from '../../gateway/pipeline.js';
import { RulesSource } from '../../gateway/rules.js';
import { DlpScanner } from '../../gateway/scan.js';

const LIMIT = 64 * 1024;
const rules = new RulesSource();
const scanner = new DlpScanner(rules, { maxAttachmentBytes: LIMIT });

function message(contentType: string, filename: string, content: Buffer): Buffer {
  const b64 = content.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      'From: Front Desk <desk@clinic.example>',
      'To: Pat Doe <partner@lab.example>',
      'Subject: Weekly update',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="bb"',
      '',
      '--bb',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Jane Roe, MRN 4455667, was seen today for her diabetes follow-up.',
      '--bb',
      `Content-Type: ${contentType}; name="${filename}"`,
      `Content-Disposition: attachment; filename="${filename}"`,
      'Content-Transfer-Encoding: base64',
      '',
      b64,
      '--bb--',
      '',
    ].join('\r\n'),
    'latin1',
  );
}

const text = (n: number) => Buffer.from('Patient Jane Roe, DOB 04/12/1961, chart attached.\n'.repeat(n));
const withMagic = (magic: number[], n: number) => Buffer.concat([Buffer.from(magic), randomBytes(n)]);

// [what, content type, file name, content, kept whole?]
const cases: Array<[string, string, string, Buffer, boolean]> = [
  // Counted, not kept: the scan never reads these bodies.
  ['an unknown binary', 'application/octet-stream', 'data.bin', withMagic([0x00, 0x01], 200_000), false],
  ['a PNG image', 'image/png', 'scan.png', withMagic([0x89, 0x50, 0x4e, 0x47], 100_000), false],
  ['a gzip file', 'application/gzip', 'logs.gz', withMagic([0x1f, 0x8b], 50_000), false],
  ['a text file over the limit', 'text/plain', 'notes.txt', text(2000), false],
  // Kept whole: the scan reads them.
  ['a text file under the limit', 'text/plain', 'notes.txt', text(1000), true],
  [
    'a PDF',
    'application/pdf',
    'report.pdf',
    Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(20_000)]),
    true,
  ],
  ['a zip', 'application/zip', 'files.zip', withMagic([0x50, 0x4b, 0x03, 0x04], 20_000), true],
  [
    'a compound file',
    'application/msword',
    'old.doc',
    withMagic([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], 20_000),
    true,
  ],
  ['a binary named .pdf', 'application/octet-stream', 'scan.pdf', randomBytes(30_000), true],
  [
    'a binary smaller than the head',
    'application/octet-stream',
    'tiny.bin',
    randomBytes(CLASSIFY_BYTES - 10),
    true,
  ],
];

async function verdictOf(parsed: ParsedMail): Promise<string> {
  return JSON.stringify(await scanner.scan(parsed));
}

describe('parseForScan', () => {
  for (const [what, contentType, filename, content, whole] of cases) {
    it(`${whole ? 'keeps' : 'counts'} ${what}, with the verdict simpleParser gives`, async () => {
      const raw = message(contentType, filename, content);
      const full = await simpleParser(raw, PARSE_OPTIONS);
      const bounded = await parseForScan(raw, PARSE_OPTIONS, LIMIT);
      expect(await verdictOf(bounded)).to.equal(await verdictOf(full));
      expect(bounded.text).to.equal(full.text);
      expect(bounded.subject).to.equal(full.subject);
      const kept = bounded.attachments[0]!.content;
      if (whole) expect(kept.equals(content)).to.equal(true);
      else {
        expect(kept.length).to.equal(CLASSIFY_BYTES);
        expect(kept.equals(content.subarray(0, CLASSIFY_BYTES))).to.equal(true);
      }
    });
  }

  it('parses a stream fed in small pieces exactly as the whole buffer', async () => {
    const raw = message('image/png', 'scan.png', withMagic([0x89, 0x50, 0x4e, 0x47], 300_000));
    const input = new PassThrough();
    const parsing = parseForScan(input, PARSE_OPTIONS, LIMIT);
    for (let at = 0; at < raw.length; at += 1000) input.write(raw.subarray(at, at + 1000));
    input.end();
    const streamed = await parsing;
    const whole = await parseForScan(raw, PARSE_OPTIONS, LIMIT);
    expect(await verdictOf(streamed)).to.equal(await verdictOf(whole));
    expect(streamed.attachments[0]!.content.equals(whole.attachments[0]!.content)).to.equal(true);
  });

  it('fails when its input fails (a spool that fails its tag check), never answers with what it read', async () => {
    const raw = message('application/octet-stream', 'data.bin', randomBytes(100_000));
    const input = new PassThrough();
    const parsing = parseForScan(input, PARSE_OPTIONS, LIMIT);
    input.write(raw.subarray(0, raw.length >> 1));
    input.destroy(new Error('SPOOL_CORRUPT'));
    let failed: unknown;
    await parsing.catch((err: unknown) => (failed = err));
    expect(failed).to.be.instanceOf(Error);
  });
});

describe('parseForScan on a single plain-text part (the body read as it is)', () => {
  const HEADERS = [
    'From: "Front Desk" <desk@clinic.example>',
    'To: "Pat Doe" <pat@lab.example>, =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jm@lab.example>',
    'Cc: Sam Roe <sam@lab.example>',
    'Subject: =?utf-8?b?UmU6IGxhYiByZXN1bHRzIOKAkyBKw7ZyZw==?=',
    'Message-ID: <a.1@clinic.example>',
    'X-Long: a header folded',
    '  over two lines',
    'Date: Tue, 01 Dec 2026 07:00:00 +0000',
    'References: <r.1@clinic.example>\r\n <r.2@clinic.example>',
    'In-Reply-To: <r.2@clinic.example>',
    'Reply-To: Desk <desk@clinic.example>',
    'Bcc: audit@clinic.example',
    'X-Priority: 1 (Highest)',
    'List-Unsubscribe: <mailto:leave@clinic.example>',
    'X-Mixed: =?iso-8859-1?q?caf=E9?= and more',
  ];
  /** [Content-Type, Content-Transfer-Encoding, another field, whether the body is read as it is] */
  const TYPES: Array<[string | null, string | null, string | null, boolean]> = [
    [null, null, null, true],
    ['text/plain', null, null, true],
    ['text/plain; charset=utf-8', '7bit', null, true],
    ['TEXT/Plain; Charset="UTF-8"', '8bit', null, true],
    ['text/plain; charset=us-ascii;', ' 7BIT ', null, true],
    ['text/plain;\r\n charset=utf-8', null, null, true],
    ['text/plain; charset=utf-8; format=flowed', null, null, false],
    ['text/plain; charset=iso-8859-1', '8bit', null, false],
    ['text/plain; charset=utf-8', 'quoted-printable', null, false],
    ['text/plain; charset=utf-8', 'base64', null, false],
    ['text/html; charset=utf-8', null, null, false],
    ['text/plain', null, 'Content-Disposition: attachment; filename="notes.txt"', false],
    ['text/plain', null, 'Content-Type: text/html', false],
    ['text/plain', null, 'Content-Transfer-Encoding: base64', false],
  ];
  const BODIES = [
    'Hello Pat,\r\n\r\nThe results are in.\r\n-- \r\nFront desk\r\n',
    'No line end at the end',
    'Lines\nwith bare LF\r\nand a lone\rCR\r\n\r\n\r\n',
    '.\r\n..dot lines\r\n.\r\n',
    'J\u00f6rg M\u00fcller, \u2603 and \u{1f600}\r\n',
    `${'a long line '.repeat(10_000)}\r\nend\r\n`,
    'NUL\u0000 and tab\there\r\n',
  ];

  async function viaMailparser(raw: Buffer): Promise<unknown> {
    return view(await simpleParser(raw, PARSE_OPTIONS));
  }
  /**
   * Every field of the parse (the header map as its entries), in a fixed order; attachments counted (a large one's
   * body is not kept here by design: see the tests above).
   */
  function view(m: ParsedMail): unknown {
    const fields = Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : 1)));
    return { ...fields, headers: [...m.headers], attachments: m.attachments.length };
  }

  it('reads what mailparser reads, for every header and body, and skips its line splitting where it can', async () => {
    let direct = 0;
    for (const [type, encoding, other, plain] of TYPES)
      for (const body of BODIES) {
        const fields = [...HEADERS];
        if (type !== null) fields.push(`Content-Type: ${type}`);
        if (encoding !== null) fields.push(`Content-Transfer-Encoding: ${encoding}`);
        if (other !== null) fields.push(other);
        // A body in another transfer encoding is written in it, so mailparser reads it too.
        const encoded =
          encoding === 'base64' || other?.includes('base64')
            ? Buffer.from(body).toString('base64')
            : encoding === 'quoted-printable'
              ? body.replace(/=/g, '=3D')
              : body;
        const raw = Buffer.from(`${fields.join('\r\n')}\r\n\r\n${encoded}`, 'utf8');
        const what = `${type} / ${encoding} / ${other} / ${JSON.stringify(body.slice(0, 20))}`;
        const asIs = plainTextBody(raw) !== null;
        // Bytes beyond ASCII in a body declared US-ASCII or without charset: mailparser decides.
        const beyondAscii = /[^\0-\x7f]/.test(body) && !/utf-8/i.test(type ?? '');
        expect(asIs, what).to.equal(plain && !beyondAscii);
        if (asIs) direct++;
        expect(view(await parseForScan(raw, PARSE_OPTIONS, LIMIT)), what).to.deep.equal(
          await viaMailparser(raw),
        );
      }
    expect(direct).to.be.greaterThan(30);
  });

  it('leaves to mailparser a header with bare line ends or odd blanks, a body that is not UTF-8, and an empty body', async () => {
    const bare = Buffer.from('From: a@b.example\nContent-Type: text/plain\r\n\r\nhello\r\n');
    const latin1 = Buffer.concat([
      Buffer.from('From: a@b.example\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf'),
      Buffer.from([0xe9, 0x0d, 0x0a]),
    ]);
    const empty = Buffer.from('From: a@b.example\r\nContent-Type: text/plain\r\n\r\n');
    const headerOnly = Buffer.from('From: a@b.example\r\nContent-Type: text/plain\r\nSubject: no blank line');
    // A no-break space (byte A0) after the type: a blank to a latin1 reading, not to the parser.
    const nbsp = Buffer.concat([
      Buffer.from('From: a@b.example\r\nContent-Type: text/plain'),
      Buffer.from([0xa0]),
      Buffer.from('\r\n\r\nhello\r\n'),
    ]);
    for (const raw of [bare, latin1, empty, headerOnly, nbsp]) {
      expect(plainTextBody(raw)).to.equal(null);
      expect(view(await parseForScan(raw, PARSE_OPTIONS, LIMIT))).to.deep.equal(await viaMailparser(raw));
    }
  });

  it('reads as mailparser does with options that render the text as HTML, or with a small header limit', async () => {
    const raw = Buffer.from(
      `${HEADERS.join('\r\n')}\r\nContent-Type: text/plain\r\n\r\nSee https://clinic.example/a for\r\nthe form.\r\n`,
    );
    expect(plainTextBody(raw)).to.not.equal(null);
    // Without skipTextToHtml the parser renders the whole body as HTML: the parse here must show the same.
    const rendering = { ...PARSE_OPTIONS, skipTextToHtml: false };
    const rendered = await parseForScan(raw, rendering, LIMIT);
    expect(rendered.textAsHtml).to.include('the form.');
    expect(view(rendered)).to.deep.equal(view(await simpleParser(raw, rendering)));
    // A header past mailsplit's limit (each line counting 64 bytes at least) fails both ways alike.
    for (const maxHeadSize of [600, 64 * 30, 10_000]) {
      const options = { ...PARSE_OPTIONS, maxHeadSize } as typeof PARSE_OPTIONS;
      const ours = await parseForScan(raw, options, LIMIT).then(view, (err: Error) => err.message);
      const theirs = await simpleParser(raw, options).then(view, (err: Error) => err.message);
      expect(ours, `maxHeadSize ${maxHeadSize}`).to.deep.equal(theirs);
    }
  });
});
