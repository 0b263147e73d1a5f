// Rules are data: which findings, in what combination, make a message PHI, and what to do about it.
// The schema is strict so an admin's typo is refused with its path, never silently ignored.
import { z } from 'zod';
import type { Action, Category, Finding, Verdict } from './types.js';

/** A detector selector: a finding type ("US_SSN") or a category ("@health"). */
const selector = z
  .string()
  .regex(
    /^(@(strong|identifier|health|payload|care|deny|attachment)|[A-Z][A-Z0-9_]*)$/,
    'a finding type like US_SSN or a category like @health',
  );

const anyCondition = z.strictObject({
  /** At least `minCount` findings of these types/categories, each scoring at least `minScore`. */
  any: z.array(selector).min(1),
  minCount: z.number().int().positive().default(1),
  minScore: z.number().min(0).max(1).optional(),
});

const nearCondition = z.strictObject({
  /** A finding of `near[0]` within `window` characters of one of `near[1]`, in the same part (the subject pairs with every part). */
  near: z.tuple([z.array(selector).min(1), z.array(selector).min(1)]),
  window: z.number().int().positive().max(100_000).default(300),
  minScore: z.number().min(0).max(1).optional(),
});

export const conditionSchema = z.union([anyCondition, nearCondition]);

export const ruleSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'lower-case letters, digits and dashes'),
  description: z.string().default(''),
  enabled: z.boolean().default(true),
  /** protect: PGP or pickup; quarantine: hold for an admin; block: bounce to the sender; log: record only. */
  action: z.enum(['protect', 'quarantine', 'block', 'log']).default('protect'),
  /** Record what the rule would have done, without acting on it. */
  monitorOnly: z.boolean().default(false),
  /** Findings scoring below this are ignored by the rule. */
  minScore: z.number().min(0).max(1).default(0.5),
  /** All conditions must hold. */
  conditions: z.array(conditionSchema).min(1),
});

export const ruleSetSchema = z.strictObject({
  version: z.literal(1),
  /** Values that never count (the practice's own phone, address, e-mail …), compared ignoring case, spaces and punctuation. */
  allow: z.array(z.string().min(1)).default([]),
  /** Words or phrases that always count as a finding of type DENY_TERM (category @deny). */
  deny: z.array(z.string().min(2)).default([]),
  /** Per-organisation MRN formats, as regular expressions (checked for safety before use). */
  mrnFormats: z.array(z.string().min(1)).default([]),
  rules: z.array(ruleSchema).min(1),
});

export type Rule = z.infer<typeof ruleSchema>;
export type RuleSet = z.infer<typeof ruleSetSchema>;
export type Condition = z.infer<typeof conditionSchema>;

const ACTION_RANK: Record<Action, number> = { log: 0, protect: 1, quarantine: 2, block: 3 };

/** Selectors as two sets (made once per selector list: this runs for every finding of every rule). */
const selectorSets = new WeakMap<readonly string[], { types: Set<string>; categories: Set<string> }>();

function selects(selectors: readonly string[], f: Finding): boolean {
  let sets = selectorSets.get(selectors);
  if (!sets) {
    sets = { types: new Set(), categories: new Set() };
    for (const s of selectors) {
      if (s.startsWith('@')) sets.categories.add(s.slice(1) as Category);
      else sets.types.add(s);
    }
    selectorSets.set(selectors, sets);
  }
  return sets.categories.has(f.category) || sets.types.has(f.type);
}

function distance(a: Finding, b: Finding): number {
  return Math.max(0, Math.max(a.start, b.start) - Math.min(a.end, b.end));
}

function evaluateCondition(
  c: Condition,
  findings: readonly Finding[],
  ruleMin: number,
  subjectParts: ReadonlySet<string>,
): Finding[] | null {
  const min = c.minScore ?? ruleMin;
  if ('any' in c) {
    const hits = findings.filter((f) => f.score >= min && selects(c.any, f));
    return hits.length >= c.minCount ? hits : null;
  }
  const [as, bs] = c.near;
  const a = findings.filter((f) => f.score >= min && selects(as, f));
  const b = findings.filter((f) => f.score >= min && selects(bs, f));
  if (a.length === 0 || b.length === 0) return null;
  const used = new Set<Finding>();
  for (const x of pairedWith(a, b, c.window, subjectParts)) used.add(x);
  if (used.size === 0) return null;
  for (const y of pairedWith(b, a, c.window, subjectParts)) used.add(y);
  return [...used];
}

/** For each part, the findings sorted by start, with the running maximum of their ends. */
interface SortedSide {
  starts: number[];
  maxEnds: number[];
  items: Finding[];
}

function sortByPart(findings: readonly Finding[]): Map<string, SortedSide> {
  const byPart = new Map<string, Finding[]>();
  for (const f of findings) {
    const list = byPart.get(f.part);
    if (list) list.push(f);
    else byPart.set(f.part, [f]);
  }
  const out = new Map<string, SortedSide>();
  for (const [part, list] of byPart) {
    list.sort((p, q) => p.start - q.start);
    const maxEnds: number[] = [];
    let max = -Infinity;
    for (const f of list) maxEnds.push((max = Math.max(max, f.end)));
    out.set(part, { starts: list.map((f) => f.start), maxEnds, items: list });
  }
  return out;
}

/** Index of the last element ≤ value in an ascending array (-1 when none). */
function lastAtMost(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= value) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/**
 * The findings of `xs` that pair with some finding of `ys`: within `window` characters in the same part, or in
 * different parts when either is a subject. One sort and a binary search per finding: dense text has tens of
 * thousands of findings, and comparing every pair took seconds on a megabyte.
 */
function pairedWith(
  xs: readonly Finding[],
  ys: readonly Finding[],
  window: number,
  subjectParts: ReadonlySet<string>,
): Finding[] {
  const sorted = sortByPart(ys);
  const ySet = new Set(ys);
  const subjectYs = ys.filter((y) => subjectParts.has(y.part));
  const out: Finding[] = [];
  for (const x of xs) {
    let paired = false;
    if (ySet.has(x)) {
      // A finding selected on both sides does not pair with itself: compare it with the others one by one.
      paired = ys.some(
        (y) =>
          y !== x &&
          ((y.part === x.part && distance(x, y) <= window) ||
            (y.part !== x.part && (subjectParts.has(x.part) || subjectParts.has(y.part)))),
      );
    } else {
      const side = sorted.get(x.part);
      if (side) {
        // Some y starts at most `window` after x ends; the furthest-reaching of those must end at most `window` before x starts.
        const k = lastAtMost(side.starts, x.end + window);
        paired = k >= 0 && side.maxEnds[k]! >= x.start - window;
      }
      if (!paired && subjectParts.has(x.part)) paired = sorted.size > (side ? 1 : 0);
      if (!paired) paired = subjectYs.some((y) => y.part !== x.part);
    }
    if (paired) out.push(x);
  }
  return out;
}

/** Applies the rules to a message's findings and explains the outcome (types and parts, never text). */
export function evaluateRules(
  ruleSet: RuleSet,
  findings: readonly Finding[],
  subjectParts: ReadonlySet<string>,
): Verdict {
  const attributed = new Map<Finding, string>();
  const rules: string[] = [];
  const monitored: string[] = [];
  const explanation: Verdict['explanation'] = [];
  let action: Verdict['action'] = 'clean';
  let score = 0;
  let phi = false;
  for (const rule of ruleSet.rules) {
    if (!rule.enabled) continue;
    const contributing: Finding[] = [];
    let fired = true;
    for (const c of rule.conditions) {
      const hits = evaluateCondition(c, findings, rule.minScore, subjectParts);
      if (!hits) {
        fired = false;
        break;
      }
      for (const h of hits) contributing.push(h);
    }
    if (!fired) continue;
    const types = [...new Set(contributing.map((f) => f.type))].sort();
    const parts = [...new Set(contributing.map((f) => f.part))].sort();
    explanation.push({
      rule: rule.id,
      action: rule.action,
      monitorOnly: rule.monitorOnly,
      reason: rule.description || rule.id,
      findingTypes: types,
      parts,
    });
    if (rule.monitorOnly) {
      monitored.push(rule.id);
      continue;
    }
    rules.push(rule.id);
    for (const f of contributing) if (!attributed.has(f)) attributed.set(f, rule.id);
    let ruleScore = 0;
    for (const f of contributing) ruleScore = Math.max(ruleScore, f.score);
    score = Math.max(score, ruleScore);
    if (rule.action !== 'log') phi = true;
    if (action === 'clean' || ACTION_RANK[rule.action] > ACTION_RANK[action]) action = rule.action;
  }
  return {
    phi,
    score: Math.round(score * 100) / 100,
    action,
    // Built field by field: an object spread per finding was the slowest step on a megabyte of dense text.
    findings: findings.map((f) => ({
      type: f.type,
      category: f.category,
      part: f.part,
      start: f.start,
      end: f.end,
      score: f.score,
      recognizer: f.recognizer,
      rule: attributed.get(f) ?? null,
    })),
    rules,
    monitored,
    explanation,
  };
}
