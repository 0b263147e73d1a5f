// The recipient keyring: which key is used for which address, and when a key must not be used.
// Real SQLite in a temp dir, keys made with openpgp, WKD against a local HTTPS server with its own CA.
import { createServer, type Server } from 'node:https';
import type { LookupFunction } from 'node:net';
import { expect } from 'chai';
import * as openpgp from 'openpgp';
import { generate } from 'selfsigned';
import { httpsFetch, Keyring, wkdUrls } from '../../store/pgp-keyring.js';
import type { Store } from '../../store/store.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { makeKey, openStore } from '../support/pgp.js';

const HOUR = 3600 * 1000;
const noWkd = { wkdDomains: [], wkdTimeout: 2000, wkdCacheTtl: 24 * HOUR };

describe('pgp keyring', function () {
  this.timeout(30000);
  let dir: string;
  let store: Store;
  let keyring: Keyring;
  beforeEach(async () => {
    dir = await tempDir();
    store = await openStore(dir);
    keyring = new Keyring(store, noWkd);
  });
  afterEach(async () => {
    await store.close();
    await removeDir(dir);
  });

  it('uses a valid key for its address, in any case, and not for another address', async () => {
    const alice = await makeKey('Alice@Partner.Example');
    const r = await keyring.importArmored(alice.publicArmored, 'api');
    expect(r.rejected).to.deep.equal([]);
    expect(r.imported).to.have.length(1);
    expect(r.imported[0]).to.include({
      fingerprint: alice.fingerprint,
      revoked: false,
      canEncrypt: true,
      source: 'api',
    });
    expect(r.imported[0]!.emails).to.deep.equal(['alice@partner.example']);
    const cases: Array<[string, boolean]> = [
      ['alice@partner.example', true],
      ['ALICE@PARTNER.EXAMPLE', true],
      [' Alice@Partner.Example ', true],
      ['bob@partner.example', false], // other address, same domain
      ['alice@partner.example.evil', false],
      ['alice@other.example', false],
      ['partner.example', false],
    ];
    for (const [addr, used] of cases) {
      const k = await keyring.keyFor(addr);
      expect(k?.fingerprint ?? null, addr).to.equal(used ? alice.fingerprint : null);
    }
  });

  it('does not use an expired, revoked, sign-only or mismatched key', async () => {
    const expiring = await makeKey('exp@partner.example', { expiresIn: 3600 });
    const old = await makeKey('old@partner.example', {
      date: new Date(Date.now() - 48 * HOUR),
      expiresIn: 3600,
    });
    const signOnly = await makeKey('sign@partner.example', { signOnly: true });
    const mismatch = await makeKey('someone-else@partner.example');
    const good = await makeKey('good@partner.example');
    // Taken after the keys are made: a key's creation time is whole seconds, and a key made in the second after
    // `now` would not be valid yet at `now`.
    const now = new Date();
    const file = [expiring, old, signOnly, mismatch, good].map((k) => k.publicArmored).join('\n');
    const r = await keyring.importArmored(file, 'import:partners.asc', now);
    expect(r.imported.map((k) => k.fingerprint)).to.have.members([
      expiring.fingerprint,
      mismatch.fingerprint,
      good.fingerprint,
    ]);
    const reasons = new Map(r.rejected.map((x) => [x.fingerprint, x.reason]));
    expect(reasons.get(old.fingerprint)).to.match(/^expired on \d{4}-\d\d-\d\d$/);
    expect(reasons.get(signOnly.fingerprint)).to.match(/no usable encryption key/);

    const table: Array<[string, Date, string | null]> = [
      ['good@partner.example', now, good.fingerprint],
      ['exp@partner.example', now, expiring.fingerprint],
      ['exp@partner.example', new Date(now.getTime() + 2 * HOUR), null], // expired since
      ['good@partner.example', new Date(now.getTime() - 2 * HOUR), null], // not yet created
      ['old@partner.example', now, null],
      ['sign@partner.example', now, null],
      ['mismatch@partner.example', now, null], // the key's user ID names someone else
    ];
    for (const [addr, at, fpr] of table) {
      const k = await keyring.keyFor(addr, at);
      expect(k?.fingerprint ?? null, `${addr} at ${at.toISOString()}`).to.equal(fpr);
    }
  });

  it('makes a key unusable when its revocation is imported, and records it', async () => {
    const carol = await makeKey('carol@partner.example', { tag: 'revoke' });
    await keyring.importArmored(carol.publicArmored, 'import:carol.asc');
    expect((await keyring.keyFor('carol@partner.example'))?.fingerprint).to.equal(carol.fingerprint);
    const { publicKey: revoked } = await openpgp.revokeKey({ key: carol.privateKey, format: 'armored' });
    const r = await keyring.importArmored(revoked, 'import:carol-revoked.asc');
    expect(r.imported).to.have.length(1);
    expect(r.imported[0]!.revoked).to.equal(true);
    expect(await keyring.keyFor('carol@partner.example')).to.equal(null);
    // Importing the old, unrevoked copy again must not undo the revocation (keys are merged).
    await keyring.importArmored(carol.publicArmored, 'import:carol.asc');
    expect(await keyring.keyFor('carol@partner.example')).to.equal(null);
    const [info] = await keyring.list();
    // The source is where the key last came from.
    expect(info).to.include({ fingerprint: carol.fingerprint, revoked: true, source: 'import:carol.asc' });
    // A new revoked key is refused outright.
    const dave = await makeKey('dave@partner.example', { tag: 'revoke' });
    const { publicKey: daveRevoked } = await openpgp.revokeKey({ key: dave.privateKey, format: 'armored' });
    expect((await keyring.importArmored(daveRevoked, 'api')).rejected[0]?.reason).to.equal('revoked');
  });

  it('imports several keys from one armour block and from several blocks', async () => {
    const a = await makeKey('a@multi.example');
    const b = await makeKey('b@multi.example');
    const c = await makeKey('c@multi.example');
    // One block holding two keys, as `gpg --export --armor a b` writes it.
    const binary = new Uint8Array([
      ...(await openpgp.readKey({ armoredKey: a.publicArmored })).write(),
      ...(await openpgp.readKey({ armoredKey: b.publicArmored })).write(),
    ]);
    const oneBlock = openpgp.armor(openpgp.enums.armor.publicKey, binary);
    const r1 = await keyring.importArmored(oneBlock, 'api');
    expect(r1.imported.map((k) => k.emails[0])).to.deep.equal(['a@multi.example', 'b@multi.example']);
    const r2 = await keyring.importArmored(
      `some text\n${c.publicArmored}\nmore text\n${a.publicArmored}`,
      'api',
    );
    expect(r2.imported.map((k) => k.emails[0])).to.deep.equal(['c@multi.example', 'a@multi.example']);
    expect(await keyring.list()).to.have.length(3);
    const none = await keyring.importArmored('no key here', 'api');
    expect(none.imported).to.deep.equal([]);
    expect(none.rejected[0]!.reason).to.match(/no ASCII-armoured/);
  });

  it('keeps only the public part of a secret key', async () => {
    const e = await makeKey('secret@partner.example');
    const r = await keyring.importArmored(e.privateArmored, 'api');
    expect(r.imported).to.have.length(1);
    const row = (await store.db('pgp_keys').first('armored')) as { armored: string };
    expect(row.armored).to.contain('PUBLIC KEY BLOCK');
    expect(row.armored).not.to.contain('PRIVATE');
    const key = await openpgp.readKey({ armoredKey: row.armored });
    expect(key.isPrivate()).to.equal(false);
    const k = await keyring.keyFor('secret@partner.example');
    expect(k?.key.isPrivate()).to.equal(false);
  });

  it('removes a key by fingerprint with spaces and any case; unknown gives false', async () => {
    const f = await makeKey('f@partner.example');
    await keyring.importArmored(f.publicArmored, 'api');
    const spaced = f.fingerprint.toLowerCase().replace(/(.{4})/g, '$1 ');
    expect(await keyring.remove(spaced)).to.equal(true);
    expect(await keyring.remove(f.fingerprint)).to.equal(false);
    expect(await keyring.remove('not a fingerprint')).to.equal(false);
    expect(await keyring.keyFor('f@partner.example')).to.equal(null);
    expect(await keyring.list()).to.deep.equal([]);
    const emails = (await store.db('pgp_key_emails').count({ n: '*' })) as Array<{ n: number }>;
    expect(Number(emails[0]!.n)).to.equal(0);
  });

  it('chooses the newest valid key and parses each key once', async () => {
    const older = await makeKey('g@partner.example', {
      date: new Date(Date.now() - 10 * HOUR),
      tag: 'older',
    });
    const newer = await makeKey('g@partner.example', { tag: 'newer' });
    await keyring.importArmored(newer.publicArmored + older.publicArmored, 'api');
    const k1 = await keyring.keyFor('g@partner.example');
    const k2 = await keyring.keyFor('g@partner.example');
    expect(k1?.fingerprint).to.equal(newer.fingerprint);
    expect(k2?.key).to.equal(k1?.key); // the same parsed object: no re-parse on the hot path
    // Before the newer key existed, the older one is the only valid one.
    const before = await keyring.keyFor('g@partner.example', new Date(Date.now() - 5 * HOUR));
    expect(before?.fingerprint).to.equal(older.fingerprint);
  });

  it('sees a removal made by another keyring on the same store at once (no stale cache)', async () => {
    const h = await makeKey('h@partner.example');
    await keyring.importArmored(h.publicArmored, 'api');
    expect((await keyring.keyFor('h@partner.example'))?.fingerprint).to.equal(h.fingerprint);
    const other = new Keyring(store, noWkd);
    expect(await other.remove(h.fingerprint)).to.equal(true);
    expect(await keyring.keyFor('h@partner.example')).to.equal(null);
  });

  it('makes WKD URLs as the draft says (z-base-32 of SHA-1 of the lowercased local part)', () => {
    const [advanced, direct] = wkdUrls('Joe.Doe@Example.ORG');
    expect(advanced.href).to.equal(
      'https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe',
    );
    expect(direct.href).to.equal(
      'https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe',
    );
  });

  describe('Web Key Directory', () => {
    let server: Server;
    let port: number;
    let ca: string;
    const requests: string[] = [];
    const served = new Map<string, Uint8Array>(); // host + path → key bytes

    before(async () => {
      const pems = await generate([{ name: 'commonName', value: 'wkd test' }], {
        keySize: 2048,
        algorithm: 'sha256',
        extensions: [
          {
            name: 'subjectAltName',
            altNames: [
              { type: 2, value: 'wkd.example' },
              { type: 2, value: 'openpgpkey.wkd.example' },
              { type: 2, value: 'direct.example' },
              { type: 2, value: 'openpgpkey.direct.example' },
              { type: 2, value: 'off.example' },
              { type: 2, value: 'openpgpkey.off.example' },
            ],
          },
        ],
      });
      ca = pems.cert;
      server = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
        const id = `${req.headers.host?.replace(/:\d+$/, '')}${req.url?.replace(/\?.*$/, '')}`;
        requests.push(id);
        const body = served.get(id);
        if (!body) {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(body));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as { port: number }).port;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));
    beforeEach(() => (requests.length = 0));

    // Every name resolves to the local server; the certificate is still checked against the name.
    const lookup: LookupFunction = (_host, opts, cb) => {
      if ((opts as { all?: boolean }).all)
        (cb as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
          { address: '127.0.0.1', family: 4 },
        ]);
      else cb(null, '127.0.0.1', 4);
    };

    function wkdKeyring(domains: string[], ttl = 24 * HOUR) {
      return new Keyring(
        store,
        { wkdDomains: domains, wkdTimeout: 2000, wkdCacheTtl: ttl },
        { wkdFetch: (url, timeout) => httpsFetch(url, timeout, { ca, lookup, port }) },
      );
    }

    async function serve(url: URL, armored: string) {
      served.set(url.hostname + url.pathname, (await openpgp.readKey({ armoredKey: armored })).write());
    }

    it('finds a key by the advanced method, stores it with its source, and caches the answer', async () => {
      const w = await makeKey('Wanda@wkd.example');
      await serve(wkdUrls('Wanda@wkd.example')[0], w.publicArmored);
      const kr = wkdKeyring(['wkd.example']);
      const k = await kr.keyFor('Wanda@wkd.example');
      expect(k?.fingerprint).to.equal(w.fingerprint);
      expect(k?.source).to.equal('wkd:wkd.example');
      expect(requests).to.have.length(1);
      expect(requests[0]).to.match(/^openpgpkey\.wkd\.example\/\.well-known\/openpgpkey\/wkd\.example\/hu\//);
      expect((await kr.list())[0]).to.include({ fingerprint: w.fingerprint, source: 'wkd:wkd.example' });
      expect((await kr.keyFor('wanda@wkd.example'))?.fingerprint).to.equal(w.fingerprint);
      expect(requests).to.have.length(1);
    });

    it('falls back to the direct method, caches "no key", and asks only configured domains', async () => {
      const d = await makeKey('dora@direct.example');
      await serve(wkdUrls('dora@direct.example')[1], d.publicArmored);
      const kr = wkdKeyring(['direct.example', 'wkd.example']);
      expect((await kr.keyFor('dora@direct.example'))?.fingerprint).to.equal(d.fingerprint);
      expect(requests.map((r) => r.split('/')[0])).to.deep.equal([
        'openpgpkey.direct.example',
        'direct.example',
      ]);

      requests.length = 0;
      expect(await kr.keyFor('nobody@wkd.example')).to.equal(null);
      expect(requests).to.have.length(2);
      expect(await kr.keyFor('nobody@wkd.example')).to.equal(null);
      expect(requests).to.have.length(2); // "no key" remembered

      requests.length = 0;
      const o = await makeKey('otto@off.example');
      await serve(wkdUrls('otto@off.example')[0], o.publicArmored);
      expect(await kr.keyFor('otto@off.example')).to.equal(null);
      expect(requests).to.deep.equal([]); // not a WKD domain: never asked
    });

    it('refuses a WKD key for another address, and a server whose certificate is not trusted', async () => {
      const wrong = await makeKey('mallory@wkd.example');
      await serve(wkdUrls('victim@wkd.example')[0], wrong.publicArmored);
      const kr = wkdKeyring(['wkd.example']);
      expect(await kr.keyFor('victim@wkd.example')).to.equal(null);
      expect(await kr.list()).to.deep.equal([]);

      const v = await makeKey('vera@wkd.example');
      await serve(wkdUrls('vera@wkd.example')[0], v.publicArmored);
      const untrusted = new Keyring(
        store,
        { wkdDomains: ['wkd.example'], wkdTimeout: 2000, wkdCacheTtl: HOUR },
        { wkdFetch: (url, timeout) => httpsFetch(url, timeout, { lookup, port }) },
      );
      requests.length = 0;
      expect(await untrusted.keyFor('vera@wkd.example')).to.equal(null);
      expect(requests).to.deep.equal([]); // TLS failed before any request was made
      await expectRejects(httpsFetch(new URL('http://wkd.example/x'), 1000), /HTTPS only/);
    });
  });
});

async function expectRejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect((err as Error).message).to.match(re);
    return;
  }
  expect.fail('expected a rejection');
}
