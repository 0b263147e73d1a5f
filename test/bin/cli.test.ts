// The CLI as an operator runs it: a real process, real data directory, exit codes and printed output.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../config/load.js';
import { Store } from '../../store/store.js';
import { appendAudit } from '../../store/audit.js';
import { authenticate } from '../../store/users.js';
import { freePort, ROOT, removeDir, tempDir } from '../support/gateway.js';

function run(dataDir: string, args: string[], input?: string) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/phi-gateway.js'), ...args], {
    env: { ...process.env, PHIGW_DATA_DIR: dataDir, PHIGW_CONFIG: '' },
    input: input ?? '',
    encoding: 'utf8',
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('phi-gateway CLI', function () {
  this.timeout(30000);
  let dir: string;
  beforeEach(async () => (dir = await tempDir()));
  afterEach(() => removeDir(dir));

  async function withStore<T>(fn: (s: Store) => Promise<T>): Promise<T> {
    const store = await Store.open(loadConfig({ PHIGW_DATA_DIR: dir }));
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  it('prints usage and exits 2 without a command, and 2 for an unknown one', () => {
    const none = run(dir, []);
    expect(none.code).to.equal(2);
    expect(none.out).to.contain('usage: phi-gateway');
    const bad = run(dir, ['frobnicate']);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.contain('unknown command "frobnicate"');
  });

  it('adds a user with a password from stdin, usable for AUTH', async () => {
    const r = run(
      dir,
      ['users', 'add', 'Nurse@Clinic.example', '--role', 'staff'],
      'a long enough password\n',
    );
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.contain('added staff nurse@clinic.example');
    expect(r.out).not.to.contain('password:');
    await withStore(async (s) => {
      expect(await authenticate(s.db, 'nurse@clinic.example', 'a long enough password')).to.not.equal(null);
      expect(await authenticate(s.db, 'nurse@clinic.example', 'wrong')).to.equal(null);
    });
  });

  it('generates and prints a password once when stdin is empty', async () => {
    const r = run(dir, ['users', 'add', 'admin@clinic.example', '--role', 'admin']);
    expect(r.code, r.err).to.equal(0);
    const password = /password: (\S+)/.exec(r.out)?.[1];
    expect(password).to.have.length(20);
    await withStore(async (s) =>
      expect(await authenticate(s.db, 'admin@clinic.example', password!)).to.not.equal(null),
    );
  });

  it('refuses a bad role, a bad address, a short password and a duplicate with clear messages', () => {
    expect(run(dir, ['users', 'add', 'x@clinic.example', '--role', 'root']).err).to.contain(
      '--role staff, admin or auditor',
    );
    expect(
      run(dir, ['users', 'add', 'not-an-email', '--role', 'staff'], 'long enough password').err,
    ).to.contain('not an email address');
    expect(run(dir, ['users', 'add', 'y@clinic.example', '--role', 'staff'], 'short').err).to.contain(
      'at least 12',
    );
    expect(
      run(dir, ['users', 'add', 'z@clinic.example', '--role', 'staff'], 'long enough password').code,
    ).to.equal(0);
    const dup = run(dir, ['users', 'add', 'Z@clinic.example', '--role', 'staff'], 'long enough password');
    expect(dup.code).to.equal(1);
    expect(dup.err).to.contain('already exists');
  });

  it('gives new staff a re-issue key; reset-password replaces it, ends sessions, and refuses unknown accounts', async () => {
    expect(
      run(dir, ['users', 'add', 'nurse@clinic.example', '--role', 'staff'], 'first password 1234').code,
    ).to.equal(0);
    expect(
      run(dir, ['users', 'add', 'audit@clinic.example', '--role', 'auditor'], 'first password 1234').code,
    ).to.equal(0);
    const before = await withStore(async (s) => {
      const rows = (await s.db('user_keys').select('user_id', 'key_id')) as Array<{ key_id: string }>;
      expect(rows, 'a key for the staff account only, none for the auditor').to.have.length(1);
      const { id } = (await s.db('users').where({ email: 'nurse@clinic.example' }).first('id')) as {
        id: number;
      };
      await s.write((trx) =>
        trx('web_sessions').insert({
          id_hash: 'x'.repeat(64),
          user_id: id,
          stage: 'active',
          csrf: 'c',
          created_at: 1,
          last_seen_at: 1,
        }),
      );
      return rows[0]!.key_id;
    });
    const r = run(dir, ['users', 'reset-password', 'Nurse@Clinic.example'], 'second password 5678\n');
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.contain('nurse@clinic.example: password reset, signed out everywhere');
    expect(r.out).not.to.contain('second password');
    await withStore(async (s) => {
      expect(await authenticate(s.db, 'nurse@clinic.example', 'second password 5678')).to.not.equal(null);
      expect(await authenticate(s.db, 'nurse@clinic.example', 'first password 1234')).to.equal(null);
      const [key] = (await s.db('user_keys').select('key_id')) as Array<{ key_id: string }>;
      expect(key!.key_id).to.not.equal(before);
      expect(await s.db('web_sessions').select('id_hash')).to.have.length(0);
      expect(await s.db('audit_events').where({ type: 'user.password_reset' })).to.have.length(1);
    });
    expect(
      run(dir, ['users', 'reset-password', 'nobody@clinic.example'], 'third password 9012').code,
    ).to.equal(1);
    expect(run(dir, ['users', 'reset-password', 'nurse@clinic.example'], 'short').err).to.contain(
      'at least 12',
    );
  });

  it('lists the queue and retries a held message', async () => {
    await withStore((s) =>
      s.write((trx) =>
        trx('messages').insert({
          id: 'HELDMSG1',
          state: 'held',
          created_at: Date.now(),
          updated_at: Date.now(),
          next_attempt_at: Date.now(),
          attempts: 5,
          size: 10,
          mail_from: 's@clinic.example',
          rcpt_to: JSON.stringify(['a@x.example', 'b@x.example']),
          trace: '',
          reason: 'parse:STAGE_TIMEOUT',
        }),
      ),
    );
    const list = run(dir, ['queue', 'list']);
    expect(list.code).to.equal(0);
    expect(list.out).to.match(/HELDMSG1\s+held\s+5\s+2 .*parse:STAGE_TIMEOUT/);
    const json = run(dir, ['queue', 'list', '--json']);
    const first = JSON.parse(json.out.split('\n')[0]!) as { id: string; state: string; recipients: number };
    expect(first).to.include({ id: 'HELDMSG1', state: 'held', recipients: 2 });
    expect(run(dir, ['queue', 'retry', 'HELDMSG1']).code).to.equal(0);
    expect(run(dir, ['queue', 'list']).out).to.match(/HELDMSG1\s+queued/);
    const again = run(dir, ['queue', 'retry', 'NOSUCH']);
    expect(again.code).to.equal(1);
    expect(again.err).to.contain('nothing to retry');
  });

  it('verifies the audit log and reports a row edited in the database', async () => {
    await withStore((s) =>
      s.write(async (trx) => {
        for (let i = 0; i < 5; i++) await appendAudit(trx, { type: 'test.event', detail: { i } });
      }),
    );
    const ok = run(dir, ['audit', 'verify']);
    expect(ok.code).to.equal(0);
    expect(ok.out).to.contain('audit log intact: 5 events');
    const exported = run(dir, ['audit', 'export']).out.trim().split('\n');
    expect(exported).to.have.length(5);
    expect(JSON.parse(exported[0]!)).to.include({ seq: 1, type: 'test.event' });
    await withStore((s) => s.db('audit_events').where({ seq: 3 }).update({ detail: '{"i":99}' }));
    const broken = run(dir, ['audit', 'verify']);
    expect(broken.code).to.equal(1);
    expect(broken.out).to.contain('BROKEN at event 3');
  });

  it('names unknown config keys and exits 2', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/phi-gateway.js'), 'queue', 'list'], {
      env: { ...process.env, PHIGW_DATA_DIR: dir, PHIGW_SMTP_PORT: 'twenty-five' },
      encoding: 'utf8',
    });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.contain('PHIGW_SMTP_PORT must be a port number');
  });

  for (const taken of ['smtp', 'web'] as const) {
    it(`start ends with exit 1 and the reason when the ${taken} port is taken, instead of running on half started`, async () => {
      const [smtpPort, webPort] = [await freePort(), await freePort()];
      const blocker = createServer();
      await new Promise<void>((resolve) =>
        blocker.listen(taken === 'smtp' ? smtpPort : webPort, '127.0.0.1', resolve),
      );
      try {
        // Asynchronous: the blocker answers while the command runs.
        const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
          const child = spawn(process.execPath, [path.join(ROOT, 'bin/phi-gateway.js'), 'start'], {
            env: {
              ...process.env,
              PHIGW_DATA_DIR: dir,
              PHIGW_CONFIG: '',
              PHIGW_SMTP_PORT: String(smtpPort),
              PHIGW_WEB_PORT: String(webPort),
            },
          });
          let err = '';
          child.stderr.on('data', (d: Buffer) => (err += d.toString()));
          const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
          child.on('exit', (code) => {
            clearTimeout(timer);
            resolve({ code, err });
          });
        });
        expect(r.code, r.err).to.equal(1);
        expect(r.err).to.contain('EADDRINUSE');
      } finally {
        await new Promise<void>((resolve) => blocker.close(() => resolve()));
      }
    });
  }
});
