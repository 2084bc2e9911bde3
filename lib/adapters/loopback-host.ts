import net from 'node:net';

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * True for a host whose traffic never leaves the machine: `localhost`, 127.0.0.0/8 and ::1 (in any
 * spelling, IPv4-mapped too). A password sent there in clear crosses no network, so the rule "TLS before
 * credentials" allows it unless the connection says `allowInsecureAuth: false`. Any other name counts
 * as remote: what it resolves to is not known at bootstrap, and may change.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  // Not "localhost." with its dot: a fully qualified name skips /etc/hosts and asks DNS, which may answer anything.
  if (/^localhost$/i.test(bare)) return true;
  const family = net.isIP(bare);
  return family !== 0 && LOOPBACK.check(bare, family === 6 ? 'ipv6' : 'ipv4');
}
