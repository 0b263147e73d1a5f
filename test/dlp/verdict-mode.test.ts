// The analyzer's 'verdict' mode (recognizers in phases, stopping once no rule can fire) against 'all' (every
// recognizer): the same verdict for every rule set and text, and the same findings whenever a rule fired.
import { expect } from 'chai';
import { Analyzer, parseRuleSet } from '../../dlp/analyzer.js';
import { compileRecognizers, emitsOf, PartScan } from '../../dlp/engine.js';
import { builtinRecognizers } from '../../dlp/recognizers/index.js';
import { simpleParser } from 'mailparser';
import { PARSE_OPTIONS } from '../../gateway/pipeline.js';
import { loadAnalyzer, DEFAULT_RULES_FILE, RulesSource } from '../../gateway/rules.js';
import { DlpScanner } from '../../gateway/scan.js';
import type { CustomRecognizer, Finding, TextPart, Verdict } from '../../dlp/types.js';
import { randomFrom } from '../support/random.js';

// Pieces of mail: office chatter, and each kind of finding the recognizers make.
const PIECES = [
  'Please confirm the supply order for gloves and masks by Friday.',
  'The printer on the second floor needs toner again.',
  'Staff meeting moves to room 4B; the agenda is attached.',
  'Her appointment is on Tuesday at 10am.',
  'The patient called about the billing statement.',
  'Insurance claim forms are in the front desk tray.',
  'Maria Gonzalez',
  'Dear Mr. Okafor,',
  'Sophia Johnson',
  'SSN 219-09-9999',
  'MRN: 00482913',
  'Member ID: XJH448812301',
  'DOB 04/12/1961',
  'call (555) 201-3344',
  'lives at 42 Maple Street, Springfield, IL 62704',
  'mail to jo.example@example.org',
  'diagnosed with type 2 diabetes',
  'started lisinopril 10 mg daily',
  'A1c 7.9%',
  'ICD-10 E11.9',
  'CDT code D2740 for tooth #3',
  'Project Nightingale',
  'bluebird',
  'MSH|^~\\&|EPIC|HOSP|LAB|HOSP|202401011200||ADT^A01|123|P|2.5\rPID|1||12345^^^HOSP^MR||DOE^JOHN||19600101|M',
];

const SELECTORS = [
  '@strong',
  '@identifier',
  '@health',
  '@care',
  '@payload',
  '@deny',
  '@attachment',
  '@rule',
  'US_SSN',
  'PERSON',
  'CONDITION',
  'CARE_CONTEXT',
  'PHONE_NUMBER',
  'MRN',
  'STREET_ADDRESS',
  'DATE_OF_BIRTH',
  'HL7_V2',
  'DENY_TERM',
  'IMAGE_ATTACHMENT',
  'RULE_KEYWORD',
  'NO_SUCH_TYPE',
];

function someOf(random: (n: number) => number, list: readonly string[], most: number): string[] {
  const out = new Set<string>();
  for (let i = 0, n = 1 + random(most); i < n; i++) out.add(list[random(list.length)]!);
  return [...out];
}

function randomRuleSet(random: (n: number) => number): unknown {
  const actions = ['protect', 'quarantine', 'block', 'log'];
  const rules = [];
  for (let r = 0, n = 1 + random(4); r < n; r++) {
    const conditions = [];
    for (let c = 0, m = random(4); c < m; c++)
      conditions.push(
        random(2) === 0
          ? {
              any: someOf(random, SELECTORS, 3),
              minCount: 1 + random(3),
              ...(random(4) === 0 ? { minScore: 0.8 } : {}),
            }
          : { near: [someOf(random, SELECTORS, 2), someOf(random, SELECTORS, 2)], window: 10 + random(400) },
      );
    const keywords = random(4) === 0 || conditions.length === 0 ? { keywords: ['bluebird'] } : {};
    rules.push({
      id: `r${r}`,
      action: actions[random(actions.length)],
      enabled: random(10) !== 0,
      monitorOnly: random(5) === 0,
      minScore: [0.3, 0.5, 0.7][random(3)],
      conditions,
      ...keywords,
    });
  }
  return {
    version: 1,
    deny: random(2) === 0 ? ['nightingale'] : [],
    allow: random(3) === 0 ? ['(555) 201-3344'] : [],
    rules,
  };
}

function randomParts(random: (n: number) => number): TextPart[] {
  const text = (k: number): string => {
    let out = '';
    for (let i = 0, n = 1 + random(k); i < n; i++)
      out += `${PIECES[random(PIECES.length)]!}${random(3) === 0 ? '\n\n' : ' '}`;
    return out;
  };
  const parts: TextPart[] = [
    { id: 'subject', kind: 'subject', text: random(2) === 0 ? text(1) : 'Weekly update' },
  ];
  parts.push({ id: 'text', kind: 'body', text: text(12) });
  if (random(3) === 0) parts.push({ id: 'attachment:1', kind: 'attachment', text: text(6) });
  return parts;
}

/** The verdict without its findings when no rule fired (then 'verdict' mode lists only those it read). */
function decided(v: Verdict): string {
  const fired = v.rules.length > 0 || v.monitored.length > 0;
  return JSON.stringify({ ...v, findings: fired ? v.findings : null });
}

const key = (f: Finding): string => JSON.stringify(f);

describe("dlp analyzer 'verdict' mode", () => {
  const image: Finding = {
    type: 'IMAGE_ATTACHMENT',
    category: 'attachment',
    part: 'attachment:2',
    start: 0,
    end: 0,
    score: 1,
    recognizer: 'extract:image',
  };

  it('every built-in recognizer declares what it finds (else every scan runs them all)', () => {
    expect(emitsOf(compileRecognizers(builtinRecognizers()))).to.not.equal(null);
  });

  it('gives the verdict of a full scan for 150 random rule sets on 8 texts each', () => {
    let stoppedEarly = 0;
    let fired = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const random = randomFrom(seed);
      const analyzer = new Analyzer(parseRuleSet(randomRuleSet(random)));
      for (let t = 0; t < 8; t++) {
        const parts = randomParts(random);
        const opts = { headerNames: ['Sophia Johnson'], extraFindings: random(4) === 0 ? [image] : [] };
        const all = analyzer.analyze(parts, opts);
        const verdict = analyzer.analyze(parts, { ...opts, findings: 'verdict' });
        expect(decided(verdict), `seed ${seed}, text ${t}`).to.equal(decided(all));
        // Stopped early: only findings a full scan also makes.
        const full = new Set(all.findings.map(key));
        for (const f of verdict.findings) expect(full.has(key(f)), `seed ${seed}, text ${t}`).to.equal(true);
        if (verdict.findings.length < all.findings.length) stoppedEarly++;
        if (all.rules.length + all.monitored.length > 0) fired++;
      }
    }
    // Both outcomes are exercised: rules that fire, and scans that stop before the costliest recognizers.
    expect(fired).to.be.greaterThan(200);
    expect(stoppedEarly).to.be.greaterThan(200);
  });

  it('tells clean office mail without the name and address recognizers, and PHI mail with all of them', () => {
    const analyzer = loadAnalyzer(DEFAULT_RULES_FILE);
    const office: TextPart[] = [
      { id: 'subject', kind: 'subject', text: 'Supply order' },
      {
        id: 'text',
        kind: 'body',
        text: 'Hi Maria Gonzalez, the patient portal is down; call (555) 201-3344 or visit 42 Maple Street.',
      },
    ];
    const all = analyzer.analyze(office);
    const verdict = analyzer.analyze(office, { findings: 'verdict' });
    expect(all.phi).to.equal(false);
    expect(verdict.phi).to.equal(false);
    expect(all.findings.map((f) => f.type)).to.include.members(['PERSON', 'PHONE_NUMBER', 'CARE_CONTEXT']);
    expect(verdict.findings.map((f) => f.type))
      .to.include('CARE_CONTEXT')
      .and.not.include('PERSON');

    const phi: TextPart[] = [
      { id: 'text', kind: 'body', text: `${office[1]!.text} She was diagnosed with diabetes.` },
    ];
    const full = analyzer.analyze(phi);
    expect(full.rules).to.deep.equal(['identifier-near-health']);
    expect(analyzer.analyze(phi, { findings: 'verdict' })).to.deep.equal(full);
  });

  it("lists every finding in the CLI's scanner (the default), and stops in the pipeline's", async () => {
    const raw = [
      'From: desk@clinic.example',
      'To: "Maria Gonzalez" <maria@home.example>',
      'Subject: Portal',
      '',
      'Hi Maria Gonzalez, the patient portal is down; call (555) 201-3344.',
      '',
    ].join('\r\n');
    const parsed = await simpleParser(raw, PARSE_OPTIONS);
    const rules = new RulesSource();
    const cli = await new DlpScanner(rules).scan(parsed);
    const pipeline = await new DlpScanner(rules, {}, 'verdict').scan(parsed);
    expect(cli.phi).to.equal(false);
    expect(pipeline.phi).to.equal(false);
    expect(cli.findings.map((f) => f.type)).to.include.members(['PERSON', 'PHONE_NUMBER']);
    expect(pipeline.findings.map((f) => f.type)).to.not.include('PERSON');
  });

  it('runs every recognizer when one does not declare what it finds', () => {
    const undeclared: CustomRecognizer = {
      id: 'pager',
      analyze: (text) =>
        [...text.matchAll(/\bPG-\d{4}\b/g)].map((m) => ({
          type: 'PAGER',
          category: 'identifier' as const,
          start: m.index,
          end: m.index + m[0].length,
          score: 0.9,
          recognizer: 'pager',
        })),
    };
    const rules = parseRuleSet({
      version: 1,
      rules: [{ id: 'x', conditions: [{ near: [['PAGER'], ['@health']] }] }],
    });
    const analyzer = new Analyzer(rules, [...builtinRecognizers(), undeclared]);
    const parts: TextPart[] = [
      { id: 'text', kind: 'body', text: 'Ring PG-1234 and Maria Gonzalez about the rota.' },
    ];
    const verdict = analyzer.analyze(parts, { findings: 'verdict' });
    expect(verdict.findings.map((f) => f.type)).to.include.members(['PAGER', 'PERSON']);
    expect(verdict).to.deep.equal(analyzer.analyze(parts));
  });

  it('fails the scan when a recognizer finds what it did not declare', () => {
    const liar: CustomRecognizer = {
      id: 'liar',
      emits: [['PAGER', 'identifier']],
      analyze: () => [
        { type: 'PAGER', category: 'health', start: 0, end: 2, score: 0.9, recognizer: 'liar' },
      ],
    };
    const scan = new PartScan(compileRecognizers([liar]), { id: 'text', kind: 'body', text: 'PG' });
    expect(() => scan.runAll()).to.throw(/liar found PAGER \(health\), which it does not declare/);
  });
});
