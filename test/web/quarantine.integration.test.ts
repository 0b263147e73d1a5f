// Quarantine end to end: a rule holds PHI; an admin opens it (audited), releases one protected, one in
// clear (only with a written reason) and deletes one; each time the gateway carries it out and tells the
// sender. Real SMTP, real HTTP, one SQLite store shared by the gateway and the web app.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { createLogger } from '../../config/log.js';
import { DEFAULT_RULES_FILE } from '../../gateway/rules.js';
import { createWebApp } from '../../web/app.js';
import { CaptureServer, kindOf } from '../support/capture-server.js';
import { until } from '../support/waiting.js';
import { removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { queueIdOf, sendMessage } from '../support/smtp-client.js';
import { addStaff, StaffBrowser } from '../support/staff-browser.js';

async function send(port: number, rcpt: string, marker: string): Promise<string> {
  const message =
    `From: ann@clinic.example\r\nTo: ${rcpt}\r\nSubject: Results ${marker}\r\nMIME-Version: 1.0\r\n\r\n` +
    `Patient: Jane Roe, MRN 48213377, SSN 123-45-6789. Diagnosed with diabetes. ${marker}\r\n`;
  return queueIdOf(await sendMessage(port, 'ann@clinic.example', rcpt, message));
}

describe('quarantine (integration)', function () {
  this.timeout(60000);
  let dir: string;
  let capture: CaptureServer;
  let gw: RunningGateway;
  let server: Server;
  let b: StaffBrowser;

  before(async () => {
    dir = await tempDir();
    const pack = parse(readFileSync(DEFAULT_RULES_FILE, 'utf8')) as {
      rules: Array<{ id: string; action: string }>;
    };
    for (const r of pack.rules) r.action = 'quarantine';
    const rulesFile = path.join(dir, 'rules.yaml');
    await writeFile(rulesFile, stringify(pack));
    capture = new CaptureServer();
    await capture.start();
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: { dlp: { rulesFile }, pickup: { passwordDelay: 0 } },
    });
    server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
      0,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    const admin = await addStaff(gw.store, 'admin@clinic.example', 'admin');
    b = new StaffBrowser(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    expect((await b.signIn(admin.email, admin.password, admin.totpSecret)).location).to.equal('/admin');
  });

  after(async () => {
    server.close();
    await gw.stop();
    await capture.stop();
    await removeDir(dir);
  });

  const held = (id: string) =>
    until(
      async () =>
        ((await gw.store.db('messages').where({ id, state: 'held' }).first()) as object | undefined) ??
        undefined,
    );

  it('holds PHI under a quarantine rule, lists it and lets an admin open it (audited)', async () => {
    const id = await send(gw.smtpPort, 'patient@mail.example', 'marker-m1');
    await held(id);
    const list = await b.go('/admin/quarantine');
    expect(list.body).to.contain(id);
    const page = await b.go(`/admin/quarantine/${id}`);
    expect(page.status).to.equal(200);
    expect(page.body).to.contain('Diagnosed with diabetes');
    expect(page.body).to.contain('QUARANTINED_BY_RULE');
    const audit = await gw.store.db('audit_events').where({ message_id: id, type: 'quarantine.opened' });
    expect(audit).to.have.length(1);
    expect(JSON.stringify(audit)).not.to.contain('diabetes');

    const release = await b.post(`/admin/quarantine/${id}/release`, {
      _csrf: StaffBrowser.csrf(page.body),
      mode: 'protect',
    });
    expect(release.location).to.equal('/admin/quarantine');
    await until(() =>
      capture.messages.find((m) => kindOf(m) === 'pickup-notice' && m.to.includes('patient@mail.example')),
    );
    const told = await until(() =>
      capture.messages.find((m) => kindOf(m) === 'quarantine-notice' && m.raw.toString().includes(id)),
    );
    expect(told.to).to.deep.equal(['ann@clinic.example']);
    expect(
      capture.messages.some((m) => m.raw.toString().includes('marker-m1') && kindOf(m) === 'relay'),
    ).to.equal(false);
  });

  it('releases in clear only with a written reason, and records it', async () => {
    const id = await send(gw.smtpPort, 'lab@partner.example', 'marker-m2');
    await held(id);
    const page = await b.go(`/admin/quarantine/${id}`);
    const csrf = StaffBrowser.csrf(page.body);
    expect(
      (await b.post(`/admin/quarantine/${id}/release`, { _csrf: csrf, mode: 'clear', reason: '' })).status,
    ).to.equal(422);
    expect(
      (await b.post(`/admin/quarantine/${id}/release`, { mode: 'clear', reason: 'lab needs it today' }))
        .status,
    ).to.equal(403);
    await b.post(`/admin/quarantine/${id}/release`, {
      _csrf: csrf,
      mode: 'clear',
      reason: 'Partner lab agreement on file',
    });
    const got = await until(() =>
      capture.messages.find((m) => kindOf(m) === 'relay' && m.raw.toString().includes('marker-m2')),
    );
    expect(got.to).to.deep.equal(['lab@partner.example']);
    const audit = (await gw.store
      .db('audit_events')
      .where({ message_id: id, type: 'quarantine.release_clear' })
      .first()) as { actor: string; detail: string };
    expect(audit.actor).to.equal('admin@clinic.example');
    expect(JSON.parse(audit.detail)).to.deep.equal({ reason: 'Partner lab agreement on file' });
  });

  it('deletes a held message: nothing is sent, the spool is gone, the sender is told', async () => {
    const id = await send(gw.smtpPort, 'someone@mail.example', 'marker-m3');
    await held(id);
    const page = await b.go(`/admin/quarantine/${id}`);
    await b.post(`/admin/quarantine/${id}/delete`, { _csrf: StaffBrowser.csrf(page.body) });
    await until(
      async () =>
        ((await gw.store.db('messages').where({ id, state: 'deleted' }).first()) as object | undefined) ??
        undefined,
    );
    await until(() =>
      capture.messages.find((m) => kindOf(m) === 'quarantine-notice' && m.raw.toString().includes(id)),
    );
    expect(capture.messages.some((m) => m.raw.toString().includes('marker-m3'))).to.equal(false);
    const res = await fetch(
      `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/admin/quarantine/${id}/delete`,
      { method: 'POST' },
    );
    expect(res.status).to.equal(401);
  });
});
