// The SMTP edge under attack: open-relay attempts, AUTH in clear, oversize data, too many recipients,
// and SMTP smuggling with bare line endings. Every refusal must leave nothing behind to deliver.
import { connect as tlsConnect } from 'node:tls';
import { expect } from 'chai';
import nodemailer from 'nodemailer';
import { addUser } from '../../store/users.js';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';
import { makeMessage, RawSmtp } from '../support/smtp-client.js';

describe('SMTP intake security (integration)', function () {
  this.timeout(30000);
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

  async function messageCount(): Promise<number> {
    const [row] = (await gw!.store.db('messages').count({ n: '*' })) as Array<{ n: number }>;
    return Number(row!.n);
  }

  describe('with loopback not trusted (stands in for any outside client)', () => {
    beforeEach(async () => {
      gw = await startGateway({
        relayUrl: capture.url,
        overrides: { smtp: { trustedNetworks: ['192.0.2.0/24'] } },
      });
      await addUser(gw.store.db, 'staff@clinic.example', 'staff', 'correct horse battery staple');
    });

    it('refuses relay without AUTH', async () => {
      const c = await RawSmtp.open(gw!.smtpPort);
      expect(await c.cmd('EHLO attacker.example')).to.match(/^250/);
      expect(await c.cmd('MAIL FROM:<spam@attacker.example>')).to.match(/^530 5\.7\.0/);
      expect(await c.cmd('RCPT TO:<victim@example.org>')).to.match(/^5\d\d/);
      expect(await c.cmd('DATA')).to.match(/^5\d\d/);
      c.close();
      expect(await messageCount()).to.equal(0);
    });

    it('refuses AUTH before STARTTLS, even with the right password', async () => {
      const c = await RawSmtp.open(gw!.smtpPort);
      await c.cmd('EHLO client.example');
      const plain = Buffer.from('\0staff@clinic.example\0correct horse battery staple').toString('base64');
      expect(await c.cmd(`AUTH PLAIN ${plain}`)).to.match(/^5\d\d/);
      expect(await c.cmd('MAIL FROM:<staff@clinic.example>')).to.match(/^530/);
      c.close();
    });

    it('relays for a staff account after STARTTLS + AUTH, and refuses a wrong password', async () => {
      const send = (pass: string) =>
        nodemailer
          .createTransport({
            host: '127.0.0.1',
            port: gw!.smtpPort,
            secure: false,
            requireTLS: true,
            tls: { rejectUnauthorized: false },
            auth: { user: 'staff@clinic.example', pass },
          })
          .sendMail({
            envelope: { from: 'staff@clinic.example', to: ['p@partner.example'] },
            raw: makeMessage(),
          });
      const err = await send('wrong password!!').then(
        () => null,
        (e: Error & { responseCode?: number }) => e,
      );
      expect(err?.responseCode).to.equal(535);
      // The first good AUTH gives the account its key pair for pickup password re-issue; a bad one does not.
      const keys = async () => (await gw!.store.db('user_keys').select('user_id')).length;
      expect(await keys()).to.equal(0);
      const info = await send('correct horse battery staple');
      expect(info.response).to.match(/^250/);
      expect(await keys()).to.equal(1);
      await capture.waitFor(1);
      expect(capture.messages[0]!.raw.toString()).to.match(/with ESMTPSA id/);
    });

    it('offers STARTTLS with a certificate generated on first run', async () => {
      const c = await RawSmtp.open(gw!.smtpPort);
      await c.cmd('EHLO client.example');
      expect(await c.cmd('STARTTLS')).to.match(/^220/);
      c.close();
      // The certificate is served and usable for TLS.
      const socket = tlsConnect({ port: gw!.smtpPort, host: '127.0.0.1', rejectUnauthorized: false });
      socket.destroy();
    });
  });

  describe('with loopback trusted (the default)', () => {
    beforeEach(async () => {
      gw = await startGateway({
        relayUrl: capture.url,
        overrides: { smtp: { maxMessageSize: 64 * 1024, maxRecipients: 3 } },
      });
    });

    it('announces SIZE and answers 552 to a message over it, keeping nothing', async () => {
      const c = await RawSmtp.open(gw!.smtpPort);
      const ehlo = await c.cmd('EHLO client.example');
      expect(ehlo).to.match(/^250/);
      expect(await c.cmd('MAIL FROM:<staff@clinic.example> SIZE=999999')).to.match(/^552/);
      expect(await c.cmd('MAIL FROM:<staff@clinic.example>')).to.match(/^250/);
      expect(await c.cmd('RCPT TO:<p@partner.example>')).to.match(/^250/);
      expect(await c.cmd('DATA')).to.match(/^354/);
      const big = makeMessage({ body: ('x'.repeat(998) + '\r\n').repeat(100) });
      expect(await c.raw(big + '.\r\n')).to.match(/^552 5\.3\.4/);
      // The session is still usable afterwards.
      expect(await c.cmd('RSET')).to.match(/^250/);
      c.close();
      expect(await messageCount()).to.equal(0);
    });

    it('limits recipients per transaction with 452', async () => {
      const c = await RawSmtp.open(gw!.smtpPort);
      await c.cmd('EHLO client.example');
      await c.cmd('MAIL FROM:<staff@clinic.example>');
      for (let i = 0; i < 3; i++) expect(await c.cmd(`RCPT TO:<r${i}@partner.example>`)).to.match(/^250/);
      expect(await c.cmd('RCPT TO:<r3@partner.example>')).to.match(/^452/);
      c.close();
    });

    const smuggling: Array<[string, string]> = [
      ['bare LF before the dot', '\n.\n'],
      ['bare LF then CRLF dot', '\n.\r\n'],
      ['CRLF dot then bare LF', '\r\n.\n'],
      ['bare CR dot CRLF', '\r.\r\n'],
      ['CRLF dot bare CR', '\r\n.\r'],
    ];
    for (const [name, terminator] of smuggling) {
      it(`answers 550 5.5.2 to a smuggling attempt (${name}) and no second message emerges`, async () => {
        const c = await RawSmtp.open(gw!.smtpPort);
        await c.cmd('EHLO client.example');
        await c.cmd('MAIL FROM:<staff@clinic.example>');
        await c.cmd('RCPT TO:<p@partner.example>');
        expect(await c.cmd('DATA')).to.match(/^354/);
        const payload =
          makeMessage({ body: 'first' }).replace(/\r\n$/, '') +
          terminator +
          'MAIL FROM:<ceo@clinic.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n';
        const reply = await c.raw(payload);
        expect(reply).to.match(/^550 5\.5\.2/);
        c.close();
        await new Promise((r) => setTimeout(r, 300));
        expect(await messageCount()).to.equal(0);
        expect(capture.count).to.equal(0);
      });
    }

    it('accepts a well-formed message from a trusted client without AUTH', async () => {
      const c = await RawSmtp.open(gw!.smtpPort);
      await c.cmd('EHLO client.example');
      expect(await c.cmd('MAIL FROM:<staff@clinic.example>')).to.match(/^250/);
      expect(await c.cmd('RCPT TO:<p@partner.example>')).to.match(/^250/);
      expect(await c.cmd('DATA')).to.match(/^354/);
      expect(await c.raw(makeMessage() + '.\r\n')).to.match(/^250 2\.0\.0 Ok: queued as [0-9A-Z]+$/);
      c.close();
      await capture.waitFor(1);
    });
  });
});
