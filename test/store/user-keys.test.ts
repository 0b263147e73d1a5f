// Password re-issue keys on a real SQLite store: a user's private key opens only with their own password,
// escrow seals are bound to their pickup and holder, who gets escrow, re-issue (new password opens, old does
// not, locks lifted, sessions ended, races lose), and nothing secret at rest in clear.
import { expect } from 'chai';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pickupSchema } from '../../config/schema.js';
import { createPickupSession } from '../../store/pickup-sessions.js';
import {
  checkReissue,
  createPickups,
  openPickup,
  reissuePassword,
  revokePickup,
  type PickupRow,
  type ReissueDelivery,
} from '../../store/pickups.js';
import { rotateMasterKey } from '../../store/master-key.js';
import { countUnderOldKeys, retireOldKeys, rewrapAll } from '../../store/rewrap.js';
import { Store } from '../../store/store.js';
import {
  applyUserKeyChange,
  ensureUserKey,
  escrowRecipientsFor,
  findUserKey,
  openEscrow,
  openUserKey,
  prepareUserKeyChange,
  resetUserKey,
  sealForEscrow,
} from '../../store/user-keys.js';
import { addUser } from '../../store/users.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { makeWebContent as makeContent } from '../support/portal.js';

const limits = pickupSchema.parse({});
const PW = 'staff-password-123';
const DAY = 86_400_000;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(...(e.isDirectory() ? await filesUnder(p) : [p]));
  }
  return out;
}

describe('store/user-keys (password re-issue)', function () {
  this.timeout(30000);
  let dir: string;
  let store: Store;

  beforeEach(async () => {
    dir = await tempDir('phigw-userkeys-');
    store = await Store.open({ dataDir: dir, databaseUrl: undefined }, {});
  });
  afterEach(async () => {
    await store.close();
    await removeDir(dir);
  });

  async function user(email: string, role: 'staff' | 'admin' | 'auditor' = 'staff', key = true) {
    await addUser(store.db, email, role, PW);
    const { id } = (await store.db('users').where({ email }).first('id')) as { id: number };
    if (key) await ensureUserKey(store, id, PW);
    return id;
  }

  async function message(id: string, mailFrom: string, authUser: string | null) {
    const now = Date.now();
    await store.db('messages').insert({
      id,
      state: 'routed',
      created_at: now,
      updated_at: now,
      next_attempt_at: now,
      size: 1,
      mail_from: mailFrom,
      rcpt_to: '[]',
      auth_user: authUser,
      trace: '',
    });
  }

  /** A delivery that records the password handed to it (the real one mails it) and whether it was discarded. */
  function delivery() {
    const seen = { password: '', enqueued: 0, discarded: 0 };
    const deliver = (_p: PickupRow, password: string): Promise<ReissueDelivery> => {
      seen.password = password;
      return Promise.resolve({
        route: 'email',
        enqueue: () => {
          seen.enqueued++;
          return Promise.resolve();
        },
        discard: () => {
          seen.discarded++;
          return Promise.resolve();
        },
      });
    };
    return { seen, deliver };
  }

  describe('user key pairs', () => {
    it('are made once; the private key opens with the password only, and no secret is at rest in clear', async () => {
      const id = await user('ann@clinic.example', 'staff', false);
      expect(await ensureUserKey(store, id, PW)).to.equal(true);
      expect(await ensureUserKey(store, id, PW)).to.equal(false);
      const row = (await findUserKey(store.db, id))!;
      expect(row.key_id).to.match(/^[0-9a-f]{32}$/);
      expect(Buffer.from(row.public_key, 'base64')).to.have.length(32);
      expect(row.wrapped_private.startsWith('v1.')).to.equal(true);
      expect(await openUserKey(store, id, PW)).to.not.equal(null);
      for (const wrong of ['', 'staff-password-124', PW.toUpperCase(), `${PW} `])
        expect(await openUserKey(store, id, wrong), wrong).to.equal(null);
      // A key row moved to another user does not open (the user id is bound in).
      const other = await user('bob@clinic.example', 'staff', false);
      await store.db('user_keys').insert({ ...row, user_id: other });
      let moved: unknown = null;
      try {
        moved = await openUserKey(store, other, PW);
      } catch (err) {
        moved = err;
      }
      expect(moved === null || moved instanceof Error).to.equal(true);
      await store.close();
      for (const f of await filesUnder(dir))
        expect((await readFile(f)).includes(Buffer.from(PW)), f).to.equal(false);
      store = await Store.open({ dataDir: dir, databaseUrl: undefined }, {});
    });

    it('a password change re-wraps the same key; a reset replaces it and drops its escrow', async () => {
      const id = await user('ann@clinic.example');
      const before = (await findUserKey(store.db, id))!;
      const change = await prepareUserKeyChange(store, id, PW, 'a-new-password-456');
      expect(change.kind).to.equal('rewrap');
      await store.write((trx) => applyUserKeyChange(trx, id, change));
      const after = (await findUserKey(store.db, id))!;
      expect(after.key_id).to.equal(before.key_id);
      expect(await openUserKey(store, id, PW)).to.equal(null);
      expect(await openUserKey(store, id, 'a-new-password-456')).to.not.equal(null);

      const [p] = await createPickups(store, {
        messageId: 'M1',
        sender: 'ann@clinic.example',
        recipients: ['patient@example.org'],
        content: makeContent(),
        expiresAt: Date.now() + DAY,
        escrow: [{ userId: id, keyId: after.key_id, publicKey: after.public_key }],
      });
      expect(await store.db('pickup_escrow').where({ user_id: id })).to.have.length(1);
      await store.write((trx) => resetUserKey(store, trx, id, 'reset-password-789'));
      const reset = (await findUserKey(store.db, id))!;
      expect(reset.key_id).to.not.equal(before.key_id);
      expect(await store.db('pickup_escrow').where({ user_id: id })).to.have.length(0);
      expect((await checkReissue(store.db, p!.id, id)).ok).to.equal(false);
    });
  });

  it('survive a master key rotation: re-wrap moves them to the new key, then the old key can go', async () => {
    const id = await user('ann@clinic.example');
    await store.close();
    await rotateMasterKey(dir, {});
    store = await Store.open({ dataDir: dir, databaseUrl: undefined }, {});
    expect(await countUnderOldKeys(store)).to.equal(1);
    expect((await rewrapAll(store)).values).to.equal(1);
    expect(await retireOldKeys(store)).to.have.length(1);
    await store.close();
    store = await Store.open({ dataDir: dir, databaseUrl: undefined }, {});
    expect(store.masterKeyCount).to.equal(1);
    expect(await openUserKey(store, id, PW)).to.not.equal(null);
  });

  describe('escrow seals', () => {
    it('open only with the holder key and the exact binding (pickup, content, recipient, user, key)', async () => {
      const a = await user('ann@clinic.example');
      const b = await user('bob@clinic.example');
      const ka = (await findUserKey(store.db, a))!;
      const dataKey = Buffer.alloc(32, 7);
      const binding = { pickupId: 'P1', contentId: 'C1', rcpt: 'patient@example.org' };
      const sealed = sealForEscrow(
        dataKey,
        { userId: a, keyId: ka.key_id, publicKey: ka.public_key },
        binding,
      );
      const privA = (await openUserKey(store, a, PW))!;
      const privB = (await openUserKey(store, b, PW))!;
      const holder = { userId: a, keyId: ka.key_id };
      expect(openEscrow(sealed, privA, holder, binding)?.equals(dataKey)).to.equal(true);
      const rows: Array<[string, ReturnType<typeof openEscrow>]> = [
        ['other private key', openEscrow(sealed, privB, holder, binding)],
        ['other pickup', openEscrow(sealed, privA, holder, { ...binding, pickupId: 'P2' })],
        ['other content', openEscrow(sealed, privA, holder, { ...binding, contentId: 'C2' })],
        ['other recipient', openEscrow(sealed, privA, holder, { ...binding, rcpt: 'x@example.org' })],
        ['other user id', openEscrow(sealed, privA, { ...holder, userId: b }, binding)],
        ['other key id', openEscrow(sealed, privA, { ...holder, keyId: '0'.repeat(32) }, binding)],
        ['truncated', openEscrow(sealed.slice(0, -4), privA, holder, binding)],
      ];
      for (const [name, got] of rows) expect(got, name).to.equal(null);
    });
  });

  describe('who gets escrow', () => {
    it('the SMTP AUTH user, else the envelope sender, else the From account; plus active admins with keys', async () => {
      const ann = await user('ann@clinic.example');
      const bob = await user('bob@clinic.example');
      const admin = await user('admin@clinic.example', 'admin');
      await user('nokey.admin@clinic.example', 'admin', false);
      const off = await user('off.admin@clinic.example', 'admin');
      await store.db('users').where({ id: off }).update({ disabled: true });
      await user('audit@clinic.example', 'auditor');
      await message('AUTH', 'bob@clinic.example', 'ann@clinic.example');
      await message('TRUSTED', 'Bob@Clinic.example', null);
      await message('FROMONLY', 'bounces@lists.example', null);
      await message('STRANGER', 'x@elsewhere.example', null);
      const ids = async (messageId: string, sender: string) =>
        (await escrowRecipientsFor(store.db, { messageId, sender })).map((r) => r.userId).sort();
      const cases: Array<[string, string, string, number[]]> = [
        ['authenticated: the AUTH user, not the From', 'AUTH', 'bob@clinic.example', [ann, admin]],
        ['trusted: the envelope sender first', 'TRUSTED', 'ann@clinic.example', [bob, admin]],
        [
          'trusted: the From when the envelope sender has no account',
          'FROMONLY',
          'ann@clinic.example',
          [ann, admin],
        ],
        ['no account at all: admins only', 'STRANGER', 'x@elsewhere.example', [admin]],
        ['an auditor is never an owner', 'STRANGER', 'audit@clinic.example', [admin]],
        ['unknown message, From is a staff account', 'NOPE', 'bob@clinic.example', [bob, admin]],
      ];
      for (const [name, messageId, sender, want] of cases)
        expect(await ids(messageId, sender), name).to.deep.equal([...want].sort());
    });
  });

  describe('re-issue', () => {
    async function setup(existing?: number) {
      const ann = existing ?? (await user('ann@clinic.example'));
      const k = (await findUserKey(store.db, ann))!;
      const [p] = await createPickups(store, {
        messageId: 'M1',
        sender: 'ann@clinic.example',
        recipients: ['patient@example.org'],
        content: makeContent(),
        expiresAt: Date.now() + DAY,
        escrow: [{ userId: ann, keyId: k.key_id, publicKey: k.public_key }],
      });
      return { ann, p: p! };
    }

    it('a new password opens, the old one does not; locks are lifted and open sessions end', async () => {
      const { ann, p } = await setup();
      await store.db('pickups').where({ id: p.id }).update({ failures: 20, hard_locked: true });
      await createPickupSession(store, { id: p.id }, Buffer.alloc(32, 1));
      expect(await store.db('pickup_sessions').where({ pickup_id: p.id })).to.have.length(1);
      const { seen, deliver } = delivery();
      const out = await reissuePassword(store, {
        pickupId: p.id,
        userId: ann,
        signInPassword: PW,
        actor: 'ann@clinic.example',
        deliver,
      });
      expect(out.ok).to.equal(true);
      expect(seen.enqueued).to.equal(1);
      expect(seen.discarded).to.equal(0);
      expect(seen.password).to.match(/^[2-9a-z]{4}(-[2-9a-z]{4}){4}$/);
      expect(seen.password).to.not.equal(p.password);
      const after = (await store.db('pickups').where({ id: p.id }).first()) as PickupRow;
      expect(Number(after.failures)).to.equal(0);
      expect(!!after.hard_locked).to.equal(false);
      expect(await store.db('pickup_sessions').where({ pickup_id: p.id })).to.have.length(0);
      const old = await openPickup(store, p.token, p.password, { ip: '192.0.2.1' }, limits);
      expect(old.ok ? 200 : old.status).to.equal(401);
      const fresh = await openPickup(store, p.token, seen.password, { ip: '192.0.2.1' }, limits);
      expect(fresh.ok).to.equal(true);
      const audit = (await store.db('audit_events').where({ type: 'pickup.password_reissued' })) as Array<{
        actor: string;
        detail: string;
      }>;
      expect(audit).to.have.length(1);
      expect(audit[0]!.actor).to.equal('ann@clinic.example');
      expect(JSON.parse(audit[0]!.detail)).to.deep.equal({ pickup: p.id, route: 'email' });
      const everything = JSON.stringify(await store.db('audit_events'));
      expect(everything).to.not.contain(seen.password.replace(/-/g, ''));
      expect(everything).to.not.contain(seen.password);
    });

    it('refuses a wrong password, another user, and a revoked pickup; nothing changes', async () => {
      const { ann, p } = await setup();
      const bob = await user('bob@clinic.example');
      const before = (await store.db('pickups').where({ id: p.id }).first()) as PickupRow;
      const { seen, deliver } = delivery();
      const attempt = (userId: number, pw = PW) =>
        reissuePassword(store, { pickupId: p.id, userId, signInPassword: pw, actor: 'x', deliver });
      expect(await attempt(ann, 'not-the-password')).to.deep.equal({ ok: false, code: 'wrong_password' });
      expect(await attempt(bob)).to.deep.equal({ ok: false, code: 'key_reset' });
      expect(await attempt(ann + 1000)).to.deep.equal({ ok: false, code: 'key_reset' });
      const after = (await store.db('pickups').where({ id: p.id }).first()) as PickupRow;
      expect(after.wrapped_key).to.equal(before.wrapped_key);
      expect(seen.enqueued).to.equal(0);
      expect((await openPickup(store, p.token, p.password, { ip: '192.0.2.2' }, limits)).ok).to.equal(true);
      await revokePickup(store, p.id, 'ann@clinic.example');
      expect(await attempt(ann)).to.deep.equal({ ok: false, code: 'gone' });
      expect(await store.db('pickup_escrow').where({ pickup_id: p.id })).to.have.length(0);
    });

    it('a pickup without escrow says so; a revocation during the re-issue wins and the mail is discarded', async () => {
      const ann = await user('ann@clinic.example');
      const [bare] = await createPickups(store, {
        messageId: 'M0',
        sender: 'ann@clinic.example',
        recipients: ['patient@example.org'],
        content: makeContent(),
        expiresAt: Date.now() + DAY,
      });
      expect(await checkReissue(store.db, bare!.id, ann)).to.deep.include({ ok: false, code: 'no_escrow' });
      expect(await checkReissue(store.db, 'f'.repeat(32), ann)).to.deep.equal({ ok: false, code: 'unknown' });
      const { p } = await setup(ann);
      const { seen, deliver } = delivery();
      const out = await reissuePassword(store, {
        pickupId: p.id,
        userId: ann,
        signInPassword: PW,
        actor: 'ann@clinic.example',
        deliver: async (row, password) => {
          await revokePickup(store, p.id, 'admin@clinic.example');
          return deliver(row, password);
        },
      });
      expect(out).to.deep.equal({ ok: false, code: 'gone' });
      expect(seen.discarded).to.equal(1);
      expect(seen.enqueued).to.equal(0);
    });
  });
});
