// Fault: processing breaks for one message or one recipient: a PGP key row that stops loading mid-run, an
// image whose redaction times out. The affected mail holds or defers with a reason, never leaves in clear.
import { expect } from 'chai';
import sharp from 'sharp';
import { Keyring } from '../../store/pgp-keyring.js';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';
import { makeKey } from '../support/pgp.js';
import { report, sendRaw, smtpClient, waitUntil } from './support.js';

const PHI = 'Patient Jane Example, DOB 04/12/1961, MRN 88412345, diagnosis: type 2 diabetes.';

function mail(
  to: string,
  subject: string,
  body: string,
  attachment?: { name: string; type: string; data: Buffer },
) {
  const head = `From: staff@clinic.example\r\nTo: ${to}\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n`;
  if (!attachment) return Buffer.from(`${head}Content-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`);
  const b64 = attachment.data.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    `${head}Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\n${body}\r\n` +
      `--m\r\nContent-Type: ${attachment.type}; name="${attachment.name}"\r\nContent-Disposition: attachment; filename="${attachment.name}"\r\n` +
      `Content-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--m--\r\n`,
  );
}

describe('fault: processing failures for one recipient or one message', function () {
  this.timeout(120000);
  let capture: CaptureServer;
  let gw: RunningGateway | undefined;

  beforeEach(async () => {
    capture = new CaptureServer();
    await capture.start();
  });

  afterEach(async () => {
    await gw?.stop();
    if (gw) await removeDir(gw.dataDir);
    gw = undefined;
    await capture.stop();
  });

  const kindsFor = (rcpt: string) =>
    capture.messages
      .filter((m) => m.to.includes(rcpt))
      .map((m) => /X-PHI-Gateway-Kind: (\S+)/.exec(m.raw.toString())?.[1] ?? 'relay');

  it('a PGP key that stops loading mid-run: that recipient holds (PGP required) or gets a pickup, never clear; others flow', async () => {
    gw = await startGateway({
      relayUrl: capture.url,
      overrides: {
        policy: { requirePgpDomains: ['strict.example'] },
        pickup: { passwordDelay: 0 },
        redaction: { gateway: 'off' },
      },
    });
    const store = gw.store;
    const keyring = new Keyring(store, gw.config.pgp);
    const strict = await makeKey('doc@strict.example');
    const loose = await makeKey('doc@loose.example');
    const good = await makeKey('doc@good.example');
    for (const k of [strict, loose, good]) await keyring.importArmored(k.publicArmored, 'test');
    const t = smtpClient(gw.smtpPort, 2);
    const send = async (tag: string) => {
      const rcpts = [
        'doc@strict.example',
        'doc@loose.example',
        'doc@good.example',
        'colleague@partner.example',
      ];
      const r = await sendRaw(
        t,
        mail(rcpts.join(', '), `[secure] results ${tag}`, PHI),
        'staff@clinic.example',
        rcpts,
      );
      expect(r.response).to.match(/^250 /);
    };
    await send('before');
    await waitUntil(
      () =>
        ['doc@strict.example', 'doc@loose.example', 'doc@good.example'].every((r) =>
          kindsFor(r).includes('pgp'),
        ) && kindsFor('colleague@partner.example').length === 2,
      20000,
      'PGP copies before the fault',
    );
    expect(kindsFor('doc@strict.example')).to.deep.equal(['pgp']);
    // The stored keys of two recipients stop loading (a bad update elsewhere: new imported_at, garbage).
    for (const k of [strict, loose]) {
      await store
        .db('pgp_keys')
        .where({ fingerprint: k.fingerprint })
        .update({
          armored: '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ncorrupt\n-----END PGP PUBLIC KEY BLOCK-----\n',
          imported_at: Date.now() + 1,
        });
    }
    const before = capture.messages.length;
    await send('after');
    t.close();
    await waitUntil(
      async () =>
        kindsFor('doc@good.example').length === 2 &&
        kindsFor('doc@loose.example').includes('pickup-password') &&
        !!(await store.db('envelopes').where({ rcpt: 'doc@strict.example', state: 'held' }).first()),
      30000,
      'the outcome after the fault',
    );
    const after = capture.messages.slice(before);
    for (const m of after)
      expect(m.raw.toString(), 'PHI in clear after the key fault').not.to.contain('MRN 88412345');
    expect(kindsFor('doc@good.example')).to.deep.equal(['pgp', 'pgp']);
    expect(kindsFor('doc@strict.example'), 'nothing more to the recipient whose key broke').to.deep.equal([
      'pgp',
    ]);
    expect(kindsFor('doc@loose.example').slice(1).sort()).to.deep.equal(['pickup-notice', 'pickup-password']);
    const held = (await store
      .db('envelopes')
      .where({ rcpt: 'doc@strict.example', state: 'held' })
      .first('hold_reason')) as { hold_reason: string };
    expect(held.hold_reason).to.equal('PGP_KEY_REQUIRED');
    report(
      `      key fault: strict recipient held (${held.hold_reason}), loose recipient → pickup, good key → PGP, colleague → ${kindsFor('colleague@partner.example').join('/')}`,
    );
  });

  it('redaction that times out on one image: that message defers then holds with a reason; others flow', async () => {
    gw = await startGateway({
      relayUrl: capture.url,
      overrides: {
        pickup: { passwordDelay: 0 },
        redaction: { gateway: 'on', timeout: 1, workers: 1 },
        queue: { maxProcessingAttempts: 2, retryInitialDelay: 200, retryMaxDelay: 400, pollInterval: 100 },
      },
    });
    const png = await sharp({ create: { width: 600, height: 200, channels: 3, background: '#ffffff' } })
      .png()
      .toBuffer();
    const t = smtpClient(gw.smtpPort, 2);
    const replies = await Promise.all([
      sendRaw(
        t,
        mail('p1@patient.example', '[secure] scan', PHI, { name: 'scan.png', type: 'image/png', data: png }),
        'staff@clinic.example',
        ['p1@patient.example'],
      ),
      sendRaw(t, mail('p2@patient.example', '[secure] letter', PHI), 'staff@clinic.example', [
        'p2@patient.example',
      ]),
      sendRaw(
        t,
        mail('c@partner.example', 'rota', 'The rota for next week is unchanged.'),
        'staff@clinic.example',
        ['c@partner.example'],
      ),
    ]);
    t.close();
    for (const r of replies) expect(r.response).to.match(/^250 /);
    const qid = /queued as (\S+)/.exec(replies[0]!.response)![1]!;
    await waitUntil(
      async () => {
        const m = (await gw!.store.db('messages').where({ id: qid }).first('state')) as { state: string };
        return (
          m.state === 'held' &&
          kindsFor('p2@patient.example').length === 2 &&
          kindsFor('c@partner.example').length === 1
        );
      },
      60000,
      'the image message held and the others delivered',
    );
    const m = (await gw.store.db('messages').where({ id: qid }).first('state', 'reason', 'attempts')) as {
      state: string;
      reason: string;
      attempts: number;
    };
    expect(m.reason, 'a reason for the hold').to.match(/\w+/);
    expect(kindsFor('p1@patient.example'), 'nothing of the held message left').to.deep.equal([]);
    expect(kindsFor('p2@patient.example').sort()).to.deep.equal(['pickup-notice', 'pickup-password']);
    expect(kindsFor('c@partner.example')).to.deep.equal(['relay']);
    report(
      `      redaction timeout: held after ${m.attempts} attempts with reason ${m.reason}; 2 other messages delivered`,
    );
  });
});
