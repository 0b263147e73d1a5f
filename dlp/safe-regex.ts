// Refuses admin-supplied patterns that could backtrack catastrophically or are otherwise unsafe to run on
// every message: nested or adjacent unbounded quantifiers over overlapping input, repeated alternatives that
// can match the same text, back-references, and lookarounds. Conservative on purpose: a refused pattern gets
// a message saying why, and can be rewritten. It never runs a pattern over message text.

const MAX_LENGTH = 300;
/** The largest count a {n,m} repetition may name (huge counts compile slowly and multiply backtracking). */
const MAX_COUNT = 1000;
/** The largest count a rule pattern's {n,m} may name. */
const MAX_RULE_COUNT = 100;
/**
 * The most ways a rule pattern may have of matching at one position: the product of its repetitions' ranges
 * (m - n + 1) and its alternations' branch counts. Without nested or unbounded repetition this bounds the
 * backtracking at each position, so a scan stays linear in the text (64: about a second per megabyte of the
 * worst synthetic input, such as a megabyte of digits for \w{1,8}\d{1,8}X, measured on a loaded machine;
 * ordinary mail is not affected).
 */
const MAX_RULE_WAYS = 64;

/** A quantifier read at `i`: its length in the source, its upper bound (Infinity when unbounded). */
function readQuantifier(source: string, i: number): { length: number; min: number; max: number } | null {
  const c = source[i];
  let q: { length: number; min: number; max: number } | null = null;
  if (c === '*') q = { length: 1, min: 0, max: Infinity };
  else if (c === '+') q = { length: 1, min: 1, max: Infinity };
  else if (c === '?') q = { length: 1, min: 0, max: 1 };
  else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i));
    if (!m) return null;
    const min = Number(m[1]);
    q = { length: m[0].length, min, max: m[2] === undefined ? min : m[3] ? Number(m[3]) : Infinity };
  }
  if (q && source[i + q.length] === '?') q.length++;
  return q;
}

/** Length of the escape at `i` (which is a backslash): \p{…}, \u{…}, \uXXXX, \xXX, \cX or one character. */
function escapeLength(source: string, i: number): number {
  const next = source[i + 1];
  if ((next === 'p' || next === 'P' || next === 'u') && source[i + 2] === '{') {
    const close = source.indexOf('}', i + 3);
    return close === -1 ? 2 : close - i + 1;
  }
  if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(source.slice(i + 2, i + 6))) return 6;
  if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(source.slice(i + 2, i + 4))) return 4;
  if (next === 'c') return 3;
  return 2;
}

/** A branch that is plain literal text (letters, digits, spaces, escaped punctuation): its characters, or null. */
function literalText(branch: string): string | null {
  let out = '';
  for (let i = 0; i < branch.length; i++) {
    const c = branch[i]!;
    if (c === '\\') {
      const n = branch[i + 1];
      if (n === undefined || /[A-Za-z0-9]/.test(n)) return null;
      out += n;
      i++;
    } else if ('.[]()|*+?{}^$'.includes(c)) return null;
    else out += c;
  }
  return out;
}

interface Shape {
  problem: string | null;
  /** Some quantifier has no upper bound (*, +, {n,}). */
  unbounded: boolean;
  /** The largest finite count in a {n,m}. */
  maxCount: number;
  /** Repetition ranges and alternation branch counts multiplied (Infinity with an unbounded repetition). */
  ways: number;
}

interface Group {
  hasQuantifier: boolean;
  /** Source index just after the group's opening (after "(?:" or "(?<name>"). */
  bodyStart: number;
  /** Source indices of this group's own top-level "|". */
  bars: number[];
}

/** Walks the pattern once: groups, classes, escapes and quantifiers, and finds the exponential shapes. */
function shapeOf(source: string, ignoreCase: boolean): Shape {
  const shape: Shape = { problem: null, unbounded: false, maxCount: 0, ways: 1 };
  const refuse = (problem: string): Shape => ({ ...shape, problem });
  const stack: Group[] = [{ hasQuantifier: false, bodyStart: 0, bars: [] }];
  const note = (q: { min: number; max: number }) => {
    if (q.max === Infinity) shape.unbounded = true;
    shape.maxCount = Math.max(shape.maxCount, q.min, q.max === Infinity ? 0 : q.max);
    shape.ways *= q.max - q.min + 1;
  };
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      i += escapeLength(source, i) - 1;
      continue;
    }
    if (c === '[') {
      // Skip the class, escapes included.
      let j = i + 1;
      if (source[j] === '^') j++;
      if (source[j] === ']') j++;
      while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? escapeLength(source, j) : 1;
      if (j >= source.length) return refuse('unterminated character class');
      i = j;
      continue;
    }
    if (c === '(') {
      let bodyStart = i + 1;
      if (source[i + 1] === '?') {
        const named = /^\(\?(:|<[A-Za-z_$][\w$]*>)/.exec(source.slice(i));
        if (!named) return refuse('only plain, (?:…) and named groups are allowed');
        bodyStart = i + named[0].length;
      }
      stack.push({ hasQuantifier: false, bodyStart, bars: [] });
      i = bodyStart - 1;
      continue;
    }
    if (c === '|') {
      stack[stack.length - 1]!.bars.push(i);
      continue;
    }
    if (c === ')') {
      const inner = stack.pop();
      if (!inner || stack.length === 0) return refuse('unbalanced parentheses');
      const q = readQuantifier(source, i + 1);
      const repeated = q !== null && q.max > 1;
      if (repeated && inner.hasQuantifier)
        return refuse(
          'a repeated group contains a repetition (nested quantifiers can take exponential time)',
        );
      if (repeated && inner.bars.length > 0) {
        // (a|aa)+ can split one text many ways; literal alternatives that differ in their first character cannot.
        const cuts = [inner.bodyStart - 1, ...inner.bars, i];
        const branches = cuts.slice(1).map((end, k) => source.slice(cuts[k]! + 1, end));
        const literals = branches.map(literalText);
        const firsts = literals.map((l) =>
          l && l.length > 0 ? (ignoreCase ? l[0]!.toLowerCase() : l[0]!) : null,
        );
        if (firsts.some((f) => f === null) || new Set(firsts).size !== firsts.length)
          return refuse(
            'a repeated group has alternatives that can match the same text, like (a|aa)+ (use a character class, or literal alternatives that start differently)',
          );
      }
      if (q) note(q);
      shape.ways *= inner.bars.length + 1;
      if (inner.hasQuantifier || q) stack[stack.length - 1]!.hasQuantifier = true;
      if (q) i += q.length;
      continue;
    }
    const q = readQuantifier(source, i);
    if (q) {
      note(q);
      stack[stack.length - 1]!.hasQuantifier = true;
      i += q.length - 1;
    }
  }
  if (stack.length !== 1) return refuse('unbalanced parentheses');
  shape.ways *= stack[0]!.bars.length + 1;
  return shape;
}

/** Returns a reason the pattern is refused, or null when it is safe to use. */
export function checkPatternSafety(source: string, flags = ''): string | null {
  if (source.length > MAX_LENGTH) return `pattern is longer than ${MAX_LENGTH} characters`;
  try {
    new RegExp(source, `${flags}u`);
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
  if (/\\[1-9]|\\k</.test(source)) return 'back-references are not allowed';
  if (/\(\?<?[=!]/.test(source)) return 'lookarounds are not allowed';
  const shape = shapeOf(source, flags.includes('i'));
  if (shape.problem) return shape.problem;
  if (shape.maxCount > MAX_COUNT) return `a repetition count above ${MAX_COUNT} is not allowed`;
  if (/(\.\*|\.\+|\\[sSwWdD][*+])\s*(\.\*|\.\+|\\[sSwWdD][*+])/.test(source))
    return 'two unbounded repetitions in a row can take quadratic time';
  return null;
}

/**
 * The stricter check for a rule's own patterns, which run over every message: the checks above, plus no
 * repetition without an upper bound (`\d+` over a long run of digits takes quadratic time), counts of at most
 * 100, at most MAX_RULE_WAYS ways of matching at one position, and no match of empty text. Deterministic (no
 * timing), so the web that publishes and the gateway that loads always agree. `flags` may only be '' or 'i'.
 */
export function checkRulePattern(source: string, flags = ''): string | null {
  if (flags !== '' && flags !== 'i') return "the only flag allowed is 'i' (ignore case)";
  const problem = checkPatternSafety(source, flags);
  if (problem) return problem;
  const shape = shapeOf(source, flags === 'i');
  if (shape.unbounded)
    return 'repetition without an upper bound (*, + or {n,}) is not allowed: give one, e.g. \\d{1,12} or [A-Z]{2,10}';
  if (shape.maxCount > MAX_RULE_COUNT) return `a repetition count above ${MAX_RULE_COUNT} is not allowed`;
  if (shape.ways > MAX_RULE_WAYS)
    return `its repetition ranges and alternatives multiply to ${shape.ways} ways of matching at one position (at most ${MAX_RULE_WAYS}): narrow them, e.g. [A-Z]{2,4} instead of [A-Z]{1,40}`;
  const re = new RegExp(source, `g${flags}u`);
  for (const probe of ['', ' ', 'a', 'A1 -.\n_z', 'word word']) {
    re.lastIndex = 0;
    for (let m = re.exec(probe); m; m = re.exec(probe)) {
      if (m[0].length === 0) return 'the pattern can match empty text';
    }
  }
  return null;
}
