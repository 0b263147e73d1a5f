// The names recognizer's word tokens: its tokenizer (words marked without a branch per word, read a chunk at a time; the
// list of tokens that may start a name) must find exactly the words and names that reading every character finds.
import { expect } from 'chai';
import { analyzePart, compileRecognizers } from '../../dlp/engine.js';
import { nameCharClass, nameRecognizers, nameTokens } from '../../dlp/recognizers/names.js';
import { randomFrom } from '../support/random.js';

const LETTER = /[\p{L}\p{M}]/u;

describe('dlp names tokens', () => {
  it('classes every code unit as a test of it alone does: letter or mark, changed by lower-casing, joiner', () => {
    const wrong: string[] = [];
    let upper = 0;
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      const letter = LETTER.test(ch);
      const want =
        c === 39 || c === 45 || c === 0x2019 ? 8 : letter ? 1 | (ch !== ch.toLowerCase() ? 2 : 0) : 0;
      if (nameCharClass(c) !== want) wrong.push(c.toString(16));
      if (want === 3) upper++;
    }
    expect(wrong.slice(0, 20), `${wrong.length} code units differ`).to.deep.equal([]);
    expect(upper).to.be.greaterThan(1000);
  });

  it('a code unit whose lower case is an ASCII letter is a letter, and one that lowers to other ASCII is that character', () => {
    // The cue tests and word look-ups read a word's letters from the lower-cased copy: an ASCII letter there is a
    // letter of the text, and other ASCII there is that very character.
    const wrong: string[] = [];
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      const lowered = ch.toLowerCase();
      const l = lowered.length === 1 ? lowered.charCodeAt(0) : c;
      if (l >= 0x80) continue;
      const asciiLetter = l >= 97 && l <= 122;
      if (asciiLetter ? !LETTER.test(ch) : c !== l) wrong.push(c.toString(16));
    }
    expect(wrong).to.deep.equal([]);
  });

  const compiled = compileRecognizers(nameRecognizers);
  function counted(text: string): string[] {
    return analyzePart(compiled, { id: 'text', text, kind: 'body' }, [])
      .filter((f) => f.score >= 0.5)
      .map((f) => text.slice(f.start, f.end));
  }

  // [case, text, the names that count]: words whose letters are not all lower-case ASCII, possessives, and the
  // lower-case cues that let a lower-case word start a name.
  const cases: Array<[string, string, string[]]> = [
    [
      'a possessive after an upper-case name',
      'We sent JOHN SMITH’s forms to Mrs. Ann Lee.',
      ['JOHN SMITH', 'Ann Lee'],
    ],
    [
      'an apostrophe and a hyphen inside a name',
      "Mrs. Siobhan O'Brien-Smith called.",
      ["Siobhan O'Brien-Smith"],
    ],
    ['letters beyond ASCII', 'Mrs. Zoë Bašić visited Dr. Søren Kjær.', ['Zoë Bašić', 'Søren Kjær']],
    ['a Kelvin sign (lower case "k") in a name', 'Mrs. \u212Aaren Lee is here.', ['\u212Aaren Lee']],
    [
      'a lower-case cue after a possessive',
      "my name's not it; my name is lena andersson",
      ['lena andersson'],
    ],
    ['a cue word at the end of the text', 'Please ask for the patient', []],
    ['digits inside words', 'Order A1c7 and B12 for room 4B2 today', []],
    ['upper-case words and acronyms', 'HIPAA PHI MRN DOB NPI', []],
    ['possessives of common words', "The clinic's hours and Monday's schedule", []],
    ['apostrophes and hyphens without letters', "a'- '- -' ’ -- ''s", []],
    ['lower-case prose after cue-like words', 'do me a favour, in the meantime is fine', []],
  ];
  for (const [name, text, names] of cases) {
    it(`finds ${names.length ? names.join(', ') : 'no names'} in: ${name}`, () => {
      expect(counted(text)).to.deep.equal(names);
    });
  }

  it("finds each message's recipients, not those of the message before (their words are kept between parts)", () => {
    const text = 'Thanks, Orsolya and Tamsin.';
    const byRecipient = (names: string[]) =>
      analyzePart(compiled, { id: 'text', text, kind: 'body' }, names)
        .filter((f) => f.recognizer === 'person-header-name')
        .map((f) => text.slice(f.start, f.end));
    expect(byRecipient(['Orsolya Vance'])).to.deep.equal(['Orsolya']);
    expect(byRecipient(['Orsolya Vance'])).to.deep.equal(['Orsolya']);
    expect(byRecipient(['Tamsin Greer'])).to.deep.equal(['Tamsin']);
    expect(byRecipient(['Tamsin Greer', 'Orsolya Vance'])).to.deep.equal(['Orsolya', 'Tamsin']);
    expect(byRecipient(['Tamsin Greer'])).to.deep.equal(['Tamsin']);
    expect(byRecipient([])).to.deep.equal([]);
  });

  it('finds the same names in a slice of a larger text as in a copy of it', () => {
    const body =
      'Dear Ann, Mrs. Zoë Bašić and JOHN SMITH’s son Jacob met Dr. Lee. my name is lena andersson\n';
    const large = `${'x'.repeat(1000)}${body.repeat(20)}${'y'.repeat(1000)}`;
    const slice = large.slice(1000, 1000 + body.length * 20);
    const copy = [...slice].join('');
    expect(counted(slice)).to.deep.equal(counted(copy));
    expect(counted(slice).length).to.be.greaterThan(20);
  });

  /**
   * The tokens as the names recognizer defines them, read plainly character by character: letters (and marks), with an
   * apostrophe or hyphen inside when a letter is on both sides; a last "'s" split off as a possessive; the shape from
   * the letters left (upper case: two letters or more, all upper case).
   */
  function reference(text: string): string[] {
    const letter = (c: number) => LETTER.test(String.fromCharCode(c));
    const upper = (c: number) => letter(c) && String.fromCharCode(c) !== String.fromCharCode(c).toLowerCase();
    const out: string[] = [];
    let i = 0;
    while (i < text.length) {
      if (!letter(text.charCodeAt(i))) {
        i++;
        continue;
      }
      const start = i++;
      for (; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (letter(c)) continue;
        if ((c === 39 || c === 0x2019 || c === 45) && i + 1 < text.length && letter(text.charCodeAt(i + 1)))
          continue;
        break;
      }
      let end = i;
      const possessive =
        end - start >= 3 && /^['’][sS]$/.test(text.slice(end - 2, end)) && letter(text.charCodeAt(end - 3));
      if (possessive) end -= 2;
      let shape = 'lower';
      if (upper(text.charCodeAt(start))) {
        const letters = [...text.slice(start, end)].filter((ch) => letter(ch.charCodeAt(0)));
        shape = letters.length >= 2 && letters.every((ch) => upper(ch.charCodeAt(0))) ? 'UPPER' : 'Cap';
      }
      out.push(`${start}-${end}${possessive ? "'s" : ''} ${shape}`);
    }
    return out;
  }

  function tokens(text: string, lower: string): string[] {
    const t = nameTokens(text, lower);
    const shapes = ['lower', 'Cap', 'UPPER'];
    const out: string[] = [];
    for (let k = 0; k < t.count; k++)
      out.push(`${t.start[k]}-${t.end[k]}${t.possessive[k] === 1 ? "'s" : ''} ${shapes[t.shape[k]!]}`);
    // Every capitalised token may start a name: each is among the candidates, in order.
    const candidates = Array.from(t.candidates.subarray(0, t.candidateCount));
    for (let k = 0; k < t.count; k++)
      if (t.shape[k] !== 0) expect(candidates, `token ${k} of ${JSON.stringify(text)}`).to.include(k);
    expect(candidates).to.deep.equal([...candidates].sort((a, b) => a - b));
    return out;
  }

  it('finds the words a plain reading finds, in 4,000 random texts (lower-cased to the same length or not)', () => {
    const pieces = [
      'a',
      'Bc',
      'Z',
      'JOHN',
      "O'",
      "'",
      '’',
      "'s",
      '’s',
      'S',
      's',
      '-',
      '--',
      "''",
      ' ',
      '\n',
      'é',
      'Ä',
      'ß',
      '\u0301',
      '\u{1F600}',
      '\ud800',
      '٣',
      '7',
      'Dr.',
      'my name is ',
      'for ',
      '\u212A',
      'İ',
      'ǅ',
    ];
    const random = randomFrom(99);
    for (let r = 0; r < 2000; r++) {
      let text = '';
      for (let p = 1 + random(40); p > 0; p--) text += pieces[random(pieces.length)]!;
      const expected = reference(text);
      // The engine's copy keeps the length (a character whose lower case is longer stays); another may not.
      const sameLength = [...text]
        .map((ch) => (ch.toLowerCase().length === ch.length ? ch.toLowerCase() : ch))
        .join('');
      expect(tokens(text, sameLength), JSON.stringify(text)).to.deep.equal(expected);
      expect(tokens(text, text.toLowerCase()), JSON.stringify(text)).to.deep.equal(expected);
    }
  });

  it('finds the same words across the chunks it reads a long text in', () => {
    for (const at of [65_534, 65_535, 65_536, 65_537, 131_072]) {
      for (const word of ["Ann's", "O'Brien", 'Mary-Jane', 'S', 's']) {
        const text = `${'x '.repeat(at >> 1).slice(0, at - 3)} ${word} ${'Z'.repeat(70_000)}’s -${word}`;
        expect(tokens(text, text.toLowerCase())).to.deep.equal(reference(text));
      }
    }
  });
});
