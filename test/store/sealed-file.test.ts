// Sealed files are the only form in which message content reaches disk. These tests prove a round trip
// works and that a torn, edited, swapped or mis-keyed file is refused rather than read back.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GatewayError } from '../../config/errors.js';
import {
  openSealedBuffer,
  openSealedReader,
  readSealed,
  SHARED_PLAIN_MIN,
  removeSealed,
  sealBuffer,
  writeSealed,
} from '../../store/sealed-file.js';

// File layout: magic(4) version(1) wrapIv(12) wrappedKey(32) wrapTag(16) dataIv(12) | body | tag(16).
const HEADER_LEN = 77;
const TAG_LEN = 16;
const MB = 1024 * 1024;

const MARKER = 'PATIENT Jane Roe SSN 078-05-1120';

function makeKey(): Buffer {
  return randomBytes(32);
}

function makePlaintext(size: number): Buffer {
  const marker = Buffer.from(MARKER);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += marker.length) marker.copy(out, i);
  return out;
}

function makeChunks(data: Buffer, chunkSize: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
  return chunks;
}

/** Resolves with the rejection of `promise`; fails the test if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

function expectGatewayError(err: unknown, code: string): void {
  expect(err).to.be.instanceOf(GatewayError);
  expect((err as GatewayError).code).to.equal(code);
}

describe('store/sealed-file', () => {
  let dir: string;
  let key: Buffer;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'phigw-sealed-'));
    key = makeKey();
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('round trip', () => {
    const cases: { name: string; plaintext: Buffer; source: (p: Buffer) => Buffer | Readable }[] = [
      { name: 'small Buffer', plaintext: makePlaintext(100), source: (p) => p },
      { name: 'empty Buffer', plaintext: Buffer.alloc(0), source: (p) => p },
      {
        name: 'small Readable in 7-byte chunks',
        plaintext: makePlaintext(100),
        source: (p) => Readable.from(makeChunks(p, 7)),
      },
      { name: 'empty Readable', plaintext: Buffer.alloc(0), source: () => Readable.from([] as Buffer[]) },
      { name: '5 MB Buffer', plaintext: randomBytes(5 * MB), source: (p) => p },
      {
        name: '5 MB Readable in 64 KB chunks',
        plaintext: randomBytes(5 * MB),
        source: (p) => Readable.from(makeChunks(p, 64 * 1024)),
      },
      {
        name: '5 MB Readable in uneven chunks',
        plaintext: randomBytes(5 * MB),
        source: (p) => Readable.from(makeChunks(p, 100_003)),
      },
    ];
    for (const c of cases) {
      it(`reads back exactly what was written: ${c.name}`, async () => {
        const result = await writeSealed(dir, 'msg1', key, c.source(c.plaintext));
        expect(result.size).to.equal(c.plaintext.length);
        expect(result.path).to.equal(path.join(dir, 'msg1'));
        const back = await readSealed(dir, 'msg1', key);
        expect(back.equals(c.plaintext)).to.equal(true);
        expect(await readdir(dir)).to.deep.equal(['msg1']);
      });
    }

    it('hands every plaintext chunk to inspect, in order', async () => {
      const plaintext = makePlaintext(1000);
      const seen: Buffer[] = [];
      await writeSealed(dir, 'msg1', key, Readable.from(makeChunks(plaintext, 33)), (chunk) =>
        seen.push(Buffer.from(chunk)),
      );
      expect(Buffer.concat(seen).equals(plaintext)).to.equal(true);
    });
  });

  describe('on disk', () => {
    it('does not contain the plaintext', async () => {
      const plaintext = makePlaintext(64 * 1024);
      await writeSealed(dir, 'msg1', key, plaintext);
      const onDisk = await readFile(path.join(dir, 'msg1'));
      expect(onDisk.includes(Buffer.from(MARKER))).to.equal(false);
      expect(onDisk.includes(Buffer.from('Jane Roe'))).to.equal(false);
      expect(onDisk.length).to.equal(HEADER_LEN + plaintext.length + TAG_LEN);
    });

    it('is readable by the owner only (0600)', async () => {
      await writeSealed(dir, 'msg1', key, makePlaintext(10));
      expect((await stat(path.join(dir, 'msg1'))).mode & 0o777).to.equal(0o600);
    });

    it('differs between two writes of the same plaintext under the same id (fresh key and IV)', async () => {
      const plaintext = makePlaintext(100);
      await writeSealed(dir, 'msg1', key, plaintext);
      const first = await readFile(path.join(dir, 'msg1'));
      await removeSealed(dir, 'msg1');
      await writeSealed(dir, 'msg1', key, plaintext);
      const second = await readFile(path.join(dir, 'msg1'));
      expect(first.equals(second)).to.equal(false);
    });
  });

  describe('refuses a damaged file with SPOOL_CORRUPT', () => {
    const BODY_LEN = 200;
    // Offsets into a file holding BODY_LEN bytes of plaintext; negative offsets count from the end.
    const flips: { name: string; offset: number }[] = [
      { name: 'magic', offset: 0 },
      { name: 'version', offset: 4 },
      { name: 'key-wrap IV', offset: 5 },
      { name: 'wrapped key, first byte', offset: 17 },
      { name: 'wrapped key, last byte', offset: 48 },
      { name: 'key-wrap tag', offset: 49 },
      { name: 'data IV, first byte', offset: 65 },
      { name: 'data IV, last byte', offset: HEADER_LEN - 1 },
      { name: 'body, first byte', offset: HEADER_LEN },
      { name: 'body, middle byte', offset: HEADER_LEN + BODY_LEN / 2 },
      { name: 'body, last byte', offset: HEADER_LEN + BODY_LEN - 1 },
      { name: 'tag, first byte', offset: -TAG_LEN },
      { name: 'tag, last byte', offset: -1 },
    ];
    for (const f of flips) {
      it(`a flipped bit in the ${f.name}`, async () => {
        await writeSealed(dir, 'msg1', key, makePlaintext(BODY_LEN));
        const file = path.join(dir, 'msg1');
        const data = await readFile(file);
        const at = f.offset < 0 ? data.length + f.offset : f.offset;
        data[at] = data[at]! ^ 0x01;
        await writeFile(file, data);
        expectGatewayError(await rejectionOf(readSealed(dir, 'msg1', key)), 'SPOOL_CORRUPT');
      });
    }

    it('a flipped byte at every position of a small file', async () => {
      await writeSealed(dir, 'msg1', key, makePlaintext(10));
      const file = path.join(dir, 'msg1');
      const original = await readFile(file);
      const accepted: number[] = [];
      for (let i = 0; i < original.length; i++) {
        const data = Buffer.from(original);
        data[i] = data[i]! ^ 0xff;
        await writeFile(file, data);
        const err = await readSealed(dir, 'msg1', key).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (!(err instanceof GatewayError && err.code === 'SPOOL_CORRUPT')) accepted.push(i);
      }
      expect(accepted, 'offsets whose corruption was not refused').to.deep.equal([]);
    });

    const truncations: { name: string; keep: (len: number) => number }[] = [
      { name: 'to zero bytes', keep: () => 0 },
      { name: 'to the magic only', keep: () => 4 },
      { name: 'to the header only', keep: () => HEADER_LEN },
      { name: 'to one byte short of an empty file', keep: () => HEADER_LEN + TAG_LEN - 1 },
      { name: 'by its whole tag (looks like an empty file)', keep: (len) => len - TAG_LEN },
      { name: 'by one byte', keep: (len) => len - 1 },
    ];
    for (const t of truncations) {
      it(`a file truncated ${t.name}`, async () => {
        await writeSealed(dir, 'msg1', key, makePlaintext(100));
        const file = path.join(dir, 'msg1');
        const data = await readFile(file);
        await writeFile(file, data.subarray(0, t.keep(data.length)));
        expectGatewayError(await rejectionOf(readSealed(dir, 'msg1', key)), 'SPOOL_CORRUPT');
      });
    }

    it('a file with bytes appended', async () => {
      await writeSealed(dir, 'msg1', key, makePlaintext(100));
      const file = path.join(dir, 'msg1');
      await writeFile(file, Buffer.concat([await readFile(file), Buffer.from('X')]));
      expectGatewayError(await rejectionOf(readSealed(dir, 'msg1', key)), 'SPOOL_CORRUPT');
    });

    it('a file renamed to another id (the key wrap is bound to the id)', async () => {
      await writeSealed(dir, 'msg1', key, makePlaintext(100));
      await rename(path.join(dir, 'msg1'), path.join(dir, 'msg2'));
      expectGatewayError(await rejectionOf(readSealed(dir, 'msg2', key)), 'SPOOL_CORRUPT');
    });

    it("a file swapped over another message's file", async () => {
      await writeSealed(dir, 'msg1', key, makePlaintext(100));
      await writeSealed(dir, 'msg2', key, Buffer.from('other'));
      await rename(path.join(dir, 'msg1'), path.join(dir, 'msg2'));
      expectGatewayError(await rejectionOf(readSealed(dir, 'msg2', key)), 'SPOOL_CORRUPT');
    });

    it('a file read with the wrong master key', async () => {
      await writeSealed(dir, 'msg1', key, makePlaintext(100));
      expectGatewayError(await rejectionOf(readSealed(dir, 'msg1', makeKey())), 'SPOOL_CORRUPT');
    });

    it('a file that is not a sealed file at all', async () => {
      await writeFile(path.join(dir, 'msg1'), makePlaintext(500));
      expectGatewayError(await rejectionOf(readSealed(dir, 'msg1', key)), 'SPOOL_CORRUPT');
    });
  });

  it('refuses a missing file with SPOOL_MISSING', async () => {
    expectGatewayError(await rejectionOf(readSealed(dir, 'nope', key)), 'SPOOL_MISSING');
  });

  describe('when inspect throws', () => {
    const sources: { name: string; source: () => Buffer | Readable; throwOnChunk: number }[] = [
      { name: 'Buffer source', source: () => makePlaintext(1000), throwOnChunk: 1 },
      {
        name: 'Readable source, first chunk',
        source: () => Readable.from(makeChunks(makePlaintext(1000), 100)),
        throwOnChunk: 1,
      },
      {
        name: 'Readable source, later chunk',
        source: () => Readable.from(makeChunks(makePlaintext(1000), 100)),
        throwOnChunk: 5,
      },
      {
        name: 'Readable source, after more than one flush (~256 KB)',
        source: () => Readable.from(makeChunks(makePlaintext(2 * MB), 64 * 1024)),
        throwOnChunk: 20,
      },
    ];
    for (const s of sources) {
      it(`rejects with that error and leaves neither the file nor a .tmp behind: ${s.name}`, async () => {
        const refusal = new Error('refused by inspect');
        let calls = 0;
        const err = await rejectionOf(
          writeSealed(dir, 'msg1', key, s.source(), () => {
            if (++calls === s.throwOnChunk) throw refusal;
          }),
        );
        expect(err).to.equal(refusal);
        expect(calls).to.equal(s.throwOnChunk);
        expect(await readdir(dir)).to.deep.equal([]);
        expectGatewayError(await rejectionOf(readSealed(dir, 'msg1', key)), 'SPOOL_MISSING');
      });
    }

    it('the same id can be written afterwards', async () => {
      await rejectionOf(
        writeSealed(dir, 'msg1', key, makePlaintext(10), () => {
          throw new Error('no');
        }),
      );
      await writeSealed(dir, 'msg1', key, Buffer.from('second try'));
      expect((await readSealed(dir, 'msg1', key)).toString()).to.equal('second try');
    });
  });

  describe('inline (content kept with a database row)', () => {
    it('keeps a result within inlineMax in memory, writes no file, and it opens like a file', async () => {
      const plain = makePlaintext(5000);
      const r = await writeSealed(dir, 'small', key, Readable.from(makeChunks(plain, 700)), undefined, {
        inlineMax: 64 * 1024,
      });
      expect(r.inline).to.be.instanceOf(Buffer);
      expect(r.size).to.equal(plain.length);
      expect(await readdir(dir)).to.deep.equal([]);
      expect(r.inline!.includes(Buffer.from(MARKER))).to.equal(false);
      expect(openSealedBuffer(r.inline!, 'small', key).equals(plain)).to.equal(true);
      // Bound to its id, like a file.
      expect(() => openSealedBuffer(r.inline!, 'other', key)).to.throw(GatewayError);
    });

    it('writes a sealed file when the result is larger than inlineMax', async () => {
      const plain = makePlaintext(300 * 1024);
      const r = await writeSealed(dir, 'large', key, Readable.from(makeChunks(plain, 16384)), undefined, {
        inlineMax: 256 * 1024,
      });
      expect(r.inline).to.equal(null);
      expect(await readdir(dir)).to.deep.equal(['large']);
      expect((await readSealed(dir, 'large', key)).equals(plain)).to.equal(true);
    });

    it('sealBuffer produces the same format', () => {
      const plain = makePlaintext(1234);
      expect(openSealedBuffer(sealBuffer('b', key, plain), 'b', key).equals(plain)).to.equal(true);
    });
  });

  describe('removeSealed', () => {
    it('removes the file, and removing it again is not an error', async () => {
      await writeSealed(dir, 'msg1', key, makePlaintext(10));
      await removeSealed(dir, 'msg1');
      await removeSealed(dir, 'msg1');
      expect(await readdir(dir)).to.deep.equal([]);
      expectGatewayError(await rejectionOf(readSealed(dir, 'msg1', key)), 'SPOOL_MISSING');
    });

    it('is not an error for an id that never existed', async () => {
      await removeSealed(dir, 'never');
    });

    it('removes only the named file', async () => {
      await writeSealed(dir, 'msg1', key, Buffer.from('one'));
      await writeSealed(dir, 'msg2', key, Buffer.from('two'));
      await removeSealed(dir, 'msg1');
      expect(await readdir(dir)).to.deep.equal(['msg2']);
      expect((await readSealed(dir, 'msg2', key)).toString()).to.equal('two');
    });
  });

  describe('streamed reading (openSealedReader)', () => {
    /** Reads every chunk; returns the plaintext seen and the error the stream ended with, if any. */
    async function drain(id: string): Promise<{ seen: Buffer; sizes: number[]; err?: unknown }> {
      const reader = await openSealedReader(dir, id, key);
      const chunks: Buffer[] = [];
      try {
        for await (const c of reader.chunks()) chunks.push(c);
      } catch (err) {
        return { seen: Buffer.concat(chunks), sizes: chunks.map((c) => c.length), err };
      }
      return { seen: Buffer.concat(chunks), sizes: chunks.map((c) => c.length) };
    }

    it('yields the plaintext in chunks of at most 1 MB, and ends cleanly when the tag checks', async () => {
      const plain = randomBytes(5 * MB + 123);
      await writeSealed(dir, 'msg1', key, plain);
      const { seen, sizes, err } = await drain('msg1');
      expect(err).to.equal(undefined);
      expect(seen.equals(plain)).to.equal(true);
      expect(Math.max(...sizes)).to.be.at.most(MB);
    });

    const damages: { name: string; damage: (data: Buffer) => Buffer }[] = [
      { name: 'a bit flipped in the middle of the body', damage: (d) => flip(d, d.length >> 1) },
      { name: 'a bit flipped in the last body byte', damage: (d) => flip(d, d.length - TAG_LEN - 1) },
      { name: 'a bit flipped in the tag', damage: (d) => flip(d, d.length - 1) },
      { name: 'cut by one byte', damage: (d) => d.subarray(0, d.length - 1) },
      { name: 'cut by a whole chunk', damage: (d) => d.subarray(0, d.length - MB) },
    ];
    for (const c of damages) {
      it(`fails with SPOOL_CORRUPT at its end for a large file with ${c.name}`, async () => {
        await writeSealed(dir, 'msg1', key, randomBytes(3 * MB));
        const file = path.join(dir, 'msg1');
        await writeFile(file, c.damage(await readFile(file)));
        const { err } = await drain('msg1');
        expectGatewayError(err, 'SPOOL_CORRUPT');
        // readSealed, built on it, never hands out what it decrypted before the tag said no.
        expectGatewayError(await rejectionOf(readSealed(dir, 'msg1', key)), 'SPOOL_CORRUPT');
      });
    }

    it('refuses the wrong master key when opened, before any plaintext', async () => {
      await writeSealed(dir, 'msg1', key, randomBytes(2 * MB));
      expectGatewayError(await rejectionOf(openSealedReader(dir, 'msg1', makeKey())), 'SPOOL_CORRUPT');
    });

    it('reads large content into shared memory (a scan thread reads it without a copy), small content not', async () => {
      const large = randomBytes(SHARED_PLAIN_MIN);
      const small = randomBytes(SHARED_PLAIN_MIN - 1);
      await writeSealed(dir, 'large', key, large);
      await writeSealed(dir, 'small', key, small);
      const gotLarge = await readSealed(dir, 'large', key);
      const gotSmall = await readSealed(dir, 'small', key);
      expect(gotLarge.equals(large) && gotSmall.equals(small)).to.equal(true);
      expect(gotLarge.buffer).to.be.instanceOf(SharedArrayBuffer);
      expect(gotSmall.buffer).to.not.be.instanceOf(SharedArrayBuffer);
    });
  });
});

function flip(data: Buffer, at: number): Buffer {
  const out = Buffer.from(data);
  out[at] = out[at]! ^ 0x01;
  return out;
}
