// Runs the web app on the configured address (HTTP, or HTTPS when web.tlsCert/tlsKey are set), with a
// graceful stop and a certificate reload that never drops open connections nor installs a pair that fails.
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createSecureContext } from 'node:tls';
import type { WebOptions } from './app.js';
import { createWebApp } from './app.js';

async function readPair(cert: string, key: string): Promise<{ cert: Buffer; key: Buffer }> {
  const pair = { cert: await readFile(cert), key: await readFile(key) };
  createSecureContext(pair); // throws unless they parse and belong together
  return pair;
}

export class WebServer {
  private server?: Server | HttpsServer;
  private closers: Array<() => Promise<void>> = [];
  constructor(private readonly opts: WebOptions) {}

  get https(): boolean {
    return !!this.opts.config.web.tlsCert;
  }

  async start(): Promise<{ host: string; port: number }> {
    const app = createWebApp(this.opts);
    this.closers = (app.locals as { closers?: Array<() => Promise<void>> }).closers ?? [];
    const { host, port, tlsCert, tlsKey } = this.opts.config.web;
    if (!!tlsCert !== !!tlsKey) throw new Error('web.tlsCert and web.tlsKey must be set together');
    const server: Server | HttpsServer =
      tlsCert && tlsKey
        ? createHttpsServer({ ...(await readPair(tlsCert, tlsKey)), minVersion: 'TLSv1.2' }, app)
        : createHttpServer(app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address();
    const bound = addr && typeof addr === 'object' ? { host: addr.address, port: addr.port } : { host, port };
    this.opts.log.info({ evt: 'WEB_LISTENING', ...bound, https: this.https }, 'web listening');
    return bound;
  }

  /** Reads web.tlsCert/tlsKey again (SIGHUP): new connections get the new pair, open ones keep theirs. */
  async reloadTls(): Promise<void> {
    const { tlsCert, tlsKey } = this.opts.config.web;
    const server = this.server;
    if (!server || !tlsCert || !tlsKey || !('setSecureContext' in server)) return;
    server.setSecureContext({ ...(await readPair(tlsCert, tlsKey)), minVersion: 'TLSv1.2' });
    this.opts.log.info({ evt: 'WEB_TLS_RELOADED' }, 'TLS certificate reloaded');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    for (const close of this.closers) await close();
  }
}
