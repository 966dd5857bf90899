// The flags of --server (and STATEMANAGER_TOKEN) as a gRPC channel: credentials, options and the
// bearer token. A token never leaves in clear text for another machine unless asked.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../controller/errors.js';
import { isLoopback, splitHostPort } from '../config/address.js';
import { UsageError } from './errors.js';
import type { GlobalOptions } from './options.js';

/** Reconnect delays of the channel and of `watch`: doubling from the first, never above the last. */
export const RECONNECT_BACKOFF_MS = { first: 250, max: 5000 };

export interface ChannelSetup {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
  /** Whether the channel uses TLS (for messages). */
  tls: boolean;
  token: string | undefined;
}

/**
 * The flags (and STATEMANAGER_TOKEN) as channel credentials, options and the bearer token for
 * the server at `addr`. A token never leaves in clear text for another machine unless asked.
 */
export function channelSetup(o: GlobalOptions, env: NodeJS.ProcessEnv, addr: string): ChannelSetup {
  if (o.token !== undefined && o.tokenFile !== undefined) throw new UsageError('give --token or --token-file, not both');
  if ((o.cert === undefined) !== (o.key === undefined)) throw new UsageError('--cert and --key go together (the client certificate of mutual TLS and its key)');
  let token: string | undefined;
  if (o.token !== undefined) token = o.token.trim();
  else if (o.tokenFile !== undefined) token = (readFlagFile('--token-file', o.tokenFile).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
  else if (env.STATEMANAGER_TOKEN) token = env.STATEMANAGER_TOKEN.trim();
  if (token !== undefined && token === '') throw new UsageError(o.tokenFile !== undefined ? `--token-file ${o.tokenFile} holds no token` : 'the token is empty');
  if (token !== undefined && /[^\x21-\x7e]/.test(token)) throw new UsageError('the token has characters a bearer token cannot have (spaces or control characters)');

  const tls = o.tls === true || o.ca !== undefined || o.cert !== undefined || o.serverName !== undefined;
  if (token !== undefined && !tls && o.insecureToken !== true && !isLoopback(splitHostPort(addr).host)) {
    throw new UsageError(
      `refusing to send the bearer token in clear text to ${addr}, which is not a loopback address: ` +
        'use TLS (--tls, or --ca with a private CA), or --insecure-token if a tunnel or service mesh encrypts the path',
    );
  }
  const options: grpc.ChannelOptions = {
    // Reconnect soon after a replica comes back, and notice a peer that vanished without a word.
    'grpc.initial_reconnect_backoff_ms': RECONNECT_BACKOFF_MS.first,
    'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF_MS.max,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  };
  if (o.serverName !== undefined) {
    options['grpc.ssl_target_name_override'] = o.serverName;
    options['grpc.default_authority'] = o.serverName;
  }
  const credentials = tls ? sslCredentials(o) : grpc.credentials.createInsecure();
  return { credentials, options, tls, token };
}

/**
 * The TLS files, each checked to be what its flag says, and the key to belong to the certificate:
 * a non-PEM --cert or --key was an "unexpected error" (exit 1), a key of another certificate a bare
 * OpenSSL line, and a non-PEM --ca was taken without a word (black-box probing).
 */
function sslCredentials(o: { ca?: string; cert?: string; key?: string }): grpc.ChannelCredentials {
  const file = (flag: string, path: string | undefined, what: string, parse: (b: Buffer) => unknown): Buffer | null => {
    if (path === undefined) return null;
    const contents = readFlagFile(flag, path);
    try {
      parse(contents);
    } catch (err) {
      throw new UsageError(`${flag} ${path} is not ${what}: ${errorMessage(err).split('\n')[0]}`);
    }
    return contents;
  };
  const ca = file('--ca', o.ca, 'a PEM certificate', (b) => new X509Certificate(b));
  const key = file('--key', o.key, 'a PEM private key', (b) => createPrivateKey(b));
  const cert = file('--cert', o.cert, 'a PEM certificate', (b) => new X509Certificate(b));
  if (key !== null && cert !== null) {
    try {
      createSecureContext({ key, cert });
    } catch (err) {
      throw new UsageError(`--cert ${o.cert} and --key ${o.key} cannot be used together: ${errorMessage(err).split('\n')[0]}`);
    }
  }
  return grpc.credentials.createSsl(ca, key, cert);
}

function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read ${flag} file ${file}: ${errorMessage(err).split('\n')[0]}`);
  }
}
