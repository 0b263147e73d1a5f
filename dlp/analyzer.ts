// The analyzer: recognizers over every part of a message, admin allow/deny lists, then the rules.
// Input is decoded text; output is a verdict with positions and type names, never the matched text.
import {
  analyzePart,
  compileRecognizers,
  emitsOf,
  PartScan,
  resolveOverlaps,
  wordListRegex,
  type CompiledRecognizers,
} from './engine.js';
import { builtinRecognizers } from './recognizers/index.js';
import { RuleMatchers } from './rule-matchers.js';
import { evaluateRules, ruleSetSchema, someRuleMayFire, type RuleSet } from './rules.js';
import { checkPatternSafety } from './safe-regex.js';
import type {
  Category,
  CustomRecognizer,
  Finding,
  PatternRecognizer,
  Recognizer,
  TextPart,
  Verdict,
} from './types.js';

export interface AnalyzeOptions {
  /** Display names from To/Cc (not From): a name the message itself names is a strong hint when seen in the text. */
  headerNames?: readonly string[];
  /** Findings made outside the text, e.g. for attachments that cannot be read (category 'attachment'). */
  extraFindings?: readonly Finding[];
  /**
   * 'all' (the default): every recognizer runs and the verdict lists every finding, as an admin reading a scan
   * expects. 'verdict': recognizers run a few at a time, cheapest first, and the scan stops as soon as no rule can
   * fire any more; the verdict is the same, but when nothing fired it lists only the findings read so far. What the
   * pipeline needs: most mail is clean, and a clean verdict is often told without the costliest recognizers.
   */
  findings?: 'all' | 'verdict';
}

/**
 * Categories whose recognizers are cheap and often decide a clean verdict alone (no health fact, no care context):
 * they run first, then those that find strong identifiers, then the rest (names, addresses, phones …).
 */
const FIRST: ReadonlySet<Category> = new Set(['deny', 'payload', 'health', 'care']);
const SECOND: ReadonlySet<Category> = new Set(['strong']);

/** How a scan in 'verdict' mode runs the recognizers: in phases, and which selectors are final after each. */
interface Plan {
  /** Recognizer indices of each phase, in the order of the compiled set. */
  phases: number[][];
  /** Category → indices of the recognizers that can find it. */
  emitters: Map<string, number[]>;
  /** Type → the categories recognizers find it with. */
  typeCategories: Map<string, Set<string>>;
}

function planOf(compiled: CompiledRecognizers): Plan | null {
  const emits = emitsOf(compiled);
  if (!emits) return null;
  const emitters = new Map<string, number[]>();
  const typeCategories = new Map<string, Set<string>>();
  const phaseOf = emits.map((pairs, i) => {
    for (const [type, category] of pairs) {
      const list = emitters.get(category) ?? [];
      if (!list.includes(i)) list.push(i);
      emitters.set(category, list);
      const cats = typeCategories.get(type) ?? new Set<string>();
      cats.add(category);
      typeCategories.set(type, cats);
    }
    if (pairs.some(([, c]) => FIRST.has(c))) return 0;
    if (pairs.some(([, c]) => SECOND.has(c))) return 1;
    return 2;
  });
  const phases: number[][] = [[], [], []];
  phaseOf.forEach((phase, i) => phases[phase]!.push(i));
  return { phases, emitters, typeCategories };
}

function normaliseValue(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{N}@]+/gu, '');
}

function denyRecognizer(terms: readonly string[]): CustomRecognizer {
  const re = new RegExp(wordListRegex(terms).source, 'giu');
  return {
    id: 'deny-list',
    emits: [['DENY_TERM', 'deny']],
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
    this.plan = planOf(this.compiled);
  }

  /** Null when some recognizer does not declare what it finds: then every scan runs every recognizer. */
  private readonly plan: Plan | null;

  /** Findings for one part, after the allow-list. */
  findings(part: TextPart, headerNames: readonly string[] = []): Finding[] {
    return this.allowed(part, analyzePart(this.compiled, part, headerNames));
  }

  private allowed(part: TextPart, found: Finding[]): Finding[] {
    if (this.allow.size === 0) return found;
    return found.filter((f) => !this.allow.has(normaliseValue(part.text.slice(f.start, f.end))));
  }

  analyze(parts: readonly TextPart[], opts: AnalyzeOptions = {}): Verdict {
    const headerNames = opts.headerNames ?? [];
    const extra = opts.extraFindings ?? [];
    const subjectParts = new Set(parts.filter((p) => p.kind === 'subject').map((p) => p.id));
    // Rules' own keywords and patterns: they belong to one rule each and never compete with other findings.
    const own: Finding[] = [];
    if (this.ruleMatchers.size > 0)
      for (const part of parts) for (const f of this.allowed(part, this.ruleMatchers.find(part))) own.push(f);
    const scans = parts.map((part) => new PartScan(this.compiled, part, headerNames));
    if (opts.findings === 'verdict' && this.plan) {
      const early = this.decideEarly(this.plan, scans, extra, own, subjectParts);
      if (early) return early;
    }
    const findings: Finding[] = [];
    for (const scan of scans) {
      for (const f of this.allowed(scan.part, scan.runAll().findings())) findings.push(f);
      scan.release();
    }
    for (const f of extra) findings.push(f);
    // Each part's findings are resolved already and overlaps are per part: only findings from outside need it.
    const all = extra.length > 0 ? resolveOverlaps(findings) : findings;
    for (const f of own) all.push(f);
    return evaluateRules(this.ruleSet, all, subjectParts);
  }

  /**
   * Runs the plan's phases but the last, one at a time over every part; after each, decides the rules whose
   * conditions read only final findings. Returns the verdict when no rule can fire any more (nothing fired: the
   * findings read so far), or null when the last phase must run too.
   */
  private decideEarly(
    plan: Plan,
    scans: readonly PartScan[],
    extra: readonly Finding[],
    own: readonly Finding[],
    subjectParts: ReadonlySet<string>,
  ): Verdict | null {
    const ran = new Uint8Array(this.compiled.length);
    const finalCategory = (c: string): boolean => (plan.emitters.get(c) ?? []).every((i) => ran[i] === 1);
    const extraCategories = new Map<string, Set<string>>();
    for (const f of extra)
      extraCategories.set(f.type, (extraCategories.get(f.type) ?? new Set()).add(f.category));
    // A type is final when every category it can come in is: the overlaps of a category are resolved within it.
    const final = (selector: string): boolean => {
      if (selector.startsWith('@')) return finalCategory(selector.slice(1));
      const categories = [
        ...(plan.typeCategories.get(selector) ?? []),
        ...(extraCategories.get(selector) ?? []),
      ];
      return categories.every(finalCategory);
    };
    for (const phase of plan.phases.slice(0, -1)) {
      for (const scan of scans) scan.run(phase);
      for (const i of phase) ran[i] = 1;
      // The findings of the final categories: what a scan by every recognizer finds of them.
      const categories = [...plan.emitters.keys()].filter(finalCategory).sort();
      const found: Finding[] = [];
      for (const scan of scans)
        for (const category of categories)
          for (const f of this.allowed(scan.part, scan.category(category))) found.push(f);
      for (const f of extra) found.push(f);
      const all = extra.length > 0 ? resolveOverlaps(found) : found;
      for (const f of own) all.push(f);
      if (!someRuleMayFire(this.ruleSet, all, subjectParts, final))
        return evaluateRules(this.ruleSet, all, subjectParts);
    }
    return null;
  }
}
