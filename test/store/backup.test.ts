// Backups of a live gateway: taken under SMTP load, restored into a fresh data directory, checked for
// consistency (rows ↔ sealed files, audit chain) and an old pickup opened there; refusals leave nothing behind.
import { expect } from 'chai';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../../config/errors.js';
import { pickupSchema } from '../../config/schema.js';
import { verifyAudit } from '../../store/audit.js';
import { restoreBackup, writeBackup } from '../../store/backup.js';
import { createPickups, openPickup, type PickupContent } from '../../store/pickups.js';
import { Store } from '../../store/store.js';
import { CaptureServer } from '../support/capture-server.js';
import { removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { attachmentBytes } from '../support/pickups.js';
import { RawSmtp, makeMessage } from '../support/smtp-client.js';

/** Header: magic 7, version, kdf id, log2N, r, p, salt 16, chunk size 4, MAC 32. */
const HDR = 64;
const PASS = 'correct horse battery staple';
/** A cheaper scrypt for tests (the format records the parameters; the default is N = 2^16). */
const kdf = { log2N: 12, r: 8, p: 1 };

const content: PickupContent = {
  from: 'dr.smith@clinic.example',
  to: ['patient@example.org'],
  cc: [],
  subject: 'Your results BK-MARKER-77',
  date: '2026-11-30T09:00:00.000Z',
  text: 'Your lab result BK-MARKER-77 is ready.',
  html: '<p>Your lab result <b>BK-MARKER-77</b> is ready.</p>',
  attachments: [
    { filename: 'results.pdf', contentType: 'application/pdf', content: Buffer.from([0, 1, 2, 250, 251]) },
  ],
};

async function sendOne(port: number, i: number): Promise<string> {
  const c = await RawSmtp.open(port);
  try {
    await c.cmd('EHLO load.test');
    await c.cmd('MAIL FROM:<staff@clinic.example>');
    await c.cmd(`RCPT TO:<partner${i}@example.org>`);
    await c.cmd('DATA');
    return await c.raw(makeMessage({ subject: `load ${i}`, body: `Hello number ${i}.` }) + '.\r\n');
  } finally {
    c.close();
  }
}

async function listAll(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listAll(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

describe('backup and restore', function () {
  this.timeout(120000);
  const dirs: string[] = [];
  const newDir = async () => {
    const d = await tempDir('phigw-backup-');
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await removeDir(d);
  });

  describe('of a gateway under load', () => {
    let capture: CaptureServer;
    let gw: RunningGateway;
    let backupFile: string;
    let restored: string;
    let pickup: { token: string; password: string };
    let acceptedBeforeBackup = 0;
    let acceptedTotal = 0;

    before(async () => {
      // Odd recipients are deferred, so the snapshot also holds mail waiting for a retry.
      capture = new CaptureServer({
        onRcpt: (rcpt) => (/[13579]@/.test(rcpt) ? { code: 451, message: '4.3.0 try later' } : undefined),
      });
      await capture.start();
      gw = await startGateway({ relayUrl: capture.url });
      const [created] = await createPickups(gw.store, {
        messageId: 'BACKUP-MSG',
        sender: 'dr.smith@clinic.example',
        recipients: ['patient@example.org'],
        content,
        expiresAt: Date.now() + 7 * 24 * 3600 * 1000,
      });
      pickup = { token: created!.token, password: created!.password };

      // Two senders keep the gateway busy before, during and after the backup.
      let sending = true;
      const loop = async (from: number) => {
        for (let i = from; sending; i += 2) {
          const reply = await sendOne(gw.smtpPort, i);
          if (reply.startsWith('250')) acceptedTotal++;
        }
      };
      const senders = [loop(0), loop(1)];
      while (acceptedTotal < 20) await new Promise((r) => setTimeout(r, 20));
      acceptedBeforeBackup = acceptedTotal;
      backupFile = path.join(await newDir(), 'gw.phigw-backup');
      await writeBackup(gw.dataDir, backupFile, PASS, { kdf, chunkSize: 64 * 1024 });
      await new Promise((r) => setTimeout(r, 200));
      sending = false;
      await Promise.all(senders);
      await gw.stop();
      await capture.stop();
      restored = path.join(await newDir(), 'data');
      await restoreBackup(backupFile, restored, PASS);
    });

    it('kept the load going: mail was accepted before and after the backup', () => {
      expect(acceptedBeforeBackup).to.be.at.least(20);
      expect(acceptedTotal).to.be.greaterThan(acceptedBeforeBackup);
    });

    it('is encrypted: no plaintext marker, header, address or SQLite signature in the file', async () => {
      const raw = await readFile(backupFile);
      expect(raw.subarray(0, 7).toString('latin1')).to.equal('PHGWBAK');
      for (const needle of ['BK-MARKER-77', 'SQLite format 3', 'example.org', 'load 1', 'master'])
        expect(raw.includes(Buffer.from(needle)), needle).to.equal(false);
    });

    it('restores a consistent store: every live row has its sealed file, the audit chain verifies', async () => {
      const store = await Store.open({ dataDir: restored, databaseUrl: undefined }, {});
      try {
        const messages = (await store.db('messages').select('id', 'spool_removed')) as Array<{
          id: string;
          spool_removed: number | boolean;
        }>;
        expect(messages.length).to.be.at.least(acceptedBeforeBackup);
        let sealed = 0;
        for (const m of messages.filter((r) => !r.spool_removed)) {
          expect((await store.unseal('spool', m.id)).toString()).to.contain('Hello number');
          sealed++;
        }
        const blobs = (await store.db('envelopes').whereNotNull('blob_id').distinct('blob_id')) as Array<{
          blob_id: string;
        }>;
        for (const b of blobs) expect((await store.unseal('blobs', b.blob_id)).length).to.be.greaterThan(0);
        expect(sealed + blobs.length).to.be.greaterThan(0);
        const audit = await verifyAudit(store.db);
        expect(audit.ok, audit.problem).to.equal(true);
        expect(audit.events).to.be.greaterThan(0);
      } finally {
        await store.close();
      }
    });

    it('opens the pickup created before the backup with its password, on the restored data', async () => {
      const store = await Store.open({ dataDir: restored, databaseUrl: undefined }, {});
      try {
        const wrong = await openPickup(
          store,
          pickup.token,
          'aaaa-bbbb-cccc-dddd-eeee',
          { ip: '192.0.2.1' },
          pickupSchema.parse({}),
        );
        expect(wrong.ok).to.equal(false);
        const r = await openPickup(
          store,
          pickup.token,
          pickup.password,
          { ip: '192.0.2.1' },
          pickupSchema.parse({}),
        );
        if (!r.ok) throw new Error(`open failed: ${r.code}`);
        expect(r.content.subject).to.equal(content.subject);
        expect(r.content.text).to.equal(content.text);
        expect(r.content.html).to.equal(content.html);
        expect((await attachmentBytes(store, r, 0)).equals(content.attachments[0]!.content)).to.equal(true);
      } finally {
        await store.close();
      }
    });

    it('brings back the keys and the sealed areas, and no temp or snapshot leftovers', async () => {
      const files = await listAll(restored);
      expect(files).to.include('master.key');
      expect(files).to.include('phi-gateway.sqlite');
      expect(files.some((f) => f.startsWith('pickups/'))).to.equal(true);
      expect(files.filter((f) => /\.tmp$|^\.backup-|^\.restore-/.test(f))).to.deep.equal([]);
      expect((await stat(path.join(restored, 'master.key'))).mode & 0o077).to.equal(0);
    });

    it('refuses a non-empty data directory without force, and replaces it with force', async () => {
      const target = await newDir();
      await writeFile(path.join(target, 'keep.txt'), 'x');
      const err = await restoreBackup(backupFile, target, PASS).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(GatewayError);
      expect((err as GatewayError).code).to.equal('BACKUP_REFUSED');
      expect(await readdir(target)).to.deep.equal(['keep.txt']);
      await restoreBackup(backupFile, target, PASS, { force: true });
      expect(await readdir(target)).to.include('phi-gateway.sqlite');
      expect(await readdir(target)).not.to.include('keep.txt');
    });
  });

  describe('refusals', () => {
    let file: string;
    let good: Buffer;
    before(async () => {
      const data = await newDir();
      const store = await Store.open({ dataDir: data, databaseUrl: undefined }, {});
      await createPickups(store, {
        messageId: 'M',
        sender: 's@clinic.example',
        recipients: ['p@example.org'],
        content: {
          ...content,
          attachments: [
            {
              filename: 'big.bin',
              contentType: 'application/octet-stream',
              content: Buffer.alloc(300_000, 7),
            },
          ],
        },
        expiresAt: Date.now() + 3600_000,
      });
      await store.close();
      file = path.join(await newDir(), 'b.bin');
      await writeBackup(data, file, PASS, { kdf, chunkSize: 16 * 1024 });
      good = await readFile(file);
      expect(good.length).to.be.greaterThan(300_000);
    });

    async function expectRefused(bytes: Buffer | undefined, passphrase: string, code: string, text: RegExp) {
      const f = bytes ? path.join(await newDir(), 'x.bin') : file;
      if (bytes) await writeFile(f, bytes);
      const parent = await newDir();
      const target = path.join(parent, 'data');
      const err = await restoreBackup(f, target, passphrase).catch((e: unknown) => e);
      expect(err, 'restore should fail').to.be.instanceOf(GatewayError);
      expect((err as GatewayError).code).to.equal(code);
      expect((err as Error).message).to.match(text);
      expect((err as Error).message).not.to.contain(passphrase);
      // Nothing written: the target was never left behind, not even empty.
      expect(await readdir(parent)).to.deep.equal([]);
    }

    const flip = (at: number, mask = 0x01) => {
      const b = Buffer.from(good);
      b[at] = b[at]! ^ mask;
      return b;
    };

    it('wrong passphrase: a clear error and nothing written', () =>
      expectRefused(undefined, 'not the right passphrase', 'BACKUP_PASSPHRASE', /wrong backup passphrase/));
    it('truncated in the middle of a chunk', () =>
      expectRefused(good.subarray(0, Math.floor(good.length / 2)), PASS, 'BACKUP_CORRUPT', /truncated/));
    it('truncated exactly at a chunk boundary (last chunk dropped)', () =>
      // Header 64 bytes, each full chunk 4 + 16384 + 16 bytes: cut after the first two chunks.
      expectRefused(good.subarray(0, HDR + 2 * (4 + 16384 + 16)), PASS, 'BACKUP_CORRUPT', /truncated/));
    it('a flipped bit in the last bytes (the final tag)', () =>
      expectRefused(flip(good.length - 1), PASS, 'BACKUP_CORRUPT', /failed authentication/));
    it('a flipped bit inside a late chunk (after earlier chunks were already staged)', () =>
      expectRefused(flip(good.length - 5000), PASS, 'BACKUP_CORRUPT', /failed authentication/));
    it('a flipped last-chunk flag', () =>
      expectRefused(flip(HDR, 0x80), PASS, 'BACKUP_CORRUPT', /failed authentication|invalid length/));
    it('two chunks swapped', () => {
      const size = 4 + 16384 + 16;
      const b = Buffer.from(good);
      good.copy(b, HDR, HDR + size, HDR + 2 * size);
      good.copy(b, HDR + size, HDR, HDR + size);
      return expectRefused(b, PASS, 'BACKUP_CORRUPT', /failed authentication/);
    });
    it('bytes appended after the last chunk', () =>
      expectRefused(Buffer.concat([good, Buffer.from('x')]), PASS, 'BACKUP_CORRUPT', /after its last chunk/));
    it('an edited header (salt): cannot be told from a wrong passphrase, still refused', () =>
      expectRefused(flip(20), PASS, 'BACKUP_PASSPHRASE', /wrong backup passphrase/));
    it('not a backup at all', () =>
      expectRefused(
        Buffer.from('SQLite format 3\0 and more bytes than a header needs, surely more than 64 of them'),
        PASS,
        'BACKUP_CORRUPT',
        /not a phi-gateway backup/,
      ));
    it('the intact file restores (the control row)', async () => {
      const target = path.join(await newDir(), 'data');
      const r = await restoreBackup(file, target, PASS);
      expect(r.files).to.be.at.least(3);
      expect(await readdir(target)).to.include('master.key');
    });
    it('refuses a short passphrase when writing', async () => {
      const err = await writeBackup(await newDir(), path.join(await newDir(), 'b'), 'short').catch(
        (e: unknown) => e,
      );
      expect((err as GatewayError).code).to.equal('BACKUP_PASSPHRASE');
    });
  });
});
