// The web app over real HTTP on loopback: health, the outbox pages, and the security headers.
import { expect } from 'chai';
import nodemailer from 'nodemailer';
import { createLogger } from '../../config/log.js';
import { WebServer } from '../../web/server.js';
import { removeDir, startGateway, type RunningGateway } from '../support/gateway.js';

describe('web app (integration)', function () {
  this.timeout(30000);
  let gw: RunningGateway;
  let web: WebServer;
  let base: string;

  before(async () => {
    gw = await startGateway({ overrides: { web: { port: 0 } } });
    web = new WebServer({ config: gw.config, store: gw.store, log: createLogger('silent') });
    const addr = await web.start();
    base = `http://127.0.0.1:${addr.port}`;
  });

  after(async () => {
    await web.stop();
    await gw.stop();
    await removeDir(gw.dataDir);
  });

  it('reports health as JSON: SMTP listening, database reachable, queue depth', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).to.equal(200);
    const body = (await res.json()) as {
      status: string;
      smtp: { listening: boolean };
      database: { reachable: boolean };
      queue: { messages: number };
    };
    expect(body.status).to.equal('ok');
    expect(body.smtp.listening).to.equal(true);
    expect(body.database.reachable).to.equal(true);
    expect(body.queue.messages).to.be.a('number');
  });

  it('sends a strict CSP and no-referrer on every page', async () => {
    for (const p of ['/', '/outbox', '/healthz', '/nope']) {
      const res = await fetch(`${base}${p}`);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, p).to.contain("default-src 'none'");
      expect(csp, p).to.contain("script-src 'self'");
      expect(csp, p).not.to.contain('unsafe-inline');
      expect(res.headers.get('referrer-policy'), p).to.equal('no-referrer');
      expect(res.headers.get('x-powered-by'), p).to.equal(null);
    }
  });

  it('shows mail kept by the built-in outbox, escaped, and never cached', async () => {
    await nodemailer
      .createTransport({ host: '127.0.0.1', port: gw.smtpPort, secure: false, ignoreTLS: true })
      .sendMail({
        from: 'staff@clinic.example',
        to: 'friend@example.org',
        subject: 'Lunch <b>Friday</b>',
        text: 'See you at noon.',
      });
    const end = Date.now() + 10000;
    while (Date.now() < end && !(await gw.store.db('outbox').first()))
      await new Promise((r) => setTimeout(r, 50));
    const list = await fetch(`${base}/outbox`);
    expect(list.headers.get('cache-control')).to.equal('no-store');
    const html = await list.text();
    expect(html).to.contain('friend@example.org');
    const id = /href="\/outbox\/([0-9A-Z]+)"/.exec(html)?.[1];
    expect(id).to.be.a('string');
    const view = await (await fetch(`${base}/outbox/${id}`)).text();
    expect(view).to.contain('Lunch &#60;b&#62;Friday&#60;/b&#62;');
    expect(view).not.to.contain('<b>Friday</b>');
    expect(view).to.contain('See you at noon.');
    expect((await fetch(`${base}/outbox/NOSUCHID`)).status).to.equal(404);
  });
});
