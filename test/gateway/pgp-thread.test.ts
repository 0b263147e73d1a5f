// The PGP thread: builds in a worker what the recipient can decrypt, and fails closed (PGP_FAILED) on a bad
// key or a thread that dies, then carries on with the next message.
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
    expect(text).to.not.include('MRN');
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

  it('refuses to build once closed', async () => {
    await thread.close();
    const err = await thread.build(input()).catch((e: unknown) => e);
    expect((err as GatewayError).code).to.equal('PGP_FAILED');
  });
});
