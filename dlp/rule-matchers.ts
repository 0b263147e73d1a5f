// A rule's own keywords and patterns: validated with the rule, compiled once per rule set, and run over each
// part to make findings (RULE_KEYWORD, RULE_PATTERN; category 'rule') that only their own rule counts.
// Findings carry positions and the rule id, never the matched text; nothing here logs or stores anything.
import { wordListRegex } from './engine.js';
import { checkRulePattern } from './safe-regex.js';
import type { Finding, TextPart } from './types.js';

export const RULE_KEYWORD = 'RULE_KEYWORD';
export const RULE_PATTERN = 'RULE_PATTERN';
export const MAX_KEYWORDS = 200;
export const MAX_KEYWORD_LENGTH = 100;
export const MAX_PATTERNS = 20;

/** The fields of a rule this module reads (as the schema leaves them). */
export interface OwnMatchers {
  id: string;
  enabled?: boolean;
  keywords?: readonly string[] | undefined;
  patterns?: ReadonlyArray<{
    name: string;
    regex: string;
    score?: number | undefined;
    flags?: string | undefined;
  }>;
}

/** The `recognizer` prefix of the findings a rule owns: "rule:<id>/" (ids never hold a slash). */
export function ownerPrefix(ruleId: string): string {
  return `rule:${ruleId}/`;
}

/** Whether a rule has keywords or patterns (and so needs one of them to fire). */
export function hasOwnMatchers(rule: OwnMatchers): boolean {
  return (rule.keywords?.length ?? 0) > 0 || (rule.patterns?.length ?? 0) > 0;
}

/** The problems with a rule's keywords and patterns, each with its path inside the rule and the rule named. */
export function checkOwnMatchers(
  rule: OwnMatchers,
): Array<{ path: Array<string | number>; message: string }> {
  const out: Array<{ path: Array<string | number>; message: string }> = [];
  const who = `rule "${rule.id}"`;
  const keywords = rule.keywords ?? [];
  if (keywords.length > MAX_KEYWORDS)
    out.push({ path: ['keywords'], message: `${who}: at most ${MAX_KEYWORDS} keywords` });
  keywords.forEach((k, i) => {
    const t = k.trim();
    const problem =
      t.length < 2
        ? 'is empty or shorter than 2 characters'
        : t.length > MAX_KEYWORD_LENGTH
          ? `is longer than ${MAX_KEYWORD_LENGTH} characters`
          : !/[\p{L}\p{N}]/u.test(t)
            ? 'needs a letter or a digit'
            : null;
    if (problem) out.push({ path: ['keywords', i], message: `${who}: keyword ${i + 1} ${problem}` });
  });
  const patterns = rule.patterns ?? [];
  if (patterns.length > MAX_PATTERNS)
    out.push({ path: ['patterns'], message: `${who}: at most ${MAX_PATTERNS} patterns` });
  const names = new Set<string>();
  patterns.forEach((p, i) => {
    if (names.has(p.name))
      out.push({ path: ['patterns', i, 'name'], message: `${who}: pattern name "${p.name}" is used twice` });
    names.add(p.name);
    const problem = checkRulePattern(p.regex, p.flags ?? '');
    if (problem)
      out.push({
        path: ['patterns', i, 'regex'],
        message: `${who}, pattern "${p.name}": refused: ${problem}`,
      });
  });
  return out;
}

interface Compiled {
  owner: string;
  keywords: RegExp | null;
  patterns: Array<{ recognizer: string; regex: RegExp; score: number }>;
}

/** Each enabled rule's keywords (one whole-word, case-insensitive matcher) and patterns, compiled once. */
export class RuleMatchers {
  private readonly compiled: Compiled[];

  constructor(rules: readonly OwnMatchers[]) {
    this.compiled = rules
      .filter((r) => r.enabled !== false && hasOwnMatchers(r))
      .map((r) => {
        const owner = ownerPrefix(r.id);
        const words = (r.keywords ?? []).map((k) => k.trim()).filter(Boolean);
        return {
          owner,
          keywords: words.length > 0 ? new RegExp(wordListRegex(words).source, 'giu') : null,
          patterns: (r.patterns ?? []).map((p) => ({
            recognizer: `${owner}pattern:${p.name}`,
            regex: new RegExp(p.regex, `g${p.flags === 'i' ? 'i' : ''}u`),
            score: p.score ?? 1,
          })),
        };
      });
  }

  get size(): number {
    return this.compiled.length;
  }

  /** The findings of every rule's keywords and patterns in one part (not overlap-resolved: rules do not compete). */
  find(part: TextPart): Finding[] {
    const out: Finding[] = [];
    const text = part.text;
    if (!text) return out;
    const add = (re: RegExp, type: string, recognizer: string, score: number) => {
      re.lastIndex = 0;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        out.push({
          type,
          category: 'rule',
          part: part.id,
          start: m.index,
          end: m.index + m[0].length,
          score,
          recognizer,
        });
      }
    };
    for (const c of this.compiled) {
      if (c.keywords) add(c.keywords, RULE_KEYWORD, `${c.owner}keywords`, 1);
      for (const p of c.patterns) add(p.regex, RULE_PATTERN, p.recognizer, p.score);
    }
    return out;
  }
}
