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

function selects(selectors: readonly string[], f: Finding): boolean {
  return selectors.some((s) => (s.startsWith('@') ? (s.slice(1) as Category) === f.category : s === f.type));
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
  const used = new Set<Finding>();
  for (const x of a) {
    for (const y of b) {
      if (x === y) continue;
      const paired =
        (x.part === y.part && distance(x, y) <= c.window) ||
        (x.part !== y.part && (subjectParts.has(x.part) || subjectParts.has(y.part)));
      if (paired) {
        used.add(x);
        used.add(y);
      }
    }
  }
  return used.size > 0 ? [...used] : null;
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
      contributing.push(...hits);
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
    const ruleScore = Math.max(...contributing.map((f) => f.score));
    score = Math.max(score, ruleScore);
    if (rule.action !== 'log') phi = true;
    if (action === 'clean' || ACTION_RANK[rule.action] > ACTION_RANK[action]) action = rule.action;
  }
  return {
    phi,
    score: Math.round(score * 100) / 100,
    action,
    findings: findings.map((f) => ({ ...f, rule: attributed.get(f) ?? null })),
    rules,
    monitored,
    explanation,
  };
}
