// The engine's overlap resolution (which of two findings on the same text survives, and in what order they come out)
// and its pattern triggers. It must never drop a finding that nothing of its own part and category covers, and a
// trigger must never keep a pattern from a text it matches.
import { expect } from 'chai';
import {
  analyzePart,
  compileRecognizers,
  hashWord,
  hasTrigger,
  isAscii,
  resolveOverlaps,
  tokenizeWords,
} from '../../dlp/engine.js';
import { builtinRecognizers } from '../../dlp/recognizers/index.js';
import type { Category, Finding } from '../../dlp/types.js';

function f(
  start: number,
  end: number,
  score: number,
  opts: { type?: string; category?: Category; part?: string; recognizer?: string } = {},
): Finding {
  return {
    type: opts.type ?? 'PHONE_NUMBER',
    category: opts.category ?? 'identifier',
    part: opts.part ?? 'text',
    start,
    end,
    score,
    recognizer: opts.recognizer ?? 'test',
  };
}

const key = (x: Finding) => `${x.part}:${x.category}:${x.type}:${x.start}-${x.end}@${x.score}`;

describe('dlp engine resolveOverlaps', () => {
  // [what, findings, the keys that survive in output order]
  const cases: Array<[string, Finding[], string[]]> = [
    // Dropped: covered by one of the same part and category.
    [
      'a higher score covering it wins',
      [f(0, 10, 0.9), f(2, 8, 0.5)],
      ['text:identifier:PHONE_NUMBER:0-10@0.9'],
    ],
    [
      'the same score and a wider span wins',
      [f(2, 8, 0.6, { type: 'URL' }), f(0, 10, 0.6)],
      ['text:identifier:PHONE_NUMBER:0-10@0.6'],
    ],
    [
      'the same type and score: the first of two equal spans stays',
      [f(0, 10, 0.6, { recognizer: 'a' }), f(0, 10, 0.6, { recognizer: 'b' })],
      ['text:identifier:PHONE_NUMBER:0-10@0.6'],
    ],
    [
      'a chain: the widest covers both',
      [f(4, 6, 0.3), f(2, 8, 0.5), f(0, 10, 0.9)],
      ['text:identifier:PHONE_NUMBER:0-10@0.9'],
    ],
    // Kept: nothing of its own part and category covers it.
    [
      'a lower score that is wider stays',
      [f(0, 10, 0.4), f(2, 8, 0.9)],
      ['text:identifier:PHONE_NUMBER:0-10@0.4', 'text:identifier:PHONE_NUMBER:2-8@0.9'],
    ],
    [
      'a partial overlap keeps both',
      [f(5, 15, 0.9), f(0, 10, 0.5)],
      ['text:identifier:PHONE_NUMBER:0-10@0.5', 'text:identifier:PHONE_NUMBER:5-15@0.9'],
    ],
    [
      'another category is never covered',
      [f(0, 10, 0.9), f(2, 8, 0.5, { category: 'health', type: 'ICD10_CODE' })],
      ['text:health:ICD10_CODE:2-8@0.5', 'text:identifier:PHONE_NUMBER:0-10@0.9'],
    ],
    [
      'another part is never covered',
      [f(0, 10, 0.9, { part: 'text' }), f(2, 8, 0.5, { part: 'subject' })],
      ['subject:identifier:PHONE_NUMBER:2-8@0.5', 'text:identifier:PHONE_NUMBER:0-10@0.9'],
    ],
    [
      'same span and score, other types, equal widths: both stay',
      [f(0, 10, 0.6, { type: 'FAX_NUMBER' }), f(0, 10, 0.6)],
      ['text:identifier:FAX_NUMBER:0-10@0.6', 'text:identifier:PHONE_NUMBER:0-10@0.6'],
    ],
    [
      'disjoint findings come out sorted by part, category and position',
      [
        f(30, 35, 0.5, { part: 'text' }),
        f(0, 5, 0.5, { part: 'text', category: 'strong', type: 'US_SSN' }),
        f(10, 15, 0.5, { part: 'attachment:1' }),
        f(0, 5, 0.5, { part: 'text' }),
      ],
      [
        'attachment:1:identifier:PHONE_NUMBER:10-15@0.5',
        'text:identifier:PHONE_NUMBER:0-5@0.5',
        'text:identifier:PHONE_NUMBER:30-35@0.5',
        'text:strong:US_SSN:0-5@0.5',
      ],
    ],
    ['no findings, none out', [], []],
  ];
  for (const [what, findings, expected] of cases)
    it(what, () => expect(resolveOverlaps(findings).map(key)).to.deep.equal(expected));

  it('leaves its input as it was', () => {
    const input = [f(2, 8, 0.5), f(0, 10, 0.9)];
    const copy = input.map(key);
    resolveOverlaps(input);
    expect(input.map(key)).to.deep.equal(copy);
  });
});

describe('dlp engine pattern triggers', () => {
  // [lower-cased text, triggers, whether the pattern runs]
  const cases: Array<[string, readonly string[] | undefined, boolean]> = [
    ['see https://example.org', ['http', 'www.'], true],
    ['visit www.example.org', ['http', 'www.'], true],
    ['p.o. box 12', ['box', 'apo'], true],
    ['call +44 20 7946 0958', ['+'], true],
    ['any text at all', undefined, true],
    ['see the portal', ['http', 'www.'], false],
    ['the web site is down', ['http', 'www.'], false],
    ['call 20 7946 0958', ['+'], false],
    ['', ['box'], false],
    ['b o x', ['box'], false],
    ['ndc', [], false],
  ];
  for (const [lower, triggers, runs] of cases)
    it(`${runs ? 'runs' : 'skips'} ${JSON.stringify(triggers)} on "${lower}"`, () =>
      expect(hasTrigger(lower, triggers)).to.equal(runs));

  // Patterns with triggers still find their matches in any case; without a trigger in the text they find nothing.
  const compiled = compileRecognizers(builtinRecognizers());
  const found: Array<[string, string[]]> = [
    ['See HTTPS://Portal.Example.ORG/records for the form.', ['URL@4-38']],
    ['Visit WWW.EXAMPLE.ORG today.', ['URL@6-21']],
    ['Mail it to P.O. BOX 1234, Springfield, IL 62704.', ['STREET_ADDRESS@11-47']],
    ['PSC 0413, Box 8144, APO AA 42323', ['STREET_ADDRESS@0-32']],
    ['Call +44 20 7946 0958 tomorrow.', ['PHONE_NUMBER@5-21']],
    ['NDC 00093721410 dispensed', ['NDC_CODE@4-15']],
    ['The box of gloves is in the office; see the portal.', []],
    ['Grand total 00093721410', []],
    ['Visit the web site or write to the post office.', []],
  ];
  for (const [text, expected] of found)
    it(`finds ${expected.length ? expected.join(', ') : 'nothing'} in "${text}"`, () =>
      expect(
        analyzePart(compiled, { id: 'text', text, kind: 'body' })
          .filter((x) => x.category !== 'care')
          .map((x) => `${x.type}@${x.start}-${x.end}`),
      ).to.deep.equal(expected));
});

describe('dlp engine isAscii', () => {
  // [text, whether every code unit is below 0x80]: the recognizers that read ASCII text faster rely on a false never
  // being a true.
  const cases: Array<[string, boolean]> = [
    ['', true],
    ['plain text, 123 \r\n\t\0 ~\x7f', true],
    ['caf\u00e9', false],
    ['\u0080', false],
    ['\u00ff', false],
    ['a\u0100b', false],
    ['\u{1F600}', false],
    ['lone \ud800 surrogate', false],
    ['lone \udfff low', false],
    ['\ufeff', false],
    ['x'.repeat(70_000) + '\u00e9', false],
  ];
  for (const [text, expected] of cases) {
    it(`${JSON.stringify(text.length > 40 ? text.slice(-20) : text)} → ${expected}`, () => {
      expect(isAscii(text)).to.equal(expected);
      // The answer is kept for the last text: asking again, and about another text, gives each its own.
      expect(isAscii(text)).to.equal(expected);
      expect(isAscii(text + '\u00e9')).to.equal(false);
      expect(isAscii(text)).to.equal(expected);
    });
  }
});

describe('dlp engine tokenizeWords', () => {
  // [lower-cased text, its tokens as "text" or "text*" when letters a–z then a digit open it]
  const cases: Array<[string, string[]]> = [
    ['', []],
    ['  ,.;  ', []],
    ['dob1985 a1c 1985dob x_y', ['dob1985*', 'a1c*', '1985dob', 'x', 'y']],
    ["crohn's disease, patient’s chart", ['crohn', 'disease', 'patient', 'chart']],
    ["o'brien mary-jane it's", ['o', 'brien', 'mary', 'jane', 'it']],
    ['müller josé́ straße 5', ['müller', 'josé́', 'straße', '5']],
    ['ab٣ 😀x abc', ['ab', 'x', 'abc']],
    ['end9', ['end9*']],
  ];
  for (const [text, expected] of cases) {
    it(`${JSON.stringify(text)} → ${expected.join(' ') || 'none'}`, () => {
      const t = tokenizeWords(text);
      const got: string[] = [];
      for (let k = 0; k < t.count; k++) {
        const word = text.slice(t.start[k], t.end[k]);
        // Each token's hash is the hash of its text.
        expect(t.hash[k], word).to.equal(hashWord(word));
        got.push(word + (t.lettersThenDigit[k] === 1 ? '*' : ''));
      }
      expect(got).to.deep.equal(expected);
    });
  }
});
