// The PGP thread: builds in a worker what the recipient can decrypt, and fails closed (PGP_FAILED) on a bad
// key or a thread that dies, then carries on with the next message.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { expect } from 'chai';
import * as openpgp from 'openpgp';
import { GatewayError } from '../../config/errors.js';
import { PgpThread } from '../../gateway/pgp-thread.js';
import { makeKey, type TestKey } from '../support/pgp.js';

const RAW = Buffer.from(
  'From: staff@clinic.example\r\nTo: lab@partner.example\r\nSubject: Results\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n\r\nJane Roe, MRN 123456: HbA1c 7.1%\r\n',
);

async function decrypt(out: Buffer, recipient: TestKey): Promise<string> {
  const armour = /-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/.exec(out.toString('latin1'));
  expect(armour, 'an armoured OpenPGP message').to.not.equal(null);
  const message = await openpgp.readMessage({ armoredMessage: armour![0] });
  const result = (await openpgp.decrypt({
    message,
    decryptionKeys: recipient.privateKey,
    format: 'binary',
  })) as { data: Uint8Array };
  return Buffer.from(result.data).toString('utf8');
}

describe('PGP thread', function () {
  this.timeout(30000);
  let partner: TestKey;
  let org: TestKey;
  let thread: PgpThread;
  before(async () => {
    [partner, org] = await Promise.all([makeKey('lab@partner.example'), makeKey('gw@clinic.example')]);
  });
  beforeEach(() => {
    thread = new PgpThread();
  });
  afterEach(async () => {
    await thread.close();
  });

  const input = () => ({
    raw: RAW,
    recipientKeys: [{ key: partner.privateKey.toPublic() }],
    signingKey: { privateKey: org.privateKey },
    outerSubject: 'Secure message',
  });

  it('builds PGP/MIME in the thread that the recipient decrypts to the original body', async () => {
    const out = await thread.build(input());
    const text = out.toString('latin1');
    expect(text).to.match(/Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"/);
    // The plaintext, spaces included: base64 has no space, so random armour can never contain it (three letters
    // alone, "MRN", turn up in ~1 KB of random base64 a few times in a thousand runs: CI hit it once).
    expect(text).to.not.include('Jane Roe, MRN 123456');
    expect(await decrypt(out, partner)).to.include('Jane Roe, MRN 123456: HbA1c 7.1%');
  });

  it('builds many at once, each for its own message', async () => {
    const outs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        thread.build({ ...input(), raw: Buffer.concat([RAW, Buffer.from(`note ${i}\r\n`)]) }),
      ),
    );
    for (const [i, out] of outs.entries()) expect(await decrypt(out, partner)).to.include(`note ${i}`);
  });

  it('fails closed on a key it cannot use, and builds the next message', async () => {
    const broken = {
      armor: () => '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----\n',
    };
    const err = await thread
      .build({ ...input(), recipientKeys: [{ key: broken as unknown as openpgp.PublicKey }] })
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(GatewayError);
    expect((err as GatewayError).code).to.equal('PGP_FAILED');
    expect(await decrypt(await thread.build(input()), partner)).to.include('HbA1c');
  });

  it('fails the builds in flight when the thread dies, and starts a new one for the next', async () => {
    const inflight = thread.build(input());
    const worker = (thread as unknown as { worker: { terminate(): Promise<number> } }).worker;
    await worker.terminate();
    const err = await inflight.catch((e: unknown) => e);
    expect((err as GatewayError).code).to.equal('PGP_FAILED');
    expect(await decrypt(await thread.build(input()), partner)).to.include('HbA1c');
  });

  /** A message of about `bytes` in 64 KB chunks; `seen` counts the chunks read so far. */
  const large = (bytes: number) => {
    const raw = Buffer.concat([RAW, Buffer.from(randomBytes(bytes).toString('base64'))]);
    const counter = { seen: 0 };
    const source = (failAt = Infinity): AsyncIterable<Buffer> => {
      const stream = Readable.from(
        (function* () {
          for (let at = 0, i = 0; at < raw.length; at += 64 * 1024, i++) {
            if (i === failAt) throw Object.assign(new Error('tag'), { code: 'SPOOL_CORRUPT' });
            yield raw.subarray(at, at + 64 * 1024);
          }
        })(),
      );
      // Counted as the thread's side takes them (a stream reads a few ahead on its own).
      const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      return {
        [Symbol.asyncIterator]: () => ({
          next: async () => {
            const n = await it.next();
            if (!n.done) counter.seen++;
            return n;
          },
          return: async () => (await it.return?.()) ?? { value: undefined, done: true },
        }),
      };
    };
    return { raw, counter, source };
  };

  const streamInput = (source: AsyncIterable<Buffer>) => ({
    source,
    recipientKeys: input().recipientKeys,
    signingKey: input().signingKey,
    outerSubject: input().outerSubject,
  });

  it('builds a streamed message in the thread that decrypts to the original, reading it only as asked', async () => {
    const { raw, counter, source } = large(4 * 1024 * 1024);
    const out = thread.buildStream(streamInput(source()));
    const parts: Buffer[] = [];
    const it = out[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    parts.push((await it.next()).value as Buffer);
    await new Promise((r) => setTimeout(r, 200));
    // Nobody reads the result: the thread stops asking for the original. What OpenPGP's own stream stages hold
    // stays in flight (about a dozen 64 KB chunks), not the 86 chunks of the message.
    expect(counter.seen).to.be.lessThan(20);
    for (let n = await it.next(); !n.done; n = await it.next()) parts.push(n.value as Buffer);
    const text = await decrypt(Buffer.concat(parts), partner);
    expect(text.slice(text.indexOf('\r\n\r\n') + 4)).to.equal(
      raw.subarray(raw.indexOf('\r\n\r\n') + 4).toString('utf8'),
    );
  });

  it("fails a streamed build with the source's own error, and builds the next one", async () => {
    const { source } = large(1024 * 1024);
    const err = await (async () => {
      for await (const _ of thread.buildStream(streamInput(source(8)))) void _;
    })().catch((e: unknown) => e);
    expect((err as { code?: string }).code).to.equal('SPOOL_CORRUPT');
    const next = large(300 * 1024);
    const parts: Buffer[] = [];
    for await (const c of thread.buildStream(streamInput(next.source()))) parts.push(c as Buffer);
    expect(await decrypt(Buffer.concat(parts), partner)).to.include('HbA1c');
  });

  it('fails a streamed build when the thread dies mid-stream (nothing more comes), and starts a new one', async () => {
    const { source } = large(2 * 1024 * 1024);
    const parts: Buffer[] = [];
    const err = await (async () => {
      for await (const c of thread.buildStream(streamInput(source()))) {
        parts.push(c as Buffer);
        if (parts.length === 3) {
          const worker = (thread as unknown as { worker: { terminate(): Promise<number> } }).worker;
          await worker.terminate();
        }
      }
    })().catch((e: unknown) => e);
    expect((err as GatewayError).code).to.equal('PGP_FAILED');
    expect(Buffer.concat(parts).toString('latin1')).not.to.contain('-----END PGP MESSAGE-----');
    expect(await decrypt(await thread.build(input()), partner)).to.include('HbA1c');
  });

  it('fails a streamed build when its stage gives up (signal), and builds the next one', async () => {
    const { source } = large(2 * 1024 * 1024);
    const controller = new AbortController();
    const parts: Buffer[] = [];
    const err = await (async () => {
      for await (const c of thread.buildStream(streamInput(source()), controller.signal)) {
        parts.push(c as Buffer);
        if (parts.length === 3) controller.abort(new GatewayError('STAGE_TIMEOUT', 'stage act timed out'));
      }
    })().catch((e: unknown) => e);
    expect((err as GatewayError).code).to.equal('STAGE_TIMEOUT');
    expect(Buffer.concat(parts).toString('latin1')).not.to.contain('-----END PGP MESSAGE-----');
    expect(await decrypt(await thread.build(input()), partner)).to.include('HbA1c');
  });

  it('refuses to build once closed', async () => {
    await thread.close();
    const err = await thread.build(input()).catch((e: unknown) => e);
    expect((err as GatewayError).code).to.equal('PGP_FAILED');
    const streamed = await (async () => {
      for await (const _ of thread.buildStream(streamInput(large(1000).source()))) void _;
    })().catch((e: unknown) => e);
    expect((streamed as GatewayError).code).to.equal('PGP_FAILED');
  });
});
