// Trusted networks (CIDR list) that may relay without AUTH, like Postfix mynetworks.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export function makeNetworkMatcher(cidrs: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, bits, extra] = cidr.split('/');
    const type = addr && isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (!addr || !(isIPv4(addr) || isIPv6(addr)) || extra !== undefined)
      throw new Error(`smtp.trustedNetworks: not a network: ${cidr}`);
    // "10.0.0.0/" must not read as /0: that would trust every address (an open relay).
    if (bits !== undefined && !/^\d{1,3}$/.test(bits))
      throw new Error(`smtp.trustedNetworks: bad prefix length in ${cidr}`);
    const prefix = bits === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv4' ? 32 : 128)) {
      throw new Error(`smtp.trustedNetworks: bad prefix length in ${cidr}`);
    }
    list.addSubnet(addr, prefix, type);
  }
  return (ip: string) => {
    const plain = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
    if (isIPv4(plain)) return list.check(plain, 'ipv4');
    if (isIPv6(plain)) return list.check(plain, 'ipv6');
    return false;
  };
}
