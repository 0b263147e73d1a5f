// Secure pickup sealing on a real SQLite store in a temp dir: secrets (entropy, alphabet, only hashes at
// rest), opening, brute-force limits, expiry and revocation (crypto-shredding), key-swap resistance, notices.
import { expect } from 'chai';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { GatewayError } from '../../config/errors.js';
import { pickupSchema, type PickupConfig } from '../../config/schema.js';
import { createLogger } from '../../config/log.js';
import { verifyAudit } from '../../store/audit.js';
import { startPickupPurger } from '../../store/pickup-purger.js';
import { createReply, listReplies, readReply } from '../../store/pickup-replies.js';
import { createPickupSession, resumePickupSession } from '../../store/pickup-sessions.js';
import {
  PASSWORD_ALPHABET,
  PASSWORD_BITS,
  createPickups,
  expirePickups,
  generatePassword,
  generateToken,
  hashToken,
  listPendingPickupNotices,
  listPickups,
  markFetched,
  markPickupNoticeSent,
  openPickup,
  openPickupAttachment,
  PickupContentWriter,
  pickupDir,
  readPickupOutline,
  recordDownload,
  revokePickup,
  serializeContent,
  unlockPickup,
  type OpenResult,
  type PickupContent,
  type PickupRow,
  type WrittenContent,
} from '../../store/pickups.js';
import { Store } from '../../store/store.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { attachmentBytes } from '../support/pickups.js';

const MARKER = 'PHI-MARKER-Zq7Wx3';
const limits: PickupConfig = pickupSchema.parse({});
const DAY = 24 * 60 * 60 * 1000;

export function makeContent(marker = MARKER): PickupContent {
  return {
    from: 'dr.smith@clinic.example',
    to: ['patient@example.org'],
    cc: [],
    subject: `Your results ${marker}`,
    date: '2026-11-30T09:00:00.000Z',
    text: `Dear patient, your lab result ${marker} is ready.\nBest regards`,
    html: `<p>Dear patient, your lab result <b>${marker}</b> is ready.</p>`,
    attachments: [
      {
        filename: 'results.pdf',
        contentType: 'application/pdf',
        content: Buffer.concat([Buffer.from(`%PDF-1.4 ${marker} `), Buffer.from([0, 1, 2, 255, 254])]),
      },
    ],
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

async function dataDirHolds(dir: string, needles: string[]): Promise<string[]> {
  const hits: string[] = [];
  for (const file of await filesUnder(dir)) {
    const data = await readFile(file);
    for (const n of needles) if (data.includes(Buffer.from(n))) hits.push(`${path.basename(file)}: ${n}`);
  }
  return hits;
}

function expectFailure(r: OpenResult, status: number) {
  expect(r.ok, JSON.stringify({ status: r.ok ? 200 : r.status })).to.equal(false);
  if (!r.ok) expect(r.status).to.equal(status);
  return r.ok ? undefined : r;
}

async function row(store: Store, id: string): Promise<PickupRow> {
  return (await store.db('pickups').where({ id }).first()) as PickupRow;
}

describe('store/pickups', function () {
  this.timeout(20000);
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    dir = await tempDir('phigw-pickup-');
    store = await Store.open({ dataDir: dir, databaseUrl: undefined }, {});
  });
  afterEach(async () => {
    await store.close();
    await removeDir(dir);
  });

  const create = (recipients = ['patient@example.org'], expiresAt = Date.now() + 30 * DAY) =>
    createPickups(store, {
      messageId: 'MSG1',
      sender: 'dr.smith@clinic.example',
      recipients,
      content: makeContent(),
      expiresAt,
    });

  describe('secrets', () => {
    it('passwords carry at least 80 bits: log2(31) × 20 ≈ 99.1', () => {
      expect(PASSWORD_ALPHABET.length).to.equal(31);
      expect(PASSWORD_BITS).to.be.closeTo(99.08, 0.01);
      expect(PASSWORD_BITS).to.be.at.least(80);
    });

    it('passwords use no look-alike characters and come in five groups of four', () => {
      for (const c of ['0', 'O', 'o', '1', 'l', 'I', 'i']) expect(PASSWORD_ALPHABET, c).not.to.contain(c);
      const seen = new Set<string>();
      const passwords = Array.from({ length: 500 }, generatePassword);
      for (const p of passwords) {
        expect(p).to.match(
          /^[23456789abcdefghjkmnpqrstuvwxyz]{4}(-[23456789abcdefghjkmnpqrstuvwxyz]{4}){4}$/,
        );
        for (const c of p.replace(/-/g, '')) seen.add(c);
      }
      expect(new Set(passwords).size).to.equal(passwords.length);
      // Every symbol of the alphabet is used (10000 draws; missing one has probability ~ 31·(30/31)^10000).
      expect(seen.size).to.equal(31);
    });

    it('tokens carry at least 128 random bits, base64url, all distinct', () => {
      const tokens = Array.from({ length: 200 }, generateToken);
      for (const t of tokens) {
        expect(t).to.match(/^[A-Za-z0-9_-]+$/);
        expect(Buffer.from(t, 'base64url').length * 8).to.be.at.least(128);
      }
      expect(new Set(tokens).size).to.equal(tokens.length);
    });

    it('stores only the token hash: no token, password or content anywhere in the data dir', async () => {
      const [p] = await create();
      const r = await row(store, p!.id);
      expect(r.token_hash).to.equal(hashToken(p!.token));
      expect(p!.reference).to.match(/^[0-9A-Z]{8}$/);
      // Exercise the other writers too (fetch, open, session, reply), then look at every byte on disk.
      await markFetched(store, p!.token, { ip: '192.0.2.1' });
      const opened = await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits);
      expect(opened.ok).to.equal(true);
      if (opened.ok) {
        await createPickupSession(store, opened.pickup, opened.dataKey);
        await createReply(
          store,
          { pickup: opened.pickup, subject: 'Re', text: `reply ${MARKER}`, attachments: [], ip: '192.0.2.1' },
          limits,
        );
      }
      await store.close();
      store = await Store.open({ dataDir: dir, databaseUrl: undefined }, {});
      const needles = [
        p!.token,
        p!.password,
        p!.password.replace(/-/g, ''),
        MARKER,
        'lab result',
        'results.pdf',
      ];
      expect(await dataDirHolds(dir, needles)).to.deep.equal([]);
    });

    it('keeps the content directory private (0700) and its file 0600', async () => {
      await create();
      expect((await stat(pickupDir(store))).mode & 0o777).to.equal(0o700);
      const [file] = await readdir(pickupDir(store));
      expect((await stat(path.join(pickupDir(store), file!))).mode & 0o777).to.equal(0o600);
    });
  });

  describe('opening', () => {
    it('opens with the right password, forgiving case, spaces and dashes; attachments byte for byte', async () => {
      const [p] = await create();
      const content = makeContent();
      for (const typed of [
        p!.password,
        p!.password.toUpperCase(),
        p!.password.replace(/-/g, ' '),
        p!.password.replace(/-/g, ''),
      ]) {
        const r = await openPickup(store, p!.token, typed, { ip: '192.0.2.1' }, limits);
        expect(r.ok, typed).to.equal(true);
        if (!r.ok) continue;
        expect(r.content.subject).to.equal(content.subject);
        expect(r.content.text).to.equal(content.text);
        expect(r.content.html).to.equal(content.html);
        expect((await attachmentBytes(store, r, 0)).equals(content.attachments[0]!.content)).to.equal(true);
      }
    });

    const wrong = [
      { name: 'a wrong password', password: () => generatePassword() },
      { name: 'an empty password', password: () => '' },
      { name: 'the password minus one symbol', password: (real: string) => real.slice(0, -1) },
      {
        name: 'the password with one symbol changed',
        password: (real: string) => real.slice(0, -1) + (real.endsWith('a') ? 'b' : 'a'),
      },
    ];
    for (const w of wrong) {
      it(`refuses ${w.name} with 401`, async () => {
        const [p] = await create();
        expectFailure(
          await openPickup(store, p!.token, w.password(p!.password), { ip: '192.0.2.9' }, limits),
          401,
        );
      });
    }

    it('answers an unknown or malformed token with 404', async () => {
      for (const token of [generateToken(), 'short', '../../etc/passwd', '']) {
        expectFailure(await openPickup(store, token, 'x', { ip: `192.0.2.${token.length}` }, limits), 404);
      }
    });

    it('locks after 5 failures for 15 minutes (423 with retry-after), even for the right password', async () => {
      const [p] = await create();
      const now = Date.now();
      for (let i = 1; i <= 4; i++)
        expectFailure(await openPickup(store, p!.token, 'nope', { ip: '192.0.2.1', now }, limits), 401);
      const locked = expectFailure(
        await openPickup(store, p!.token, 'nope', { ip: '192.0.2.1', now }, limits),
        423,
      );
      expect(locked!.retryAfter).to.equal(15 * 60);
      const stillLocked = expectFailure(
        await openPickup(store, p!.token, p!.password, { ip: '192.0.2.2', now: now + 60_000 }, limits),
        423,
      );
      expect(stillLocked!.retryAfter).to.equal(14 * 60);
      const later = await openPickup(
        store,
        p!.token,
        p!.password,
        { ip: '192.0.2.3', now: now + 15 * 60_000 + 1 },
        limits,
      );
      expect(later.ok).to.equal(true);
      const audit = (await store.db('audit_events').select('type', 'detail')) as Array<{
        type: string;
        detail: string;
      }>;
      expect(audit.filter((a) => a.type === 'pickup.unlock_failed')).to.have.length(6);
      expect(audit.filter((a) => a.type === 'pickup.locked')).to.have.length(1);
      expect(audit.filter((a) => a.type === 'pickup.unlocked')).to.have.length(1);
      for (const a of audit) expect(a.detail).not.to.contain('patient@example.org');
      expect(audit.find((a) => a.type === 'pickup.unlock_failed')!.detail).to.contain('192.0.2.1');
      expect((await verifyAudit(store.db)).ok).to.equal(true);
    });

    it('counts every wrong password when two nodes take them at the same time', async () => {
      const [p] = await create();
      // PostgreSQL: a second Store on the same database and directory is a second node; SQLite has one.
      const other =
        store.engine === 'postgres' ? await Store.open({ dataDir: dir, databaseUrl: undefined }, {}) : store;
      try {
        const results = await Promise.all(
          [store, other, store, other].map((s, i) =>
            openPickup(s, p!.token, `wrong-${i}`, { ip: `198.51.100.${i + 1}` }, limits),
          ),
        );
        for (const r of results) expectFailure(r, 401);
        expect((await row(store, p!.id)).failures, 'failures counted').to.equal(4);
        // The fifth, on either node, locks it.
        expectFailure(await openPickup(other, p!.token, 'wrong-5', { ip: '198.51.100.5' }, limits), 423);
      } finally {
        if (other !== store) await other.close();
      }
      expect((await verifyAudit(store.db)).ok).to.equal(true);
    });

    it('hard-locks after 20 failures until the sender or an admin unlocks it', async () => {
      const [p] = await create();
      let now = Date.now();
      let last: OpenResult | undefined;
      for (let i = 1; i <= 20; i++) {
        last = await openPickup(store, p!.token, 'nope', { ip: `198.51.100.${i}`, now }, limits);
        expectFailure(last, i % 5 === 0 ? 423 : 401);
        if (i % 5 === 0) now += limits.lockoutDuration + 1;
      }
      expect(!last!.ok && last!.hard).to.equal(true);
      const r = expectFailure(
        await openPickup(store, p!.token, p!.password, { ip: '198.51.100.99', now: now + DAY }, limits),
        423,
      );
      expect(r!.hard).to.equal(true);
      expect((await listPickups(store))[0]!.status).to.equal('locked');
      expect(await unlockPickup(store, p!.id, 'admin@clinic.example')).to.equal(true);
      expect(
        (await openPickup(store, p!.token, p!.password, { ip: '198.51.100.99', now: now + DAY }, limits)).ok,
      ).to.equal(true);
    });

    it('limits one client IP across pickups, without locking other IPs out', async () => {
      const ps = await create([
        'a@example.org',
        'b@example.org',
        'c@example.org',
        'd@example.org',
        'e@example.org',
        'f@example.org',
      ]);
      for (let i = 0; i < 4; i++)
        expectFailure(await openPickup(store, ps[i]!.token, 'nope', { ip: '203.0.113.7' }, limits), 401);
      const fifth = expectFailure(
        await openPickup(store, ps[4]!.token, 'nope', { ip: '203.0.113.7' }, limits),
        423,
      );
      expect(fifth!.retryAfter).to.be.within(899, 900);
      expectFailure(
        await openPickup(store, ps[5]!.token, ps[5]!.password, { ip: '203.0.113.7' }, limits),
        423,
      );
      expect(
        (await openPickup(store, ps[5]!.token, ps[5]!.password, { ip: '203.0.113.8' }, limits)).ok,
      ).to.equal(true);
      // Each pickup saw one failure only: none is locked by itself.
      expect((await listPickups(store)).filter((s) => s.status === 'locked')).to.have.length(0);
    });

    it('a wrapped key copied onto another pickup opens nothing', async () => {
      const [a, b] = await create(['a@example.org', 'b@example.org']);
      const rowA = await row(store, a!.id);
      await store.write((trx) =>
        trx('pickups').where({ id: b!.id }).update({ wrapped_key: rowA.wrapped_key }),
      );
      expectFailure(await openPickup(store, b!.token, a!.password, { ip: '192.0.2.1' }, limits), 401);
      expectFailure(await openPickup(store, b!.token, b!.password, { ip: '192.0.2.2' }, limits), 401);
      expect((await openPickup(store, a!.token, a!.password, { ip: '192.0.2.3' }, limits)).ok).to.equal(true);
    });
  });

  describe('content written as the message is read (PickupContentWriter)', () => {
    it('opens byte for byte, attachments in their places though written out of order and in pieces', async () => {
      const big = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
      const content: PickupContent = {
        ...makeContent(),
        attachments: [
          { filename: 'a.bin', contentType: 'application/octet-stream', content: big },
          { filename: 'scan.png', contentType: 'image/png', content: Buffer.from(`png ${MARKER}`) },
          {
            filename: 'empty.txt',
            contentType: 'text/plain',
            content: Buffer.alloc(0),
            inline: true,
            cid: 'c1',
          },
        ],
      };
      const writer = await PickupContentWriter.open(store);
      writer.begin(0, content.attachments[0]!);
      for (let at = 0; at < big.length; at += 4099) await writer.body(big.subarray(at, at + 4099));
      writer.end();
      await writer.attachment(2, content.attachments[2]!);
      await writer.attachment(1, content.attachments[1]!);
      const written = await writer.finish(content);
      const [p] = await createPickups(store, {
        messageId: 'MSG1',
        sender: 'dr.smith@clinic.example',
        recipients: ['patient@example.org'],
        content: written,
        expiresAt: Date.now() + DAY,
      });
      const r = await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits);
      if (!r.ok) throw new Error(r.code);
      expect(r.content.text).to.equal(content.text);
      expect(r.content.attachments.map((a) => [a.filename, a.contentType, a.size])).to.deep.equal(
        content.attachments.map((a) => [a.filename, a.contentType, a.content.length]),
      );
      for (const [i, a] of content.attachments.entries())
        expect((await attachmentBytes(store, r, i)).equals(a.content), a.filename).to.equal(true);
      expect(r.content.attachments[2]).to.include({ inline: true, cid: 'c1' });
      expect(await dataDirHolds(dir, [MARKER])).to.deep.equal([]);
    });

    it('leaves nothing behind when given up, before or after finishing', async () => {
      const early = await PickupContentWriter.open(store);
      await early.attachment(0, makeContent().attachments[0]!);
      await early.abort();
      const late = await PickupContentWriter.open(store);
      const meta: Omit<PickupContent, 'attachments'> = makeContent();
      await late.finish(meta);
      await late.abort();
      expect(await readdir(pickupDir(store))).to.deep.equal([]);
    });

    it('refuses to seal content with an attachment missing', async () => {
      const writer = await PickupContentWriter.open(store);
      await writer.attachment(1, makeContent().attachments[0]!);
      let failed = false;
      await writer.finish(makeContent()).catch(() => (failed = true));
      await writer.abort();
      expect(failed).to.equal(true);
    });
  });

  describe('content read in slices (page, API and downloads)', () => {
    const written = async (content: PickupContent) => {
      const writer = await PickupContentWriter.open(store);
      for (const [i, a] of content.attachments.entries()) await writer.attachment(i, a);
      return writer.finish(content);
    };
    const openOne = async (content: PickupContent | WrittenContent) => {
      const [p] = await createPickups(store, {
        messageId: 'MSG1',
        sender: 'dr.smith@clinic.example',
        recipients: ['patient@example.org'],
        content,
        expiresAt: Date.now() + DAY,
      });
      const r = await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits);
      if (!r.ok) throw new Error(r.code);
      return r;
    };

    it('reads content sealed whole in the first layout (PKC1: meta first, then the attachments)', async () => {
      // A content file as versions before the streamed layout wrote it: one GCM message over serializeContent.
      const content = makeContent();
      const contentId = 'c'.repeat(32);
      const dataKey = randomBytes(32);
      const header = Buffer.concat([Buffer.from('PHGP'), Buffer.from([1]), randomBytes(12)]);
      const cipher = createCipheriv('aes-256-gcm', dataKey, header.subarray(5));
      cipher.setAAD(Buffer.concat([header, Buffer.from(`phigw-pickup-content:${contentId}`)]));
      const plain = serializeContent(content);
      expect(plain.subarray(0, 4).toString()).to.equal('PKC1');
      const sealed = Buffer.concat([header, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      await mkdir(pickupDir(store), { recursive: true });
      await writeFile(path.join(pickupDir(store), contentId), sealed);
      const r = await openOne({ contentId, dataKey, size: plain.length });
      expect(r.content.text).to.equal(content.text);
      expect(r.content.attachments.map((a) => a.size)).to.deep.equal(
        content.attachments.map((a) => a.content.length),
      );
      for (const [i, a] of content.attachments.entries())
        expect((await attachmentBytes(store, r, i)).equals(a.content), a.filename).to.equal(true);
      expect(await openPickupAttachment(store, r.pickup, r.dataKey, content.attachments.length)).to.equal(
        null,
      );
    });

    it('streams a 40 MB attachment without holding it (peak buffer growth well under its size)', async () => {
      // The attachment is made, sealed and let go of in here: from then on only the pickup file holds it.
      const sealed = async () => {
        const big = randomBytes(40 * 1024 * 1024);
        const content: PickupContent = {
          ...makeContent(),
          attachments: [{ filename: 'scan.tiff', contentType: 'image/tiff', content: big }],
        };
        return {
          expected: createHash('sha256').update(big).digest('hex'),
          r: await openOne(await written(content)),
        };
      };
      const { expected, r } = await sealed();
      // What is alive, not garbage not yet collected: a full collection before each sample, and a moment for
      // the freed buffers' memory to be returned (that happens after the collection, off the main thread).
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const alive = async () => {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 10));
        return process.memoryUsage().arrayBuffers;
      };
      const base = await alive();
      let peak = base;
      const opened = await openPickupAttachment(store, r.pickup, r.dataKey, 0);
      const hash = createHash('sha256');
      let chunks = 0;
      for await (const chunk of opened!.stream) {
        hash.update(chunk as Buffer);
        if (++chunks % 16 === 0) peak = Math.max(peak, await alive());
      }
      expect(hash.digest('hex')).to.equal(expected);
      expect(chunks).to.be.greaterThan(100);
      // Read whole, the file and its plaintext alone were 80 MB (collecting the slices before giving them out:
      // 40 MB); in slices a few MB are in flight (the stream reads up to 16 slices ahead of its reader).
      expect(peak - base, `peak growth ${((peak - base) / 1e6).toFixed(1)} MB`).to.be.lessThan(
        16 * 1024 * 1024,
      );
    });

    it('a file damaged after it was opened fails the download before its last byte, and the page after', async () => {
      const content: PickupContent = {
        ...makeContent(),
        attachments: [
          { filename: 'a.bin', contentType: 'application/octet-stream', content: randomBytes(1 << 20) },
        ],
      };
      const r = await openOne(await written(content));
      const opened = await openPickupAttachment(store, r.pickup, r.dataKey, 0);
      // One byte of the attachment flipped on disk, between the outline and the download.
      const file = path.join(pickupDir(store), r.pickup.content_id);
      const bytes = await readFile(file);
      bytes[100_000] = bytes[100_000]! ^ 1;
      await writeFile(file, bytes);
      let got = 0;
      let failure: unknown;
      try {
        for await (const chunk of opened!.stream) got += (chunk as Buffer).length;
      } catch (err) {
        failure = err;
      }
      expect((failure as GatewayError | undefined)?.code).to.equal('SPOOL_CORRUPT');
      expect(got).to.be.lessThan(content.attachments[0]!.content.length);
      let outline: unknown;
      await readPickupOutline(store, r.pickup, r.dataKey).catch((err: unknown) => (outline = err));
      expect((outline as GatewayError | undefined)?.code).to.equal('SPOOL_CORRUPT');
      let again: unknown;
      await openPickupAttachment(store, r.pickup, r.dataKey, 0).catch((err: unknown) => (again = err));
      expect((again as GatewayError | undefined)?.code).to.equal('SPOOL_CORRUPT');
    });

    it('a file cut short or gone: SPOOL_CORRUPT or SPOOL_MISSING, never content', async () => {
      const r = await openOne(await written(makeContent()));
      const file = path.join(pickupDir(store), r.pickup.content_id);
      const whole = await readFile(file);
      for (const length of [whole.length - 1, whole.length - 17, 30, 10, 0]) {
        await writeFile(file, whole.subarray(0, length));
        let err: unknown;
        await readPickupOutline(store, r.pickup, r.dataKey).catch((e: unknown) => (err = e));
        expect((err as GatewayError | undefined)?.code, `cut to ${length}`).to.equal('SPOOL_CORRUPT');
      }
      await rm(file);
      let gone: unknown;
      await openPickupAttachment(store, r.pickup, r.dataKey, 0).catch((e: unknown) => (gone = e));
      expect((gone as GatewayError | undefined)?.code).to.equal('SPOOL_MISSING');
    });
  });

  describe('ending', () => {
    it('expiry answers 410, destroys the wrapped key and deletes the content file', async () => {
      const now = Date.now();
      const [p] = await create(['patient@example.org'], now + 1000);
      expect(await readdir(pickupDir(store))).to.have.length(1);
      expect(await expirePickups(store, now + 500)).to.equal(0);
      expect(await expirePickups(store, now + 2000)).to.equal(1);
      const r = await row(store, p!.id);
      expect(r.wrapped_key).to.equal(null);
      expect(r.status).to.equal('expired');
      expect(await readdir(pickupDir(store))).to.deep.equal([]);
      expectFailure(await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits), 410);
      const types = ((await store.db('audit_events').select('type')) as Array<{ type: string }>).map(
        (a) => a.type,
      );
      expect(types).to.include('pickup.expired');
    });

    it('a pickup past its date is 410 even before the purger runs', async () => {
      const [p] = await create(['patient@example.org'], Date.now() - 1);
      expectFailure(await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits), 410);
    });

    it('revocation answers 410 even with the right password; the file goes with the last live pickup', async () => {
      const [a, b] = await create(['a@example.org', 'b@example.org']);
      expect(await revokePickup(store, a!.id, 'dr.smith@clinic.example')).to.equal(true);
      expect(await revokePickup(store, a!.id, 'dr.smith@clinic.example')).to.equal(false);
      expect((await row(store, a!.id)).wrapped_key).to.equal(null);
      expectFailure(await openPickup(store, a!.token, a!.password, { ip: '192.0.2.1' }, limits), 410);
      expect(await readdir(pickupDir(store)), 'b still needs the file').to.have.length(1);
      expect((await openPickup(store, b!.token, b!.password, { ip: '192.0.2.1' }, limits)).ok).to.equal(true);
      await revokePickup(store, b!.id, 'admin');
      expect(await readdir(pickupDir(store))).to.deep.equal([]);
      const summary = await listPickups(store, { messageId: 'MSG1' });
      expect(summary.map((s) => s.status)).to.deep.equal(['revoked', 'revoked']);
    });

    it('revocation ends open sessions', async () => {
      const [p] = await create();
      const r = await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits);
      if (!r.ok) throw new Error('expected to open');
      const cookie = await createPickupSession(store, r.pickup, r.dataKey);
      expect(await resumePickupSession(store, cookie, await row(store, p!.id), limits)).not.to.equal(null);
      await revokePickup(store, p!.id, 'admin');
      expect(await store.db('pickup_sessions').count({ n: '*' }).first()).to.deep.equal({ n: 0 });
    });

    it('the background purger expires pickups on its own', async () => {
      const [p] = await create(['patient@example.org'], Date.now() + 50);
      const stop = startPickupPurger(
        store,
        { pickup: { ...limits, purgeInterval: 100 } },
        createLogger('silent'),
      );
      try {
        const end = Date.now() + 5000;
        while (Date.now() < end && (await row(store, p!.id)).status === 'active')
          await new Promise((r) => setTimeout(r, 50));
      } finally {
        stop();
      }
      expect((await row(store, p!.id)).status).to.equal('expired');
    });
  });

  describe('sessions', () => {
    it('a session reopens the data key with its cookie only, until the idle timeout', async () => {
      const [p] = await create();
      const r = await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits);
      if (!r.ok) throw new Error('expected to open');
      const now = Date.now();
      const cookie = await createPickupSession(store, r.pickup, r.dataKey, now);
      const pickup = await row(store, p!.id);
      const back = await resumePickupSession(
        store,
        cookie,
        { ...pickup, expires_at: Number(pickup.expires_at) },
        limits,
        now + 1000,
      );
      expect(back?.dataKey.equals(r.dataKey)).to.equal(true);
      const [sid, key] = cookie.split('.');
      const otherKey = Buffer.alloc(32, 7).toString('base64url');
      expect(await resumePickupSession(store, `${sid}.${otherKey}`, pickup, limits, now + 2000)).to.equal(
        null,
      );
      expect(
        await resumePickupSession(
          store,
          `${sid!.startsWith('A') ? 'B' : 'A'}${sid!.slice(1)}.${key}`,
          pickup,
          limits,
          now + 2000,
        ),
      ).to.equal(null);
      // The row never holds the data key or the cookie's secrets.
      const sessionRow = (await store.db('pickup_sessions').first()) as { id: string; sealed_key: string };
      expect(sessionRow.sealed_key).not.to.contain(r.dataKey.toString('base64'));
      expect(JSON.stringify(sessionRow)).not.to.contain(key);
      expect(
        await resumePickupSession(store, cookie, pickup, limits, now + limits.sessionIdleTimeout + 2000),
      ).to.equal(null);
      expect(
        await resumePickupSession(store, cookie, pickup, limits, now + 3000),
        'gone after the timeout',
      ).to.equal(null);
    });
  });

  describe('status, notices and replies', () => {
    it('moves through sent → fetched → opened → downloaded, with one "opened" notice', async () => {
      const [p] = await create();
      const status = async () => (await listPickups(store, { id: p!.id }))[0]!.status;
      expect(await status()).to.equal('sent');
      expect((await markFetched(store, p!.token, { ip: '192.0.2.1' })).kind).to.equal('live');
      expect(await status()).to.equal('fetched');
      expect(await listPendingPickupNotices(store)).to.deep.equal([]);
      const r = await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits);
      expect(r.ok && r.firstOpen).to.equal(true);
      await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, limits);
      expect(await status()).to.equal('opened');
      await recordDownload(store, { id: p!.id, message_id: 'MSG1' }, '0', { ip: '192.0.2.1' });
      expect(await status()).to.equal('downloaded');
      const notices = await listPendingPickupNotices(store);
      expect(notices.map((n) => [n.kind, n.pickupId, n.sender])).to.deep.equal([
        ['opened', p!.id, 'dr.smith@clinic.example'],
      ]);
      await markPickupNoticeSent(store, notices[0]!.id);
      expect(await listPendingPickupNotices(store)).to.deep.equal([]);
      const types = (
        (await store.db('audit_events').orderBy('seq').select('type')) as Array<{ type: string }>
      ).map((a) => a.type);
      expect(types).to.deep.equal([
        'pickup.created',
        'pickup.fetched',
        'pickup.unlocked',
        'pickup.unlocked',
        'pickup.downloaded',
      ]);
    });

    it('no "opened" notice when the config turns it off', async () => {
      const [p] = await create();
      await openPickup(store, p!.token, p!.password, { ip: '192.0.2.1' }, { ...limits, openedNotice: false });
      expect(await listPendingPickupNotices(store)).to.deep.equal([]);
    });

    it('a reply is sealed, listed for the sender, readable by the gateway, and queues a notice', async () => {
      const [p] = await create();
      const r = await openPickup(
        store,
        p!.token,
        p!.password,
        { ip: '192.0.2.1' },
        { ...limits, openedNotice: false },
      );
      if (!r.ok) throw new Error('expected to open');
      const bytes = Buffer.from([9, 8, 7, 0, 255]);
      const id = await createReply(
        store,
        {
          pickup: r.pickup,
          subject: 'Re: results',
          text: `Thanks ${MARKER}`,
          attachments: [{ filename: 'scan.png', contentType: 'image/png', content: bytes }],
          ip: '192.0.2.1',
        },
        limits,
      );
      expect(await dataDirHolds(dir, [MARKER, 'scan.png'])).to.deep.equal([]);
      const list = await listReplies(store, { sender: 'dr.smith@clinic.example' });
      expect(list.map((x) => [x.id, x.rcpt, x.attachments, x.delivery, x.readAt])).to.deep.equal([
        [id, 'patient@example.org', 1, 'sealed', null],
      ]);
      const notices = await listPendingPickupNotices(store);
      expect(notices.map((n) => [n.kind, n.replyId])).to.deep.equal([['reply', id]]);
      const read = await readReply(store, id, 'dr.smith@clinic.example');
      expect(read!.content.text).to.equal(`Thanks ${MARKER}`);
      expect(read!.content.attachments[0]!.content.equals(bytes)).to.equal(true);
      expect(read!.reply.readAt).to.be.a('number');
      expect(await readReply(store, 'nope', 'x')).to.equal(null);
    });
  });
});
