// The engine's shortcuts (anchors, word tokens, the leading letters of labels): each must find exactly what a search
// of the whole text finds. They must never lose or add a finding, whatever the text holds.
import { expect } from 'chai';
import {
  analyzePart,
  anchorStarts,
  CHAR_LETTER,
  CHAR_MARK,
  CHAR_NUMBER,
  CHAR_SURROGATE,
  CHAR_UPPER,
  charClass,
  compileRecognizers,
  digitRunsOf,
  HOUSE_NUMBER_ANCHOR,
  isAscii,
  labelPairs,
  leadingLetters,
  mayHave,
  TokenFilters,
  tokenizeWords,
  wordHashFilter,
  tokenListOf,
  TOKEN_UNSAFE,
  tokenUnsafe,
  type TokenList,
  type WordTokens,
} from '../../dlp/engine.js';
import { builtinRecognizers } from '../../dlp/recognizers/index.js';
import type { Finding, Recognizer } from '../../dlp/types.js';
import { randomFrom } from '../support/random.js';

describe('dlp engine leadingLetters', () => {
  // [pattern, its leading letters sorted, or null when they cannot be told]
  const cases: Array<[string, string[] | null]> = [
    ['call(?:ed|ing)?', ['call', 'called', 'calling']],
    ['cell(?:[ \\t]?phone)?', ['cell', 'cellphone']],
    ['a/c|acct\\.?', ['a', 'acct']],
    ['d\\.o\\.b\\.?|dob', ['d', 'dob']],
    ['zip(?:[ \\t]?code)?|post[ \\t]?code', ['post', 'postcode', 'zip', 'zipcode']],
    ['age[sd]?', ['age', 'aged', 'ages']],
    // Cannot be told: a lookaround, a start with a sign, a possibly empty match, any character, a negated class,
    // a letter beyond ASCII, a back-reference.
    ['(?=x)abc', null],
    ['#\\d', null],
    ['x*', null],
    ['a.b', null],
    ['[^a]b', null],
    ['straße', null],
    ['(a)\\1', null],
  ];
  for (const [pattern, words] of cases) {
    it(`${pattern} → ${words ? words.join(' ') : 'null'}`, () => {
      const got = leadingLetters(pattern);
      expect(got === null ? null : [...got].sort()).to.deep.equal(words);
    });
  }
});

describe('dlp engine labelPairs', () => {
  const sorted = (r: ReturnType<typeof labelPairs>) =>
    r && {
      alone: [...r.alone].sort(),
      pairs: r.pairs.map((p) => p.join(' ')).sort(),
      after: r.after.map(([w, c]) => `${w}${String.fromCharCode(c)}`).sort(),
    };
  // [pattern, what it needs after each first word, or null when that cannot be told]
  const cases: Array<[string, ReturnType<typeof sorted>]> = [
    // A word that is a label alone, and the same word before a second one.
    // Blanks {0,2}: with none, "chartno" is one token.
    [
      'chart(?:[ \\t]{0,2}(?:no|#))?',
      { alone: ['chart', 'chartno'], pairs: ['chart no'], after: ['chart\t', 'chart ', 'chart#'] },
    ],
    // Words that open labels only: their next character, and after blanks, the next word.
    [
      '(?:service|visit)[ \\t]{1,2}date|a/c|policy[ \\t]{0,2}(?:#|no\\.?|id)',
      {
        alone: ['policyid', 'policyno'],
        pairs: ['policy id', 'policy no', 'service date', 'visit date'],
        after: [
          'a/',
          'policy\t',
          'policy ',
          'policy#',
          'policyno.',
          'service\t',
          'service ',
          'visit\t',
          'visit ',
        ],
      },
    ],
    // Blanks then a digit, or blanks at the end: the word alone may start a match.
    [
      'age[ \\t]\\d|zip[ \\t]',
      { alone: ['age', 'zip'], pairs: [], after: ['age\t', 'age ', 'zip\t', 'zip '] },
    ],
    // Three words: the pair is the first two; the second word ends where its letters do.
    [
      'social[ \\t]security(?:[ \\t]number|#)|call[ \\t]?back',
      {
        alone: ['callback'],
        pairs: ['call back', 'social security'],
        after: ['call\t', 'call ', 'social\t', 'social '],
      },
    ],
    // Cannot be told, as for leadingLetters.
    ['#\\d', null],
    ['x*', null],
    ['(?=x)abc', null],
  ];
  for (const [pattern, expected] of cases) {
    it(`${pattern}`, () => {
      expect(sorted(labelPairs(pattern))).to.deep.equal(expected);
    });
  }
});

describe('dlp engine: the tokens of token filters (TokenFilters)', () => {
  const words = ['service', 'policy', 'a', 'date', 'patient', 'the', 'x1', 'é', 'renée', 'ndc'];
  const random = randomFrom(11);
  const textOf = () => {
    let text = '';
    for (let i = 0, n = random(80); i < n; i++)
      text += words[random(words.length)]! + [' ', '  ', '.', '\n', "'s ", '-', ''][random(7)]!;
    return text;
  };
  const plain = (tokens: WordTokens, filter: Uint32Array) =>
    Array.from({ length: tokens.count }, (_, k) => k).filter((k) => mayHave(filter, tokens.hash[k]!));
  it('lists exactly the tokens whose hash each filter may have, in 300 generated texts', () => {
    const table = new TokenFilters();
    const filters = [['service', 'policy', 'a'], ['date'], ['the', 'renée', 'x1']].map((w) =>
      wordHashFilter(w),
    );
    const ids = filters.map((f) => table.add(f));
    expect(ids).to.deep.equal([0, 1, 2]);
    let listed = 0;
    for (let t = 0; t < 300; t++) {
      const tokens = tokenizeWords(textOf());
      filters.forEach((filter, j) => {
        const got = [...table.tokens(tokens, ids[j]!)];
        expect(got).to.deep.equal(plain(tokens, filter));
        listed += got.length;
      });
    }
    expect(listed).to.be.greaterThan(1000);
  });
  it('lists a filter added after a part was listed, and one that took the id of a filter removed', () => {
    const table = new TokenFilters(2);
    const tokens = tokenizeWords('the patient service date: ndc 1234 policy');
    const patient = table.add(wordHashFilter(['patient']));
    expect([...table.tokens(tokens, patient)]).to.deep.equal([1]);
    const late = table.add(wordHashFilter(['ndc', 'policy', 'nowhere']));
    expect([...table.tokens(tokens, late)]).to.deep.equal([4, 6]);
    // Full: no id. Then the first is given up, and its id goes to the next.
    expect(table.add(wordHashFilter(['date']))).to.equal(-1);
    table.remove(patient);
    expect(() => table.tokens(tokens, patient)).to.throw(/no filter/);
    const date = table.add(wordHashFilter(['date']));
    expect(date).to.equal(patient);
    expect([...table.tokens(tokens, date)]).to.deep.equal([3]);
    // A part listed after the change: the removed filter's bits are gone from the table.
    const again = tokenizeWords('patient date patient');
    expect([...table.tokens(again, date)]).to.deep.equal([1]);
    expect([...table.tokens(again, late)]).to.deep.equal([]);
  });
  it('refuses what is no word hash filter, and more than 16 filters', () => {
    expect(() => new TokenFilters().add(new Uint32Array(3))).to.throw(/not a word hash filter/);
    expect(() => new TokenFilters(17)).to.throw(/at most 16/);
  });
});

/** A text of `least` to `least + more - 1` pieces, each followed by one of `between`, drawn with `random`. */
function piecesText(
  random: (n: number) => number,
  pieces: readonly string[],
  between: readonly string[],
  least: number,
  more: number,
): string {
  let text = '';
  for (let i = 0, n = least + random(more); i < n; i++)
    text += pieces[random(pieces.length)]! + between[random(between.length)]!;
  return text;
}

describe('dlp engine anchorStarts', () => {
  const cases: Array<[string, number[]]> = [
    ['1420 N Oak Avenue', [0]],
    ['12B Main St and 7-9 Elm', [0, 16, 18]],
    ['lives at 3 1/2 Rue Cler', [9, 13]],
    // Not a house number: inside a word, after a digit, no capital or digit after the blanks.
    ['A12 Main', []],
    ['the 3pm meeting, 10 mg, room 4B.', []],
    ['', []],
  ];
  for (const [text, starts] of cases) {
    it(`house numbers in ${JSON.stringify(text)} at ${starts.join(', ') || 'none'}`, () => {
      expect([...anchorStarts(text, HOUSE_NUMBER_ANCHOR)]).to.deep.equal(starts);
    });
  }

  // Numbers of every length with what can follow a house number and what cannot, in ASCII text and beyond.
  const pieces = [
    '1',
    '42',
    '123',
    '4567',
    '12345',
    '123456',
    '1234567',
    '12345678',
    'B',
    'b',
    'É',
    'Ł',
    'é',
  ];
  const between = [
    ' ',
    '  ',
    '   ',
    '\t',
    '-',
    '-7',
    ' 1/2 ',
    '/',
    '_',
    '.',
    ',',
    '’',
    '٣',
    'x',
    ' Main',
    ' é',
    '',
  ];
  const random = randomFrom(5);
  it('reads the same house numbers from the runs of digits as a search of the text, in 2000 generated texts', () => {
    let found = 0;
    for (let t = 0; t < 2000; t++) {
      const text = piecesText(random, pieces, between, 2, 12);
      const want: number[] = [];
      for (const m of text.matchAll(new RegExp(HOUSE_NUMBER_ANCHOR.source, 'gu'))) want.push(m.index);
      const lower = text.toLowerCase();
      if (tokenUnsafe(lower)) continue;
      const runs = digitRunsOf(text, tokenizeWords(lower), isAscii(lower));
      expect([...anchorStarts(text, HOUSE_NUMBER_ANCHOR, runs)], JSON.stringify(text)).to.deep.equal(want);
      found += want.length;
    }
    expect(found).to.be.greaterThan(500);
  });
});

/** The built-in recognizers with nothing that reads word tokens: every pattern is then searched for in the whole text. */
function withoutTokens(): Recognizer[] {
  return builtinRecognizers().map((r) =>
    'usesWordTokens' in r && r.usesWordTokens ? { id: r.id, analyze: r.analyze.bind(r) } : r,
  );
}

const withTokens = compileRecognizers(builtinRecognizers());
const searched = compileRecognizers(withoutTokens());
const key = (f: Finding) => `${f.recognizer}:${f.type}:${f.start}-${f.end}@${f.score}`;

/** The findings of `text` read with word tokens, after checking they are those of the search without them. */
function sameFindings(text: string): string[] {
  const part = { id: 'text', text, kind: 'body' as const };
  const a = analyzePart(withTokens, part).map(key);
  expect(a, JSON.stringify(text.slice(0, 2000))).to.deep.equal(analyzePart(searched, part).map(key));
  return a;
}

describe('dlp engine: findings with and without word tokens', () => {
  const texts: Array<[string, string]> = [
    [
      'labels, codes and numbers',
      'Pt DOB 04/12/1961, MRN: 00123456, dob1985 x_dob 01/02/1990. Call (555) 201-3344 ext. 12; fax 555-201-3345. ' +
        'Dx: F32.9, E11.65 and I10; CPT 99213, 90837; D2740 crown on #14. NPI 1234567893, DEA AB1234563, ' +
        'MBI 1EG4-TE5-MK73, VIN 1HGCM82633A004352, card 4111 1111 1111 1111, SSN 123-45-6789.',
    ],
    [
      'street addresses in many languages',
      'Send to 1420 N Oak Avenue, Apt 3B, Springfield, IL 62704 or Via delle Coste 41, Magasinsgatan 7, ' +
        'ul. Jesionowa 127, 33 avenue de Provence, 4923 Parmova 109, str. 5 and the broad road 12.',
    ],
    [
      'letters beyond ASCII',
      'Renée Müller’s DOB is 3/4/1950; Søren’s phone: 555 123 4567. Straße 5, Nybyvägen 12. Patient’s MRN 7654321.',
    ],
    [
      'marks, other digits and emoji (no tokens)',
      'Jose\u0301 DOB ٣/4/1950 😀 call 555-123-4567 😀dob 1/2/1990 Main Street 12',
    ],
    ['possessives and underscores', "crohn's disease, patient's chart #12345678, a_b dob 2/3/1980, ss's 1"],
    [
      'ages and IP addresses',
      'Pt is 92 years old; a 101-year-old, 95 y/o, 90yo, 120yrold, 99YRS OLD, 91 y.o. and 19 years old. ' +
        'Server 10.0.0.1, host 192.168.1.20, x.10.0.0.1, a_10.1.1.1, 1.2.3.4.5 and 300.1.1.1 logged in.',
    ],
    [
      'NDC codes and ages where a run of digits starts inside a word',
      'NDC 0002-1234-01, x1234-5678-90, ab12cd3456-7890-12, Renée12345-6789-01, Kelvin\u212a1234-567-89, ' +
        '-1234-5678-90, 12345-678-9, 123456-7890-12; ages 104 years old, x95 yo, 7,92 years old, é93 yrs old, ' +
        '1920 years old and 9 years old.',
    ],
    [
      'context words of several tokens, and their first words alone',
      'Social  Security\nnumber 123-45-6789; social work 123-45-6780. Billing provider 1234567893, billing 1234567893. ' +
        'Schedule II DEA AB1234563; schedule AB1234563. Supply code J1100, supply J1100. ICD-10 E11.9, icd 10 F32.9. ' +
        'J-code J3490. Medicare beneficiary 1EG4-TE5-MK73, Medicare 1EG4TE5MK73. Cell phone 555-201-3344, cell ' +
        '555-201-3345. Lives at 12 Main St; lives 14 Oak Ave. Card number 4111 1111 1111 1111.',
    ],
    [
      'labels opened by ordinary words',
      'Service date 01/02/2020, service\tdate: 03/04/2021; visit  date 05/06/2022. Policy # A1234567, policy no. ' +
        'B7654321, policy id12345678, policy holder. A/c 12345678, a holiday, acct. 87654321. Social security ' +
        'number 123-45-6789, mr # 1234567, MR. Smith, pre-auth 1234567, claim\n12345678, callback 555-201-3344.',
    ],
    ['nothing', 'Hi team, the quarterly supply order went out on Tuesday.'],
  ];
  for (const [what, text] of texts) {
    it(`are the same for ${what}`, () => {
      const a = sameFindings(text);
      expect(a.length).to.be.greaterThan(what === 'nothing' ? -1 : 0);
    });
  }
});

describe('dlp engine: labels tried where their first words are', () => {
  // First words of labels that are no label alone, second words that make labels with them or not, values, and what
  // may stand between, put together at random: labelPairs must never skip a place where a label starts.
  const first = [
    'service',
    'Service',
    'visit',
    'policy',
    'Policy',
    'member',
    'plan',
    'a',
    'A',
    'social',
    'mr',
    'pre',
    'call',
  ];
  const second = [
    'date',
    'Date',
    'id',
    'no.',
    'number',
    'holder',
    'c',
    'C',
    'security',
    'auth',
    'back',
    '#',
    'x9',
    '',
  ];
  const values = ['A1234567', '12345678', '01/02/2020', '3/4/2021', '555-201-3344', 'id12345678', 'today'];
  const between = [' ', ' ', ' ', '  ', '\t', ': ', '. ', '.', '\n', '-', '/', '/', "'", '', ' # '];
  const random = randomFrom(13);
  const pick = (list: string[]) => list[random(list.length)]!;
  it('finds what a search of the whole text finds, in 2000 generated texts', () => {
    // Labels that start with such words: each must be found many times for the comparison to mean something.
    const found = new Map([
      ['date-of-service', 0],
      ['health-plan-id', 0],
      ['account-number', 0],
    ]);
    const least = new Map([
      ['date-of-service', 15],
      ['health-plan-id', 100],
      ['account-number', 5],
    ]);
    for (let t = 0; t < 2000; t++) {
      let text = '';
      for (let i = 0, n = 1 + random(8); i < n; i++)
        text += pick(first) + pick(between) + pick(second) + pick(between) + pick(values) + pick(between);
      const a = sameFindings(text);
      for (const k of a) {
        const recognizer = k.slice(0, k.indexOf(':'));
        if (found.has(recognizer)) found.set(recognizer, found.get(recognizer)! + 1);
      }
    }
    for (const [recognizer, n] of found) expect(n, recognizer).to.be.at.least(least.get(recognizer)!);
  });
  it('finds what a search finds in parts long enough for the shared pass over their tokens', () => {
    // Parts of more than SHARED_PASS_TOKENS tokens: the labels, context words and health terms are read from the
    // lists of TokenFilters there.
    let checked = 0;
    for (let t = 0; t < 6; t++) {
      let text = 'Patient seen for diabetes follow-up. ';
      while (text.length < 40_000)
        text += pick(first) + pick(between) + pick(second) + pick(between) + pick(values) + pick(between);
      expect(tokenizeWords(text.toLowerCase()).count).to.be.greaterThan(4000);
      const a = sameFindings(text);
      checked += a.length;
    }
    expect(checked).to.be.greaterThan(1000);
  });
});

describe('dlp engine: street names and numbers read back from the number', () => {
  // Pieces that make and break "street name, then house number" in every way: capitals after apostrophes and hyphens,
  // words too long, two blanks, dots, house numbers before the name, units and address words after it.
  const pieces = [
    'Via',
    'delle',
    'Coste',
    'Puruntie',
    'Rua',
    'do',
    'Arenque',
    "O'Neil",
    'Saint-Denis',
    'x-Main',
    "l'Eglise",
    'St.',
    'Mt.',
    'the',
    'in',
    'lives',
    'address',
    'Type',
    'Room',
    'Suite 5',
    'Apt 3B',
    'Unit',
    'a'.repeat(33),
    'B' + 'c'.repeat(31),
    'Ab',
    'ABC',
    '_Main',
    'Main_',
    '12',
    '82',
    '1634',
    '28245',
    '1234567',
    '5th',
    '4B',
    '9a.',
    // Beyond ASCII: capitals, letters and the typographic apostrophe as the pattern reads them (\p{Lu}, \p{L}, ’).
    'Alésia',
    'd’Alésia',
    'Straße',
    'Öland',
    'ÉCOLE',
    'Łódź',
    'Ünter-Öl',
    'é',
    'ſt',
    '’s',
  ];
  const between = [
    ' ',
    ' ',
    ' ',
    ' ',
    ' ',
    '  ',
    '\t',
    ', ',
    '.',
    '\n',
    '\r\n',
    '; ',
    '(',
    ') ',
    '-',
    "'",
    '’',
    ' — ',
    '',
  ];
  const random = randomFrom(7);
  it('finds what a search of the whole text finds, in 600 generated texts', () => {
    let found = 0;
    let foundBeyondAscii = 0;
    for (let t = 0; t < 600; t++) {
      const text = piecesText(random, pieces, between, 10, 50);
      const a = sameFindings(text);
      const named = a.filter((k) => k.startsWith('street-address-named:')).length;
      found += named;
      if (/[^\0-\x7f]/.test(text)) foundBeyondAscii += named;
    }
    // The texts do hold such addresses, in ASCII text and beyond: the comparison is not one of two empty lists.
    expect(found).to.be.greaterThan(50);
    expect(foundBeyondAscii).to.be.greaterThan(20);
  });
});

describe('dlp engine: street-type words read from the ends of word tokens', () => {
  // Type words and compound endings of many languages, beyond ASCII too, whole and inside longer words, with and
  // without their dot, and a letter beyond ASCII after the dot ("str.é" is no "str.").
  const pieces = [
    'Straße',
    'Hauptstraße',
    'str.',
    'str',
    'út',
    'útja',
    'Árpád',
    'tér',
    'náměstí',
    'Nybyvägen',
    'Storgränd',
    'vägen',
    'sokağı',
    'gatvė',
    'Rua',
    'rúa',
    'allée',
    'Allee',
    'praça',
    'Via',
    'ul.',
    'Łódź',
    'Kossuth',
    'utca',
    'é',
    'ß',
    '12',
    '5a',
    '98',
    '1634',
  ];
  const between = [' ', ' ', ' ', '  ', ', ', '.', '.é', '’', '-', '\n', ''];
  const random = randomFrom(13);
  it('finds what a search of the whole text finds, in 800 generated texts', () => {
    let beyondAscii = 0;
    for (let t = 0; t < 800; t++) {
      const text = piecesText(random, pieces, between, 6, 30);
      const a = sameFindings(text);
      if (/[^\0-\x7f]/.test(text))
        beyondAscii += a.filter((k) => k.startsWith('street-address-intl:')).length;
    }
    // Such addresses are in the texts beyond ASCII: the comparison is not one of two empty lists.
    expect(beyondAscii).to.be.greaterThan(300);
  });
});

describe('dlp engine: patterns tried where a run of digits starts', () => {
  it('digitRunsOf reads every run of digits with its length, inside words too', () => {
    const text = 'Ab12cd345 6789-01 é7 x 00 Renée42';
    const part = { id: 'text', text, kind: 'body' as const };
    const lower = part.text.toLowerCase();
    const tokens = tokenizeWords(lower);
    const runs = digitRunsOf(text, tokens, isAscii(lower));
    const got = Array.from({ length: runs.count }, (_, j) => [runs.start[j], runs.length[j]]);
    const want: Array<[number, number]> = [];
    for (const m of text.matchAll(/\d+/g)) want.push([m.index, m[0].length]);
    expect(got).to.deep.equal(want);
  });

  // Runs of digits of every length, next to letters (ASCII and not), hyphens, ages' words and numbers of other
  // scripts: the NDC and age patterns, tried at runs of their length only, find what a search of the whole text finds.
  const pieces = [
    '0002-1234-01',
    '12345-6789-0',
    '1234-567-89',
    '1234-5678',
    '104',
    '95',
    '9',
    '1920',
    '7',
    'x',
    'ab',
    'é',
    'Renée',
    '\u212a',
    '٣',
    '-',
    ' years old',
    ' yo',
    '-year-old',
    ' y/o',
    'NDC ',
  ];
  const between = ['', '', ' ', '-', ', ', '\n', '_'];
  const random = randomFrom(11);
  it('finds what a search of the whole text finds, in 1000 generated texts', () => {
    const counts = new Map<string, number>();
    for (let t = 0; t < 1000; t++) {
      const text = piecesText(random, pieces, between, 4, 30);
      const a = sameFindings(text);
      for (const k of a) {
        const id = k.slice(0, k.indexOf(':'));
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
    // The texts do hold both: the comparison is not one of two empty lists.
    expect(counts.get('ndc-code') ?? 0, 'NDC findings').to.be.greaterThan(50);
    expect(counts.get('age-over-89') ?? 0, 'age findings').to.be.greaterThan(50);
  });
});

describe('dlp engine: codes that need a label, tried at their tokens before the labels are looked for', () => {
  // Billing and diagnosis codes count only within 120 characters of a label. With word tokens the codes are tried
  // first and the labels found only for a candidate; without, the labels are found first and the text searched only
  // when one is there. Codes near labels, far from them (fillers of 60 characters), and labels alone.
  const filler = 'the supply order for the front desk went out on Tuesday and ';
  const pieces = [
    'CPT 99213',
    '90837',
    'procedure code: 0001F',
    'billed as J1100',
    'HCPCS',
    'E0114',
    'Dx: I10',
    'E11.65',
    'ICD-10 F329',
    'zip code 99213',
    'code',
    'D2740',
    filler,
    filler,
    filler,
  ];
  const between = [' ', ', ', ' and ', '\n', '. '];
  const random = randomFrom(17);
  it('finds what the search after the labels finds, in 1500 generated texts', () => {
    const counts = new Map<string, number>();
    for (let t = 0; t < 1500; t++) {
      for (const k of sameFindings(piecesText(random, pieces, between, 1, 12))) {
        const id = k.slice(0, k.indexOf(':'));
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
    for (const id of ['cpt-code', 'hcpcs-code', 'icd10-labelled'])
      expect(counts.get(id) ?? 0, `${id} findings`).to.be.greaterThan(100);
  });
});

describe('dlp engine: token lists (tokenListOf)', () => {
  // What each list holds, read plainly from the text: a token's first character, or its length.
  const plain = (text: string, tokens: WordTokens, kind: TokenList): number[] => {
    const out: number[] = [];
    for (let k = 0; k < tokens.count; k++) {
      const first = text[tokens.start[k]!]!;
      const keep =
        kind === 'digit'
          ? /[0-9]/.test(first)
          : kind === 'upper-digit'
            ? /[A-Z]/.test(first) && /[0-9]/.test(text.slice(tokens.start[k], tokens.end[k]))
            : tokens.end[k]! - tokens.start[k]! >= 9;
      if (keep) out.push(k);
    }
    return out;
  };
  const kinds: TokenList[] = ['digit', 'upper-digit', 'long'];

  it('lists the tokens that start with a digit, with a capital and hold a digit, and those of 9 characters or more', () => {
    const text =
      'Zebra 9lives ABCDEFGHI abcdefgh 12345678 123456789 Éclair @Mark a1 Z9 ’s 0 E11 É11 AB1234563';
    const tokens = tokenizeWords(text.toLowerCase());
    const words = (kind: TokenList) =>
      Array.from(tokenListOf(text, tokens, kind), (k) => text.slice(tokens.start[k], tokens.end[k]));
    expect(words('digit')).to.deep.equal(['9lives', '12345678', '123456789', '0']);
    expect(words('upper-digit')).to.deep.equal(['Z9', 'E11', 'AB1234563']);
    expect(words('long')).to.deep.equal(['ABCDEFGHI', '123456789', 'AB1234563']);
  });

  it('lists withDigit in long parts too, where the token arrays grow (a token every 2 or 3 characters)', () => {
    for (const [unit, times] of [
      ['a1 b ', 40_000],
      ['7 ', 650_000],
    ] as const) {
      const text = unit.repeat(times);
      const tokens = tokenizeWords(text);
      const perUnit = unit === '7 ' ? 1 : 2;
      expect(tokens.count).to.equal(perUnit * times);
      const want = Array.from({ length: times }, (_, i) => i * perUnit);
      expect(Array.from(tokens.withDigit)).to.deep.equal(want);
      expect(Array.from(tokenListOf(text, tokens, 'digit')).length).to.equal(unit === '7 ' ? times : 0);
    }
  });

  const pieces = [
    'A',
    'Z',
    '@',
    '[',
    '`',
    '{',
    '0',
    '9',
    '/',
    ':',
    'abcdefgh',
    'abcdefghi',
    'É',
    'é',
    '٣',
    '-',
    ' ',
    '\n',
    'E1',
    'AB12',
  ];
  const random = randomFrom(23);
  it('matches a plain reading of the text, in 500 generated texts (each list asked first in turn), as do withDigit', () => {
    const total = new Map<TokenList, number>();
    for (let t = 0; t < 500; t++) {
      let text = '';
      for (let i = 0, n = 1 + random(60); i < n; i++) text += pieces[random(pieces.length)]!;
      const tokens = tokenizeWords(text.toLowerCase());
      const withDigit: number[] = [];
      for (let k = 0; k < tokens.count; k++)
        if (/[0-9]/.test(text.slice(tokens.start[k], tokens.end[k]))) withDigit.push(k);
      expect(Array.from(tokens.withDigit), `withDigit of ${JSON.stringify(text)}`).to.deep.equal(withDigit);
      // Lists are made when first asked for and kept for the part: ask in a different order each time.
      const order = [
        kinds[t % 3]!,
        kinds[(t + 1 + ((t >> 2) % 2)) % 3]!,
        kinds[(t + 2 - ((t >> 2) % 2)) % 3]!,
      ];
      for (const kind of order) {
        const got = Array.from(tokenListOf(text, tokens, kind));
        expect(got, `${kind} of ${JSON.stringify(text)}`).to.deep.equal(plain(text, tokens, kind));
        total.set(kind, (total.get(kind) ?? 0) + got.length);
      }
    }
    for (const kind of kinds) expect(total.get(kind) ?? 0, kind).to.be.greaterThan(200);
  });
});

describe('dlp engine: the table of character classes', () => {
  it('holds for every code unit what a test of that code unit alone gives', () => {
    const wrong: string[] = [];
    const counts = [0, 0, 0, 0, 0];
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      const want =
        (/\p{L}/u.test(ch) ? CHAR_LETTER : 0) |
        (/\p{Lu}/u.test(ch) ? CHAR_UPPER : 0) |
        (/\p{M}/u.test(ch) ? CHAR_MARK : 0) |
        (/\p{N}/u.test(ch) ? CHAR_NUMBER : 0) |
        (c >= 0xd800 && c <= 0xdfff ? CHAR_SURROGATE : 0);
      if (charClass(c) !== want) wrong.push(c.toString(16));
      for (let b = 0; b < 5; b++) if ((want & (1 << b)) !== 0) counts[b]!++;
    }
    expect(wrong.slice(0, 20), `${wrong.length} code units differ`).to.deep.equal([]);
    // Each class is there, and large: not a table of zeros compared with zeros.
    for (const n of counts) expect(n).to.be.greaterThan(500);
  });
});

describe('dlp engine: the token-safety test of a part', () => {
  it("gives the regular expression's answer for 100,000 generated strings", () => {
    // ASCII, letters and punctuation beyond it (safe); marks, numbers beyond ASCII, surrogate pairs and lone halves
    // (unsafe): alone, together, at the ends.
    const pool = [
      'a',
      ' ',
      '1',
      '’',
      'é',
      'ß',
      '—',
      'ǅ',
      'Ł',
      '\u0301',
      '\u200d',
      '٣',
      '²',
      'Ⅻ',
      '\u0660',
      '😀',
      '𝟘',
      '\ud800',
      '\udc00',
    ];
    const random = randomFrom(11);
    let unsafe = 0;
    for (let i = 0; i < 100_000; i++) {
      let s = '';
      for (let j = 0, n = random(7); j < n; j++) s += pool[random(pool.length)]!;
      const expected = TOKEN_UNSAFE.test(s);
      expect(tokenUnsafe(s), JSON.stringify(s)).to.equal(expected);
      if (expected) unsafe++;
    }
    // Both answers occur often: not a comparison of two constant answers.
    expect(unsafe).to.be.greaterThan(20_000);
    expect(unsafe).to.be.lessThan(80_000);
  });
});
