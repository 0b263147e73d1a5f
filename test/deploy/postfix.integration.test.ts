// The real path staff mail takes: swaks → Debian Postfix (a throwaway instance on loopback, phi-gateway as its
// relayhost) → phi-gateway → capture server. Clean mail arrives unchanged; PHI arrives only as a pickup notice.
// Never skipped: without postfix and swaks (CI installs them, see .ci/run) this test fails and says so.
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { CaptureServer, type CapturedMessage } from '../support/capture-server.js';
import { freePort, removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';

const run = promisify(execFile);

const PHI_TEXT = 'Patient: Jane Roe, DOB 04/12/1961, MRN 48213377, diagnosed with diabetes.';
const CLEAN_BODY = 'Hi team,\r\nthe staff meeting moves to Thursday 3 pm, room 2.\r\n\r\nThanks, Ann\r\n';

/** Postfix must run as root (its master drops to the postfix user); through `sudo -n` when we are not root. */
function asRoot(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? [cmd, args] : ['sudo', ['-n', cmd, ...args]];
}

async function which(cmd: string): Promise<string | undefined> {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, cmd);
    if (
      await readFile(p).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  return undefined;
}

function swaks(port: number, from: string, to: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'swaks',
      ['--server', `127.0.0.1:${port}`, '--from', from, '--to', to, '--data', '-'],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`swaks exited ${code}:\n${out}`)),
    );
    child.stdin.end(data);
  });
}

function message(opts: { to: string; subject: string; body: string; id: string }): string {
  return [
    'From: Dr Ann Lee <ann@clinic.example>',
    `To: ${opts.to}`,
    `Subject: ${opts.subject}`,
    'Date: Mon, 30 Nov 2026 09:00:00 +0000',
    `Message-ID: <${opts.id}@clinic.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    opts.body,
  ].join('\r\n');
}

function kindOf(m: CapturedMessage): string {
  return /\r\nX-PHI-Gateway-Kind: ([\w-]+)/i.exec(`\r\n${m.raw.toString('latin1')}`)?.[1] ?? 'relay';
}

function bodyOf(m: CapturedMessage): string {
  const raw = m.raw.toString('utf8');
  return raw.slice(raw.indexOf('\r\n\r\n') + 4);
}

describe('Postfix in front of phi-gateway (relayhost)', function () {
  this.timeout(90000);
  let dir: string;
  let capture: CaptureServer;
  let gw: RunningGateway;
  let postfixPort: number;
  let started = false;

  before(async () => {
    const missing = [];
    for (const cmd of ['postfix', 'swaks']) if (!(await which(cmd))) missing.push(cmd);
    if (missing.length > 0)
      throw new Error(
        `${missing.join(' and ')} not installed: this test needs Debian's postfix and swaks ` +
          '(apt-get install --no-install-recommends postfix swaks; .ci/run installs them)',
      );
    capture = new CaptureServer();
    await capture.start();
    gw = await startGateway({
      relayUrl: capture.url,
      overrides: { practiceName: 'Maple Dental', pickup: { passwordDelay: 0 } },
    });

    // A Postfix instance of its own: config and queue in a temp dir, smtpd on a free loopback port.
    dir = await tempDir('phigw-postfix-');
    await chmod(dir, 0o755); // the postfix user must reach its queue below it
    await mkdir(path.join(dir, 'queue'), { mode: 0o755 });
    await mkdir(path.join(dir, 'data'), { mode: 0o700 });
    postfixPort = await freePort();
    const main = [
      'compatibility_level = 3.6',
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      'mail_owner = postfix',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'myhostname = postfix-front.test',
      'mydestination =',
      'mynetworks = 127.0.0.0/8',
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      // The lines an operator adds to send everything through phi-gateway (docs/deploy.md):
      `relayhost = [127.0.0.1]:${gw.smtpPort}`,
      'smtp_tls_security_level = none',
      'local_transport = error:local delivery is disabled',
      'alias_maps =',
      'alias_database =',
      `maillog_file = ${dir}/maillog`,
      `maillog_file_prefixes = ${dir}`,
      '',
    ].join('\n');
    const master = [
      `127.0.0.1:${postfixPort} inet n - n - - smtpd`,
      'cleanup unix n - n - 0 cleanup',
      'qmgr unix n - n 300 1 qmgr',
      'rewrite unix - - n - - trivial-rewrite',
      'bounce unix - - n - 0 bounce',
      'defer unix - - n - 0 bounce',
      'trace unix - - n - 0 bounce',
      'verify unix - - n - 1 verify',
      'flush unix n - n 1000? 0 flush',
      'proxymap unix - - n - - proxymap',
      'smtp unix - - n - - smtp',
      'relay unix - - n - - smtp',
      'showq unix n - n - - showq',
      'error unix - - n - - error',
      'retry unix - - n - - error',
      'discard unix - - n - - discard',
      'anvil unix - - n - 1 anvil',
      'scache unix - - n - 1 scache',
      'postlog unix-dgram n - n - 1 postlogd',
      '',
    ].join('\n');
    await writeFile(path.join(dir, 'main.cf'), main);
    await writeFile(path.join(dir, 'master.cf'), master);
    await chown(path.join(dir, 'data'));
    const [cmd, args] = asRoot('postfix', ['-c', dir, 'start']);
    try {
      await run(cmd, args);
    } catch (err) {
      const log = await readFile(path.join(dir, 'maillog'), 'utf8').catch(() => '');
      throw new Error(
        `postfix did not start (it needs root or passwordless sudo): ${(err as Error).message}\n${log}`,
      );
    }
    started = true;
    // master is up when smtpd answers.
    for (let i = 0; ; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect(postfixPort, '127.0.0.1');
        s.once('data', (d: Buffer) => {
          s.destroy();
          resolve(d.toString().startsWith('220'));
        });
        s.once('error', () => resolve(false));
      });
      if (ok) break;
      if (i > 100) throw new Error('postfix smtpd did not answer');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  async function chown(p: string): Promise<void> {
    const [cmd, args] = asRoot('chown', ['postfix', p]);
    await run(cmd, args);
  }

  after(async () => {
    if (started) {
      const [cmd, args] = asRoot('postfix', ['-c', dir, 'stop']);
      await run(cmd, args).catch(() => undefined);
    }
    await gw?.stop();
    await capture?.stop();
    if (dir) {
      const [cmd, args] = asRoot('rm', ['-rf', dir]);
      await run(cmd, args).catch(() => removeDir(dir));
    }
  });

  async function postfixLog(): Promise<string> {
    return readFile(path.join(dir, 'maillog'), 'utf8').catch(() => '(no maillog)');
  }

  it('relays clean mail through Postfix and the gateway with its body unchanged', async () => {
    const before = capture.count;
    const out = await swaks(
      postfixPort,
      'ann@clinic.example',
      'partner@example.org',
      // swaks ends the data with CRLF itself, so it transmits exactly CLEAN_BODY.
      message({
        to: 'partner@example.org',
        subject: 'Staff meeting',
        body: CLEAN_BODY.slice(0, -2),
        id: 'clean-1',
      }),
    );
    expect(out).to.match(/250 2\.0\.0 Ok: queued as/);
    await capture.waitFor(before + 1, 30000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await postfixLog()}`);
    });
    const got = capture.messages.find((m) => m.raw.toString().includes('clean-1@clinic.example'));
    expect(got, 'the clean message arrived').to.not.equal(undefined);
    expect(kindOf(got!)).to.equal('relay');
    expect(got!.to).to.deep.equal(['partner@example.org']);
    expect(got!.from).to.equal('ann@clinic.example');
    expect(bodyOf(got!)).to.equal(CLEAN_BODY);
    // It went through both hops: Postfix's Received line and the gateway's.
    const headers = got!.raw.toString().slice(0, got!.raw.indexOf('\r\n\r\n'));
    expect(headers).to.match(/Received: from [^\r\n]*\r\n\s+by postfix-front\.test/);
    expect(headers.match(/^Received:/gm)?.length ?? 0).to.be.at.least(2);
  });

  it('turns PHI submitted to Postfix into a pickup notice (and a password mail) with no PHI in either', async () => {
    const before = capture.count;
    const out = await swaks(
      postfixPort,
      'ann@clinic.example',
      'patient@mail.example',
      message({ to: 'patient@mail.example', subject: 'Your results', body: PHI_TEXT, id: 'phi-1' }),
    );
    expect(out).to.match(/250 2\.0\.0 Ok: queued as/);
    await capture.waitFor(before + 2, 30000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await postfixLog()}`);
    });
    const arrived = capture.messages.slice(before);
    const kinds = arrived.map(kindOf).sort();
    expect(kinds).to.deep.equal(['pickup-notice', 'pickup-password']);
    const notice = arrived.find((m) => kindOf(m) === 'pickup-notice')!;
    expect(notice.to).to.deep.equal(['patient@mail.example']);
    expect(notice.raw.toString()).to.match(/\/p\/[A-Za-z0-9_-]{20,}/);
    for (const m of arrived) {
      const text = m.raw.toString('utf8');
      for (const phi of ['Jane Roe', '48213377', '04/12/1961', 'diabetes'])
        expect(text, `${kindOf(m)} must not carry "${phi}"`).not.to.contain(phi);
    }
  });
});
