// The tester's in-place highlighting and recipient parsing: every byte of the admin's input escaped,
// findings wrapped once (overlaps share a mark), positions kept, nothing lost around the marks.
import { expect } from 'chai';
import type { Finding } from '../../dlp/types.js';
import { highlight, parseRecipients } from '../../web/rules-tester.js';

const f = (
  type: string,
  start: number,
  end: number,
  rule: string | null,
  part = 'text',
): Finding & { rule: string | null } => ({
  type,
  category: 'identifier',
  part,
  start,
  end,
  score: 0.9,
  recognizer: 'test',
  rule,
});

describe('web/rules-tester highlight', () => {
  const text = 'Dear <b>Ann Lee</b> & "co": SSN 536-22-8741.';
  const part = { id: 'text', kind: 'body' as const, text };
  const at = (s: string) => [text.indexOf(s), text.indexOf(s) + s.length] as const;

  it('escapes everything and wraps a counted finding with its type', () => {
    const [s, e] = at('536-22-8741');
    const out = highlight(part, [f('US_SSN', s, e, 'strong-identifier-in-care')]).value;
    expect(out).to.equal(
      'Dear &#60;b&#62;Ann Lee&#60;/b&#62; &#38; &#34;co&#34;: SSN <mark class="finding counted" title="US_SSN (rule strong-identifier-in-care)"><span class="finding-type">US_SSN</span>536-22-8741</mark>.',
    );
  });

  it('marks uncounted findings differently and leaves other parts and zero-length flags out', () => {
    const [s, e] = at('Ann Lee');
    const out = highlight(part, [
      f('PERSON', s, e, null),
      f('IMAGE_ATTACHMENT', 0, 0, 'image-attachment'),
      f('US_SSN', 0, 4, 'x', 'subject'),
    ]).value;
    expect(out.match(/<mark/g)).to.have.length(1);
    expect(out).to.contain(
      '<mark class="finding" title="PERSON (no rule counted it)"><span class="finding-type">PERSON</span>Ann Lee</mark>',
    );
  });

  it('puts overlapping findings in one mark with every type, counted first', () => {
    const [s, e] = at('Ann Lee');
    const out = highlight(part, [f('PERSON', s + 4, e, null), f('DENY_TERM', s, e, 'deny-list')]).value;
    expect(out.match(/<mark/g)).to.have.length(1);
    expect(out).to.contain('<span class="finding-type">DENY_TERM · PERSON</span>Ann Lee</mark>');
  });

  it('keeps the text around adjacent marks intact', () => {
    const t = { id: 'text', kind: 'body' as const, text: 'abcdef' };
    const out = highlight(t, [f('A', 0, 2, null), f('B', 2, 4, 'r')]).value.replace(/<[^>]+>/g, '|');
    expect(out.replace(/\|+[A-Z]\|+/g, '|').replace(/\|/g, '')).to.equal('abcdef');
  });
});

describe('web/rules-tester parseRecipients', () => {
  const cases: Array<[string, string[]]> = [
    ['a@x.org, b@y.com; c@z.net', ['a@x.org', 'b@y.com', 'c@z.net']],
    ['<A@X.org>\nA@x.org', ['a@x.org']],
    ['', []],
    ['not-an-address', []],
    ['@x.org', []],
    ['a@localhost', []],
  ];
  for (const [input, want] of cases)
    it(JSON.stringify(input), () => expect(parseRecipients(input)).to.deep.equal(want));
});
