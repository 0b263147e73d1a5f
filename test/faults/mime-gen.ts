// A seeded generator of random MIME trees for property tests (no fast-check here): a text body and
// attachments in nested multiparts, with every transfer encoding. It returns the oracle with the bytes.
import { prng } from './support.js';

export interface GeneratedMail {
  raw: Buffer;
  /** What the recipient must see: the body text and every attachment, byte for byte. */
  text: string;
  attachments: Array<{ filename: string; contentType: string; content: Buffer }>;
}

const WORDS = [
  'schedule',
  'the',
  'meeting',
  'notes',
  'are',
  'attached',
  'please',
  'review',
  'Grüße',
  'naïve',
  'café',
  '東京',
  'Zürich',
  'ÆØÅ',
  '🦷',
  'smile',
  'tab\there',
  '=',
  '==',
  '=3D',
  '.',
  '..',
  'From',
  '>From',
  '--',
  '--boundary',
  'a=b',
  'x;y',
  '"quoted"',
  '\\back',
  'über',
  'ñandú',
  'Ω',
  '€',
];
const TYPES = ['application/octet-stream', 'application/x-custom', 'text/csv', 'application/json'];

export class MimeGen {
  private readonly rnd: () => number;
  private n = 0;

  constructor(seed: number) {
    this.rnd = prng(seed);
  }

  private int(max: number): number {
    return Math.floor(this.rnd() * max);
  }

  private pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }

  /** Text lines of random words; some start with a dot or "From ", some are long, some end in spaces. */
  private text(): string {
    const lines: string[] = [];
    const count = 1 + this.int(30);
    for (let i = 0; i < count; i++) {
      const words: string[] = [];
      const len = this.rnd() < 0.05 ? 200 + this.int(200) : this.int(14);
      for (let w = 0; w < len; w++) words.push(this.pick(WORDS));
      let line = words.join(' ');
      if (this.rnd() < 0.1) line = '.' + line;
      if (this.rnd() < 0.05) line = 'From ' + line;
      lines.push(line);
    }
    return lines.join('\n');
  }

  private bytes(): Buffer {
    const b = Buffer.alloc(this.int(6000));
    for (let i = 0; i < b.length; i++) b[i] = this.int(256);
    return b;
  }

  private qp(text: string): string {
    return text
      .split('\n')
      .map((line) => {
        const bytes = Buffer.from(line, 'utf8');
        let out = '';
        let col = 0;
        for (let i = 0; i < bytes.length; i++) {
          const c = bytes[i]!;
          const last = i === bytes.length - 1;
          const plain = (c >= 33 && c <= 126 && c !== 61) || (c === 32 && !last);
          const piece = plain ? String.fromCharCode(c) : `=${c.toString(16).toUpperCase().padStart(2, '0')}`;
          if (col + piece.length > 73) {
            out += '=\r\n';
            col = 0;
          }
          out += piece;
          col += piece.length;
        }
        return out;
      })
      .join('\r\n');
  }

  private b64(buf: Buffer): string {
    return buf.toString('base64').replace(/.{76}/g, '$&\r\n');
  }

  /** Encodes the body text with a random transfer encoding that can carry it. */
  private textPart(text: string): string {
    const ascii = /^[\x20-\x7e\t\n]*$/.test(text);
    const longLine = text.split('\n').some((l) => Buffer.byteLength(l) > 900);
    const choices = ['quoted-printable', 'base64', ...(longLine ? [] : ascii ? ['7bit'] : ['8bit'])];
    const cte = this.pick(choices);
    const body =
      cte === 'base64'
        ? this.b64(Buffer.from(text.replace(/\n/g, '\r\n'), 'utf8'))
        : cte === 'quoted-printable'
          ? this.qp(text)
          : text.replace(/\n/g, '\r\n');
    return `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n${body}\r\n`;
  }

  private attachmentPart(a: { filename: string; contentType: string; content: Buffer }): string {
    const name = /^[\x20-\x7e]+$/.test(a.filename)
      ? `"${a.filename}"`
      : `"=?UTF-8?B?${Buffer.from(a.filename).toString('base64')}?="`;
    return (
      `Content-Type: ${a.contentType}; name=${name}\r\nContent-Disposition: attachment; filename=${name}\r\n` +
      `Content-Transfer-Encoding: base64\r\n\r\n${this.b64(a.content)}\r\n`
    );
  }

  private multipart(children: string[], depth: number): string {
    const boundary = `=_b${depth}_${this.n}_${this.int(1e9).toString(36)}`;
    const preamble = this.rnd() < 0.3 ? 'This is a multi-part message in MIME format.\r\n' : '';
    const epilogue = this.rnd() < 0.3 ? 'epilogue text\r\n' : '';
    return (
      `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n${preamble}` +
      children.map((c) => `--${boundary}\r\n${c}`).join('\r\n') +
      `\r\n--${boundary}--\r\n${epilogue}`
    );
  }

  /** One message: the text first (depth-first), attachments spread over nested multiparts. */
  next(headers: string[]): GeneratedMail {
    this.n++;
    const text = this.text();
    const attachments = Array.from({ length: this.int(4) }, (_, i) => ({
      filename: this.rnd() < 0.3 ? `résumé-${i}-東京.bin` : `file-${this.n}-${i}.dat`,
      contentType: this.pick(TYPES),
      content: this.bytes(),
    }));
    let entity: string;
    if (attachments.length === 0 && this.rnd() < 0.5) entity = this.textPart(text);
    else {
      const parts = attachments.map((a) => this.attachmentPart(a));
      // Maybe nest some attachments one or two levels deeper.
      let nested = parts;
      for (let depth = 1; depth <= 2 && nested.length > 1 && this.rnd() < 0.5; depth++) {
        const cut = 1 + this.int(nested.length - 1);
        nested = [...nested.slice(0, cut), this.multipart(nested.slice(cut), depth)];
      }
      entity = this.multipart([this.textPart(text), ...nested], 0);
    }
    const raw = Buffer.from(`${headers.join('\r\n')}\r\nMIME-Version: 1.0\r\n${entity}`, 'utf8');
    return { raw, text, attachments };
  }
}
