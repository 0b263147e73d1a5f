// The organisation key: made once, the same on every later start (also when two starts race), and never
// readable on disk.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { loadOrgKey } from '../../store/org-key.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { openStore } from '../support/pgp.js';

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await allFiles(p)));
    else out.push(p);
  }
  return out;
}

describe('organisation key', function () {
  this.timeout(30000);
  let dir: string;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(() => removeDir(dir));

  it('is generated once and reloaded identical; the private key is never on disk in clear', async () => {
    const opts = { practiceName: 'Smile Dental', hostname: 'gw.clinic.example' };
    let store = await openStore(dir);
    const first = await loadOrgKey(store, opts);
    expect(first.fingerprint).to.match(/^[0-9A-F]{40}$/);
    expect(first.privateKey.isDecrypted()).to.equal(true);
    expect(first.publicArmored).to.contain('PUBLIC KEY BLOCK');
    expect(first.publicKey.users[0]!.userID!.userID).to.equal('Smile Dental <postmaster@gw.clinic.example>');
    expect((await loadOrgKey(store, opts)).fingerprint).to.equal(first.fingerprint);
    await store.close();

    store = await openStore(dir);
    const again = await loadOrgKey(store, { practiceName: 'Renamed', hostname: 'other.example' });
    expect(again.fingerprint).to.equal(first.fingerprint);
    expect(again.publicArmored).to.equal(first.publicArmored);
    expect(again.privateKey.armor()).to.equal(first.privateKey.armor());
    await store.close();

    // Every byte in the data directory: no armoured private key, and no line of its base64 body.
    const secretLines = first.privateKey
      .armor()
      .split('\n')
      .filter((l) => /^[A-Za-z0-9+/]{60,}$/.test(l));
    expect(secretLines.length).to.be.greaterThan(2);
    const files = await allFiles(dir);
    expect(files.some((f) => f.includes(`${path.sep}blobs${path.sep}org-pgp-key-`))).to.equal(true);
    for (const f of files) {
      const data = (await readFile(f)).toString('latin1');
      expect(data, f).not.to.contain('PRIVATE KEY BLOCK');
      for (const l of secretLines) expect(data.includes(l), f).to.equal(false);
    }
  });

  it('gives every racer the same key when two stores start at once on a fresh data directory', async () => {
    const a = await openStore(dir);
    const b = await openStore(dir);
    try {
      const opts = { practiceName: 'P', hostname: 'gw.clinic.example' };
      const keys = await Promise.all([
        loadOrgKey(a, opts),
        loadOrgKey(b, opts),
        loadOrgKey(a, opts),
        loadOrgKey(b, opts),
      ]);
      expect(new Set(keys.map((k) => k.fingerprint)).size).to.equal(1);
      const blobs = (await readdir(path.join(dir, 'blobs'))).filter((n) => n.startsWith('org-pgp-key-'));
      expect(blobs).to.have.length(1); // the loser's blob was removed
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('makes a usable address from a host name without a domain', async () => {
    const store = await openStore(dir);
    try {
      const k = await loadOrgKey(store, { practiceName: 'P', hostname: 'Frontdesk-PC' });
      expect(k.publicKey.users[0]!.userID!.email).to.equal('postmaster@frontdesk-pc.invalid');
    } finally {
      await store.close();
    }
  });
});
