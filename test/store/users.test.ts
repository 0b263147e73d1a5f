// Staff and admin accounts on a real SQLite store: password hashing, who may be added, who may log in,
// and the generated passwords handed to new users.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../store/store.js';
import {
  addUser,
  authenticate,
  generatePassword,
  hashPassword,
  verifyPassword,
  type UserRow,
} from '../../store/users.js';

const PASSWORD = 'correct horse battery';

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

describe('store/users', () => {
  describe('hashPassword / verifyPassword', () => {
    let stored: string;
    before(async () => {
      stored = await hashPassword(PASSWORD);
    });

    it('keeps no trace of the password in the hash', () => {
      expect(stored).to.match(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
      expect(stored).not.to.include(PASSWORD);
      expect(stored).not.to.include(Buffer.from(PASSWORD).toString('base64'));
    });

    it('salts: the same password hashes differently twice', async () => {
      expect(await hashPassword(PASSWORD)).not.to.equal(stored);
    });

    const attempts: { name: string; password: string; ok: boolean }[] = [
      { name: 'the right password', password: PASSWORD, ok: true },
      { name: 'a wrong password', password: 'incorrect horse battery', ok: false },
      { name: 'different case', password: PASSWORD.toUpperCase(), ok: false },
      { name: 'a trailing space', password: `${PASSWORD} `, ok: false },
      { name: 'a prefix', password: PASSWORD.slice(0, -1), ok: false },
      { name: 'the empty string', password: '', ok: false },
    ];
    for (const a of attempts) {
      it(`verifies ${a.name} as ${a.ok}`, async () => {
        expect(await verifyPassword(a.password, stored)).to.equal(a.ok);
      });
    }

    const malformed: { name: string; stored: () => string }[] = [
      { name: 'an empty string', stored: () => '' },
      { name: 'another scheme', stored: () => stored.replace(/^scrypt/, 'bcrypt') },
      { name: 'missing fields', stored: () => stored.split('$').slice(0, 4).join('$') },
      { name: 'an empty hash field', stored: () => stored.replace(/\$[^$]+$/, '$') },
      { name: 'the plaintext password itself', stored: () => PASSWORD },
    ];
    for (const m of malformed) {
      it(`refuses the right password against ${m.name}`, async () => {
        expect(await verifyPassword(PASSWORD, m.stored())).to.equal(false);
      });
    }
  });

  describe('with a database', () => {
    let dataDir: string;
    let store: Store;

    beforeEach(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'phigw-users-'));
      store = await Store.open({ dataDir, databaseUrl: undefined }, {});
    });

    afterEach(async () => {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    async function users(): Promise<UserRow[]> {
      return (await store.db('users').select('*').orderBy('id')) as UserRow[];
    }

    describe('addUser', () => {
      it('stores a normalised email, the role and only a hash of the password', async () => {
        await addUser(store.db, '  Alice@Example.ORG ', 'admin', PASSWORD);
        const [alice, ...rest] = await users();
        expect(rest).to.deep.equal([]);
        expect(alice).to.include({ email: 'alice@example.org', role: 'admin' });
        expect(alice!.password_hash).not.to.include(PASSWORD);
        expect(await verifyPassword(PASSWORD, alice!.password_hash)).to.equal(true);
      });

      const emails: { email: string; ok: boolean }[] = [
        { email: 'nurse@clinic.example', ok: true },
        { email: 'first.last+tag@sub.clinic.example', ok: true },
        { email: '', ok: false },
        { email: 'no-at-sign', ok: false },
        { email: 'nurse@localhost', ok: false },
        { email: '@clinic.example', ok: false },
        { email: 'nurse@', ok: false },
        { email: 'two words@clinic.example', ok: false },
        { email: 'a@b@clinic.example', ok: false },
        { email: '<nurse@clinic.example>', ok: false },
        { email: 'nurse@clinic.example, other@clinic.example', ok: false },
        { email: 'nurse@clinic.example;other@x.example', ok: false },
        { email: 'Nurse <nurse@clinic.example>', ok: false },
      ];
      for (const e of emails) {
        it(`${e.ok ? 'accepts' : 'rejects'} the email ${JSON.stringify(e.email)}`, async () => {
          const adding = addUser(store.db, e.email, 'staff', PASSWORD);
          if (e.ok) {
            await adding;
            expect((await users()).map((u) => u.email)).to.deep.equal([e.email.toLowerCase()]);
          } else {
            expect(await rejectionOf(adding)).to.be.instanceOf(Error);
            expect(await users()).to.deep.equal([]);
          }
        });
      }

      const passwords: { name: string; password: string; ok: boolean }[] = [
        { name: 'empty', password: '', ok: false },
        { name: '11 characters', password: 'a'.repeat(11), ok: false },
        { name: '12 characters', password: 'a'.repeat(12), ok: true },
        { name: 'a generated one', password: generatePassword(), ok: true },
      ];
      for (const p of passwords) {
        it(`${p.ok ? 'accepts' : 'rejects'} a password that is ${p.name}`, async () => {
          const adding = addUser(store.db, 'nurse@clinic.example', 'staff', p.password);
          if (p.ok) {
            await adding;
            expect(await users()).to.have.length(1);
          } else {
            expect((await rejectionOf(adding)) as Error)
              .to.have.property('message')
              .that.matches(/12 characters/);
            expect(await users()).to.deep.equal([]);
          }
        });
      }

      const duplicates = [
        'nurse@clinic.example',
        'NURSE@CLINIC.EXAMPLE',
        'Nurse@Clinic.Example',
        ' nurse@clinic.example ',
      ];
      for (const again of duplicates) {
        it(`rejects ${JSON.stringify(again)} when nurse@clinic.example exists`, async () => {
          await addUser(store.db, 'nurse@clinic.example', 'staff', PASSWORD);
          const err = await rejectionOf(addUser(store.db, again, 'admin', 'another password 123'));
          expect((err as Error).message).to.match(/already exists/);
          const [only, ...rest] = await users();
          expect(rest).to.deep.equal([]);
          expect(only).to.include({ email: 'nurse@clinic.example', role: 'staff' });
          expect(await verifyPassword(PASSWORD, only!.password_hash)).to.equal(true);
        });
      }
    });
  });

  describe('authenticate', () => {
    // These tests only read, so they share one database: every user added costs a full scrypt hash.
    let dataDir: string;
    let store: Store;

    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'phigw-users-'));
      store = await Store.open({ dataDir, databaseUrl: undefined }, {});
      await addUser(store.db, 'nurse@clinic.example', 'staff', PASSWORD);
      await addUser(store.db, 'gone@clinic.example', 'staff', PASSWORD);
      await store.db('users').where({ email: 'gone@clinic.example' }).update({ disabled: true });
    });

    after(async () => {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    });

    const logins: { name: string; email: string; password: string; ok: boolean }[] = [
      { name: 'the right password', email: 'nurse@clinic.example', password: PASSWORD, ok: true },
      {
        name: 'the right password, email in another case',
        email: 'Nurse@Clinic.Example',
        password: PASSWORD,
        ok: true,
      },
      { name: 'a wrong password', email: 'nurse@clinic.example', password: 'wrong password here', ok: false },
      { name: 'an empty password', email: 'nurse@clinic.example', password: '', ok: false },
      { name: 'an unknown user', email: 'nobody@clinic.example', password: PASSWORD, ok: false },
      { name: 'an empty user', email: '', password: PASSWORD, ok: false },
      {
        name: 'a disabled user with the right password',
        email: 'gone@clinic.example',
        password: PASSWORD,
        ok: false,
      },
    ];
    for (const l of logins) {
      it(`${l.ok ? 'lets in' : 'refuses'} ${l.name}`, async () => {
        const user = await authenticate(store.db, l.email, l.password);
        if (l.ok) expect(user).to.include({ email: 'nurse@clinic.example', role: 'staff' });
        else expect(user).to.equal(null);
      });
    }
  });

  describe('generatePassword', () => {
    const LOOK_ALIKES = ['0', 'O', '1', 'l', 'I'];
    const samples = Array.from({ length: 500 }, () => generatePassword());

    it('makes 20-character passwords', () => {
      for (const p of samples) expect(p).to.have.length(20);
    });

    it('uses only letters and digits, never the look-alikes 0 O 1 l I', () => {
      for (const p of samples) {
        expect(p).to.match(/^[A-Za-z0-9]+$/);
        for (const c of LOOK_ALIKES) expect(p, p).not.to.include(c);
      }
    });

    it('uses the whole rest of the alphabet', () => {
      const seen = new Set(samples.join(''));
      const expected = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'].filter(
        (c) => !LOOK_ALIKES.includes(c) && c !== 'i' && c !== 'o',
      );
      expect([...seen].sort()).to.deep.equal(expected.sort());
    });

    it('does not repeat itself', () => {
      expect(new Set(samples).size).to.equal(samples.length);
    });
  });
});
