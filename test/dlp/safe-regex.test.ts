// Admin-supplied patterns (MRN formats, rules' own patterns): safe ones pass, ones that can backtrack
// catastrophically, repeat without bound or match empty text are refused.
import { expect } from 'chai';
import { checkPatternSafety, checkRulePattern } from '../../dlp/safe-regex.js';

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

describe('dlp safe-regex: rule patterns (stricter: bounded, non-empty, timed)', () => {
  const good = [
    'STUDY-\\d{4,6}',
    '\\bTCK[0-9]{6}\\b',
    '(?:MRN|MR)-\\d{5,8}',
    '(?:foo|bar){1,3}-\\d{2}',
    '\\p{Lu}{2}\\d{6}',
    '[A-Z]{2}\\d{6}',
    '\\d{3}-\\d{2}-\\d{4}',
    '(?<code>BB)-\\d{3}',
  ];
  const evil: Array<[string, RegExp]> = [
    ['(a+)+$', /nested quantifiers/],
    ['(a|aa)+', /alternatives that can match the same text/],
    ['(a|a)*', /alternatives that can match the same text/],
    ['(?:ab|ac){1,9}', /alternatives that can match the same text/],
    ['(?:\\d|x){2,9}', /alternatives that can match the same text/],
    ['(.*a){10}', /nested quantifiers/],
    ['(a*)*', /nested quantifiers/],
    ['(?:\\w{1,5}\\s?){1,9}$', /nested quantifiers/],
    ['(x{1,3}x{1,3}){1,9}y', /nested quantifiers/],
    ['([a-z]{1,9}\\.){1,9}com', /nested quantifiers/],
    ['(a)\\1', /back-references/],
    ['(?<x>a)\\k<x>', /back-references/],
    ['(?=a)a', /lookarounds/],
    ['(?<!a)b', /lookarounds/],
    ['ID-\\d+', /upper bound/],
    ['\\w*@clinic', /upper bound/],
    ['x{2,}', /upper bound/],
    ['\\d{1,500}', /count above 100/],
    ['\\w{1,100}\\d{1,100}\\s{1,100}X', /multiply to 1000000 ways/],
    ['[a-z]{1,20}\\d{1,20}', /multiply to 400 ways/],
    ['(?:a|b|c|d|e)(?:f|g|h|i|j)(?:k|l|m|n|o)(?:p|q|r)', /multiply to 375 ways/],
    ['x?', /empty text/],
    ['\\b', /empty text/],
    ['^', /empty text/],
    ['(?:)', /empty text/],
    ['[a-', /not a valid/],
    ['(?i)abc', /not a valid/],
    ['a'.repeat(301), /longer than/],
  ];
  for (const p of good) it(`accepts ${p}`, () => expect(checkRulePattern(p)).to.equal(null));
  it('accepts the flag i and refuses any other', () => {
    expect(checkRulePattern('ab\\d{2}', 'i')).to.equal(null);
    expect(checkRulePattern('ab\\d{2}', 'g')).to.match(/only flag allowed is 'i'/);
  });
  it('judges literal alternatives with the flag i case-insensitively', () => {
    expect(checkRulePattern('(?:A|b){1,9}')).to.equal(null);
    expect(checkRulePattern('(?:A|a){1,9}', 'i')).to.match(/alternatives/);
  });
  for (const [p, why] of evil)
    it(`refuses ${p.slice(0, 30)}`, () => expect(checkRulePattern(p)).to.match(why));
  it('the MRN check no longer mistakes (?: for a repetition, nor \\p{…} for a count', () => {
    expect(checkPatternSafety('(?:MR)+\\d{4}')).to.equal(null);
    expect(checkPatternSafety('(\\p{Lu})+')).to.equal(null);
  });
});
