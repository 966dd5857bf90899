// The global options and what they select: a statemanager to read over gRPC (--server or
// STATEMANAGER_SERVER), or etcd with the controller's own configuration (file, environment,
// then the flags, validated as the controller validates its environment).
import { KeyLayout } from '../../domain/keys.js';
import { hostPortSchema } from '../config/address.js';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { UsageError } from './errors.js';
import type { OutputFormat } from './format.js';

export interface GlobalOptions {
  config?: string;
  endpoints?: string;
  prefix?: string;
  timeout: string;
  output: OutputFormat;
  // A statemanager's gRPC API instead of etcd (see grpc-channel.ts).
  server?: string;
  token?: string;
  tokenFile?: string;
  tls?: boolean;
  /** Send the token without TLS to a non-loopback server (something else encrypts the path). */
  insecureToken?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  serverName?: string;
}

/** The statemanager to read from over gRPC, and where its address came from. */
export interface ServerTarget {
  addr: string;
  from: '--server' | 'STATEMANAGER_SERVER';
}

/** Where the command reads: exactly one of the two. */
export type Target = { server: ServerTarget; etcd?: undefined } | { server?: undefined; etcd: EtcdTarget };

export interface EtcdTarget {
  config: Config;
  keys: KeyLayout;
}

/** The options that only make sense with a server. */
const SERVER_ONLY: readonly [keyof GlobalOptions, string][] = [
  ['token', '--token'],
  ['tokenFile', '--token-file'],
  ['tls', '--tls'],
  ['insecureToken', '--insecure-token'],
  ['ca', '--ca'],
  ['cert', '--cert'],
  ['key', '--key'],
  ['serverName', '--server-name'],
];

export function target(opts: GlobalOptions, env: NodeJS.ProcessEnv): Target {
  const server = serverTarget(opts, env);
  return server !== undefined ? { server } : { etcd: etcdTarget(opts, env) };
}

/** The controller's configuration with the flags applied, through the same validation. */
function etcdTarget(opts: GlobalOptions, processEnv: NodeJS.ProcessEnv): EtcdTarget {
  const env: NodeJS.ProcessEnv = { ...processEnv };
  if (opts.endpoints !== undefined) env.ETCD_ENDPOINTS = opts.endpoints;
  if (opts.prefix !== undefined) env.STATEMANAGER_KEY_PREFIX = opts.prefix;
  try {
    const config = loadConfig(opts.config ?? (env.STATEMANAGER_CONFIG || undefined), env);
    return { config, keys: new KeyLayout(config.keyPrefix) };
  } catch (err) {
    // The flags go in through the variables: a refusal names the flag that set the value (it named
    // a variable nobody had set, black-box probing).
    if (err instanceof ConfigError) {
      let message = err.message;
      if (opts.endpoints !== undefined) message = message.replace('(set by ETCD_ENDPOINTS)', '(set by --endpoints)');
      if (opts.prefix !== undefined) message = message.replace('(set by STATEMANAGER_KEY_PREFIX)', '(set by --prefix)');
      throw new UsageError(message);
    }
    throw err;
  }
}

/**
 * `--server` (or, without any etcd flag, `STATEMANAGER_SERVER`): the statemanager to read over
 * gRPC; undefined to read etcd. The flags of the other mode are usage errors.
 */
function serverTarget(opts: GlobalOptions, env: NodeJS.ProcessEnv): ServerTarget | undefined {
  const etcdFlags = [
    ...(opts.config !== undefined ? ['--config'] : []),
    ...(opts.endpoints !== undefined ? ['--endpoints'] : []),
    ...(opts.prefix !== undefined ? ['--prefix'] : []),
  ];
  if (opts.server !== undefined && etcdFlags.length > 0) {
    throw new UsageError(`${etcdFlags.join(', ')} ${etcdFlags.length === 1 ? 'is' : 'are'} for reading etcd directly and cannot be combined with --server`);
  }
  let target: ServerTarget | undefined;
  if (opts.server !== undefined) target = { addr: opts.server, from: '--server' };
  else if (etcdFlags.length === 0 && env.STATEMANAGER_SERVER) target = { addr: env.STATEMANAGER_SERVER, from: 'STATEMANAGER_SERVER' };
  if (target === undefined) {
    const given = SERVER_ONLY.filter(([k]) => opts[k] !== undefined).map(([, flag]) => flag);
    if (given.length > 0) throw new UsageError(`${given.join(', ')} ${given.length === 1 ? 'needs' : 'need'} --server (or STATEMANAGER_SERVER)`);
    return undefined;
  }
  if (!hostPortSchema.safeParse(target.addr).success) {
    throw new UsageError(`${target.from} "${target.addr}" is not host:port (e.g. 127.0.0.1:47006 or statemanager.edge.svc:47006)`);
  }
  return target;
}
