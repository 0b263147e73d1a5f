// Refuses admin-supplied patterns that could backtrack catastrophically or are otherwise unsafe to run on
// every message: nested or adjacent unbounded quantifiers over overlapping input, back-references, and
// lookarounds. Conservative on purpose: a refused pattern gets a message saying why, and can be rewritten.

const MAX_LENGTH = 300;

/** Returns a reason the pattern is refused, or null when it is safe to use. */
export function checkPatternSafety(source: string): string | null {
  if (source.length > MAX_LENGTH) return `pattern is longer than ${MAX_LENGTH} characters`;
  try {
    new RegExp(source, 'u');
  } catch (err) {
    return `not a valid regular expression: ${(err as Error).message}`;
  }
  if (/\\[1-9]|\\k</.test(source)) return 'back-references are not allowed';
  if (/\(\?<?[=!]/.test(source)) return 'lookarounds are not allowed';
  // Walk groups: a quantified group that itself contains a quantifier can backtrack exponentially.
  const stack: Array<{ hasQuantifier: boolean }> = [{ hasQuantifier: false }];
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      continue;
    }
    if (c === '(') {
      stack.push({ hasQuantifier: false });
      continue;
    }
    const isQuant = c === '*' || c === '+' || c === '?' || c === '{';
    if (c === ')') {
      const inner = stack.pop();
      if (!inner || stack.length === 0) return 'unbalanced parentheses';
      const next = source[i + 1];
      const quantified = next === '*' || next === '+' || next === '{' || next === '?';
      if (quantified && inner.hasQuantifier && next !== '?')
        return 'a repeated group contains a repetition (nested quantifiers can take exponential time)';
      if (inner.hasQuantifier || quantified) stack[stack.length - 1]!.hasQuantifier = true;
      continue;
    }
    if (isQuant) stack[stack.length - 1]!.hasQuantifier = true;
  }
  if (inClass) return 'unterminated character class';
  if (/(\.\*|\.\+|\\[sSwWdD][*+])\s*(\.\*|\.\+|\\[sSwWdD][*+])/.test(source))
    return 'two unbounded repetitions in a row can take quadratic time';
  return null;
}
