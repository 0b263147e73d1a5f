// The scan's bounded parse must see a message exactly as simpleParser does — the same verdict, part for part —
// while keeping only the attachment bodies the scan reads: an image, an unknown binary or an over-limit part is
// counted (its first bytes kept), a text, PDF, zip, TNEF, attached message or compound file is kept whole.
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { simpleParser, type ParsedMail } from 'mailparser';
import { parseForScan } from '../../gateway/bounded-parse.js';
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
