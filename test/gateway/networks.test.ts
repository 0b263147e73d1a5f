// Trusted networks may relay without AUTH, so a matcher that says yes too often makes an open relay.
// The tables hold as many addresses that must be refused as addresses that must be let in.
import { expect } from 'chai';
import { makeNetworkMatcher } from '../../gateway/networks.js';

describe('gateway/networks makeNetworkMatcher', () => {
  const cases: { networks: string[]; ip: string; trusted: boolean }[] = [
    // IPv4
    { networks: ['127.0.0.0/8'], ip: '127.0.0.1', trusted: true },
    { networks: ['127.0.0.0/8'], ip: '127.255.255.255', trusted: true },
    { networks: ['127.0.0.0/8'], ip: '126.255.255.255', trusted: false },
    { networks: ['127.0.0.0/8'], ip: '128.0.0.0', trusted: false },
    { networks: ['192.168.10.0/24'], ip: '192.168.10.77', trusted: true },
    { networks: ['192.168.10.0/24'], ip: '192.168.11.77', trusted: false },
    { networks: ['10.1.2.3/32'], ip: '10.1.2.3', trusted: true },
    { networks: ['10.1.2.3/32'], ip: '10.1.2.4', trusted: false },
    { networks: ['10.1.2.3/32'], ip: '10.1.2.2', trusted: false },
    { networks: ['10.1.2.3'], ip: '10.1.2.3', trusted: true },
    { networks: ['10.1.2.3'], ip: '10.1.2.4', trusted: false },
    { networks: ['0.0.0.0/0'], ip: '203.0.113.9', trusted: true },
    { networks: ['0.0.0.0/0'], ip: '255.255.255.255', trusted: true },
    { networks: ['0.0.0.0/0'], ip: '2001:db8::1', trusted: false },
    // IPv6
    { networks: ['::1/128'], ip: '::1', trusted: true },
    { networks: ['::1/128'], ip: '::2', trusted: false },
    { networks: ['::1/128'], ip: '127.0.0.1', trusted: false },
    { networks: ['::1'], ip: '::1', trusted: true },
    { networks: ['::1'], ip: '::', trusted: false },
    { networks: ['2001:db8::/32'], ip: '2001:db8:ffff:1::25', trusted: true },
    { networks: ['2001:db8::/32'], ip: '2001:db9::25', trusted: false },
    { networks: ['fd00:1:2:3::/64'], ip: 'fd00:1:2:3:ffff:ffff:ffff:ffff', trusted: true },
    { networks: ['fd00:1:2:3::/64'], ip: 'fd00:1:2:4::1', trusted: false },
    { networks: ['::/0'], ip: '2001:db8::1', trusted: true },
    // IPv4 clients seen on a dual-stack socket as ::ffff:a.b.c.d
    { networks: ['10.0.0.0/8'], ip: '::ffff:10.20.30.40', trusted: true },
    { networks: ['10.0.0.0/8'], ip: '::ffff:11.20.30.40', trusted: false },
    { networks: ['127.0.0.0/8'], ip: '::ffff:127.0.0.1', trusted: true },
    { networks: ['10.1.2.3/32'], ip: '::ffff:10.1.2.3', trusted: true },
    { networks: ['10.1.2.3/32'], ip: '::ffff:10.1.2.4', trusted: false },
    { networks: ['::1/128'], ip: '::ffff:127.0.0.1', trusted: false },
    // Several networks
    { networks: ['127.0.0.0/8', '::1/128', '192.168.0.0/16'], ip: '192.168.3.4', trusted: true },
    { networks: ['127.0.0.0/8', '::1/128', '192.168.0.0/16'], ip: '::1', trusted: true },
    { networks: ['127.0.0.0/8', '::1/128', '192.168.0.0/16'], ip: '172.16.0.1', trusted: false },
    // Nothing trusted, and things that are not addresses
    { networks: [], ip: '127.0.0.1', trusted: false },
    { networks: [], ip: '::1', trusted: false },
    { networks: ['0.0.0.0/0', '::/0'], ip: '', trusted: false },
    { networks: ['0.0.0.0/0', '::/0'], ip: 'localhost', trusted: false },
    { networks: ['0.0.0.0/0', '::/0'], ip: '10.0.0.1/8', trusted: false },
    { networks: ['0.0.0.0/0', '::/0'], ip: '::ffff:', trusted: false },
  ];
  for (const c of cases) {
    it(`${c.trusted ? 'trusts' : 'does not trust'} ${JSON.stringify(c.ip)} with ${JSON.stringify(c.networks)}`, () => {
      expect(makeNetworkMatcher(c.networks)(c.ip)).to.equal(c.trusted);
    });
  }

  const bad = [
    '',
    '/8',
    'localhost/8',
    'not-an-ip',
    '10.0.0/8',
    '10.0.0.256/8',
    ' 10.0.0.0/8',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/8.5',
    '10.0.0.0/abc',
    '::/129',
    '2001:db8::/64x',
    // An empty or garbled prefix must not be read as something else (an empty one would read as /0: everyone).
    '10.0.0.0/',
    '::1/',
    '10.0.0.0/8/16',
    '10.0.0.0/1e1',
  ];
  for (const cidr of bad) {
    it(`throws on the bad network ${JSON.stringify(cidr)}`, () => {
      expect(() => makeNetworkMatcher([cidr])).to.throw(/trustedNetworks/);
    });
  }

  it('throws on a bad network even when good ones come first', () => {
    expect(() => makeNetworkMatcher(['127.0.0.0/8', '10.0.0.0/99'])).to.throw(/10\.0\.0\.0\/99/);
  });
});
