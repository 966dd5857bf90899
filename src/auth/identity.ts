// Who is calling: the verified client certificate (its CN and DNS/URI subject alternative
// names) when mutual TLS is on, otherwise a bearer token from the `authorization` metadata,
// otherwise nobody (anonymous, served only when the configuration and the peer allow it).
// Every name carries its kind (`cn:`, `dns:`, `uri:`, `token:`), so one kind cannot pass for another.
import type { PeerCertificate } from 'node:tls';
import type { Metadata } from '@grpc/grpc-js';
import type { TokenTable } from './tokens.js';

export interface Caller {
  /** The name logged and recorded: `cn:` the certificate's CN (else its first SAN), or `token:` the token's identity. */
  identity: string;
  /** Every name the caller is known by, each with its kind; rules match any of them. Empty for anonymous. */
  names: readonly string[];
  via: 'certificate' | 'token' | 'anonymous';
}

export const ANONYMOUS: Caller = { identity: 'anonymous', names: [], via: 'anonymous' };

export type Authentication = { ok: true; caller: Caller } | { ok: false; reason: string };

/** grpc-js's AuthContext (not exported by the package in 1.14). */
export interface PeerAuthContext {
  transportSecurityType?: string;
  /** Present only when the certificate verified against the configured CA. */
  sslPeerCertificate?: PeerCertificate;
}

/** What the authenticator needs of a call, read before its message is decoded. */
export interface CallCredentials {
  authContext: PeerAuthContext | null;
  metadata: Metadata;
  /** The peer's IP address, when known. */
  remoteAddress: string | undefined;
}

/** Who may call without a certificate or token: nobody, loopback peers only, or anyone. */
export type AnonymousAccess = 'never' | 'loopback' | 'anywhere';

export interface AuthenticatorOptions {
  tokens: TokenTable;
  anonymous: AnonymousAccess;
  /** Whether an address is this machine's own; the default is loopback (127/8, ::1). */
  isLocal: (address: string) => boolean;
}

export class Authenticator {
  constructor(private readonly o: AuthenticatorOptions) {}

  authenticate(call: CallCredentials): Authentication {
    // grpc-js only exposes a certificate that verified against the configured CA.
    const cert = call.authContext?.sslPeerCertificate;
    if (cert) {
      const names = certificateNames(cert);
      if (names.length === 0) return { ok: false, reason: 'client certificate has no CN and no DNS or URI SAN' };
      return { ok: true, caller: { identity: names[0]!, names, via: 'certificate' } };
    }
    const header = call.metadata.get('authorization')[0];
    // Without configured tokens an authorization header cannot be checked: it is ignored.
    if (header !== undefined && this.o.tokens.size > 0) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(typeof header === 'string' ? header : '');
      if (!m) return { ok: false, reason: 'authorization metadata is not "Bearer <token>"' };
      const identity = this.o.tokens.lookup(m[1]!);
      if (identity === undefined) return { ok: false, reason: 'unknown bearer token' };
      const name = `token:${identity}`;
      return { ok: true, caller: { identity: name, names: [name], via: 'token' } };
    }
    if (this.o.anonymous === 'anywhere') return { ok: true, caller: ANONYMOUS };
    if (this.o.anonymous === 'loopback') {
      if (call.remoteAddress !== undefined && this.o.isLocal(call.remoteAddress)) return { ok: true, caller: ANONYMOUS };
      return { ok: false, reason: 'anonymous calls are served only from loopback: present a client certificate or a bearer token (or set grpc.auth.allowAnonymous)' };
    }
    return { ok: false, reason: 'no client certificate and no bearer token' };
  }
}

/** `cn:` CN first, then `dns:` and `uri:` subject alternative names, without duplicates. */
export function certificateNames(cert: PeerCertificate): string[] {
  const names: string[] = [];
  const add = (kind: string, n: string | undefined): void => {
    const name = `${kind}:${n ?? ''}`;
    if (n !== undefined && n.length > 0 && !names.includes(name)) names.push(name);
  };
  const cn: unknown = cert.subject?.CN;
  if (typeof cn === 'string') add('cn', cn);
  else if (Array.isArray(cn)) for (const c of cn) if (typeof c === 'string') add('cn', c);
  for (const { type, value } of parseSubjectAltName(cert.subjectaltname ?? '')) {
    if (type === 'DNS') add('dns', value);
    else if (type === 'URI') add('uri', value);
  }
  return names;
}

/**
 * Node's `subjectaltname` string: `DNS:a, URI:spiffe://x, IP Address:1.2.3.4`; values with
 * special characters are JSON-quoted (`DNS:"a, b"`).
 */
export function parseSubjectAltName(san: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < san.length && (m = re.exec(san)) !== null) {
    let value = m[2] ?? '';
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    out.push({ type: m[1]!.trim(), value });
  }
  return out;
}
