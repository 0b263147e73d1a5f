// The reply form's multipart/form-data parser: what it accepts, and the malformed bodies it refuses.
import { expect } from 'chai';
import { MultipartError, multipartBoundary, parseMultipart } from '../../web/multipart.js';

const B = 'XyZ123';
const part = (headers: string, body: string) => `--${B}\r\n${headers}\r\n\r\n${body}\r\n`;
const limits = { maxParts: 5, maxFiles: 2 };

describe('web/multipart', () => {
  it('reads fields and files, keeping file bytes exactly', () => {
    const bin = Buffer.from([0, 13, 10, 45, 45, 255]);
    const body = Buffer.concat([
      Buffer.from(
        part('Content-Disposition: form-data; name="csrf"', 'tok') +
          part('Content-Disposition: form-data; name="text"', 'héllo\r\nthere'),
      ),
      Buffer.from(
        `--${B}\r\nContent-Disposition: form-data; name="files"; filename="a%22b.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      bin,
      Buffer.from(
        `\r\n` +
          part(
            'Content-Disposition: form-data; name="files"; filename=""\r\nContent-Type: application/octet-stream',
            '',
          ) +
          `--${B}--\r\n`,
      ),
    ]);
    const form = parseMultipart(body, B, limits);
    expect(form.fields.get('csrf')).to.equal('tok');
    expect(form.fields.get('text')).to.equal('héllo\r\nthere');
    expect(form.files).to.have.length(1);
    expect(form.files[0]!.filename).to.equal('a"b.bin');
    expect(form.files[0]!.content.equals(bin)).to.equal(true);
  });

  it('accepts a preamble before the first boundary', () => {
    const form = parseMultipart(
      Buffer.from(`ignored\r\n${part('Content-Disposition: form-data; name="a"', '1')}--${B}--`),
      B,
      limits,
    );
    expect(form.fields.get('a')).to.equal('1');
  });

  const bad = [
    { name: 'no boundary at all', body: 'hello' },
    { name: 'unterminated part', body: `--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\nno end` },
    { name: 'unterminated headers', body: `--${B}\r\nContent-Disposition: form-data; name="a"` },
    { name: 'a part without a name', body: part('Content-Disposition: form-data', 'x') + `--${B}--` },
    {
      name: 'a part that is not form-data',
      body: part('Content-Disposition: attachment; name="a"', 'x') + `--${B}--`,
    },
    { name: 'garbage after a boundary', body: `--${B}xx\r\n` },
    {
      name: 'too many files',
      body:
        [1, 2, 3]
          .map((i) => part(`Content-Disposition: form-data; name="f"; filename="${i}"`, 'x'))
          .join('') + `--${B}--`,
    },
    {
      name: 'too many parts',
      body:
        [1, 2, 3, 4, 5, 6].map((i) => part(`Content-Disposition: form-data; name="f${i}"`, 'x')).join('') +
        `--${B}--`,
    },
  ];
  for (const c of bad) {
    it(`refuses ${c.name}`, () => {
      expect(() => parseMultipart(Buffer.from(c.body), B, limits)).to.throw(MultipartError);
    });
  }

  const types: Array<[string | undefined, string | null]> = [
    ['multipart/form-data; boundary=abc', 'abc'],
    ['multipart/form-data; boundary="a b"', 'a b'],
    ['Multipart/Form-Data;boundary=x1', 'x1'],
    ['multipart/mixed; boundary=abc', null],
    ['application/json', null],
    [undefined, null],
    ['multipart/form-data', null],
  ];
  for (const [type, expected] of types) {
    it(`boundary of ${JSON.stringify(type)} is ${JSON.stringify(expected)}`, () => {
      expect(multipartBoundary(type)).to.equal(expected);
    });
  }
});
