// Protection policies over real sockets: a rule that blocks bounces to the sender naming the rule (and
// the [secure] tag turns it into protection); already encrypted mail passes through unchanged; a domain
// that requires PGP holds the recipient without a key; the password can go to the sender or an SMS webhook.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { parse, stringify } from 'yaml';
import { DEFAULT_RULES_FILE } from '../../gateway/rules.js';
import { CaptureServer, type CapturedMessage } from '../support/capture-server.js';
import { removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { queueIdOf, sendMessage } from '../support/smtp-client.js';
import { makeKey } from '../support/pgp.js';
import { createReply } from '../../store/pickup-replies.js';
import type { PickupRow } from '../../store/pickups.js';
import * as openpgp from 'openpgp';

const PHI_BODY =
  'Patient: Jane Roe, DOB 04/12/1961, MRN 48213377.\r\nShe was diagnosed with type 2 diabetes.\r\n';

async function send(
  port: number,
  rcpts: string[],
  subject: string,
  body = PHI_BODY,
  extra = '',
): Promise<string> {
  const msg =
    `From: Ann <ann@clinic.example>\r\nTo: ${rcpts.join(', ')}\r\nSubject: ${subject}\r\n` +
    `Message-ID: <${Math.random().toString(36).slice(2)}@clinic.example>\r\nMIME-Version: 1.0\r\n${extra}` +
    (extra.includes('Content-Type') ? '' : 'Content-Type: text/plain; charset=utf-8\r\n') +
    `\r\n${body}`;
  return queueIdOf(await sendMessage(port, 'ann@clinic.example', rcpts, msg));
}

function kindOf(m: CapturedMessage): string {
  return /\r\nX-PHI-Gateway-Kind: ([\w-]+)/.exec(`\r\n${m.raw.toString('latin1')}`)?.[1] ?? 'relay';
}

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 15000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('protection policies (integration)', function () {
  this.timeout(60000);
  let capture: CaptureServer;
  let dir: string;
  const gateways: RunningGateway[] = [];

  async function start(overrides: Record<string, unknown>): Promise<RunningGateway> {
    const gw = await startGateway({
      relayUrl: capture.url,
      overrides: { pickup: { passwordDelay: 0 }, ...overrides },
    });
    gateways.push(gw);
    return gw;
  }

  const arrived = (pred: (m: CapturedMessage) => boolean) => capture.messages.filter(pred);

  before(async () => {
    dir = await tempDir();
    capture = new CaptureServer();
    await capture.start();
  });

  after(async () => {
    for (const gw of gateways) await gw.stop();
    await capture.stop();
    await removeDir(dir);
  });

  it('bounces a message a blocking rule refuses, naming the rule and the types, never the text', async () => {
    const pack = parse(readFileSync(DEFAULT_RULES_FILE, 'utf8')) as {
      rules: Array<{ id: string; action: string }>;
    };
    for (const r of pack.rules)
      if (r.id === 'strong-identifier-in-care' || r.id === 'identifier-near-health') r.action = 'block';
    const rulesFile = path.join(dir, 'block-rules.yaml');
    await writeFile(rulesFile, stringify(pack));
    const gw = await start({ dlp: { rulesFile } });
    const id = await send(gw.smtpPort, ['patient@mail.example'], 'Results');
    const bounce = await until(
      () => arrived((m) => kindOf(m) === 'bounce' && m.raw.toString().includes(id))[0],
    );
    expect(bounce.to).to.deep.equal(['ann@clinic.example']);
    const text = (await simpleParser(bounce.raw)).text ?? '';
    expect(text).to.match(/identifier-near-health|strong-identifier-in-care/);
    expect(text).to.contain('[secure]');
    for (const secret of ['48213377', 'diabetes', 'Jane'])
      expect(bounce.raw.toString()).not.to.contain(secret);
    expect(arrived((m) => m.to.includes('patient@mail.example'))).to.have.length(0);
    const row = (await gw.store.db('messages').where({ id }).first()) as { state: string };
    expect(row.state).to.equal('blocked');

    // A large one (read as a stream from its spool, never whole): the bounce quotes its header all the same.
    const padding = 'The supply order went out on Tuesday and the invoice is attached below.\r\n'.repeat(
      20_000,
    );
    const large = await send(gw.smtpPort, ['patient@mail.example'], 'Results', PHI_BODY + padding);
    const largeBounce = await until(
      () => arrived((m) => kindOf(m) === 'bounce' && m.raw.toString().includes(large))[0],
      30_000,
    );
    expect(largeBounce.raw.toString('latin1')).to.match(/\r\nMessage-ID: <[a-z0-9]+@clinic\.example>\r\n/i);
    expect(largeBounce.raw.toString('latin1')).to.contain('From: Ann <ann@clinic.example>');
    expect(largeBounce.raw.toString('latin1')).not.to.contain('Subject: Results');
    expect(
      ((await gw.store.db('messages').where({ id: large }).first()) as { state: string }).state,
    ).to.equal('blocked');

    // The same message tagged [secure] is what the bounce tells the sender to do: it goes out protected.
    const tagged = await send(gw.smtpPort, ['patient@mail.example'], '[secure] Results');
    await until(
      () => arrived((m) => kindOf(m) === 'pickup-notice' && m.to.includes('patient@mail.example'))[0],
    );
    const audit = (await gw.store
      .db('audit_events')
      .where({ message_id: tagged, type: 'message.routed' })
      .first()) as { detail: string };
    expect(JSON.parse(audit.detail)).to.deep.include({ pickup: 1 });
  });

  it('passes already encrypted mail through unchanged, recorded as such', async () => {
    const gw = await start({});
    const key = await makeKey('lab@partner.example');
    // openpgp's declarations name stream types it does not ship; the armoured result is a string.
    const encrypted = (await openpgp.encrypt({
      message: await openpgp.createMessage({ text: PHI_BODY }),
      encryptionKeys: key.privateKey.toPublic(),
    })) as unknown as string;
    const armored = encrypted.replace(/\r?\n/g, '\r\n');
    const body = `--enc\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--enc\r\nContent-Type: application/octet-stream\r\n\r\n${armored}--enc--\r\n`;
    const id = await send(
      gw.smtpPort,
      ['lab@partner.example'],
      'Results for Jane Roe, MRN 48213377',
      body,
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc"\r\n',
    );
    const got = await until(() => arrived((m) => m.raw.toString().includes(`X-PHI-Gateway-Id: ${id}`))[0]);
    expect(got.raw.toString()).to.contain(armored);
    const audit = (await gw.store
      .db('audit_events')
      .where({ message_id: id, type: 'message.routed' })
      .first()) as { detail: string };
    expect(JSON.parse(audit.detail)).to.deep.include({ passthrough: 'pgp-mime', clean: 1 });
  });

  it('holds a recipient whose domain requires PGP when there is no key, and delivers the others', async () => {
    const gw = await start({
      policy: { requirePgpDomains: ['bank.example'], internalDomains: ['clinic.example'] },
    });
    const id = await send(gw.smtpPort, ['x@bank.example', 'colleague@clinic.example'], 'Results');
    await until(() => arrived((m) => m.raw.toString().includes(`X-PHI-Gateway-Id: ${id}`))[0]);
    const held = await until(
      async () =>
        (await gw.store.db('envelopes').where({ message_id: id, state: 'held' }).first()) as
          { rcpt: string; hold_reason: string } | undefined,
    );
    expect(held).to.include({ rcpt: 'x@bank.example', hold_reason: 'PGP_KEY_REQUIRED' });
    expect(arrived((m) => m.to.includes('x@bank.example'))).to.have.length(0);
  });

  it('sends the password to the sender when policy says so', async () => {
    const gw = await start({ pickup: { passwordDelivery: 'sender', passwordDelay: 0 } });
    await send(gw.smtpPort, ['patient2@mail.example'], 'Results');
    const pw = await until(
      () => arrived((m) => kindOf(m) === 'pickup-password' && m.to.includes('ann@clinic.example'))[0],
    );
    const text = (await simpleParser(pw.raw)).text ?? '';
    expect(text).to.match(/^Password: \S+$/m);
    expect(text).to.contain('patient2@mail.example');
    const notice = arrived(
      (m) => kindOf(m) === 'pickup-notice' && m.to.includes('patient2@mail.example'),
    )[0]!;
    expect((await simpleParser(notice.raw)).text).to.contain('The sender will give you the password');
    expect(
      arrived((m) => kindOf(m) === 'pickup-password' && m.to.includes('patient2@mail.example')),
    ).to.have.length(0);
  });

  it('delivers a secure reply straight to the sender when replyDelivery is direct', async () => {
    const gw = await start({ pickup: { passwordDelay: 0, replyDelivery: 'direct' } });
    const id = await send(gw.smtpPort, ['patient4@mail.example'], 'Results');
    const pickup = await until(
      async () => (await gw.store.db('pickups').where({ message_id: id }).first()) as PickupRow | undefined,
    );
    await createReply(
      gw.store,
      {
        pickup,
        subject: 'Re: results',
        text: 'My readings are attached.',
        attachments: [
          { filename: 'log.csv', contentType: 'text/csv', content: Buffer.from('day,value\n1,7.9\n') },
        ],
        ip: '127.0.0.1',
      },
      { replyDelivery: 'direct' },
    );
    const reply = await until(
      () => arrived((m) => kindOf(m) === 'pickup-reply' && m.to.includes('ann@clinic.example'))[0],
    );
    const parsed = await simpleParser(reply.raw);
    expect(parsed.text).to.contain('My readings are attached.');
    expect(parsed.replyTo?.text).to.contain('patient4@mail.example');
    expect(parsed.attachments[0]?.content.toString()).to.equal('day,value\n1,7.9\n');
  });

  it('posts the password to the SMS webhook, after the notice', async () => {
    const posts: Array<{ to: string; text: string; reference: string }> = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        posts.push(JSON.parse(body) as { to: string; text: string; reference: string });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`;
      const gw = await start({ pickup: { passwordDelivery: 'sms', smsWebhookUrl: url, passwordDelay: 0 } });
      await send(gw.smtpPort, ['patient3@mail.example'], 'Results');
      await until(() => posts[0]);
      expect(posts[0]!.to).to.equal('patient3@mail.example');
      expect(posts[0]!.text).to.match(/password .* is [a-z0-9-]{20,}/);
      expect(posts[0]!.text).not.to.match(/https?:/);
      expect(
        arrived((m) => kindOf(m) === 'pickup-notice' && m.to.includes('patient3@mail.example')),
      ).to.have.length(1);
    } finally {
      server.close();
    }
  });
});
