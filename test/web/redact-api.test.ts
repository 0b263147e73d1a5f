// The redaction API over real HTTP: staff get proposed boxes for an image and the redacted image for the
// boxes they keep; no session → 401, no CSRF token → 403, an unsupported format → 415; nothing stored.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import sharp from 'sharp';
import { loadConfig } from '../../config/load.js';
import { createLogger } from '../../config/log.js';
import { Store } from '../../store/store.js';
import { createWebApp } from '../../web/app.js';
import { makePng, makeSvg } from '../redaction/fixtures.js';
import { removeDir, tempDir } from '../support/gateway.js';
import { addStaff, StaffBrowser } from '../support/staff-browser.js';

describe('web/redact-api', function () {
  this.timeout(90000);
  let dir: string;
  let store: Store;
  let server: Server;
  let base: string;
  let b: StaffBrowser;
  let csrf: string;
  let closers: Array<() => Promise<void>>;

  before(async () => {
    dir = await tempDir();
    const config = loadConfig({ PHIGW_DATA_DIR: dir });
    store = await Store.open(config);
    const app = createWebApp({ config, store, log: createLogger('silent') });
    closers = (app.locals as { closers: Array<() => Promise<void>> }).closers;
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const s = await addStaff(store, 'staff@clinic.example', 'staff');
    b = new StaffBrowser(base);
    await b.signIn(s.email, s.password);
    csrf = StaffBrowser.csrf((await b.go('/me')).body);
  });

  after(async () => {
    server.close();
    for (const c of closers) await c();
    await store.close();
    await removeDir(dir);
  });

  const post = (path: string, body: BodyInit, type: string, withCsrf = true) =>
    b.go(path, {
      method: 'POST',
      body,
      headers: { 'content-type': type, ...(withCsrf ? { 'x-csrf-token': csrf } : {}) },
    });

  it('proposes boxes over the PHI in an image, and applies the boxes staff keep', async () => {
    const png = await makePng();
    const preview = await post('/api/me/redact/preview', new Uint8Array(png), 'image/png');
    expect(preview.status).to.equal(200);
    const found = JSON.parse(preview.body) as {
      format: string;
      width: number;
      boxes: Array<{ x: number; y: number; width: number; height: number; type: string }>;
    };
    expect(found.format).to.equal('png');
    expect(found.boxes.length).to.be.greaterThan(0);
    expect(found.boxes.map((x) => x.type).join(' ')).to.match(/PERSON|DATE|MRN|PHONE/);
    const keep = [...found.boxes, { x: 0, y: 0, width: 30, height: 30, type: 'MANUAL' }];
    const res = await fetch(`${base}/api/me/redact/apply`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-csrf-token': csrf,
        cookie: [...b.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
      },
      body: JSON.stringify({ image: png.toString('base64'), boxes: keep }),
    });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('image/png');
    const out = Buffer.from(await res.arrayBuffer());
    const meta = await sharp(out).metadata();
    expect([meta.width, meta.height]).to.deep.equal([found.width, (await sharp(png).metadata()).height]);
    expect(out.equals(png)).to.equal(false);
    const audit = (await store.db('audit_events').where('type', 'like', 'redaction.%')) as Array<{
      detail: string;
    }>;
    expect(audit.map((a) => JSON.parse(a.detail) as object)).to.deep.include({ boxes: keep.length });
  });

  it('refuses without a session, without a CSRF token, and for formats it cannot redact', async () => {
    const png = await makePng();
    const anon = await fetch(`${base}/api/me/redact/preview`, {
      method: 'POST',
      body: new Uint8Array(png),
      headers: { 'content-type': 'image/png' },
    });
    expect(anon.status).to.equal(401);
    expect((await post('/api/me/redact/preview', new Uint8Array(png), 'image/png', false)).status).to.equal(
      403,
    );
    expect(
      (await post('/api/me/redact/preview', new Uint8Array(makeSvg()), 'image/svg+xml')).status,
    ).to.equal(415);
    expect(
      (
        await post(
          '/api/me/redact/apply',
          JSON.stringify({ image: 'x', boxes: [{ x: 'a' }] }),
          'application/json',
        )
      ).status,
    ).to.equal(400);
  });
});
