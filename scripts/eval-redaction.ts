// Evaluates image redaction on a labelled folder (not a test): `node dist/scripts/eval-redaction.js DIR`.
// DIR holds images and manifest.json ([{file, phi: [tokens], keep: [words]}]). Each image is OCRed before
// and after redaction; printed: per image how many PHI tokens and keep words were readable before and after,
// the manifest's PHI tokens still readable after (labelled synthetic data), overall recall and legibility.
// The reading engine is native `tesseract` when it is on PATH (independent of the redactor's engine),
// otherwise a separate tesseract.js pool. Never prints recognised text.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_RULES_FILE, loadAnalyzer } from '../gateway/rules.js';
import { OcrPool } from '../redaction/ocr-pool.js';
import { redactImage } from '../redaction/redact.js';

const run = promisify(execFile);

interface Entry {
  file: string;
  phi: string[];
  keep?: string[];
}

async function hasNativeTesseract(): Promise<boolean> {
  try {
    await run('tesseract', ['--version']);
    return true;
  } catch {
    return false;
  }
}

function normalise(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ');
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: eval-redaction DIR (a folder with manifest.json)\n');
    process.exitCode = 2;
    return;
  }
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Entry[];
  const native = await hasNativeTesseract();
  const pool = new OcrPool({ size: 2 });
  const reader = native ? undefined : new OcrPool({ size: 1 });
  const analyzer = loadAnalyzer(DEFAULT_RULES_FILE);
  const work = await mkdtemp(path.join(tmpdir(), 'phigw-eval-'));

  async function read(image: Buffer): Promise<string> {
    const pages = (await sharp(image).metadata()).pages ?? 1;
    const out: string[] = [];
    for (let p = 0; p < pages; p++) {
      const png = await sharp(image, { page: p }).flatten({ background: '#ffffff' }).png().toBuffer();
      if (reader) out.push((await reader.recognize(png)).map((w) => w.text).join(' '));
      else {
        const f = path.join(work, 'page.png');
        await writeFile(f, png);
        out.push((await run('tesseract', [f, 'stdout'], { maxBuffer: 1 << 24 })).stdout);
      }
    }
    return normalise(out.join('\n'));
  }

  process.stdout.write(
    `reading engine: ${native ? 'native tesseract' : 'tesseract.js (native tesseract not found on PATH)'}\n\n`,
  );
  process.stdout.write(
    'IMAGE            PHI before  after   KEEP before  after   boxes   ms  still readable\n',
  );
  let phiBefore = 0;
  let phiAfter = 0;
  let phiTotal = 0;
  let keepBefore = 0;
  let keepAfter = 0;
  let keepTotal = 0;
  let failed = 0;
  const times: number[] = [];
  try {
    for (const e of manifest) {
      const input = readFileSync(path.join(dir, e.file));
      const keep = e.keep ?? [];
      const before = await read(input);
      const count = (text: string, tokens: string[]) => tokens.filter((t) => text.includes(t.toLowerCase()));
      const pb = count(before, e.phi);
      const kb = count(before, keep);
      phiTotal += e.phi.length;
      keepTotal += keep.length;
      phiBefore += pb.length;
      keepBefore += kb.length;
      const started = performance.now();
      let line: string;
      try {
        const r = await redactImage(input, { pool, analyzer });
        times.push(performance.now() - started);
        const after = await read(r.output);
        const pa = count(after, e.phi);
        const ka = count(after, keep);
        phiAfter += pa.length;
        keepAfter += ka.length;
        line =
          `${e.file.padEnd(16)} ${`${pb.length}/${e.phi.length}`.padStart(10)} ${String(pa.length).padStart(6)}` +
          `   ${`${kb.length}/${keep.length}`.padStart(11)} ${String(ka.length).padStart(6)}` +
          `   ${String(r.boxes.length).padStart(5)} ${String(Math.round(times.at(-1)!)).padStart(5)}  ${pa.join(', ')}`;
      } catch (err) {
        failed++;
        // A refused (quarantined) image releases nothing: no token readable, but nothing legible either.
        line = `${e.file.padEnd(16)} ${`${pb.length}/${e.phi.length}`.padStart(10)}  refused: ${(err as { code?: string }).code ?? 'error'}`;
      }
      process.stdout.write(line + '\n');
    }
  } finally {
    await pool.close();
    await reader?.close();
    await rm(work, { recursive: true, force: true });
  }
  const pct = (a: number, b: number) => (b === 0 ? 'n/a' : `${((100 * a) / b).toFixed(1)}%`);
  times.sort((a, b) => a - b);
  process.stdout.write(
    `\nPHI tokens readable before: ${phiBefore}/${phiTotal}; after: ${phiAfter} ` +
      `(redaction recall ${pct(phiBefore - phiAfter, phiBefore)}; ${pct(phiAfter, phiTotal)} of all PHI tokens readable after)\n` +
      `keep words readable before: ${keepBefore}/${keepTotal}; after: ${keepAfter} (legibility kept ${pct(keepAfter, keepBefore)})\n` +
      `images refused (quarantined): ${failed}/${manifest.length}; ` +
      `time per image p50 ${Math.round(times[Math.floor(times.length / 2)] ?? 0)} ms, max ${Math.round(times.at(-1) ?? 0)} ms\n`,
  );
}

await main();
