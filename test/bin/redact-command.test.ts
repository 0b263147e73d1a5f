// `phi-gateway redact` as an operator runs it: real process, files in a temp dir, exit codes, JSON lines.
// Checks that recognised text is never printed and that an image that cannot be made safe is not written.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import sharp from 'sharp';
import { ROOT, removeDir, tempDir } from '../support/gateway.js';
import { makePng, makeSvg } from '../redaction/fixtures.js';
import { greyPixels, makeDicom } from '../redaction/dicom-writer.js';

function run(dir: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/phi-gateway.js'), 'redact', ...args], {
    env: { ...process.env, PHIGW_DATA_DIR: dir, PHIGW_CONFIG: '', ...env },
    encoding: 'utf8',
    cwd: dir,
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface Line {
  file: string;
  out: string;
  boxes: Array<{ x: number; y: number; width: number; height: number; type: string }>;
}

describe('phi-gateway redact', function () {
  this.timeout(90_000);
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir();
    await writeFile(path.join(dir, 'form.png'), await makePng());
  });
  afterEach(() => removeDir(dir));

  it('IN -o OUT --json: one JSON line with the boxes, the output written, no text printed', async () => {
    const r = run(dir, ['--json', 'form.png', '-o', 'clean.png']);
    expect(r.code, r.err).to.equal(0);
    const lines = r.out.trim().split('\n');
    expect(lines).to.have.length(1);
    const line = JSON.parse(lines[0]!) as Line;
    expect(Object.keys(line)).to.deep.equal(['file', 'out', 'boxes']);
    expect(line.file).to.equal('form.png');
    expect(line.out).to.equal('clean.png');
    expect(line.boxes.length).to.be.greaterThan(2);
    for (const b of line.boxes) expect(Object.keys(b)).to.deep.equal(['x', 'y', 'width', 'height', 'type']);
    expect((await sharp(path.join(dir, 'clean.png')).metadata()).format).to.equal('png');
    for (const t of ['John', 'Smith', '4829301', '1962', 'quick']) expect(r.out + r.err).not.to.contain(t);
  });

  it('--out-dir keeps file names; an unreadable input gets exit 2 and the batch goes on', async () => {
    await writeFile(path.join(dir, 'broken.png'), Buffer.from('not a png'));
    await writeFile(path.join(dir, 'picture.svg'), makeSvg());
    await mkdir(path.join(dir, 'out'));
    const r = run(dir, [
      '--json',
      '--out-dir',
      'out',
      'broken.png',
      'picture.svg',
      'form.png',
      'missing.png',
    ]);
    expect(r.code).to.equal(2);
    expect(r.err).to.contain('broken.png: the image cannot be read');
    expect(r.err).to.contain('picture.svg: image format "svg" is not accepted');
    expect(r.err).to.contain('cannot read missing.png: ENOENT');
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
    expect(lines.map((l) => l.file)).to.deep.equal(['form.png']);
    expect(lines[0]!.out).to.equal(path.join('out', 'form.png'));
    expect(existsSync(path.join(dir, 'out', 'form.png'))).to.equal(true);
    expect(existsSync(path.join(dir, 'out', 'broken.png'))).to.equal(false);
  });

  it('--boxes FILE applies the given boxes without OCR', async () => {
    const boxes = [{ x: 10, y: 5, width: 200, height: 30, type: 'PERSON' }];
    await writeFile(path.join(dir, 'boxes.json'), JSON.stringify(boxes));
    const r = run(dir, ['--json', '--boxes', 'boxes.json', 'form.png', '-o', 'boxed.png']);
    expect(r.code, r.err).to.equal(0);
    expect((JSON.parse(r.out) as Line).boxes).to.deep.equal(boxes);
    const before = await sharp(path.join(dir, 'form.png')).raw().toBuffer();
    const after = await sharp(path.join(dir, 'boxed.png')).raw().toBuffer();
    expect(before.equals(after)).to.equal(false);
  });

  it('a .dcm file: header PHI blanked, burned-in text boxed, written as DICOM', async () => {
    const grey = await greyPixels({
      lines: ['Patient: John Smith MRN 4829301', 'Bitewing left'],
      width: 700,
    });
    await writeFile(path.join(dir, 'xray.dcm'), makeDicom({ explicit: true, bits: 16, grey }));
    const r = run(dir, ['--json', 'xray.dcm', '-o', 'clean.dcm']);
    expect(r.code, r.err).to.equal(0);
    expect((JSON.parse(r.out) as Line).boxes.length).to.be.greaterThan(0);
    const out = await readFile(path.join(dir, 'clean.dcm'));
    expect(out.toString('latin1', 128, 132)).to.equal('DICM');
    for (const t of ['Smith', 'MRN4829301', '19620314']) expect(out.includes(Buffer.from(t))).to.equal(false);
    for (const t of ['John', 'Smith', '4829301']) expect(r.out + r.err).not.to.contain(t);
  });

  it('a malformed boxes file is refused with exit 2', async () => {
    await writeFile(path.join(dir, 'boxes.json'), '[{"x": -1}]');
    const r = run(dir, ['--boxes', 'boxes.json', 'form.png', '-o', 'boxed.png']);
    expect(r.code).to.equal(2);
    expect(r.err).to.contain('must be a JSON array');
    expect(existsSync(path.join(dir, 'boxed.png'))).to.equal(false);
  });

  it('an image that cannot be checked (OCR time limit) exits 3 and is not written', async () => {
    const config = path.join(dir, 'config.yaml');
    await writeFile(config, 'redaction:\n  timeout: 1\n');
    const r = run(dir, ['form.png', '-o', 'clean.png'], { PHIGW_CONFIG: config });
    expect(r.code, r.err).to.equal(3);
    expect(r.err).to.contain('nothing written');
    expect(existsSync(path.join(dir, 'clean.png'))).to.equal(false);
  });

  it('usage errors exit 2: no output, both -o and --out-dir, -o with several inputs, overwriting the input', async () => {
    expect(run(dir, ['form.png']).code).to.equal(2);
    expect(run(dir, ['form.png', '-o', 'a.png', '--out-dir', '.']).code).to.equal(2);
    expect(run(dir, ['form.png', 'form.png', '-o', 'a.png']).code).to.equal(2);
    await writeFile(path.join(dir, 'boxes.json'), '[]');
    const same = run(dir, ['--boxes', 'boxes.json', 'form.png', '--out-dir', '.']);
    expect(same.code).to.equal(2);
    expect(same.err).to.contain('would overwrite the input');
    const original = await readFile(path.join(dir, 'form.png'));
    expect(original.equals(await makePng())).to.equal(true);
  });
});
