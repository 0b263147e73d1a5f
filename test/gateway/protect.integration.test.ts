// Protection end to end over real sockets: one PHI message to a partner with a key, a patient without one
// and an internal colleague leaves as PGP/MIME (decrypted here by real GnuPG), as a secure pickup (notice
// and a separate password; opened through the web API) and in clear. Nothing of it is readable at rest.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { Keyring } from '../../store/pgp-keyring.js';
import { loadOrgKey } from '../../store/org-key.js';
import { createLogger } from '../../config/log.js';
import { createWebApp } from '../../web/app.js';
import { createReply } from '../../store/pickup-replies.js';
import type { PickupRow } from '../../store/pickups.js';
import { CaptureServer, kindOf, type CapturedMessage } from '../support/capture-server.js';
import { until } from '../support/waiting.js';
import { removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { queueIdOf, sendMessage } from '../support/smtp-client.js';
import { makeKey } from '../support/pgp.js';

const run = promisify(execFile);

const MRN = '48213377';
const DIAGNOSIS = 'diabetes';
const PATIENT = 'Jane Roe';
const ATTACHMENT = randomBytes(3000);

function phiMessage(): string {
  const boundary = 'mixed-b0undary';
  return [
    'From: Dr Ann Lee <ann@clinic.example>',
    'To: partner@lab.example, patient@mail.example, colleague@clinic.example',
    `Subject: [secure] Results for ${PATIENT}`,
    'Date: Mon, 30 Nov 2026 09:00:00 +0000',
    'Message-ID: <results-1@clinic.example>',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Patient: ${PATIENT}, DOB 04/12/1961, MRN ${MRN}.`,
    `She was diagnosed with type 2 ${DIAGNOSIS}; HbA1c 8.1%. Metformin prescribed.`,
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="results.bin"',
    'Content-Disposition: attachment; filename="results.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    ATTACHMENT.toString('base64').replace(/.{76}/g, '$&\r\n'),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

async function send(port: number, message: string, rcpts: string[]): Promise<string> {
  return queueIdOf(await sendMessage(port, 'ann@clinic.example', rcpts, message));
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const p = path.join(dir, name);
    if ((await stat(p)).isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

describe('protection (integration)', function () {
  this.timeout(60000);
  let capture: CaptureServer;
  let gw: RunningGateway;
  let dir: string;
  let gnupgHome: string;
  let web: import('node:http').Server;
  let webUrl: string;
  let byKind: Map<string, CapturedMessage[]>;
  let partnerSecret: string;

  before(async () => {
    dir = await tempDir();
    gnupgHome = await tempDir('phigw-gpg-');
    capture = new CaptureServer();
    await capture.start();
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: {
        practiceName: 'Maple Dental',
        policy: { internalDomains: ['clinic.example'] },
        pickup: { passwordDelay: 0 },
      },
    });
    const partner = await makeKey('partner@lab.example', { name: 'Lab Partner' });
    const publicKey = partner.publicArmored;
    partnerSecret = partner.privateArmored;
    const keyring = new Keyring(gw.store, gw.config.pgp);
    const imported = await keyring.importArmored(publicKey, 'test');
    expect(imported.imported).to.have.length(1);

    const app = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') });
    web = app.listen(0, '127.0.0.1');
    await new Promise((r) => web.once('listening', r));
    webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;

    await send(gw.smtpPort, phiMessage(), [
      'partner@lab.example',
      'patient@mail.example',
      'colleague@clinic.example',
    ]);
    await capture.waitFor(4);
    byKind = new Map();
    for (const m of capture.messages) byKind.set(kindOf(m), [...(byKind.get(kindOf(m)) ?? []), m]);
  });

  after(async () => {
    web?.close();
    await gw?.stop();
    await capture?.stop();
    await removeDir(dir);
    await removeDir(gnupgHome);
  });

  it('sends the colleague the original in clear, with only the tag taken out of the subject', async () => {
    const [clear] = byKind.get('relay') ?? [];
    expect(clear, 'one clear copy').to.not.equal(undefined);
    expect(clear!.to).to.deep.equal(['colleague@clinic.example']);
    const parsed = await simpleParser(clear!.raw);
    expect(parsed.subject).to.equal(`Results for ${PATIENT}`);
    expect(parsed.text).to.contain(MRN);
    expect(Buffer.compare(parsed.attachments[0]!.content, ATTACHMENT)).to.equal(0);
  });

  it('sends the partner PGP/MIME that GnuPG decrypts to the original body and attachment', async () => {
    const [pgp] = byKind.get('pgp') ?? [];
    expect(pgp, 'one PGP copy').to.not.equal(undefined);
    expect(pgp!.to).to.deep.equal(['partner@lab.example']);
    const outer = pgp!.raw.toString('latin1');
    for (const secret of [MRN, DIAGNOSIS, PATIENT, 'Metformin']) expect(outer).not.to.contain(secret);
    expect(outer).to.match(/Content-Type: multipart\/encrypted;[\s\S]*protocol="application\/pgp-encrypted"/);
    expect(outer).to.match(/\r\nSubject: Secure message from Maple Dental\r\n/);

    const armored = /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/.exec(outer)![0];
    const keyFile = path.join(gnupgHome, 'partner.asc');
    const msgFile = path.join(gnupgHome, 'msg.asc');
    await writeFile(keyFile, partnerSecret);
    await writeFile(msgFile, armored);
    const gpg = ['--batch', '--homedir', gnupgHome, '--pinentry-mode', 'loopback', '--passphrase', ''];
    const org = await loadOrgKey(gw.store, { practiceName: 'Maple Dental', hostname: 'ignored' });
    const orgFile = path.join(gnupgHome, 'org.asc');
    await writeFile(orgFile, org.publicArmored);
    await run('gpg', [...gpg, '--import', keyFile, orgFile]);
    const { stdout, stderr } = await run('gpg', [...gpg, '--status-fd', '2', '--decrypt', msgFile], {
      encoding: 'buffer',
      maxBuffer: 1 << 24,
    });
    expect(stderr.toString(), 'signed by the organisation').to.match(
      new RegExp(`VALIDSIG ${org.fingerprint}`),
    );
    const inner = await simpleParser(stdout);
    expect(inner.subject, 'protected headers carry the real subject').to.equal(`Results for ${PATIENT}`);
    expect(inner.text).to.contain(MRN).and.to.contain(DIAGNOSIS);
    expect(inner.attachments).to.have.length(1);
    expect(Buffer.compare(inner.attachments[0]!.content, ATTACHMENT)).to.equal(0);
  });

  it('sends the patient a notice and, after it, a separate password; neither holds PHI nor both secrets', async () => {
    const [notice] = byKind.get('pickup-notice') ?? [];
    const [password] = byKind.get('pickup-password') ?? [];
    expect(notice && password, 'notice and password').to.not.equal(undefined);
    expect(notice!.to).to.deep.equal(['patient@mail.example']);
    expect(password!.to).to.deep.equal(['patient@mail.example']);
    expect(capture.messages.indexOf(notice!)).to.be.lessThan(capture.messages.indexOf(password!));
    const noticeText = (await simpleParser(notice!.raw)).text ?? '';
    const passwordText = (await simpleParser(password!.raw)).text ?? '';
    for (const m of [notice!, password!]) {
      const raw = m.raw.toString('latin1');
      for (const secret of [MRN, DIAGNOSIS, PATIENT, 'results.bin']) expect(raw).not.to.contain(secret);
    }
    const link = new RegExp(`${gw.config.publicUrl.replace(/[.]/g, '\\.')}/p/([A-Za-z0-9_-]{22,})`).exec(
      noticeText,
    );
    expect(link, 'notice holds the link').to.not.equal(null);
    expect(noticeText).not.to.match(/Password:/);
    const pw = /^Password: (\S+)$/m.exec(passwordText);
    expect(pw, 'password on a line of its own').to.not.equal(null);
    expect(passwordText).not.to.match(/https?:\/\//);

    const token = link![1]!;
    const wrong = await fetch(`${webUrl}/api/pickups/${token}/open`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: 'wrong-password' }),
    });
    expect(wrong.status).to.equal(401);
    const res = await fetch(`${webUrl}/api/pickups/${token}/open`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: pw![1] }),
    });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as {
      subject: string;
      text: string;
      attachments: Array<{ filename: string; size: number; url: string }>;
    };
    expect(body.subject).to.equal(`Results for ${PATIENT}`);
    expect(body.text).to.contain(MRN);
    expect(body.attachments.map((a) => [a.filename, a.size])).to.deep.equal([
      ['results.bin', ATTACHMENT.length],
    ]);
    const cookie = res.headers.get('set-cookie')?.split(';')[0] ?? '';
    const download = await fetch(new URL(body.attachments[0]!.url, webUrl), { headers: { cookie } });
    expect(download.status).to.equal(200);
    expect(Buffer.compare(Buffer.from(await download.arrayBuffer()), ATTACHMENT)).to.equal(0);
  });

  it('tells the sender the pickup was opened, and that a secure reply waits behind sign-in', async () => {
    const opened = await until(() => capture.messages.find((m) => kindOf(m) === 'pickup-opened'));
    expect(opened.to).to.deep.equal(['ann@clinic.example']);
    expect(opened.raw.toString('latin1')).to.contain('patient@mail.example');
    for (const secret of [MRN, DIAGNOSIS, PATIENT])
      expect(opened.raw.toString('latin1')).not.to.contain(secret);

    const pickup = (await gw.store
      .db('pickups')
      .where({ rcpt: 'patient@mail.example' })
      .first()) as PickupRow;
    const replyId = await createReply(
      gw.store,
      {
        pickup,
        subject: 'Re: results',
        text: 'Thank you, my glucose log is attached.',
        attachments: [],
        ip: '127.0.0.1',
      },
      { replyDelivery: 'sealed' },
    );
    const notice = await until(() => capture.messages.find((m) => kindOf(m) === 'pickup-reply'));
    const text = (await simpleParser(notice.raw)).text ?? '';
    expect(text).to.contain(`/me/replies/${replyId}`);
    expect(notice.raw.toString('latin1')).not.to.contain('glucose');
  });

  it('keeps nothing of the message readable at rest', async () => {
    const needles = [MRN, DIAGNOSIS, 'Metformin', ATTACHMENT.subarray(0, 32).toString('base64')];
    for (const file of await filesUnder(dir)) {
      // The gateway is still running: a file it deletes between the listing and the read is not at rest.
      const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw err;
      });
      if (!bytes) continue;
      const content = bytes.toString('latin1');
      for (const n of needles)
        expect(content.includes(n), `${n} in ${path.relative(dir, file)}`).to.equal(false);
      expect(
        content.includes(ATTACHMENT.subarray(0, 64).toString('latin1')),
        `attachment in ${file}`,
      ).to.equal(false);
    }
  });

  it('records the per-recipient decision in the audit log without content', async () => {
    const row = (await gw.store.db('audit_events').where({ type: 'message.routed' }).first()) as {
      detail: string;
    };
    const detail = JSON.parse(row.detail) as Record<string, unknown>;
    expect(detail).to.deep.include({ clean: 1, pgp: 1, pickup: 1 });
    expect(detail.triggers).to.include('subject-tag');
    for (const secret of [MRN, DIAGNOSIS, PATIENT]) expect(row.detail).not.to.contain(secret);
  });
});
