// Small image factories for the redaction tests: text rendered with DejaVu fonts from SVG by sharp.
// All names and numbers are synthetic; nothing here is read from disk.
import sharp from 'sharp';
import { OcrPool } from '../../redaction/ocr-pool.js';
import { loadAnalyzer, DEFAULT_RULES_FILE } from '../../gateway/rules.js';
import type { Analyzer } from '../../dlp/analyzer.js';

export const PHI_LINE = 'Patient: John Smith DOB 03/14/1962 MRN 4829301 Phone (555) 123-4567';
export const HARMLESS_LINE = 'The quick brown fox visited the clinic on a sunny afternoon';
/** Tokens that must not be readable after redaction, and words that must stay readable. */
export const PHI_TOKENS = ['John', 'Smith', '03/14/1962', '1962', '4829301', '123-4567'];
export const KEEP_WORDS = ['quick', 'brown', 'afternoon', 'Patient'];

export interface TextImageOptions {
  lines?: string[];
  width?: number;
  fontSize?: number;
  foreground?: string;
  /** 'none' for a transparent background. */
  background?: string;
  font?: string;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function makeSvg(opts: TextImageOptions = {}): Buffer {
  const lines = opts.lines ?? [PHI_LINE, HARMLESS_LINE];
  const size = opts.fontSize ?? 22;
  const width = opts.width ?? 1000;
  const step = Math.round(size * 1.8);
  const height = step * lines.length + size * 2;
  const bg = opts.background ?? '#ffffff';
  const text = lines
    .map(
      (l, i) =>
        `<text x="24" y="${size * 1.5 + i * step}" font-family="${opts.font ?? 'DejaVu Sans'}" font-size="${size}" fill="${opts.foreground ?? '#111111'}">${escapeXml(l)}</text>`,
    )
    .join('');
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      (bg === 'none' ? '' : `<rect width="100%" height="100%" fill="${bg}"/>`) +
      text +
      '</svg>',
  );
}

/** An RGB PNG (no alpha unless the background is 'none'). */
export async function makePng(opts: TextImageOptions = {}): Promise<Buffer> {
  const img = sharp(makeSvg(opts));
  return (opts.background === 'none' ? img : img.flatten({ background: opts.background ?? '#ffffff' }))
    .png()
    .toBuffer();
}

export async function makeJpeg(opts: TextImageOptions = {}, quality = 85): Promise<Buffer> {
  return sharp(makeSvg(opts)).flatten({ background: '#ffffff' }).jpeg({ quality }).toBuffer();
}

export async function rawOf(
  image: Buffer,
): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** The words OCR reads in an image (every page), joined with spaces. */
export async function readText(pool: OcrPool, image: Buffer): Promise<string> {
  const meta = await sharp(image).metadata();
  const pages = meta.pages ?? 1;
  const out: string[] = [];
  for (let p = 0; p < pages; p++) {
    const png = await sharp(image, { page: p }).flatten({ background: '#ffffff' }).png().toBuffer();
    out.push((await pool.recognize(png)).map((w) => w.text).join(' '));
  }
  return out.join('\n');
}

let shared: { pool: OcrPool; analyzer: Analyzer } | undefined;

/** One pool for all redaction tests in a run (starting tesseract workers costs about a second each). */
export function sharedOcr(): { pool: OcrPool; analyzer: Analyzer } {
  shared ??= {
    pool: new OcrPool({ size: 2, jobTimeoutMs: 30_000 }),
    analyzer: loadAnalyzer(DEFAULT_RULES_FILE),
  };
  return shared;
}

export async function closeSharedOcr(): Promise<void> {
  await shared?.pool.close();
  shared = undefined;
}
