// The staff and admin UI in real headless Chromium against a running gateway: TOTP sign-in, quarantine
// release to a pickup, a recipient refused after revocation, audit verify catching a database edit, keyboard-only
// use, and on every page axe-core (no serious/critical findings), no sideways scroll at 360 px, screenshots.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { parse, stringify } from 'yaml';
import { createLogger } from '../../config/log.js';
import { DEFAULT_RULES_FILE } from '../../gateway/rules.js';
import { addUser } from '../../store/users.js';
import { createWebApp } from '../../web/app.js';
import { totp } from '../../web/totp.js';
import { CaptureServer, kindOf } from '../support/capture-server.js';
import { until } from '../support/waiting.js';
import { freePort, removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { queueIdOf, sendMessage } from '../support/smtp-client.js';
import { addStaff } from '../support/staff-browser.js';
import { CHROMIUM_ARGS } from '../support/chromium.js';

const SHOTS = '/tmp/ui-shots';
const AXE_SOURCE = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

interface AxeResult {
  violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: string[] }> }>;
}

async function sendPhi(port: number, from: string, rcpt: string): Promise<string> {
  const message =
    `From: ${from}\r\nTo: ${rcpt}\r\nSubject: Your results\r\nMIME-Version: 1.0\r\n\r\n` +
    `Patient: Jane Roe, MRN 48213377, SSN 123-45-6789. Diagnosed with diabetes.\r\n`;
  return queueIdOf(await sendMessage(port, from, rcpt, message));
}

describe('web staff and admin UI (browser)', function () {
  this.timeout(180000);
  let dir: string;
  let capture: CaptureServer;
  let gw: RunningGateway;
  let server: Server;
  let base: string;
  let browser: Browser;
  let adminCtx: BrowserContext;
  let admin: Page;
  let admin2fa: { email: string; password: string; totpSecret: Buffer };
  let messageId: string;
  let pickup: { url: string; token: string; password: string };
  /** Serious and critical axe findings, and pages that scroll sideways, across the run. */
  const problems: string[] = [];
  const checked: string[] = [];

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    dir = await tempDir();
    const pack = parse(readFileSync(DEFAULT_RULES_FILE, 'utf8')) as {
      rules: Array<{ id: string; action: string }>;
    };
    for (const r of pack.rules) r.action = 'quarantine';
    const rulesFile = path.join(dir, 'rules.yaml');
    await writeFile(rulesFile, stringify(pack));
    capture = new CaptureServer();
    await capture.start();
    const webPort = await freePort();
    // localhost (not 127.0.0.1): a secure context for WebAuthn in Chromium, and the host links point at.
    base = `http://localhost:${webPort}`;
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: {
        dlp: { rulesFile },
        pickup: { passwordDelay: 0 },
        web: { port: webPort, publicUrl: base },
        practiceName: 'Riverside Dental',
      },
    });
    server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
      webPort,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    admin2fa = await addStaff(gw.store, 'admin@clinic.example', 'admin');
    await addStaff(gw.store, 'ann@clinic.example', 'staff');
    await addUser(gw.store.db, 'new.admin@clinic.example', 'admin', 'test-password-1234');
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP localhost 127.0.0.1'],
    });
    adminCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    admin = await adminCtx.newPage();
  });

  after(async () => {
    await browser?.close();
    server?.closeAllConnections();
    server?.close();
    await gw?.stop();
    await capture?.stop();
    if (dir) await removeDir(dir);
  });

  /** axe-core on the page as it is, then 360 px without sideways scroll, then screenshots at both widths. */
  async function check(page: Page, name: string): Promise<void> {
    await page.setViewportSize({ width: 1280, height: 900 });
    // Evaluated through the DevTools protocol, which the page's CSP does not govern (it forbids inline script).
    await page.evaluate(`${AXE_SOURCE}\n;0`);
    const result = await page.evaluate<AxeResult>(
      `axe.run(document, { resultTypes: ['violations'] }).then(r => ({ violations: r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({ target: n.target })) })) }))`,
    );
    if (process.env.AXE_VERBOSE)
      for (const v of result.violations)
        process.stdout.write(`  axe ${name}: ${v.impact} ${v.id} ${v.help}\n`);
    for (const v of result.violations) {
      if (v.impact === 'serious' || v.impact === 'critical')
        problems.push(
          `${name}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes
            .slice(0, 3)
            .map((n) => n.target.join(' '))
            .join(', ')}`,
        );
    }
    await page.screenshot({ path: `${SHOTS}/${name}-1280.png`, fullPage: true });
    await page.setViewportSize({ width: 360, height: 800 });
    const width = await page.evaluate(() => document.scrollingElement!.scrollWidth);
    if (width > 360) problems.push(`${name}: scrolls sideways at 360 px (${width} px wide)`);
    await page.screenshot({ path: `${SHOTS}/${name}-360.png`, fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
    checked.push(name);
  }

  async function visit(page: Page, url: string, name: string, heading?: string | RegExp): Promise<void> {
    const res = await page.goto(base + url);
    expect(res!.status(), url).to.be.below(400);
    if (heading) await page.getByRole('heading', { level: 1, name: heading }).waitFor();
    await check(page, name);
  }

  /** Fails with this test's findings (and forgets them, so one bad page fails one test). */
  function assertClean(): void {
    const found = problems.splice(0);
    expect(found, found.join('\n')).to.deep.equal([]);
  }

  it('signs an admin in with password and TOTP, and checks the sign-in pages', async () => {
    await admin.goto(`${base}/admin`);
    expect(admin.url()).to.match(/\/login\?next=%2Fadmin$/);
    await check(admin, 'login');
    // The checker itself can fail: an image without alt text on this page is a critical finding.
    await admin.evaluate(() => document.querySelector('main')!.append(document.createElement('img')));
    await check(admin, 'login-control');
    expect(problems.splice(0).join('\n')).to.match(/^login-control: critical image-alt/);
    await admin.reload();
    await admin.getByLabel('Email').fill(admin2fa.email);
    await admin.getByLabel('Password').fill('wrong-password-000');
    await admin.getByRole('button', { name: 'Sign in', exact: true }).click();
    await admin.getByRole('alert').waitFor();
    await check(admin, 'login-error');
    await admin.getByLabel('Password').fill(admin2fa.password);
    await admin.getByRole('button', { name: 'Sign in', exact: true }).click();
    await admin.getByLabel(/6-digit code/).waitFor();
    await check(admin, 'login-totp');
    await admin.getByLabel(/6-digit code/).fill(totp(admin2fa.totpSecret));
    await admin.getByRole('button', { name: 'Continue' }).click();
    await admin.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    expect(new URL(admin.url()).pathname).to.equal('/admin');

    // An admin without TOTP is sent to enrolment, which shows the QR code once.
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${base}/login`);
    await p.getByLabel('Email').fill('new.admin@clinic.example');
    await p.getByLabel('Password').fill('test-password-1234');
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
    await p.getByRole('heading', { level: 1, name: 'Set up two-step sign-in' }).waitFor();
    expect(await p.locator('figure.qr svg').count()).to.equal(1);
    await check(p, 'login-totp-setup');
    await ctx.close();
    assertClean();
  });

  it('releases a quarantined PHI message as protected from the page; the pickup notice arrives', async () => {
    messageId = await sendPhi(gw.smtpPort, 'ann@clinic.example', 'patient@mail.example');
    await until(
      async () => (await gw.store.db('messages').where({ id: messageId, state: 'held' }).first()) as object,
    );
    await visit(admin, '/admin', 'admin-dashboard', 'Dashboard');
    await visit(admin, '/admin/quarantine', 'admin-quarantine', 'Quarantine');
    await admin.getByRole('link', { name: messageId }).click();
    await admin.getByRole('heading', { level: 1, name: /Held message/ }).waitFor();
    expect(await admin.locator('pre.message-text').innerText()).to.contain('Diagnosed with diabetes');
    await check(admin, 'admin-quarantine-detail');
    await admin.getByRole('button', { name: 'Release protected' }).click();
    await admin.getByRole('heading', { level: 1, name: 'Quarantine' }).waitFor();
    expect(await admin.getByRole('link', { name: messageId }).count()).to.equal(0);

    const notice = await until(() =>
      capture.messages.find((m) => kindOf(m) === 'pickup-notice' && m.to.includes('patient@mail.example')),
    );
    const pwMail = await until(() =>
      capture.messages.find((m) => kindOf(m) === 'pickup-password' && m.to.includes('patient@mail.example')),
    );
    const noticeText = (await simpleParser(notice.raw)).text ?? '';
    expect(noticeText).not.to.contain('diabetes');
    const url = new RegExp(`${base}/p/([A-Za-z0-9_-]+)`).exec(noticeText);
    expect(url, 'link in the notice').to.not.equal(null);
    const password = /^Password: (.+)$/m.exec((await simpleParser(pwMail.raw)).text ?? '')?.[1]?.trim();
    expect(password).to.be.a('string');
    pickup = { url: url![0], token: url![1]!, password: password! };
    const audit = await gw.store
      .db('audit_events')
      .where({ message_id: messageId, type: 'quarantine.release_protected' });
    expect(audit).to.have.length(1);
    assertClean();
  });

  it('the recipient opens the pickup and replies; pages of the portal pass the same checks', async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(pickup.url);
    await p.getByLabel('Password', { exact: true }).waitFor();
    await check(p, 'pickup-password');
    await p.getByLabel('Password', { exact: true }).fill('abcd-efgh-jkmn-pqrs-tuvw');
    await p.getByRole('button', { name: 'Open message' }).click();
    await p.getByRole('alert').waitFor();
    await check(p, 'pickup-wrong-password');
    await p.getByLabel('Password', { exact: true }).fill(pickup.password);
    await p.getByRole('button', { name: 'Open message' }).click();
    await p.getByRole('heading', { level: 2, name: 'Reply securely' }).waitFor();
    expect(await p.locator('main').innerText()).to.contain('Diagnosed with diabetes');
    await check(p, 'pickup-message');
    await p.getByLabel('Your reply').fill('Thank you, I will call on Monday.');
    await p.getByRole('button', { name: 'Send reply' }).click();
    await p.getByText('Your reply was sent securely.').waitFor();
    await ctx.close();

    const unknown = await browser.newPage();
    const res = await unknown.goto(`${base}/p/${'A'.repeat(43)}`);
    expect(res!.status()).to.equal(404);
    await check(unknown, 'pickup-unknown');
    await unknown.close();
    assertClean();
  });

  it('staff see their messages, pickups and replies, and revoking a pickup refuses the recipient', async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${base}/login`);
    await p.getByLabel('Email').fill('ann@clinic.example');
    await p.getByLabel('Password').fill('test-password-1234');
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
    await p.getByRole('heading', { level: 1, name: 'My messages' }).waitFor();
    expect(await p.locator('main').innerText()).to.contain(messageId);
    await check(p, 'me');
    await visit(p, '/me/send', 'me-send', 'Send securely');
    await visit(p, '/me/password', 'me-password', 'Change password');
    await visit(p, '/me/replies', 'me-replies', 'Secure replies');
    await p.locator('main table a').first().click();
    await p.getByText('Thank you, I will call on Monday.').waitFor();
    await check(p, 'me-reply');
    await visit(p, '/me/pickups', 'me-pickups', 'My secure pickups');
    const row = p.locator('tr', { hasText: 'patient@mail.example' });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await p.getByRole('heading', { level: 1, name: 'My secure pickups' }).waitFor();
    expect(await p.locator('tr', { hasText: 'patient@mail.example' }).innerText()).to.contain('revoked');
    await ctx.close();

    const r = await fetch(`${base}/api/pickups/${pickup.token}/open`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password: pickup.password }),
    });
    expect(r.status).to.equal(410);
    const rcpt = await browser.newPage();
    const gone = await rcpt.goto(pickup.url);
    expect(gone!.status()).to.equal(410);
    expect(await rcpt.locator('main').innerText()).to.match(/no longer available/i);
    expect(await rcpt.getByLabel('Password', { exact: true }).count()).to.equal(0);
    await check(rcpt, 'pickup-gone');
    await rcpt.close();
    assertClean();
  });

  it('every admin page passes axe, fits 360 px and is captured', async () => {
    await visit(admin, '/admin/rules', 'admin-rules', 'DLP rules');
    await visit(admin, '/admin/rules/rule/deny-list', 'admin-rules-editor', 'Rule deny-list');
    await visit(admin, '/admin/rules/new', 'admin-rules-new');
    await visit(admin, '/admin/rules/lists', 'admin-rules-lists');
    await visit(admin, '/admin/rules/yaml', 'admin-rules-yaml');
    await visit(admin, '/admin/rules/versions', 'admin-rules-versions');
    await visit(admin, '/admin/rules/versions/1', 'admin-rules-version');
    await visit(admin, '/admin/rules/test', 'admin-rules-tester');
    await admin.getByLabel('Message text').fill('Patient Jane Roe, MRN 48213377, SSN 123-45-6789.');
    await admin.getByLabel(/^Recipients/).fill('patient@example.com');
    await admin.getByRole('button', { name: 'Test', exact: true }).click();
    await admin.locator('.highlighted').waitFor();
    await check(admin, 'admin-rules-tester-result');
    await visit(admin, '/admin/keys', 'admin-keys', 'Recipient keys');
    await visit(admin, '/admin/pickups', 'admin-pickups', 'Secure pickups');
    await visit(admin, '/admin/audit', 'admin-audit', 'Audit log');
    await visit(admin, '/admin/settings', 'admin-settings-all', 'Settings');
    await visit(admin, '/me', 'admin-me', 'My messages');
    await visit(admin, '/me/pickups', 'admin-me-pickups', 'My secure pickups');
    await visit(admin, '/me/send', 'admin-me-send', 'Send securely');
    assertClean();
  });

  it('audit verify from the page says intact, then detects a row edited directly in the database', async () => {
    await admin.goto(`${base}/admin/audit`);
    await admin.getByRole('button', { name: 'Verify the whole log' }).click();
    await admin.getByRole('status').waitFor();
    expect(await admin.getByRole('status').innerText()).to.contain('The audit log is intact');
    await check(admin, 'admin-audit-intact');

    const row = (await gw.store
      .db('audit_events')
      .where({ type: 'quarantine.release_protected' })
      .first()) as { seq: number; actor: string };
    await gw.store
      .db('audit_events')
      .where({ seq: row.seq })
      .update({ actor: 'someone.else@clinic.example' });
    await admin.goto(`${base}/admin/audit`);
    await admin.getByRole('button', { name: 'Verify the whole log' }).click();
    const alert = admin.getByRole('alert');
    await alert.waitFor();
    expect(await alert.innerText()).to.contain('tampered with');
    expect(await alert.innerText()).to.contain(`event ${row.seq}`);
    await check(admin, 'admin-audit-broken');
    assertClean();
  });

  it('signs in and reaches a page with the keyboard alone; focus is visible', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await ctx.newPage();
    const kb = p.keyboard;
    const focusedId = () => p.evaluate(() => document.activeElement?.id ?? '');
    const tabTo = async (test: () => Promise<boolean>, what: string) => {
      for (let i = 0; i < 40; i++) {
        await kb.press('Tab');
        if (await test()) return;
      }
      throw new Error(`Tab never reached ${what}`);
    };
    const secret = (await addStaff(gw.store, 'kb.admin@clinic.example', 'admin')).totpSecret;
    await p.goto(`${base}/login`);
    await tabTo(async () => (await focusedId()) === 'email', 'the email field');
    // A visible focus indicator: an outline (or a ring drawn with box-shadow) on the focused field.
    const ring = await p.evaluate(() => {
      const s = getComputedStyle(document.activeElement!);
      return { outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2, shadow: s.boxShadow };
    });
    expect(ring.outline || ring.shadow !== 'none', 'focused field shows a focus ring').to.equal(true);
    await kb.type('kb.admin@clinic.example');
    await kb.press('Tab');
    expect(await focusedId()).to.equal('password');
    await kb.type('test-password-1234');
    await kb.press('Enter');
    await p.waitForURL(/\/login\/mfa/);
    await tabTo(async () => (await focusedId()) === 'code', 'the code field');
    await kb.type(totp(secret));
    await kb.press('Enter');
    await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    await tabTo(
      () => p.evaluate(() => (document.activeElement as HTMLElement | null)?.innerText === 'Audit log'),
      'the Audit log link',
    );
    const linkRing = await p.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(linkRing).to.not.equal('none');
    await kb.press('Enter');
    await p.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    await tabTo(
      () =>
        p.evaluate(
          () => (document.activeElement as HTMLElement | null)?.innerText === 'Verify the whole log',
        ),
      'the verify button',
    );
    await kb.press('Enter');
    await p.getByRole('heading', { level: 1, name: 'Audit log check' }).waitFor();
    await ctx.close();
  });

  it('adds a passkey with a virtual authenticator, signs in with it alone, and is refused once it is removed', async () => {
    const pk = await addStaff(gw.store, 'pk.admin@clinic.example', 'admin');
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await ctx.newPage();
    const cdp = await ctx.newCDPSession(p);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    const { id } = (await gw.store.db('users').where({ email: pk.email }).first('id')) as { id: number };

    // Without a session the API refuses; the sign-in options need the sign-in page's CSRF token.
    expect((await fetch(`${base}/api/me/passkeys/options`, { method: 'POST' })).status).to.equal(401);
    expect((await fetch(`${base}/login/passkey/options`, { method: 'POST' })).status).to.equal(403);

    await p.goto(`${base}/login`);
    await p.getByLabel('Email').fill(pk.email);
    await p.getByLabel('Password').fill(pk.password);
    await p.getByRole('button', { name: 'Sign in', exact: true }).click();
    await p.getByLabel(/6-digit code/).fill(totp(pk.totpSecret));
    await p.getByRole('button', { name: 'Continue' }).click();
    await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    await p.getByRole('link', { name: pk.email }).click();
    await p.getByRole('heading', { level: 1, name: 'Sign-in and security' }).waitFor();
    expect(await p.locator('p.empty').innerText()).to.contain('no passkeys');
    await check(p, 'me-passkeys-empty');
    await p.getByLabel('Name for a new passkey').fill('Test laptop');
    await p.getByRole('button', { name: 'Add a passkey' }).click();
    await p.getByRole('status').waitFor();
    expect(await p.locator('main table').innerText()).to.contain('Test laptop');
    const rows = (await gw.store.db('passkeys').where({ user_id: id })) as Array<{
      public_key: string;
      counter: number;
    }>;
    expect(rows).to.have.length(1);
    await check(p, 'me-passkeys');

    // Signed out, the passkey alone (with user verification) signs the admin in: no password, no TOTP code.
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.waitForURL(/\/login$/);
    const answer = p.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/login/passkey'));
    await p.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await p.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
    // The same signed answer sent again (same cookies, same CSRF token) finds its challenge used up.
    const sent = await answer;
    const replay = await fetch(sent.url(), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-csrf-token': (await sent.headerValue('x-csrf-token')) ?? '',
        cookie: (await sent.headerValue('cookie')) ?? '',
      },
      body: sent.postData() ?? '',
    });
    expect(replay.status).to.equal(401);
    expect(replay.headers.getSetCookie().join()).not.to.match(/phigw_staff=[^;]/);
    const signedIn = (await gw.store
      .db('audit_events')
      .where({ type: 'auth.signed_in', actor: pk.email })
      .orderBy('seq', 'desc')
      .first()) as { detail: string };
    expect(JSON.parse(signedIn.detail)).to.include({ mfa: true, method: 'passkey' });
    const used = (await gw.store.db('passkeys').where({ user_id: id }).first()) as {
      last_used_at: number | null;
    };
    expect(used.last_used_at).to.be.a('number');

    // Removed on the server, the same authenticator no longer gets in.
    await p.goto(`${base}/me/passkeys`);
    await p.getByRole('button', { name: 'Remove passkey Test laptop' }).click();
    await p.getByText('Passkey removed.').waitFor();
    expect(await gw.store.db('passkeys').where({ user_id: id })).to.have.length(0);
    await p.getByRole('button', { name: 'Sign out' }).click();
    await p.waitForURL(/\/login$/);
    await p.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await p.getByText('That passkey did not work').waitFor();
    expect(new URL(p.url()).pathname).to.equal('/login');
    await check(p, 'login-passkey-refused');
    const failed = (await gw.store.db('audit_events').where({ type: 'auth.passkey_failed' })) as Array<{
      detail: string;
    }>;
    expect(failed.map((f) => (JSON.parse(f.detail) as { reason: string }).reason)).to.include.members([
      'no-challenge',
      'unknown-credential',
    ]);
    await ctx.close();
    assertClean();
  });

  it('checked every page', () => {
    expect(checked.length).to.be.at.least(30);
    assertClean();
  });
});
