// A line diff (longest common subsequence) for comparing two rule-set versions on the versions page.
// Small inputs only (rule files are capped in size); beyond the cell budget it shows a full replacement.

export interface DiffLine {
  op: ' ' | '+' | '-';
  text: string;
  /** Line numbers in the old and new text (1-based), where the line exists there. */
  oldLine?: number;
  newLine?: number;
}

/** Above this many LCS cells (old lines × new lines after trimming), the diff is "all removed, all added". */
const MAX_CELLS = 4_000_000;

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The lines of `b` against `a`: unchanged (' '), removed from a ('-') and added in b ('+'), in order. */
export function lineDiff(a: string, b: string): DiffLine[] {
  const x = splitLines(a);
  const y = splitLines(b);
  let pre = 0;
  while (pre < x.length && pre < y.length && x[pre] === y[pre]) pre++;
  let post = 0;
  while (post < x.length - pre && post < y.length - pre && x[x.length - 1 - post] === y[y.length - 1 - post])
    post++;
  const xs = x.slice(pre, x.length - post);
  const ys = y.slice(pre, y.length - post);
  const out: DiffLine[] = [];
  let i: number;
  let j: number;
  for (let k = 0; k < pre; k++) out.push({ op: ' ', text: x[k]!, oldLine: k + 1, newLine: k + 1 });
  i = pre;
  j = pre;
  const n = xs.length;
  const m = ys.length;
  if (n * m > MAX_CELLS) {
    for (const t of xs) out.push({ op: '-', text: t, oldLine: ++i });
    for (const t of ys) out.push({ op: '+', text: t, newLine: ++j });
  } else {
    // lcs[r * (m + 1) + c]: LCS length of xs[r..] and ys[c..].
    const lcs = new Uint32Array((n + 1) * (m + 1));
    for (let r = n - 1; r >= 0; r--)
      for (let c = m - 1; c >= 0; c--)
        lcs[r * (m + 1) + c] =
          xs[r] === ys[c]
            ? lcs[(r + 1) * (m + 1) + c + 1]! + 1
            : Math.max(lcs[(r + 1) * (m + 1) + c]!, lcs[r * (m + 1) + c + 1]!);
    let r = 0;
    let c = 0;
    while (r < n || c < m) {
      if (r < n && c < m && xs[r] === ys[c]) {
        out.push({ op: ' ', text: xs[r]!, oldLine: ++i, newLine: ++j });
        r++;
        c++;
      } else if (r < n && (c === m || lcs[(r + 1) * (m + 1) + c]! >= lcs[r * (m + 1) + c + 1]!)) {
        out.push({ op: '-', text: xs[r]!, oldLine: ++i });
        r++;
      } else {
        out.push({ op: '+', text: ys[c]!, newLine: ++j });
        c++;
      }
    }
  }
  for (let k = 0; k < post; k++) out.push({ op: ' ', text: x[i]!, oldLine: ++i, newLine: ++j });
  return out;
}

/** Groups a diff into hunks with `context` unchanged lines around each change; null between hunks. */
export function hunks(diff: readonly DiffLine[], context = 3): Array<DiffLine | null> {
  const keep = new Array<boolean>(diff.length).fill(false);
  diff.forEach((d, k) => {
    if (d.op === ' ') return;
    for (let t = Math.max(0, k - context); t <= Math.min(diff.length - 1, k + context); t++) keep[t] = true;
  });
  const out: Array<DiffLine | null> = [];
  let skipped = false;
  diff.forEach((d, k) => {
    if (keep[k]) {
      if (skipped && out.length > 0) out.push(null);
      out.push(d);
      skipped = false;
    } else skipped = true;
  });
  return out;
}
