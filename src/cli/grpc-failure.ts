// A failure of a call to a statemanager as one line the operator can act on.
import * as grpc from '@grpc/grpc-js';
import { notSent } from '../grpc/not-sent.js';
import { errorMessage } from '../../controller/errors.js';
import { CliError, INTERRUPTED } from './errors.js';
import { formatDuration } from './format.js';

export interface GrpcCallSite {
  /** "statemanager at HOST:PORT". */
  where: string;
  tokenGiven: boolean;
  tls: boolean;
  timeoutMs: number;
  interrupted: boolean;
}

export function grpcFailure(err: unknown, at: GrpcCallSite): CliError {
  if (err instanceof CliError) return err;
  const { where } = at;
  const e = err as Partial<grpc.StatusObject>;
  const details = (e.details ?? errorMessage(err)).split('\n')[0] ?? '';
  switch (e.code) {
    case grpc.status.UNAUTHENTICATED:
      return new CliError(
        `${where} refused the credentials: ${details}${at.tokenGiven ? '' : ' (no token given: use --token, --token-file or STATEMANAGER_TOKEN, or a client certificate)'}`,
      );
    case grpc.status.PERMISSION_DENIED:
      return new CliError(`${where} refused the request: ${details}`);
    case grpc.status.DEADLINE_EXCEEDED:
      return new CliError(`cannot reach ${where}: no answer within ${formatDuration(at.timeoutMs)}`);
    case grpc.status.UNAVAILABLE:
      // The server's own answer while its etcd is away: it was reached (black-box probing: this
      // said "cannot reach statemanager" with statemanager up).
      if (/\betcd\b/i.test(details) && !notSent(details)) return new CliError(`${where} answered, but could not read etcd: ${details}`);
      return new CliError(`cannot reach ${where}: ${connectionCause(e.details ?? details, at.tls)}`);
    case grpc.status.UNIMPLEMENTED:
      return new CliError(`${where} does not serve this call (${details}); it may be older than this CLI`);
    case grpc.status.CANCELLED:
      if (at.interrupted) return new CliError('interrupted', INTERRUPTED);
      break;
  }
  const name = e.code !== undefined ? (grpc.status[e.code] ?? String(e.code)) : 'error';
  return new CliError(`request to ${where} failed: ${name}: ${details}`);
}

/**
 * Why grpc-js could not connect, from its "No connection established. Last error: ..." text,
 * without timestamps and OpenSSL's source locations, with a hint at the flag that helps.
 */
export function connectionCause(details: string, tls: boolean): string {
  let cause = /Last error: ([\s\S]*?)(?:\.? Resolution note:[\s\S]*)?$/.exec(details)?.[1] ?? details;
  cause = cause
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/g, '')
    .replace(/^Error(?: \[[A-Z_]+\])?: /, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[.:]$/, '');
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(cause);
  if (ssl) cause = `TLS handshake failed: ${ssl[1]}`;
  const hint = /certificate required/.test(cause)
    ? 'the server wants a client certificate: --cert and --key'
    : /unknown ca|bad certificate|certificate unknown|certificate expired/i.test(cause) && ssl
      ? 'the server does not accept the client certificate'
      : /altnames|does not match certificate/i.test(cause)
        ? '--server-name NAME checks the certificate against another name'
        : /self-signed|local issuer|unable to verify|unable to get issuer/i.test(cause)
          ? 'give the CA that issued the server certificate with --ca'
          : /wrong version number|packet length too long/i.test(cause) && tls
            ? 'the server does not seem to serve TLS'
            : /^Failed to connect$/.test(cause) && !tls
              ? 'if the server serves TLS: --tls or --ca'
              : undefined;
  return hint === undefined ? cause : `${cause} (${hint})`;
}
