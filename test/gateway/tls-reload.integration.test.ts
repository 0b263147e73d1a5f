// Certificate renewal without downtime: `phi-gateway start` re-reads the TLS files on SIGHUP. A new STARTTLS
// (or HTTPS) connection gets the new certificate, one already open keeps working, a bad pair is refused.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { generate } from 'selfsigned';
import { configSchema } from '../../config/schema.js';
import type { ResolvedConfig } from '../../config/load.js';
import { createLogger } from '../../config/log.js';
import { Store } from '../../store/store.js';
import { WebServer } from '../../web/server.js';
import { removeDir, spawnGateway, tempDir, type ChildGateway } from '../support/gateway.js';

async function makePair(cn: string): Promise<{ cert: string; key: string }> {
  const p = await generate([{ name: 'commonName', value: cn }], { keySize: 2048, algorithm: 'sha256' });
  return { cert: p.cert, key: p.private };
}

/** Reads CRLF lines from a socket, one SMTP reply (last line) at a time. */
function lineReader(sock: Socket) {
  let buf = '';
  const waiting: Array<(l: string) => void> = [];
  const done: string[] = [];
  const onData = (d: Buffer) => {
    buf += d.toString('latin1');
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (/^\d{3} /.test(line)) (waiting.shift() ?? ((l: string) => done.push(l)))(line);
    }
  };
  sock.on('data', onData);
  return {
    next: () =>
      new Promise<string>((resolve, reject) => {
        const early = done.shift();
        if (early) return resolve(early);
        const t = setTimeout(() => reject(new Error('no reply')), 10000);
        waiting.push((l) => {
          clearTimeout(t);
          resolve(l);
        });
      }),
    detach: () => sock.off('data', onData),
  };
}

/** Connects, STARTTLS, returns the TLS socket with the certificate CN it was given. */
async function startTls(
  port: number,
): Promise<{ tls: TLSSocket; cn: string; cmd: (l: string) => Promise<string> }> {
  const sock = netConnect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const plain = lineReader(sock);
  expect(await plain.next()).to.match(/^220 /);
  sock.write('EHLO tls.test\r\n');
  expect(await plain.next()).to.match(/^250 /);
  sock.write('STARTTLS\r\n');
  expect(await plain.next()).to.match(/^220 /);
  plain.detach();
  const tls = tlsConnect({ socket: sock, rejectUnauthorized: false, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => tls.once('secureConnect', resolve).once('error', reject));
  const r = lineReader(tls);
  const cmd = async (line: string) => {
    tls.write(line + '\r\n');
    return r.next();
  };
  return { tls, cn: String(tls.getPeerCertificate().subject.CN), cmd };
}

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('TLS certificate reload', function () {
  this.timeout(60000);
  let dir: string;
  let one: { cert: string; key: string };
  let two: { cert: string; key: string };
  let certFile: string;
  let keyFile: string;
  before(async () => {
    dir = await tempDir('phigw-tls-');
    [one, two] = await Promise.all([makePair('cert-one.test'), makePair('cert-two.test')]);
    certFile = path.join(dir, 'fullchain.pem');
    keyFile = path.join(dir, 'privkey.pem');
  });
  after(() => removeDir(dir));

  describe('SMTP (phi-gateway start, SIGHUP)', () => {
    let gw: ChildGateway;
    before(async () => {
      await writeFile(certFile, one.cert);
      await writeFile(keyFile, one.key);
      await mkdir(path.join(dir, 'data'), { mode: 0o700 });
      gw = await spawnGateway({
        dataDir: path.join(dir, 'data'),
        overrides: { smtp: { tlsCert: certFile, tlsKey: keyFile } },
      });
    });
    after(() => gw?.kill());

    it('serves the new certificate to new connections; an open one finishes its message', async () => {
      const old = await startTls(gw.smtpPort);
      expect(old.cn).to.equal('cert-one.test');
      expect(await old.cmd('EHLO tls.test')).to.match(/^250 /);
      expect(await old.cmd('MAIL FROM:<staff@clinic.example>')).to.match(/^250 /);

      await writeFile(certFile, two.cert);
      await writeFile(keyFile, two.key);
      gw.child.kill('SIGHUP');
      const fresh = await waitFor(
        () => startTls(gw.smtpPort),
        (c) => {
          if (c.cn !== 'cert-two.test') c.tls.destroy();
          return c.cn === 'cert-two.test';
        },
      );
      expect(fresh.cn).to.equal('cert-two.test');
      fresh.tls.destroy();

      // The connection opened before the reload is still in its transaction, on the old session.
      expect(old.tls.getPeerCertificate().subject.CN).to.equal('cert-one.test');
      expect(await old.cmd('RCPT TO:<partner@example.org>')).to.match(/^250 /);
      expect(await old.cmd('DATA')).to.match(/^354 /);
      expect(
        await old.cmd(
          'Subject: during reload\r\nFrom: staff@clinic.example\r\nTo: partner@example.org\r\n\r\nHello.\r\n.',
        ),
      ).to.match(/^250 /);
      expect(await old.cmd('QUIT')).to.match(/^221 /);
      expect(gw.child.exitCode).to.equal(null);
    });

    it('keeps the current certificate when the new pair does not load (key of another cert)', async () => {
      await writeFile(certFile, one.cert); // cert one with key two: a botched renewal
      gw.child.kill('SIGHUP');
      await waitFor(
        () => Promise.resolve(gw.stdout() + gw.stderr()),
        (s) => s.includes('TLS_RELOAD_FAILED'),
      );
      expect(gw.stdout() + gw.stderr()).to.contain('TLS_RELOAD_FAILED');
      const c = await startTls(gw.smtpPort);
      expect(c.cn).to.equal('cert-two.test');
      expect(await c.cmd('EHLO again.test')).to.match(/^250 /);
      c.tls.destroy();
      expect(gw.child.exitCode).to.equal(null);
    });
  });

  describe('HTTPS web UI (web.tlsCert / tlsKey)', () => {
    let web: WebServer;
    let store: Store;
    let port: number;
    before(async () => {
      await writeFile(certFile, one.cert);
      await writeFile(keyFile, one.key);
      const dataDir = path.join(dir, 'web-data');
      store = await Store.open({ dataDir, databaseUrl: undefined }, {});
      const config = {
        ...configSchema.parse({ dataDir, web: { port: 0, tlsCert: certFile, tlsKey: keyFile } }),
        publicUrl: 'https://127.0.0.1',
      } as ResolvedConfig;
      web = new WebServer({ config, store, log: createLogger('silent') });
      port = (await web.start()).port;
    });
    after(async () => {
      await web?.stop();
      await store?.close();
    });

    function httpsConn(): Promise<{ tls: TLSSocket; cn: string; get: () => Promise<string> }> {
      return new Promise((resolve, reject) => {
        const tls = tlsConnect({
          port,
          host: '127.0.0.1',
          rejectUnauthorized: false,
          servername: 'localhost',
        });
        tls.once('error', reject);
        tls.once('secureConnect', () => {
          const get = () =>
            new Promise<string>((res) => {
              let buf = '';
              const onData = (d: Buffer) => {
                buf += d.toString();
                const m = /content-length: (\d+)/i.exec(buf);
                const at = buf.indexOf('\r\n\r\n');
                if (m && at >= 0 && buf.length >= at + 4 + Number(m[1])) {
                  tls.off('data', onData);
                  res(buf);
                }
              };
              tls.on('data', onData);
              tls.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
            });
          resolve({ tls, cn: String(tls.getPeerCertificate().subject.CN), get });
        });
      });
    }

    it('serves HTTPS, reloads the pair for new connections and keeps a kept-alive one working', async () => {
      const old = await httpsConn();
      expect(old.cn).to.equal('cert-one.test');
      expect(await old.get()).to.match(/^HTTP\/1\.1 (200|503)/);
      await writeFile(certFile, two.cert);
      await writeFile(keyFile, two.key);
      await web.reloadTls();
      const fresh = await httpsConn();
      expect(fresh.cn).to.equal('cert-two.test');
      fresh.tls.destroy();
      expect(await old.get()).to.match(/^HTTP\/1\.1 (200|503)/);
      old.tls.destroy();
    });

    it('refuses a mismatched pair and keeps serving the current one', async () => {
      await writeFile(keyFile, one.key); // cert two, key one
      const err = await web.reloadTls().catch((e: unknown) => e);
      expect(err).to.be.instanceOf(Error);
      const c = await httpsConn();
      expect(c.cn).to.equal('cert-two.test');
      c.tls.destroy();
    });
  });
});
