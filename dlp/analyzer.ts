// The analyzer: recognizers over every part of a message, admin allow/deny lists, then the rules.
// Input is decoded text; output is a verdict with positions and type names, never the matched text.
import {
  analyzePart,
  compileRecognizers,
  resolveOverlaps,
  wordListRegex,
  type CompiledRecognizers,
} from './engine.js';
import { builtinRecognizers } from './recognizers/index.js';
import { RuleMatchers } from './rule-matchers.js';
import { evaluateRules, ruleSetSchema, type RuleSet } from './rules.js';
import { checkPatternSafety } from './safe-regex.js';
import type { CustomRecognizer, Finding, PatternRecognizer, Recognizer, TextPart, Verdict } from './types.js';

export interface AnalyzeOptions {
  /** Display names from To/Cc (not From): a name the message itself names is a strong hint when seen in the text. */
  headerNames?: readonly string[];
  /** Findings made outside the text, e.g. for attachments that cannot be read (category 'attachment'). */
  extraFindings?: readonly Finding[];
}

function normaliseValue(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{N}@]+/gu, '');
}

function denyRecognizer(terms: readonly string[]): CustomRecognizer {
  const re = new RegExp(wordListRegex(terms).source, 'giu');
  return {
    id: 'deny-list',
    analyze(text) {
      const out: Array<Omit<Finding, 'part'>> = [];
      re.lastIndex = 0;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        out.push({
          type: 'DENY_TERM',
          category: 'deny',
          start: m.index,
          end: m.index + m[0].length,
          score: 1,
          recognizer: 'deny-list',
        });
      }
      return out;
    },
  };
}

function mrnFormatRecognizer(formats: readonly string[]): PatternRecognizer {
  return {
    id: 'mrn-org-format',
    type: 'MRN',
    category: 'strong',
    patterns: formats.map((source, i) => ({
      name: `org-format-${i + 1}`,
      regex: new RegExp(`(?<![\\p{L}\\p{N}])(?:${source})(?![\\p{L}\\p{N}])`, 'u'),
      score: 0.7,
    })),
    context: ['mrn', 'mr#', 'medical record', 'chart', 'patient id', 'record number', 'patient'],
    contextBoost: 0.25,
  };
}

/** Validates a rule set (schema, then the safety of admin-supplied patterns). Throws with a readable message. */
export function parseRuleSet(input: unknown): RuleSet {
  const result = ruleSetSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const where = i.path.join('.') || '(top level)';
      return i.code === 'unrecognized_keys'
        ? `${where}: unknown key(s) ${i.keys.join(', ')}`
        : `${where}: ${i.message}`;
    });
    throw new Error(`rules are invalid:\n  ${lines.join('\n  ')}`);
  }
  const ruleSet = result.data;
  ruleSet.mrnFormats.forEach((f, i) => {
    const problem = checkPatternSafety(f);
    if (problem) throw new Error(`rules are invalid:\n  mrnFormats.${i}: ${problem}`);
  });
  const ids = new Set<string>();
  for (const r of ruleSet.rules) {
    if (ids.has(r.id)) throw new Error(`rules are invalid:\n  rule id "${r.id}" is used twice`);
    ids.add(r.id);
  }
  return ruleSet;
}

export class Analyzer {
  private readonly compiled: CompiledRecognizers;
  private readonly allow: Set<string>;
  /** The rules' own keywords and patterns, compiled once per rule set. */
  private readonly ruleMatchers: RuleMatchers;

  constructor(
    readonly ruleSet: RuleSet,
    recognizers: readonly Recognizer[] = builtinRecognizers(),
  ) {
    const extra: Recognizer[] = [];
    if (ruleSet.deny.length > 0) extra.push(denyRecognizer(ruleSet.deny));
    if (ruleSet.mrnFormats.length > 0) extra.push(mrnFormatRecognizer(ruleSet.mrnFormats));
    this.compiled = compileRecognizers([...recognizers, ...extra]);
    this.allow = new Set(ruleSet.allow.map(normaliseValue).filter(Boolean));
    this.ruleMatchers = new RuleMatchers(ruleSet.rules);
  }

  /** Findings for one part, after the allow-list. */
  findings(part: TextPart, headerNames: readonly string[] = []): Finding[] {
    return this.allowed(part, analyzePart(this.compiled, part, headerNames));
  }

  private allowed(part: TextPart, found: Finding[]): Finding[] {
    if (this.allow.size === 0) return found;
    return found.filter((f) => !this.allow.has(normaliseValue(part.text.slice(f.start, f.end))));
  }

  analyze(parts: readonly TextPart[], opts: AnalyzeOptions = {}): Verdict {
    const findings: Finding[] = [];
    for (const part of parts) for (const f of this.findings(part, opts.headerNames ?? [])) findings.push(f);
    const extra = opts.extraFindings ?? [];
    for (const f of extra) findings.push(f);
    const subjectParts = new Set(parts.filter((p) => p.kind === 'subject').map((p) => p.id));
    // Each part's findings are resolved already and overlaps are per part: only findings from outside need it.
    const all = extra.length > 0 ? resolveOverlaps(findings) : findings;
    // Rules' own keywords and patterns after that: they belong to one rule each and never compete.
    if (this.ruleMatchers.size > 0)
      for (const part of parts) for (const f of this.allowed(part, this.ruleMatchers.find(part))) all.push(f);
    return evaluateRules(this.ruleSet, all, subjectParts);
  }
}
