// Rules are data: which findings, in what combination, make a message PHI, and what to do about it.
// The schema is strict so an admin's typo is refused with its path, never silently ignored.
import { z } from 'zod';
import { checkOwnMatchers, hasOwnMatchers, ownerPrefix } from './rule-matchers.js';
import type { Action, Finding, Verdict } from './types.js';

/** A detector selector: a finding type ("US_SSN") or a category ("@health"). */
const selector = z
  .string()
  .regex(
    /^(@(strong|identifier|health|payload|care|deny|attachment|rule)|[A-Z][A-Z0-9_]*)$/,
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

/** A rule's own regular expression: checked for safety with the rule (see rule-matchers.ts). */
const rulePattern = z.strictObject({
  /** Shown in the editor and in the finding's recognizer ("rule:<id>/pattern:<name>"). */
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/,
      'letters, digits, spaces, dots, dashes and underscores (1–64)',
    ),
  regex: z.string().min(1),
  /** The finding's score (default 1). */
  score: z.number().min(0).max(1).optional(),
  /** 'i' to ignore case; no other flag. */
  flags: z.literal('i', "the only flag allowed is 'i' (ignore case)").optional(),
});

const ruleFields = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'lower-case letters, digits and dashes'),
  description: z.string().default(''),
  enabled: z.boolean().default(true),
  /** protect: PGP or pickup; quarantine: hold for an admin; block: bounce to the sender; log: record only. */
  action: z.enum(['protect', 'quarantine', 'block', 'log']).default('protect'),
  /** Record what the rule would have done, without acting on it. */
  monitorOnly: z.boolean().default(false),
  /** Findings scoring below this are ignored by the rule. */
  minScore: z.number().min(0).max(1).default(0.5),
  /** All conditions must hold (none: the rule's keywords or patterns alone decide). */
  conditions: z.array(conditionSchema).default([]),
  /**
   * Whole words or phrases (any case) that are findings of type RULE_KEYWORD for this rule alone. A rule with
   * keywords or patterns fires only when at least one of them matches (scoring at least minScore), in addition
   * to its conditions; its conditions may also select them (RULE_KEYWORD, RULE_PATTERN, @rule).
   */
  keywords: z.array(z.string()).optional(),
  /** Regular expressions whose matches are findings of type RULE_PATTERN for this rule alone (see keywords). */
  patterns: z.array(rulePattern).optional(),
  /**
   * Images of a message this rule protects, when it goes out as a secure pickup: on (redacted inside the
   * pickup), off (kept as they are; the pickup protects them), clear-copy (the original via the pickup, plus
   * a copy in clear with the images redacted — only when every acting rule that fired says clear-copy,
   * e.g. a rule about images alone). Unset: the gateway's redaction.gateway setting.
   */
  redaction: z.enum(['on', 'off', 'clear-copy']).optional(),
});

/** A rule: its fields, then the checks across them (a condition, keyword or pattern; safe patterns). */
export const ruleSchema = ruleFields.superRefine((rule, ctx) => {
  if (rule.conditions.length === 0 && !hasOwnMatchers(rule))
    ctx.addIssue({
      code: 'custom',
      path: ['conditions'],
      message: `rule "${rule.id}": give at least one condition, keyword or pattern`,
    });
  for (const p of checkOwnMatchers(rule)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
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

/**
 * The findings with their type, category and part as small numbers and their scores and positions in typed arrays:
 * made once per message, read by every condition of every rule (a string compared per finding per selector was most
 * of the rules' cost on dense text).
 */
interface Indexed {
  findings: readonly Finding[];
  type: Int32Array;
  category: Int32Array;
  part: Int32Array;
  score: Float64Array;
  start: Float64Array;
  end: Float64Array;
  typeIds: Map<string, number>;
  categoryIds: Map<string, number>;
  partCount: number;
  /** 1 for the parts that are a subject. */
  subject: Uint8Array;
  /** The number of the category 'rule' (a rule's own keywords and patterns), -1 when no finding has it. */
  ruleCategory: number;
}

function idOf(ids: Map<string, number>, key: string): number {
  let id = ids.get(key);
  if (id === undefined) ids.set(key, (id = ids.size));
  return id;
}

function indexFindings(findings: readonly Finding[], subjectParts: ReadonlySet<string>): Indexed {
  const n = findings.length;
  const type = new Int32Array(n);
  const category = new Int32Array(n);
  const part = new Int32Array(n);
  const score = new Float64Array(n);
  const start = new Float64Array(n);
  const end = new Float64Array(n);
  const typeIds = new Map<string, number>();
  const categoryIds = new Map<string, number>();
  const partIds = new Map<string, number>();
  // Neighbours mostly share type and part: a map is asked only when they change.
  let lastType: string | null = null;
  let lastTypeId = -1;
  let lastPart: string | null = null;
  let lastPartId = -1;
  for (let i = 0; i < n; i++) {
    const f = findings[i]!;
    if (f.type !== lastType) lastTypeId = idOf(typeIds, (lastType = f.type));
    if (f.part !== lastPart) lastPartId = idOf(partIds, (lastPart = f.part));
    type[i] = lastTypeId;
    part[i] = lastPartId;
    category[i] = idOf(categoryIds, f.category);
    score[i] = f.score;
    start[i] = f.start;
    end[i] = f.end;
  }
  const subject = new Uint8Array(partIds.size);
  for (const [name, id] of partIds) if (subjectParts.has(name)) subject[id] = 1;
  return {
    findings,
    type,
    category,
    part,
    score,
    start,
    end,
    typeIds,
    categoryIds,
    partCount: partIds.size,
    subject,
    ruleCategory: categoryIds.get('rule') ?? -1,
  };
}

/**
 * Indices of the findings that a selector list takes at a minimum score. A rule's own keyword and pattern
 * findings (category 'rule') are taken only for the rule that owns them (`owner`: its recognizer prefix).
 */
function select(selectors: readonly string[], ix: Indexed, min: number, owner: string): number[] {
  const types = new Uint8Array(ix.typeIds.size);
  const categories = new Uint8Array(ix.categoryIds.size);
  for (const s of selectors) {
    const id = s.startsWith('@') ? ix.categoryIds.get(s.slice(1)) : ix.typeIds.get(s);
    if (id !== undefined) (s.startsWith('@') ? categories : types)[id] = 1;
  }
  const { type, category, score, ruleCategory, findings } = ix;
  const out: number[] = [];
  for (let i = 0; i < score.length; i++) {
    if (
      score[i]! >= min &&
      (categories[category[i]!] === 1 || types[type[i]!] === 1) &&
      (category[i] !== ruleCategory || findings[i]!.recognizer.startsWith(owner))
    )
      out.push(i);
  }
  return out;
}

/** The rule's own keyword and pattern findings at its minimum score. */
function ownFindings(ix: Indexed, min: number, owner: string): number[] {
  const out: number[] = [];
  if (ix.ruleCategory < 0) return out;
  for (let i = 0; i < ix.score.length; i++)
    if (
      ix.category[i] === ix.ruleCategory &&
      ix.score[i]! >= min &&
      ix.findings[i]!.recognizer.startsWith(owner)
    )
      out.push(i);
  return out;
}

/** The indices of the findings that make a condition hold, or null when it does not. */
function evaluateCondition(c: Condition, ix: Indexed, ruleMin: number, owner: string): number[] | null {
  const min = c.minScore ?? ruleMin;
  if ('any' in c) {
    const hits = select(c.any, ix, min, owner);
    return hits.length >= c.minCount ? hits : null;
  }
  const [as, bs] = c.near;
  const a = select(as, ix, min, owner);
  if (a.length === 0) return null;
  const b = select(bs, ix, min, owner);
  if (b.length === 0) return null;
  const pairedA = pairedWith(a, b, ix, c.window);
  if (pairedA.length === 0) return null;
  const pairedB = pairedWith(b, a, ix, c.window);
  // Each finding once, in the order of the findings (a Set of objects per condition was a large part of the cost).
  const used = new Uint8Array(ix.score.length);
  for (const i of pairedA) used[i] = 1;
  for (const i of pairedB) used[i] = 1;
  const out: number[] = [];
  for (let i = 0; i < used.length; i++) if (used[i] === 1) out.push(i);
  return out;
}

/** For each part, the starts of its findings in ascending order, with the running maximum of their ends. */
interface SortedSide {
  starts: Float64Array;
  maxEnds: Float64Array;
  /** The finding (index into the findings) whose end is maxEnds, and the largest end of the others. */
  maxAt: Int32Array;
  otherMaxEnds: Float64Array;
}

/** The sorted side of each part (by part number; undefined for a part none of `indices` is in). */
function sortByPart(indices: readonly number[], ix: Indexed): Array<SortedSide | undefined> {
  const byPart: number[][] = [];
  for (const i of indices) (byPart[ix.part[i]!] ??= []).push(i);
  const out: Array<SortedSide | undefined> = new Array<SortedSide | undefined>(ix.partCount);
  const { start, end } = ix;
  byPart.forEach((list, part) => {
    // Findings come resolved, in order of part, category and start: a selection is often in order already.
    let ordered = true;
    for (let k = 1; k < list.length && ordered; k++) ordered = start[list[k - 1]!]! <= start[list[k]!]!;
    if (!ordered) list.sort((p, q) => start[p]! - start[q]!);
    const starts = new Float64Array(list.length);
    const maxEnds = new Float64Array(list.length);
    const maxAt = new Int32Array(list.length);
    const otherMaxEnds = new Float64Array(list.length);
    let max = -Infinity;
    let at = -1;
    let other = -Infinity;
    for (let k = 0; k < list.length; k++) {
      const i = list[k]!;
      starts[k] = start[i]!;
      if (end[i]! > max) {
        other = max;
        max = end[i]!;
        at = i;
      } else if (end[i]! > other) other = end[i]!;
      maxEnds[k] = max;
      maxAt[k] = at;
      otherMaxEnds[k] = other;
    }
    out[part] = { starts, maxEnds, maxAt, otherMaxEnds };
  });
  return out;
}

/** Index of the last element ≤ value in an ascending array (-1 when none). */
function lastAtMost(sorted: Float64Array, value: number): number {
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
 * The findings of `xs` that pair with some finding of `ys` (both indices into the findings): within `window` characters
 * in the same part, or in different parts when either is a subject. One sort and a binary search per finding: dense
 * text has tens of thousands of findings, and comparing every pair took seconds on a megabyte.
 */
function pairedWith(xs: readonly number[], ys: readonly number[], ix: Indexed, window: number): number[] {
  const sorted = sortByPart(ys, ix);
  const inYs = new Uint8Array(ix.score.length);
  for (const y of ys) inYs[y] = 1;
  const { part, start, end, subject } = ix;
  /** Parts that some y is in, and whether one of them is a subject. */
  let partsWithYs = 0;
  let subjectWithYs = -1;
  let subjectsWithYs = 0;
  sorted.forEach((side, p) => {
    if (!side) return;
    partsWithYs++;
    if (subject[p] === 1) {
      subjectsWithYs++;
      subjectWithYs = p;
    }
  });
  const out: number[] = [];
  for (const xi of xs) {
    const p = part[xi]!;
    const side = sorted[p];
    let paired = false;
    if (side) {
      // Some y starts at most `window` after x ends; the furthest-reaching of those must end at most `window` before
      // x starts. A finding selected on both sides does not pair with itself: then the furthest of the others counts.
      const k = lastAtMost(side.starts, end[xi]! + window);
      if (k >= 0) {
        const reach = inYs[xi] === 1 && side.maxAt[k] === xi ? side.otherMaxEnds[k]! : side.maxEnds[k]!;
        paired = reach >= start[xi]! - window;
      }
    }
    // A subject pairs with any other part that has a y, and any part with a subject that has one.
    if (!paired && subject[p] === 1) paired = partsWithYs > (side ? 1 : 0);
    if (!paired) paired = subjectsWithYs > 1 || (subjectsWithYs === 1 && subjectWithYs !== p);
    if (paired) out.push(xi);
  }
  return out;
}

/**
 * Whether some enabled rule may still fire when more findings can come. `final(selector)` tells whether every finding
 * the selector can take is among `findings` already: a condition whose selectors are all final is decided as
 * evaluateRules decides it, a `near` side that is final and takes nothing fails, and the rest may still hold. A rule's
 * own keyword and pattern findings must be among `findings` (they are always final).
 */
export function someRuleMayFire(
  ruleSet: RuleSet,
  findings: readonly Finding[],
  subjectParts: ReadonlySet<string>,
  final: (selector: string) => boolean,
): boolean {
  const ix = indexFindings(findings, subjectParts);
  for (const rule of ruleSet.rules) {
    if (!rule.enabled) continue;
    const owner = ownerPrefix(rule.id);
    if (hasOwnMatchers(rule) && ownFindings(ix, rule.minScore, owner).length === 0) continue;
    const mayHold = (c: Condition): boolean => {
      if ('any' in c) return !c.any.every(final) || evaluateCondition(c, ix, rule.minScore, owner) !== null;
      const min = c.minScore ?? rule.minScore;
      const [as, bs] = c.near;
      const aFinal = as.every(final);
      const bFinal = bs.every(final);
      if (aFinal && bFinal) return evaluateCondition(c, ix, rule.minScore, owner) !== null;
      if (aFinal && select(as, ix, min, owner).length === 0) return false;
      if (bFinal && select(bs, ix, min, owner).length === 0) return false;
      return true;
    };
    if (rule.conditions.every(mayHold)) return true;
  }
  return false;
}

/** Applies the rules to a message's findings and explains the outcome (types and parts, never text). */
export function evaluateRules(
  ruleSet: RuleSet,
  findings: readonly Finding[],
  subjectParts: ReadonlySet<string>,
): Verdict {
  // The first acting rule that a finding contributed to, by index (a Map keyed by finding was slow on dense text).
  const attributed: Array<string | null> = new Array<string | null>(findings.length).fill(null);
  const rules: string[] = [];
  const monitored: string[] = [];
  const explanation: Verdict['explanation'] = [];
  let action: Verdict['action'] = 'clean';
  let score = 0;
  let phi = false;
  const ix = indexFindings(findings, subjectParts);
  for (const rule of ruleSet.rules) {
    if (!rule.enabled) continue;
    const contributing: number[][] = [];
    const owner = ownerPrefix(rule.id);
    // A rule with keywords or patterns needs one of them, besides its conditions.
    if (hasOwnMatchers(rule)) {
      const own = ownFindings(ix, rule.minScore, owner);
      if (own.length === 0) continue;
      contributing.push(own);
    }
    let fired = true;
    for (const c of rule.conditions) {
      const hits = evaluateCondition(c, ix, rule.minScore, owner);
      if (!hits) {
        fired = false;
        break;
      }
      contributing.push(hits);
    }
    if (!fired) continue;
    const typeSet = new Set<string>();
    const partSet = new Set<string>();
    let ruleScore = 0;
    // Neighbours mostly share type and part: a set is asked only when they change.
    let lastType: string | null = null;
    let lastPart: string | null = null;
    for (const hits of contributing)
      for (const i of hits) {
        const f = findings[i]!;
        if (f.type !== lastType) typeSet.add((lastType = f.type));
        if (f.part !== lastPart) partSet.add((lastPart = f.part));
        if (f.score > ruleScore) ruleScore = f.score;
      }
    explanation.push({
      rule: rule.id,
      action: rule.action,
      monitorOnly: rule.monitorOnly,
      reason: rule.description || rule.id,
      findingTypes: [...typeSet].sort(),
      parts: [...partSet].sort(),
      ...(rule.redaction ? { redaction: rule.redaction } : {}),
    });
    if (rule.monitorOnly) {
      monitored.push(rule.id);
      continue;
    }
    rules.push(rule.id);
    for (const hits of contributing)
      for (const i of hits) if (attributed[i] === null) attributed[i] = rule.id;
    score = Math.max(score, ruleScore);
    if (rule.action !== 'log') phi = true;
    if (action === 'clean' || ACTION_RANK[rule.action] > ACTION_RANK[action]) action = rule.action;
  }
  return {
    phi,
    score: Math.round(score * 100) / 100,
    action,
    // Built field by field: an object spread per finding was the slowest step on a megabyte of dense text.
    findings: findings.map((f, i) => ({
      type: f.type,
      category: f.category,
      part: f.part,
      start: f.start,
      end: f.end,
      score: f.score,
      recognizer: f.recognizer,
      rule: attributed[i] ?? null,
    })),
    rules,
    monitored,
    explanation,
  };
}
