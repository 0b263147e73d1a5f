// What the scanner gets to see: every readable piece of a message becomes a text part, and everything it cannot
// read (images, encrypted or corrupt files, archives too big or too deep) becomes a flag the rules fail closed on.
// Attachments are hostile input: zip bombs, lying headers and deep nesting must cost bounded time and memory.
// Fixtures are made here: MIME by hand, zip/DOCX/XLSX with fflate or a byte-level zip writer, PDF and TNEF by hand.
import { expect } from 'chai';
import { zipSync, strToU8 } from 'fflate';
import { simpleParser, type ParsedMail } from 'mailparser';
import zlib from 'node:zlib';
import { analyzePart, compileRecognizers } from '../../dlp/engine.js';
import { payloadRecognizers } from '../../dlp/recognizers/payloads.js';
import { extractParts, type ExtractLimits, type Extracted } from '../../gateway/extract.js';

// ---- MIME ------------------------------------------------------------------------------------------------

interface AttachmentSpec {
  filename?: string;
  contentType: string;
  content: Buffer | string;
  /** message/rfc822 travels as 8bit; everything else as base64. */
  encoding?: 'base64' | '8bit';
  disposition?: 'attachment' | 'inline';
}

interface MailSpec {
  subject?: string;
  text?: string;
  html?: string;
  attachments?: AttachmentSpec[];
}

let boundaries = 0;

function makeMime(spec: MailSpec): string {
  const b = `b${++boundaries}-boundary`;
  const lines = [
    'From: Front Desk <desk@clinic.example>',
    'To: partner@lab.example',
    `Subject: ${spec.subject ?? 'Weekly update'}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
  ];
  const base64 = (data: Buffer | string) =>
    (Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8')).toString('base64').replace(/.{76}/g, '$&\r\n');
  // Text and HTML together are alternatives of one body, as mail clients send them.
  const alt = spec.text !== undefined && spec.html !== undefined ? `${b}-alt` : b;
  if (alt !== b) lines.push(`--${b}`, `Content-Type: multipart/alternative; boundary="${alt}"`, '');
  if (spec.text !== undefined)
    lines.push(
      `--${alt}`,
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      base64(spec.text),
    );
  if (spec.html !== undefined)
    lines.push(
      `--${alt}`,
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      base64(spec.html),
    );
  if (alt !== b) lines.push(`--${alt}--`);
  for (const a of spec.attachments ?? []) {
    const name = a.filename ? `; name="${a.filename}"` : '';
    const disposition = `Content-Disposition: ${a.disposition ?? 'attachment'}${a.filename ? `; filename="${a.filename}"` : ''}`;
    if (a.encoding === '8bit')
      lines.push(`--${b}`, `Content-Type: ${a.contentType}${name}`, disposition, '', a.content.toString());
    else
      lines.push(
        `--${b}`,
        `Content-Type: ${a.contentType}${name}`,
        disposition,
        'Content-Transfer-Encoding: base64',
        '',
        base64(a.content),
      );
  }
  lines.push(`--${b}--`, '');
  return lines.join('\r\n');
}

async function parse(spec: MailSpec): Promise<ParsedMail> {
  return simpleParser(makeMime(spec), { skipImageLinks: true, skipTextLinks: true });
}

async function extract(spec: MailSpec, limits?: Partial<ExtractLimits>): Promise<Extracted> {
  return extractParts(await parse(spec), limits);
}

function textOf(result: Extracted, id: string): string {
  const part = result.parts.find((p) => p.id === id);
  expect(part, `part ${id} in ${JSON.stringify(result.parts.map((p) => p.id))}`).to.exist;
  return part!.text;
}

// ---- files -----------------------------------------------------------------------------------------------

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

function makeZip(files: Record<string, Buffer | string>): Buffer {
  const input: Record<string, Uint8Array> = {};
  for (const [name, data] of Object.entries(files))
    input[name] = typeof data === 'string' ? strToU8(data) : new Uint8Array(data);
  return Buffer.from(zipSync(input, { level: 6 }));
}

function makeDocx(
  paragraphs: string[],
  opts: { header?: string; title?: string; image?: boolean } = {},
): Buffer {
  const w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"';
  const body = paragraphs
    .map(
      (p) =>
        `<w:p><w:r><w:t xml:space="preserve">${p.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</w:t></w:r></w:p>`,
    )
    .join('');
  const files: Record<string, Buffer | string> = {
    '[Content_Types].xml':
      '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
    'word/document.xml': `<?xml version="1.0"?><w:document ${w}><w:body>${body}</w:body></w:document>`,
  };
  if (opts.header)
    files['word/header1.xml'] = `<w:hdr ${w}><w:p><w:r><w:t>${opts.header}</w:t></w:r></w:p></w:hdr>`;
  if (opts.title)
    files['docProps/core.xml'] =
      `<cp:coreProperties xmlns:cp="x" xmlns:dc="y"><dc:title>${opts.title}</dc:title></cp:coreProperties>`;
  if (opts.image) files['word/media/image1.png'] = PNG;
  return makeZip(files);
}

function makeXlsx(sheetName: string, rows: Array<Array<string | number>>): Buffer {
  const strings: string[] = [];
  const cols = 'ABCDEFGH';
  const sheetRows = rows
    .map((row, r) => {
      const cells = row
        .map((v, c) => {
          const ref = `${cols[c]}${r + 1}`;
          if (typeof v === 'number') return `<c r="${ref}"><v>${v}</v></c>`;
          if (c === 1) return `<c r="${ref}" t="inlineStr"><is><t>${v}</t></is></c>`;
          strings.push(v);
          return `<c r="${ref}" t="s"><v>${strings.length - 1}</v></c>`;
        })
        .join('');
      return `<row r="${r + 1}">${cells}</row>`;
    })
    .join('');
  return makeZip({
    '[Content_Types].xml': '<Types/>',
    'xl/workbook.xml': `<workbook><sheets><sheet name="${sheetName}" sheetId="1" r:id="rId1"/></sheets></workbook>`,
    'xl/sharedStrings.xml': `<sst count="${strings.length}">${strings.map((s) => `<si><t>${s}</t></si>`).join('')}</sst>`,
    'xl/worksheets/sheet1.xml': `<worksheet><sheetData>${sheetRows}</sheetData></worksheet>`,
  });
}

interface RawEntry {
  name: string;
  /** The bytes as stored in the archive. */
  data: Buffer;
  method: 0 | 8;
  /** The uncompressed size the headers declare, true or not. */
  declaredSize: number;
  crc?: number;
  flags?: number;
}

/** A zip written byte by byte, for archives no honest tool makes: lying sizes, encryption flags. */
function makeRawZip(entries: RawEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(e.flags ?? 0, 6);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(e.crc ?? 0, 14);
    local.writeUInt32LE(e.data.length, 18);
    local.writeUInt32LE(e.declaredSize, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(e.flags ?? 0, 8);
    central.writeUInt16LE(e.method, 10);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(e.crc ?? 0, 16);
    central.writeUInt32LE(e.data.length, 20);
    central.writeUInt32LE(e.declaredSize, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, e.data);
    centrals.push(central, name);
    offset += local.length + name.length + e.data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** 1 GiB of zeros as about 1 MB of deflate: 1024 flushed blocks of 1 MiB each, then an empty final block. */
function makeZipBomb(): Buffer {
  const block = zlib.deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  const parts: Buffer[] = [];
  for (let i = 0; i < 1024; i++) parts.push(block);
  parts.push(Buffer.from([0x03, 0x00]));
  // The CRC is never reached: the declared size alone refuses the member.
  return makeRawZip([{ name: 'records.csv', data: Buffer.concat(parts), method: 8, declaredSize: 1 << 30 }]);
}

interface PdfSpec {
  encrypt?: boolean;
  /** A filled-in text form field. */
  field?: string;
  /** A file embedded in the PDF. */
  embed?: { name: string; data: string };
  /** Page content given as a Flate stream instead of the text lines. */
  flate?: Buffer;
}

function makePdf(lines: string[], opts: PdfSpec = {}): Buffer {
  const esc = (s: string) => s.replace(/[\\()]/g, (c) => `\\${c}`);
  const content = lines.length
    ? `BT /F1 12 Tf 72 720 Td 14 TL ${lines.map((l) => `(${esc(l)}) Tj T*`).join(' ')} ET`
    : '';
  const stream = opts.flate
    ? `<< /Length ${opts.flate.length} /Filter /FlateDecode >>\nstream\n${opts.flate.toString('latin1')}\nendstream`
    : `<< /Length ${content.length} >>\nstream\n${content}\nendstream`;
  const catalog = [
    opts.field ? ' /AcroForm << /Fields [6 0 R] >>' : '',
    opts.embed ? ' /Names << /EmbeddedFiles << /Names [(file) 7 0 R] >> >>' : '',
  ].join('');
  const objs = [
    `<< /Type /Catalog /Pages 2 0 R${catalog} >>`,
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >>${opts.field ? ' /Annots [6 0 R]' : ''} >>`,
    stream,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    opts.field
      ? `<< /Type /Annot /Subtype /Widget /FT /Tx /T (patient) /V (${esc(opts.field)}) /Rect [72 600 300 620] /P 3 0 R >>`
      : '<< >>',
  ];
  if (opts.embed) {
    objs.push(
      `<< /Type /Filespec /F (${esc(opts.embed.name)}) /UF (${esc(opts.embed.name)}) /EF << /F 8 0 R >> >>`,
    );
    objs.push(
      `<< /Type /EmbeddedFile /Length ${opts.embed.data.length} >>\nstream\n${opts.embed.data}\nendstream`,
    );
  }
  if (opts.encrypt)
    objs.push(`<< /Filter /Standard /V 1 /R 2 /O <${'00'.repeat(32)}> /U <${'00'.repeat(32)}> /P -4 >>`);
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objs.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`;
  const encrypt = opts.encrypt
    ? ` /Encrypt ${objs.length} 0 R /ID [<${'ab'.repeat(16)}> <${'ab'.repeat(16)}>]`
    : '';
  out += `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R${encrypt} >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

/** Page content of `megabytes` MB of text operators, deflated to a small fraction of that. */
function makeFlateContent(megabytes: number): Buffer {
  return zlib.deflateSync(Buffer.alloc(megabytes * 1024 * 1024, 'BT /F1 12 Tf (Jane) Tj ET '), { level: 9 });
}

// TNEF (MS-OXTNEF): attributes of level, id, type, length, data and checksum; MAPI properties inside attMsgProps.

function tnefAttribute(level: 1 | 2, id: number, type: number, data: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head[0] = level;
  head.writeUInt32LE(((type << 16) | id) >>> 0, 1);
  head.writeUInt32LE(data.length, 5);
  const sum = Buffer.alloc(2);
  sum.writeUInt16LE(data.reduce((a, b) => (a + b) & 0xffff, 0));
  return Buffer.concat([head, data, sum]);
}

function mapiProperties(props: Array<{ type: number; id: number; value: Buffer }>): Buffer {
  const out: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32LE(props.length);
  out.push(count);
  for (const p of props) {
    const head = Buffer.alloc(12);
    head.writeUInt16LE(p.type, 0);
    head.writeUInt16LE(p.id, 2);
    head.writeUInt32LE(1, 4);
    head.writeUInt32LE(p.value.length, 8);
    out.push(head, p.value, Buffer.alloc((4 - (p.value.length % 4)) % 4));
  }
  return Buffer.concat(out);
}

const utf16 = (s: string) => Buffer.from(`${s}\u0000`, 'utf16le');
const ansi = (s: string) => Buffer.from(`${s}\u0000`, 'latin1');

/** Compressed RTF (LZFu) made of literals only, closed by the end-of-stream reference. */
function makeCompressedRtf(rtf: string): Buffer {
  const raw = Buffer.from(rtf, 'latin1');
  const body: number[] = [];
  let i = 0;
  for (;;) {
    const literals = [...raw.subarray(i, i + 8)];
    i += literals.length;
    const done = literals.length < 8;
    // The end marker is a reference to the current write position (207 bytes of preset dictionary, then the text).
    const end = ((207 + raw.length) % 4096) << 4;
    body.push(done ? 1 << literals.length : 0, ...literals);
    if (done) {
      body.push(end >> 8, end & 0xff);
      break;
    }
  }
  const header = Buffer.alloc(16);
  header.writeUInt32LE(body.length + 12, 0);
  header.writeUInt32LE(raw.length, 4);
  header.writeUInt32LE(0x75465a4c, 8);
  return Buffer.concat([header, Buffer.from(body)]);
}

function makeTnef(spec: {
  subject?: string;
  body?: string;
  rtf?: string;
  attachments?: Array<{ name: string; data: Buffer }>;
}): Buffer {
  const parts: Buffer[] = [];
  const sig = Buffer.alloc(6);
  sig.writeUInt32LE(0x223e9f78, 0);
  sig.writeUInt16LE(0x0001, 4);
  parts.push(sig);
  if (spec.subject) parts.push(tnefAttribute(1, 0x8004, 0x0001, ansi(spec.subject)));
  const props = [];
  if (spec.body) props.push({ type: 0x001f, id: 0x1000, value: utf16(spec.body) });
  if (spec.rtf) props.push({ type: 0x0102, id: 0x1009, value: makeCompressedRtf(spec.rtf) });
  if (props.length) parts.push(tnefAttribute(1, 0x9003, 0x0006, mapiProperties(props)));
  for (const a of spec.attachments ?? []) {
    parts.push(tnefAttribute(2, 0x9002, 0x0006, Buffer.alloc(14)));
    parts.push(tnefAttribute(2, 0x8010, 0x0001, ansi(a.name.slice(0, 8))));
    parts.push(tnefAttribute(2, 0x800f, 0x0006, a.data));
    parts.push(
      tnefAttribute(2, 0x9005, 0x0006, mapiProperties([{ type: 0x001f, id: 0x3707, value: utf16(a.name) }])),
    );
  }
  return Buffer.concat(parts);
}

/** A compound file (the container of legacy Office files and of password-protected DOCX/XLSX). */
function makeCompoundFile(encrypted: boolean): Buffer {
  const header = Buffer.from('d0cf11e0a1b11ae1', 'hex');
  const body = Buffer.alloc(1024);
  if (encrypted) body.write('EncryptedPackage', 100, 'utf16le');
  else body.write('WordDocument', 100, 'utf16le');
  return Buffer.concat([header, body]);
}

function makeHl7(): string {
  return (
    [
      'MSH|^~\\&|ADT|GENHOSP|RCV|CLINIC|20240501083000||ADT^A01|MSG00001|P|2.5.1',
      'PID|1||4455667^^^GENHOSP^MR||DOE^JANE||19610412|F',
      'PV1|1|I|4W^412^1',
    ].join('\r') + '\r'
  );
}

function makeInnerMessage(spec: MailSpec): string {
  return makeMime(spec);
}

// ---- tests -----------------------------------------------------------------------------------------------

describe('gateway/extract', () => {
  describe('the message itself', () => {
    it('gives the subject, the text body and the HTML body as text', async () => {
      const r = await extract({
        subject: 'Lab results for J. Doe',
        text: 'Plain body text',
        html: '<p>HTML <b>body</b> &amp; more</p>',
      });
      expect(r.parts.find((p) => p.id === 'subject')).to.deep.equal({
        id: 'subject',
        text: 'Lab results for J. Doe',
        kind: 'subject',
      });
      expect(textOf(r, 'text')).to.equal('Plain body text');
      expect(textOf(r, 'html')).to.equal('HTML body & more');
      expect(r.parts.find((p) => p.id === 'html')!.kind).to.equal('body');
      expect(r.flags).to.deep.equal([]);
    });

    it('keeps long lines of an HTML body whole (no word wrap), so an HL7 segment stays one line', async () => {
      const segment = `PID|1||4455667^^^GENHOSP^MR||DOE^JANE||19610412|F|||${'12 ELM ST^^SPRINGFIELD^IL^62701'.repeat(4)}`;
      const r = await extract({ html: `<pre>${segment}</pre>` });
      expect(textOf(r, 'html').split('\n')).to.include(segment);
    });

    it('reads image alt text but not image sources, and keeps table cells apart', async () => {
      const r = await extract({
        html: `<img src="data:image/png;base64,${'A'.repeat(5000)}" alt="X-ray of Jane"><table><tr><td>Jane Doe</td><td>1961-04-12</td></tr></table>`,
      });
      const text = textOf(r, 'html');
      expect(text).to.include('X-ray of Jane');
      expect(text).not.to.include('AAAA');
      expect(text).to.match(/Jane Doe\s+1961-04-12/);
    });

    it('falls back to stripping tags when HTML nests too deep for the converter', async () => {
      const html = `${'<div>'.repeat(100_000)}Patient Jane Doe${'</div>'.repeat(100_000)}`;
      const r = await extract({ html });
      expect(textOf(r, 'html')).to.include('Patient Jane Doe');
    });
  });

  describe('text-like attachments', () => {
    const rows: Array<{ name: string; filename?: string; contentType: string; content: string }> = [
      {
        name: 'plain text',
        filename: 'notes.txt',
        contentType: 'text/plain',
        content: 'Patient Jane Doe, DOB 04/12/1961',
      },
      {
        name: 'CSV',
        filename: 'export.csv',
        contentType: 'text/csv',
        content: 'name,dob\nJane Doe,1961-04-12\n',
      },
      {
        name: 'JSON',
        filename: 'patient.json',
        contentType: 'application/json',
        content: '{"resourceType":"Patient","birthDate":"1961-04-12"}',
      },
      {
        name: 'XML',
        filename: 'ccd.xml',
        contentType: 'application/xml',
        content: '<ClinicalDocument xmlns="urn:hl7-org:v3"/>',
      },
      {
        name: 'calendar',
        filename: 'invite.ics',
        contentType: 'text/calendar',
        content: 'BEGIN:VCALENDAR\r\nSUMMARY:Jane Doe - colonoscopy\r\nEND:VCALENDAR\r\n',
      },
      {
        name: 'vCard',
        filename: 'jane.vcf',
        contentType: 'text/vcard',
        content: 'BEGIN:VCARD\r\nFN:Jane Doe\r\nEND:VCARD\r\n',
      },
      {
        name: 'text sent as octet-stream',
        filename: 'feed',
        contentType: 'application/octet-stream',
        content: makeHl7(),
      },
      {
        name: 'HL7 by extension',
        filename: 'adt.hl7',
        contentType: 'application/octet-stream',
        content: makeHl7(),
      },
    ];
    for (const row of rows) {
      it(`reads ${row.name}`, async () => {
        const r = await extract({
          text: 'see attached',
          attachments: [{ filename: row.filename, contentType: row.contentType, content: row.content }],
        });
        expect(textOf(r, 'attachment:1')).to.equal(row.content);
        expect(r.parts.find((p) => p.id === 'attachment:1')!.kind).to.equal('attachment');
        expect(r.flags).to.deep.equal([]);
      });
    }

    it('reads an HTML attachment as text', async () => {
      const r = await extract({
        attachments: [
          {
            filename: 'letter.html',
            contentType: 'text/html',
            content: '<h1>Referral</h1><p>Jane Doe &lt;MRN 4455667&gt;</p>',
          },
        ],
      });
      expect(textOf(r, 'attachment:1')).to.include('Jane Doe <MRN 4455667>');
      expect(textOf(r, 'attachment:1')).not.to.include('<p>');
    });

    it('decodes the declared charset', async () => {
      const latin1 = Buffer.from('Patientin: Zoë Müller', 'latin1');
      const raw = makeMime({
        attachments: [{ filename: 'n.txt', contentType: 'text/plain; charset=iso-8859-1', content: latin1 }],
      });
      const r = await extractParts(await simpleParser(raw));
      expect(textOf(r, 'attachment:1')).to.equal('Patientin: Zoë Müller');
    });

    it('reads an RTF attachment as text', async () => {
      const rtf =
        "{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}{\\colortbl;\\red255\\green0\\blue0;}\\f0 Patient: Jane Doe\\par DOB 04/12/1961\\par Caf\\'e9 \\u8364?}";
      const r = await extract({
        attachments: [{ filename: 'letter.rtf', contentType: 'application/rtf', content: rtf }],
      });
      expect(textOf(r, 'attachment:1')).to.equal('Patient: Jane Doe\nDOB 04/12/1961\nCafé €');
    });
  });

  describe('file names', () => {
    it('never puts a file name in a part id or a flag, but scans it as its own part', async () => {
      const name = 'Jane Doe MRN 4455667 results.pdf';
      const r = await extract({
        attachments: [
          { filename: name, contentType: 'application/pdf', content: makePdf(['Result: normal']) },
          { filename: 'Jane Doe.png', contentType: 'image/png', content: PNG },
          {
            filename: 'Jane Doe records.zip',
            contentType: 'application/zip',
            content: makeZip({ 'Jane Doe/chart.txt': 'chart', 'Jane Doe/xray.png': PNG }),
          },
        ],
      });
      for (const id of [...r.parts.map((p) => p.id), ...r.flags.map((f) => f.part)])
        expect(id).not.to.match(/Jane|Doe|4455667|\.pdf|\.png|chart/);
      expect(textOf(r, 'attachment:1:name')).to.equal(name);
      expect(textOf(r, 'attachment:2:name')).to.equal('Jane Doe.png');
      expect(textOf(r, 'attachment:3/1:name')).to.equal('Jane Doe/chart.txt');
      expect(r.parts.find((p) => p.id === 'attachment:1:name')!.kind).to.equal('attachment');
    });
  });

  describe('images', () => {
    it('flags an image attachment and gives no text for it', async () => {
      const r = await extract({
        text: 'photo attached',
        attachments: [{ filename: 'wound.png', contentType: 'image/png', content: PNG }],
      });
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'image', reason: 'image' }]);
      expect(r.parts.map((p) => p.id)).to.deep.equal(['subject', 'text', 'attachment:1:name']);
    });

    it('knows an image by its bytes whatever its declared type', async () => {
      const r = await extract({
        attachments: [
          {
            filename: 'scan.dat',
            contentType: 'application/octet-stream',
            content: Buffer.concat([Buffer.from('ffd8ffe0', 'hex'), Buffer.alloc(64)]),
          },
        ],
      });
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'image', reason: 'image' }]);
    });
  });

  describe('PDF', () => {
    it('reads the text of a PDF', async () => {
      const r = await extract({
        attachments: [
          {
            filename: 'r.pdf',
            contentType: 'application/pdf',
            content: makePdf(['Patient: Jane Doe', 'DOB 04/12/1961 (MRN 4455667)']),
          },
        ],
      });
      expect(textOf(r, 'attachment:1')).to.match(/Patient: Jane Doe\s+DOB 04\/12\/1961 \(MRN 4455667\)/);
      expect(r.flags).to.deep.equal([]);
    });

    it('reads filled-in form fields of a PDF', async () => {
      const r = await extract({
        attachments: [
          {
            filename: 'intake.pdf',
            contentType: 'application/pdf',
            content: makePdf(['Intake form, page 1 of 1, please print clearly'], { field: 'Jane Q Doe' }),
          },
        ],
      });
      expect(textOf(r, 'attachment:1')).to.include('Jane Q Doe');
    });

    it('flags an encrypted PDF (/Encrypt in the trailer)', async () => {
      const r = await extract({
        attachments: [
          {
            filename: 'r.pdf',
            contentType: 'application/pdf',
            content: makePdf(['secret'], { encrypt: true }),
          },
        ],
      });
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'unreadable', reason: 'encrypted-pdf' }]);
      expect(r.parts.some((p) => p.id === 'attachment:1')).to.equal(false);
    });

    it('flags a corrupt PDF', async () => {
      const r = await extract({
        attachments: [
          {
            filename: 'r.pdf',
            contentType: 'application/pdf',
            content: Buffer.from('%PDF-1.7\n1 0 obj << garbage'),
          },
        ],
      });
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'unreadable', reason: 'corrupt' }]);
    });

    it('reads files embedded in a PDF as its members', async () => {
      const pdf = makePdf(['Cover letter'], {
        embed: { name: 'labs.csv', data: 'name,glucose\nJane Doe,182' },
      });
      const r = await extract({
        attachments: [{ filename: 'r.pdf', contentType: 'application/pdf', content: pdf }],
      });
      expect(textOf(r, 'attachment:1/1')).to.equal('name,glucose\nJane Doe,182');
      expect(textOf(r, 'attachment:1/1:name')).to.equal('labs.csv');
    });

    it('refuses a PDF whose streams inflate past the budget, before PDF.js reads them', async () => {
      const pdf = makePdf([], { flate: makeFlateContent(64) });
      expect(pdf.length).to.be.below(1024 * 1024);
      const started = Date.now();
      const r = await extract(
        { attachments: [{ filename: 'r.pdf', contentType: 'application/pdf', content: pdf }] },
        { maxDecompressedBytes: 8 * 1024 * 1024 },
      );
      expect(Date.now() - started).to.be.below(5000);
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'unreadable', reason: 'too-large' }]);
    });

    it('stops reading a slow PDF when the caller aborts', async () => {
      // Within the budget, but minutes of PDF.js work: only the caller's abort ends it early.
      const parsed = await parse({
        attachments: [
          {
            filename: 'r.pdf',
            contentType: 'application/pdf',
            content: makePdf([], { flate: makeFlateContent(48) }),
          },
        ],
      });
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error('scan timed out')), 300);
      const started = Date.now();
      let error: unknown;
      try {
        await extractParts(parsed, {}, controller.signal);
      } catch (err) {
        error = err;
      } finally {
        clearTimeout(timer);
      }
      expect((error as Error | undefined)?.message).to.equal('scan timed out');
      expect(Date.now() - started).to.be.below(5000);
    });

    it('flags a PDF page without text as a likely scan, unreadable (a scan or fax may be a record: fail closed)', async () => {
      const r = await extract({
        attachments: [{ filename: 'fax.pdf', contentType: 'application/pdf', content: makePdf([]) }],
      });
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'unreadable', reason: 'scanned-pdf' }]);
    });
  });

  describe('DOCX and XLSX', () => {
    it('reads paragraphs, headers and the title of a DOCX, and flags its pictures', async () => {
      const docx = makeDocx(['Referral for Jane Doe', 'DOB 04/12/1961 & allergies'], {
        header: 'Springfield Clinic',
        title: 'Referral J. Doe',
        image: true,
      });
      const r = await extract({
        attachments: [
          {
            filename: 'referral.docx',
            contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
            content: docx,
          },
        ],
      });
      const text = textOf(r, 'attachment:1');
      expect(text).to.include('Referral for Jane Doe\nDOB 04/12/1961 & allergies');
      expect(text).to.include('Springfield Clinic');
      expect(text).to.include('Referral J. Doe');
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'image', reason: 'embedded-images' }]);
    });

    it('reads the cells of an XLSX (shared strings, inline strings, numbers) and its sheet names', async () => {
      const xlsx = makeXlsx('Doe household', [
        ['Name', 'MRN', 'Born'],
        ['Jane Doe', '4455667', 19610412],
      ]);
      const r = await extract({
        attachments: [{ filename: 'list.xlsx', contentType: 'application/octet-stream', content: xlsx }],
      });
      const text = textOf(r, 'attachment:1');
      expect(text).to.include('Doe household');
      expect(text).to.include('Name\tMRN\tBorn\nJane Doe\t4455667\t19610412');
    });

    it('flags a password-protected Office file and does not call a legacy one readable', async () => {
      const r = await extract({
        attachments: [
          {
            filename: 'locked.xlsx',
            contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
            content: makeCompoundFile(true),
          },
          { filename: 'old.doc', contentType: 'application/msword', content: makeCompoundFile(false) },
        ],
      });
      expect(r.flags).to.deep.equal([
        { part: 'attachment:1', kind: 'unreadable', reason: 'encrypted-office' },
        { part: 'attachment:2', kind: 'unreadable', reason: 'unsupported' },
      ]);
    });
  });

  describe('zip archives', () => {
    it('reads the members of a zip, numbered, with their names as their own parts', async () => {
      const zip = makeZip({ 'a.txt': 'first member', 'dir/b.csv': 'x,y\n1,2', 'c.png': PNG });
      const r = await extract({
        attachments: [{ filename: 'bundle.zip', contentType: 'application/zip', content: zip }],
      });
      expect(textOf(r, 'attachment:1/1')).to.equal('first member');
      expect(textOf(r, 'attachment:1/2')).to.equal('x,y\n1,2');
      expect(textOf(r, 'attachment:1/2:name')).to.equal('dir/b.csv');
      expect(r.flags).to.deep.equal([{ part: 'attachment:1/3', kind: 'image', reason: 'image' }]);
    });

    it('opens nested zips up to the depth limit and flags the one beyond it', async () => {
      let inner = makeZip({ 'deepest.txt': 'level four text' });
      for (let level = 3; level >= 1; level--)
        inner = makeZip({ [`level${level}.zip`]: inner, [`note${level}.txt`]: `level ${level} text` });
      const r = await extract({
        attachments: [{ filename: 'nest.zip', contentType: 'application/zip', content: inner }],
      });
      expect(textOf(r, 'attachment:1/2')).to.equal('level 1 text');
      expect(textOf(r, 'attachment:1/1/2')).to.equal('level 2 text');
      expect(textOf(r, 'attachment:1/1/1/2')).to.equal('level 3 text');
      expect(r.parts.some((p) => p.text === 'level four text')).to.equal(false);
      expect(r.flags).to.deep.equal([{ part: 'attachment:1/1/1/1', kind: 'unreadable', reason: 'too-deep' }]);
    });

    it('refuses a zip bomb by its declared size, fast, without inflating it', async () => {
      const bomb = makeZipBomb();
      expect(bomb.length).to.be.below(2 * 1024 * 1024);
      const started = Date.now();
      const r = await extract({
        attachments: [{ filename: 'records.zip', contentType: 'application/zip', content: bomb }],
      });
      expect(Date.now() - started).to.be.below(5000);
      expect(r.flags).to.deep.equal([{ part: 'attachment:1/1', kind: 'unreadable', reason: 'too-large' }]);
      expect(r.parts.some((p) => p.id === 'attachment:1/1')).to.equal(false);
    });

    it('stops a member that inflates past the size it declared', async () => {
      const data = zlib.deflateRawSync(Buffer.alloc(4 * 1024 * 1024, 'a'));
      const zip = makeRawZip([{ name: 'small.txt', data, method: 8, declaredSize: 1000 }]);
      const r = await extract({
        attachments: [{ filename: 'x.zip', contentType: 'application/zip', content: zip }],
      });
      expect(r.flags).to.deep.equal([{ part: 'attachment:1/1', kind: 'unreadable', reason: 'corrupt' }]);
      expect(r.parts.some((p) => p.id === 'attachment:1/1')).to.equal(false);
    });

    it('counts decompressed bytes across the whole message', async () => {
      const member = 'x'.repeat(60_000);
      const zip = makeZip({ '1.txt': member, '2.txt': member, '3.txt': member });
      const r = await extract(
        { attachments: [{ filename: 'a.zip', contentType: 'application/zip', content: zip }] },
        { maxDecompressedBytes: 100_000 },
      );
      expect(textOf(r, 'attachment:1/1')).to.have.length(60_000);
      expect(r.flags).to.deep.equal([
        { part: 'attachment:1/2', kind: 'unreadable', reason: 'too-large' },
        { part: 'attachment:1/3', kind: 'unreadable', reason: 'too-large' },
      ]);
    });

    it('reads a bounded number of members', async () => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 12; i++) files[`${i}.txt`] = `member ${i}`;
      const r = await extract(
        { attachments: [{ filename: 'many.zip', contentType: 'application/zip', content: makeZip(files) }] },
        { maxMembers: 5 },
      );
      expect(r.parts.filter((p) => /^attachment:1\/\d+$/.test(p.id))).to.have.length(5);
      expect(r.flags).to.deep.include({
        part: 'attachment:1',
        kind: 'unreadable',
        reason: 'too-many-members',
      });
    });

    it('flags a password-protected zip (encryption flag set)', async () => {
      const zip = makeRawZip([
        { name: 'chart.txt', data: Buffer.alloc(40, 7), method: 0, declaredSize: 28, flags: 0x0001 },
      ]);
      const r = await extract({
        attachments: [{ filename: 'locked.zip', contentType: 'application/zip', content: zip }],
      });
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'unreadable', reason: 'password-zip' }]);
    });

    it('flags a corrupt zip', async () => {
      const good = makeZip({ 'a.txt': 'hello there' });
      const r = await extract({
        attachments: [
          {
            filename: 'a.zip',
            contentType: 'application/zip',
            content: Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.alloc(200, 0x41)]),
          },
          { filename: 'b.zip', contentType: 'application/zip', content: good.subarray(0, good.length - 30) },
        ],
      });
      expect(r.flags).to.deep.equal([
        { part: 'attachment:1', kind: 'unreadable', reason: 'corrupt' },
        { part: 'attachment:2', kind: 'unreadable', reason: 'corrupt' },
      ]);
    });
  });

  describe('winmail.dat (TNEF)', () => {
    it('reads the subject, the body, the compressed RTF body and the attachments Outlook wrapped', async () => {
      const tnef = makeTnef({
        subject: 'Discharge summary',
        body: 'Jane Doe was discharged on 05/01/2024.',
        rtf: '{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\f0 Follow-up for Jane Doe\\par in two weeks}',
        attachments: [
          { name: 'summary notes.txt', data: Buffer.from('Diagnosis: E11.9') },
          { name: 'photo.jpg', data: Buffer.concat([Buffer.from('ffd8ffe0', 'hex'), Buffer.alloc(32)]) },
        ],
      });
      const r = await extract({
        text: 'see attached',
        attachments: [{ filename: 'winmail.dat', contentType: 'application/ms-tnef', content: tnef }],
      });
      expect(textOf(r, 'attachment:1/subject')).to.equal('Discharge summary');
      expect(textOf(r, 'attachment:1/text')).to.equal('Jane Doe was discharged on 05/01/2024.');
      expect(textOf(r, 'attachment:1/rtf')).to.equal('Follow-up for Jane Doe\nin two weeks');
      expect(textOf(r, 'attachment:1/1:name')).to.equal('summary notes.txt');
      expect(textOf(r, 'attachment:1/1')).to.equal('Diagnosis: E11.9');
      expect(r.flags).to.deep.equal([{ part: 'attachment:1/2', kind: 'image', reason: 'image' }]);
    });

    it('scans what it could read of a damaged winmail.dat and flags the rest', async () => {
      const tnef = makeTnef({
        subject: 'Discharge summary',
        body: 'Jane Doe was discharged.',
        attachments: [{ name: 'a.txt', data: Buffer.from('more') }],
      });
      const r = await extract({
        attachments: [
          {
            filename: 'winmail.dat',
            contentType: 'application/ms-tnef',
            content: tnef.subarray(0, tnef.length - 20),
          },
        ],
      });
      expect(textOf(r, 'attachment:1/subject')).to.equal('Discharge summary');
      expect(textOf(r, 'attachment:1/text')).to.equal('Jane Doe was discharged.');
      expect(r.flags).to.deep.include({ part: 'attachment:1', kind: 'unreadable', reason: 'corrupt' });
    });
  });

  describe('attached messages', () => {
    it('reads an attached message/rfc822: its subject, body and its own attachments', async () => {
      const inner = makeInnerMessage({
        subject: 'Fwd: labs',
        text: 'Inner body about Jane',
        attachments: [{ filename: 'labs.csv', contentType: 'text/csv', content: 'glucose,182' }],
      });
      const r = await extract({
        text: 'forwarding',
        attachments: [
          { filename: 'fwd.eml', contentType: 'message/rfc822', content: inner, encoding: '8bit' },
        ],
      });
      expect(textOf(r, 'attachment:1/subject')).to.equal('Fwd: labs');
      expect(r.parts.find((p) => p.id === 'attachment:1/subject')!.kind).to.equal('attachment');
      expect(textOf(r, 'attachment:1/text')).to.equal('Inner body about Jane');
      expect(textOf(r, 'attachment:1/1')).to.equal('glucose,182');
    });

    it('stops attached messages at the depth limit', async () => {
      let message = makeInnerMessage({ subject: 'innermost', text: 'level 3 body' });
      for (let level = 2; level >= 1; level--) {
        message = makeInnerMessage({
          subject: `level ${level}`,
          text: `level ${level} body`,
          attachments: [{ contentType: 'message/rfc822', content: message, encoding: '8bit' }],
        });
      }
      const r = await extract(
        { attachments: [{ contentType: 'message/rfc822', content: message, encoding: '8bit' }] },
        { maxDepth: 2 },
      );
      expect(textOf(r, 'attachment:1/text')).to.equal('level 1 body');
      expect(textOf(r, 'attachment:1/1/text')).to.equal('level 2 body');
      expect(r.parts.some((p) => p.text === 'level 3 body')).to.equal(false);
      expect(r.flags).to.deep.equal([{ part: 'attachment:1/1/1', kind: 'unreadable', reason: 'too-deep' }]);
    });
  });

  describe('what cannot be read', () => {
    it('flags an unknown binary type, and encrypted mail content, but not a signature', async () => {
      const r = await extract({
        attachments: [
          {
            filename: 'a.bin',
            contentType: 'application/octet-stream',
            content: Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0, 0, 9, 200, 0, 17]),
          },
          {
            filename: 'dictation.m4a',
            contentType: 'audio/mp4',
            content: Buffer.concat([
              Buffer.from('0000001c66747970', 'hex'),
              Buffer.from('M4A '),
              Buffer.alloc(40),
            ]),
          },
          {
            filename: 'smime.p7m',
            contentType: 'application/pkcs7-mime',
            content: Buffer.from([0x30, 0x82, 0x01, 0x00, 0x06]),
          },
          {
            filename: 'smime.p7s',
            contentType: 'application/pkcs7-signature',
            content: Buffer.from([0x30, 0x82, 0x01, 0x00, 0x06]),
          },
        ],
      });
      expect(r.flags).to.deep.equal([
        { part: 'attachment:1', kind: 'unreadable', reason: 'unsupported' },
        { part: 'attachment:2', kind: 'unreadable', reason: 'unsupported' },
        { part: 'attachment:3', kind: 'unreadable', reason: 'encrypted' },
      ]);
    });

    it('flags an attachment over the size limit without parsing it', async () => {
      const r = await extract(
        { attachments: [{ filename: 'big.txt', contentType: 'text/plain', content: 'x'.repeat(50_000) }] },
        { maxAttachmentBytes: 10_000 },
      );
      expect(r.flags).to.deep.equal([{ part: 'attachment:1', kind: 'unreadable', reason: 'too-large' }]);
      expect(r.parts.some((p) => p.id === 'attachment:1')).to.equal(false);
    });

    it('cuts text past the message budget and flags the part that was cut', async () => {
      const r = await extract(
        {
          text: 'a'.repeat(600),
          attachments: [{ filename: 'n.txt', contentType: 'text/plain', content: 'b'.repeat(600) }],
        },
        { maxTotalText: 1000 },
      );
      const total = r.parts.reduce((n, p) => n + p.text.length, 0);
      expect(total).to.be.at.most(1000);
      expect(r.flags).to.deep.include({ part: 'attachment:1', kind: 'unreadable', reason: 'too-large' });
    });
  });

  describe('damaged files', () => {
    /** A small deterministic generator: the same damage on every run. */
    function makeRandom(seed: number): () => number {
      let x = seed;
      return () => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>> 0) / 0x100000000;
      };
    }

    const samples: Array<{ name: string; filename: string; contentType: string; content: Buffer }> = [
      {
        name: 'winmail.dat',
        filename: 'winmail.dat',
        contentType: 'application/ms-tnef',
        content: makeTnef({
          subject: 'S',
          body: 'body text',
          rtf: '{\\rtf1 hello\\par}',
          attachments: [{ name: 'a.txt', data: Buffer.from('member') }],
        }),
      },
      {
        name: 'DOCX',
        filename: 'a.docx',
        contentType: 'application/octet-stream',
        content: makeDocx(['one', 'two'], { header: 'h', title: 't' }),
      },
      {
        name: 'XLSX',
        filename: 'a.xlsx',
        contentType: 'application/octet-stream',
        content: makeXlsx('s', [['a', 'b', 1]]),
      },
      {
        name: 'zip',
        filename: 'a.zip',
        contentType: 'application/zip',
        content: makeZip({ 'a.txt': 'x'.repeat(300), 'b/c.txt': 'y' }),
      },
    ];
    for (const sample of samples) {
      it(`never throws on a truncated or bit-flipped ${sample.name}, and never loses the message's own text`, async () => {
        const random = makeRandom(sample.content.length);
        for (let round = 0; round < 40; round++) {
          const damaged = Buffer.from(
            sample.content.subarray(0, 4 + Math.floor(random() * sample.content.length)),
          );
          for (let flips = 0; flips < 3; flips++) {
            const at = Math.floor(random() * damaged.length);
            damaged[at] = damaged[at]! ^ (1 << Math.floor(random() * 8));
          }
          const r = await extract({
            text: 'body',
            attachments: [{ filename: sample.filename, contentType: sample.contentType, content: damaged }],
          });
          expect(textOf(r, 'text')).to.equal('body');
          for (const f of r.flags) expect(f.part).to.match(/^attachment:1(\/\d+)*$/);
          // Fail closed: whatever is left is either read as text or flagged, never silently dropped.
          const read = r.parts.some((p) => p.id.startsWith('attachment:1') && !p.id.endsWith(':name'));
          expect(read || r.flags.length > 0, `round ${round}`).to.equal(true);
        }
      });
    }
  });

  describe('with the payload recognizers', () => {
    const compiled = compileRecognizers(payloadRecognizers);

    it('finds an HL7 message inside a DOCX inside a zip, in the member it came from', async () => {
      const zip = makeZip({ 'referral.docx': makeDocx(makeHl7().split('\r').filter(Boolean)) });
      const r = await extract({
        text: 'files attached',
        attachments: [{ filename: 'files.zip', contentType: 'application/zip', content: zip }],
      });
      const findings = r.parts.flatMap((p) => analyzePart(compiled, p));
      expect(findings.map((f) => [f.type, f.part])).to.deep.equal([['HL7_V2', 'attachment:1/1']]);
    });
  });
});
