// The pickup portal over real HTTP on loopback with a real SQLite store: the JSON API contract of DESIGN.md,
// the pages (fetch changes nothing, CSRF, headers, sandboxed HTML), downloads and secure replies.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { listReplies, readReply } from '../../store/pickup-replies.js';
import { createPickups, listPickups, revokePickup, type CreatedPickup } from '../../store/pickups.js';
import type { Store } from '../../store/store.js';
import { prepareMailHtml, safeFilename } from '../../web/pickup-portal.js';
import { MARKER, PDF, PNG, makeWebContent, startPortal } from '../support/portal.js';

/** A tiny cookie jar: name → value, from Set-Cookie. */
class Jar {
  readonly values = new Map<string, string>();
  readonly raw: string[] = [];
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      this.raw.push(c);
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/Max-Age=0/i.test(c)) this.values.delete(name);
      else this.values.set(name, value);
    }
  }
  header(): string {
    return [...this.values].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

describe('web/pickup-portal (integration)', function () {
  this.timeout(30000);
  let portal: Awaited<ReturnType<typeof startPortal>>;
  let base: string;
  let store: Store;

  before(async () => {
    portal = await startPortal();
    base = portal.base;
    store = portal.store;
  });
  after(async () => {
    await portal.stop();
  });
  // Every request comes from 127.0.0.1: each test starts as a fresh client, with no IP failures counted.
  beforeEach(async () => {
    await store.write((trx) => trx('pickup_ip_limits').delete());
  });

  const create = async (recipients = ['patient@example.org'], expiresAt = Date.now() + 86_400_000) =>
    createPickups(store, {
      messageId: 'MSGW',
      sender: 'dr.smith@clinic.example',
      recipients,
      content: makeWebContent(),
      expiresAt,
    });
  const one = async (): Promise<CreatedPickup> => (await create())[0]!;

  const api = (token: string, password: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}/api/pickups/${token}/open`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ password }),
    });

  /** GET the page (CSRF cookie), POST the password, follow nothing. */
  async function login(p: CreatedPickup, password = p.password, jar = new Jar()) {
    const page = await fetch(`${base}/p/${p.token}`, { headers: { cookie: jar.header() } });
    jar.take(page);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
    const res = await fetch(`${base}/p/${p.token}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
      body: new URLSearchParams({ csrf, password }).toString(),
    });
    jar.take(res);
    return { res, jar, csrf };
  }

  describe('JSON API (DESIGN.md contract)', () => {
    it('200 with from, to, subject, date, text, html and attachments (id, filename, contentType, size, url)', async () => {
      const p = await one();
      const res = await api(p.token, p.password);
      expect(res.status).to.equal(200);
      expect(res.headers.get('cache-control')).to.equal('no-store');
      const body = (await res.json()) as Record<string, unknown> & {
        attachments: Array<Record<string, unknown>>;
      };
      expect(Object.keys(body).sort()).to.deep.equal([
        'attachments',
        'date',
        'from',
        'html',
        'subject',
        'text',
        'to',
      ]);
      expect(body.from).to.equal('dr.smith@clinic.example');
      expect(body.to).to.deep.equal(['patient@example.org']);
      expect(body.subject).to.equal(`Results ${MARKER}`);
      expect(body.text).to.equal(`Your result ${MARKER} is normal.`);
      expect(body.attachments).to.have.length(2);
      for (const a of body.attachments)
        expect(Object.keys(a).sort()).to.deep.equal(['contentType', 'filename', 'id', 'size', 'url']);
      expect(body.attachments[0]).to.deep.include({
        filename: 'results.pdf',
        contentType: 'application/pdf',
        size: PDF.length,
      });
      // The url downloads the exact bytes with the session cookie the API response set, and not without it.
      const jar = new Jar();
      jar.take(res);
      const cookie = jar.raw.find((c) => c.startsWith('phigw_pickup='))!;
      expect(cookie)
        .to.match(/HttpOnly/)
        .and.match(/SameSite=Strict/)
        .and.match(new RegExp(`Path=/p/${p.token}`));
      const url = `${base}${String(body.attachments[0]!.url)}`;
      const dl = await fetch(url, { headers: { cookie: jar.header() } });
      expect(dl.status).to.equal(200);
      expect(Buffer.from(await dl.arrayBuffer()).equals(PDF)).to.equal(true);
      expect(dl.headers.get('content-disposition')).to.match(/^attachment; filename="results\.pdf"/);
      expect(dl.headers.get('x-content-type-options')).to.equal('nosniff');
      expect(dl.headers.get('cache-control')).to.equal('no-store');
      const noSession = await fetch(url);
      expect(noSession.status).to.equal(401);
      expect(Buffer.from(await noSession.arrayBuffer()).includes(PDF)).to.equal(false);
      const forged = await fetch(url, {
        headers: { cookie: `phigw_pickup=${'A'.repeat(24)}.${'B'.repeat(43)}` },
      });
      expect(forged.status).to.equal(401);
    });

    it('401 for a wrong password', async () => {
      const p = await one();
      const res = await api(p.token, 'abcd-efgh-jkmn-pqrs-tuvw', { 'x-forwarded-for': 'ignored' });
      expect(res.status).to.equal(401);
      expect(await res.json()).to.deep.equal({ error: 'wrong_password' });
    });

    it('423 with Retry-After once locked', async () => {
      const p = await one();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await api(p.token, `wrong-${i}`)).status);
      expect(statuses).to.deep.equal([401, 401, 401, 401, 423]);
      const res = await api(p.token, p.password);
      expect(res.status).to.equal(423);
      expect(Number(res.headers.get('retry-after'))).to.be.within(1, 900);
    });

    it('410 once revoked or expired', async () => {
      const [a] = await create();
      await revokePickup(store, a!.id, 'admin');
      expect((await api(a!.token, a!.password)).status).to.equal(410);
      const [b] = await create(['patient@example.org'], Date.now() - 1);
      expect((await api(b!.token, b!.password)).status).to.equal(410);
    });

    it('404 for an unknown token', async () => {
      expect((await api('AAAAAAAAAAAAAAAAAAAAAAAA', 'x')).status).to.equal(404);
      expect((await api('short', 'x')).status).to.equal(404);
    });

    it('refuses anything but a JSON body (a cross-site form cannot send one): 415', async () => {
      const p = await one();
      for (const type of [
        'application/x-www-form-urlencoded',
        'text/plain',
        'multipart/form-data; boundary=x',
      ]) {
        const res = await fetch(`${base}/api/pickups/${p.token}/open`, {
          method: 'POST',
          headers: { 'content-type': type },
          body: `password=${p.password}`,
        });
        expect(res.status, type).to.equal(415);
      }
      expect((await listPickups(store, { id: p.id }))[0]!.status).to.equal('sent');
    });
  });

  describe('pages', () => {
    it('GET shows a password form and records only the fetch', async () => {
      const p = await one();
      const res = await fetch(`${base}/p/${p.token}`);
      expect(res.status).to.equal(200);
      const page = await res.text();
      expect(page).to.contain('<html lang="en">');
      expect(page).to.match(/<label for="password">Password<\/label>/);
      expect(page).to.match(
        /<input id="password" name="password" type="password" autocomplete="off" inputmode="text"/,
      );
      expect(page).to.contain('<h1>');
      expect(page).not.to.contain(MARKER);
      expect(page).not.to.contain('<script');
      expect((await listPickups(store, { id: p.id }))[0]!.status).to.equal('fetched');
      const types = (
        (await store.db('audit_events').where({ message_id: 'MSGW' }).select('type', 'detail')) as Array<{
          type: string;
          detail: string;
        }>
      )
        .filter((a) => a.detail.includes(p.id))
        .map((a) => a.type);
      expect(types).to.deep.equal(['pickup.created', 'pickup.fetched']);
      expect(await store.db('pickup_sessions').where({ pickup_id: p.id }).first()).to.equal(undefined);
    });

    it('sends no-store, no-referrer and a strict CSP without inline script or style on every pickup page', async () => {
      const p = await one();
      const { jar } = await login(p);
      const urls = [`/p/${p.token}`, `/p/${p.token}/a/0`, '/p/AAAAAAAAAAAAAAAAAAAAAAAA', '/p/bad'];
      for (const u of urls) {
        const res = await fetch(`${base}${u}`, { headers: { cookie: jar.header() } });
        expect(res.headers.get('cache-control'), u).to.equal('no-store');
        expect(res.headers.get('referrer-policy'), u).to.equal('no-referrer');
        const csp = res.headers.get('content-security-policy') ?? '';
        expect(csp, u).to.contain("default-src 'none'");
        expect(csp, u).not.to.contain('unsafe-inline');
        expect(csp, u).not.to.contain('script-src');
      }
      const apiRes = await api(p.token, 'wrong');
      expect(apiRes.headers.get('cache-control')).to.equal('no-store');
      expect(apiRes.headers.get('referrer-policy')).to.equal('no-referrer');
    });

    it('404 for an unknown link, 410 for a revoked one, as plain pages', async () => {
      const unknown = await fetch(`${base}/p/AAAAAAAAAAAAAAAAAAAAAAAA`);
      expect(unknown.status).to.equal(404);
      expect(await unknown.text()).to.contain('Link not found');
      const p = await one();
      await revokePickup(store, p.id, 'admin');
      const gone = await fetch(`${base}/p/${p.token}`);
      expect(gone.status).to.equal(410);
      expect(await gone.text()).to.contain('no longer available');
    });

    it('a POST without the CSRF token, or with another one, is refused with 403 and unlocks nothing', async () => {
      const p = await one();
      const jar = new Jar();
      jar.take(await fetch(`${base}/p/${p.token}`));
      const cases = [
        { name: 'no token, no cookie', cookie: '', body: { password: p.password } },
        { name: 'no token', cookie: jar.header(), body: { password: p.password } },
        {
          name: 'other token',
          cookie: jar.header(),
          body: { password: p.password, csrf: 'AAAAAAAAAAAAAAAAAAAAAA' },
        },
        {
          name: 'token without cookie',
          cookie: '',
          body: { password: p.password, csrf: jar.values.get('phigw_pickup_csrf')! },
        },
      ];
      for (const c of cases) {
        const res = await fetch(`${base}/p/${p.token}`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: c.cookie },
          body: new URLSearchParams(c.body as Record<string, string>).toString(),
        });
        expect(res.status, c.name).to.equal(403);
        expect(
          res.headers.getSetCookie().some((s) => s.startsWith('phigw_pickup=')),
          c.name,
        ).to.equal(false);
      }
      expect((await listPickups(store, { id: p.id }))[0]!.status).to.equal('fetched');
    });

    it('a wrong password gets 401 with an alert; 5 failures get 423 with Retry-After', async () => {
      const p = await one();
      const jar = new Jar();
      const first = await login(p, 'wrong', jar);
      expect(first.res.status).to.equal(401);
      const text = await first.res.text();
      expect(text).to.match(/role="alert"[^>]*>That password is not correct/);
      expect(text).to.contain('aria-invalid="true"');
      let last = first.res;
      for (let i = 0; i < 4; i++) last = (await login(p, 'wrong', jar)).res;
      expect(last.status).to.equal(423);
      expect(Number(last.headers.get('retry-after'))).to.be.within(1, 900);
      expect(await last.text()).to.contain('Too many wrong passwords');
    });

    it('the right password sets the session cookie and shows the message; the HTML only inside a sandboxed frame', async () => {
      const p = await one();
      const { res, jar } = await login(p);
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal(`/p/${p.token}`);
      const cookie = jar.raw.find((c) => c.startsWith('phigw_pickup='))!;
      expect(cookie)
        .to.match(/HttpOnly/)
        .and.match(/SameSite=Strict/)
        .and.not.match(/Secure/);
      const page = await (await fetch(`${base}/p/${p.token}`, { headers: { cookie: jar.header() } })).text();
      expect(page).to.contain(`Your result ${MARKER} is normal.`);
      expect(page).to.contain('dr.smith@clinic.example');
      expect(page).to.contain('results.pdf');
      expect(page).not.to.contain('<script');
      expect(page).not.to.contain('<b>');
      const frame = /<iframe[^>]*>/.exec(page)?.[0] ?? '';
      expect(frame).to.match(/sandbox="allow-same-origin"/);
      expect(frame).not.to.contain('allow-scripts');
      expect(frame).to.contain(`src="/p/${p.token}/html"`);

      const mail = await fetch(`${base}/p/${p.token}/html`, { headers: { cookie: jar.header() } });
      expect(mail.status).to.equal(200);
      const csp = mail.headers.get('content-security-policy') ?? '';
      expect(csp)
        .to.contain("default-src 'none'")
        .and.contain('sandbox allow-same-origin')
        .and.not.contain('script-src');
      expect(csp).to.match(/img-src data: 'self';/);
      const body = await mail.text();
      expect(body).to.contain(`src="/p/${p.token}/a/1?inline=1"`);
      const remote = await fetch(`${base}/p/${p.token}/html?remote=1`, { headers: { cookie: jar.header() } });
      expect(remote.headers.get('content-security-policy')).to.match(/img-src data: 'self' https:;/);
      expect((await fetch(`${base}/p/${p.token}/html`)).status, 'no session').to.equal(401);

      const inline = await fetch(`${base}/p/${p.token}/a/1?inline=1`, { headers: { cookie: jar.header() } });
      expect(inline.headers.get('content-type')).to.equal('image/png');
      expect(Buffer.from(await inline.arrayBuffer()).equals(PNG)).to.equal(true);
    });

    it('a message without From or To headers shows who sent it and to whom (the envelope), never an empty line', async () => {
      const [p] = await createPickups(store, {
        messageId: 'MSGNOHDR',
        sender: 'front.desk@clinic.example',
        recipients: ['patient2@example.org'],
        content: { ...makeWebContent(), from: '', to: [] },
        expiresAt: Date.now() + 86_400_000,
      });
      const { jar } = await login(p!);
      const page = await (await fetch(`${base}/p/${p!.token}`, { headers: { cookie: jar.header() } })).text();
      const meta = /<dl class="meta">([\s\S]*?)<\/dl>/.exec(page)?.[1] ?? '';
      expect(meta).to.contain('<dt>From</dt><dd>front.desk@clinic.example</dd>');
      expect(meta).to.contain('<dt>To</dt><dd>patient2@example.org</dd>');
      expect(meta).not.to.match(/<dd>\s*<\/dd>/);
    });

    it('the session cookie is Secure when the public URL is HTTPS', async () => {
      const secure = await startPortal({}, 'https://pickup.clinic.example');
      try {
        const [p] = await createPickups(secure.store, {
          messageId: 'M',
          sender: 's@x.example',
          recipients: ['r@y.example'],
          content: makeWebContent(),
          expiresAt: Date.now() + 60000,
        });
        const res = await fetch(`${secure.base}/api/pickups/${p!.token}/open`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ password: p!.password }),
        });
        expect(res.status).to.equal(200);
        expect(res.headers.getSetCookie().find((c) => c.startsWith('phigw_pickup='))).to.match(/; Secure/);
      } finally {
        await secure.stop();
      }
    });

    it('a secure reply is stored sealed with its attachment; without CSRF it is refused', async () => {
      const p = await one();
      const { jar, csrf } = await login(p);
      const form = (withCsrf: boolean) => {
        const f = new FormData();
        if (withCsrf) f.set('csrf', csrf);
        f.set('text', `Thank you ${MARKER}`);
        f.append('files', new Blob([new Uint8Array(PDF)], { type: 'application/pdf' }), 'my "scan".pdf');
        return f;
      };
      const refused = await fetch(`${base}/p/${p.token}/reply`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: jar.header() },
        body: form(false),
      });
      expect(refused.status).to.equal(403);
      const res = await fetch(`${base}/p/${p.token}/reply`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: jar.header() },
        body: form(true),
      });
      expect(res.status).to.equal(303);
      expect(res.headers.get('location')).to.equal(`/p/${p.token}?replied=1`);
      const [reply] = await listReplies(store, { pickupId: p.id });
      expect(reply).to.include({
        rcpt: 'patient@example.org',
        sender: 'dr.smith@clinic.example',
        attachments: 1,
      });
      const read = await readReply(store, reply!.id, 'dr.smith@clinic.example');
      expect(read!.content.text).to.equal(`Thank you ${MARKER}`);
      expect(read!.content.subject).to.equal(`Re: Results ${MARKER}`);
      expect(read!.content.attachments[0]!.filename).to.equal('my _scan_.pdf');
      expect(read!.content.attachments[0]!.content.equals(PDF)).to.equal(true);
      const audit = (await store
        .db('audit_events')
        .where({ type: 'pickup.replied' })
        .select('detail')) as Array<{ detail: string }>;
      expect(audit.some((a) => a.detail.includes(p.id))).to.equal(true);
      const back = await (
        await fetch(`${base}/p/${p.token}?replied=1`, { headers: { cookie: jar.header() } })
      ).text();
      expect(back).to.match(/role="status">Your reply was sent securely/);
    });

    it('closing ends the session', async () => {
      const p = await one();
      const { jar, csrf } = await login(p);
      const res = await fetch(`${base}/p/${p.token}/close`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
        body: new URLSearchParams({ csrf }).toString(),
      });
      expect(res.status).to.equal(200);
      expect(await store.db('pickup_sessions').where({ pickup_id: p.id }).first()).to.equal(undefined);
      const after = await fetch(`${base}/p/${p.token}/a/0`, { headers: { cookie: jar.header() } });
      expect(after.status).to.equal(401);
    });
  });

  describe('downloads read in slices', () => {
    const withFile = async (content: Buffer) => {
      const [p] = await createPickups(store, {
        messageId: 'MSGW',
        sender: 'dr.smith@clinic.example',
        recipients: ['patient@example.org'],
        content: {
          ...makeWebContent(),
          attachments: [{ filename: 'scan.bin', contentType: 'application/octet-stream', content }],
        },
        expiresAt: Date.now() + 86_400_000,
      });
      return p!;
    };

    it('a 6 MB attachment arrives whole, with its length, the page shows its size', async () => {
      const bytes = randomBytes(6 * 1024 * 1024 + 7);
      const p = await withFile(bytes);
      const { jar } = await login(p);
      const page = await (await fetch(`${base}/p/${p.token}`, { headers: { cookie: jar.header() } })).text();
      expect(page).to.contain('scan.bin');
      expect(page).to.match(/6(\.0)? MB/);
      const res = await fetch(`${base}/p/${p.token}/a/0`, { headers: { cookie: jar.header() } });
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-length')).to.equal(String(bytes.length));
      expect(res.headers.get('content-disposition')).to.match(/^attachment;/);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).to.equal(true);
      const missing = await fetch(`${base}/p/${p.token}/a/1`, { headers: { cookie: jar.header() } });
      expect(missing.status).to.equal(404);
    });

    it('a damaged content file: an error, never its bytes', async () => {
      const bytes = randomBytes(600 * 1024);
      const p = await withFile(bytes);
      const { jar } = await login(p);
      const row = (await store.db('pickups').where({ id: p.id }).first()) as { content_id: string };
      const file = path.join(portal.dir, 'pickups', row.content_id);
      const sealed = await readFile(file);
      sealed[200_000] = sealed[200_000]! ^ 1;
      await writeFile(file, sealed);
      const res = await fetch(`${base}/p/${p.token}/a/0`, { headers: { cookie: jar.header() } });
      expect(res.status).to.equal(500);
      const body = Buffer.from(await res.arrayBuffer());
      expect(body.includes(bytes.subarray(0, 64))).to.equal(false);
      const page = await fetch(`${base}/p/${p.token}`, { headers: { cookie: jar.header() } });
      expect(page.status).to.equal(500);
      expect(await page.text()).not.to.contain(MARKER);
    });
  });

  describe('helpers', () => {
    const names = [
      ['report.pdf', 'report.pdf'],
      ['../../etc/passwd', '_.._etc_passwd'],
      ['a"b.txt', 'a_b.txt'],
      ['evil\r\nX-Header: 1.txt', 'evil_X-Header_ 1.txt'],
      ['.hidden', 'hidden'],
      ['', 'attachment'],
      ['\u202egnp.exe', '_gnp.exe'],
    ];
    for (const [input, output] of names) {
      it(`safeFilename(${JSON.stringify(input)}) = ${JSON.stringify(output)}`, () => {
        expect(safeFilename(input!)).to.equal(output);
      });
    }

    it('prepareMailHtml drops refresh and base tags and maps only known cids', () => {
      const web = makeWebContent();
      const out = prepareMailHtml('TOKEN', {
        ...web,
        attachments: web.attachments.map(({ content, ...a }) => ({ ...a, size: content.length })),
        html: '<meta http-equiv="refresh" content="0;url=https://evil.example"><base href="https://evil.example/"><img src="cid:LOGO@clinic"><img src="cid:unknown">',
      });
      expect(out).not.to.match(/refresh|<base/i);
      expect(out).to.contain('src="/p/TOKEN/a/1?inline=1"');
      expect(out).to.contain('src="about:invalid"');
    });
  });
});
