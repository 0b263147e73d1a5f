// The LCS line diff behind the rule versions page: a table of cases, each checked both ways (the diff
// rebuilds the old and the new text) and against the expected operations.
import { expect } from 'chai';
import { hunks, lineDiff } from '../../web/line-diff.js';

const ops = (a: string, b: string) => lineDiff(a, b).map((d) => `${d.op}${d.text}`);

describe('web/line-diff', () => {
  const cases: Array<[string, string, string, string[]]> = [
    ['identical', 'a\nb\n', 'a\nb\n', [' a', ' b']],
    ['both empty', '', '', []],
    ['all added', '', 'a\nb', ['+a', '+b']],
    ['all removed', 'a\nb', '', ['-a', '-b']],
    ['one changed in the middle', 'a\nb\nc', 'a\nx\nc', [' a', '-b', '+x', ' c']],
    ['inserted line', 'a\nc', 'a\nb\nc', [' a', '+b', ' c']],
    ['deleted line', 'a\nb\nc', 'a\nc', [' a', '-b', ' c']],
    ['moved line', 'a\nb\nc', 'b\nc\na', ['-a', ' b', ' c', '+a']],
    ['CRLF equals LF', 'a\r\nb\r\n', 'a\nb\n', [' a', ' b']],
    ['no final newline', 'a\nb', 'a\nb\n', [' a', ' b']],
  ];
  for (const [name, a, b, want] of cases) {
    it(name, () => {
      expect(ops(a, b)).to.deep.equal(want);
      const d = lineDiff(a, b);
      const norm = (t: string) =>
        t
          .replace(/\r\n/g, '\n')
          .replace(/\n$/, '')
          .split('\n')
          .filter((_, i, l) => l.length > 1 || l[0] !== '');
      expect(d.filter((x) => x.op !== '+').map((x) => x.text)).to.deep.equal(norm(a));
      expect(d.filter((x) => x.op !== '-').map((x) => x.text)).to.deep.equal(norm(b));
    });
  }

  it('numbers lines in both texts', () => {
    const d = lineDiff('a\nb\nc', 'a\nx\nc');
    expect(d.map((x) => [x.oldLine ?? null, x.newLine ?? null])).to.deep.equal([
      [1, 1],
      [2, null],
      [null, 2],
      [3, 3],
    ]);
  });

  it('keeps a few lines of context around each change and marks the gaps', () => {
    const a = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
    const b = a.replace('line 3\n', 'line three\n').replace('line 25\n', 'line twenty-five\n');
    const h = hunks(lineDiff(a, b), 2);
    expect(h.filter((x) => x === null)).to.have.length(1);
    expect(h.filter((x) => x !== null && x.op !== ' ')).to.have.length(4);
    expect(h.length).to.equal(4 + 1 + 8);
  });

  it('falls back to a full replacement beyond the size budget, still rebuilding both texts', () => {
    const a = Array.from({ length: 2100 }, (_, i) => `a${i}`).join('\n');
    const b = Array.from({ length: 2100 }, (_, i) => `b${i}`).join('\n');
    const d = lineDiff(a, b);
    expect(d.filter((x) => x.op === '-')).to.have.length(2100);
    expect(d.filter((x) => x.op === '+')).to.have.length(2100);
  });
});
