// Staff and admin sign-in over real HTTP with a real SQLite store: redirects and 401s without a session,
// CSRF on every form, admin TOTP enrolment and use (no replay), lockout, no user enumeration, sign-out
// everywhere on a password change, and the audit check that finds a row edited in the database.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { loadConfig, type ResolvedConfig } from '../../config/load.js';
import { createLogger } from '../../config/log.js';
import { Store } from '../../store/store.js';
import { addUser } from '../../store/users.js';
import { createWebApp } from '../../web/app.js';
import { base32Decode, totp } from '../../web/totp.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { StaffBrowser as Browser } from '../support/staff-browser.js';

describe('web/staff-auth', function () {
  this.timeout(30000);
  let dir: string;
  let store: Store;
  let server: Server;
  let base: string;
  let config: ResolvedConfig;

  before(async () => {
    dir = await tempDir();
    config = loadConfig({ PHIGW_DATA_DIR: dir });
    store = await Store.open(config);
    await addUser(store.db, 'staff@clinic.example', 'staff', 'staff-password-123');
    await addUser(store.db, 'admin@clinic.example', 'admin', 'admin-password-123');
    await addUser(store.db, 'audit@clinic.example', 'auditor', 'audit-password-123');
    await addUser(store.db, 'lock@clinic.example', 'staff', 'lock-password-1234');
    server = createWebApp({ config, store, log: createLogger('silent') }).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.close();
    await store.close();
    await removeDir(dir);
  });

  it('sends the unauthenticated to /login and answers the API with 401', async () => {
    const b = new Browser(base);
    for (const path of ['/admin', '/admin/audit', '/me']) {
      const res = await b.go(path);
      expect(res.status, path).to.equal(303);
      expect(res.location).to.equal(`/login?next=${encodeURIComponent(path)}`);
    }
    for (const path of ['/api/admin/dashboard', '/api/admin/audit', '/api/me/messages']) {
      expect((await b.go(path)).status, path).to.equal(401);
    }
    expect((await b.go('/api/admin/audit/verify', { method: 'POST' })).status).to.equal(401);
  });

  it('refuses a sign-in form without its CSRF token', async () => {
    const b = new Browser(base);
    await b.go('/login');
    const res = await b.post('/login', {
      _csrf: 'forged',
      email: 'staff@clinic.example',
      password: 'staff-password-123',
    });
    expect(res.status).to.equal(403);
  });

  it('signs staff in without TOTP, to their own pages only', async () => {
    const b = new Browser(base);
    const res = await b.signIn('staff@clinic.example', 'staff-password-123');
    expect(res.status).to.equal(303);
    expect(res.location).to.equal('/me');
    const me = await b.go('/me');
    expect(me.status).to.equal(200);
    expect(me.body).to.contain('My messages');
    expect((await b.go('/admin')).status).to.equal(403);
    expect((await b.go('/api/admin/dashboard')).status).to.equal(403);
    expect((await b.go('/api/me/messages')).status).to.equal(200);
  });

  it('makes an admin enrol TOTP, then asks for a fresh code at every sign-in', async () => {
    const b = new Browser(base);
    const first = await b.signIn('admin@clinic.example', 'admin-password-123');
    expect(first.location).to.equal('/login/mfa/setup');
    expect((await b.go('/admin')).status, 'not signed in before enrolment').to.equal(303);
    const setup = await b.go('/login/mfa/setup');
    expect(setup.body).to.contain('<svg');
    const secret = base32Decode(/<code class="secret">([A-Z2-7 ]+)<\/code>/.exec(setup.body)![1]!);
    const wrong = await b.post('/login/mfa/setup', { _csrf: Browser.csrf(setup.body), code: '000000' });
    expect(wrong.status).to.equal(401);
    // The exact code used to enrol, and when: replaying it later must fail even if the clock moved on.
    const enrolledAt = Date.now();
    const enrolCode = totp(secret, enrolledAt);
    const ok = await b.post('/login/mfa/setup', { _csrf: Browser.csrf(setup.body), code: enrolCode });
    expect(ok.location).to.equal('/admin');
    const dash = await b.go('/admin');
    expect(dash.status).to.equal(200);
    expect(dash.body).to.contain('Messages per day');

    // Sign out, sign in again: the code is asked for, the one just used is refused (replay), the next works.
    const out = await b.post('/logout', { _csrf: Browser.csrf(dash.body) });
    expect(out.location).to.equal('/login');
    expect((await b.go('/admin')).status).to.equal(303);
    const again = await b.signIn('admin@clinic.example', 'admin-password-123');
    expect(again.location).to.match(/^\/login\/mfa\?/);
    const form = await b.go('/login/mfa');
    expect(form.body).not.to.contain('<svg');
    const replay = await b.post('/login/mfa', {
      _csrf: Browser.csrf(form.body),
      code: enrolCode,
      next: '',
    });
    expect(replay.status).to.equal(401);
    const next = await b.post('/login/mfa', {
      _csrf: Browser.csrf(form.body),
      code: totp(secret, enrolledAt + 30_000),
      next: '',
    });
    expect(next.location).to.equal('/admin');
    expect((await b.go('/admin/quarantine')).status).to.equal(200);
  });

  it('answers a wrong password and an unknown account alike, and locks after five failures', async () => {
    const b = new Browser(base);
    const unknown = await b.signIn('nobody@clinic.example', 'whatever-password');
    const wrong = await b.signIn('lock@clinic.example', 'not-the-password');
    expect(unknown.status).to.equal(401);
    expect(wrong.status).to.equal(401);
    const msg = (body: string) => /<p class="error" role="alert">([^<]+)<\/p>/.exec(body)?.[1];
    expect(msg(unknown.body)).to.equal(msg(wrong.body));
    for (let i = 0; i < 4; i++) await b.signIn('lock@clinic.example', 'not-the-password');
    const locked = await b.signIn('lock@clinic.example', 'lock-password-1234');
    expect(locked.status, 'right password while locked').to.equal(401);
    const events = (await store.db('audit_events').where({ type: 'auth.locked' })) as unknown[];
    expect(events).to.have.length(1);
  });

  it('signs a user out everywhere when the password changes', async () => {
    const one = new Browser(base);
    const two = new Browser(base);
    await one.signIn('audit@clinic.example', 'audit-password-123');
    await two.signIn('audit@clinic.example', 'audit-password-123');
    expect((await two.go('/admin/audit')).status).to.equal(200);
    const form = await one.go('/me/password');
    const res = await one.post('/me/password', {
      _csrf: Browser.csrf(form.body),
      current: 'audit-password-123',
      next: 'a-new-password-456',
    });
    expect(res.location).to.equal('/login');
    expect((await one.go('/admin/audit')).status).to.equal(303);
    expect((await two.go('/admin/audit')).status, 'the other session ended too').to.equal(303);
    expect((await new Browser(base).signIn('audit@clinic.example', 'a-new-password-456')).location).to.equal(
      '/admin/audit',
    );
  });

  it('lets an auditor verify the audit log, and finds a row edited in the database', async () => {
    const b = new Browser(base);
    await b.signIn('audit@clinic.example', 'a-new-password-456');
    const page = await b.go('/admin/audit');
    expect(page.status).to.equal(200);
    expect((await b.post('/admin/audit/verify', {})).status, 'no CSRF token').to.equal(403);
    const intact = await b.post('/admin/audit/verify', { _csrf: Browser.csrf(page.body) });
    expect(intact.body).to.contain('The audit log is intact');
    const row = (await store.db('audit_events').orderBy('seq').first()) as { seq: number };
    await store.db('audit_events').where({ seq: row.seq }).update({ actor: 'someone-else@clinic.example' });
    const broken = await b.post('/admin/audit/verify', { _csrf: Browser.csrf(page.body) });
    expect(broken.body).to.contain('tampered with');
    expect(broken.body).to.contain(`breaks at event ${row.seq}`);
    const csv = await b.go('/admin/audit.csv');
    expect(csv.status).to.equal(200);
    expect(csv.body.split('\r\n')[0]).to.equal('seq,at,time_utc,type,actor,message_id,detail,prev_hash,hash');
  });
});
