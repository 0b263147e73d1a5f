// Master key rotation without downtime, on real stores sharing one data dir (the running gateway and the
// CLI): old data opens throughout, new data uses the new key, re-wrap moves everything, retire refuses early.
import { expect } from 'chai';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../../config/errors.js';
import { loadMasterKeys, masterKeyId, rotateMasterKey, RETIRED_KEYS_DIR } from '../../store/master-key.js';
import { countUnderOldKeys, retireOldKeys, rewrapAll } from '../../store/rewrap.js';
import { openSealedBuffer } from '../../store/sealed-file.js';
import { Store } from '../../store/store.js';
import { removeDir, tempDir } from '../support/gateway.js';

const open = (dir: string) => Store.open({ dataDir: dir, databaseUrl: undefined }, {});

describe('master key rotation', function () {
  this.timeout(30000);
  let dir: string;
  let running: Store; // the gateway, started before the rotation
  let oldKey: Buffer;
  before(async () => {
    dir = await tempDir('phigw-rotate-');
    running = await open(dir);
    await running.seal('spool', 'S1', Buffer.from('spooled before rotation'));
    // A small spooled message: its sealed copy lives in the database (sealed_inline), not in a file.
    const inline = await running.sealForRow('spool', 'S2', Buffer.from('small, in the database'));
    expect(inline.inline).to.be.instanceOf(Buffer);
    await running.write((trx) => running.commitSealed(trx, 'spool', 'S2', inline), { durable: true });
    await running.seal('blobs', 'B1', Buffer.from('blob before rotation'));
    // A small blob the act stage built (PGP message, notice): in the database too.
    const inlineBlob = await running.sealForRow('blobs', 'B3', Buffer.from('small blob, in the database'));
    expect(inlineBlob.inline).to.be.instanceOf(Buffer);
    await running.write((trx) => running.commitSealed(trx, 'blobs', 'B3', inlineBlob), { durable: true });
    await running.seal('outbox', 'O1', Buffer.from('outbox before rotation'));
    await running.db('users').insert({
      email: 'admin@clinic.example',
      role: 'admin',
      password_hash: 'x',
      created_at: Date.now(),
      totp_secret: running.encryptValue('totp:1', Buffer.from('TOTPSEED')),
    });
  });
  after(async () => {
    await running.close();
    await removeDir(dir);
  });

  it('rotate: a new current key, the old one kept (0600) in master-keys/', async () => {
    oldKey = (await loadMasterKeys(dir, {}))[0]!;
    const r = await rotateMasterKey(dir, {});
    expect(r.retired).to.equal(masterKeyId(oldKey));
    const keys = await loadMasterKeys(dir, {});
    expect(keys).to.have.length(2);
    expect(keys[1]!.equals(oldKey)).to.equal(true);
    expect(masterKeyId(keys[0]!)).to.equal(r.current);
    const retired = await readdir(path.join(dir, RETIRED_KEYS_DIR));
    expect(retired).to.have.length(1);
    expect(retired[0]).to.match(new RegExp(`-${r.retired}\\.key$`));
    expect((await stat(path.join(dir, RETIRED_KEYS_DIR, retired[0]!))).mode & 0o077).to.equal(0);
    expect((await stat(path.join(dir, 'master.key'))).mode & 0o077).to.equal(0);
  });

  it('refuses to rotate a key that comes from PHIGW_MASTER_KEY', async () => {
    const err = await rotateMasterKey(dir, { PHIGW_MASTER_KEY: 'a'.repeat(64) }).catch((e: unknown) => e);
    expect((err as Error).message).to.match(/PHIGW_MASTER_KEY/);
  });

  it('during the rotation both sides read everything: old files, and files sealed by the other side', async () => {
    const cli = await open(dir);
    try {
      expect(cli.masterKeyCount).to.equal(2);
      expect((await cli.unseal('spool', 'S1')).toString()).to.equal('spooled before rotation');
      await cli.seal('blobs', 'B2', Buffer.from('sealed under the new key'));
      // The running gateway has never seen the new key: it learns it when a file needs it.
      expect(running.masterKeyCount).to.equal(1);
      expect((await running.unseal('blobs', 'B2')).toString()).to.equal('sealed under the new key');
      expect(running.masterKeyCount).to.equal(2);
      expect(
        cli
          .decryptValue('totp:1', ((await cli.db('users').first()) as { totp_secret: string }).totp_secret)
          .toString(),
      ).to.equal('TOTPSEED');
    } finally {
      await cli.close();
    }
  });

  it('retire refuses while anything is under the old key, and says how many', async () => {
    expect(await countUnderOldKeys(running)).to.equal(6); // S1, S2, B1, B3, O1 and the TOTP seed
    const err = await retireOldKeys(running).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(GatewayError);
    expect((err as GatewayError).code).to.equal('MASTER_KEY_IN_USE');
    expect((err as Error).message).to.match(/^6 item/);
    expect(await readdir(path.join(dir, RETIRED_KEYS_DIR))).to.have.length(1);
  });

  it('rewrap re-seals everything under the current key only; contents unchanged; repeatable', async () => {
    const cli = await open(dir);
    try {
      const r = await rewrapAll(cli);
      expect(r).to.deep.include({ files: 5, values: 1 });
      expect(await rewrapAll(cli)).to.deep.include({ files: 0, values: 0 });
      const [current] = await loadMasterKeys(dir, {});
      for (const [area, id, text] of [
        ['spool', 'S1', 'spooled before rotation'],
        ['blobs', 'B1', 'blob before rotation'],
        ['outbox', 'O1', 'outbox before rotation'],
      ] as const) {
        const raw = await readFile(path.join(dir, area, id));
        expect(openSealedBuffer(raw, id, current!).toString(), id).to.equal(text);
        expect(() => openSealedBuffer(raw, id, oldKey), `${id} under the old key`).to.throw(GatewayError);
      }
      const [row] = (await cli
        .db('sealed_inline')
        .where({ area: 'spool', id: 'S2' })
        .select('data')) as Array<{
        data: Buffer;
      }>;
      expect(openSealedBuffer(Buffer.from(row!.data), 'S2', current!).toString()).to.equal(
        'small, in the database',
      );
      expect(() => openSealedBuffer(Buffer.from(row!.data), 'S2', oldKey)).to.throw(GatewayError);
      expect(await countUnderOldKeys(cli)).to.equal(0);
    } finally {
      await cli.close();
    }
  });

  it('retire deletes the old key; everything still opens, in the running store and a fresh one', async () => {
    await running.reloadKeys(); // SIGHUP
    const ids = await retireOldKeys(running);
    expect(ids).to.have.length(1);
    expect(await readdir(path.join(dir, RETIRED_KEYS_DIR))).to.deep.equal([]);
    const fresh = await open(dir);
    try {
      for (const s of [running, fresh]) {
        expect(s.masterKeyCount).to.equal(1);
        expect((await s.unseal('spool', 'S1')).toString()).to.equal('spooled before rotation');
        expect((await s.unseal('spool', 'S2')).toString()).to.equal('small, in the database');
        expect((await s.unseal('blobs', 'B3')).toString()).to.equal('small blob, in the database');
        expect((await s.unseal('blobs', 'B2')).toString()).to.equal('sealed under the new key');
        const row = (await s.db('users').first()) as { totp_secret: string };
        expect(s.decryptValue('totp:1', row.totp_secret).toString()).to.equal('TOTPSEED');
      }
    } finally {
      await fresh.close();
    }
  });
});
