// Who is calling: the verified client certificate (its CN and DNS/URI subject alternative
// names) when mutual TLS is on, otherwise a bearer token from the `authorization` metadata,
// otherwise nobody (anonymous, served only when the configuration allows it).
import type { PeerCertificate } from 'node:tls';
import type { Metadata } from '@grpc/grpc-js';
import type { TokenTable } from './tokens.js';

export interface Caller {
  /** The name logged and recorded: the certificate's CN (else its first SAN), or the token's identity. */
  identity: string;
  /** Every name the caller is known by; authorization rules match any of them. Empty for anonymous. */
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

/** What the authenticator needs of a server call (grpc-js ServerUnaryCall satisfies it). */
export interface CallCredentials {
  getAuthContext(): PeerAuthContext | null;
  metadata: Metadata;
}

export interface AuthenticatorOptions {
  tokens: TokenTable;
  allowAnonymous: boolean;
}

export class Authenticator {
  constructor(private readonly o: AuthenticatorOptions) {}

  authenticate(call: CallCredentials): Authentication {
    // grpc-js only exposes a certificate that verified against the configured CA.
    const cert = call.getAuthContext()?.sslPeerCertificate;
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
      return { ok: true, caller: { identity, names: [identity], via: 'token' } };
    }
    if (this.o.allowAnonymous) return { ok: true, caller: ANONYMOUS };
    return { ok: false, reason: 'no client certificate and no bearer token' };
  }
}

/** CN first, then DNS and URI subject alternative names, without duplicates. */
export function certificateNames(cert: PeerCertificate): string[] {
  const names: string[] = [];
  const add = (n: string | undefined): void => {
    if (n !== undefined && n.length > 0 && !names.includes(n)) names.push(n);
  };
  const cn: unknown = cert.subject?.CN;
  if (typeof cn === 'string') add(cn);
  else if (Array.isArray(cn)) for (const c of cn) if (typeof c === 'string') add(c);
  for (const { type, value } of parseSubjectAltName(cert.subjectaltname ?? '')) {
    if (type === 'DNS' || type === 'URI') add(value);
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
