// `phi-gateway keys …` as an operator runs it: a real process on a real data directory.
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ROOT, removeDir, tempDir } from '../support/gateway.js';
import { makeKey } from '../support/pgp.js';

function run(dataDir: string, args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/phi-gateway.js'), ...args], {
    env: { ...process.env, PHIGW_DATA_DIR: dataDir, PHIGW_CONFIG: '' },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('phi-gateway keys', function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(() => removeDir(dir));

  it('imports a file with two keys and an expired one, lists, and removes', async () => {
    const a = await makeKey('ann@partner.example', { expiresIn: 365 * 24 * 3600 });
    const b = await makeKey('ben@partner.example');
    const old = await makeKey('old@partner.example', {
      date: new Date(Date.now() - 3 * 86400_000),
      expiresIn: 3600,
    });
    const file = path.join(dir, 'partners.asc');
    await writeFile(file, [a.publicArmored, old.publicArmored, b.privateArmored].join('\n'));

    const imp = run(dir, ['keys', 'import', file]);
    expect(imp.code, imp.err).to.equal(0);
    const lines = imp.out.trim().split('\n');
    expect(lines).to.have.length(3);
    expect(lines).to.include(`imported ${b.fingerprint} ben@partner.example expires never`);
    expect(lines.find((l) => l.includes(a.fingerprint))).to.match(
      new RegExp(`^imported ${a.fingerprint} ann@partner.example expires \\d{4}-\\d\\d-\\d\\d$`),
    );
    expect(lines).to.include(
      `rejected ${old.fingerprint}: expired on ${new Date(Date.now() - 3 * 86400_000 + 3600_000).toISOString().slice(0, 10)}`,
    );

    const list = run(dir, ['keys', 'list']);
    expect(list.code).to.equal(0);
    expect(list.out).to.contain('2 key(s)');
    expect(list.out).to.match(
      new RegExp(
        `${a.fingerprint}\\s+valid\\s+\\d{4}-\\d\\d-\\d\\d\\s+import:partners\\.asc\\s+ann@partner\\.example`,
      ),
    );
    expect(list.out).to.match(
      new RegExp(`${b.fingerprint}\\s+valid\\s+never\\s+import:partners\\.asc\\s+ben@partner\\.example`),
    );
    const json = run(dir, ['keys', 'list', '--json'])
      .out.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(json).to.have.length(2);
    expect(json.find((k) => k.fingerprint === b.fingerprint)).to.include({
      expires: null,
      revoked: false,
      canEncrypt: true,
      status: 'valid',
      source: 'import:partners.asc',
    });

    const spaced = a.fingerprint.toLowerCase().replace(/(.{4})(?!$)/g, '$1 ');
    const rm = run(dir, ['keys', 'remove', spaced]);
    expect(rm.code, rm.err).to.equal(0);
    expect(rm.out).to.contain(`removed ${a.fingerprint}`);
    const again = run(dir, ['keys', 'remove', a.fingerprint]);
    expect(again.code).to.equal(1);
    expect(again.err).to.contain('no key with fingerprint');
    expect(run(dir, ['keys', 'list']).out).to.contain('1 key(s)');
  });

  it('exits 1 when nothing is imported, and 2 on a usage error', async () => {
    const old = await makeKey('old@partner.example', {
      date: new Date(Date.now() - 3 * 86400_000),
      expiresIn: 3600,
    });
    const file = path.join(dir, 'old.asc');
    await writeFile(file, old.publicArmored);
    const r = run(dir, ['keys', 'import', file]);
    expect(r.code).to.equal(1);
    expect(r.out).to.match(/^rejected [0-9A-F]{40}: expired on /);
    const missing = run(dir, ['keys', 'import', path.join(dir, 'nope.asc')]);
    expect(missing.code).to.equal(1);
    expect(missing.err).to.contain('ENOENT');
    expect(run(dir, ['keys']).code).to.equal(2);
    expect(run(dir, ['keys', 'import']).code).to.equal(2);
  });

  it('prints the organisation public key, the same every time, never the private one', () => {
    const first = run(dir, ['keys', 'org']);
    expect(first.code, first.err).to.equal(0);
    expect(first.out).to.match(
      /^-----BEGIN PGP PUBLIC KEY BLOCK-----\n[\s\S]+-----END PGP PUBLIC KEY BLOCK-----\n$/,
    );
    expect(first.out).not.to.contain('PRIVATE');
    expect(run(dir, ['keys', 'org']).out).to.equal(first.out);
  });
});
