// Rule evaluation on controlled findings: any/near conditions, the subject pairing with every part,
// minimum scores and counts, monitor-only, actions, allow- and deny-lists, organisation MRN formats.
import { expect } from 'chai';
import { Analyzer, parseRuleSet } from '../../dlp/analyzer.js';
import type { PatternRecognizer, TextPart } from '../../dlp/types.js';

// Test recognizers with obvious markers, so the rules are tested and not the detectors.
const recognizers: PatternRecognizer[] = [
  {
    id: 't-strong',
    type: 'STRONG_ID',
    category: 'strong',
    patterns: [{ name: 's', regex: /\bSID-\d{4}\b/, score: 0.9 }],
  },
  {
    id: 't-weak',
    type: 'WEAK_ID',
    category: 'strong',
    patterns: [{ name: 'w', regex: /\bWID-\d{4}\b/, score: 0.3 }],
  },
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
  {
    id: 't-care',
    type: 'CARE_CONTEXT',
    category: 'care',
    patterns: [{ name: 'c', regex: /\bappointment\b/, score: 0.6 }],
  },
];

function makeRules(extra: Record<string, unknown> = {}, rules?: unknown[]) {
  return parseRuleSet({
    version: 1,
    ...extra,
    rules: rules ?? [
      {
        id: 'strong-care',
        action: 'protect',
        minScore: 0.6,
        conditions: [{ any: ['@strong'] }, { any: ['@health', '@care'] }],
      },
      {
        id: 'near-health',
        action: 'protect',
        conditions: [{ near: [['@identifier', '@strong'], ['@health']], window: 50 }],
      },
      { id: 'deny', action: 'block', conditions: [{ any: ['@deny'] }] },
    ],
  });
}

function body(text: string, id = 'text'): TextPart {
  return { id, text, kind: 'body' };
}

describe('dlp rules', () => {
  const table: Array<[string, TextPart[], boolean, string[]]> = [
    ['strong id with care context', [body('SID-1234 has an appointment')], true, ['strong-care']],
    ['strong id without care context', [body('SID-1234 for payroll')], false, []],
    ['weak-scoring strong id below minScore', [body('WID-1234 has an appointment')], false, []],
    ['name near a health term', [body('Alice Example is treated for hypertension')], true, ['near-health']],
    ['name far from a health term', [body(`Alice Example. ${'x '.repeat(60)} hypertension`)], false, []],
    [
      'name and health term in different body parts',
      [body('Alice Example'), body('hypertension', 'attachment:1')],
      false,
      [],
    ],
    [
      'name in the subject, health term in the body',
      [{ id: 'subject', text: 'Alice Example', kind: 'subject' }, body('hypertension follow-up')],
      true,
      ['near-health'],
    ],
    ['health term alone', [body('hypertension is common')], false, []],
    ['name alone', [body('call Alice Example')], false, []],
    ['nothing at all', [body('lunch at noon')], false, []],
  ];
  const analyzer = new Analyzer(makeRules(), recognizers);
  for (const [name, parts, phi, rules] of table) {
    it(`${phi ? 'PHI' : 'clean'}: ${name}`, () => {
      const v = analyzer.analyze(parts);
      expect(v.phi).to.equal(phi);
      expect(v.rules).to.deep.equal(rules);
      expect(v.action).to.equal(phi ? 'protect' : 'clean');
    });
  }

  it('explains a verdict with rule ids, types and parts, and never the matched text', () => {
    const v = analyzer.analyze([body('Alice Example is treated for hypertension')]);
    expect(v.explanation).to.have.length(1);
    expect(v.explanation[0]).to.include({ rule: 'near-health', action: 'protect', monitorOnly: false });
    expect(v.explanation[0]!.findingTypes).to.deep.equal(['MEDICAL_TERM', 'PERSON']);
    expect(JSON.stringify(v)).not.to.contain('Alice');
    expect(JSON.stringify(v)).not.to.contain('hypertension');
    const person = v.findings.find((f) => f.type === 'PERSON')!;
    expect([person.start, person.end, person.rule]).to.deep.equal([0, 13, 'near-health']);
  });

  it('records a monitor-only rule without acting on it', () => {
    const rules = makeRules({}, [
      { id: 'watch', monitorOnly: true, action: 'block', conditions: [{ any: ['PERSON'] }] },
    ]);
    const v = new Analyzer(rules, recognizers).analyze([body('Alice Example')]);
    expect(v.phi).to.equal(false);
    expect(v.action).to.equal('clean');
    expect(v.monitored).to.deep.equal(['watch']);
    expect(v.explanation[0]).to.include({ rule: 'watch', monitorOnly: true });
  });

  it('takes the strongest action of the rules that fired, and skips disabled rules', () => {
    const rules = makeRules({}, [
      { id: 'p', action: 'protect', conditions: [{ any: ['PERSON'] }] },
      { id: 'q', action: 'quarantine', conditions: [{ any: ['MEDICAL_TERM'] }] },
      { id: 'b', action: 'block', enabled: false, conditions: [{ any: ['PERSON'] }] },
      { id: 'l', action: 'log', conditions: [{ any: ['CARE_CONTEXT'] }] },
    ]);
    const v = new Analyzer(rules, recognizers).analyze([body('Alice Example hypertension appointment')]);
    expect(v.action).to.equal('quarantine');
    expect(v.rules).to.deep.equal(['p', 'q', 'l']);
    const logOnly = new Analyzer(rules, recognizers).analyze([body('appointment')]);
    expect(logOnly).to.include({ phi: false, action: 'log' });
  });

  it('counts minCount findings', () => {
    const rules = makeRules({}, [{ id: 'two', conditions: [{ any: ['STRONG_ID'], minCount: 2 }] }]);
    const a = new Analyzer(rules, recognizers);
    expect(a.analyze([body('SID-1111')]).phi).to.equal(false);
    expect(a.analyze([body('SID-1111 SID-2222')]).phi).to.equal(true);
  });

  it('never counts allow-listed values, however they are punctuated', () => {
    const a = new Analyzer(makeRules({ allow: ['sid 1234'] }), recognizers);
    expect(a.analyze([body('SID-1234 has an appointment')]).phi).to.equal(false);
    expect(a.analyze([body('SID-9999 has an appointment')]).phi).to.equal(true);
  });

  it('always counts deny-listed terms as whole words, case-insensitively', () => {
    const a = new Analyzer(makeRules({ deny: ['Project Bluebird'] }), recognizers);
    const v = a.analyze([body('Notes on project  BLUEBIRD attached')]);
    expect(v).to.include({ phi: true, action: 'block' });
    expect(a.analyze([body('the bluebirds sang')]).phi).to.equal(false);
  });

  it('uses organisation MRN formats as strong identifiers', () => {
    const a = new Analyzer(makeRules({ mrnFormats: ['OAK-\\d{6}'] }), recognizers);
    const v = a.analyze([body('OAK-123456 has an appointment')]);
    expect(v.phi).to.equal(true);
    expect(v.findings.some((f) => f.type === 'MRN')).to.equal(true);
    expect(a.analyze([body('OAK-12345 has an appointment')]).phi).to.equal(false);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    [
      'unknown key in a rule',
      { version: 1, rules: [{ id: 'a', conditons: [] }] },
      /unknown key\(s\) conditons/,
    ],
    [
      'bad selector',
      { version: 1, rules: [{ id: 'a', conditions: [{ any: ['@nonsense'] }] }] },
      /rules\.0\.conditions\.0/,
    ],
    [
      'bad action',
      { version: 1, rules: [{ id: 'a', action: 'explode', conditions: [{ any: ['PERSON'] }] }] },
      /rules\.0\.action/,
    ],
    [
      'duplicate ids',
      {
        version: 1,
        rules: [
          { id: 'a', conditions: [{ any: ['PERSON'] }] },
          { id: 'a', conditions: [{ any: ['PERSON'] }] },
        ],
      },
      /used twice/,
    ],
    [
      'catastrophic MRN format',
      { version: 1, mrnFormats: ['(\\d+)+X'], rules: [{ id: 'a', conditions: [{ any: ['PERSON'] }] }] },
      /nested quantifiers/,
    ],
    ['no rules', { version: 1, rules: [] }, /rules/],
    ['wrong version', { version: 2, rules: [{ id: 'a', conditions: [{ any: ['PERSON'] }] }] }, /version/],
  ];
  for (const [name, input, message] of invalid) {
    it(`refuses rules with ${name}, saying where`, () => {
      expect(() => parseRuleSet(input)).to.throw(message);
    });
  }
});
