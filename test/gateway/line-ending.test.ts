// The intake refuses DATA holding a bare CR or bare LF, which is what SMTP smuggling needs: a next hop
// that ends DATA on `\n.\n` would otherwise see a second, forged message inside ours. The checker sees
// DATA as the socket delivers it, so every case is also tried split across chunk boundaries.
import { expect } from 'chai';
import { LineEndingChecker } from '../../gateway/intake.js';
import { randomFrom } from '../support/random.js';

/** Feeds chunks the way the intake does (stops at the first refusal), then checks the end of data. */
function accepts(chunks: readonly string[]): boolean {
  const checker = new LineEndingChecker();
  for (const chunk of chunks) if (!checker.check(Buffer.from(chunk, 'latin1'))) return false;
  return checker.finish();
}

/** Every way of cutting `data` into two chunks, including an empty first or last chunk. */
function twoChunkSplits(data: string): string[][] {
  return Array.from({ length: data.length + 1 }, (_, i) => [data.slice(0, i), data.slice(i)]);
}

function oneByteChunks(data: string): string[] {
  return [...data];
}

const show = (chunks: readonly string[]) => chunks.map((c) => JSON.stringify(c)).join(' | ');

const MESSAGE =
  'From: a@clinic.example\r\nTo: b@lab.example\r\nSubject: results\r\n\r\nLine one\r\nLine two\r\n';

describe('gateway/intake LineEndingChecker', () => {
  const cases: { name: string; chunks: string[]; ok: boolean }[] = [
    // Accepted
    { name: 'no data at all', chunks: [], ok: true },
    { name: 'an empty chunk', chunks: [''], ok: true },
    { name: 'text without line endings', chunks: ['abc'], ok: true },
    { name: 'a CRLF-only message in one chunk', chunks: [MESSAGE], ok: true },
    { name: 'only CRLF', chunks: ['\r\n'], ok: true },
    { name: 'blank CRLF lines', chunks: ['\r\n\r\n\r\n'], ok: true },
    { name: 'a dot line written correctly', chunks: ['a\r\n..\r\nb\r\n'], ok: true },
    { name: 'CR ending one chunk, LF starting the next', chunks: ['a\r', '\nb\r\n'], ok: true },
    { name: 'CR ending one chunk, a chunk that is just LF', chunks: ['a\r', '\n', 'b'], ok: true },
    { name: 'CR and LF as separate one-byte chunks', chunks: ['\r', '\n'], ok: true },
    { name: 'an empty chunk between CR and LF', chunks: ['a\r', '', '\nb'], ok: true },
    { name: 'chunks that are each CRLF', chunks: ['\r\n', '\r\n', '\r\n'], ok: true },
    { name: 'a chunk after one ending in CRLF', chunks: ['a\r\n', 'b\r\n'], ok: true },
    { name: 'other control bytes', chunks: ['a\tb\x00c\x0bd\x0ce\r\n'], ok: true },
    // Refused
    { name: 'a bare LF mid-line', chunks: ['a\nb'], ok: false },
    { name: 'a bare CR mid-line', chunks: ['a\rb'], ok: false },
    { name: 'LF before CR', chunks: ['a\n\rb'], ok: false },
    { name: 'LF at the start of the data', chunks: ['\nabc'], ok: false },
    { name: 'only an LF', chunks: ['\n'], ok: false },
    { name: 'CR at the start of the data, not followed by LF', chunks: ['\rabc'], ok: false },
    { name: 'CR at the end of the data (finish)', chunks: ['abc\r'], ok: false },
    { name: 'only a CR (finish)', chunks: ['\r'], ok: false },
    { name: 'CR at the end of the last of several chunks', chunks: ['a\r\n', 'b\r'], ok: false },
    { name: 'CR at the end, then an empty chunk, then the end', chunks: ['a\r', ''], ok: false },
    { name: 'CR CR LF', chunks: ['a\r\r\nb'], ok: false },
    { name: 'CR LF LF', chunks: ['a\r\n\nb'], ok: false },
    { name: 'a bare LF at the end of the data', chunks: ['abc\n'], ok: false },
    { name: 'a bare LF late in an otherwise CRLF message', chunks: [MESSAGE + 'tail\n'], ok: false },
    { name: 'CR ending a chunk, another byte starting the next', chunks: ['a\r', 'b'], ok: false },
    { name: 'CR ending a chunk, CR starting the next', chunks: ['a\r', '\r\n'], ok: false },
    {
      name: 'CR ending a chunk, then an empty chunk, then another byte',
      chunks: ['a\r', '', 'b'],
      ok: false,
    },
    { name: 'LF starting a chunk after one not ending in CR', chunks: ['a', '\nb'], ok: false },
    { name: 'LF starting a chunk after one ending in CRLF', chunks: ['a\r\n', '\nb'], ok: false },
    { name: 'LF starting a chunk after an empty chunk', chunks: ['a', '', '\n'], ok: false },
    {
      name: 'LF starting the second chunk after a lone CR was already paired',
      chunks: ['\r', '\n', '\n'],
      ok: false,
    },
  ];
  for (const c of cases) {
    it(`${c.ok ? 'accepts' : 'refuses'} ${c.name}: ${show(c.chunks)}`, () => {
      expect(accepts(c.chunks)).to.equal(c.ok);
    });
  }

  it('accepts CRLF data cut into two chunks at every position', () => {
    const refused = twoChunkSplits(MESSAGE).filter((chunks) => !accepts(chunks));
    expect(refused.map(show)).to.deep.equal([]);
  });

  it('accepts CRLF data fed one byte at a time', () => {
    expect(accepts(oneByteChunks(MESSAGE))).to.equal(true);
  });

  // The checker reads 64 bytes at a time: line ends on each side of those blocks, in chunks of any length, against
  // a byte-by-byte reference.
  it('agrees with a byte-by-byte reference on 3,000 random texts cut into random chunks', () => {
    const reference = (data: string): boolean => {
      for (let i = 0; i < data.length; i++) {
        if (data[i] === '\n' && data[i - 1] !== '\r') return false;
        if (data[i] === '\r' && data[i + 1] !== '\n') return false;
      }
      return true;
    };
    const random = randomFrom(5);
    const pieces = ['\r\n', '\r\n', 'a', 'text of a line', '.', '\t', '\x00', '\r', '\n', 'x'.repeat(61)];
    let refused = 0;
    for (let r = 0; r < 3000; r++) {
      let data = '';
      const count = 1 + random(40);
      for (let p = 0; p < count; p++) {
        // Mostly CRLF text; now and then a bare CR or LF.
        const piece = pieces[random(pieces.length)]!;
        data += (piece === '\r' || piece === '\n') && random(4) !== 0 ? '\r\n' : piece;
      }
      const chunks: string[] = [];
      for (let at = 0; at < data.length;) {
        const size = random(4) === 0 ? random(3) : 1 + random(200);
        chunks.push(data.slice(at, at + size));
        at += size;
      }
      const expected = reference(data);
      if (!expected) refused++;
      expect(accepts(chunks), JSON.stringify(data)).to.equal(expected);
    }
    expect(refused).to.be.within(300, 2700);
  });

  describe('SMTP smuggling sequences inside otherwise-CRLF data', () => {
    const sequences = ['\n.\n', '\n.\r\n', '\r\n.\n', '\r.\r\n', '\r\n.\r', '\r.\r', '\n.\r'];
    const smuggled =
      'MAIL FROM:<attacker@evil.example>\r\nRCPT TO:<victim@lab.example>\r\nDATA\r\nforged\r\n';
    // The sequence right after a complete CRLF line, and in the middle of a line.
    const prefixes = [
      { name: 'after a CRLF', text: MESSAGE },
      { name: 'mid-line', text: `${MESSAGE}tail` },
    ];
    for (const seq of sequences) {
      for (const prefix of prefixes) {
        const data = `${prefix.text}${seq}${smuggled}`;
        const label = `${JSON.stringify(seq)} ${prefix.name}`;

        it(`refuses ${label}, in one chunk`, () => {
          expect(accepts([data])).to.equal(false);
        });

        it(`refuses ${label}, at the very end of the data`, () => {
          expect(accepts([`${prefix.text}${seq}`])).to.equal(false);
        });

        it(`refuses ${label}, however the data is cut into two chunks`, () => {
          const accepted = twoChunkSplits(data).filter((chunks) => accepts(chunks));
          expect(accepted.map(show)).to.deep.equal([]);
        });

        it(`refuses ${label}, fed one byte at a time`, () => {
          expect(accepts(oneByteChunks(data))).to.equal(false);
        });
      }
    }
  });
});
