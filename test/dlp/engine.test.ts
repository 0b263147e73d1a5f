// The engine's overlap resolution: which of two findings on the same text survives, and in what order they come out.
// It must never drop a finding that nothing of its own part and category covers.
import { expect } from 'chai';
import { resolveOverlaps } from '../../dlp/engine.js';
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
