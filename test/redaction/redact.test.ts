// Image redaction against the threat model: PHI unreadable afterwards (checked by OCR), the fill independent
// of the hidden pixels, no metadata left, odd inputs (orientation, skew, polarity, alpha, pages) handled.
import { expect } from 'chai';
import sharp from 'sharp';
import { GatewayError } from '../../config/errors.js';
import {
  applyBoxes,
  detectBoxes,
  redactImage,
  RedactionUnsafeError,
  suspects,
  type Box,
  type RedactOptions,
} from '../../redaction/redact.js';
import {
  closeSharedOcr,
  HARMLESS_LINE,
  KEEP_WORDS,
  makeJpeg,
  makePng,
  makeSvg,
  PHI_LINE,
  PHI_TOKENS,
  rawOf,
  readText,
  sharedOcr,
} from './fixtures.js';

function opts(extra: Partial<RedactOptions> = {}): RedactOptions {
  return { ...sharedOcr(), ...extra };
}

async function expectCode(p: Promise<unknown>, code: string): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(GatewayError);
    expect((err as GatewayError).code).to.equal(code);
    return err as GatewayError;
  }
  expect.fail(`expected ${code}`);
}

/** After redaction no PHI token is readable and the harmless words are. */
async function expectRedacted(output: Buffer, keep: readonly string[] = KEEP_WORDS): Promise<void> {
  const text = await readText(sharedOcr().pool, output);
  for (const t of PHI_TOKENS) expect(text, 'a PHI token is still readable').not.to.contain(t);
  for (const w of keep) expect(text).to.contain(w);
}

describe('redaction: redactImage', function () {
  this.timeout(60_000);
  after(() => closeSharedOcr());

  it('the fixture is readable before redaction (so the tests below can fail)', async () => {
    const text = await readText(sharedOcr().pool, await makePng());
    for (const t of [...PHI_TOKENS, ...KEEP_WORDS]) expect(text).to.contain(t);
  });

  it('hides names, DOB, MRN and phone in a PNG and keeps the other words readable', async () => {
    const r = await redactImage(await makePng(), opts());
    expect(r.format).to.equal('png');
    expect(r.verified).to.equal(true);
    const types = new Set(r.boxes.flatMap((b) => b.type.split('+')));
    for (const t of ['PERSON', 'DATE_OF_BIRTH', 'MRN', 'PHONE_NUMBER']) expect([...types]).to.include(t);
    await expectRedacted(r.output);
  });

  it('leaves an image without identifiers alone (health words are not identifiers)', async () => {
    const input = await makePng({ lines: [HARMLESS_LINE, 'Reason for visit: toothache, panoramic x-ray'] });
    const r = await redactImage(input, opts());
    expect(r.boxes).to.deep.equal([]);
    const text = await readText(sharedOcr().pool, r.output);
    for (const w of ['toothache', 'panoramic', 'quick']) expect(text).to.contain(w);
  });

  it('handles a noisy, low-quality JPEG and returns a JPEG', async () => {
    const clean = sharp(makeSvg()).flatten({ background: '#ffffff' });
    const { width, height } = await clean.metadata();
    const noise = await sharp({
      create: {
        width: width!,
        height: height!,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 40 },
      },
    })
      .png()
      .toBuffer();
    const noisy = await clean
      .composite([{ input: noise, blend: 'soft-light' }])
      .jpeg({ quality: 45 })
      .toBuffer();
    const r = await redactImage(noisy, opts());
    expect(r.format).to.equal('jpeg');
    expect((await sharp(r.output).metadata()).format).to.equal('jpeg');
    await expectRedacted(r.output, ['quick', 'afternoon']);
  });

  it('handles light text on a dark background', async () => {
    const r = await redactImage(await makePng({ background: '#14213d', foreground: '#f0f0f0' }), opts());
    expect(r.boxes.length).to.be.greaterThan(2);
    // Read back the way a person would see it: negate for OCR.
    const negated = await sharp(r.output).negate().png().toBuffer();
    await expectRedacted(negated, ['quick', 'afternoon']);
  });

  it('handles a PNG with alpha (dark text on transparency) and keeps the alpha channel', async () => {
    const input = await makePng({ background: 'none' });
    expect((await sharp(input).metadata()).hasAlpha).to.equal(true);
    const r = await redactImage(input, opts());
    expect((await sharp(r.output).metadata()).hasAlpha).to.equal(true);
    expect(r.boxes.length).to.be.greaterThan(2);
    await expectRedacted(r.output, ['quick', 'afternoon']);
  });

  it('handles a scan rotated by 4 degrees', async () => {
    const skewed = await sharp(await makePng({ width: 1100 }))
      .rotate(4, { background: '#ffffff' })
      .png()
      .toBuffer();
    const r = await redactImage(skewed, opts());
    expect(r.verified).to.equal(true);
    await expectRedacted(r.output, ['quick', 'afternoon']);
  });

  it('applies EXIF orientation: a phone photo stored sideways is redacted upright, orientation tag gone', async () => {
    const upright = await makeJpeg();
    const { width, height } = await sharp(upright).metadata();
    // Stored rotated 90° counter-clockwise with orientation 6 ("rotate 90° clockwise to display").
    const sideways = await sharp(upright).rotate(-90).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const r = await redactImage(sideways, opts());
    const meta = await sharp(r.output).metadata();
    expect([meta.width, meta.height]).to.deep.equal([width, height]);
    expect(meta.orientation).to.equal(undefined);
    await expectRedacted(r.output, ['quick', 'afternoon']);
  });

  it('redacts every page of a multi-page TIFF (boxes in page-stacked coordinates)', async () => {
    const a = await rawOf(await makePng({ lines: [PHI_LINE, HARMLESS_LINE] }));
    const b = await rawOf(await makePng({ lines: [HARMLESS_LINE, PHI_LINE] }));
    const tiff = await sharp(Buffer.concat([a.data, b.data]), {
      raw: { width: a.width, height: a.height * 2, channels: a.channels as 3 | 4, pageHeight: a.height },
    })
      .tiff()
      .toBuffer();
    expect((await sharp(tiff).metadata()).pages).to.equal(2);
    const r = await redactImage(tiff, opts());
    expect(r.format).to.equal('tiff');
    expect(r.pages).to.equal(2);
    expect((await sharp(r.output).metadata()).pages).to.equal(2);
    expect(r.boxes.some((x) => x.y < a.height)).to.equal(true);
    expect(r.boxes.some((x) => x.y >= a.height)).to.equal(true);
    await expectRedacted(r.output, ['quick', 'afternoon']);
  });

  it('redacts every frame of an animated GIF', async () => {
    // Different frames: the GIF encoder merges identical ones.
    const a = await rawOf(await makePng({ lines: [PHI_LINE, HARMLESS_LINE] }));
    const b = await rawOf(await makePng({ lines: [HARMLESS_LINE, PHI_LINE] }));
    const gif = await sharp(Buffer.concat([a.data, b.data]), {
      raw: { width: a.width, height: a.height * 2, channels: a.channels as 3 | 4, pageHeight: a.height },
    })
      .gif({ delay: [500, 500], loop: 0 })
      .toBuffer();
    const r = await redactImage(gif, opts());
    expect(r.format).to.equal('gif');
    expect(r.pages).to.equal(2);
    const meta = await sharp(r.output).metadata();
    expect(meta.pages).to.equal(2);
    expect(meta.delay).to.deep.equal([500, 500]);
    await expectRedacted(r.output, ['quick', 'afternoon']);
  });

  it('refuses an image over the pixel limit with a clear error', async () => {
    const big = await sharp({ create: { width: 2000, height: 1000, channels: 3, background: '#fff' } })
      .png()
      .toBuffer();
    const err = await expectCode(redactImage(big, opts({ maxInputPixels: 1_000_000 })), 'REDACT_TOO_LARGE');
    expect(err.message).to.match(/2000000 pixels, more than the limit of 1000000/);
  });

  const badInputs: Array<[string, () => Buffer | Promise<Buffer>, string]> = [
    ['random bytes', () => Buffer.from('not an image at all, just text'), 'REDACT_UNREADABLE'],
    ['an empty buffer', () => Buffer.alloc(0), 'REDACT_UNREADABLE'],
    ['a truncated PNG', async () => (await makePng()).subarray(0, 400), 'REDACT_UNREADABLE'],
    ['a truncated JPEG', async () => (await makeJpeg()).subarray(0, 600), 'REDACT_UNREADABLE'],
    ['an SVG (scripts, external references)', () => makeSvg(), 'REDACT_UNSUPPORTED'],
    [
      'an AVIF',
      () =>
        sharp({ create: { width: 64, height: 64, channels: 3, background: '#fff' } })
          .avif()
          .toBuffer(),
      'REDACT_UNSUPPORTED',
    ],
  ];
  for (const [name, make, code] of badInputs) {
    it(`refuses ${name} with ${code}`, async () => {
      const err = await expectCode(redactImage(await make(), opts()), code);
      expect(err.message).to.match(/cannot be (read|decoded)|is not accepted/);
    });
  }

  it('quarantines (throws REDACT_UNSAFE) when the verify pass still finds PHI', async () => {
    try {
      await redactImage(await makePng(), opts({ unsafeDrawNoBoxes: true, verifyRounds: 1 }));
      expect.fail('an image still showing PHI was released');
    } catch (err) {
      expect(err).to.be.instanceOf(RedactionUnsafeError);
      expect((err as RedactionUnsafeError).code).to.equal('REDACT_UNSAFE');
      expect((err as RedactionUnsafeError).boxes.length).to.be.greaterThan(2);
    }
  });

  it('detectBoxes proposes the same boxes without changing anything', async () => {
    const input = await makePng();
    const d = await detectBoxes(input, opts());
    expect(d.format).to.equal('png');
    expect(d.pages).to.equal(1);
    expect(d.boxes.length).to.be.greaterThan(2);
  });
});

describe('redaction: words read again on their own (suspects)', () => {
  const word = (text: string, height = 30) => ({
    text,
    confidence: 60,
    x0: 0,
    y0: 0,
    x1: 90,
    y1: height,
    line: 0,
  });
  const rows: Array<[string, number, boolean]> = [
    ['_45-', 30, true],
    ['45-678', 30, true],
    ['123-45', 30, true],
    ['-6789', 30, true],
    ['98-7654321', 30, true],
    ['4829301', 6, true],
    ['123-45-6789', 30, false],
    ['37160.56', 30, false],
    ['4829301', 30, false],
    ['Smith', 30, false],
    ['well-known', 30, false],
    ['1', 6, false],
    ['--', 30, false],
  ];
  for (const [text, height, expected] of rows)
    it(`${JSON.stringify(text)} (${height} px of 30) ${expected ? 'is' : 'is not'} read again`, () => {
      expect(suspects([word(text, height)], 30).length).to.equal(expected ? 1 : 0);
    });
});

describe('redaction: applyBoxes (irreversibility, metadata)', () => {
  const boxes: Box[] = [
    { x: 40, y: 30, width: 120, height: 40, type: 'PERSON' },
    { x: 200, y: 100, width: 60, height: 30, type: 'MRN' },
    // Overlapping and nearly touching boxes: no fill may sample another box's hidden pixels.
    { x: 300, y: 20, width: 50, height: 50, type: 'A' },
    { x: 330, y: 50, width: 60, height: 40, type: 'B' },
    { x: 392, y: 20, width: 30, height: 30, type: 'C' },
  ];
  const W = 480;
  const H = 180;

  /** A textured image; `secret` changes only the pixels inside the boxes. */
  async function makeTextured(
    secret: number,
    format: 'png' | 'jpeg' | 'webp' | 'tiff' | 'gif',
  ): Promise<Buffer> {
    const data = Buffer.alloc(W * H * 3);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const inside = boxes.some((b) => x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height);
        const o = (y * W + x) * 3;
        const v = inside ? (x * 37 + y * 11 + secret * 101) % 256 : (x * 3 + y * 5) % 256;
        data[o] = v;
        data[o + 1] = (v * 7) % 256;
        data[o + 2] = 255 - v;
      }
    return sharp(data, { raw: { width: W, height: H, channels: 3 } })
      .toFormat(format)
      .toBuffer();
  }

  for (const mode of ['frost', 'solid'] as const) {
    it(`${mode}, png: images differing only inside the boxes give identical pixels inside them`, async () => {
      const a = await makeTextured(1, 'png');
      const b = await makeTextured(2, 'png');
      expect(a.equals(b)).to.equal(false);
      const ra = await applyBoxes(a, boxes, { mode });
      const rb = await applyBoxes(b, boxes, { mode });
      expect(ra.boxes.length).to.equal(5);
      const pa = await rawOf(ra.output);
      const pb = await rawOf(rb.output);
      let compared = 0;
      for (const box of ra.boxes) {
        for (let y = box.y; y < box.y + box.height; y++) {
          const start = (y * pa.width + box.x) * pa.channels;
          const end = start + box.width * pa.channels;
          expect(pa.data.subarray(start, end).equals(pb.data.subarray(start, end))).to.equal(true);
          compared += end - start;
        }
      }
      expect(compared).to.be.greaterThan(10_000);
      // Outside the boxes nothing differed either, so the whole encoded output is identical.
      expect(ra.output.equals(rb.output)).to.equal(true);
    });
  }

  it('frost, jpeg: JPEGs differing only inside a box give byte-identical output', async () => {
    // The secret differs only well inside a 16-pixel-aligned box, so the decoded pixels outside the box
    // are the same in both inputs (JPEG blocks and chroma upsampling stay within 16 pixels).
    const box: Box = { x: 64, y: 32, width: 160, height: 64, type: 'PERSON' };
    const base = await rawOf(await makeJpeg({ width: 400 }));
    const mk = (seed: number) => {
      const d = Buffer.from(base.data);
      for (let y = box.y + 16; y < box.y + box.height - 16; y++)
        for (let x = box.x + 16; x < box.x + box.width - 16; x++)
          d.fill((x * seed + y * 3) % 256, (y * base.width + x) * 3, (y * base.width + x) * 3 + 3);
      return sharp(d, { raw: { width: base.width, height: base.height, channels: 3 } })
        .jpeg({ quality: 95 })
        .toBuffer();
    };
    const ja = await mk(3);
    const jb = await mk(5);
    expect(ja.equals(jb)).to.equal(false);
    const ra = await applyBoxes(ja, [box]);
    const rb = await applyBoxes(jb, [box]);
    expect(ra.format).to.equal('jpeg');
    expect(ra.output.equals(rb.output)).to.equal(true);
  });

  it('frost is deterministic, not a plain box, and not the original', async () => {
    const a = await makeTextured(1, 'png');
    const r1 = await applyBoxes(a, boxes);
    const r2 = await applyBoxes(a, boxes);
    expect(r1.output.equals(r2.output)).to.equal(true);
    const solid = await applyBoxes(a, boxes, { mode: 'solid' });
    expect(r1.output.equals(solid.output)).to.equal(false);
    const px = await rawOf(r1.output);
    const orig = await rawOf(a);
    const box = r1.boxes[0]!;
    let same = 0;
    for (let y = box.y; y < box.y + box.height; y++)
      for (let x = box.x; x < box.x + box.width; x++) {
        const o = (y * px.width + x) * 3;
        if (px.data[o] === orig.data[o]) same++;
      }
    expect(same / (box.width * box.height)).to.be.lessThan(0.1);
  });

  const exifFormats = ['jpeg', 'png', 'webp', 'tiff'] as const;
  for (const format of exifFormats) {
    it(`strips EXIF (GPS, Artist), XMP and ICC from ${format} output`, async () => {
      const input = await sharp(await makeTextured(1, 'png'))
        .withExif({
          IFD0: { Artist: 'Dr Jane Roe', ImageDescription: 'Patient John Smith' },
          IFD3: {
            GPSLatitudeRef: 'N',
            GPSLatitude: '51/1 30/1 0/1',
            GPSLongitudeRef: 'W',
            GPSLongitude: '0/1 7/1 0/1',
          },
        })
        .withXmp(
          '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Dr Jane Roe</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>',
        )
        .withIccProfile('p3')
        .toFormat(format)
        .toBuffer();
      const inMeta = await sharp(input).metadata();
      // libvips writes no EXIF block into TIFF; the XMP packet carries the name there.
      if (format !== 'tiff') expect(inMeta.exif, 'the fixture carries EXIF').to.not.equal(undefined);
      expect(inMeta.xmp, 'the fixture carries XMP').to.not.equal(undefined);
      expect(input.includes('Jane Roe')).to.equal(true);
      const r = await applyBoxes(input, boxes);
      const meta = await sharp(r.output).metadata();
      expect(meta.format).to.equal(format);
      expect(meta.exif).to.equal(undefined);
      expect(meta.xmp).to.equal(undefined);
      expect(meta.icc).to.equal(undefined);
      for (const s of ['Jane Roe', 'John Smith', 'GPS', 'Exif'])
        expect(r.output.includes(s), s).to.equal(false);
    });
  }

  it('clamps boxes to the image and drops empty ones', async () => {
    const r = await applyBoxes(await makeTextured(1, 'png'), [
      { x: 460, y: 170, width: 100, height: 100, type: 'PERSON' },
      { x: 10, y: 10, width: 0, height: 5, type: 'PERSON' },
      { x: 900, y: 900, width: 10, height: 10, type: 'PERSON' },
    ]);
    expect(r.boxes).to.deep.equal([{ x: 460, y: 170, width: 20, height: 10, type: 'PERSON' }]);
  });
});
