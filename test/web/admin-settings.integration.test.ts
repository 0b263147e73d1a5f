// The Settings page and /api/admin/settings over real HTTP, with a real gateway (SMTP on loopback, a capture
// server as next hop) sharing the store: 401/403/CSRF refusals, validation that changes nothing, audit rows,
// and changes that apply to the next message and the next pickup page without a restart.
import type { Server } from 'node:http';
import { expect } from 'chai';
import { simpleParser } from 'mailparser';
import sharp from 'sharp';
import { createLogger } from '../../config/log.js';
import { createWebApp } from '../../web/app.js';
import { CaptureServer, kindOf } from '../support/capture-server.js';
import { until } from '../support/waiting.js';
import { Browser, makeAdmin } from '../support/admin-browser.js';
import { freePort, removeDir, startGateway, tempDir, type RunningGateway } from '../support/gateway.js';
import { queueIdOf, sendMessage } from '../support/smtp-client.js';
import { addStaff, StaffBrowser } from '../support/staff-browser.js';

const DAY = 24 * 60 * 60 * 1000;
const PHI_BODY =
  'Patient: Jane Roe, DOB 04/12/1961, MRN 48213377.\r\nShe was diagnosed with type 2 diabetes.\r\n';

async function send(port: number, rcpt: string, subject = 'Results'): Promise<string> {
  const message =
    `From: Ann <ann@clinic.example>\r\nTo: ${rcpt}\r\nSubject: ${subject}\r\n` +
    `Message-ID: <${Math.random().toString(36).slice(2)}@clinic.example>\r\nMIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n\r\n${PHI_BODY}`;
  return queueIdOf(await sendMessage(port, 'ann@clinic.example', rcpt, message));
}

function multipart(fields: Record<string, string>, file?: { name: string; type: string; content: Buffer }) {
  const boundary = `----phigw${Math.random().toString(36).slice(2)}`;
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields))
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  if (file)
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="logo"; filename="${file.name}"\r\nContent-Type: ${file.type}\r\n\r\n`,
      ),
      file.content,
      Buffer.from('\r\n'),
    );
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), type: `multipart/form-data; boundary=${boundary}` };
}

describe('web/admin-settings (integration)', function () {
  this.timeout(90000);
  let dir: string;
  let capture: CaptureServer;
  let gw: RunningGateway;
  let server: Server;
  let base: string;
  let admin: Browser;
  let csrf: string;

  const settingsAudits = async () =>
    (await gw.store.db('audit_events').where({ type: 'settings.changed' }).orderBy('seq')) as Array<{
      actor: string;
      detail: string;
    }>;
  const put = (body: unknown, token = csrf) => admin.json('/api/admin/settings', 'PUT', body, token);
  const noticeFor = (rcpt: string, after: number) =>
    until(() =>
      capture.messages.find((m) => m.at >= after && kindOf(m) === 'pickup-notice' && m.to.includes(rcpt)),
    );

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
        practiceName: 'File Practice',
        policy: { internalDomains: ['clinic.example'] },
        pickup: { passwordDelay: 0 },
        web: { port: webPort, publicUrl: base },
      },
    });
    server = createWebApp({ config: gw.config, store: gw.store, log: createLogger('silent') }).listen(
      webPort,
      '127.0.0.1',
    );
    await new Promise((r) => server.once('listening', r));
    const secret = await makeAdmin(gw.store, 'admin@clinic.example', 'admin-password-123');
    admin = new Browser(base);
    csrf = await admin.signInAdmin('admin@clinic.example', 'admin-password-123', secret);
    expect(csrf).to.not.equal('');
  });

  after(async () => {
    server?.closeAllConnections();
    server?.close();
    await gw?.stop();
    await capture?.stop();
    if (dir) await removeDir(dir);
  });

  it('answers 401 without a session, 403 for staff, and 403 without the CSRF token', async () => {
    const anon = new Browser(base);
    expect((await anon.go('/api/admin/settings')).status).to.equal(401);
    expect((await anon.json('/api/admin/settings', 'PUT', { practiceName: 'X' }, '')).status).to.equal(401);
    const page = await anon.go('/admin/settings');
    expect(page.status).to.equal(303);
    expect(page.location).to.equal('/login?next=%2Fadmin%2Fsettings');
    expect((await anon.post('/admin/settings', { section: 'practice', practiceName: 'X' })).status).to.equal(
      303,
    );

    const staffAccount = await addStaff(gw.store, 'ann@clinic.example', 'staff');
    const staff = new StaffBrowser(base);
    expect((await staff.signIn(staffAccount.email, staffAccount.password)).status).to.equal(303);
    const staffCsrf = StaffBrowser.csrf((await staff.go('/me')).body);
    expect(staffCsrf).to.not.equal('');
    expect((await staff.go('/api/admin/settings')).status).to.equal(403);
    expect((await staff.go('/admin/settings')).status).to.equal(403);
    const staffPut = await staff.go('/api/admin/settings', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-csrf-token': staffCsrf },
      body: JSON.stringify({ practiceName: 'Staff Was Here' }),
    });
    expect(staffPut.status).to.equal(403);
    expect(
      (
        await staff.post('/admin/settings', {
          _csrf: staffCsrf,
          section: 'practice',
          practiceName: 'Staff Was Here',
        })
      ).status,
    ).to.equal(403);

    expect((await put({ practiceName: 'No Token' }, '')).status).to.equal(403);
    expect(
      (await admin.post('/admin/settings', { section: 'practice', practiceName: 'No Token' })).status,
    ).to.equal(403);
    expect(
      (
        await admin.post('/admin/settings', {
          _csrf: 'x'.repeat(32),
          section: 'practice',
          practiceName: 'No Token',
        })
      ).status,
    ).to.equal(403);
    const logo = multipart({}, { name: 'a.png', type: 'image/png', content: Buffer.from('x') });
    expect(
      (
        await admin.go('/admin/settings/logo', {
          method: 'POST',
          headers: { 'content-type': logo.type },
          body: logo.body,
        })
      ).status,
    ).to.equal(403);
    expect((await admin.go('/api/admin/settings')).body).not.to.contain('Staff Was Here');
    expect(await settingsAudits()).to.have.length(0);
  });

  it('GET shows the config file values until something is set', async () => {
    const res = await admin.go('/api/admin/settings');
    expect(res.status).to.equal(200);
    const body = JSON.parse(res.body) as {
      settings: Record<string, unknown>;
      overrides: Record<string, unknown>;
      passwordDeliveryChoices: string[];
      logo: unknown;
    };
    expect(body.settings).to.deep.equal({
      practiceName: 'File Practice',
      pickupExpiryDays: 30,
      passwordDelivery: 'email',
      internalDomains: ['clinic.example'],
    });
    expect(body.overrides).to.deep.equal({});
    expect(body.passwordDeliveryChoices).to.deep.equal(['email', 'sender']);
    expect(body.logo).to.equal(null);
  });

  it('refuses invalid values with an error per field and changes nothing', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ practiceName: '' }, 'practiceName'],
      [{ practiceName: '<script>alert(1)</script>' }, 'practiceName'],
      [{ pickupExpiryDays: 0 }, 'pickupExpiryDays'],
      [{ pickupExpiryDays: 400 }, 'pickupExpiryDays'],
      [{ passwordDelivery: 'sms' }, 'passwordDelivery'],
      [{ internalDomains: ['clinic.example', 'not a domain!'] }, 'internalDomains'],
      [{ practiceName: 'Fine', internalDomains: ['bad_domain'] }, 'internalDomains'],
      [{ relay: 'smtp://evil.example' }, 'form'],
    ];
    for (const [change, field] of cases) {
      const res = await put(change);
      expect(res.status, JSON.stringify(change)).to.equal(422);
      const errors = (JSON.parse(res.body) as { errors: Record<string, string> }).errors;
      expect(errors[field], JSON.stringify(change)).to.be.a('string');
    }
    expect(
      (await admin.go('/api/admin/settings', { method: 'PUT', body: 'practiceName=x' })).status,
    ).to.equal(415);
    const state = JSON.parse((await admin.go('/api/admin/settings')).body) as {
      settings: { practiceName: string };
      version: number;
    };
    expect(state.settings.practiceName).to.equal('File Practice');
    expect(state.version).to.equal(0);
    expect(await settingsAudits()).to.have.length(0);

    // The page shows the error under its field, keeps what was typed, and marks the field invalid.
    const page = await admin.post('/admin/settings', {
      _csrf: csrf,
      section: 'routing',
      internalDomains: 'clinic.example\nnot a domain!',
    });
    expect(page.status).to.equal(422);
    expect(page.body).to.contain('role="alert"');
    expect(page.body).to.match(
      /<p class="field-error" id="internalDomains-error">not a domain! is not a domain name\./,
    );
    expect(page.body).to.match(/id="internalDomains"[^>]*aria-invalid="true"/);
    expect(page.body).to.contain('clinic.example\nnot a domain!</textarea>');
    const days = await admin.post('/admin/settings', {
      _csrf: csrf,
      section: 'pickup',
      pickupExpiryDays: 'soon',
      passwordDelivery: 'email',
    });
    expect(days.status).to.equal(422);
    expect(days.body).to.match(/id="pickupExpiryDays-error">Enter a whole number of days\./);
    expect(await settingsAudits()).to.have.length(0);
  });

  it('internal domains: the next SMTP message to a newly internal domain goes out clear, and protected again after a reset', async () => {
    const rcpt = 'dr.lee@partner-clinic.example';
    let t = Date.now();
    await send(gw.smtpPort, rcpt);
    await noticeFor(rcpt, t);
    // The first message's password mail too, so nothing of it is still on its way when the second is sent.
    await until(() => capture.messages.find((m) => m.at >= t && kindOf(m) === 'pickup-password'));

    const saved = await admin.post('/admin/settings', {
      _csrf: csrf,
      section: 'routing',
      internalDomains: 'clinic.example\nPartner-Clinic.example',
    });
    expect(saved.status).to.equal(303);
    expect(saved.location).to.equal('/admin/settings?saved=routing');
    const page = await admin.go(saved.location!);
    expect(page.body).to.match(/<p class="ok" role="status">Internal domains saved\./);

    t = Date.now();
    const id = await send(gw.smtpPort, rcpt);
    const clear = await until(() => capture.messages.find((m) => m.at >= t && m.to.includes(rcpt)));
    expect(kindOf(clear)).to.equal('relay');
    expect(clear.raw.toString('latin1')).to.contain('diagnosed with type 2 diabetes');
    const env = (await gw.store.db('envelopes').where({ message_id: id })) as Array<{ kind: string }>;
    expect(env.map((e) => e.kind)).to.deep.equal(['relay']);

    const audits = await settingsAudits();
    expect(audits).to.have.length(1);
    expect(audits[0]!.actor).to.equal('admin@clinic.example');
    expect(JSON.parse(audits[0]!.detail)).to.deep.equal({ keys: ['internalDomains'] });
    expect(audits[0]!.detail).not.to.contain('partner-clinic');

    const reset = await admin.post('/admin/settings', { _csrf: csrf, section: 'routing', reset: '1' });
    expect(reset.location).to.equal('/admin/settings?saved=reset');
    t = Date.now();
    await send(gw.smtpPort, rcpt);
    const notice = await noticeFor(rcpt, t);
    expect(notice.raw.toString('latin1')).not.to.contain('diabetes');
  });

  it('practice name and expiry: the next pickup notice carries the new name, the pickup the new expiry, and the page shows it', async () => {
    const res = await put({ practiceName: 'Riverside Dental', pickupExpiryDays: 3 });
    expect(res.status).to.equal(200);
    const body = JSON.parse(res.body) as { changed: string[]; settings: { practiceName: string } };
    expect(body.changed).to.deep.equal(['practiceName', 'pickupExpiryDays']);
    const audit = (await settingsAudits()).at(-1)!;
    expect(JSON.parse(audit.detail)).to.deep.equal({
      keys: ['practiceName', 'pickupExpiryDays'],
      practiceName: 'Riverside Dental',
    });

    const rcpt = 'patient@mail.example';
    const t = Date.now();
    const id = await send(gw.smtpPort, rcpt, 'Your results');
    const notice = await noticeFor(rcpt, t);
    const parsed = await simpleParser(notice.raw);
    expect(parsed.subject).to.equal('Secure message from Riverside Dental');
    expect(parsed.text).to.contain('through Riverside Dental');
    expect(parsed.text).not.to.contain('File Practice');
    const pickup = (await gw.store.db('pickups').where({ message_id: id }).first()) as {
      created_at: number;
      expires_at: number;
    };
    expect(Number(pickup.expires_at) - Number(pickup.created_at)).to.be.closeTo(3 * DAY, 60_000);

    const link = /\/p\/([A-Za-z0-9_-]+)/.exec(parsed.text ?? '')![0];
    const portal = await fetch(base + link);
    const text = await portal.text();
    expect(text).to.contain('<title>Enter your password · Riverside Dental</title>');
    expect(text).to.contain('<span class="brand">Riverside Dental</span>');
    expect(text).not.to.contain('brand-logo');
  });

  it('logo: a PNG is re-encoded (bounded, metadata gone), served with its type and shown on the pickup page', async () => {
    const big = await sharp({ create: { width: 1600, height: 800, channels: 3, background: '#2255aa' } })
      .png()
      .withMetadata({ exif: { IFD0: { Copyright: 'Secret Owner', Artist: 'Dr Who' } } })
      .toBuffer();
    expect((await sharp(big).metadata()).exif).to.be.an.instanceOf(Buffer);
    const form = multipart({ _csrf: csrf }, { name: 'logo.png', type: 'image/png', content: big });
    const up = await admin.go('/admin/settings/logo', {
      method: 'POST',
      headers: { 'content-type': form.type },
      body: form.body,
    });
    expect(up.status, up.body.slice(0, 400)).to.equal(303);
    expect(up.location).to.equal('/admin/settings?saved=logo');

    const served = await fetch(`${base}/branding/logo`);
    expect(served.status).to.equal(200);
    expect(served.headers.get('content-type')).to.equal('image/png');
    expect(served.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(served.headers.get('etag')).to.match(/^"[0-9a-f]{16}"$/);
    const bytes = Buffer.from(await served.arrayBuffer());
    const meta = await sharp(bytes).metadata();
    expect(meta.format).to.equal('png');
    expect(meta.width).to.be.at.most(600);
    expect(meta.height).to.be.at.most(200);
    expect(meta.exif).to.equal(undefined);
    expect(bytes.toString('latin1')).not.to.contain('Secret Owner');
    const again = await fetch(`${base}/branding/logo`, {
      headers: { 'if-none-match': served.headers.get('etag')! },
    });
    expect(again.status).to.equal(304);
    const etag = served.headers.get('etag')!.replace(/"/g, '');
    const versioned = await fetch(`${base}/branding/logo?v=${etag}`);
    expect(versioned.headers.get('cache-control')).to.contain('max-age=86400');

    const rcpt = 'logo.patient@mail.example';
    const t = Date.now();
    await send(gw.smtpPort, rcpt);
    const notice = await simpleParser((await noticeFor(rcpt, t)).raw);
    const link = /\/p\/([A-Za-z0-9_-]+)/.exec(notice.text ?? '')![0];
    const page = await (await fetch(base + link)).text();
    expect(page).to.contain(`<img class="brand-logo" src="/branding/logo?v=${etag}" alt="Riverside Dental">`);

    const settingsPage = await admin.go('/admin/settings');
    expect(settingsPage.body).to.contain(`<img src="/branding/logo?v=${etag}" alt="Riverside Dental">`);
  });

  it('logo: SVG, a renamed text file and a file over 200 KB are refused on the page; removing it takes it off the pickup page', async () => {
    const before = (await settingsAudits()).length;
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    const noise = await sharp(
      Buffer.from(Array.from({ length: 400 * 400 * 3 }, () => Math.floor(Math.random() * 256))),
      {
        raw: { width: 400, height: 400, channels: 3 },
      },
    )
      .png({ compressionLevel: 0 })
      .toBuffer();
    expect(noise.length).to.be.above(200 * 1024);
    const refusals: Array<[string, string, Buffer, RegExp]> = [
      ['logo.svg', 'image/svg+xml', svg, /PNG or JPEG/],
      ['logo.png', 'image/png', Buffer.from('not really an image'), /PNG or JPEG/],
      [
        'logo.png',
        'image/png',
        Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(64)]),
        /could not be read/,
      ],
      ['logo.png', 'image/png', noise, /too large/],
    ];
    for (const [name, type, content, message] of refusals) {
      const form = multipart({ _csrf: csrf }, { name, type, content });
      const res = await admin.go('/admin/settings/logo', {
        method: 'POST',
        headers: { 'content-type': form.type },
        body: form.body,
      });
      expect(res.status, name).to.be.oneOf([413, 422]);
      expect(res.body, name).to.match(/<p class="field-error" id="logo-error">/);
      expect(/id="logo-error">([^<]*)/.exec(res.body)![1], name).to.match(message);
    }
    const api = await admin.go('/api/admin/settings/logo', {
      method: 'PUT',
      headers: { 'content-type': 'image/png', 'x-csrf-token': csrf },
      body: svg,
    });
    expect(api.status).to.equal(422);
    expect((await settingsAudits()).length).to.equal(before);

    const removed = await admin.post('/admin/settings/logo/remove', { _csrf: csrf });
    expect(removed.location).to.equal('/admin/settings?saved=logo-removed');
    expect((await fetch(`${base}/branding/logo`)).status).to.equal(404);
    const audits = await settingsAudits();
    expect(audits).to.have.length(before + 1);
    expect(JSON.parse(audits.at(-1)!.detail)).to.deep.equal({ keys: ['logo'] });
    const unknown = await (await fetch(`${base}/p/${'A'.repeat(43)}`)).text();
    expect(unknown).not.to.contain('brand-logo');
    expect(unknown).to.contain('<span class="brand">Riverside Dental</span>');
  });

  it('marks the current section in the top bar, Settings included', async () => {
    const page = await admin.go('/admin/settings');
    expect(page.body).to.contain('<a href="/admin/settings" aria-current="page">Settings</a>');
    expect(page.body.match(/aria-current="page"/g)).to.have.length(1);
    const dash = await admin.go('/admin');
    expect(dash.body).to.contain('<a href="/admin" aria-current="page">Dashboard</a>');
    expect(dash.body).to.contain('<a href="/admin/settings">Settings</a>');
    const rule = await admin.go('/admin/rules/versions');
    expect(rule.body).to.contain('<a href="/admin/rules" aria-current="page">DLP rules</a>');
    const password = await admin.go('/me/password');
    expect(password.body).not.to.match(/staff-nav[\s\S]*aria-current="page"[\s\S]*<\/nav>/);
  });
});
