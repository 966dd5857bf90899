// The flags of --server (and STATEMANAGER_TOKEN) as a gRPC channel: credentials, options and the
// bearer token. A token never leaves in clear text for another machine unless asked.
import { readFileSync } from 'node:fs';
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
  const credentials = tls
    ? grpc.credentials.createSsl(
        o.ca !== undefined ? readFlagFile('--ca', o.ca) : null,
        o.key !== undefined ? readFlagFile('--key', o.key) : null,
        o.cert !== undefined ? readFlagFile('--cert', o.cert) : null,
      )
    : grpc.credentials.createInsecure();
  return { credentials, options, tls, token };
}

function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read ${flag} file ${file}: ${errorMessage(err).split('\n')[0]}`);
  }
}
