// Redaction benchmark (not a test): images/s and p50/p99 per image for a 1000×400 screenshot and a 2500×2300
// scan, beside native `tesseract` on the same images in the same run, OCR passes per image, and peak memory.
// Measures and reports; it does not pass or fail. `node dist/bench/redact.js [ROUNDS]`
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { DEFAULT_RULES_FILE, loadAnalyzer } from '../gateway/rules.js';
import { OcrPool } from '../redaction/ocr-pool.js';
import { redactImage, type OcrStats } from '../redaction/redact.js';
import { readMemory } from './proc-stats.js';

const FIRST = ['Olivia', 'Liam', 'Emma', 'Noah', 'Sophia', 'Lucas', 'Harper', 'Ethan'];
const LAST = ['Garcia', 'Johnson', 'Miller', 'Davis', 'Martinez', 'Wilson', 'Anderson', 'Thompson'];

function nameOf(i: number): string {
  return `${FIRST[i % 8]} ${LAST[(i * 3) % 8]}`;
}

function formLines(i: number): string[] {
  return [
    'PATIENT REGISTRATION FORM',
    `Patient: ${nameOf(i)}    DOB 0${(i % 9) + 1}/1${i % 9}/19${50 + (i % 40)}`,
    `MRN ${4829301 + i}    Phone (555) 123-${String(4567 + i).slice(-4)}`,
    'Address: 12 Elm Street, Springfield',
    'Reason for visit: tooth pain, lower left molar',
    'Insurance: Blue Shield PPO    Group 100200',
    'I consent to treatment and to the release of information needed for billing.',
    'Signature ______________________    Date ____________',
    'Medications: none reported.   Allergies: penicillin',
    'Emergency contact: spouse, phone on file',
  ];
}

function screenLines(i: number): string[] {
  return [
    'Appointments - Tuesday',
    `9:00  ${nameOf(i)}   recall exam   (555) 201-${String(3300 + i).slice(-4)}`,
    `9:45  ${nameOf(i + 3)}   crown prep   MRN ${5520100 + i}`,
    '10:30  lunch meeting, staff room',
    `11:15  ${nameOf(i + 5)}   DOB 04/2${i % 9}/1971   cleaning`,
  ];
}

function svg(width: number, height: number, lines: string[], size: number, ground: string): Buffer {
  const step = Math.round(size * 2.2);
  const text = lines
    .map(
      (l, j) =>
        `<text x="${size * 2}" y="${size * 3 + j * step}" font-family="DejaVu Sans" font-size="${size}" fill="#202020">${l}</text>`,
    )
    .join('');
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${ground}"/>${text}</svg>`,
  );
}

/** A 1000×400 screenshot: small UI-sized text (15 px), flat background, PNG. */
function makeScreenshot(i: number): Promise<Buffer> {
  return sharp(svg(1000, 400, screenLines(i), 15, '#ffffff'))
    .png()
    .toBuffer();
}

/** A 2500×2300 scanned page (~300 dpi): 40 px text, grey noise, slight rotation, PNG. */
async function makeScan(i: number): Promise<Buffer> {
  const base = await sharp(svg(2500, 2300, formLines(i), 40, '#fbfaf5'))
    .flatten({ background: '#fbfaf5' })
    .png()
    .toBuffer();
  const noise = await sharp({
    create: {
      width: 2500,
      height: 2300,
      channels: 3,
      background: '#808080',
      noise: { type: 'gaussian', mean: 128, sigma: 12 },
    },
  })
    .png()
    .toBuffer();
  return sharp(base)
    .composite([{ input: noise, blend: 'soft-light' }])
    .rotate(1.2, { background: '#fbfaf5' })
    .resize(2500, 2300, { fit: 'fill' })
    .png()
    .toBuffer();
}

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

interface Figures {
  perSecond: number;
  p50: number;
  p99: number;
}

function figures(times: number[]): Figures {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    perSecond: (1000 * times.length) / times.reduce((a, b) => a + b, 0),
    p50: pct(sorted, 0.5),
    p99: pct(sorted, 0.99),
  };
}

/** `tesseract FILE stdout`, single-threaded; resolves with the child's peak RSS (bytes, from /usr/bin/time -v). */
function nativeOnce(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-v', 'tesseract', file, 'stdout'], {
      env: { ...process.env, OMP_THREAD_LIMIT: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`tesseract exited with ${code}`));
      resolve(Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(err)?.[1] ?? NaN) * 1024);
    });
  });
}

interface Run {
  pipeline: Figures;
  native: Figures;
  /** Mean OCR passes per image and mean milliseconds per pass in the pipeline. */
  passes: number;
  msPerPass: number;
  boxes: number;
  nativePeakRss: number;
}

/**
 * One image at a time with one OCR worker, each image through the pipeline and then through native tesseract,
 * so both see the same machine load (the bench machine is shared).
 */
async function run(images: readonly Buffer[], dir: string): Promise<Run> {
  const pool = new OcrPool({ size: 1, recycleAfter: 1_000 });
  const analyzer = loadAnalyzer(DEFAULT_RULES_FILE);
  await pool.warmUp();
  const files: string[] = [];
  for (const [i, img] of images.entries()) {
    const f = path.join(dir, `img-${i}.png`);
    await writeFile(f, img);
    files.push(f);
  }
  // Warm caches on both sides.
  await redactImage(images[0]!, { pool, analyzer });
  await nativeOnce(files[0]!);
  const stats: OcrStats = { passes: 0, ms: 0, residuals: [] };
  const pipeline: number[] = [];
  const native: number[] = [];
  let boxes = 0;
  let nativePeakRss = 0;
  for (const [i, img] of images.entries()) {
    let t = performance.now();
    const r = await redactImage(img, { pool, analyzer, ocrStats: stats });
    pipeline.push(performance.now() - t);
    boxes += r.boxes.length;
    t = performance.now();
    nativePeakRss = Math.max(nativePeakRss, await nativeOnce(files[i]!));
    native.push(performance.now() - t);
  }
  await pool.close();
  return {
    pipeline: figures(pipeline),
    native: figures(native),
    passes: stats.passes / images.length,
    msPerPass: stats.ms / Math.max(1, stats.passes),
    boxes: boxes / images.length,
    nativePeakRss,
  };
}

const rounds = Number(process.argv[2] ?? 6);
const dir = await mkdtemp(path.join(tmpdir(), 'phigw-bench-redact-'));
const MB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;
try {
  const sets: Array<[string, Buffer[]]> = [
    [
      'screenshot 1000x400 png',
      await Promise.all(Array.from({ length: rounds }, (_, i) => makeScreenshot(i))),
    ],
    ['scan 2500x2300 png', await Promise.all(Array.from({ length: rounds }, (_, i) => makeScan(i)))],
  ];
  process.stdout.write(
    `redaction benchmark: ${rounds} images per kind, one image at a time, 1 OCR worker; native tesseract ` +
      'with OMP_THREAD_LIMIT=1 (single thread, as a tesseract.js worker)\n' +
      'pipeline = decode, OCR, detect, paint, encode, verify OCR; native = `tesseract in.png stdout` (one OCR pass)\n\n' +
      'image                     pipeline img/s  p50 ms  p99 ms  passes  ms/pass   native img/s  p50 ms  p99 ms   ratio p50\n',
  );
  let nativePeak = 0;
  for (const [name, images] of sets) {
    const r = await run(images, dir);
    nativePeak = Math.max(nativePeak, r.nativePeakRss);
    const { pipeline: p, native: n } = r;
    process.stdout.write(
      `${name.padEnd(25)} ${p.perSecond.toFixed(2).padStart(14)} ${Math.round(p.p50).toString().padStart(7)} ` +
        `${Math.round(p.p99).toString().padStart(7)} ${r.passes.toFixed(1).padStart(7)} ${Math.round(r.msPerPass).toString().padStart(8)}` +
        `   ${n.perSecond.toFixed(2).padStart(12)} ${Math.round(n.p50).toString().padStart(7)} ${Math.round(n.p99).toString().padStart(7)}` +
        `   ${(p.p50 / n.p50).toFixed(2).padStart(8)}x  (${r.boxes.toFixed(1)} boxes/image)\n`,
    );
  }
  const mem = readMemory(process.pid);
  process.stdout.write(
    `\npeak RSS: this process ${mem ? MB(mem.peakRss) : 'n/a'} (node + sharp + the OCR worker thread), ` +
      `native tesseract ${nativePeak ? MB(nativePeak) : 'n/a'} (largest child, /usr/bin/time -v)\n` +
      'target: pipeline p50 within 1.5x of native tesseract p50\n',
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
