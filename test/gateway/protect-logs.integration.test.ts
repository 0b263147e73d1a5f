// No PHI in logs: a real gateway process at debug level protects a PHI message (pickup, PGP-less) and a
// secure reply is delivered directly; nothing of the message, the password or the link token appears in
// its stdout or stderr.
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, spawnGateway, tempDir, type ChildGateway } from '../support/gateway.js';
import { RawSmtp } from '../support/smtp-client.js';

const SECRETS = ['Quixote', '48213377', 'melanoma', 'Biopsy'];

describe('no PHI in logs (integration)', function () {
  this.timeout(60000);
  let dir: string;
  let capture: CaptureServer;
  let gw: ChildGateway;

  before(async () => {
    dir = await tempDir();
    capture = new CaptureServer();
    await capture.start();
    gw = await spawnGateway({
      dataDir: dir,
      relayUrl: capture.url,
      overrides: { logLevel: 'debug', pickup: { passwordDelay: 0 }, redaction: { gateway: 'off' } },
    });
  });

  after(async () => {
    await gw.kill('SIGTERM');
    await capture.stop();
    await removeDir(dir);
  });

  it('logs codes and ids only while it protects a PHI message', async () => {
    const c = await RawSmtp.open(gw.smtpPort);
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<ann@clinic.example>');
    await c.cmd('RCPT TO:<patient@mail.example>');
    await c.cmd('DATA');
    await c.raw(
      'From: ann@clinic.example\r\nTo: patient@mail.example\r\nSubject: Biopsy results for Jane Quixote\r\nMIME-Version: 1.0\r\n\r\n' +
        'Patient: Jane Quixote, DOB 04/12/1961, MRN 48213377. Histology confirms melanoma in situ.\r\n.\r\n',
    );
    c.close();
    await capture.waitFor(2);
    const texts = await Promise.all(
      capture.messages.map(async (m) => (await simpleParser(m.raw)).text ?? ''),
    );
    const token = /\/p\/([A-Za-z0-9_-]+)/.exec(texts.join('\n'))![1]!;
    const password = /^Password: (\S+)$/m.exec(texts.join('\n'))![1]!;
    await new Promise((r) => setTimeout(r, 300));
    const logs = gw.stdout() + gw.stderr();
    expect(logs).to.contain('MESSAGE_ROUTED');
    for (const s of [...SECRETS, token, password])
      expect(logs.includes(s), `log holds ${s.slice(0, 6)}…`).to.equal(false);
    // The outer subject of the notice is neutral: the original subject held a name.
    for (const m of capture.messages)
      for (const s of SECRETS) expect(m.raw.toString('latin1')).not.to.contain(s);
  });
});
