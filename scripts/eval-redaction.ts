// Evaluates image redaction on a labelled folder (not a test):
// `npm run eval:redaction -- DIR [--ocr tesseract|tesseract.js] [--save OUTDIR]`.
// DIR holds images and manifest.json ([{file, phi: [tokens], keep: [words]}]). Each image is OCRed before
// and after redaction; printed: per image how many PHI tokens and keep words were readable before and after,
// the manifest's PHI tokens still readable after (labelled synthetic data), overall recall and legibility.
// The reading engine is native `tesseract` (an engine independent of the redactor's tesseract.js); without it
// the run fails, unless `--ocr tesseract.js` asks for the weaker same-engine reading. `--save` writes the
// redacted images for a human to look at. Never prints recognised text.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_RULES_FILE, loadAnalyzer } from '../gateway/rules.js';
import { OcrPool } from '../redaction/ocr-pool.js';
import { redactImage } from '../redaction/redact.js';

const run = promisify(execFile);
/** Native tesseract binarisations: 0 global Otsu (its default), 1 Leptonica adaptive Otsu, 2 Sauvola. */
const NATIVE_THRESHOLDING = [0, 1, 2] as const;

interface Entry {
  file: string;
  phi: string[];
  keep?: string[];
}

/** The native tesseract version line, or undefined when `tesseract` is not on PATH (or does not run). */
async function nativeTesseractVersion(): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run('tesseract', ['--version']);
    // tesseract 4 prints its version on stderr, 5 on stdout.
    return (stdout || stderr).split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

interface Args {
  dir: string;
  engine: 'tesseract' | 'tesseract.js';
  save?: string;
}

const USAGE =
  'usage: eval-redaction DIR [--ocr tesseract|tesseract.js] [--save OUTDIR]\n' +
  '  DIR holds images and manifest.json; the output is read by native tesseract unless --ocr tesseract.js\n';

function parseArgs(argv: readonly string[]): Args | string {
  let dir: string | undefined;
  let engine: Args['engine'] = 'tesseract';
  let save: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--ocr' || a === '--save') {
      const v = argv[++i];
      if (v === undefined) return `${a} needs a value`;
      if (a === '--save') save = v;
      else if (v === 'tesseract' || v === 'tesseract.js') engine = v;
      else return `--ocr must be tesseract or tesseract.js, not "${v}"`;
    } else if (a.startsWith('--')) return `unknown option ${a}`;
    else if (dir === undefined) dir = a;
    else return 'only one DIR';
  }
  if (dir === undefined) return 'DIR is missing';
  return { dir, engine, ...(save !== undefined ? { save } : {}) };
}

function normalise(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === 'string') {
    process.stderr.write(`eval-redaction: ${args}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const { dir } = args;
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Entry[];
  const nativeVersion = args.engine === 'tesseract' ? await nativeTesseractVersion() : undefined;
  if (args.engine === 'tesseract' && nativeVersion === undefined) {
    // No silent fallback: reading the output with the redactor's own engine can miss what another reader
    // would see, so a weaker measurement must be asked for by name.
    process.stderr.write(
      'eval-redaction: native `tesseract` is not on PATH (Debian: apt-get install tesseract-ocr tesseract-ocr-eng).\n' +
        'The output must be read by an engine independent of the redactor; to measure with tesseract.js anyway,\n' +
        'pass --ocr tesseract.js (same engine as the redactor: a weaker check).\n',
    );
    process.exitCode = 2;
    return;
  }
  const native = args.engine === 'tesseract';
  if (args.save !== undefined) await mkdir(args.save, { recursive: true });
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
        // Read three ways and count a token readable if any reading has it: a reader is free to try several
        // binarisations, and the default global Otsu alone reads nothing on a photographed card (measured).
        for (const method of NATIVE_THRESHOLDING)
          out.push(
            (
              await run('tesseract', [f, 'stdout', '-c', `thresholding_method=${method}`], {
                maxBuffer: 1 << 24,
                env: { ...process.env, OMP_THREAD_LIMIT: '1' },
              })
            ).stdout,
          );
      }
    }
    return normalise(out.join('\n'));
  }

  process.stdout.write(
    `reading engine: ${native ? `native ${nativeVersion} (union of thresholding methods ${NATIVE_THRESHOLDING.join(', ')})` : 'tesseract.js (--ocr tesseract.js: same engine as the redactor)'}\n\n`,
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
        if (args.save !== undefined) await writeFile(path.join(args.save, path.basename(e.file)), r.output);
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
