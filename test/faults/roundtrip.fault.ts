// Property: for random MIME trees, parse → scan → (relay | seal → open) gives the recipient exactly what
// went in: byte-identical at the next hop on the clean path, same text and attachments from a pickup.
import { expect } from 'chai';
import { openPickup } from '../../store/pickups.js';
import { CaptureServer } from '../support/capture-server.js';
import { attachmentBytes } from '../support/pickups.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';
import { MimeGen, type GeneratedMail } from './mime-gen.js';
import { Ledger, report, runSeed, sendRaw, smtpClient, waitUntil } from './support.js';

const CASES = Number(process.env.FAULT_FUZZ_CASES ?? 60);
const norm = (s: string) => s.replace(/\r\n/g, '\n').replace(/\s+$/, '');

describe('property: parse → scan → seal → open round trip (seeded random MIME trees)', function () {
  this.timeout(180000);
  let capture: CaptureServer;
  let gw: RunningGateway | undefined;
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);

  beforeEach(async () => {
    process.on('unhandledRejection', onUnhandled);
    capture = new CaptureServer();
    await capture.start();
  });

  afterEach(async () => {
    process.off('unhandledRejection', onUnhandled);
    await gw?.stop();
    if (gw) await removeDir(gw.dataDir);
    gw = undefined;
    await capture.stop();
  });

  const find = (rcpt: string, kind: string) =>
    capture.messages.find(
      (m) => m.to.includes(rcpt) && m.raw.toString().includes(`X-PHI-Gateway-Kind: ${kind}`),
    );

  /** Opens the pickup sent to `rcpt` with the password mailed to it and compares it with what went in. */
  async function expectPickupHolds(rcpt: string, mail: GeneratedMail, seed: number): Promise<number> {
    const notice = find(rcpt, 'pickup-notice')!.raw.toString().replace(/=\r\n/g, '');
    const pw = find(rcpt, 'pickup-password')!.raw.toString().replace(/=\r\n/g, '');
    const token = /\/p\/([A-Za-z0-9_-]+)/.exec(notice)?.[1];
    const password = /^Password: (\S+)\r?$/m.exec(pw)?.[1];
    expect(token, `link in the notice to ${rcpt}`).to.be.a('string');
    expect(password, `password for ${rcpt}`).to.be.a('string');
    const opened = await openPickup(gw!.store, token!, password!, { ip: '192.0.2.50' }, gw!.config.pickup);
    if (!opened.ok) throw new Error(`pickup for ${rcpt} did not open: ${opened.code} (seed ${seed})`);
    expect(norm(opened.content.text), `text for ${rcpt} (seed ${seed})`).to.equal(norm(mail.text));
    expect(opened.content.attachments.length, `attachments for ${rcpt}`).to.equal(mail.attachments.length);
    for (const [i, a] of mail.attachments.entries()) {
      const got = opened.content.attachments[i]!;
      expect(got.filename, `filename ${i} for ${rcpt} (seed ${seed})`).to.equal(a.filename);
      expect(got.contentType).to.equal(a.contentType);
      const bytes = await attachmentBytes(gw!.store, opened, i);
      expect(Buffer.compare(bytes, a.content), `content ${i} for ${rcpt} (seed ${seed})`).to.equal(0);
    }
    // Nothing of the content in clear in the notice.
    for (const a of mail.attachments)
      if (a.content.length > 30)
        expect(notice.includes(a.content.toString('base64').slice(0, 40))).to.equal(false);
    return mail.attachments.length;
  }

  it('clean path: every random tree arrives byte-identical, once (or, if DLP flags it, as an identical pickup)', async () => {
    const seed = runSeed('fuzz-clean');
    const gen = new MimeGen(seed);
    gw = await startGateway({
      relayUrl: capture.url,
      overrides: { pickup: { passwordDelay: 0 }, redaction: { gateway: 'off' } },
    });
    const ledger = new Ledger();
    const mails = new Map<number, GeneratedMail>();
    const t = smtpClient(gw.smtpPort, 4);
    await Promise.all(
      Array.from({ length: CASES }, async (_, seq) => {
        const mail = gen.next([
          'From: staff@clinic.example',
          `To: r${seq}@partner.example`,
          `Subject: fuzz ${seq}`,
          `X-Bench-Seq: ${seq}`,
        ]);
        mails.set(seq, mail);
        ledger.record(seq, mail.raw);
        const r = await sendRaw(t, mail.raw, 'staff@clinic.example', [`r${seq}@partner.example`]);
        expect(r.response, `case ${seq} (seed ${seed})`).to.match(/^250 /);
        ledger.acked.add(seq);
      }),
    );
    t.close();
    const asPickup = () =>
      new Set([...mails.keys()].filter((seq) => find(`r${seq}@partner.example`, 'pickup-password')));
    await waitUntil(
      () => {
        const p = asPickup();
        return ledger.check(capture.messages).lost.every((seq) => p.has(seq));
      },
      60000,
      'every case at the next hop',
    );
    const pickups = asPickup();
    const r = ledger.check(capture.messages, pickups);
    let attachments = 0;
    for (const seq of pickups)
      attachments += await expectPickupHolds(`r${seq}@partner.example`, mails.get(seq)!, seed);
    report(
      `      clean: ${CASES} random trees: ${r.arrivedDistinct} relayed byte-identical, ${pickups.size} flagged by DLP and opened identical (${attachments} attachments); corrupted ${r.corrupted.length}, duplicates ${r.duplicates}`,
    );
    expect(r.lost).to.deep.equal([]);
    expect(r.corrupted, `seed ${seed}`).to.deep.equal([]);
    expect(r.duplicates).to.equal(0);
    expect(r.arrivedDistinct + pickups.size).to.equal(CASES);
    expect(unhandled).to.deep.equal([]);
  });

  it('pickup path ([secure]): the opened pickup holds the same text and attachments, byte for byte', async () => {
    const seed = runSeed('fuzz-pickup');
    const gen = new MimeGen(seed);
    gw = await startGateway({
      relayUrl: capture.url,
      overrides: { pickup: { passwordDelay: 0 }, redaction: { gateway: 'off' } },
    });
    const n = Math.ceil(CASES / 2);
    const oracles = new Map<string, GeneratedMail>();
    const t = smtpClient(gw.smtpPort, 4);
    await Promise.all(
      Array.from({ length: n }, async (_, seq) => {
        const rcpt = `p${seq}@patient.example`;
        const mail = gen.next(['From: staff@clinic.example', `To: ${rcpt}`, `Subject: [secure] fuzz ${seq}`]);
        oracles.set(rcpt, mail);
        const r = await sendRaw(t, mail.raw, 'staff@clinic.example', [rcpt]);
        expect(r.response, `case ${seq} (seed ${seed})`).to.match(/^250 /);
      }),
    );
    t.close();
    const find = (rcpt: string, kind: string) =>
      capture.messages.find(
        (m) => m.to.includes(rcpt) && m.raw.toString().includes(`X-PHI-Gateway-Kind: ${kind}`),
      );
    await waitUntil(
      () => [...oracles.keys()].every((rcpt) => find(rcpt, 'pickup-notice') && find(rcpt, 'pickup-password')),
      90000,
      'a notice and a password for every case',
    );
    let attachments = 0;
    for (const [rcpt, mail] of oracles) attachments += await expectPickupHolds(rcpt, mail, seed);
    report(`      pickup: ${n} random trees opened, ${attachments} attachments compared byte for byte`);
    expect(unhandled).to.deep.equal([]);
  });
});
