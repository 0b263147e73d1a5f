// Large mail to a keyed partner through a real gateway on loopback: PGP/MIME made as the spool is read, sealed
// as it is made and sent as it is read back. GnuPG decrypts what arrives; a PGP thread that dies, a spool or a
// blob damaged on disk leave nothing sent (and nothing in clear), and no half-made blob behind.
import { randomBytes } from 'node:crypto';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { PgpThread } from '../../gateway/pgp-thread.js';
import { RelayTransport, type Transport } from '../../gateway/transport.js';
import { STREAM_MIN } from '../../gateway/workers.js';
import { loadOrgKey } from '../../store/org-key.js';
import { Keyring } from '../../store/pgp-keyring.js';
import { INLINE_MAX, type Store } from '../../store/store.js';
import { CaptureServer, kindOf } from '../support/capture-server.js';
import { flipMiddle } from '../support/damage.js';
import { freePort, removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { gnupgHome, makeKey, type TestKey } from '../support/pgp.js';
import { RawSmtp, sendMessage } from '../support/smtp-client.js';
import { until } from '../support/waiting.js';

const PARTNER = 'partner@lab.example';
const PRACTICE = 'Maple Dental';

/** A message with a binary attachment, to the partner, protected by its subject tag (which is taken out inside). */
function largeMessage(attachment: Buffer): { raw: Buffer; body: Buffer } {
  const head = [
    'From: Dr Ann Lee <ann@clinic.example>',
    `To: <${PARTNER}>`,
    'Subject: [secure] Scans',
    'Date: Mon, 30 Nov 2026 09:00:00 +0000',
    'Message-ID: <large-pgp.1@clinic.example>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
  ].join('\r\n');
  const body =
    '--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nJane Roe, MRN 48213377: the scans are attached.\r\n' +
    '--b1\r\nContent-Type: application/octet-stream; name="scans.bin"\r\n' +
    'Content-Disposition: attachment; filename="scans.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    `${attachment.toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--b1--\r\n`;
  return { raw: Buffer.from(`${head}\r\n\r\n${body}`, 'latin1'), body: Buffer.from(body, 'latin1') };
}

function send(port: number, raw: Buffer): Promise<string> {
  return sendMessage(port, 'ann@clinic.example', PARTNER, raw);
}

/** Counts how the transport is asked to send: as read (`stream`) or from one buffer (`whole`). */
function spy(t: Transport): { stream: number; whole: number } {
  const calls = { stream: 0, whole: 0 };
  const sendStream = t.sendStream!.bind(t);
  const send = t.send.bind(t);
  t.sendStream = (mail) => (calls.stream++, sendStream(mail));
  t.send = (mail) => (calls.whole++, send(mail));
  return calls;
}

/** Files in the blobs area, finished or half-written (`.tmp`), but the organisation's key kept there. */
const blobFiles = async (dir: string): Promise<string[]> =>
  (await readdir(path.join(dir, 'blobs')).catch(() => [])).filter((f) => !f.startsWith('org-pgp-key-'));

describe('large mail to a keyed partner, PGP/MIME as a stream (integration)', function () {
  this.timeout(120_000);
  let capture: CaptureServer;
  let gw: RunningGateway | undefined;
  let dir: string;
  let partner: TestKey;
  const overrides = { practiceName: PRACTICE, redaction: { gateway: 'off' } };

  before(async () => {
    partner = await makeKey(PARTNER, { name: 'Lab Partner' });
  });
  beforeEach(async () => {
    capture = new CaptureServer();
    await capture.start();
    dir = await tempDir();
  });
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    await capture.stop();
    await removeDir(dir);
  });

  const importKey = (store: Store, config: RunningGateway['config']) =>
    new Keyring(store, config.pgp).importArmored(partner.publicArmored, 'test');

  it('sends the partner PGP/MIME that GnuPG decrypts to the original body, byte for byte, signed by the practice', async () => {
    const { raw, body } = largeMessage(randomBytes(3 * 1024 * 1024 + 17));
    expect(raw.length).to.be.greaterThan(STREAM_MIN);
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir, overrides });
    await importKey(gw.store, gw.config);
    const sent = spy((gw.gateway as unknown as { transport: Transport }).transport);
    const protection = gw.gateway.protection;
    const encryptStream = protection.encryptStream!.bind(protection);
    let streamed = 0;
    protection.encryptStream = (input, signal) => (streamed++, encryptStream(input, signal));
    expect(await send(gw.smtpPort, raw)).to.match(/^250/);
    await capture.waitFor(1, 60_000);
    expect(streamed, 'encrypted as a stream').to.equal(1);
    expect(sent, 'sent as it was read from the blob').to.deep.equal({ stream: 1, whole: 0 });
    const [got] = capture.messages;
    expect(kindOf(got!)).to.equal('pgp');
    expect(got!.to).to.deep.equal([PARTNER]);
    const outer = got!.raw.toString('latin1');
    expect(outer).not.to.contain('48213377');
    expect(outer).not.to.contain('Jane Roe');
    expect(outer).to.match(/\r\nSubject: Scans\r\n/);
    expect(outer).to.match(
      /Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted";\r\n boundary="phigw-pgp-[0-9a-f]{24}"\r\n/,
    );
    expect(outer).to.match(/\r\n--phigw-pgp-[0-9a-f]{24}--\r\n$/);
    // What was sent was sealed as a file (too large for the database), and it is gone once delivered.
    await until(async () => {
      const env = (await gw!.store.db('envelopes').first()) as { state: string };
      return env.state === 'delivered' ? true : undefined;
    });
    expect(got!.raw.length).to.be.greaterThan(INLINE_MAX);
    await until(async () => ((await blobFiles(dir)).length === 0 ? true : undefined));

    const g = await gnupgHome();
    try {
      const org = await loadOrgKey(gw.store, { practiceName: PRACTICE, hostname: 'ignored' });
      expect(g.gpg(['--import'], partner.privateArmored).code).to.equal(0);
      expect(g.gpg(['--import'], org.publicArmored).code).to.equal(0);
      const armour = /-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----\r\n/.exec(outer)![0];
      const r = g.gpg(['--status-fd', '2', '--decrypt'], armour);
      expect(r.code, r.stderr).to.equal(0);
      const validsig = /\[GNUPG:\] VALIDSIG (\S+).* (\S+)\r?$/m.exec(r.stderr);
      expect(validsig?.[2] ?? validsig?.[1], 'signed by the practice').to.equal(org.fingerprint);
      expect(r.stderr).to.match(/\[GNUPG:\] DECRYPTION_OKAY/);
      const inner = r.stdout;
      const split = inner.indexOf('\r\n\r\n');
      expect(inner.subarray(split + 4).equals(body), 'inner body identical to the original body').to.equal(
        true,
      );
      const innerHead = inner.subarray(0, split + 2).toString('latin1');
      expect(innerHead).to.match(
        /^Content-Type: multipart\/mixed; boundary="b1";\r\n protected-headers="v1"\r\n/,
      );
      expect(innerHead, 'the tag taken out of the protected subject').to.contain('Subject: Scans\r\n');
    } finally {
      await g.close();
    }
  });

  it('sends a large tagged message to an internal colleague in clear, only the tag taken out, as it is read', async () => {
    const colleague = 'colleague@clinic.example';
    const { raw, body } = largeMessage(randomBytes(2 * 1024 * 1024 + 5));
    const toColleague = Buffer.from(
      raw.toString('latin1').replace(`To: <${PARTNER}>`, `To: <${colleague}>`),
      'latin1',
    );
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: { ...overrides, policy: { internalDomains: ['clinic.example'] } },
    });
    const sent = spy((gw.gateway as unknown as { transport: Transport }).transport);
    const c = await RawSmtp.open(gw.smtpPort);
    try {
      await c.cmd('EHLO client.example');
      await c.cmd('MAIL FROM:<ann@clinic.example>');
      await c.cmd(`RCPT TO:<${colleague}>`);
      await c.cmd('DATA');
      expect(await c.raw(toColleague.toString('latin1') + '.\r\n')).to.match(/^250/);
    } finally {
      c.close();
    }
    await capture.waitFor(1, 60_000);
    const [got] = capture.messages;
    expect(got!.to).to.deep.equal([colleague]);
    const text = got!.raw.toString('latin1');
    const split = text.indexOf('\r\n\r\n');
    expect(text.slice(0, split)).to.match(/\r\nSubject: Scans\r\n/);
    expect(text.slice(0, split)).to.match(/\r\nX-PHI-Gateway-Scan: phi/);
    expect(got!.raw.subarray(split + 4).equals(body), 'the body untouched').to.equal(true);
    // Sealed as a file (too large for the database) and sent as it was read back.
    expect(sent).to.deep.equal({ stream: 1, whole: 0 });
  });

  it('keeps a large PGP message in the outbox as it is read back from its blob, when no relay is set', async () => {
    gw = await startGateway({ dataDir: dir, overrides });
    await importKey(gw.store, gw.config);
    const sent = spy((gw.gateway as unknown as { transport: Transport }).transport);
    expect(await send(gw.smtpPort, largeMessage(randomBytes(3 * 1024 * 1024)).raw)).to.match(/^250/);
    const row = await until(async () => {
      const r = (await gw!.store.db('outbox').first()) as
        { id: string; kind: string; size: number } | undefined;
      return r;
    });
    expect(row.kind).to.equal('pgp');
    expect(sent).to.deep.equal({ stream: 1, whole: 0 });
    const kept = await gw.store.unseal('outbox', row.id);
    expect(kept.length).to.equal(row.size);
    expect(kept.toString('latin1')).to.match(
      /-----END PGP MESSAGE-----\r\n\r\n--phigw-pgp-[0-9a-f]{24}--\r\n$/,
    );
  });

  it('defers a large message whose PGP thread dies mid-stream: nothing is sent, no blob is left', async () => {
    const thread = new PgpThread();
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      // One attempt only within the test: the retry waits an hour.
      overrides: { ...overrides, queue: { retryInitialDelay: 3_600_000, retryMaxDelay: 3_600_000 } },
      gateway: { pgpThread: thread },
    });
    await importKey(gw.store, gw.config);
    // The thread is killed once the spool has been read a little way into the message.
    const protection = gw.gateway.protection;
    const encryptStream = protection.encryptStream!.bind(protection);
    let killed = false;
    protection.encryptStream = (input, signal) =>
      encryptStream(
        {
          ...input,
          source: (async function* () {
            let n = 0;
            for await (const chunk of input.source) {
              if (++n === 5) {
                await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
                killed = true;
              }
              yield chunk;
            }
          })(),
        },
        signal,
      );
    const { raw } = largeMessage(randomBytes(3 * 1024 * 1024));
    expect(await send(gw.smtpPort, raw)).to.match(/^250/);
    const row = await until(async () => {
      const r = (await gw!.store.db('messages').first()) as { state: string; reason: string } | undefined;
      return r?.state === 'deferred' ? r : undefined;
    });
    expect(killed, 'the thread was killed mid-stream').to.equal(true);
    expect(row.reason).to.equal('act:PGP_FAILED');
    expect(await gw.store.db('envelopes').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
    expect(await blobFiles(dir), 'no blob, finished or half-written').to.deep.equal([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(capture.count, 'nothing sent').to.equal(0);
  });

  it('holds a large message whose spool file is damaged while it is encrypted: nothing sent, no blob left', async () => {
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir, overrides });
    await importKey(gw.store, gw.config);
    // The scan read the spool whole and passed; the file is damaged near its end as the PGP stage starts reading
    // it, so most of the message is encrypted and sealed before the tag check fails.
    const protection = gw.gateway.protection;
    const encryptStream = protection.encryptStream!.bind(protection);
    let damaged = false;
    protection.encryptStream = async (input, signal) => {
      const [name] = (await readdir(path.join(dir, 'spool'))).filter((f) => !f.endsWith('.tmp'));
      const file = path.join(dir, 'spool', name!);
      const { size } = await stat(file);
      const handle = await open(file, 'r+');
      try {
        await handle.write(Buffer.from([0x42]), 0, 1, size - 100);
      } finally {
        await handle.close();
      }
      damaged = true;
      return encryptStream(input, signal);
    };
    expect(await send(gw.smtpPort, largeMessage(randomBytes(3 * 1024 * 1024)).raw)).to.match(/^250/);
    const held = await until(async () => {
      const r = (await gw!.store.db('messages').first()) as
        { state: string; reason: string | null } | undefined;
      return r?.state === 'held' ? r : undefined;
    });
    expect(damaged, 'damaged as the PGP stage read it').to.equal(true);
    expect(held.reason).to.equal('SPOOL_CORRUPT');
    expect(await gw.store.db('envelopes').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
    expect(await blobFiles(dir), 'no blob, finished or half-written').to.deep.equal([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(capture.count, 'nothing sent').to.equal(0);
  });

  it('holds a large PGP blob damaged on disk after it was sealed; the next hop never accepts it', async () => {
    // Encrypted and sealed while the next hop is down; the gateway stops, the blob file is damaged, the next hop
    // comes up: delivery reads the blob as it sends and must drop the connection before the final dot.
    const port = await freePort();
    gw = await startGateway({ relayUrl: `smtp://127.0.0.1:${port}`, dataDir: dir, overrides });
    await importKey(gw.store, gw.config);
    expect(await send(gw.smtpPort, largeMessage(randomBytes(3 * 1024 * 1024)).raw)).to.match(/^250/);
    const deferred = await until(async () => {
      const e = (await gw!.store.db('envelopes').first()) as
        { state: string; blob_id: string; kind: string } | undefined;
      return e?.state === 'deferred' ? e : undefined;
    });
    expect(deferred.kind).to.equal('pgp');
    const config = gw.config;
    await gw.stop();
    gw = undefined;
    await flipMiddle(path.join(dir, 'blobs', deferred.blob_id));
    await capture.stop();
    capture = new CaptureServer();
    await capture.start(port);
    const transport = new RelayTransport({ ...config.relay, url: capture.url }, 'gw.test');
    const sent = spy(transport);
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir, overrides, gateway: { transport } });
    const held = await until(async () => {
      const e = (await gw!.store.db('envelopes').first()) as
        { state: string; last_response: string } | undefined;
      return e?.state === 'held' ? e : undefined;
    });
    expect(held.last_response).to.equal('SPOOL_CORRUPT');
    // Found as it was sent (the connection dropped before the final dot), not before.
    expect(sent).to.deep.equal({ stream: 1, whole: 0 });
    await new Promise((r) => setTimeout(r, 300));
    expect(capture.count, 'nothing accepted by the next hop').to.equal(0);
  });
});
