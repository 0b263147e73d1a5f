// The health vocabulary's prefilter: the tokens it lets through are the only places health and care terms are looked
// for, so it must never leave out a word that starts a term (a false start only costs a look-up).
import { expect } from 'chai';
import { analyzePart, compileRecognizers } from '../../dlp/engine.js';
import { healthRecognizers, termStartOffsets } from '../../dlp/recognizers/health.js';

const compiled = compileRecognizers(healthRecognizers);

function types(text: string): string[] {
  return analyzePart(compiled, { id: 'text', text, kind: 'body' })
    .filter((f) => f.recognizer === 'health-terms' || f.recognizer === 'care-context')
    .map((f) => `${f.type}@${f.start}`);
}

describe('dlp health term starts', () => {
  // [word, starts a term of the health or care vocabulary]
  const words: Array<[string, boolean]> = [
    ['hypertension', true],
    ['lisinopril', true],
    ['metformin', true],
    ['crowns', true],
    ['cavities', true],
    ['diagnosed', true],
    ['appointment', true],
    ['patient', true],
    ['x-ray', true],
    ['parking', false],
    ['meeting', false],
    ['invoice', false],
    ['quarterly', false],
    ['sterilizer', false],
    ['tuesday', false],
    ['laptops', false],
    ['repaving', false],
    ['vendor', false],
    ['backup', false],
  ];
  for (const [word, starts] of words)
    it(`${starts ? 'lets through' : 'leaves out'} "${word}"`, () =>
      expect(termStartOffsets(` ${word} `)).to.deep.equal(starts ? [1] : []));

  it('gives token starts in text order', () => {
    const lower = 'the vendor said the patient has hypertension and takes lisinopril';
    const offsets = termStartOffsets(lower);
    expect(offsets).to.include.members([20, 32, 55]);
    expect([...offsets].sort((a, b) => a - b)).to.deep.equal(offsets);
  });

  // Terms after skipped words, terms of several words, and words inside a term that must not start another one.
  const texts: Array<[string, string[]]> = [
    ['Parking on Elm Street is closed for repaving next week.', []],
    ['The quarterly invoice went to the vendor on Tuesday.', []],
    [
      'Patient was diagnosed with type 2 diabetes; continue metformin 500 mg.',
      ['CARE_CONTEXT@0', 'HEALTH_PHRASE@8', 'CONDITION@27', 'MEDICATION@53'],
    ],
  ];
  for (const [text, expected] of texts)
    it(`finds ${expected.length ? expected.join(', ') : 'nothing'} in "${text.slice(0, 40)}…"`, () =>
      expect(types(text)).to.deep.equal(expected));
});
