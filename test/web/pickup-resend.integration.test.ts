// "Resend password" end to end: PHI mail through SMTP becomes a pickup, its sender (or an admin) re-issues the
// password over the JSON API, the pages and in Chromium; the new password mail keeps the contract, the new
// password opens the pickup and the old one no longer does; nobody else can; nothing secret lands at rest.
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import { chromium, type Page } from 'playwright-core';
import { createLogger } from '../../config/log.js';
import { findUserKey } from '../../store/user-keys.js';
import { uiSettings } from '../../store/settings.js';
import { createWebApp } from '../../web/app.js';
import { CaptureServer, kindOf } from '../support/capture-server.js';
import { until } from '../support/waiting.js';
import { CHROMIUM_ARGS } from '../support/chromium.js';
import { freePort, removeDir, ROOT, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { queueIdOf, sendMessage } from '../support/smtp-client.js';
import { addStaff, StaffBrowser } from '../support/staff-browser.js';

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(...(e.isDirectory() ? await filesUnder(p) : [p]));
  }
  return out;
}

async function sendPhi(port: number, from: string, rcpt: string): Promise<string> {
  const message =
    `From: ${from}\r\nTo: ${rcpt}\r\nSubject: [secure] Your results\r\nMIME-Version: 1.0\r\n\r\n` +
    `Patient: Jane Roe, MRN 48213377. Diagnosed with diabetes.\r\n`;
  return queueIdOf(await sendMessage(port, from, rcpt, message));
}

const AXE_SOURCE = (createRequire(import.meta.url)('axe-core') as { source: string }).source;

/** axe-core finds nothing serious or critical, the page fits 360 px; screenshots at both widths for a look. */
async function accessible(page: Page, name: string): Promise<void> {
  await page.evaluate(`${AXE_SOURCE}\n;0`);
  const found = await page.evaluate<string[]>(
    `axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id))`,
  );
  expect(found, name).to.deep.equal([]);
  await mkdir('/tmp/ui-shots', { recursive: true });
  await page.screenshot({ path: `/tmp/ui-shots/${name}-1280.png`, fullPage: true });
  await page.setViewportSize({ width: 360, height: 800 });
  expect(await page.evaluate(() => document.scrollingElement!.scrollWidth), name).to.be.at.most(360);
  await page.screenshot({ path: `/tmp/ui-shots/${name}-360.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
}

interface Pickup {
  id: string;
  token: string;
  reference: string;
  password: string;
}

describe('web: resend a pickup password (integration)', function () {
  this.timeout(120000);
  let dir: string;
  let capture: CaptureServer;
  let gw: RunningGateway;
  let server: Server;
  let base: string;
  let admin: Awaited<ReturnType<typeof addStaff>>;
  const PW = 'ann-password-1234';
  const NEW_PW = 'ann-new-password-5678';
  /** Every pickup password seen in a mail: none of them may be at rest anywhere. */
  const passwords: string[] = [];
  let p0: Pickup; // sent before anyone had a key
  let p1: Pickup; // sent after sign-in: escrow for ann and the admin
  /** One admin session for the whole run: a TOTP code is accepted once per 30 s step. */
  let adm: { b: StaffBrowser; csrf: string };

  before(async () => {
    dir = await tempDir();
    capture = new CaptureServer();
    await capture.start();
    const webPort = await freePort();
    base = `http://127.0.0.1:${webPort}`;
    gw = await startGateway({
      relayUrl: capture.url,
      dataDir: dir,
      overrides: {
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
    // Accounts as they were before password re-issue existed: no key pairs.
    await addStaff(gw.store, 'ann@clinic.example', 'staff', PW);
    await addStaff(gw.store, 'bob@clinic.example', 'staff');
    admin = await addStaff(gw.store, 'admin@clinic.example', 'admin');
  });

  after(async () => {
    server?.closeAllConnections();
    server?.close();
    await gw?.stop();
    await capture?.stop();
    if (dir) await removeDir(dir);
  });

  /** The pickup made for `messageId`: its link token from the notice, its first password from the password mail. */
  async function pickupOf(messageId: string): Promise<Pickup> {
    const row = await until(
      async () =>
        (await gw.store.db('pickups').where({ message_id: messageId }).first()) as
          { id: string; reference: string } | undefined,
    );
    const notice = await until(() =>
      capture.messages.find((m) => kindOf(m) === 'pickup-notice' && m.raw.includes(row.reference)),
    );
    const token = /\/p\/([A-Za-z0-9_-]+)/.exec((await simpleParser(notice.raw)).text ?? '')![1]!;
    const password = await passwordMail(row.reference, 1);
    return { id: row.id, token, reference: row.reference, password: password.password };
  }

  /** The n-th password mail for a reference, checked against the DESIGN.md contract. */
  async function passwordMail(reference: string, n: number) {
    const mails = await until(() => {
      const found = capture.messages.filter(
        (m) => kindOf(m) === 'pickup-password' && m.raw.includes(`reference ${reference}`),
      );
      return found.length >= n ? found : undefined;
    });
    const mail = mails[n - 1]!;
    const parsed = await simpleParser(mail.raw);
    const text = parsed.text ?? '';
    const line = /^Password: (\S+)$/m.exec(text);
    expect(line, 'Password: on its own line').to.not.equal(null);
    expect(text).to.not.match(/https?:\/\//);
    expect(String(parsed.html)).to.not.match(/https?:\/\//);
    expect(text).to.not.contain('diabetes');
    passwords.push(line![1]!);
    return { password: line![1]!, text, to: mail.to };
  }

  const open = (p: Pickup, password: string) =>
    fetch(`${base}/api/pickups/${p.token}/open`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ password }),
    });

  async function signedIn(email: string, password: string, totpSecret?: Buffer) {
    const b = new StaffBrowser(base);
    const res = await b.signIn(email, password, totpSecret);
    expect(res.status, `sign-in of ${email}`).to.equal(303);
    const page = await b.go('/me');
    expect(page.status).to.equal(200);
    return { b, csrf: StaffBrowser.csrf(page.body) };
  }

  const resend = (
    who: { b: StaffBrowser; csrf: string } | null,
    scope: 'me' | 'admin',
    p: Pickup,
    password: string,
    csrf = who?.csrf ?? '',
  ) =>
    (who?.b ?? new StaffBrowser(base)).go(`/api/${scope}/pickups/${p.id}/resend-password`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(csrf ? { 'x-csrf-token': csrf } : {}) },
      body: JSON.stringify({ password }),
    });

  it('accounts from before get a key pair at sign-in; pickups sent before stay non-reissuable', async () => {
    p0 = await pickupOf(await sendPhi(gw.smtpPort, 'ann@clinic.example', 'patient@mail.example'));
    expect(await gw.store.db('pickup_escrow').where({ pickup_id: p0.id })).to.have.length(0);
    const ann = await signedIn('ann@clinic.example', PW);
    const ids = (await gw.store.db('users').orderBy('email').select('id', 'email')) as Array<{
      id: number;
      email: string;
    }>;
    const annId = ids.find((u) => u.email === 'ann@clinic.example')!.id;
    expect(await findUserKey(gw.store.db, annId)).to.not.equal(undefined);
    const res = await resend(ann, 'me', p0, PW);
    expect(res.status).to.equal(409);
    expect(JSON.parse(res.body)).to.deep.include({ code: 'no_escrow' });
    const page = await ann.b.go(`/me/pickups/${p0.id}/resend`);
    expect(page.status).to.equal(409);
    expect(page.body).to.contain('sent before password re-issue was available');
    expect(page.body).to.not.contain('name="password"');
  });

  it('the sender re-issues over the API: a new password mail by contract; new opens (200), old refused (401)', async () => {
    adm = await signedIn('admin@clinic.example', admin.password, admin.totpSecret);
    await signedIn('bob@clinic.example', 'test-password-1234');
    p1 = await pickupOf(await sendPhi(gw.smtpPort, 'ann@clinic.example', 'patient@mail.example'));
    const holders = (await gw.store
      .db('pickup_escrow')
      .where({ pickup_id: p1.id })
      .select('user_id')) as Array<{
      user_id: number;
    }>;
    expect(holders).to.have.length(2); // ann (the sender) and the admin; not bob
    expect((await open(p1, p1.password)).status).to.equal(200);

    const ann = await signedIn('ann@clinic.example', PW);
    const res = await resend(ann, 'me', p1, PW);
    expect(res.status, res.body).to.equal(200);
    expect(JSON.parse(res.body)).to.deep.equal({
      pickup: p1.id,
      reference: p1.reference,
      rcpt: 'patient@mail.example',
      route: 'email',
    });
    const mail = await passwordMail(p1.reference, 2);
    expect(mail.to).to.deep.equal(['patient@mail.example']);
    expect(mail.text).to.contain('replaces the password sent earlier');
    expect(mail.password).to.not.equal(p1.password);
    expect((await open(p1, mail.password)).status).to.equal(200);
    expect((await open(p1, p1.password)).status).to.equal(401);
    p1.password = mail.password;
    const audit = (await gw.store.db('audit_events').where({ type: 'pickup.password_reissued' })) as Array<{
      actor: string;
      detail: string;
    }>;
    expect(audit.map((a) => a.actor)).to.deep.equal(['ann@clinic.example']);
    expect(audit[0]!.detail).to.not.contain(mail.password);
  });

  it('401 without a session, 403 without CSRF, 403 for another staff user, refused with a wrong password', async () => {
    expect((await resend(null, 'me', p1, PW)).status).to.equal(401);
    expect((await resend(null, 'admin', p1, PW)).status).to.equal(401);
    const ann = await signedIn('ann@clinic.example', PW);
    expect((await resend(ann, 'me', p1, PW, 'not-the-token')).status).to.equal(403);
    const bob = await signedIn('bob@clinic.example', 'test-password-1234');
    const other = await resend(bob, 'me', p1, 'test-password-1234');
    expect(other.status).to.equal(403);
    expect(JSON.parse(other.body)).to.deep.include({ code: 'not_yours' });
    expect((await resend(bob, 'admin', p1, 'test-password-1234')).status).to.equal(403);
    expect((await bob.b.go(`/me/pickups/${p1.id}/resend`)).status).to.equal(404);
    // The form POST too: another's pickup is refused.
    const form = await bob.b.post(`/me/pickups/${p1.id}/resend`, {
      _csrf: bob.csrf,
      password: 'test-password-1234',
    });
    expect(form.status).to.equal(403);

    const before = (await gw.store.db('pickups').where({ id: p1.id }).first('wrapped_key')) as {
      wrapped_key: string;
    };
    // Password mails only: the sender's "your secure message was opened" notice for an earlier open may still
    // arrive now, and is not what this checks.
    const passwordMails = () => capture.messages.filter((m) => kindOf(m) === 'pickup-password').length;
    const mailsBefore = passwordMails();
    const wrong = await resend(ann, 'me', p1, 'not-my-password-000');
    expect(wrong.status).to.equal(401);
    expect(JSON.parse(wrong.body)).to.deep.include({ code: 'reauth_failed' });
    expect(await gw.store.db('pickups').where({ id: p1.id }).first('wrapped_key')).to.deep.equal(before);
    expect((await open(p1, p1.password)).status).to.equal(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(passwordMails()).to.equal(mailsBefore);
    // Still signed in: a wrong confirmation is not a sign-out.
    expect((await ann.b.go('/api/me/pickups')).status).to.equal(200);
  });

  it('an admin re-issues from the Pickups page (button, confirm form with CSRF)', async () => {
    const list = await adm.b.go('/admin/pickups');
    expect(list.body).to.contain(`href="/admin/pickups/${p1.id}/resend"`);
    const confirm = await adm.b.go(`/admin/pickups/${p1.id}/resend`);
    expect(confirm.status).to.equal(200);
    expect(confirm.body).to.match(/<input id="confirm-password" name="password" type="password"/);
    const noCsrf = await adm.b.post(`/admin/pickups/${p1.id}/resend`, { password: admin.password });
    expect(noCsrf.status).to.equal(403);
    const done = await adm.b.post(`/admin/pickups/${p1.id}/resend`, {
      _csrf: StaffBrowser.csrf(confirm.body),
      password: admin.password,
    });
    expect(done.status, done.body).to.equal(200);
    expect(done.body).to.contain('Password re-sent');
    const mail = await passwordMail(p1.reference, 3);
    expect((await open(p1, mail.password)).status).to.equal(200);
    expect((await open(p1, p1.password)).status).to.equal(401);
    p1.password = mail.password;
  });

  it('a password change re-wraps the key: re-issue works with the new password, not the old', async () => {
    const ann = await signedIn('ann@clinic.example', PW);
    const changed = await ann.b.post('/me/password', { _csrf: ann.csrf, current: PW, next: NEW_PW });
    expect(changed.status).to.equal(303);
    const again = await signedIn('ann@clinic.example', NEW_PW);
    expect((await resend(again, 'me', p1, PW)).status).to.equal(401);
    const res = await resend(again, 'me', p1, NEW_PW);
    expect(res.status, res.body).to.equal(200);
    const mail = await passwordMail(p1.reference, 4);
    expect((await open(p1, mail.password)).status).to.equal(200);
    p1.password = mail.password;
  });

  it('rate limited per pickup (429 with Retry-After); revoked → 410; an admin reset of the password ends it', async () => {
    const ann = await signedIn('ann@clinic.example', NEW_PW);
    // Five attempts per pickup per hour, whoever asks: five were made above (one with a wrong password).
    const limited = await fetch(`${base}/api/me/pickups/${p1.id}/resend-password`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-csrf-token': ann.csrf,
        cookie: [...ann.b.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      },
      body: JSON.stringify({ password: NEW_PW }),
    });
    expect(limited.status).to.equal(429);
    expect(((await limited.json()) as { code: string }).code).to.equal('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).to.be.within(1, 3600);
    await gw.store.db('rate_limits').where('key', 'like', 'pickup-reissue%').delete();

    // An admin resets ann's password with the CLI: her old key (and its escrow) is gone; the admin's still works.
    const cli = spawnSync(
      process.execPath,
      [path.join(ROOT, 'bin/phi-gateway.js'), 'users', 'reset-password', 'ann@clinic.example'],
      {
        env: { ...process.env, PHIGW_CONFIG: path.join(dir, 'config.yaml'), PHIGW_DATA_DIR: dir },
        input: 'reset-password-9012\n',
        encoding: 'utf8',
      },
    );
    expect(cli.status, cli.stderr).to.equal(0);
    const reset = await signedIn('ann@clinic.example', 'reset-password-9012');
    const refused = await resend(reset, 'me', p1, 'reset-password-9012');
    expect(refused.status).to.equal(409);
    expect(JSON.parse(refused.body)).to.deep.include({ code: 'key_reset' });
    expect((await reset.b.go(`/me/pickups/${p1.id}/resend`)).body).to.contain(
      'your key was created or reset',
    );

    const revoke = await adm.b.go(`/api/admin/pickups/${p1.id}/revoke`, {
      method: 'POST',
      headers: { 'x-csrf-token': adm.csrf },
    });
    expect(revoke.status).to.equal(204);
    const gone = await resend(adm, 'admin', p1, admin.password);
    expect(gone.status).to.equal(410);
    expect(await gw.store.db('pickup_escrow').where({ pickup_id: p1.id })).to.have.length(0);
  });

  it('in Chromium: My pickups → Resend password → confirm → done; the new password opens the pickup', async () => {
    const p2 = await pickupOf(await sendPhi(gw.smtpPort, 'ann@clinic.example', 'patient2@mail.example'));
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${base}/login`);
      await page.getByLabel('Email').fill('ann@clinic.example');
      await page.getByLabel('Password').fill('reset-password-9012');
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      await page.goto(`${base}/me/pickups`);
      await accessible(page, 'me-pickups');
      const row = page.locator('tr', { hasText: 'patient2@mail.example' });
      await row.getByRole('link', { name: 'Resend password' }).click();
      await page.getByRole('heading', { level: 1, name: 'Resend the password' }).waitFor();
      await accessible(page, 'me-pickup-resend');
      await page.getByLabel('Confirm with your own sign-in password').fill('wrong-password-000');
      await page.getByRole('button', { name: 'Resend password' }).click();
      expect(await page.getByRole('alert').innerText()).to.contain('not right');
      await page.getByLabel('Confirm with your own sign-in password').fill('reset-password-9012');
      await page.getByRole('button', { name: 'Resend password' }).click();
      await page.getByRole('heading', { level: 1, name: 'Password re-sent' }).waitFor();
      await accessible(page, 'me-pickup-resent');
    } finally {
      await browser.close();
    }
    const mail = await passwordMail(p2.reference, 2);
    expect((await open(p2, mail.password)).status).to.equal(200);
    expect((await open(p2, p2.password)).status).to.equal(401);
  });

  it('no pickup password is at rest: not in the data directory, the database or its WAL', async () => {
    expect(passwords.length).to.be.at.least(6);
    // Delivered password mails are removed from the queue; wait for the queue to drain first.
    await until(async () => {
      const pending = (await gw.store
        .db('envelopes')
        .whereIn('state', ['queued', 'sending', 'deferred'])
        .first('id')) as { id: number } | undefined;
      return pending ? undefined : true;
    });
    const needles = passwords.flatMap((p) => [p, p.replace(/-/g, '')]).map((n) => Buffer.from(n));
    const hits: string[] = [];
    for (const file of await filesUnder(dir)) {
      const data = await readFile(file);
      for (const n of needles)
        if (data.includes(n)) hits.push(`${path.relative(dir, file)}: ${n.toString()}`);
    }
    expect(hits).to.deep.equal([]);
  });
});

describe('web: resend a pickup password by the other channels (integration)', function () {
  this.timeout(60000);
  // 'sender (Settings page)': the config file says email; an admin chose the sender on the Settings page.
  const cases = [
    { route: 'sender', viaSettings: false },
    { route: 'sms', viaSettings: false },
    { route: 'sender', viaSettings: true },
  ] as const;
  for (const { route, viaSettings } of cases) {
    it(`passwordDelivery ${route}${viaSettings ? ' (set on the Settings page)' : ''}: the new password goes the same way as the first`, async () => {
      const dir = await tempDir();
      const capture = new CaptureServer();
      await capture.start();
      const posts: Array<{ to: string; text: string; reference: string }> = [];
      const sms = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          posts.push(JSON.parse(body) as { to: string; text: string; reference: string });
          res.writeHead(202).end();
        });
      });
      await new Promise<void>((r) => sms.listen(0, '127.0.0.1', r));
      const smsUrl = `http://127.0.0.1:${(sms.address() as AddressInfo).port}/sms`;
      const webPort = await freePort();
      const base = `http://127.0.0.1:${webPort}`;
      const gw = await startGateway({
        relayUrl: capture.url,
        dataDir: dir,
        overrides: {
          pickup: {
            passwordDelay: 0,
            passwordDelivery: viaSettings ? 'email' : route,
            ...(route === 'sms' ? { smsWebhookUrl: smsUrl } : {}),
          },
          web: { port: webPort, publicUrl: base },
        },
      });
      const server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
        webPort,
        '127.0.0.1',
      );
      try {
        await new Promise((r) => server.once('listening', r));
        await addStaff(gw.store, 'ann@clinic.example', 'staff', 'ann-password-1234');
        if (viaSettings)
          await uiSettings(gw.store, gw.config).update({ passwordDelivery: route }, 'admin@clinic.example');
        const ann = new StaffBrowser(base);
        expect((await ann.signIn('ann@clinic.example', 'ann-password-1234')).status).to.equal(303);
        const csrf = StaffBrowser.csrf((await ann.go('/me')).body);
        const id = await sendPhi(gw.smtpPort, 'ann@clinic.example', 'patient@mail.example');
        const pickup = await until(
          async () =>
            (await gw.store.db('pickups').where({ message_id: id }).first()) as
              { id: string; reference: string } | undefined,
        );
        /** Passwords so far for this pickup, by the configured channel. */
        const sent = async (): Promise<string[]> => {
          if (route === 'sms')
            return posts
              .filter((p) => p.reference === pickup.reference && p.to === 'patient@mail.example')
              .map((p) => /is ([a-z0-9-]{20,})$/.exec(p.text)![1]!);
          const mails = capture.messages.filter(
            (m) =>
              kindOf(m) === 'pickup-password' &&
              m.to.includes('ann@clinic.example') &&
              m.raw.includes(`reference ${pickup.reference}`),
          );
          return Promise.all(
            mails.map(async (m) => /^Password: (\S+)$/m.exec((await simpleParser(m.raw)).text ?? '')![1]!),
          );
        };
        const [first] = await until(async () => ((await sent()).length === 1 ? sent() : undefined));
        const res = await ann.go(`/api/me/pickups/${pickup.id}/resend-password`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
          body: JSON.stringify({ password: 'ann-password-1234' }),
        });
        expect(res.status, res.body).to.equal(200);
        expect((JSON.parse(res.body) as { route: string }).route).to.equal(route);
        const [, second] = await until(async () => ((await sent()).length === 2 ? sent() : undefined));
        expect(second).to.not.equal(first);
        const notice = capture.messages.find((m) => kindOf(m) === 'pickup-notice')!;
        const token = /\/p\/([A-Za-z0-9_-]+)/.exec((await simpleParser(notice.raw)).text ?? '')![1]!;
        const open = (password: string) =>
          fetch(`${base}/api/pickups/${token}/open`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ password }),
          });
        expect((await open(second!)).status).to.equal(200);
        expect((await open(first!)).status).to.equal(401);
      } finally {
        server.closeAllConnections();
        server.close();
        sms.close();
        await gw.stop();
        await capture.stop();
        await removeDir(dir);
      }
    });
  }
});
