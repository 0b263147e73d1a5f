// The rule editor's text forms of a rule's own patterns: one per line, "name: regex", with options in
// brackets after the name ("ticket (i, 0.8): TCK\d{6}"). Only reads and writes the admin's own rule text.

export interface PatternEntry {
  name: string;
  regex: string;
  flags?: 'i';
  score?: number;
}

/** One line per pattern, as the editor shows it. */
export function formatPatternLines(patterns: readonly PatternEntry[] | undefined): string {
  return (patterns ?? [])
    .map((p) => {
      const opts = [...(p.flags === 'i' ? ['i'] : []), ...(p.score !== undefined ? [String(p.score)] : [])];
      return `${p.name}${opts.length ? ` (${opts.join(', ')})` : ''}: ${p.regex}`;
    })
    .join('\n');
}

/**
 * Reads the editor's lines back. Blank lines are skipped; spaces around the name and the pattern are dropped.
 * A line that cannot be read is reported with its number (1-based, counting every line) and left out.
 */
export function parsePatternLines(text: string): {
  patterns: PatternEntry[];
  /** The line each pattern came from (1-based). */
  lines: number[];
  errors: Array<{ line: number; message: string }>;
} {
  const patterns: PatternEntry[] = [];
  const lines: number[] = [];
  const errors: Array<{ line: number; message: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const m = /^\s*([^:()]*?)\s*(?:\(([^)]*)\))?\s*:(.*)$/.exec(raw);
    if (!m || m[1] === '' || m[3]!.trim() === '') {
      errors.push({
        line,
        message: 'write the name, a colon and the pattern, e.g. study-id: STUDY-\\d{4,6}',
      });
      return;
    }
    const entry: PatternEntry = { name: m[1]!, regex: m[3]!.trim() };
    for (const opt of (m[2] ?? '').split(',').map((o) => o.trim())) {
      if (opt === '') continue;
      if (opt === 'i') entry.flags = 'i';
      else if (/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(opt)) entry.score = Number(opt);
      else {
        errors.push({
          line,
          message: `unknown option "${opt}" (use i to ignore case and/or a score from 0 to 1)`,
        });
        return;
      }
    }
    patterns.push(entry);
    lines.push(line);
  });
  return { patterns, lines, errors };
}

/** Keywords, one per line (blank lines skipped), with the line each came from (1-based). */
export function parseKeywordLines(text: string): { keywords: string[]; lines: number[] } {
  const keywords: string[] = [];
  const lines: number[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const k = raw.trim();
    if (k === '') return;
    keywords.push(k);
    lines.push(i + 1);
  });
  return { keywords, lines };
}
