// deploy/phi-gateway.service: the hardening an operator relies on (non-root, read-only system, one writable
// state dir, no capabilities, reload = SIGHUP), checked by parsing it and, where present, by systemd-analyze.
import { execFile } from 'node:child_process';
import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { ROOT, removeDir, tempDir } from '../support/gateway.js';

const run = promisify(execFile);
const UNIT = path.join(ROOT, 'deploy/phi-gateway.service');

function parseUnit(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    const key = `${section}.${line.slice(0, eq)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

async function analyze(args: string[]): Promise<{ code: number; out: string }> {
  return run('systemd-analyze', args, { maxBuffer: 1 << 22 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof e.code === 'number' ? e.code : 1,
      out: (e.stdout ?? '') + (e.stderr ?? ''),
    }),
  );
}

describe('systemd unit (deploy/phi-gateway.service)', function () {
  this.timeout(30000);
  let text: string;
  let unit: Map<string, string[]>;
  const one = (key: string) => unit.get(`Service.${key}`)?.at(-1);
  before(async () => {
    text = await readFile(UNIT, 'utf8');
    unit = parseUnit(text);
  });

  const required: Array<[string, string]> = [
    ['ProtectSystem', 'strict'],
    ['ReadWritePaths', '/var/lib/phi-gateway'],
    ['StateDirectory', 'phi-gateway'],
    ['NoNewPrivileges', 'yes'],
    ['PrivateTmp', 'yes'],
    ['PrivateDevices', 'yes'],
    ['ProtectHome', 'yes'],
    ['CapabilityBoundingSet', ''],
    ['AmbientCapabilities', ''],
    ['RestrictSUIDSGID', 'yes'],
    ['UMask', '0077'],
    ['ExecReload', '/bin/kill -HUP $MAINPID'],
    ['KillSignal', 'SIGTERM'],
  ];
  for (const [key, value] of required)
    it(`sets ${key}=${value}`, () => expect(one(key), key).to.equal(value));

  it('runs as a dedicated non-root user, with the data dir it may write to', () => {
    const user = one('User') ?? '';
    expect(user).to.not.equal('');
    expect(['root', '0']).not.to.include(user);
    const env = unit.get('Service.Environment') ?? [];
    expect(env).to.include('PHIGW_DATA_DIR=/var/lib/phi-gateway');
    expect(one('ExecStart')).to.match(/\/bin\/phi-gateway\.js start$/);
  });

  it('carries no secret and keeps V8 working (no MemoryDenyWriteExecute)', () => {
    expect(text).not.to.match(
      /^\s*Environment=.*(PHIGW_MASTER_KEY|PASSPHRASE|PASSWORD|smtps?:\/\/[^ ]*:[^ ]*@)/m,
    );
    expect(one('MemoryDenyWriteExecute')).to.equal(undefined);
    expect(one('EnvironmentFile')).to.match(/^-\/etc\/phi-gateway\//);
  });

  describe('systemd-analyze', () => {
    let have = false;
    let dir: string;
    let copy: string;
    before(async () => {
      have = await access('/usr/bin/systemd-analyze').then(
        () => true,
        () => false,
      );
      dir = await tempDir('phigw-unit-');
      // verify checks that ExecStart's binary exists: point it at the node running this test.
      copy = path.join(dir, 'phi-gateway.service');
      await writeFile(copy, text.replace(/\/usr\/bin\/node/g, process.execPath));
    });
    after(() => removeDir(dir));

    it('verify: no warning at all (a value it cannot parse is only a warning, so any output fails)', async function () {
      if (!have) {
        // Parsing above is the check then; say so rather than pretend.
        expect(unit.size).to.be.greaterThan(20);
        return;
      }
      const r = await analyze(['verify', copy]);
      expect(r.code, r.out).to.equal(0);
      expect(r.out.trim(), r.out).to.equal('');
      // The check can fail: a bad value is reported.
      const bad = path.join(dir, 'bad.service');
      await writeFile(
        bad,
        (await readFile(copy, 'utf8')).replace('ProtectSystem=strict', 'ProtectSystem=sometimes'),
      );
      expect((await analyze(['verify', bad])).out).to.contain('protect system');
    });

    it('security --offline: exposure level at most 2.0 ("OK")', async () => {
      if (!have) {
        expect(one('ProtectSystem')).to.equal('strict');
        return;
      }
      const r = await analyze(['security', '--offline=yes', copy]);
      const m = /Overall exposure level for [^:]+: ([\d.]+)/.exec(r.out);
      expect(m, r.out).to.not.equal(null);
      expect(Number(m![1])).to.be.at.most(2.0);
    });
  });
});
