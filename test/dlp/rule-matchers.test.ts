// A rule's own keywords and patterns: whole-word, case-insensitive keywords; pattern hits and non-hits; a rule
// with them fires only when one matches; other rules never see them; validation names the rule and the field.
import { expect } from 'chai';
import { Analyzer, parseRuleSet } from '../../dlp/analyzer.js';
import { checkOwnMatchers } from '../../dlp/rule-matchers.js';
import type { PatternRecognizer, TextPart } from '../../dlp/types.js';

const recognizers: PatternRecognizer[] = [
  {
    id: 't-name',
    type: 'PERSON',
    category: 'identifier',
    patterns: [{ name: 'n', regex: /\bAlice Example\b/, score: 0.8 }],
  },
  {
    id: 't-health',
    type: 'MEDICAL_TERM',
    category: 'health',
    patterns: [{ name: 'h', regex: /\bhypertension\b/, score: 0.8 }],
  },
];

function body(text: string, id = 'text'): TextPart {
  return { id, text, kind: 'body' };
}

function analyzer(rules: unknown[], extra: Record<string, unknown> = {}): Analyzer {
  return new Analyzer(parseRuleSet({ version: 1, ...extra, rules }), recognizers);
}

describe('dlp rule keywords and patterns', () => {
  describe('keywords: whole words or phrases, any case', () => {
    const a = analyzer([
      { id: 'study', action: 'quarantine', keywords: ['Project Nightingale', 'NGL-7', 'oncology trial'] },
    ]);
    const table: Array<[string, string, boolean]> = [
      ['exact phrase', 'Status of Project Nightingale, please.', true],
      ['upper case', 'PROJECT NIGHTINGALE kickoff', true],
      ['lower case, line break inside the phrase', 'about project\nnightingale today', true],
      ['keyword with a dash, after punctuation', '(NGL-7) enrolment', true],
      ['at the very start and end', 'oncology trial', true],
      ['inside a longer word', 'Project Nightingales are birds', false],
      ['prefixed by letters', 'superproject nightingale', false],
      ['part of a phrase only', 'a nightingale sang in the project room', false],
      ['keyword followed by a digit', 'NGL-77 is a different code', false],
      ['keyword preceded by a digit', '9oncology trial', false],
      ['similar but different', 'oncology trials and oncology-trial', false],
      ['nothing at all', 'Lunch at noon?', false],
    ];
    for (const [name, text, fires] of table)
      it(`${fires ? 'fires' : 'does not fire'}: ${name}`, () => {
        const v = a.analyze([body(text)]);
        expect(v.rules).to.deep.equal(fires ? ['study'] : []);
        expect(v.action).to.equal(fires ? 'quarantine' : 'clean');
      });
  });

  describe('patterns: hits and non-hits', () => {
    const a = analyzer([
      {
        id: 'codes',
        patterns: [
          { name: 'study id', regex: 'STUDY-\\d{4,6}\\b' },
          { name: 'ticket', regex: '\\bTCK[0-9]{6}\\b', flags: 'i', score: 0.7 },
        ],
      },
    ]);
    const table: Array<[string, string, boolean]> = [
      ['study id', 'see STUDY-12345 notes', true],
      ['ticket, lower case (flag i)', 'ref tck123456', true],
      ['ticket, upper case', 'TCK000001 closed', true],
      ['study id in lower case (no flag i)', 'see study-12345 notes', false],
      ['study id too short', 'STUDY-123 notes', false],
      ['study id too long', 'STUDY-1234567 notes', false],
      ['ticket inside a longer token', 'XTCK123456', false],
      ['ticket with too few digits', 'TCK12345', false],
      ['no code', 'quarterly study results', false],
    ];
    for (const [name, text, fires] of table)
      it(`${fires ? 'hits' : 'misses'}: ${name}`, () => {
        expect(a.analyze([body(text)]).rules).to.deep.equal(fires ? ['codes'] : []);
      });

    it('makes RULE_PATTERN findings with positions, the score and the rule id, and never the text', () => {
      const v = a.analyze([body('ref tck123456 and STUDY-1234')]);
      const found = v.findings.filter((f) => f.category === 'rule');
      expect(found.map((f) => [f.type, f.start, f.end, f.score, f.rule, f.recognizer])).to.have.deep.members([
        ['RULE_PATTERN', 4, 13, 0.7, 'codes', 'rule:codes/pattern:ticket'],
        ['RULE_PATTERN', 18, 28, 1, 'codes', 'rule:codes/pattern:study id'],
      ]);
      expect(v.explanation[0]).to.deep.include({
        rule: 'codes',
        findingTypes: ['RULE_PATTERN'],
        parts: ['text'],
      });
      expect(JSON.stringify(v)).not.to.match(/tck123456|STUDY-1234/);
    });
  });

  describe('how they combine with conditions', () => {
    const a = analyzer([
      // Keyword and condition: both needed.
      { id: 'kw-and-health', keywords: ['bluebird'], conditions: [{ any: ['@health'] }] },
      // A condition that uses the rule's own findings.
      {
        id: 'kw-near-name',
        keywords: ['cohort'],
        conditions: [{ near: [['@rule'], ['PERSON']], window: 30 }],
      },
      // Another rule's conditions never see them.
      { id: 'any-rule-finding', conditions: [{ any: ['@rule', 'RULE_KEYWORD', 'RULE_PATTERN'] }] },
    ]);
    const table: Array<[string, string, string[]]> = [
      ['keyword with a health term', 'bluebird patient with hypertension', ['kw-and-health']],
      ['health term without the keyword', 'hypertension follow-up', []],
      ['keyword without a health term', 'the bluebird budget', []],
      ['own keyword near a name', 'cohort: Alice Example', ['kw-near-name']],
      ['own keyword far from a name', `cohort ${'x '.repeat(40)} Alice Example`, []],
      ['a name without the keyword', 'Alice Example', []],
    ];
    for (const [name, text, rules] of table)
      it(name, () => {
        expect(a.analyze([body(text)]).rules).to.deep.equal(rules);
      });

    it('the rule fires on its keyword in the subject as well as in an attachment part', () => {
      const v = a.analyze([
        { id: 'subject', kind: 'subject', text: 'Bluebird' },
        body('hypertension', 'attachment:1'),
      ]);
      expect(v.rules).to.deep.equal(['kw-and-health']);
    });

    it('a disabled rule does not fire and its keywords are not looked for', () => {
      const b = analyzer([
        { id: 'off', enabled: false, keywords: ['bluebird'] },
        { id: 'on', keywords: ['robin'] },
      ]);
      const v = b.analyze([body('bluebird robin')]);
      expect(v.rules).to.deep.equal(['on']);
      expect(v.findings.filter((f) => f.category === 'rule')).to.have.length(1);
    });

    it('two rules with the same keyword both fire: their findings never cancel out', () => {
      const b = analyzer([
        { id: 'one', action: 'log', keywords: ['bluebird'] },
        { id: 'two', action: 'block', keywords: ['project bluebird'] },
      ]);
      const v = b.analyze([body('the project bluebird file')]);
      expect(v.rules).to.deep.equal(['one', 'two']);
      expect(v.action).to.equal('block');
    });

    it('a monitor-only keyword rule records without acting; the allow-list still wins', () => {
      const b = analyzer([{ id: 'watch', monitorOnly: true, keywords: ['bluebird', 'robin'] }], {
        allow: ['robin'],
      });
      expect(b.analyze([body('bluebird')])).to.deep.include({ phi: false, monitored: ['watch'] });
      expect(b.analyze([body('robin')]).monitored).to.deep.equal([]);
    });

    it('a pattern scoring below the rule minScore does not count', () => {
      const b = analyzer([
        { id: 'low', minScore: 0.8, patterns: [{ name: 'p', regex: 'ZZ\\d{3}', score: 0.5 }] },
      ]);
      expect(b.analyze([body('ZZ123')]).rules).to.deep.equal([]);
    });
  });

  describe('validation names the rule and the field', () => {
    const rule = (extra: Record<string, unknown>) => ({ version: 1, rules: [{ id: 'r1', ...extra }] });
    const good: Array<[string, Record<string, unknown>]> = [
      ['keywords only', { keywords: ['Project Nightingale'] }],
      ['patterns only', { patterns: [{ name: 'id', regex: 'AB\\d{6}' }] }],
      [
        'pattern with flag i and a score',
        { patterns: [{ name: 'id', regex: 'ab\\d{6}', flags: 'i', score: 0.6 }] },
      ],
      ['keywords with conditions', { keywords: ['x1'], conditions: [{ any: ['@health'] }] }],
    ];
    const bad: Array<[string, Record<string, unknown>, RegExp]> = [
      [
        'no condition, keyword or pattern',
        {},
        /rules\.0\.conditions: rule "r1": give at least one condition/,
      ],
      [
        'an empty keyword',
        { keywords: ['ok', '  '] },
        /rules\.0\.keywords\.1: rule "r1": keyword 2 is empty/,
      ],
      ['a one-letter keyword', { keywords: ['a'] }, /rules\.0\.keywords\.0: .*shorter than 2/],
      ['a keyword of punctuation only', { keywords: ['--'] }, /keywords\.0: .*letter or a digit/],
      ['a keyword too long', { keywords: ['x'.repeat(101)] }, /keywords\.0: .*longer than 100/],
      [
        'too many keywords',
        { keywords: Array.from({ length: 201 }, (_, i) => `k${i}`) },
        /keywords: .*at most 200/,
      ],
      [
        'a nested quantifier',
        { patterns: [{ name: 'p', regex: '(a+)+$' }] },
        /rules\.0\.patterns\.0\.regex: rule "r1", pattern "p": refused: .*nested/,
      ],
      [
        'an unbounded repetition',
        { patterns: [{ name: 'p', regex: 'ID-\\d+' }] },
        /patterns\.0\.regex: .*upper bound/,
      ],
      ['a flag other than i', { patterns: [{ name: 'p', regex: 'x1', flags: 'g' }] }, /patterns\.0\.flags/],
      [
        'a pattern that matches empty text',
        { patterns: [{ name: 'p', regex: 'x?' }] },
        /patterns\.0\.regex: .*empty text/,
      ],
      [
        'a pattern that does not compile',
        { patterns: [{ name: 'p', regex: '[a-' }] },
        /patterns\.0\.regex: .*not a valid/,
      ],
      [
        'a duplicate pattern name',
        {
          patterns: [
            { name: 'p', regex: 'x1' },
            { name: 'p', regex: 'x2' },
          ],
        },
        /patterns\.1\.name: .*used twice/,
      ],
      ['a pattern name with a colon', { patterns: [{ name: 'a:b', regex: 'x1' }] }, /patterns\.0\.name/],
      [
        'an unknown pattern key',
        { patterns: [{ name: 'p', regex: 'x1', global: true }] },
        /unknown key\(s\) global/,
      ],
    ];
    for (const [name, extra] of good)
      it(`accepts ${name}`, () => expect(() => parseRuleSet(rule(extra))).not.to.throw());
    for (const [name, extra, message] of bad)
      it(`refuses ${name}`, () => expect(() => parseRuleSet(rule(extra))).to.throw(message));

    it('checkOwnMatchers returns paths inside the rule', () => {
      expect(
        checkOwnMatchers({ id: 'r', keywords: ['ok'], patterns: [{ name: 'p', regex: '(a|aa)+' }] }),
      ).to.deep.equal([
        {
          path: ['patterns', 0, 'regex'],
          message:
            'rule "r", pattern "p": refused: a repeated group has alternatives that can match the same text, like (a|aa)+ (use a character class, or literal alternatives that start differently)',
        },
      ]);
    });
  });

  it('scans a megabyte of adversarial text with keywords and patterns quickly', () => {
    const a = analyzer([
      {
        id: 'k',
        keywords: ['aaa aaa', 'zzz'],
        patterns: [
          { name: 'p', regex: '[a ]{1,50}X' },
          { name: 'q', regex: '\\d{1,20}Y' },
        ],
      },
    ]);
    for (const text of ['a '.repeat(512 * 1024), '1'.repeat(1024 * 1024)]) {
      const started = performance.now();
      a.analyze([body(text)]);
      expect(performance.now() - started).to.be.below(5000);
    }
  });
});
