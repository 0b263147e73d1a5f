// The health vocabulary's prefilter: the tokens it lets through are the only places health and care terms are looked
// for, so it must never leave out a word that starts a term (a false start only costs a look-up).
import { expect } from 'chai';
import { TERM_GROUPS } from '../../dlp/data/medical-terms.js';
import { analyzePart, compileRecognizers, tokenizeWords } from '../../dlp/engine.js';
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
    ['diagnosed with', true],
    ['diagnosed', false],
    ['appointment', true],
    ['patient', true],
    ['x-ray', true],
  ];
  for (const [word, starts] of words)
    it(`${starts ? 'lets through' : 'leaves out'} "${word}"`, () =>
      expect(termStartOffsets(` ${word} `)).to.deep.equal(starts ? [1] : []));

  // A filter of hashes lets some other words through too (a look-up then turns them away): as many as its bits
  // set, ~5% of the words of office mail. Which ones depends on the hash; how many must stay low, or the filter
  // does nothing.
  it('leaves out most words of office mail', () => {
    const office = (
      'parking meeting invoice quarterly sterilizer tuesday laptops repaving vendor backup the and with from ' +
      'this that have will about report project team budget review plan update monday friday week month ' +
      'schedule email phone printer lunch coffee contract sales market price order delivery shipping account ' +
      'bank file folder document page table server network password website ticket policy training manager ' +
      'holiday travel hotel flight road street city country agenda minutes slides deadline'
    ).split(' ');
    const through = office.filter((word) => termStartOffsets(` ${word} `).length > 0);
    expect(office.length).to.equal(70);
    expect(through.length, through.join(' ')).to.be.at.most(10);
  });

  it('gives token starts in text order', () => {
    const lower = 'the vendor said the patient has hypertension and takes lisinopril';
    const offsets = termStartOffsets(lower);
    expect(offsets).to.include.members([20, 32, 55]);
    expect([...offsets].sort((a, b) => a - b)).to.deep.equal(offsets);
  });

  // A first word of terms of several words counts only with a second word of one of them after it (a pair filter):
  // every term of both vocabularies, and a two-word term with its last word plural, must still be let through.
  it('lets through the first word of every term of both vocabularies, plurals of two-word terms too', () => {
    let terms = 0;
    let several = 0;
    for (const group of TERM_GROUPS) {
      for (const raw of group.terms.split('|')) {
        const term = raw.trim().toLowerCase();
        if (!term) continue;
        const t = tokenizeWords(term);
        if (t.count === 0) continue;
        const forms = [term];
        if (t.count === 2 && /[a-z]$/.test(term)) {
          const stem = term.slice(0, t.end[1]);
          forms.push(`${stem}s`, term.endsWith('y') ? `${stem.slice(0, -1)}ies` : `${stem}es`);
        }
        for (const form of forms) {
          const text = `so ${form} then`;
          expect(termStartOffsets(text), JSON.stringify(form)).to.include(3 + t.start[0]!);
        }
        terms++;
        if (t.count > 1) several++;
      }
    }
    expect(terms).to.be.greaterThan(500);
    expect(several).to.be.greaterThan(100);
  });

  it('leaves out first words of terms of several words when no second word of theirs follows', () => {
    // "high" opens "high blood pressure", "type" opens "type 2 diabetes", "blood" opens "blood work".
    // (The words after them may pass the filter of single words by chance: only the first word's start counts.)
    expect(termStartOffsets(' high school ')).not.to.include(1);
    expect(termStartOffsets(' high blood pressure ')).to.include(1);
    expect(termStartOffsets(' type of paper ')).not.to.include(1);
    expect(termStartOffsets(' type 2 diabetes ')).to.include(1);
    expect(termStartOffsets(' blood orange ')).not.to.include(1);
    expect(termStartOffsets(' blood work ')).to.include(1);
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
