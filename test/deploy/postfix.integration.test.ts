// The real path staff mail takes: swaks → Debian Postfix (a throwaway instance on loopback) → phi-gateway →
// capture server, in two placements: Postfix `relayhost` and Postfix `content_filter` (gateway hands mail back
// to Postfix). Clean mail arrives unchanged; PHI arrives only as a pickup notice.
// Never skipped: without postfix and swaks (CI installs them, see .ci/run) this test fails and says so.
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { CaptureServer, type CapturedMessage } from '../support/capture-server.js';
import { startPostfix, which, type Postfix } from '../support/postfix.js';
import { freePort, startGateway, type RunningGateway } from '../support/gateway.js';

const PHI_TEXT = 'Patient: Jane Roe, DOB 04/12/1961, MRN 48213377, diagnosed with diabetes.';
const CLEAN_BODY = 'Hi team,\r\nthe staff meeting moves to Thursday 3 pm, room 2.\r\n\r\nThanks, Ann\r\n';

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

const MISSING_HINT =
  "this test needs Debian's postfix and swaks (apt-get install --no-install-recommends postfix swaks; .ci/run installs them)";

async function requireTools(): Promise<void> {
  const missing = [];
  for (const cmd of ['postfix', 'swaks']) if (!(await which(cmd))) missing.push(cmd);
  if (missing.length > 0) throw new Error(`${missing.join(' and ')} not installed: ${MISSING_HINT}`);
}

interface Placement {
  capture: CaptureServer;
  gw: RunningGateway;
  postfix: Postfix;
}

/** The same two messages through either placement. */
function checksThrough(ctx: () => Placement): void {
  async function arrive(n: number): Promise<void> {
    const { capture, postfix } = ctx();
    await capture.waitFor(n, 30000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await postfix.log()}`);
    });
  }

  it('relays clean mail with its body unchanged', async () => {
    const { capture, postfix } = ctx();
    const before = capture.count;
    const out = await swaks(
      postfix.port,
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
    await arrive(before + 1);
    const got = capture.messages.find((m) => m.raw.toString().includes('clean-1@clinic.example'));
    expect(got, 'the clean message arrived').to.not.equal(undefined);
    expect(kindOf(got!)).to.equal('relay');
    expect(got!.to).to.deep.equal(['partner@example.org']);
    expect(got!.from).to.equal('ann@clinic.example');
    expect(bodyOf(got!)).to.equal(CLEAN_BODY);
    // It went through Postfix and the gateway: both Received lines.
    const headers = got!.raw.toString().slice(0, got!.raw.indexOf('\r\n\r\n'));
    expect(headers).to.match(/by postfix-front\.test/);
    expect(headers).to.match(/\(phi-gateway\)/);
  });

  it('turns PHI into a pickup notice (and a password mail) with no PHI in either', async () => {
    const { capture, postfix } = ctx();
    const before = capture.count;
    const out = await swaks(
      postfix.port,
      'ann@clinic.example',
      'patient@mail.example',
      message({ to: 'patient@mail.example', subject: 'Your results', body: PHI_TEXT, id: 'phi-1' }),
    );
    expect(out).to.match(/250 2\.0\.0 Ok: queued as/);
    await arrive(before + 2);
    const arrived = capture.messages.slice(before);
    expect(arrived.map(kindOf).sort()).to.deep.equal(['pickup-notice', 'pickup-password']);
    const notice = arrived.find((m) => kindOf(m) === 'pickup-notice')!;
    expect(notice.to).to.deep.equal(['patient@mail.example']);
    expect(notice.raw.toString()).to.match(/\/p\/[A-Za-z0-9_-]{20,}/);
    for (const m of arrived) {
      const text = m.raw.toString('utf8');
      for (const phi of ['Jane Roe', '48213377', '04/12/1961', 'diabetes'])
        expect(text, `${kindOf(m)} must not carry "${phi}"`).not.to.contain(phi);
    }
  });
}

const gatewayOverrides = { practiceName: 'Maple Dental', pickup: { passwordDelay: 0 } };

describe('Postfix in front of phi-gateway', function () {
  this.timeout(90000);

  describe('relayhost: Postfix sends everything to the gateway, the gateway to the next hop', () => {
    let ctx: Placement | undefined;
    before(async () => {
      await requireTools();
      const capture = new CaptureServer();
      await capture.start();
      const gw = await startGateway({ relayUrl: capture.url, overrides: gatewayOverrides });
      // docs/deploy.md, placement 2 (same host, loopback):
      const postfix = await startPostfix({
        main: [`relayhost = [127.0.0.1]:${gw.smtpPort}`, 'smtp_tls_security_level = none'],
      });
      ctx = { capture, gw, postfix };
    });
    after(async () => {
      await ctx?.postfix.stop();
      await ctx?.gw.stop();
      await ctx?.capture.stop();
    });
    checksThrough(() => ctx!);
  });

  describe('content_filter: Postfix hands mail to the gateway, which gives it back to Postfix to deliver', () => {
    let ctx: Placement | undefined;
    before(async () => {
      await requireTools();
      const capture = new CaptureServer(); // stands for the internet: Postfix's own next hop
      await capture.start();
      const reinject = await freePort();
      const gw = await startGateway({
        relayUrl: `smtp://127.0.0.1:${reinject}`,
        overrides: gatewayOverrides,
      });
      // docs/deploy.md, placement 3 (the filter on the submission smtpd; here the test's smtpd):
      const postfix = await startPostfix({
        main: [`relayhost = [127.0.0.1]:${capture.port}`, 'smtp_tls_security_level = none'],
        smtpdOptions: [`content_filter=phigw:[127.0.0.1]:${gw.smtpPort}`],
        master: [
          'phigw unix - - n - 10 smtp',
          '  -o syslog_name=postfix/phigw',
          '  -o smtp_tls_security_level=none',
          '  -o smtp_send_xforward_command=no',
          '  -o smtp_data_done_timeout=1200s',
          `127.0.0.1:${reinject} inet n - n - 10 smtpd`,
          '  -o syslog_name=postfix/reinject',
          '  -o content_filter=',
          '  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters',
          '  -o smtpd_helo_restrictions=',
          '  -o smtpd_client_restrictions=',
          '  -o smtpd_sender_restrictions=',
          '  -o smtpd_recipient_restrictions=permit_mynetworks,reject',
          '  -o smtpd_relay_restrictions=permit_mynetworks,reject',
          '  -o mynetworks=127.0.0.0/8',
        ],
      });
      ctx = { capture, gw, postfix };
    });
    after(async () => {
      await ctx?.postfix.stop();
      await ctx?.gw.stop();
      await ctx?.capture.stop();
    });
    checksThrough(() => ctx!);

    it('mail came back through the re-injection smtpd (no loop, no bypass)', async () => {
      const log = await ctx!.postfix.log();
      expect(log).to.match(
        /postfix\/phigw\/smtp\[\d+\]: .*relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/,
      );
      expect(log).to.match(/postfix\/reinject\/smtpd\[\d+\]: connect from/);
    });
  });
});
