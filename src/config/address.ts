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

/**
 * An address to dial, `host:port`, also written as an `http://host:port` URL: Pullpiri's
 * components write the ActionController's address that way (black-box probing: a deployment
 * that set `ACTION_CONTROLLER_ADDR=http://…` would not start). `http` names plaintext, the
 * default; TLS is configured by its own settings, so `https://` is refused, saying so.
 */
export const dialAddressSchema = z.preprocess(
  (v) => (typeof v === 'string' ? v.replace(/^http:\/\/([^/]+)\/?$/i, '$1') : v),
  z.string().refine((s) => !/^https:\/\//i.test(s), { message: 'https:// is not taken here: write host:port and configure TLS with the tls settings beside it' }).pipe(hostPortSchema),
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
