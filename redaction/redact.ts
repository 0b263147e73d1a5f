// Image redaction: OCR (ocr-pool) → words joined into text → dlp findings → padded boxes → irreversible fill
// (sharp), then a verify pass. It must never release an image in which the detectors still find PHI.
//
// What is redacted: findings of the categories 'strong' (SSN, MRN, member ID …), 'identifier' (names, dates
// of birth and service, phone, address, e-mail, account numbers …) and 'deny' (the admin's deny list) with
// a score of at least 0.4 — lower than the rules' thresholds, as over-redacting a word costs little.
// Besides the detectors, two number shapes are always redacted in images (`numberShapes`): anything written
// like an SSN (ddd-dd-dddd), valid or not — the detectors drop sample and impossible SSNs to spare mail from
// false alarms, but in an image a covered number costs nothing — and any number of 7 or more digits that is
// not an amount or a date (member, policy, control and account numbers whose label OCR split off or that
// the detectors do not know).
// Health terms (diagnoses, procedures, codes), care context words, provider identifiers (NPI, DEA) and
// whole clinical payloads are not identifiers of a patient by themselves and stay readable. Both are
// options (`categories`, `types`, `ignoreTypes`, `minScore`).
//
// Boxes are in pixels of the image as displayed (after its EXIF orientation). A multi-page TIFF and an
// animated GIF or WebP are treated as one strip of pages stacked top to bottom, and every page or frame is
// read and redacted; `pages` in the result says how many there were.
//
// Irreversible: the pixels inside a box are computed only from original pixels outside every box (colours
// sampled in a band just outside it, interpolated, plus a noise texture seeded from the box geometry) or
// are a solid fill, so overlapping or touching boxes never leak each other's pixels. A blur or
// pixelation of the original is never used: both can be reversed.
import sharp, { type Metadata } from 'sharp';
import { GatewayError } from '../config/errors.js';
import type { RedactionConfig } from '../config/schema.js';
import type { Analyzer } from '../dlp/analyzer.js';
import type { Category, Finding } from '../dlp/types.js';
import type { OcrPool, OcrWord } from './ocr-pool.js';
import { isDicom, redactDicom } from './dicom.js';

export const ALLOWED_FORMATS = ['png', 'jpeg', 'gif', 'tiff', 'webp'] as const;
export type ImageFormat = (typeof ALLOWED_FORMATS)[number];
export type RedactionMode = 'frost' | 'solid';

/** A redacted region; `type` is the finding type (types of merged findings joined with '+'). */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
  type: string;
}

export const DEFAULT_REDACT_CATEGORIES: readonly Category[] = ['strong', 'identifier', 'deny'];
export const DEFAULT_MIN_SCORE = 0.4;

export interface ImageLimits {
  /** Images with more pixels (all pages together) are refused. Default 100 000 000. */
  maxInputPixels?: number;
  /** Multi-page images with more pages or frames are refused. Default 50. */
  maxPages?: number;
}

export interface ApplyBoxesOptions extends ImageLimits {
  /** 'frost' (default): a soft fill made from the surroundings; 'solid': a black box. */
  mode?: RedactionMode;
}

export interface DetectOptions extends ImageLimits {
  pool: OcrPool;
  analyzer: Analyzer;
  /** Pages are scaled down to at most this many pixels for OCR. Default 12 000 000. */
  ocrMaxPixels?: number;
  /** Time allowed for the whole image, all OCR passes included (milliseconds). Default 60 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Finding categories that are redacted. Default DEFAULT_REDACT_CATEGORIES. */
  categories?: readonly Category[];
  /** Finding types redacted whatever their category (e.g. 'NPI'). */
  types?: readonly string[];
  /** Finding types never redacted. */
  ignoreTypes?: readonly string[];
  /** Findings scoring lower are left alone. Default DEFAULT_MIN_SCORE. */
  minScore?: number;
  /** Also redact SSN-shaped numbers and numbers of 7+ digits, whatever the detectors say. Default true. */
  numberShapes?: boolean;
  /** Counts the OCR passes run and their time (benchmarks). */
  ocrStats?: OcrStats;
}

export interface RedactOptions extends DetectOptions, ApplyBoxesOptions {
  /**
   * OCR rounds on the output: when PHI is still found, the boxes are extended and the image redrawn, up to
   * this many times; then the image is refused (RedactionUnsafeError). 0 turns the check off (result
   * `verified: false`). Default 2.
   */
  verifyRounds?: number;
  /** Draws no boxes. Only to test that the verify pass refuses an image that still shows PHI. */
  unsafeDrawNoBoxes?: boolean;
}

export interface RedactResult {
  /** The redacted image, in the input's format, with no metadata (EXIF, XMP, ICC, comments). */
  output: Buffer;
  /** 'dicom' only from redactImage given a DICOM file (see dicom.ts). */
  format: ImageFormat | 'dicom';
  boxes: Box[];
  /** True when an OCR pass over the output found no PHI. */
  verified: boolean;
  /** Number of pages or frames, when more than one. */
  pages?: number;
}

export interface DetectResult {
  format: ImageFormat;
  width: number;
  /** Height of all pages together. */
  height: number;
  pages: number;
  boxes: Box[];
}

/** PHI is still readable after redaction: quarantine the image, never release it. */
export class RedactionUnsafeError extends GatewayError {
  constructor(
    /** The boxes found in the last round (positions and types only). */
    readonly boxes: Box[],
  ) {
    super('REDACT_UNSAFE', 'PHI is still readable after redaction; the image must be quarantined');
  }
}

const MAX_INPUT_PIXELS = 100_000_000;
const MAX_PAGES = 50;
const OCR_MAX_PIXELS = 12_000_000;
/** Rows/columns just outside a box that its fill is made from. */
const BAND = 3;
/** Images smaller than this are upscaled ×2 for OCR: small screenshot text reads much better. */
const UPSCALE_BELOW = 1_000_000;

/** The options a caller can take straight from the configuration. */
export function redactOptionsFromConfig(
  c: RedactionConfig,
): Required<Pick<RedactOptions, 'mode' | 'maxInputPixels' | 'ocrMaxPixels' | 'timeoutMs'>> {
  return {
    mode: c.mode,
    maxInputPixels: c.maxInputPixels,
    ocrMaxPixels: c.ocrMaxPixels,
    timeoutMs: c.timeout,
  };
}

// ---------------------------------------------------------------------------------------------------
// Decoding and encoding

interface Decoded {
  format: ImageFormat;
  width: number;
  height: number;
  pageHeight: number;
  pages: number;
  channels: 3 | 4;
  data: Buffer;
  loop?: number;
  delay?: number[];
}

function isPixelLimit(err: unknown): boolean {
  return err instanceof Error && /pixel limit/i.test(err.message);
}

async function decode(input: Buffer, limits: ImageLimits): Promise<Decoded> {
  const maxPixels = limits.maxInputPixels ?? MAX_INPUT_PIXELS;
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new GatewayError('REDACT_UNREADABLE', 'the image cannot be read (corrupt or not an image)', {
      cause: err,
    });
  }
  const format = meta.format as string;
  if (!(ALLOWED_FORMATS as readonly string[]).includes(format)) {
    throw new GatewayError(
      'REDACT_UNSUPPORTED',
      `image format "${format}" is not accepted (allowed: ${ALLOWED_FORMATS.join(', ')})`,
    );
  }
  const pages = meta.pages && meta.pages > 1 ? meta.pages : 1;
  if (pages > (limits.maxPages ?? MAX_PAGES))
    throw new GatewayError(
      'REDACT_TOO_LARGE',
      `image has ${pages} pages, more than the limit of ${limits.maxPages ?? MAX_PAGES}`,
    );
  const pageHeightMeta = pages > 1 ? (meta.pageHeight ?? 0) : (meta.height ?? 0);
  const total = (meta.width ?? 0) * pageHeightMeta * pages;
  if (total > maxPixels)
    throw new GatewayError(
      'REDACT_TOO_LARGE',
      `image has ${total} pixels, more than the limit of ${maxPixels}`,
    );
  const multi = pages > 1;
  try {
    let img = sharp(input, {
      limitInputPixels: maxPixels,
      pages: multi ? -1 : 1,
      failOn: 'error',
    });
    if (!multi) img = img.rotate();
    img = img.toColourspace('srgb');
    img = meta.hasAlpha ? img.ensureAlpha() : img.removeAlpha();
    const raw = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    const { info } = raw;
    let data: Buffer = raw.data;
    let channels: 3 | 4 = info.channels === 4 ? 4 : 3;
    if (info.channels !== channels) throw new Error(`unexpected channel count ${info.channels}`);
    // An alpha channel that is opaque everywhere (common in screenshots and scans) is dropped: a quarter less
    // to paint and to compress, and the image looks the same.
    if (channels === 4 && opaque(data)) {
      data = dropAlpha(data);
      channels = 3;
    }
    const pageHeight = multi ? info.height / pages : info.height;
    if (!Number.isInteger(pageHeight)) throw new Error('pages of different sizes');
    const out: Decoded = {
      format: format as ImageFormat,
      width: info.width,
      height: info.height,
      pageHeight,
      pages,
      channels,
      data,
    };
    if (multi && meta.loop !== undefined) out.loop = meta.loop;
    if (multi && meta.delay) out.delay = meta.delay;
    return out;
  } catch (err) {
    if (isPixelLimit(err))
      throw new GatewayError('REDACT_TOO_LARGE', `image has more pixels than the limit of ${maxPixels}`, {
        cause: err,
      });
    throw new GatewayError('REDACT_UNREADABLE', 'the image cannot be decoded (corrupt or truncated)', {
      cause: err,
    });
  }
}

function opaque(rgba: Buffer): boolean {
  for (let o = 3; o < rgba.length; o += 4) if (rgba[o] !== 255) return false;
  return true;
}

function dropAlpha(rgba: Buffer): Buffer {
  const rgb = Buffer.allocUnsafe((rgba.length / 4) * 3);
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) {
    rgb[o] = rgba[i]!;
    rgb[o + 1] = rgba[i + 1]!;
    rgb[o + 2] = rgba[i + 2]!;
  }
  return rgb;
}

/** Re-encodes in the input format. sharp writes no metadata unless asked (no withMetadata/keep… call here). */
async function encode(d: Decoded, data: Buffer): Promise<Buffer> {
  const img = sharp(data, {
    raw: {
      width: d.width,
      height: d.height,
      channels: d.channels,
      ...(d.pages > 1 ? { pageHeight: d.pageHeight } : {}),
    },
  });
  const anim = { ...(d.loop !== undefined ? { loop: d.loop } : {}), ...(d.delay ? { delay: d.delay } : {}) };
  switch (d.format) {
    case 'png':
      // Level 3, not 6: a third of the time on a 2500×2300 scan (0.4 s instead of 1.6 s), ~15% larger.
      return img.png({ compressionLevel: 3 }).toBuffer();
    case 'jpeg':
      return img.jpeg({ quality: 90 }).toBuffer();
    case 'webp':
      return img.webp({ quality: 90, ...anim }).toBuffer();
    case 'gif':
      return img.gif(anim).toBuffer();
    case 'tiff':
      return img.tiff({ compression: 'lzw' }).toBuffer();
  }
}

// ---------------------------------------------------------------------------------------------------
// Boxes

function union(a: Box, b: Box): Box {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  const types = new Set([...a.type.split('+'), ...b.type.split('+')]);
  return {
    x,
    y,
    width: Math.max(a.x + a.width, b.x + b.width) - x,
    height: Math.max(a.y + a.height, b.y + b.height) - y,
    type: [...types].sort().join('+'),
  };
}

/** Clamps boxes to the image, drops empty ones and boxes inside another one. Overlapping boxes stay. */
export function normaliseBoxes(boxes: readonly Box[], width: number, height: number): Box[] {
  const out: Box[] = [];
  for (const b of boxes) {
    const x0 = Math.max(0, Math.floor(b.x));
    const y0 = Math.max(0, Math.floor(b.y));
    const x1 = Math.min(width, Math.ceil(b.x + b.width));
    const y1 = Math.min(height, Math.ceil(b.y + b.height));
    if (x1 > x0 && y1 > y0)
      out.push({ x: x0, y: y0, width: x1 - x0, height: y1 - y0, type: b.type || 'BOX' });
  }
  const kept: Box[] = [];
  // Largest first, so a box inside another is folded into it (its type joins the container's).
  for (const b of out.sort((p, q) => q.width * q.height - p.width * p.height)) {
    const container = kept.find((k) => contains(k, b));
    if (!container) kept.push(b);
    else container.type = [...new Set([...container.type.split('+'), ...b.type.split('+')])].sort().join('+');
  }
  return kept.sort((a, b) => a.y - b.y || a.x - b.x);
}

function contains(outer: Box, inner: Box): boolean {
  return (
    inner.x >= outer.x &&
    inner.y >= outer.y &&
    inner.x + inner.width <= outer.x + outer.width &&
    inner.y + inner.height <= outer.y + outer.height
  );
}

// ---------------------------------------------------------------------------------------------------
// Painting

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function geometrySeed(b: Box): number {
  let h = 2166136261;
  for (const v of [b.x, b.y, b.width, b.height]) {
    h = Math.imul(h ^ v, 16777619);
    h = Math.imul(h ^ (v >>> 16), 16777619);
  }
  return h >>> 0;
}

/**
 * Mean colour of the band just outside one side of the box, from the original pixels that lie outside
 * every box (`mask`); positions without such a pixel take the nearest one that has. Null when none has.
 */
function sampleSide(
  d: Decoded,
  mask: Uint8Array,
  b: Box,
  side: 'top' | 'bottom' | 'left' | 'right',
): Float64Array[] | null {
  const { data, width, height, channels: ch } = d;
  const horizontal = side === 'top' || side === 'bottom';
  const len = horizontal ? b.width : b.height;
  const rows: number[] = [];
  for (let k = 1; k <= BAND; k++) {
    const v =
      side === 'top'
        ? b.y - k
        : side === 'bottom'
          ? b.y + b.height - 1 + k
          : side === 'left'
            ? b.x - k
            : b.x + b.width - 1 + k;
    if (v >= 0 && v < (horizontal ? height : width)) rows.push(v);
  }
  const out: Float64Array[] = Array.from({ length: ch }, () => new Float64Array(len));
  const valid = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    let n = 0;
    for (const r of rows) {
      const px = horizontal ? b.x + i : r;
      const py = horizontal ? r : b.y + i;
      if (mask[py * width + px]) continue;
      const o = (py * width + px) * ch;
      for (let c = 0; c < ch; c++) out[c]![i]! += data[o + c]!;
      n++;
    }
    if (n > 0) {
      valid[i] = 1;
      for (let c = 0; c < ch; c++) out[c]![i]! /= n;
    }
  }
  let last = -1;
  for (let i = 0; i < len; i++) if (valid[i]) last = i;
  if (last === -1) return null;
  // Fill gaps from the nearest valid position (left to right, then the leading gap from the right).
  let prev = -1;
  for (let i = 0; i < len; i++) {
    if (valid[i]) prev = i;
    else if (prev >= 0) for (let c = 0; c < ch; c++) out[c]![i] = out[c]![prev]!;
  }
  const first = valid.indexOf(1);
  for (let i = 0; i < first; i++) for (let c = 0; c < ch; c++) out[c]![i] = out[c]![first]!;
  return out;
}

/** A box blur along a 1-D array (the soft, "frosted" look comes from smoothing the sampled edges). */
function smooth(a: Float64Array, radius: number): Float64Array {
  const n = a.length;
  const out = new Float64Array(n);
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i]! + a[i]!;
  for (let i = 0; i < n; i++) {
    const lo = Math.max(0, i - radius);
    const hi = Math.min(n, i + radius + 1);
    out[i] = (prefix[hi]! - prefix[lo]!) / (hi - lo);
  }
  return out;
}

function paintSolid(d: Decoded, data: Buffer, b: Box): void {
  const ch = d.channels;
  for (let y = b.y; y < b.y + b.height; y++) {
    for (let x = b.x; x < b.x + b.width; x++) {
      const o = (y * d.width + x) * ch;
      data[o] = 0;
      data[o + 1] = 0;
      data[o + 2] = 0;
      if (ch === 4) data[o + 3] = 255;
    }
  }
}

/** Fills the box from the band just outside it, smoothed and interpolated, plus seeded value noise. */
function paintFrost(d: Decoded, data: Buffer, b: Box, mask: Uint8Array): void {
  const ch = d.channels;
  let top = sampleSide(d, mask, b, 'top');
  let bottom = sampleSide(d, mask, b, 'bottom');
  let left = sampleSide(d, mask, b, 'left');
  let right = sampleSide(d, mask, b, 'right');
  top ??= bottom;
  bottom ??= top;
  left ??= right;
  right ??= left;
  const flat = (len: number) =>
    Array.from({ length: ch }, () => new Float64Array(len).fill(ch === 4 ? 255 : 230));
  const rx = Math.max(2, Math.round(Math.min(b.width, b.height * 2) / 3));
  const ry = Math.max(2, Math.round(b.height / 3));
  const T = (top ?? flat(b.width)).map((a) => smooth(a, rx));
  const B = (bottom ?? flat(b.width)).map((a) => smooth(a, rx));
  const L = (left ?? flat(b.height)).map((a) => smooth(a, ry));
  const R = (right ?? flat(b.height)).map((a) => smooth(a, ry));
  const useVertical = top !== null;
  const useHorizontal = left !== null;

  // Value noise on a coarse grid, seeded only from the geometry: deterministic, independent of content.
  const rand = prng(geometrySeed(b));
  const cell = Math.max(3, Math.round(b.height / 4));
  const gw = Math.ceil(b.width / cell) + 2;
  const gh = Math.ceil(b.height / cell) + 2;
  const grid = new Float64Array(gw * gh);
  for (let i = 0; i < grid.length; i++) grid[i] = rand() * 2 - 1;
  const amp = 7;

  for (let j = 0; j < b.height; j++) {
    const v = (j + 0.5) / b.height;
    const gy = j / cell;
    const gy0 = Math.floor(gy);
    const fy = gy - gy0;
    for (let i = 0; i < b.width; i++) {
      const u = (i + 0.5) / b.width;
      const gx = i / cell;
      const gx0 = Math.floor(gx);
      const fx = gx - gx0;
      const g = (gx: number, gy: number) => grid[gy * gw + gx]!;
      const n =
        (g(gx0, gy0) * (1 - fx) + g(gx0 + 1, gy0) * fx) * (1 - fy) +
        (g(gx0, gy0 + 1) * (1 - fx) + g(gx0 + 1, gy0 + 1) * fx) * fy;
      const fine = rand() * 2 - 1;
      const o = ((b.y + j) * d.width + (b.x + i)) * ch;
      for (let c = 0; c < ch; c++) {
        const vert = T[c]![i]! * (1 - v) + B[c]![i]! * v;
        const horiz = L[c]![j]! * (1 - u) + R[c]![j]! * u;
        let value =
          useVertical && useHorizontal
            ? (vert + horiz) / 2
            : useVertical
              ? vert
              : useHorizontal
                ? horiz
                : vert;
        if (c < 3) value += n * amp + fine * 2;
        data[o + c] = Math.max(0, Math.min(255, Math.round(value)));
      }
    }
  }
}

/** Paints normalised (non-overlapping, banded-apart) boxes into a copy of the pixels. */
/**
 * Paints the boxes into a copy of the pixels. A frost fill reads only original pixels outside every box,
 * so where boxes overlap or touch, no fill carries another box's hidden pixels.
 */
function paint(d: Decoded, boxes: readonly Box[], mode: RedactionMode): Buffer {
  const data = Buffer.from(d.data);
  if (mode === 'solid') {
    for (const b of boxes) paintSolid(d, data, b);
    return data;
  }
  const mask = new Uint8Array(d.width * d.height);
  for (const b of boxes)
    for (let y = b.y; y < b.y + b.height; y++) mask.fill(1, y * d.width + b.x, y * d.width + b.x + b.width);
  for (const b of boxes) paintFrost(d, data, b, mask);
  return data;
}

// ---------------------------------------------------------------------------------------------------
// OCR and detection

interface PageWords {
  words: OcrWord[];
  /** OCR pixels per image pixel. */
  scale: number;
}

async function ocrPage(
  d: Decoded,
  page: number,
  opts: DetectOptions,
  deadline: number,
  stats?: OcrStats,
  plan?: readonly Reading[],
): Promise<{ passes: PageWords[]; readings: Reading[] }> {
  const maxPixels = opts.ocrMaxPixels ?? OCR_MAX_PIXELS;
  const { width } = d;
  const height = d.pageHeight;
  const pixels = width * height;
  const base = Math.min(1, Math.sqrt(maxPixels / pixels));

  const greyAt = async (scale: number) => {
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    let img = sharp(d.data, { raw: { width, height: d.height, channels: d.channels } });
    if (d.pages > 1) img = img.extract({ left: 0, top: page * height, width, height });
    if (d.channels === 4) {
      // Alpha is flattened for OCR only: onto white, unless the few opaque pixels are light (light text on
      // transparency), which would vanish on white.
      img = img.flatten({ background: lightTextOnTransparency(d, page) ? '#000000' : '#ffffff' });
    }
    img = img.greyscale();
    if (scale !== 1) img = img.resize(w, h, { kernel: scale > 1 ? 'cubic' : 'lanczos3' });
    return { grey: await img.raw().toBuffer(), w, h, scale };
  };
  const readings: Reading[] = [];
  const read = async (g: { grey: Buffer; w: number; h: number; scale: number }, negate: boolean) => {
    readings.push({ scale: g.scale, negate });
    const t = performance.now();
    const words = await recognise(g.grey, g.w, g.h, negate, opts, deadline);
    if (stats) {
      stats.passes++;
      stats.ms += performance.now() - t;
    }
    return { words, scale: g.scale };
  };

  if (plan) {
    // The verify pass reads the bands the way the detection pass read the page: a band holds too few words
    // to decide polarity or text size by itself.
    const passes: PageWords[] = [];
    const greys = new Map<number, Awaited<ReturnType<typeof greyAt>>>();
    for (const r of plan) {
      const g = greys.get(r.scale) ?? (await greyAt(r.scale));
      greys.set(r.scale, g);
      passes.push(await read(g, r.negate));
    }
    const first = plan[0];
    const g = first && greys.get(first.scale);
    if (first && g) await rescue(passes, g, first.negate, opts, deadline, stats);
    return { passes, readings };
  }
  const g1 = await greyAt(base);
  // Light text on a dark ground: tesseract reads dark on light best, so a mostly dark page is negated.
  let mean = 0;
  for (let i = 0; i < g1.grey.length; i += 7) mean += g1.grey[i]!;
  mean /= Math.ceil(g1.grey.length / 7);
  const dark = mean < 110;
  const passes: PageWords[] = [await read(g1, dark)];
  // Little found: the page may be light-on-dark after all (or mixed); read the opposite polarity too.
  let polarity = dark;
  if (confidentWords(passes[0]!.words).length < 4) {
    const other = await read(g1, !dark);
    passes.push(other);
    if (confidentWords(other.words).length > confidentWords(passes[0]!.words).length) polarity = !dark;
  }
  // Small text (UI text in a screenshot) reads much better twice the size; text tall enough already reads
  // as well at its own size (measured: 15 px DejaVu in a 1000×400 screenshot), so it is not read again.
  if (pixels < UPSCALE_BELOW && pixels * 4 <= maxPixels && base === 1 && smallText(passes))
    passes.push(await read(await greyAt(2), polarity));
  await rescue(passes, g1, polarity, opts, deadline, stats);
  return { passes, readings };
}

/** A digit next to a dash or underscore: a piece of a dashed number (SSN, phone, ID) OCR may have misread. */
const DASHED_DIGIT = /\d[-‐-―_]|[-‐-―_]\d/;
/** At most this many regions per page are read again. */
const MAX_RESCUES = 6;

/**
 * Words worth reading again on their own: a dashed-number fragment, or a word of 2+ digits whose box is far
 * flatter than the text around it (a sign that OCR cut the line wrongly, e.g. "_45-" 4 px tall where
 * "123-45-6789" is written). Those are what a page-level reading gets wrong when a large number sits in a
 * box beside other text: line finding merges it with a neighbour's line and the number comes out in pieces.
 */
export function suspects(words: readonly OcrWord[], lineHeight: number): OcrWord[] {
  return words.filter((w) => {
    const digits = w.text.replace(/\D/g, '').length;
    if (digits === 0) return false;
    if (DASHED_DIGIT.test(w.text) && !SSN_SHAPE_WHOLE.test(w.text)) return true;
    return digits >= 2 && w.y1 - w.y0 < 0.35 * lineHeight;
  });
}

const SSN_SHAPE_WHOLE = /^\d{3}-\d{2}-\d{4}$/;

/**
 * The second look: the neighbourhood of each suspect word (a band two line heights above and below, eight
 * line heights either side) is cut out and read on its own, where line finding has only that text to
 * segment. The words read are added as an extra pass in page coordinates, so the detectors and number shapes
 * see them like any other line. Bounded: MAX_RESCUES regions per page, small crops, the same deadline.
 */
async function rescue(
  passes: PageWords[],
  g: { grey: Buffer; w: number; h: number; scale: number },
  negate: boolean,
  opts: DetectOptions,
  deadline: number,
  stats?: OcrStats,
): Promise<void> {
  const main = passes.find((p) => p.scale === g.scale);
  if (!main) return;
  const heights = confidentWords(main.words)
    .map((w) => w.y1 - w.y0)
    .sort((a, b) => a - b);
  const lineHeight = heights[Math.floor(heights.length / 2)] ?? 20;
  const regions: Array<{ x0: number; y0: number; x1: number; y1: number }> = [];
  for (const w of suspects(main.words, lineHeight)) {
    const cy = (w.y0 + w.y1) / 2;
    const r = {
      x0: Math.max(0, Math.floor(w.x0 - 8 * lineHeight)),
      y0: Math.max(0, Math.floor(cy - 2 * lineHeight)),
      x1: Math.min(g.w, Math.ceil(w.x1 + 8 * lineHeight)),
      y1: Math.min(g.h, Math.ceil(cy + 2 * lineHeight)),
    };
    if (r.x1 - r.x0 < 8 || r.y1 - r.y0 < 8) continue;
    const overlapping = regions.find((q) => r.x0 < q.x1 && q.x0 < r.x1 && r.y0 < q.y1 && q.y0 < r.y1);
    if (overlapping) {
      overlapping.x0 = Math.min(overlapping.x0, r.x0);
      overlapping.y0 = Math.min(overlapping.y0, r.y0);
      overlapping.x1 = Math.max(overlapping.x1, r.x1);
      overlapping.y1 = Math.max(overlapping.y1, r.y1);
    } else if (regions.length < MAX_RESCUES) regions.push(r);
  }
  const words: OcrWord[] = [];
  for (const [k, r] of regions.entries()) {
    const w = r.x1 - r.x0;
    const h = r.y1 - r.y0;
    const crop = Buffer.allocUnsafe(w * h);
    for (let y = 0; y < h; y++) g.grey.copy(crop, y * w, (r.y0 + y) * g.w + r.x0, (r.y0 + y) * g.w + r.x1);
    const t = performance.now();
    const read = await recognise(crop, w, h, negate, opts, deadline);
    if (stats) {
      stats.passes++;
      stats.ms += performance.now() - t;
    }
    for (const word of read)
      words.push({
        ...word,
        x0: word.x0 + r.x0,
        x1: word.x1 + r.x0,
        y0: word.y0 + r.y0,
        y1: word.y1 + r.y0,
        line: 1_000_000 * (k + 1) + word.line,
      });
  }
  if (words.length > 0) passes.push({ words, scale: g.scale });
}

/** One OCR reading of a page: the scale it was read at and whether it was negated. */
interface Reading {
  scale: number;
  negate: boolean;
}

/** OCR passes run and the time they took: for benchmarks. */
export interface OcrStats {
  passes: number;
  ms: number;
  /** Boxes the verify pass added (positions and types only). */
  residuals: Box[];
}

function confidentWords(words: readonly OcrWord[]): OcrWord[] {
  return words.filter((w) => w.confidence >= 60 && w.text.length >= 2);
}

/** Text lines shorter than this (pixels, word box height) are read again at twice the size. */
const SMALL_TEXT_PX = 10;

/** True when too few words were read with confidence, or their median height is small. */
function smallText(passes: readonly PageWords[]): boolean {
  const heights = passes
    .flatMap((p) => confidentWords(p.words).map((w) => (w.y1 - w.y0) / p.scale))
    .sort((a, b) => a - b);
  if (heights.length < 4) return true;
  return heights[Math.floor(heights.length / 2)]! < SMALL_TEXT_PX;
}

function lightTextOnTransparency(d: Decoded, page: number): boolean {
  let sum = 0;
  let weight = 0;
  let samples = 0;
  const start = page * d.pageHeight * d.width * 4;
  const end = start + d.pageHeight * d.width * 4;
  for (let o = start; o < end; o += 4 * 5) {
    const a = d.data[o + 3]! / 255;
    sum += a * (0.299 * d.data[o]! + 0.587 * d.data[o + 1]! + 0.114 * d.data[o + 2]!);
    weight += a;
    samples++;
  }
  return weight > 0 && weight / samples < 0.3 && sum / weight >= 128;
}

async function recognise(
  grey: Buffer,
  width: number,
  height: number,
  negate: boolean,
  opts: DetectOptions,
  deadline: number,
): Promise<OcrWord[]> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) throw new GatewayError('OCR_TIMEOUT', 'redaction took longer than allowed');
  // A binary PGM (P5): no compression to write here and to undo in the worker, and tesseract reads the same
  // pixels as from a PNG (measured: identical words).
  const pixels = negate ? Buffer.allocUnsafe(grey.length) : grey;
  if (negate) for (let i = 0; i < grey.length; i++) pixels[i] = 255 - grey[i]!;
  const pgm = Buffer.concat([Buffer.from(`P5\n${width} ${height}\n255\n`, 'ascii'), pixels]);
  return opts.pool.recognize(pgm, {
    timeoutMs: remaining,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

function shouldRedact(f: Finding, opts: DetectOptions): boolean {
  if (opts.ignoreTypes?.includes(f.type)) return false;
  if (f.score < (opts.minScore ?? DEFAULT_MIN_SCORE)) return false;
  return (
    (opts.categories ?? DEFAULT_REDACT_CATEGORIES).includes(f.category) || !!opts.types?.includes(f.type)
  );
}

/** SSN-shaped, valid or not: not inside a longer number or a dashed code. */
const SSN_SHAPE = /(?<![\p{L}\p{N}-])\d{3}-\d{2}-\d{4}(?![\p{L}\p{N}]|-\p{N})/gu;
/** A run of digits, maybe with dashes or letters around them, that is not part of an amount or date. */
const LONG_NUMBER = /(?<![\p{L}\p{N}$.,/-])[A-Z]{0,3}\d[\d-]*\d(?![\p{L}\p{N}]|[.,/-]\p{N})/gu;

/** Findings for the number shapes every image redacts (see the top of this file). */
function numberShapeFindings(text: string, part: string): Finding[] {
  const out: Finding[] = [];
  for (const m of text.matchAll(SSN_SHAPE))
    out.push({
      type: 'SSN_SHAPE',
      category: 'strong',
      part,
      start: m.index,
      end: m.index + m[0].length,
      score: 0.9,
      recognizer: 'image-number-shape',
    });
  for (const m of text.matchAll(LONG_NUMBER)) {
    if (m[0].replace(/\D/g, '').length < 7) continue;
    out.push({
      type: 'ID_NUMBER',
      category: 'strong',
      part,
      start: m.index,
      end: m.index + m[0].length,
      score: 0.9,
      recognizer: 'image-number-shape',
    });
  }
  return out;
}

interface Span {
  start: number;
  end: number;
  pass: number;
  word: OcrWord;
}

/** Same-length change of ALL-CAPS words to Title Case: name recognizers look for capitalised words. */
function titleCase(text: string): string {
  return text.replace(/\b([A-Z])([A-Z]+)\b/g, (_, a: string, b: string) => a + b.toLowerCase());
}

/** Joins rows of words into text: a space between words, a newline between rows. Offsets kept per word. */
function joinRows(rows: ReadonlyArray<ReadonlyArray<{ pass: number; word: OcrWord }>>, caseFold: boolean) {
  let text = '';
  const spans: Span[] = [];
  for (const row of rows) {
    if (text !== '') text += '\n';
    row.forEach(({ pass, word }, i) => {
      if (i > 0) text += ' ';
      spans.push({ start: text.length, end: text.length + word.text.length, pass, word });
      text += word.text;
    });
  }
  return { text: caseFold ? titleCase(text) : text, spans };
}

/**
 * The texts the analyzer reads for one page: the OCR lines as they are; the same with ALL-CAPS words in
 * Title Case; and a column reading, where a line is cut at wide gaps into cells and the cells are read
 * column by column, so that a label above its value on a card ("Member" / "ANGEL BROWN") sits next to it.
 */
function layouts(passes: readonly PageWords[]): Array<{ text: string; spans: Span[] }> {
  const lines: Array<Array<{ pass: number; word: OcrWord }>> = [];
  passes.forEach((p, pass) => {
    let line = -1;
    for (const word of p.words) {
      if (word.line !== line || lines.length === 0) lines.push([]);
      line = word.line;
      lines.at(-1)!.push({ pass, word });
    }
  });
  const cells: Array<{ x0: number; y0: number; h: number; words: Array<{ pass: number; word: OcrWord }> }> =
    [];
  for (const line of lines) {
    const h = Math.max(...line.map(({ word }) => word.y1 - word.y0), 1);
    let cell: (typeof cells)[number] | undefined;
    let lastX1 = -Infinity;
    for (const item of line) {
      if (!cell || item.word.x0 - lastX1 > 1.5 * h) {
        cell = { x0: item.word.x0, y0: item.word.y0, h, words: [] };
        cells.push(cell);
      }
      cell.words.push(item);
      lastX1 = item.word.x1;
    }
  }
  // Columns: cells whose left edges lie within a line height of the column's first cell.
  const byX = [...cells].sort((a, b) => a.x0 - b.x0);
  const columns: Array<typeof cells> = [];
  for (const c of byX) {
    const col = columns.at(-1);
    if (col && c.x0 - col[0]!.x0 <= col[0]!.h) col.push(c);
    else columns.push([c]);
  }
  const columnRows = columns.flatMap((col) => col.sort((a, b) => a.y0 - b.y0).map((c) => c.words));
  return [joinRows(lines, false), joinRows(lines, true), joinRows(columnRows, true)];
}

async function detectInDecoded(
  d: Decoded,
  opts: DetectOptions,
  deadline: number,
  drawn: readonly Box[] = [],
  plan?: readonly Reading[],
): Promise<{ boxes: Box[]; readings: Reading[] }> {
  const boxes: Box[] = [];
  const readings: Reading[] = [];
  for (let page = 0; page < d.pages; page++) {
    const read = await ocrPage(d, page, opts, deadline, opts.ocrStats, plan);
    const { passes } = read;
    for (const r of read.readings)
      if (!readings.some((q) => q.scale === r.scale && q.negate === r.negate)) readings.push(r);
    if (drawn.length > 0) {
      // In the verify pass, what OCR "reads" inside a drawn box is made from the fill, which is computed from
      // pixels outside the box only: it cannot be the hidden text, and noise read as a name would make a
      // clean image fail. Words outside the boxes are all still checked.
      for (const p of passes) {
        p.words = p.words.filter((w) => {
          const cx = (w.x0 + w.x1) / 2 / p.scale;
          const cy = (w.y0 + w.y1) / 2 / p.scale + page * d.pageHeight;
          return !drawn.some((b) => cx >= b.x && cx < b.x + b.width && cy >= b.y && cy < b.y + b.height);
        });
        p.words = withPlaceholders(p.words, drawn, p.scale, page * d.pageHeight);
      }
    }
    const found: Array<{ f: Finding; spans: Span[] }> = [];
    for (const { text, spans } of layouts(passes)) {
      if (text.trim() === '') continue;
      const part = `image:${page + 1}`;
      for (const f of opts.analyzer.findings({ id: part, text, kind: 'attachment' }))
        if (shouldRedact(f, opts)) found.push({ f, spans });
      if (opts.numberShapes ?? true)
        for (const f of numberShapeFindings(text, part))
          if (!opts.ignoreTypes?.includes(f.type)) found.push({ f, spans });
    }
    for (const { f, spans } of found) {
      // One box per text line of the finding: a name split over two words on a line is one box.
      const byLine = new Map<string, Box>();
      for (const s of spans) {
        if (s.start >= f.end || s.end <= f.start || PLACEHOLDERS.has(s.word)) continue;
        const scale = passes[s.pass]!.scale;
        const w = s.word;
        const pad = Math.max(2, Math.round((w.y1 - w.y0) * 0.2));
        const box: Box = {
          x: Math.floor((w.x0 - pad) / scale),
          y: Math.floor((w.y0 - pad) / scale) + page * d.pageHeight,
          width: 0,
          height: 0,
          type: f.type,
        };
        box.width = Math.ceil((w.x1 + pad) / scale) - box.x;
        box.height = Math.ceil((w.y1 + pad) / scale) + page * d.pageHeight - box.y;
        // Keep the padding on this page.
        const top = page * d.pageHeight;
        if (box.y < top) {
          box.height -= top - box.y;
          box.y = top;
        }
        box.height = Math.min(box.height, top + d.pageHeight - box.y);
        const key = `${s.pass}:${w.line}`;
        const prev = byLine.get(key);
        byLine.set(key, prev ? union(prev, box) : box);
      }
      boxes.push(...byLine.values());
    }
  }
  return { boxes: normaliseBoxes(boxes, d.width, d.height), readings };
}

/** What a drawn box reads as in the verify pass: a lower-case word that no detector takes for PHI. */
const PLACEHOLDER = 'redacted';
/** The placeholder words: a finding on them is a box already drawn, not a residual. */
const PLACEHOLDERS = new WeakSet<OcrWord>();

/**
 * Puts a placeholder word where each drawn box sits on a line, so the value slot of a label stays taken:
 * without it, "Patient: ▒▒ DOB ▒▒" reads "Patient: DOB" and the next word after the label looks like a name.
 */
function withPlaceholders(words: OcrWord[], drawn: readonly Box[], scale: number, top: number): OcrWord[] {
  const out = [...words];
  for (const b of drawn) {
    const x0 = b.x * scale;
    const x1 = (b.x + b.width) * scale;
    const y0 = (b.y - top) * scale;
    const y1 = (b.y + b.height - top) * scale;
    // The line whose words' vertical centres fall inside the box.
    const onLine = out.filter((w) => (w.y0 + w.y1) / 2 >= y0 && (w.y0 + w.y1) / 2 < y1);
    const line = onLine[0]?.line;
    if (line === undefined || onLine.some((w) => w.text === PLACEHOLDER && w.x0 === x0)) continue;
    const word: OcrWord = { text: PLACEHOLDER, confidence: 100, x0, y0, x1, y1, line };
    PLACEHOLDERS.add(word);
    const after = out.findIndex((w) => w.line === line && w.x0 > x0);
    const lastOfLine = out.findLastIndex((w) => w.line === line);
    out.splice(after >= 0 ? after : lastOfLine + 1, 0, word);
  }
  return out;
}

function deadlineOf(opts: DetectOptions): number {
  return Date.now() + (opts.timeoutMs ?? 60_000);
}

/** Finds PHI boxes without changing the image (e.g. to propose boxes that staff then edit). */
export async function detectBoxes(input: Buffer, opts: DetectOptions): Promise<DetectResult> {
  const deadline = deadlineOf(opts);
  const d = await decode(input, opts);
  const { boxes } = await detectInDecoded(d, opts, deadline);
  return { format: d.format, width: d.width, height: d.height, pages: d.pages, boxes };
}

/** Redacts the given boxes (e.g. from `--boxes FILE` or edited by staff); no OCR. */
export async function applyBoxes(
  input: Buffer,
  boxes: readonly Box[],
  opts: ApplyBoxesOptions = {},
): Promise<RedactResult> {
  const d = await decode(input, opts);
  const drawn = normaliseBoxes(boxes, d.width, d.height);
  const output = await encode(d, paint(d, drawn, opts.mode ?? 'frost'));
  return {
    output,
    format: d.format,
    boxes: drawn,
    verified: false,
    ...(d.pages > 1 ? { pages: d.pages } : {}),
  };
}

/**
 * Finds PHI by OCR, redacts it irreversibly and checks the result by OCR again. Throws GatewayError
 * REDACT_UNSUPPORTED / REDACT_TOO_LARGE / REDACT_UNREADABLE for bad input, OCR_TIMEOUT / OCR_FAILED when
 * OCR fails, and RedactionUnsafeError (REDACT_UNSAFE) when PHI is still readable after every round.
 */
export async function redactImage(input: Buffer, opts: RedactOptions): Promise<RedactResult> {
  // A DICOM file (preamble + "DICM"): header PHI blanked, pixels redacted at their own depth (dicom.ts).
  if (isDicom(input)) return redactDicom(input, opts);
  const deadline = deadlineOf(opts);
  const d = await decode(input, opts);
  const detected = await detectInDecoded(d, opts, deadline);
  let { boxes } = detected;
  const mode = opts.mode ?? 'frost';
  const rounds = opts.verifyRounds ?? 2;
  // The boxes whose surroundings the next verify pass reads: all at first, then those a round added (the
  // rest of the image is unchanged, as a fill is made from pixels just outside its own box).
  let check = boxes;
  for (let round = 0; ; round++) {
    const painted = paint(d, opts.unsafeDrawNoBoxes ? [] : boxes, mode);
    const lossless = LOSSLESS.has(d.format);
    // A lossless format decodes to exactly the painted pixels, so it is encoded once, after the check; any
    // other is checked as released: encoded, then decoded again.
    let output = rounds === 0 || !lossless ? await encode(d, painted) : undefined;
    const result = (out: Buffer, verified: boolean): RedactResult => ({
      output: out,
      format: d.format,
      boxes,
      verified,
      ...(d.pages > 1 ? { pages: d.pages } : {}),
    });
    if (rounds === 0) return result(output!, false);
    const released = output ? await decode(output, opts) : { ...d, data: painted };
    const residual = await verifyBands(
      released,
      check,
      opts.unsafeDrawNoBoxes ? [] : boxes,
      detected.readings,
      opts,
      deadline,
    );
    if (residual.length === 0) return result((output ??= await encode(d, painted)), true);
    if (round >= rounds) throw new RedactionUnsafeError(residual);
    opts.ocrStats?.residuals.push(...residual);
    boxes = normaliseBoxes([...boxes, ...residual], d.width, d.height);
    check = residual;
  }
}

/** Formats whose encoding gives back exactly the pixels painted. */
const LOSSLESS: ReadonlySet<ImageFormat> = new Set(['png', 'tiff']);

/** Rows above and below a box read again in the verify pass, in box heights. */
const BAND_MARGIN = 2;

/**
 * The verify pass: OCR again the bands of rows around the boxes (full width, so a label stays next to what
 * is left of its value), stacked into one image, and run the detectors. The rest of the image is unchanged
 * pixels that the detection pass read already. Returns the residual boxes in image coordinates.
 */
async function verifyBands(
  out: Decoded,
  boxes: readonly Box[],
  drawn: readonly Box[],
  plan: readonly Reading[],
  opts: DetectOptions,
  deadline: number,
): Promise<Box[]> {
  if (boxes.length === 0) return [];
  const spans: Array<[number, number]> = boxes
    .map((b): [number, number] => [
      Math.max(0, b.y - BAND_MARGIN * b.height),
      Math.min(out.height, b.y + b.height + BAND_MARGIN * b.height),
    ])
    .sort((a, b) => a[0] - b[0]);
  const bands: Array<[number, number]> = [];
  for (const s of spans) {
    const last = bands.at(-1);
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else bands.push([s[0], s[1]]);
  }
  const rowBytes = out.width * out.channels;
  const height = bands.reduce((n, [a, b]) => n + b - a, 0);
  const data = Buffer.concat(bands.map(([a, b]) => out.data.subarray(a * rowBytes, b * rowBytes)));
  // Band offsets: image row of band k starts at `from[k]`, band row at `at[k]`.
  const at: number[] = [];
  let y = 0;
  for (const [a, b] of bands) {
    at.push(y);
    y += b - a;
  }
  const toBand = (b: Box): Box[] =>
    bands.flatMap(([a, e], k) => {
      const y0 = Math.max(a, b.y);
      const y1 = Math.min(e, b.y + b.height);
      return y1 > y0 ? [{ ...b, y: at[k]! + y0 - a, height: y1 - y0 }] : [];
    });
  const stacked: Decoded = { ...out, height, pageHeight: height, pages: 1, data };
  const { boxes: residual } = await detectInDecoded(stacked, opts, deadline, drawn.flatMap(toBand), plan);
  return residual.map((r) => {
    let k = at.length - 1;
    while (k > 0 && at[k]! > r.y) k--;
    const band = bands[k]!;
    const top = band[0] + r.y - at[k]!;
    return { ...r, y: top, height: Math.min(r.height, band[1] - top) };
  });
}
