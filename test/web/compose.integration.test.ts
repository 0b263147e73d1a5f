// Secure send from the web: a staff member composes a message with an attachment; it goes through the same
// pipeline as SMTP mail (here: a pickup for the patient, clear for an internal colleague), shows up under
// "My messages", and the form refuses bad addresses and forged posts.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { createLogger } from '../../config/log.js';
import { createWebApp } from '../../web/app.js';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { addStaff, StaffBrowser } from '../support/staff-browser.js';

describe('web/compose (integration)', function () {
  this.timeout(60000);
  let dir: string;
  let capture: CaptureServer;
  let gw: RunningGateway;
  let server: Server;
  let b: StaffBrowser;

  before(async () => {
    dir = await tempDir();
    capture = new CaptureServer();
    await capture.start();
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: { pickup: { passwordDelay: 0 }, policy: { internalDomains: ['clinic.example'] } },
    });
    server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
      0,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    b = new StaffBrowser(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const s = await addStaff(gw.store, 'ann@clinic.example', 'staff');
    await b.signIn(s.email, s.password);
  });

  after(async () => {
    server.close();
    await gw.stop();
    await capture.stop();
    await removeDir(dir);
  });

  function formData(fields: Record<string, string>, file?: { name: string; content: Buffer }): FormData {
    const fd = new FormData();
    for (const [k, v] of Object.entries(fields)) fd.append(k, v);
    if (file) fd.append('files', new Blob([new Uint8Array(file.content)], { type: 'text/csv' }), file.name);
    return fd;
  }

  it('sends through the pipeline: a pickup for the patient, clear for the colleague, listed under my messages', async () => {
    const page = await b.go('/me/send');
    expect(page.status).to.equal(200);
    const csrf = StaffBrowser.csrf(page.body);
    const res = await b.go('/me/send', {
      method: 'POST',
      body: formData(
        {
          _csrf: csrf,
          to: 'patient@mail.example, colleague@clinic.example',
          subject: 'Your lab values',
          text: 'Your HbA1c is 7.9%.',
        },
        { name: 'values.csv', content: Buffer.from('test,value\nHbA1c,7.9\n') },
      ),
    });
    expect(res.status).to.equal(201);
    const ref = /Reference <code>([0-9A-Z]+)<\/code>/.exec(res.body)![1]!;
    await capture.waitFor(3);
    const kinds = capture.messages.map(
      (m) => /X-PHI-Gateway-Kind: ([\w-]+)/.exec(m.raw.toString('latin1'))?.[1] ?? 'relay',
    );
    expect(kinds.sort()).to.deep.equal(['pickup-notice', 'pickup-password', 'relay']);
    const clear = capture.messages.find((m) => !m.raw.toString('latin1').includes('X-PHI-Gateway-Kind'))!;
    expect(clear.to).to.deep.equal(['colleague@clinic.example']);
    const parsed = await simpleParser(clear.raw);
    expect(parsed.from?.text).to.equal('ann@clinic.example');
    expect(parsed.attachments[0]?.filename).to.equal('values.csv');
    for (const m of capture.messages.filter((x) => x !== clear))
      expect(m.raw.toString('latin1')).not.to.contain('7.9');
    const mine = await b.go('/api/me/messages');
    const list = JSON.parse(mine.body) as { messages: Array<{ id: string; outcome: string }> };
    expect(list.messages.find((m) => m.id === ref)?.outcome).to.equal('pickup');
  });

  it('refuses bad addresses and a post without the CSRF token', async () => {
    const csrf = StaffBrowser.csrf((await b.go('/me/send')).body);
    const bad = await b.go('/me/send', {
      method: 'POST',
      body: formData({ _csrf: csrf, to: 'not an address', text: 'x' }),
    });
    expect(bad.status).to.equal(422);
    expect(bad.body).to.contain('do not look right');
    const forged = await b.go('/me/send', {
      method: 'POST',
      body: formData({ to: 'patient@mail.example', text: 'x' }),
    });
    expect(forged.status).to.equal(403);
    const anon = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/me/send`);
    expect(anon.redirected || anon.url.includes('/login')).to.equal(true);
  });
});
