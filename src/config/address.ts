// `host:port` listen and dial addresses: one validator and one splitter for every server and
// client in the program (host a name, IPv4, or bracketed IPv6; port 0 picks a free one).
import { z } from 'zod';

export const hostPortSchema = z.string().refine(
  (s) => {
    const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]/]+):(\d{1,5})$/.exec(s);
    return m !== null && Number(m[2]) <= 65535;
  },
  { message: 'expected host:port, e.g. 0.0.0.0:47006 or [::]:47006' },
);

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = i < 0 ? addr : addr.slice(0, i);
  return {
    host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host,
    port: i < 0 ? 0 : Number(addr.slice(i + 1)),
  };
}

export function isLoopback(host: string): boolean {
  // A dual-stack socket reports an IPv4 peer as ::ffff:127.0.0.1.
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/^::ffff:(?=\d+\.)/, '');
  return h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
