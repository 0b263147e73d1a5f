// The engine's overlap resolution (which of two findings on the same text survives, and in what order they come out)
// and its pattern triggers. It must never drop a finding that nothing of its own part and category covers, and a
// trigger must never keep a pattern from a text it matches.
import { expect } from 'chai';
import {
  analyzePart,
  compileRecognizers,
  DIGIT_AND_LETTERS,
  HAS_DIGIT,
  hashWord,
  hasTrigger,
  isAscii,
  isWordChar,
  LETTERS_THEN_DIGIT,
  resolveOverlaps,
  tokenizeWords,
} from '../../dlp/engine.js';
import { builtinRecognizers } from '../../dlp/recognizers/index.js';
import type { Category, Finding } from '../../dlp/types.js';
import { randomFrom } from '../support/random.js';

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
    // The label's words as the part's tokens show them (PatternSpec.triggerWords).
    ['Dispensed ndc#00093721410 today', ['NDC_CODE@14-25']],
    ['NDCcode 00093721410 given', ['NDC_CODE@8-19']],
    ['NDC number: 0009372141 given', ['NDC_CODE@12-22']],
    ['NDC Code 00093721410', ['NDC_CODE@9-20']],
    ['xndc 00093721410', []],
    // A line word after a number, whole, glued to it, before a digit, in any case, or with a long s ("ſ" reads as s).
    ['Use 555-201-3344 (Mobile) today', ['PHONE_NUMBER@4-16']],
    ['Use 555-201-3344mobile today', ['PHONE_NUMBER@4-16']],
    ['Use 555-201-3344fax2 today', ['FAX_NUMBER@4-16']],
    ['Use 5552013344FAX today', ['FAX_NUMBER@4-14']],
    ['Use 085 175 7641 deſk', ['PHONE_NUMBER@4-16']],
    ['Use 085 175 7641 mobilephone', []],
    ['Use 085 175 7641 telly', []],
    ['Open httpſ://portal.example.org/x now', ['URL@5-33']],
    ['Open https2://portal.example.org/x now', []],
    // A post-office box's last word before its number, whole or glued to it: US and other forms.
    ['Write to POBox 1234, Springfield, IL 62704.', ['STREET_ADDRESS@9-42']],
    ['Write to P.OBox 1234, Springfield, IL 62704.', ['STREET_ADDRESS@9-43']],
    ['Write to pobox12 today', ['STREET_ADDRESS@9-16']],
    ['45818 POBox 242\n Suite 787\n Kangerlussuaq', ['STREET_ADDRESS@0-41']],
    ['45818 p.obox 242\n Suite 787\n Kangerlussuaq', ['STREET_ADDRESS@0-42']],
    ['Caixa Postal 44\nSão Paulo', ['STREET_ADDRESS@0-25']],
    ['Skrytka pocztowa 92\n Suite 787\n Kangerlussuaq', ['STREET_ADDRESS@0-45']],
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

/**
 * Word tokens as the tokenizer's contract says, written plainly for comparison: runs of word characters, a possessive
 * "'s" right after a token dropped, each with its FNV-1a hash and whether a–z letters then a digit open it.
 */
function referenceTokens(lower: string): string[] {
  const out: string[] = [];
  let lastEnd = -1;
  let i = 0;
  while (i < lower.length) {
    if (!isWordChar(lower.charCodeAt(i))) {
      i++;
      continue;
    }
    const s = i;
    while (i < lower.length && isWordChar(lower.charCodeAt(i))) i++;
    const word = lower.slice(s, i);
    const apostrophe = lower.charCodeAt(s - 1);
    if (word === 's' && s - 1 === lastEnd && (apostrophe === 39 || apostrophe === 0x2019)) continue;
    const lettersThenDigit = /^[a-z]+[0-9]/.test(word);
    const digit = /[0-9]/.test(word);
    const both = digit && /[a-z]/.test(word);
    out.push(
      `${s}-${i}:${hashWord(word)}${digit ? '#' : ''}${both ? '+' : ''}${lettersThenDigit ? '*' : ''}`,
    );
    lastEnd = i;
  }
  return out;
}

/**
 * A token's digits bits as the references write them: "#" when it holds a digit, "+" when a letter a–z too, "*" when
 * letters a–z then a digit open it.
 */
function digitMarks(bits: number): string {
  return `${bits & HAS_DIGIT ? '#' : ''}${bits & DIGIT_AND_LETTERS ? '+' : ''}${bits & LETTERS_THEN_DIGIT ? '*' : ''}`;
}

function tokensOf(lower: string): string[] {
  const t = tokenizeWords(lower);
  const out: string[] = [];
  for (let k = 0; k < t.count; k++)
    out.push(`${t.start[k]}-${t.end[k]}:${t.hash[k]}${digitMarks(t.digits[k]!)}`);
  return out;
}

describe('dlp engine tokenizeWords against a plain reference', () => {
  // Pieces that make every kind of boundary: letters, digits, case, marks and letters beyond ASCII, surrogate pairs,
  // numbers beyond ASCII, apostrophes (possessive or not), hyphens, blanks.
  const pieces = [
    'a',
    'bc',
    'Z',
    'Dob',
    '7',
    '19',
    ' ',
    '  ',
    '\n',
    "'",
    '’',
    "'s",
    '’s',
    's',
    '-',
    '.',
    'é',
    'ß',
    '\u0301',
    '\u{1F600}',
    '\ud800',
    '٣',
    'x1',
    '_',
    '\t',
    'straße',
    'ab12cd',
  ];
  const random = randomFrom(7);
  const text = (pieceCount: number) => {
    let s = '';
    for (let p = 0; p < pieceCount; p++) s += pieces[random(pieces.length)]!;
    return s;
  };
  it('agrees on 2,000 random texts', () => {
    for (let r = 0; r < 2000; r++) {
      const lower = text(1 + random(60));
      expect(tokensOf(lower), JSON.stringify(lower)).to.deep.equal(referenceTokens(lower));
    }
  });
  it('agrees across the pieces the tokenizer reads a long part in (a token on each side of 262,144 and across it)', () => {
    for (const at of [63, 64, 65, 65_536, 262_142, 262_143, 262_144, 262_145, 524_288]) {
      for (const word of ['abc1', "it's", 'a', '9']) {
        // A possessive, a long word and a digit sit across the boundary of the chunks.
        const lower =
          'x '.repeat(at >> 1).slice(0, at - 2) + word + ' ' + 'z'.repeat(70_000) + "'s " + text(40);
        expect(tokensOf(lower)).to.deep.equal(referenceTokens(lower));
      }
    }
  });
  it('agrees when a token is longer than a piece (the piece then runs on to its end)', () => {
    const lower = `a1 b’s ${'q'.repeat(300_000)}7 c’s ${text(30)} ${'k'.repeat(270_000)} end`;
    expect(tokensOf(lower)).to.deep.equal(referenceTokens(lower));
    // And the thread's own arena still serves the next text.
    expect(tokensOf('after it, x9')).to.deep.equal(referenceTokens('after it, x9'));
  });
  it('agrees on a text of 300,000 characters (more tokens than the reused arrays hold)', () => {
    const lower = 'ab c1 d’s '.repeat(30_000);
    const got = tokensOf(lower);
    expect(got.length).to.equal(90_000);
    expect(got).to.deep.equal(referenceTokens(lower));
  });
});

describe('dlp engine hashWord', () => {
  // The hash as dlp/tokens.wat defines it, written again with BigInt: a seed with the length in, then per group of
  // four UTF-16 code units (zero beyond the word, at least two groups) xor and multiply mod 2^64, then the high half
  // folded into the low one.
  const MASK = (1n << 64n) - 1n;
  function reference(word: string): number {
    let h = 0x9e3779b97f4a7c15n ^ BigInt(word.length);
    const groups = Math.max(2, Math.ceil(word.length / 4));
    for (let g = 0; g < groups; g++) {
      let x = 0n;
      for (let j = 0; j < 4; j++) {
        const i = 4 * g + j;
        if (i < word.length) x |= BigInt(word.charCodeAt(i)) << BigInt(16 * j);
      }
      h = ((h ^ x) * 0xff51afd7ed558ccdn) & MASK;
    }
    return Number(BigInt.asIntN(32, (h ^ (h >> 32n)) & 0xffffffffn));
  }
  const random = randomFrom(11);
  const units = [0x61, 0x7a, 0x30, 0x20, 0x27, 0xe9, 0x2019, 0xd83d, 0xde00, 0xffff, 0x7f, 0x80];
  it('is the hash tokens.wat describes, for words of 0 to 40 code units', () => {
    for (let r = 0; r < 2000; r++) {
      const length = random(41);
      let word = '';
      for (let i = 0; i < length; i++) word += String.fromCharCode(units[random(units.length)]!);
      expect(hashWord(word), JSON.stringify(word)).to.equal(reference(word));
    }
    // Words that differ only in a zero-filled place or in length do not meet.
    expect(hashWord('ab')).not.to.equal(hashWord('ab\u0000'));
    expect(hashWord('')).not.to.equal(hashWord('\u0000'));
  });
  it('gives a word the hash its token gets, beyond a short word too', () => {
    for (const word of ['x', 'abcd', 'abcdefgh', 'abcdefghi', 'straße', 'hypertension', 'z'.repeat(1000)]) {
      const t = tokenizeWords(` ${word} `);
      expect(t.count).to.equal(1);
      expect(t.hash[0], word).to.equal(hashWord(word));
    }
  });
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
  // [lower-cased text, its tokens, each with digitMarks]
  const cases: Array<[string, string[]]> = [
    ['', []],
    ['  ,.;  ', []],
    ['dob1985 a1c 1985dob x_y', ['dob1985#+*', 'a1c#+*', '1985dob#+', 'x', 'y']],
    ["crohn's disease, patient’s chart", ['crohn', 'disease', 'patient', 'chart']],
    ["o'brien mary-jane it's", ['o', 'brien', 'mary', 'jane', 'it']],
    ['müller josé́ straße 5', ['müller', 'josé́', 'straße', '5#']],
    ['ab٣ 😀x abc', ['ab', 'x', 'abc']],
    ['end9', ['end9#+*']],
    ['5550100fax x1y2z é9a é9', ['5550100fax#+', 'x1y2z#+*', 'é9a#+', 'é9#']],
  ];
  for (const [text, expected] of cases) {
    it(`${JSON.stringify(text)} → ${expected.join(' ') || 'none'}`, () => {
      const t = tokenizeWords(text);
      const got: string[] = [];
      for (let k = 0; k < t.count; k++) {
        const word = text.slice(t.start[k], t.end[k]);
        // Each token's hash is the hash of its text.
        expect(t.hash[k], word).to.equal(hashWord(word));
        got.push(word + digitMarks(t.digits[k]!));
      }
      expect(got).to.deep.equal(expected);
    });
  }
});
