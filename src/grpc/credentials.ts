// The gRPC server's credentials, reloaded when their files change: the TLS certificate, key and
// client CA, and the bearer token files. New connections get the new certificate and CA; calls
// are checked against the new tokens at once. A file that cannot be read or used leaves the old
// credentials serving (logged, counted as outcome="error").
//
// Why not grpc-js's own experimental FileWatcherCertificateProvider: on a read error it hands
// the server `null`, and the server then drops every new connection until the files are good
// again; and createCertificateProviderServerCredentials (1.14) passes its two providers on in
// swapped order. Both keep the old credentials out of reach, so this subclasses the public
// ServerCredentials and updates its secure context only with options Node has accepted.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../controller/logger.js';
import { errorMessage } from '../../controller/errors.js';
import { TokenTable, tokenFiles } from '../auth/tokens.js';
import type { TokenConfig } from '../auth/config.js';
import { FileReloader, type ReloadMetrics, type WatchedFile } from '../process/file-reloader.js';
import type { GrpcTlsConfig } from './config.js';
import { ConfigError } from '../config/config.js';

/** Default poll period of the credential files. */
export const DEFAULT_CREDENTIALS_RELOAD_MS = 10_000;

export interface ReloadDeps {
  logger: Logger;
  metrics?: ReloadMetrics;
  intervalMs?: number;
  /** The poll timer (tests); setInterval by default. */
  every?: (fn: () => void, ms: number) => { stop(): void };
}

/** Server credentials whose secure context can be replaced while the server runs. */
export class ReloadableServerCredentials extends grpc.ServerCredentials {
  constructor(initial: SecureContextOptions, mutual: boolean) {
    // As ServerCredentials.createSsl sets them.
    super({ requestCert: mutual, ciphers: process.env.GRPC_SSL_CIPHER_SUITES }, initial);
  }

  /** New connections use `options` from now on; connections already open keep theirs. */
  update(options: SecureContextOptions): void {
    this.updateSecureContextOptions(options);
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/**
 * The TLS options from the files' contents, checked the way the server will use them: each PEM
 * parses, the key belongs to the certificate, and Node builds a secure context from them.
 */
export function tlsOptionsFrom(tls: GrpcTlsConfig, mutual: boolean, contents: ReadonlyMap<string, Buffer>): SecureContextOptions {
  const cert = contents.get(tls.certFile)!;
  const key = contents.get(tls.keyFile)!;
  const ca = mutual && tls.caFile !== undefined ? contents.get(tls.caFile)! : undefined;
  const check = (what: string, file: string, fn: () => unknown): void => {
    try {
      fn();
    } catch (err) {
      throw new Error(`gRPC TLS ${what} ${file} cannot be used: ${errorMessage(err)}`, { cause: err });
    }
  };
  check('certificate', tls.certFile, () => new X509Certificate(cert));
  check('key', tls.keyFile, () => createPrivateKey(key));
  if (ca !== undefined) check('CA', tls.caFile!, () => new X509Certificate(ca));
  const options: SecureContextOptions = { cert: [cert], key: [key], ...(ca !== undefined ? { ca } : {}) };
  // A key of another certificate (a rotation caught half-way) fails here.
  check('certificate and key', `${tls.certFile}, ${tls.keyFile}`, () => createSecureContext(options));
  return options;
}

/** The TLS files of a configuration, as the reloader names them. */
function tlsFiles(tls: GrpcTlsConfig, mutual: boolean): WatchedFile[] {
  return [
    { label: 'gRPC TLS certificate', path: tls.certFile },
    { label: 'gRPC TLS key', path: tls.keyFile },
    ...(mutual && tls.caFile !== undefined ? [{ label: 'gRPC TLS CA', path: tls.caFile }] : []),
  ];
}

/** TLS server credentials read now (errors name the file) and re-read when the files change. */
export async function watchTlsCredentials(tls: GrpcTlsConfig, mutual: boolean, deps: ReloadDeps): Promise<{ credentials: ReloadableServerCredentials; stop(): void }> {
  let credentials: ReloadableServerCredentials | undefined;
  const reloader = new FileReloader<SecureContextOptions>({
    what: 'grpc_tls',
    files: tlsFiles(tls, mutual),
    build: (contents) => tlsOptionsFrom(tls, mutual, contents),
    apply: (options, reloaded) => {
      if (credentials === undefined) credentials = new ReloadableServerCredentials(options, mutual);
      else credentials.update(options);
      if (reloaded) deps.logger.info('gRPC TLS certificate in service', describeCertificate(options));
    },
    intervalMs: deps.intervalMs ?? DEFAULT_CREDENTIALS_RELOAD_MS,
    logger: deps.logger,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.every ? { every: deps.every } : {}),
  });
  await startOrRefuse(reloader);
  return { credentials: credentials!, stop: () => reloader.stop() };
}

/** The token table read now (errors name the file); token files re-read when they change. */
export async function watchTokenFiles(config: readonly TokenConfig[], deps: ReloadDeps): Promise<{ tokens: TokenTable; stop(): void }> {
  let tokens: TokenTable | undefined;
  const reloader = new FileReloader<TokenTable>({
    what: 'grpc_tokens',
    files: tokenFiles(config).map((path) => ({ label: 'token file', path })),
    build: (contents) => TokenTable.fromConfig(config, (file) => contents.get(file)?.toString('utf8') ?? ''),
    apply: (table) => {
      if (tokens === undefined) tokens = table;
      else tokens.replaceWith(table);
    },
    intervalMs: deps.intervalMs ?? DEFAULT_CREDENTIALS_RELOAD_MS,
    logger: deps.logger,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.every ? { every: deps.every } : {}),
  });
  await startOrRefuse(reloader);
  return { tokens: tokens!, stop: () => reloader.stop() };
}

/**
 * The first read of credential files: what fails is a configuration refused at start (exit 2, so
 * a supervisor that stops at refused configurations stops here too; it restarted every 2 s).
 */
async function startOrRefuse(reloader: { start(): Promise<unknown> }): Promise<void> {
  try {
    await reloader.start();
  } catch (err) {
    throw new ConfigError(errorMessage(err));
  }
}

function describeCertificate(options: SecureContextOptions): Record<string, unknown> {
  const pem = (options.cert as Buffer[])[0]!;
  const c = new X509Certificate(pem);
  return { subject: c.subject.replace(/\n/g, ', '), validTo: c.validTo, fingerprint256: c.fingerprint256 };
}
