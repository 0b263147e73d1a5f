// web.trustProxy: X-Forwarded-For decides the client address only when the peer is a configured proxy;
// otherwise a forged header could dodge the per-IP pickup lockout. Observed through pickup_ip_limits.
import { expect } from 'chai';
import { configSchema } from '../../config/schema.js';
import { startPortal } from '../support/portal.js';

type Portal = Awaited<ReturnType<typeof startPortal>>;

async function ipsSeenAfterGuess(portal: Portal, headers: Record<string, string>): Promise<string[]> {
  // An unknown token counts against the client's address, which is what we want to see.
  const res = await fetch(`${portal.base}/api/pickups/${'x'.repeat(24)}/open`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ password: 'guess' }),
  });
  expect(res.status).to.equal(404);
  const rows = (await portal.store.db('pickup_ip_limits').select('ip')) as Array<{ ip: string }>;
  return rows.map((r) => r.ip).sort();
}

describe('web trust proxy', function () {
  this.timeout(20000);
  const cases: Array<{ name: string; trustProxy?: string[]; xff?: string; expected: string }> = [
    // Honoured: the peer (127.0.0.1) is a configured proxy.
    { name: 'proxy by address', trustProxy: ['127.0.0.1'], xff: '203.0.113.7', expected: '203.0.113.7' },
    { name: 'proxy by CIDR', trustProxy: ['127.0.0.0/8'], xff: '203.0.113.8', expected: '203.0.113.8' },
    // Ignored.
    { name: 'default (no proxies)', xff: '203.0.113.9', expected: '127.0.0.1' },
    {
      name: 'another proxy configured',
      trustProxy: ['10.0.0.5'],
      xff: '203.0.113.10',
      expected: '127.0.0.1',
    },
    {
      name: 'another network configured',
      trustProxy: ['192.168.0.0/16'],
      xff: '203.0.113.11',
      expected: '127.0.0.1',
    },
    { name: 'no header with a proxy configured', trustProxy: ['127.0.0.1'], expected: '127.0.0.1' },
  ];
  for (const c of cases) {
    it(`${c.name}: client is ${c.expected}`, async () => {
      const portal = await startPortal(c.trustProxy ? { web: { trustProxy: c.trustProxy } } : {});
      try {
        const ips = await ipsSeenAfterGuess(portal, c.xff ? { 'x-forwarded-for': c.xff } : {});
        expect(ips).to.deep.equal([c.expected]);
      } finally {
        await portal.stop();
      }
    });
  }

  it('with a trusted proxy, a client cannot spoof past it: only the hop the proxy saw counts', async () => {
    const portal = await startPortal({ web: { trustProxy: ['127.0.0.1'] } });
    try {
      // The client forged "198.51.100.1"; the proxy appended the address it really saw.
      const ips = await ipsSeenAfterGuess(portal, { 'x-forwarded-for': '198.51.100.1, 203.0.113.20' });
      expect(ips).to.deep.equal(['203.0.113.20']);
    } finally {
      await portal.stop();
    }
  });

  it('the schema refuses an empty proxy entry and accepts none', () => {
    expect(configSchema.safeParse({ web: { trustProxy: [''] } }).success).to.equal(false);
    expect(configSchema.parse({}).web.trustProxy).to.deep.equal([]);
  });
});
