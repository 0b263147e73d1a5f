// The rule editor's line formats for a rule's own keywords and patterns: written and read back the same,
// bad lines reported with their numbers.
import { expect } from 'chai';
import { formatPatternLines, parseKeywordLines, parsePatternLines } from '../../web/rule-lines.js';

describe('web/rule-lines', () => {
  it('writes patterns one per line and reads them back the same', () => {
    const patterns = [
      { name: 'study-id', regex: 'NGL-\\d{4,6}\\b' },
      { name: 'ticket', regex: 'TCK\\d{6}', flags: 'i' as const, score: 0.8 },
      { name: 'url part', regex: 'https://x\\.example/\\d{2}' },
      { name: 'scored', regex: 'S\\d{2}', score: 1 },
    ];
    const text = formatPatternLines(patterns);
    expect(text).to.equal(
      'study-id: NGL-\\d{4,6}\\b\nticket (i, 0.8): TCK\\d{6}\nurl part: https://x\\.example/\\d{2}\nscored (1): S\\d{2}',
    );
    expect(parsePatternLines(text)).to.deep.equal({ patterns, lines: [1, 2, 3, 4], errors: [] });
  });

  const bad: Array<[string, number, RegExp]> = [
    ['no colon', 1, /write the name, a colon and the pattern/],
    [': no name', 1, /write the name/],
    ['name:   ', 1, /write the name/],
    ['ok: x1\n\nname (g): x', 3, /unknown option "g"/],
    ['name (1.5): x', 1, /unknown option "1.5"/],
    ['name (i, high): x', 1, /unknown option "high"/],
  ];
  for (const [text, line, message] of bad)
    it(`reports line ${line} of ${JSON.stringify(text)}`, () => {
      const got = parsePatternLines(text);
      expect(got.errors).to.have.length(1);
      expect(got.errors[0]!.line).to.equal(line);
      expect(got.errors[0]!.message).to.match(message);
    });

  it('reads keywords one per line, skipping blank lines, with their line numbers', () => {
    expect(parseKeywordLines('  Project Nightingale \r\n\nNGL-7\n')).to.deep.equal({
      keywords: ['Project Nightingale', 'NGL-7'],
      lines: [1, 3],
    });
  });
});
