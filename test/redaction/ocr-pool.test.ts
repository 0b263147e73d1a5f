// The OCR pool: local data only (no network), timeouts and crashes fail one job and replace the worker,
// workers are recycled, close() ends everything.
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { expect } from 'chai';
import sharp from 'sharp';
import { GatewayError } from '../../config/errors.js';
import { OcrPool } from '../../redaction/ocr-pool.js';
import { removeDir, ROOT, tempDir } from '../support/gateway.js';
import { makePng } from './fixtures.js';

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(GatewayError);
    expect((err as GatewayError).code).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('redaction: OCR pool', function () {
  this.timeout(60_000);
  let pool: OcrPool;
  let small: Buffer;
  let large: Buffer;
  before(async () => {
    pool = new OcrPool({ size: 1, recycleAfter: 3, jobTimeoutMs: 20_000 });
    small = await makePng({ lines: ['Radiology requisition panoramic'] });
    large = await sharp(
      await makePng({
        lines: Array.from({ length: 30 }, () => 'The quick brown fox jumps over the lazy dog'),
      }),
    )
      .resize({ width: 3000 })
      .png()
      .toBuffer();
  });
  after(() => pool.close());

  it('reads words with boxes, confidences and line numbers', async () => {
    const words = await pool.recognize(small);
    expect(words.map((w) => w.text)).to.deep.equal(['Radiology', 'requisition', 'panoramic']);
    for (const w of words) {
      expect(w.x1).to.be.greaterThan(w.x0);
      expect(w.y1).to.be.greaterThan(w.y0);
      expect(w.confidence).to.be.within(0, 100);
      expect(w.line).to.equal(0);
    }
  });

  it('a job over its timeout fails with OCR_TIMEOUT, its worker is replaced, and the pool still works', async () => {
    const replaced = pool.stats.replaced;
    await expectCode(pool.recognize(large, { timeoutMs: 50 }), 'OCR_TIMEOUT');
    expect(pool.stats.replaced).to.equal(replaced + 1);
    expect((await pool.recognize(small)).length).to.equal(3);
  });

  it('a worker thread that dies mid-job fails only that job with OCR_FAILED; the next job works', async () => {
    const job = pool.recognize(large);
    // Kill the thread running the job, as a crash in the WASM core would.
    await new Promise((r) => setTimeout(r, 300));
    const slots = (
      pool as unknown as {
        slots: Array<{ worker: Promise<{ worker: { terminate(): Promise<number> } }> | null }>;
      }
    ).slots;
    const w = await slots[0]!.worker!;
    await w.worker.terminate();
    await expectCode(job, 'OCR_FAILED');
    expect((await pool.recognize(small)).length).to.equal(3);
  });

  it('an image tesseract cannot decode fails with OCR_FAILED and does not break the pool', async () => {
    await expectCode(pool.recognize(Buffer.from('definitely not an image')), 'OCR_FAILED');
    expect((await pool.recognize(small)).length).to.equal(3);
  });

  it('recycles a worker after N jobs', async () => {
    const recycled = pool.stats.recycled;
    for (let i = 0; i < 3; i++) await pool.recognize(small);
    expect(pool.stats.recycled).to.be.greaterThan(recycled);
  });

  it('queues jobs beyond the pool size and runs them all', async () => {
    const results = await Promise.all([1, 2, 3].map(() => pool.recognize(small)));
    for (const r of results) expect(r.length).to.equal(3);
  });

  it('after close() new jobs fail with OCR_CLOSED', async () => {
    const p = new OcrPool({ size: 1 });
    await p.close();
    await expectCode(p.recognize(small), 'OCR_CLOSED');
  });

  it('needs no network: OCR works with every outgoing connection refused (workers included)', async () => {
    const preload =
      "import net from 'node:net'; net.Socket.prototype.connect = function () { throw new Error('NETWORK USED'); };";
    const script = `
      import { OcrPool } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/redaction/ocr-pool.js')).href)};
      import { readFileSync } from 'node:fs';
      const pool = new OcrPool({ size: 1 });
      const words = await pool.recognize(readFileSync(0));
      await pool.close();
      process.stdout.write(words.map((w) => w.text).join(' '));`;
    const dir = await tempDir();
    try {
      const file = path.join(dir, 'ocr-offline.mjs');
      await writeFile(file, script);
      // --import is inherited by worker threads, so tesseract's workers run with the network cut off too.
      const r = spawnSync(
        process.execPath,
        ['--import', `data:text/javascript,${encodeURIComponent(preload)}`, file],
        {
          input: small,
          encoding: 'utf8',
          cwd: ROOT,
          timeout: 30_000,
        },
      );
      expect(r.stderr).not.to.contain('NETWORK USED');
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('Radiology requisition panoramic');
    } finally {
      await removeDir(dir);
    }
  });
});
