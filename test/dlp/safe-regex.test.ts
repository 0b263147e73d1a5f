// Admin-supplied patterns: safe ones pass, ones that can backtrack catastrophically are refused.
import { expect } from 'chai';
import { checkPatternSafety } from '../../dlp/safe-regex.js';

describe('dlp safe-regex', () => {
  const safe = [
    'MR-\\d{7}',
    '[A-Z]{2}\\d{6}',
    'OAK\\d{4}-\\d{2}',
    '(?:MRN|MR)\\d{5,8}',
    'P\\d+',
    '[A-Z]{3}-(?:\\d{3}|\\d{4})',
  ];
  const unsafe: Array<[string, RegExp]> = [
    ['(\\d+)+X', /nested quantifiers/],
    ['(a*)*', /nested quantifiers/],
    ['(?:\\w+\\s?)+$', /nested quantifiers/],
    ['(x+x+)+y', /nested quantifiers/],
    ['.*.*=.*', /quadratic/],
    ['(a)\\1', /back-references/],
    ['(?=a)a', /lookarounds/],
    ['[unterminated', /not a valid regular expression/],
    ['a'.repeat(301), /longer than/],
  ];
  for (const p of safe) it(`accepts ${p}`, () => expect(checkPatternSafety(p)).to.equal(null));
  for (const [p, why] of unsafe)
    it(`refuses ${p.slice(0, 30)}`, () => expect(checkPatternSafety(p)).to.match(why));
});
