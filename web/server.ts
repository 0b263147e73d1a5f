// Runs the web app on the configured address, with a graceful stop.
import type { Server } from 'node:http';
import type { WebOptions } from './app.js';
import { createWebApp } from './app.js';

export class WebServer {
  private server?: Server;
  private closers: Array<() => Promise<void>> = [];
  constructor(private readonly opts: WebOptions) {}

  async start(): Promise<{ host: string; port: number }> {
    const app = createWebApp(this.opts);
    this.closers = (app.locals as { closers?: Array<() => Promise<void>> }).closers ?? [];
    const { host, port } = this.opts.config.web;
    const server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
    this.server = server;
    const addr = server.address();
    const bound = addr && typeof addr === 'object' ? { host: addr.address, port: addr.port } : { host, port };
    this.opts.log.info({ evt: 'WEB_LISTENING', ...bound }, 'web listening');
    return bound;
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
