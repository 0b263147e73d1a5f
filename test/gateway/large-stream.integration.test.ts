// Large mail through a real gateway on loopback, streamed from the sealed spool rather than loaded whole: what
// leaves (relayed in clear — streamed to the next hop when it is not in memory —, or picked up) is byte for
// byte what was sent, and a spool file edited or cut before
// the message was processed is held — no pickup, no envelope, nothing sent — even though the scan read it.
import { randomBytes } from 'node:crypto';
import { readdir, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { spoolMessage } from '../../gateway/spool.js';
import { STREAM_MIN } from '../../gateway/workers.js';
import { openPickup } from '../../store/pickups.js';
import { Store } from '../../store/store.js';
import { CaptureServer, kindOf } from '../support/capture-server.js';
import { flipMiddle } from '../support/damage.js';
import { freePort, removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { sendMessage } from '../support/smtp-client.js';
import { attachmentBytes } from '../support/pickups.js';
import { until } from '../support/waiting.js';

const HEAD = [
  'From: Front Desk <frontdesk@clinic.example>',
  'To: <orders@vendor.example>',
  'Subject: Catalogue',
  'Message-ID: <large.1@clinic.example>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
].join('\r\n');

/** A message with a binary attachment of `bytes` (unreadable, so it goes out as a pickup). */
function binaryMessage(attachment: Buffer): string {
  const b64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  return (
    `${HEAD}\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe supply catalogue is attached.\r\n` +
    '--b1\r\nContent-Type: application/octet-stream; name="catalogue.bin"\r\n' +
    'Content-Disposition: attachment; filename="catalogue.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n' +
    `${b64}\r\n--b1--\r\n`
  );
}

/** A clean message larger than STREAM_MIN: office prose in a text attachment (relayed in clear). */
function cleanMessage(): string {
  const line = 'The supply order goes out on Tuesday and the new chairs arrive the week after.\r\n';
  const text = line.repeat(Math.ceil((STREAM_MIN * 1.2) / line.length));
  return (
    `${HEAD}\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe supply notes are attached.\r\n` +
    '--b1\r\nContent-Type: text/plain; charset=utf-8; name="notes.txt"\r\n' +
    `Content-Disposition: attachment; filename="notes.txt"\r\n\r\n${text}--b1--\r\n`
  );
}

function send(port: number, body: string): Promise<string> {
  return sendMessage(port, 'frontdesk@clinic.example', 'orders@vendor.example', body);
}

describe('large mail, streamed from the spool (integration)', function () {
  this.timeout(120_000);
  let capture: CaptureServer;
  let gw: RunningGateway | undefined;
  let dir: string;

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

  /** A large message spooled while the gateway is down (its first start made the keys and database). */
  async function spoolWhileDown(
    kind: 'clean' | 'binary',
  ): Promise<{ spooled: { id: string }; body: string }> {
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir });
    const config = gw.config;
    await gw.stop();
    gw = undefined;
    const store = await Store.open(config, {});
    const body = kind === 'clean' ? cleanMessage() : binaryMessage(randomBytes(2 * 1024 * 1024));
    try {
      const spooled = await spoolMessage(
        store,
        {
          mailFrom: 'frontdesk@clinic.example',
          rcptTo: ['orders@vendor.example'],
          clientIp: '127.0.0.1',
          clientHelo: 'client.example',
          authUser: null,
          tls: false,
        },
        Buffer.from(body, 'latin1'),
        { trace: () => 'Received: from client.example\r\n', state: 'queued' },
      );
      return { spooled, body };
    } finally {
      await store.close();
    }
  }

  it('relays a large clean message byte for byte, after its trace headers', async () => {
    const sent = Buffer.from(cleanMessage(), 'latin1');
    expect(sent.length).to.be.greaterThan(STREAM_MIN);
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir });
    expect(await send(gw.smtpPort, sent.toString('latin1'))).to.match(/^250/);
    await capture.waitFor(1);
    const [got] = capture.messages;
    expect(kindOf(got!)).to.equal('relay');
    expect(got!.raw.subarray(got!.raw.length - sent.length).equals(sent)).to.equal(true);
    expect(got!.raw.subarray(0, got!.raw.length - sent.length).toString('latin1')).to.match(
      /^Received: [^]*X-PHI-Gateway-Scan: clean\r\n$/,
    );
  });

  it('seals a large binary attachment into a pickup whose attachment is the bytes sent', async () => {
    const attachment = randomBytes(3 * 1024 * 1024 + 17);
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: { pickup: { passwordDelay: 0 }, redaction: { gateway: 'off' } },
    });
    expect(await send(gw.smtpPort, binaryMessage(attachment))).to.match(/^250/);
    await capture.waitFor(2);
    const notice = capture.messages.find((m) => kindOf(m) === 'pickup-notice');
    const password = capture.messages.find((m) => kindOf(m) === 'pickup-password');
    const token = /\/p\/([\w-]+)/.exec(notice!.raw.toString('latin1'))![1]!;
    const pw = /^Password: (\S+)\r?$/m.exec(password!.raw.toString('latin1'))![1]!;
    const opened = await openPickup(gw.store, token, pw, { ip: '127.0.0.1' }, gw.config.pickup);
    if (!opened.ok) throw new Error(`pickup did not open: ${opened.code}`);
    expect(opened.content.text.trim()).to.equal('The supply catalogue is attached.');
    expect(opened.content.attachments).to.have.length(1);
    expect((await attachmentBytes(gw.store, opened, 0)).equals(attachment)).to.equal(true);
    // The spool file went once the pickup was sealed.
    const row = (await gw.store.db('messages').first()) as { state: string };
    expect(row.state).to.equal('done');
  });

  // A message spooled while the gateway is down, its sealed file then damaged; the gateway, started, must hold it.
  const damages: Array<['clean' | 'binary', string, (file: string) => Promise<void>]> = [
    ['clean', 'one bit flipped in the middle', flipMiddle],
    ['clean', 'cut short by one byte', cutOne],
    ['binary', 'one bit flipped in the middle', flipMiddle],
    ['binary', 'cut short by one byte', cutOne],
  ];
  for (const [kind, damage, apply] of damages) {
    it(`holds a large ${kind} message whose spool file was ${damage}, and sends nothing`, async () => {
      // First start creates the data directory (keys, database); the message is then spooled with it down.
      const { spooled } = await spoolWhileDown(kind);
      await apply(path.join(dir, 'spool', spooled.id));
      gw = await startGateway({
        relayUrl: capture.url,
        dataDir: dir,
        overrides: { pickup: { passwordDelay: 0 }, redaction: { gateway: 'off' } },
      });
      const held = await until(async () => {
        const row = (await gw!.store.db('messages').where({ id: spooled.id }).first()) as
          { state: string; reason: string | null } | undefined;
        return row?.state === 'held' ? row : undefined;
      });
      expect(held.reason).to.equal('SPOOL_CORRUPT');
      expect(await gw.store.db('envelopes').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
      expect(await gw.store.db('pickups').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
      expect(await gw.store.db('pickup_contents').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
      // A pickup file written while the damaged spool was read is removed, temp file and all.
      expect(await readdir(path.join(dir, 'pickups')).catch(() => [])).to.deep.equal([]);
      await new Promise((r) => setTimeout(r, 300));
      expect(capture.count).to.equal(0);
    });
  }
  it('holds a large clean message whose spool fails while it is relayed from it; the next hop never accepts it', async () => {
    // Scanned and routed while the next hop is down; the gateway stops (nothing in memory any more), the spool
    // file is damaged, the next hop comes up: the relay reads the spool as it sends and must abort.
    const port = await freePort();
    gw = await startGateway({ relayUrl: `smtp://127.0.0.1:${port}`, dataDir: dir });
    expect(await send(gw.smtpPort, cleanMessage())).to.match(/^250/);
    const deferred = await until(async () => {
      const e = (await gw!.store.db('envelopes').first()) as
        { state: string; message_id: string } | undefined;
      return e?.state === 'deferred' ? e : undefined;
    });
    await gw.stop();
    gw = undefined;
    await flipMiddle(path.join(dir, 'spool', deferred.message_id));
    await capture.stop();
    capture = new CaptureServer();
    await capture.start(port);
    gw = await startGateway({ relayUrl: capture.url, dataDir: dir });
    const held = await until(async () => {
      const e = (await gw!.store.db('envelopes').first()) as
        { state: string; last_response: string } | undefined;
      return e?.state === 'held' ? e : undefined;
    });
    expect(held.last_response).to.equal('SPOOL_CORRUPT');
    await new Promise((r) => setTimeout(r, 300));
    expect(capture.count, 'nothing accepted by the next hop').to.equal(0);
  });

  // Sanity for the table above: the same messages, undamaged, are not held (so the damage is what is caught).
  for (const kind of ['clean', 'binary'] as const) {
    it(`processes the same large ${kind} message undamaged`, async () => {
      const { spooled, body } = await spoolWhileDown(kind);
      gw = await startGateway({
        relayUrl: capture.url,
        dataDir: dir,
        overrides: { pickup: { passwordDelay: 0 }, redaction: { gateway: 'off' } },
      });
      const row = await until(async () => {
        const r = (await gw!.store.db('messages').where({ id: spooled.id }).first()) as
          { state: string } | undefined;
        return r && r.state !== 'queued' && r.state !== 'processing' ? r : undefined;
      });
      expect(row.state).to.be.oneOf(['routed', 'done']);
      await capture.waitFor(kind === 'clean' ? 1 : 2);
      expect(capture.messages.map(kindOf).sort()).to.deep.equal(
        kind === 'clean' ? ['relay'] : ['pickup-notice', 'pickup-password'],
      );
      if (kind === 'clean') {
        // Not in memory after the restart: relayed as it is read from the spool, byte for byte.
        const sent = Buffer.from(body, 'latin1');
        const got = capture.messages[0]!.raw;
        expect(got.subarray(got.length - sent.length).equals(sent)).to.equal(true);
        expect(got.subarray(0, got.length - sent.length).toString('latin1')).to.match(/^Received: /);
      }
    });
  }
});

async function cutOne(file: string): Promise<void> {
  await truncate(file, (await stat(file)).size - 1);
}
