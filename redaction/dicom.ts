// DICOM redaction: blanks the PHI tags of the header (sequences included) and redacts burned-in text in the
// pixel data with the image pipeline's OCR; the output must never keep a PHI tag value or a hidden pixel.
//
// Accepted: DICOM Part 10 files (128-byte preamble, "DICM", file meta group 0002 in Explicit VR Little
// Endian) whose dataset is Explicit VR Little Endian (1.2.840.10008.1.2.1) or Implicit VR Little Endian
// (1.2.840.10008.1.2), single frame, one sample per pixel (MONOCHROME1/2), 8 or 16 bits allocated.
// Anything else (JPEG, JPEG 2000, RLE, deflate, big endian, colour, multi-frame) is refused with
// REDACT_UNSUPPORTED; a damaged or truncated file with REDACT_UNREADABLE.
//
// Header: the values of PHI_TAGS, and of every element whose VR is PN (person name, explicit VR), are
// replaced by an empty value, wherever they sit (inside sequence items too); overlay groups (60xx), which
// can carry burned-in text as bit planes, and dataset group lengths are dropped. Lengths of defined-length
// sequences and items are recomputed. Private tags are kept as they are (see PHI_TAGS for what is blanked).
//
// Pixels: windowed to 8-bit greyscale (stored min..max, MONOCHROME1 inverted) for OCR, boxes found with
// redact.ts's detectBoxes, then painted into the ORIGINAL pixel buffer at its own bit depth: 'frost' fills a
// box by interpolating the mean values just outside it (outside every box), 'solid' with the value shown as
// black. The output inside a box never depends on the original pixels inside any box. The result is
// windowed again and OCR'd (verify); PHI still found outside the boxes extends them, up to `verifyRounds`,
// then RedactionUnsafeError.
import sharp from 'sharp';
import { GatewayError } from '../config/errors.js';
import {
  detectBoxes,
  normaliseBoxes,
  RedactionUnsafeError,
  type Box,
  type RedactionMode,
  type RedactOptions,
  type RedactResult,
} from './redact.js';

export const EXPLICIT_VR_LE = '1.2.840.10008.1.2.1';
export const IMPLICIT_VR_LE = '1.2.840.10008.1.2';

/** Tags whose values are blanked (group << 16 | element), with their keywords. */
export const PHI_TAGS: ReadonlyMap<number, string> = new Map([
  [0x00080050, 'AccessionNumber'],
  [0x00080080, 'InstitutionName'],
  [0x00080081, 'InstitutionAddress'],
  [0x00080090, 'ReferringPhysicianName'],
  [0x00080092, 'ReferringPhysicianAddress'],
  [0x00080094, 'ReferringPhysicianTelephoneNumbers'],
  [0x00081048, 'PhysiciansOfRecord'],
  [0x00081050, 'PerformingPhysicianName'],
  [0x00081060, 'NameOfPhysiciansReadingStudy'],
  [0x00081070, 'OperatorsName'],
  [0x00100010, 'PatientName'],
  [0x00100020, 'PatientID'],
  [0x00100021, 'IssuerOfPatientID'],
  [0x00100030, 'PatientBirthDate'],
  [0x00100032, 'PatientBirthTime'],
  [0x00101000, 'OtherPatientIDs'],
  [0x00101001, 'OtherPatientNames'],
  [0x00101005, 'PatientBirthName'],
  [0x00101040, 'PatientAddress'],
  [0x00101060, 'PatientMotherBirthName'],
  [0x00101090, 'MedicalRecordLocator'],
  [0x00102154, 'PatientTelephoneNumbers'],
  [0x001021b0, 'AdditionalPatientHistory'],
  [0x00104000, 'PatientComments'],
  [0x00200010, 'StudyID'],
  [0x00321032, 'RequestingPhysician'],
  [0x00400006, 'ScheduledPerformingPhysicianName'],
  [0x00401010, 'NamesOfIntendedRecipientsOfResults'],
]);

const ITEM = 0xfffee000;
const ITEM_DELIM = 0xfffee00d;
const SEQ_DELIM = 0xfffee0dd;
const UNDEFINED = 0xffffffff;
const PIXEL_DATA = 0x7fe00010;
/** VRs with a 2-byte reserved field and a 4-byte length in Explicit VR. */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
/** VRs of the image tags read here, for Implicit VR (other values are copied as bytes). */
const IMPLICIT_VRS: ReadonlyMap<number, string> = new Map([
  [0x00280002, 'US'],
  [0x00280004, 'CS'],
  [0x00280008, 'IS'],
  [0x00280010, 'US'],
  [0x00280011, 'US'],
  [0x00280100, 'US'],
  [0x00280101, 'US'],
  [0x00280103, 'US'],
]);

export interface Element {
  tag: number;
  /** Explicit VR, or the VR guessed for Implicit VR ('SQ' for sequences, 'UN' otherwise). */
  vr: string;
  value?: Buffer;
  /** Items of a sequence, each a list of elements. */
  items?: Element[][];
  undefinedLength?: boolean;
}

function unreadable(why: string): GatewayError {
  return new GatewayError('REDACT_UNREADABLE', `the DICOM file cannot be read (${why})`);
}

/** True when the buffer is a DICOM Part 10 file (preamble + "DICM"). */
export function isDicom(input: Buffer): boolean {
  return input.length >= 132 && input.toString('latin1', 128, 132) === 'DICM';
}

class Reader {
  constructor(
    readonly buf: Buffer,
    readonly explicit: boolean,
  ) {}

  need(pos: number, n: number): void {
    if (pos + n > this.buf.length) throw unreadable('truncated');
  }

  tagAt(pos: number): number {
    this.need(pos, 4);
    return ((this.buf.readUInt16LE(pos) << 16) | this.buf.readUInt16LE(pos + 2)) >>> 0;
  }

  /** Reads elements from `pos` until `end`, or until the delimiter `until` (returns its end). */
  elements(pos: number, end: number, until: number | undefined, depth: number): [Element[], number] {
    if (depth > 16) throw unreadable('sequences nested too deep');
    const out: Element[] = [];
    while (pos < end) {
      const tag = this.tagAt(pos);
      if (until !== undefined && tag === until) {
        this.need(pos, 8);
        return [out, pos + 8];
      }
      if (tag === ITEM_DELIM || tag === SEQ_DELIM || tag === ITEM) throw unreadable('misplaced delimiter');
      let vr: string;
      let length: number;
      if (this.explicit) {
        this.need(pos, 8);
        vr = this.buf.toString('latin1', pos + 4, pos + 6);
        if (!/^[A-Z]{2}$/.test(vr)) throw unreadable('bad value representation');
        if (LONG_VRS.has(vr)) {
          this.need(pos, 12);
          length = this.buf.readUInt32LE(pos + 8);
          pos += 12;
        } else {
          length = this.buf.readUInt16LE(pos + 6);
          pos += 8;
        }
      } else {
        this.need(pos, 8);
        length = this.buf.readUInt32LE(pos + 4);
        pos += 8;
        vr = IMPLICIT_VRS.get(tag) ?? 'UN';
        // A sequence, in Implicit VR, is recognised by its content: undefined length or a first item tag.
        if (tag !== PIXEL_DATA && (length === UNDEFINED || (length >= 8 && this.tagAt(pos) === ITEM)))
          vr = 'SQ';
      }
      if (length === UNDEFINED && vr !== 'SQ')
        throw new GatewayError('REDACT_UNSUPPORTED', 'DICOM value of undefined length (encapsulated or UN)');
      if (vr === 'SQ') {
        const [items, next] = this.items(pos, length, depth);
        out.push({ tag, vr: 'SQ', items, ...(length === UNDEFINED ? { undefinedLength: true } : {}) });
        pos = next;
        continue;
      }
      this.need(pos, length);
      out.push({ tag, vr, value: this.buf.subarray(pos, pos + length) });
      pos += length;
    }
    if (until !== undefined) throw unreadable('truncated (missing delimiter)');
    if (pos !== end) throw unreadable('element runs past its container');
    return [out, pos];
  }

  items(pos: number, length: number, depth: number): [Element[][], number] {
    const items: Element[][] = [];
    const end = length === UNDEFINED ? this.buf.length : pos + length;
    if (end > this.buf.length) throw unreadable('truncated');
    while (pos < end) {
      const tag = this.tagAt(pos);
      this.need(pos, 8);
      const len = this.buf.readUInt32LE(pos + 4);
      if (tag === SEQ_DELIM && length === UNDEFINED) return [items, pos + 8];
      if (tag !== ITEM) throw unreadable('bad sequence item');
      pos += 8;
      if (len === UNDEFINED) {
        const [els, next] = this.elements(pos, this.buf.length, ITEM_DELIM, depth + 1);
        items.push(els);
        pos = next;
      } else {
        this.need(pos, len);
        const [els] = this.elements(pos, pos + len, undefined, depth + 1);
        items.push(els);
        pos += len;
      }
    }
    if (length === UNDEFINED) throw unreadable('truncated (missing sequence delimiter)');
    if (pos !== end) throw unreadable('item runs past its sequence');
    return [items, pos];
  }
}

function header(tag: number, vr: string, length: number, explicit: boolean): Buffer {
  const isLong = LONG_VRS.has(vr);
  const h = Buffer.alloc(explicit ? (isLong ? 12 : 8) : 8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  if (!explicit) h.writeUInt32LE(length >>> 0, 4);
  else if (isLong) {
    h.write(vr, 4, 'latin1');
    h.writeUInt32LE(length >>> 0, 8);
  } else {
    h.write(vr, 4, 'latin1');
    if (length > 0xffff) throw new GatewayError('REDACT_UNREADABLE', 'value too long for its VR');
    h.writeUInt16LE(length, 6);
  }
  return h;
}

function itemTag(tag: number, length: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.writeUInt32LE(length >>> 0, 4);
  return h;
}

function serialise(els: readonly Element[], explicit: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const e of els) {
    if (e.items) {
      const items = e.items.map((item) => {
        const body = serialise(item, explicit);
        return e.undefinedLength
          ? Buffer.concat([itemTag(ITEM, UNDEFINED), body, itemTag(ITEM_DELIM, 0)])
          : Buffer.concat([itemTag(ITEM, body.length), body]);
      });
      const body = Buffer.concat(items);
      if (e.undefinedLength)
        parts.push(header(e.tag, 'SQ', UNDEFINED, explicit), body, itemTag(SEQ_DELIM, 0));
      else parts.push(header(e.tag, 'SQ', body.length, explicit), body);
    } else {
      const value = e.value ?? Buffer.alloc(0);
      parts.push(header(e.tag, e.vr, value.length, explicit), value);
    }
  }
  return Buffer.concat(parts);
}

function isOverlay(tag: number): boolean {
  const group = tag >>> 16;
  return group >= 0x6000 && group <= 0x601e && group % 2 === 0;
}

/** Blanks PHI values in place (recursively); drops overlays and group lengths. Returns how many were blanked. */
function blank(els: Element[]): { kept: Element[]; blanked: number } {
  let blanked = 0;
  const kept: Element[] = [];
  for (const e of els) {
    if (isOverlay(e.tag) || (e.tag & 0xffff) === 0) continue;
    if (PHI_TAGS.has(e.tag) || e.vr === 'PN') {
      if (e.items) e.items = [];
      else e.value = Buffer.alloc(0);
      blanked++;
    } else if (e.items) {
      e.items = e.items.map((item) => {
        const r = blank(item);
        blanked += r.blanked;
        return r.kept;
      });
    }
    kept.push(e);
  }
  return { kept, blanked };
}

export interface ParsedDicom {
  meta: Buffer;
  preamble: Buffer;
  transferSyntax: string;
  explicit: boolean;
  elements: Element[];
}

export function parseDicom(input: Buffer): ParsedDicom {
  if (!isDicom(input)) throw unreadable('no DICM marker after the 128-byte preamble');
  const meta = new Reader(input, true);
  let pos = 132;
  let transferSyntax: string | undefined;
  while (pos + 2 <= input.length && input.readUInt16LE(pos) === 0x0002) {
    const [[e], next] = meta.elements(pos, metaEnd(input, pos), undefined, 0);
    if (e?.tag === 0x00020010 && e.value) transferSyntax = text(e.value);
    pos = next;
  }
  if (transferSyntax === undefined) throw unreadable('no transfer syntax in the file meta information');
  if (transferSyntax !== EXPLICIT_VR_LE && transferSyntax !== IMPLICIT_VR_LE)
    throw new GatewayError(
      'REDACT_UNSUPPORTED',
      `DICOM transfer syntax ${transferSyntax} is not accepted (only uncompressed little endian: ${EXPLICIT_VR_LE}, ${IMPLICIT_VR_LE})`,
    );
  const explicit = transferSyntax === EXPLICIT_VR_LE;
  const [elements] = new Reader(input, explicit).elements(pos, input.length, undefined, 0);
  return {
    preamble: Buffer.alloc(128),
    meta: input.subarray(132, pos),
    transferSyntax,
    explicit,
    elements,
  };
}

/** The end of the one meta element at `pos` (meta elements are never sequences). */
function metaEnd(buf: Buffer, pos: number): number {
  if (pos + 8 > buf.length) throw unreadable('truncated');
  const vr = buf.toString('latin1', pos + 4, pos + 6);
  if (LONG_VRS.has(vr)) {
    if (pos + 12 > buf.length) throw unreadable('truncated');
    return pos + 12 + buf.readUInt32LE(pos + 8);
  }
  return pos + 8 + buf.readUInt16LE(pos + 6);
}

function text(v: Buffer): string {
  return v.toString('latin1').replace(/[\0 ]+$/, '');
}

function find(els: readonly Element[], tag: number): Element | undefined {
  return els.find((e) => e.tag === tag);
}

function us(els: readonly Element[], tag: number): number | undefined {
  const v = find(els, tag)?.value;
  return v && v.length >= 2 ? v.readUInt16LE(0) : undefined;
}

/** The single-frame greyscale image of a dataset, as signed/unsigned integers. */
interface Pixels {
  element: Element;
  rows: number;
  columns: number;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  signed: boolean;
  monochrome1: boolean;
  values: Int32Array;
}

function pixels(els: readonly Element[]): Pixels {
  const element = find(els, PIXEL_DATA);
  // A file cut at an element boundary reads as a dataset without pixel data: refused as unreadable.
  if (!element?.value) throw unreadable('no pixel data: truncated, or not an image');
  const unsupported = (why: string) =>
    new GatewayError('REDACT_UNSUPPORTED', `DICOM image not accepted: ${why}`);
  const rows = us(els, 0x00280010);
  const columns = us(els, 0x00280011);
  const bitsAllocated = us(els, 0x00280100);
  const bitsStored = us(els, 0x00280101) ?? bitsAllocated;
  const samples = us(els, 0x00280002) ?? 1;
  const signed = us(els, 0x00280103) === 1;
  const photometric = text(find(els, 0x00280004)?.value ?? Buffer.alloc(0));
  const frames = find(els, 0x00280008)?.value;
  if (!rows || !columns || bitsAllocated === undefined || bitsStored === undefined)
    throw unreadable('missing Rows, Columns or BitsAllocated');
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw unsupported(`${bitsAllocated} bits allocated`);
  if (bitsStored < 1 || bitsStored > bitsAllocated) throw unreadable('bad BitsStored');
  if (samples !== 1) throw unsupported(`${samples} samples per pixel`);
  if (photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2')
    throw unsupported(`photometric interpretation ${photometric || '(none)'}`);
  if (frames && Number(text(frames)) > 1) throw unsupported('more than one frame');
  const n = rows * columns;
  const bytes = bitsAllocated / 8;
  const v = element.value;
  if (v.length < n * bytes || v.length > n * bytes + 1) throw unreadable('pixel data of the wrong length');
  const values = new Int32Array(n);
  const mask = bitsStored === 32 ? 0xffffffff : (1 << bitsStored) - 1;
  const sign = 1 << (bitsStored - 1);
  for (let i = 0; i < n; i++) {
    let x = (bytes === 1 ? v[i]! : v.readUInt16LE(i * 2)) & mask;
    if (signed && x & sign) x -= 1 << bitsStored;
    values[i] = x;
  }
  return {
    element,
    rows,
    columns,
    bitsAllocated,
    bitsStored,
    signed,
    monochrome1: photometric === 'MONOCHROME1',
    values,
  };
}

interface Window {
  lo: number;
  hi: number;
}

function windowOf(values: Int32Array): Window {
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of values) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return { lo, hi: Math.max(hi, lo + 1) };
}

/** 8-bit greyscale (as displayed: MONOCHROME1 inverted) of the values, over the window. */
export function toGrey(values: Int32Array, win: Window, monochrome1: boolean): Buffer {
  const out = Buffer.allocUnsafe(values.length);
  const k = 255 / (win.hi - win.lo);
  for (let i = 0; i < values.length; i++) {
    const g = Math.max(0, Math.min(255, Math.round((values[i]! - win.lo) * k)));
    out[i] = monochrome1 ? 255 - g : g;
  }
  return out;
}

async function greyPng(p: Pixels, values: Int32Array, win: Window): Promise<Buffer> {
  return sharp(toGrey(values, win, p.monochrome1), { raw: { width: p.columns, height: p.rows, channels: 1 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

/** Mean of the values in the band just outside one side of the box, outside every box; null when none. */
function sideMean(p: Pixels, values: Int32Array, mask: Uint8Array, b: Box, side: number): number | null {
  let sum = 0;
  let n = 0;
  const add = (x: number, y: number) => {
    if (x < 0 || y < 0 || x >= p.columns || y >= p.rows || mask[y * p.columns + x]) return;
    sum += values[y * p.columns + x]!;
    n++;
  };
  for (let k = 1; k <= 3; k++) {
    if (side === 0) for (let x = b.x; x < b.x + b.width; x++) add(x, b.y - k);
    if (side === 1) for (let x = b.x; x < b.x + b.width; x++) add(x, b.y + b.height - 1 + k);
    if (side === 2) for (let y = b.y; y < b.y + b.height; y++) add(b.x - k, y);
    if (side === 3) for (let y = b.y; y < b.y + b.height; y++) add(b.x + b.width - 1 + k, y);
  }
  return n > 0 ? sum / n : null;
}

/**
 * Paints the boxes into a copy of the values at the original depth. 'frost': a bilinear blend of the mean
 * values just outside the box's four sides (pixels outside every box only); 'solid': the value displayed as
 * black. Nothing inside a box is read.
 */
export function paintValues(p: Pixels, boxes: readonly Box[], mode: RedactionMode): Int32Array {
  const out = Int32Array.from(p.values);
  // The value displayed as black, from the pixel format only (not from the pixels: those inside a box must
  // not show through): the lowest stored value for MONOCHROME2, the highest for MONOCHROME1.
  const lo = p.signed ? -(2 ** (p.bitsStored - 1)) : 0;
  const hi = p.signed ? 2 ** (p.bitsStored - 1) - 1 : 2 ** p.bitsStored - 1;
  const black = p.monochrome1 ? hi : lo;
  const mask = new Uint8Array(p.rows * p.columns);
  for (const b of boxes)
    for (let y = b.y; y < b.y + b.height; y++)
      mask.fill(1, y * p.columns + b.x, y * p.columns + b.x + b.width);
  for (const b of boxes) {
    const sides = [0, 1, 2, 3].map((s) => (mode === 'solid' ? null : sideMean(p, p.values, mask, b, s)));
    const known = sides.filter((s): s is number => s !== null);
    const fallback = known.length > 0 ? known.reduce((a, c) => a + c, 0) / known.length : black;
    const [top, bottom, left, right] = sides.map((s) => s ?? fallback) as [number, number, number, number];
    for (let j = 0; j < b.height; j++) {
      const v = (j + 0.5) / b.height;
      for (let i = 0; i < b.width; i++) {
        const u = (i + 0.5) / b.width;
        const value =
          mode === 'solid' ? black : (top * (1 - v) + bottom * v + left * (1 - u) + right * u) / 2;
        out[(b.y + j) * p.columns + b.x + i] = Math.round(value);
      }
    }
  }
  return out;
}

function packValues(p: Pixels, values: Int32Array): Buffer {
  const bytes = p.bitsAllocated / 8;
  const out = Buffer.alloc(p.element.value!.length);
  const mask = p.bitsAllocated === 16 ? 0xffff : 0xff;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]! & mask; // two's complement for signed values
    if (bytes === 1) out[i] = x;
    else out.writeUInt16LE(x, i * 2);
  }
  return out;
}

function write(d: ParsedDicom, elements: readonly Element[]): Buffer {
  const preamble = Buffer.alloc(128);
  return Buffer.concat([preamble, Buffer.from('DICM', 'latin1'), d.meta, serialise(elements, d.explicit)]);
}

export interface DicomResult extends Omit<RedactResult, 'format'> {
  format: 'dicom';
  /** Header values blanked (PHI tags and person names). */
  blankedTags: number;
}

/** The pixel data, windowed to 8 bits as displayed, as a PNG (for tests and previews). */
export async function dicomPreview(input: Buffer): Promise<Buffer> {
  const d = parseDicom(input);
  const p = pixels(d.elements);
  return greyPng(p, p.values, windowOf(p.values));
}

/**
 * Redacts a DICOM file: PHI tags blanked, burned-in PHI in the pixels found by OCR and painted over at the
 * original bit depth, checked by OCR again. Same errors as redactImage.
 */
export async function redactDicom(input: Buffer, opts: RedactOptions): Promise<DicomResult> {
  const d = parseDicom(input);
  const p = pixels(d.elements);
  const maxPixels = opts.maxInputPixels ?? 100_000_000;
  if (p.rows * p.columns > maxPixels)
    throw new GatewayError(
      'REDACT_TOO_LARGE',
      `image has ${p.rows * p.columns} pixels, more than the limit of ${maxPixels}`,
    );
  const { kept, blanked } = blank(d.elements);
  const win = windowOf(p.values);
  const mode = opts.mode ?? 'frost';
  const rounds = opts.verifyRounds ?? 2;
  const started = Date.now();
  const budget = (): RedactOptions => ({
    ...opts,
    timeoutMs: Math.max(1, (opts.timeoutMs ?? 60_000) - (Date.now() - started)),
  });
  let boxes = normaliseBoxes(
    (await detectBoxes(await greyPng(p, p.values, win), budget())).boxes,
    p.columns,
    p.rows,
  );
  let values = p.values;
  let verified = false;
  for (let round = 0; ; round++) {
    values = paintValues(p, opts.unsafeDrawNoBoxes ? [] : boxes, mode);
    if (rounds === 0) break;
    const found = (await detectBoxes(await greyPng(p, values, win), budget())).boxes;
    // What OCR reads inside a painted box is made from pixels outside it: only findings reaching outside count.
    const drawn = opts.unsafeDrawNoBoxes ? [] : boxes;
    const residual = found.filter((r) => !drawn.some((b) => inside(r, b)));
    if (residual.length === 0) {
      verified = true;
      break;
    }
    if (round >= rounds) throw new RedactionUnsafeError(residual);
    boxes = normaliseBoxes([...boxes, ...residual], p.columns, p.rows);
  }
  p.element.value = packValues(p, values);
  return { output: write(d, kept), format: 'dicom', boxes, verified, blankedTags: blanked };
}

function inside(r: Box, b: Box): boolean {
  const cx = r.x + r.width / 2;
  const cy = r.y + r.height / 2;
  return cx >= b.x && cx < b.x + b.width && cy >= b.y && cy < b.y + b.height;
}

/** Paints given boxes into a DICOM file's pixels and blanks its PHI tags; no OCR. */
export function applyDicomBoxes(
  input: Buffer,
  boxes: readonly Box[],
  opts: { mode?: RedactionMode } = {},
): Promise<DicomResult> {
  return Promise.resolve().then(() => applyDicomBoxesNow(input, boxes, opts));
}

function applyDicomBoxesNow(
  input: Buffer,
  boxes: readonly Box[],
  opts: { mode?: RedactionMode },
): DicomResult {
  const d = parseDicom(input);
  const p = pixels(d.elements);
  const { kept, blanked } = blank(d.elements);
  const drawn = normaliseBoxes(boxes, p.columns, p.rows);
  p.element.value = packValues(p, paintValues(p, drawn, opts.mode ?? 'frost'));
  return { output: write(d, kept), format: 'dicom', boxes: drawn, verified: false, blankedTags: blanked };
}
