// `phi-gateway backup` / `restore` as an operator runs them: real processes, passphrase from stdin or the
// environment (never echoed), exit codes, and a restored directory that opens as a store.
import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../config/load.js';
import { addUser, authenticate } from '../../store/users.js';
import { Store } from '../../store/store.js';
import { ROOT, removeDir, tempDir } from '../support/gateway.js';

const PASS = 'an operator passphrase 4417';

function run(dataDir: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/phi-gateway.js'), ...args], {
    env: {
      ...process.env,
      PHIGW_DATA_DIR: dataDir,
      PHIGW_CONFIG: '',
      PHIGW_BACKUP_PASSPHRASE: '',
      ...opts.env,
    },
    input: opts.input ?? '',
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('phi-gateway backup / restore (CLI)', function () {
  this.timeout(60000);
  let src: string;
  let work: string;
  before(async () => {
    src = await tempDir();
    work = await tempDir();
    const store = await Store.open(loadConfig({ PHIGW_DATA_DIR: src }), {});
    await addUser(store.db, 'nurse@clinic.example', 'staff', 'a long enough password');
    await store.close();
  });
  after(async () => {
    await removeDir(src);
    await removeDir(work);
  });

  it('refuses to run without a passphrase (exit 2), writing nothing', async () => {
    const r = run(src, ['backup', path.join(work, 'none.bin')]);
    expect(r.code).to.equal(2);
    expect(r.err).to.contain('a backup passphrase is required');
    expect(await readdir(work)).to.deep.equal([]);
  });

  it('backs up with the passphrase on stdin and never prints it', () => {
    const r = run(src, ['backup', path.join(work, 'b.bin')], { input: `${PASS}\n` });
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/backup written: .*b\.bin \(\d+ files/);
    expect(r.out + r.err).not.to.contain(PASS);
  });

  it('a wrong passphrase exits 1 with a clear message, and the target is not created', async () => {
    const target = path.join(work, 'wrong');
    const r = run(target, ['restore', path.join(work, 'b.bin')], {
      env: { PHIGW_BACKUP_PASSPHRASE: 'wrong wrong wrong' },
    });
    expect(r.code).to.equal(1);
    expect(r.err).to.contain('wrong backup passphrase');
    expect(r.err).to.contain('[BACKUP_PASSPHRASE]');
    expect(r.err).not.to.contain('wrong wrong wrong');
    expect(await readdir(work)).not.to.include('wrong');
  });

  it('restores with the passphrase from PHIGW_BACKUP_PASSPHRASE into a store that works', async () => {
    const target = path.join(work, 'restored');
    const r = run(target, ['restore', path.join(work, 'b.bin')], { env: { PHIGW_BACKUP_PASSPHRASE: PASS } });
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.contain('restored');
    const store = await Store.open(loadConfig({ PHIGW_DATA_DIR: target }), {});
    try {
      expect(await authenticate(store.db, 'nurse@clinic.example', 'a long enough password')).to.not.equal(
        null,
      );
    } finally {
      await store.close();
    }
  });

  it('refuses a non-empty data directory without --force (exit 1), restores with it', () => {
    const again = run(path.join(work, 'restored'), ['restore', path.join(work, 'b.bin')], {
      env: { PHIGW_BACKUP_PASSPHRASE: PASS },
    });
    expect(again.code).to.equal(1);
    expect(again.err).to.contain('not empty');
    const forced = run(path.join(work, 'restored'), ['restore', '--force', path.join(work, 'b.bin')], {
      env: { PHIGW_BACKUP_PASSPHRASE: PASS },
    });
    expect(forced.code, forced.err).to.equal(0);
  });

  it('usage errors exit 2', () => {
    expect(run(src, ['backup']).code).to.equal(2);
    expect(run(src, ['restore', 'a', 'b']).code).to.equal(2);
    expect(run(src, ['backup', '--force', 'x']).code).to.equal(2);
  });
});
