// The scan stage in the running gateway: PHI never leaves in clear (it goes out protected), clean mail
// carries the verdict header, the audit log explains both, and a rules change made while the gateway runs
// governs the very next message.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { DEFAULT_RULES_FILE } from '../../gateway/rules.js';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { makeMessage, queueIdOf, sendMessage } from '../support/smtp-client.js';

async function send(port: number, message: string): Promise<string> {
  return queueIdOf(await sendMessage(port, 'staff@clinic.example', 'partner@example.org', message));
}

async function finalState(
  gw: RunningGateway,
  id: string,
): Promise<{ state: string; reason: string | null; verdict: string | null }> {
  const end = Date.now() + 15000;
  for (;;) {
    const row = (await gw.store.db('messages').where({ id }).first()) as {
      state: string;
      reason: string | null;
      verdict: string | null;
    };
    if (['held', 'done', 'blocked'].includes(row.state) || Date.now() > end) return row;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('scan stage (integration)', function () {
  this.timeout(30000);
  let capture: CaptureServer;
  let gw: RunningGateway;
  let dir: string;
  let rulesFile: string;
  const pack = parse(readFileSync(DEFAULT_RULES_FILE, 'utf8')) as { deny: string[] };

  before(async () => {
    dir = await tempDir();
    rulesFile = path.join(dir, 'rules.yaml');
    await writeFile(rulesFile, stringify({ ...pack, deny: [] }));
    capture = new CaptureServer();
    await capture.start();
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: { dlp: { rulesFile, reloadInterval: 50 }, pickup: { passwordDelay: 0 } },
    });
  });

  after(async () => {
    await gw.stop();
    await capture.stop();
    await removeDir(dir);
  });

  it('relays clean mail with the verdict in a trace header and an audited explanation', async () => {
    const id = await send(
      gw.smtpPort,
      makeMessage({ subject: 'Team lunch', body: 'Lunch is at noon on Friday in the break room.' }),
    );
    expect((await finalState(gw, id)).state).to.equal('done');
    await capture.waitFor(1);
    expect(capture.messages[0]!.raw.toString()).to.match(/\r\nX-PHI-Gateway-Scan: clean\r\n/);
    const audit = (await gw.store
      .db('audit_events')
      .where({ message_id: id, type: 'message.routed' })
      .first()) as { detail: string };
    expect(JSON.parse(audit.detail)).to.include({ phi: false, action: 'clean' });
  });

  it('follows a rules change without a restart: the next message with a deny-listed term is protected', async () => {
    const message = makeMessage({
      subject: 'Notes',
      body: 'Minutes of the Project Bluebird review are attached.',
    });
    const before = await send(gw.smtpPort, message);
    expect((await finalState(gw, before)).state).to.equal('done');

    await writeFile(rulesFile, stringify({ ...pack, deny: ['Project Bluebird'] }));
    await new Promise((r) => setTimeout(r, 300));
    const seen = capture.messages.length;
    const after = await send(gw.smtpPort, message);
    const row = await finalState(gw, after);
    expect(row.state).to.equal('done');
    const verdict = JSON.parse(row.verdict!) as {
      phi: boolean;
      rules: string[];
      types: string[];
      parts: string[];
    };
    expect(verdict).to.deep.include({
      phi: true,
      rules: ['deny-list'],
      types: ['DENY_TERM'],
      parts: ['text'],
    });
    const audit = (await gw.store
      .db('audit_events')
      .where({ message_id: after, type: 'message.routed' })
      .first()) as { detail: string };
    expect(JSON.parse(audit.detail)).to.deep.include({ pickup: 1, triggers: ['dlp'] });
    expect(audit.detail).to.contain('deny-list');
    expect(audit.detail, 'no content in the audit log').not.to.contain('Bluebird');
    await capture.waitFor(seen + 2);
    const delivered = capture.messages.filter((m) => m.raw.toString().includes(`X-PHI-Gateway-Id: ${after}`));
    expect(delivered, 'nothing of it leaves in clear').to.have.length(0);
    expect(
      capture.messages.some((m) => m.raw.toString().includes('X-PHI-Gateway-Kind: pickup-notice')),
    ).to.equal(true);
    expect(capture.messages.slice(seen).every((m) => !m.raw.toString().includes('Bluebird'))).to.equal(true);
  });

  it('protects a message whose attachment cannot be read (it may hold PHI)', async () => {
    const boundary = 'b1';
    const message = [
      'From: staff@clinic.example',
      'To: partner@example.org',
      'Subject: scan',
      'MIME-Version: 1.0',
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      'Content-Type: text/plain',
      '',
      'See attached.',
      `--${boundary}`,
      'Content-Type: application/pdf; name="scan.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer << /Encrypt 2 0 R >>\n%%EOF\n').toString('base64'),
      `--${boundary}--`,
      '',
    ].join('\r\n');
    const row = await finalState(gw, await send(gw.smtpPort, message));
    expect(row.state).to.equal('done');
    expect(JSON.parse(row.verdict!)).to.deep.include({
      rules: ['unreadable-attachment'],
      types: ['UNREADABLE_ATTACHMENT'],
    });
  });
});
