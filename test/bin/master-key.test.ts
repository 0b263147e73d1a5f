// `phi-gateway master-key …` as an operator runs it: ids and counts printed, never a key; the steps in order.
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../config/load.js';
import { Store } from '../../store/store.js';
import { ROOT, removeDir, tempDir } from '../support/gateway.js';

function run(dataDir: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/phi-gateway.js'), ...args], {
    env: { ...process.env, PHIGW_DATA_DIR: dataDir, PHIGW_CONFIG: '', PHIGW_MASTER_KEY: '', ...env },
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('phi-gateway master-key (CLI)', function () {
  this.timeout(60000);
  let dir: string;
  before(async () => {
    dir = await tempDir();
    const store = await Store.open(loadConfig({ PHIGW_DATA_DIR: dir }), {});
    await store.seal('spool', 'M1', Buffer.from('old mail'));
    await store.close();
  });
  after(() => removeDir(dir));

  it('rotate → rewrap → retire, printing ids and counts only', async () => {
    const oldHex = (await readFile(path.join(dir, 'master.key'), 'utf8')).trim();
    const rotate = run(dir, ['master-key', 'rotate']);
    expect(rotate.code, rotate.err).to.equal(0);
    expect(rotate.out).to.match(/new master key [0-9a-f]{12}; [0-9a-f]{12} retired/);
    expect(rotate.out).to.contain('reload the gateway');
    const newHex = (await readFile(path.join(dir, 'master.key'), 'utf8')).trim();
    const status = run(dir, ['master-key', 'status']);
    expect(status.out).to.match(
      /current: [0-9a-f]{12}\nretired: [0-9a-f]{12}\nitems under retired keys: 1\n/,
    );
    const early = run(dir, ['master-key', 'retire']);
    expect(early.code).to.equal(1);
    expect(early.err).to.contain('[MASTER_KEY_IN_USE]');
    const rewrap = run(dir, ['master-key', 'rewrap']);
    expect(rewrap.code, rewrap.err).to.equal(0);
    expect(rewrap.out).to.contain('re-sealed 1 files');
    const retire = run(dir, ['master-key', 'retire']);
    expect(retire.code, retire.err).to.equal(0);
    expect(retire.out).to.match(/deleted retired keys: \S+/);
    for (const r of [rotate, status, early, rewrap, retire]) {
      expect(r.out + r.err).not.to.contain(oldHex);
      expect(r.out + r.err).not.to.contain(newHex);
    }
    const store = await Store.open(loadConfig({ PHIGW_DATA_DIR: dir }), {});
    try {
      expect((await store.unseal('spool', 'M1')).toString()).to.equal('old mail');
    } finally {
      await store.close();
    }
  });

  it('usage error exits 2', () => {
    expect(run(dir, ['master-key', 'frob']).code).to.equal(2);
  });
});
