// The names recognizer's word tokens: the shortcuts of its tokenizer (letters told by the lower-cased copy, the list of
// tokens that may start a name) must find exactly the words and names that reading every character of the text finds.
import { expect } from 'chai';
import { analyzePart, compileRecognizers } from '../../dlp/engine.js';
import { nameRecognizers } from '../../dlp/recognizers/names.js';

const LETTER = /[\p{L}\p{M}]/u;

describe('dlp names tokens', () => {
  it('a code unit whose lower case is an ASCII letter is a letter, and one that lowers to other ASCII is that character', () => {
    // The tokenizer reads the lower-cased copy and looks at the text only where these two rules do not tell.
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
});
