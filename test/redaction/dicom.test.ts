// DICOM redaction: PHI tags blanked (inside sequences too), burned-in text unreadable at the original bit
// depth, the fill independent of the hidden pixels, unsupported and damaged files refused.
import { expect } from 'chai';
import { GatewayError } from '../../config/errors.js';
import {
  applyDicomBoxes,
  dicomPreview,
  parseDicom,
  redactDicom,
  type Element,
} from '../../redaction/dicom.js';
import { redactImage, RedactionUnsafeError, type Box, type RedactOptions } from '../../redaction/redact.js';
import { closeSharedOcr, readText, sharedOcr } from './fixtures.js';
import { greyPixels, makeDicom, type DicomSpec } from './dicom-writer.js';

const LINES = ['Patient: John Smith DOB 03/14/1962 MRN 4829301', 'Bitewing radiograph of the lower molars'];
const PHI = ['John', 'Smith', '1962', '4829301'];
const KEEP = ['Bitewing', 'radiograph', 'molars'];

function opts(extra: Partial<RedactOptions> = {}): RedactOptions {
  return { ...sharedOcr(), ...extra };
}

function get(els: readonly Element[], tag: number): Element | undefined {
  return els.find((e) => e.tag === tag);
}

function str(e: Element | undefined): string | undefined {
  return e?.value?.toString('latin1').replace(/[\0 ]+$/, '');
}

async function expectCode(p: Promise<unknown>, code: string): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(GatewayError);
    expect((err as GatewayError).code, (err as Error).message).to.equal(code);
    return err as GatewayError;
  }
  expect.fail(`expected ${code}`);
}

const grey = () => greyPixels({ lines: LINES, width: 900, fontSize: 24 });

/** PHI header tags: blank afterwards. */
const BLANKED: Array<[number, string]> = [
  [0x00100010, 'PatientName'],
  [0x00100020, 'PatientID'],
  [0x00100030, 'PatientBirthDate'],
  [0x00101040, 'PatientAddress'],
  [0x00102154, 'PatientTelephoneNumbers'],
  [0x00080090, 'ReferringPhysicianName'],
  [0x00080080, 'InstitutionName'],
  [0x00080050, 'AccessionNumber'],
  [0x00200010, 'StudyID'],
];
/** Tags that are not PHI: unchanged afterwards. */
const KEPT: Array<[number, string]> = [
  [0x00080016, '1.2.840.10008.5.1.4.1.1.1.3'],
  [0x00080060, 'IO'],
  [0x00081030, 'Bitewing left'],
  [0x00100040, 'M'],
  [0x00280004, 'MONOCHROME2'],
  [0x00280002, '\u0001'],
  [0x00280103, ''],
  [0x00280100, 'x'],
  [0x00280101, 'x'],
  [0x00280011, 'x'],
];

describe('redaction: DICOM', function () {
  this.timeout(120_000);
  after(() => closeSharedOcr());

  const cases: Array<[string, Pick<DicomSpec, 'explicit' | 'bits' | 'monochrome1'>]> = [
    ['explicit VR, 8 bit', { explicit: true, bits: 8 }],
    ['implicit VR, 16 bit (12 stored)', { explicit: false, bits: 16 }],
    ['explicit VR, 16 bit, MONOCHROME1', { explicit: true, bits: 16, monochrome1: true }],
  ];
  for (const [name, spec] of cases) {
    it(`${name}: header PHI blank (in sequences too), other tags intact, burned-in PHI unreadable`, async () => {
      const input = makeDicom({ ...spec, grey: await grey() });
      // The fixture is readable before redaction, so the checks below can fail.
      const before = await readText(sharedOcr().pool, await dicomPreview(input));
      for (const t of [...PHI, ...KEEP]) expect(before).to.contain(t);

      const r = await redactImage(input, opts());
      expect(r.format).to.equal('dicom');
      expect(r.verified).to.equal(true);
      expect(r.boxes.length).to.be.greaterThan(0);
      for (const t of [
        'Smith',
        'John',
        'MRN4829301',
        '19620314',
        'Elm Street',
        'Doe^Jane',
        'Lakeside',
        'ACC99817',
        'STUDY7731',
        'Olga',
        '5551234567',
      ])
        expect(r.output.includes(Buffer.from(t, 'latin1')), `${t} still in the file`).to.equal(false);

      const out = parseDicom(r.output);
      const inp = parseDicom(input);
      expect(out.transferSyntax).to.equal(inp.transferSyntax);
      for (const [tag, kw] of BLANKED) {
        const e = get(out.elements, tag);
        expect(e, kw).not.to.equal(undefined);
        expect(e!.value!.length, kw).to.equal(0);
      }
      for (const [tag] of KEPT) {
        const a = get(inp.elements, tag);
        const b = get(out.elements, tag);
        if (tag === 0x00280004 && spec.monochrome1) expect(str(b)).to.equal('MONOCHROME1');
        else expect(b?.value?.equals(a!.value!), tag.toString(16)).to.equal(true);
      }
      // Sequences: walked past, PatientName/OperatorsName inside blanked, other item values kept.
      const seq = get(out.elements, 0x00081120);
      expect(seq?.items).to.have.length(1);
      expect(str(get(seq!.items![0]!, 0x00081150))).to.equal('1.2.840.10008.3.1.2.1.4');
      expect(get(seq!.items![0]!, 0x00100010)!.value!.length).to.equal(0);
      const seq2 = get(out.elements, 0x00082112);
      expect(seq2?.items).to.have.length(2);
      expect(get(seq2!.items![0]!, 0x00081070)!.value!.length).to.equal(0);
      // Overlay groups are dropped; pixel data keeps its size.
      expect(get(out.elements, 0x60000022)).to.equal(undefined);
      expect(get(out.elements, 0x7fe00010)!.value!.length).to.equal(
        get(inp.elements, 0x7fe00010)!.value!.length,
      );

      const after = await readText(sharedOcr().pool, await dicomPreview(r.output));
      for (const t of PHI) expect(after, 'a PHI token is still readable').not.to.contain(t);
      for (const w of KEEP) expect(after).to.contain(w);
      // Pixels outside the boxes are untouched.
      const pa = get(inp.elements, 0x7fe00010)!.value!;
      const pb = get(out.elements, 0x7fe00010)!.value!;
      const bytes = spec.bits / 8;
      const cols = 900;
      let changedOutside = 0;
      for (let i = 0; i < pa.length / bytes; i++) {
        const x = i % cols;
        const y = Math.floor(i / cols);
        if (r.boxes.some((b) => x >= b.x && x < b.x + b.width && y >= b.y && y < b.y + b.height)) continue;
        if (
          pa.subarray(i * bytes, i * bytes + bytes).compare(pb.subarray(i * bytes, i * bytes + bytes)) !== 0
        )
          changedOutside++;
      }
      expect(changedOutside).to.equal(0);
    });
  }

  for (const mode of ['frost', 'solid'] as const) {
    it(`${mode}: two files differing only inside the boxes give identical pixels inside the boxes`, async () => {
      const g = await grey();
      const boxes: Box[] = [
        { x: 20, y: 10, width: 300, height: 40, type: 'PERSON' },
        { x: 300, y: 30, width: 120, height: 30, type: 'MRN' },
      ];
      const other = Buffer.from(g.data);
      for (const b of boxes)
        for (let y = b.y; y < b.y + b.height; y++)
          for (let x = b.x; x < b.x + b.width; x++) other[y * g.width + x] = (x * 37 + y * 11) % 256;
      for (const bits of [8, 16] as const) {
        const a = await applyDicomBoxes(makeDicom({ explicit: true, bits, grey: g }), boxes, { mode });
        const b = await applyDicomBoxes(
          makeDicom({ explicit: true, bits, grey: { ...g, data: other } }),
          boxes,
          {
            mode,
          },
        );
        const pa = get(parseDicom(a.output).elements, 0x7fe00010)!.value!;
        const pb = get(parseDicom(b.output).elements, 0x7fe00010)!.value!;
        const orig = get(
          parseDicom(makeDicom({ explicit: true, bits, grey: g })).elements,
          0x7fe00010,
        )!.value!;
        const bytes = bits / 8;
        let inside = 0;
        let differsFromOriginal = 0;
        for (const box of boxes)
          for (let y = box.y; y < box.y + box.height; y++)
            for (let x = box.x; x < box.x + box.width; x++) {
              const o = (y * g.width + x) * bytes;
              expect(pa.subarray(o, o + bytes).equals(pb.subarray(o, o + bytes))).to.equal(true);
              if (!pa.subarray(o, o + bytes).equals(orig.subarray(o, o + bytes))) differsFromOriginal++;
              inside++;
            }
        expect(differsFromOriginal).to.be.greaterThan(inside / 10);
      }
    });
  }

  const refused: Array<[string, string, string]> = [
    ['JPEG baseline', '1.2.840.10008.1.2.4.50', 'REDACT_UNSUPPORTED'],
    ['JPEG 2000', '1.2.840.10008.1.2.4.90', 'REDACT_UNSUPPORTED'],
    ['deflated explicit VR', '1.2.840.10008.1.2.1.99', 'REDACT_UNSUPPORTED'],
    ['explicit VR big endian', '1.2.840.10008.1.2.2', 'REDACT_UNSUPPORTED'],
  ];
  for (const [name, ts, code] of refused)
    it(`refuses ${name} (${ts}) with ${code}`, async () => {
      const input = makeDicom({ explicit: true, bits: 8, grey: await grey(), transferSyntax: ts });
      const err = await expectCode(redactImage(input, opts()), code);
      expect(err.message).to.contain(ts);
    });

  it('refuses truncated or damaged files with REDACT_UNREADABLE (never a crash, never output)', async () => {
    for (const explicit of [true, false]) {
      const input = makeDicom({ explicit, bits: 16, grey: await grey() });
      for (const cut of [140, 200, 300, 420, 600, input.length - 1000, input.length - 1])
        await expectCode(redactDicom(input.subarray(0, cut), opts()), 'REDACT_UNREADABLE');
    }
    const noMagic = Buffer.alloc(300);
    await expectCode(redactDicom(noMagic, opts()), 'REDACT_UNREADABLE');
  });

  it('an image whose burned-in PHI stays readable is refused (RedactionUnsafeError), not written', async () => {
    const input = makeDicom({ explicit: true, bits: 8, grey: await grey() });
    const err = await expectCode(
      redactDicom(input, opts({ unsafeDrawNoBoxes: true, verifyRounds: 1 })),
      'REDACT_UNSAFE',
    );
    expect((err as RedactionUnsafeError).boxes.length).to.be.greaterThan(0);
  });

  it('refuses colour and multi-frame images with REDACT_UNSUPPORTED', async () => {
    const input = makeDicom({ explicit: true, bits: 8, grey: await grey() });
    const colour = Buffer.from(input);
    const at = colour.indexOf(Buffer.from('MONOCHROME2'));
    colour.write('RGB        ', at, 'latin1');
    await expectCode(redactDicom(colour, opts()), 'REDACT_UNSUPPORTED');
    const frames = makeDicom({ explicit: false, bits: 8, grey: await grey(), frames: 2 });
    const err = await expectCode(redactDicom(frames, opts()), 'REDACT_UNSUPPORTED');
    expect(err.message).to.contain('frame');
  });
});
