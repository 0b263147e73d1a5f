// Redaction benchmark (not a test): images/s and p50/p99 per image for a scanned form (1000×1400) and a
// phone-photo-sized image (3000×4000 JPEG), with 1 and 2 OCR workers, and the event-loop delay meanwhile.
// Measures and reports; it does not pass or fail. `node dist/bench/redact.js [ROUNDS]`
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { DEFAULT_RULES_FILE, loadAnalyzer } from '../gateway/rules.js';
import { OcrPool } from '../redaction/ocr-pool.js';
import { redactImage } from '../redaction/redact.js';
import { readMemory } from './proc-stats.js';

const FIRST = ['Olivia', 'Liam', 'Emma', 'Noah', 'Sophia', 'Lucas', 'Harper', 'Ethan'];
const LAST = ['Garcia', 'Johnson', 'Miller', 'Davis', 'Martinez', 'Wilson', 'Anderson', 'Thompson'];

function formLines(i: number): string[] {
  const name = `${FIRST[i % 8]} ${LAST[(i * 3) % 8]}`;
  return [
    'PATIENT REGISTRATION FORM',
    `Patient: ${name}    DOB 0${(i % 9) + 1}/1${i % 9}/19${50 + (i % 40)}`,
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

function svg(width: number, height: number, lines: string[], size: number): Buffer {
  const step = Math.round(size * 2.2);
  const text = lines
    .map(
      (l, j) =>
        `<text x="${size * 2}" y="${size * 3 + j * step}" font-family="DejaVu Sans" font-size="${size}" fill="#202020">${l}</text>`,
    )
    .join('');
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#fbfaf5"/>${text}</svg>`,
  );
}

/** A 1000×1400 scanned form: grey noise, slight rotation, PNG. */
async function makeScan(i: number): Promise<Buffer> {
  const base = await sharp(svg(1000, 1400, formLines(i), 22))
    .flatten({ background: '#fbfaf5' })
    .png()
    .toBuffer();
  return sharp(base)
    .rotate(1.5, { background: '#fbfaf5' })
    .resize(1000, 1400, { fit: 'fill' })
    .png()
    .toBuffer();
}

/** A phone photo: 3000×4000 JPEG of a page with larger text. */
async function makePhoto(i: number): Promise<Buffer> {
  return sharp(svg(3000, 4000, formLines(i), 60))
    .flatten({ background: '#e8e4da' })
    .jpeg({ quality: 85 })
    .toBuffer();
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

async function run(name: string, images: Buffer[], workers: number): Promise<void> {
  const pool = new OcrPool({ size: workers });
  const analyzer = loadAnalyzer(DEFAULT_RULES_FILE);
  await pool.warmUp();
  await redactImage(images[0]!, { pool, analyzer }); // warm caches
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const times: number[] = [];
  let boxes = 0;
  let unverified = 0;
  loop.enable();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < images.length) {
        const img = images[next++]!;
        const t = performance.now();
        const r = await redactImage(img, { pool, analyzer });
        times.push(performance.now() - t);
        boxes += r.boxes.length;
        if (!r.verified) unverified++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  loop.disable();
  await pool.close();
  times.sort((a, b) => a - b);
  process.stdout.write(
    `${name.padEnd(22)} workers ${workers}: ${(images.length / elapsed).toFixed(2)} images/s, ` +
      `p50 ${Math.round(pct(times, 0.5))} ms, p99 ${Math.round(pct(times, 0.99))} ms per image; ` +
      `${(boxes / images.length).toFixed(1)} boxes/image${unverified ? `, ${unverified} unverified` : ''}; ` +
      `event-loop delay p50 ${(loop.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms, ` +
      `max ${(loop.max / 1e6).toFixed(1)} ms\n`,
  );
}

const rounds = Number(process.argv[2] ?? 8);
const scans = await Promise.all(Array.from({ length: rounds }, (_, i) => makeScan(i)));
const photos = await Promise.all(
  Array.from({ length: Math.max(2, Math.ceil(rounds / 2)) }, (_, i) => makePhoto(i)),
);
process.stdout.write(
  `redaction benchmark: ${rounds} scans, ${photos.length} photos; OCR verify pass included\n`,
);
for (const workers of [1, 2]) {
  await run('scan 1000x1400 png', scans, workers);
  await run('photo 3000x4000 jpeg', photos, workers);
}
const mem = readMemory(process.pid);
if (mem)
  process.stdout.write(
    `peak RSS of this process ${(mem.peakRss / 2 ** 20).toFixed(0)} MB (OCR workers are threads in it)\n`,
  );
