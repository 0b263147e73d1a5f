// Test harness for the pickup portal: a real store in a temp dir and the real web app on a loopback port,
// plus a message with a PHI marker, an attachment and an inline (cid) image.
import type { Server } from 'node:http';
import type { ResolvedConfig } from '../../config/load.js';
import { createLogger } from '../../config/log.js';
import { configSchema } from '../../config/schema.js';
import type { PickupContent } from '../../store/pickups.js';
import { Store } from '../../store/store.js';
import { createWebApp } from '../../web/app.js';
import { removeDir, tempDir } from './gateway.js';

export const MARKER = 'PHI-MARKER-Web42';
export const PDF = Buffer.concat([Buffer.from('%PDF-1.4 '), Buffer.from([0, 1, 2, 3, 254, 255])]);
export const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

export function makeWebContent(html?: string): PickupContent {
  return {
    from: 'dr.smith@clinic.example',
    to: ['patient@example.org'],
    cc: [],
    subject: `Results ${MARKER}`,
    date: '2026-11-30T09:00:00.000Z',
    text: `Your result ${MARKER} is normal.`,
    html:
      html ??
      `<p>Your result <b>${MARKER}</b> is normal.</p><img alt="logo" src="cid:logo@clinic">` +
        `<img alt="tracker" src="https://tracker.example/pixel.gif"><script>document.body.dataset.pwned = '1'</script>`,
    attachments: [
      { filename: 'results.pdf', contentType: 'application/pdf', content: PDF },
      { filename: 'logo.png', contentType: 'image/png', content: PNG, cid: 'logo@clinic', inline: true },
    ],
  };
}

export async function startPortal(overrides: Record<string, unknown> = {}, publicUrl = 'http://127.0.0.1') {
  const dir = await tempDir('phigw-portal-');
  const store = await Store.open({ dataDir: dir, databaseUrl: undefined }, {});
  const config = {
    ...configSchema.parse({
      dataDir: dir,
      logLevel: 'silent',
      practiceName: 'Riverside Dental',
      ...overrides,
    }),
    publicUrl,
  } as ResolvedConfig;
  const app = createWebApp({ config, store, log: createLogger('silent') });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const addr = server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return {
    dir,
    store,
    base,
    async stop() {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await store.close();
      await removeDir(dir);
    },
  };
}
