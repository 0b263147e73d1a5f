// A tiny DICOM Part 10 writer for the tests: explicit or implicit VR little endian, 8 or 16 bit greyscale,
// sequences of defined and undefined length. All names and numbers are synthetic.
import sharp from 'sharp';
import { makeSvg, type TextImageOptions } from './fixtures.js';

export type El =
  | { tag: number; vr: string; value: string | Buffer }
  | { tag: number; vr: 'SQ'; items: El[][]; undefinedLength?: boolean };

const LONG = new Set(['OB', 'OW', 'SQ', 'UN', 'UT', 'UC', 'UR', 'OF', 'OD', 'OL']);

function pad(vr: string, v: string | Buffer): Buffer {
  if (Buffer.isBuffer(v)) return v.length % 2 ? Buffer.concat([v, Buffer.alloc(1)]) : v;
  const b = Buffer.from(v, 'latin1');
  if (b.length % 2 === 0) return b;
  return Buffer.concat([b, Buffer.from(vr === 'UI' ? '\0' : ' ', 'latin1')]);
}

function tagBytes(tag: number, len: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.writeUInt32LE(len >>> 0, 4);
  return h;
}

export function encode(els: readonly El[], explicit: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const e of els) {
    let value: Buffer;
    let undef = false;
    if ('items' in e) {
      undef = !!e.undefinedLength;
      value = Buffer.concat(
        e.items.map((it) => {
          const body = encode(it, explicit);
          return undef
            ? Buffer.concat([tagBytes(0xfffee000, 0xffffffff), body, tagBytes(0xfffee00d, 0)])
            : Buffer.concat([tagBytes(0xfffee000, body.length), body]);
        }),
      );
      if (undef) value = Buffer.concat([value, tagBytes(0xfffee0dd, 0)]);
    } else value = pad(e.vr, e.value);
    const len = undef ? 0xffffffff : value.length;
    let h: Buffer;
    if (!explicit) h = tagBytes(e.tag, len);
    else if (LONG.has(e.vr)) {
      h = Buffer.alloc(12);
      h.writeUInt16LE(e.tag >>> 16, 0);
      h.writeUInt16LE(e.tag & 0xffff, 2);
      h.write(e.vr, 4, 'latin1');
      h.writeUInt32LE(len >>> 0, 8);
    } else {
      h = Buffer.alloc(8);
      h.writeUInt16LE(e.tag >>> 16, 0);
      h.writeUInt16LE(e.tag & 0xffff, 2);
      h.write(e.vr, 4, 'latin1');
      h.writeUInt16LE(len, 6);
    }
    parts.push(h, value);
  }
  return Buffer.concat(parts);
}

export function us(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

export function part10(dataset: readonly El[], transferSyntax: string): Buffer {
  const explicit = transferSyntax !== '1.2.840.10008.1.2';
  const metaBody = encode(
    [
      { tag: 0x00020001, vr: 'OB', value: Buffer.from([0, 1]) },
      { tag: 0x00020002, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1.3' },
      { tag: 0x00020003, vr: 'UI', value: '1.2.3.4.5.6.7.8.9' },
      { tag: 0x00020010, vr: 'UI', value: transferSyntax },
    ],
    true,
  );
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(metaBody.length);
  const meta = Buffer.concat([encode([{ tag: 0x00020000, vr: 'UL', value: groupLength }], true), metaBody]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), meta, encode(dataset, explicit)]);
}

/** Greyscale pixels of the SVG text image (light text on a dark ground, like burned-in annotations). */
export async function greyPixels(
  opts: TextImageOptions,
): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(makeSvg({ background: '#181818', foreground: '#f2f2f2', ...opts }))
    .flatten({ background: '#181818' })
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

export interface DicomSpec {
  explicit: boolean;
  bits: 8 | 16;
  grey: { data: Buffer; width: number; height: number };
  transferSyntax?: string;
  monochrome1?: boolean;
  /** Writes NumberOfFrames (the pixels stay one frame's worth). */
  frames?: number;
}

/** A radiograph-like DICOM file with PHI in the header (a PatientName inside a sequence too). */
export function makeDicom(spec: DicomSpec): Buffer {
  const { width, height, data } = spec.grey;
  let pixels: Buffer;
  if (spec.bits === 8) pixels = Buffer.from(spec.monochrome1 ? data.map((v) => 255 - v) : data);
  else {
    pixels = Buffer.alloc(width * height * 2);
    // 12 bits stored: 0..4080.
    for (let i = 0; i < width * height; i++) {
      const v = spec.monochrome1 ? 255 - data[i]! : data[i]!;
      pixels.writeUInt16LE(v * 16 + (i % 7), i * 2);
    }
  }
  const ts = spec.transferSyntax ?? (spec.explicit ? '1.2.840.10008.1.2.1' : '1.2.840.10008.1.2');
  const dataset: El[] = [
    { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1.3' },
    { tag: 0x00080050, vr: 'SH', value: 'ACC99817' },
    { tag: 0x00080060, vr: 'CS', value: 'IO' },
    { tag: 0x00080080, vr: 'LO', value: 'Lakeside Dental Clinic' },
    { tag: 0x00080090, vr: 'PN', value: 'Doe^Jane' },
    { tag: 0x00081030, vr: 'LO', value: 'Bitewing left' },
    {
      tag: 0x00081120,
      vr: 'SQ',
      undefinedLength: !spec.explicit,
      items: [
        [
          { tag: 0x00081150, vr: 'UI', value: '1.2.840.10008.3.1.2.1.4' },
          { tag: 0x00100010, vr: 'PN', value: 'Smith^John' },
        ],
      ],
    },
    {
      tag: 0x00082112,
      vr: 'SQ',
      undefinedLength: spec.explicit,
      items: [[{ tag: 0x00081070, vr: 'PN', value: 'Operator^Olga' }], []],
    },
    { tag: 0x00100010, vr: 'PN', value: 'Smith^John' },
    { tag: 0x00100020, vr: 'LO', value: 'MRN4829301' },
    { tag: 0x00100030, vr: 'DA', value: '19620314' },
    { tag: 0x00100040, vr: 'CS', value: 'M' },
    { tag: 0x00101040, vr: 'LO', value: '12 Elm Street Springfield' },
    { tag: 0x00102154, vr: 'SH', value: '5551234567' },
    { tag: 0x00200010, vr: 'SH', value: 'STUDY7731' },
    { tag: 0x00280002, vr: 'US', value: us(1) },
    { tag: 0x00280004, vr: 'CS', value: spec.monochrome1 ? 'MONOCHROME1' : 'MONOCHROME2' },
    ...(spec.frames ? [{ tag: 0x00280008, vr: 'IS', value: String(spec.frames) }] : []),
    { tag: 0x00280010, vr: 'US', value: us(height) },
    { tag: 0x00280011, vr: 'US', value: us(width) },
    { tag: 0x00280100, vr: 'US', value: us(spec.bits) },
    { tag: 0x00280101, vr: 'US', value: us(spec.bits === 8 ? 8 : 12) },
    { tag: 0x00280102, vr: 'US', value: us(spec.bits === 8 ? 7 : 11) },
    { tag: 0x00280103, vr: 'US', value: us(0) },
    { tag: 0x60000022, vr: 'LO', value: 'Overlay John Smith' },
    { tag: 0x7fe00010, vr: spec.bits === 8 ? 'OB' : 'OW', value: pixels },
  ];
  return part10(dataset, ts);
}
