// What every command shares: the global options turned into the controller's configuration (or,
// with --server, the statemanager to call over gRPC), one lazily created etcd client, etcd calls
// with a deadline whose failures become one readable line, and printing a result as a table,
// JSON or YAML.
import type { Command } from 'commander';
import type { Etcd3, IRangeRequest, WatchBuilder, Watcher } from 'etcd3';
import { stringify as toYaml } from 'yaml';
import { KeyLayout } from '../../domain/keys.js';
import { hostPortSchema } from '../config/address.js';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { createEtcdClient } from '../etcd/client.js';
import { prefixEnd, toKeyValue } from '../etcd/lister-watcher.js';
import { rangePaged } from '../etcd/paged-range.js';
import { formatDuration, parseDuration, shouldColour, type OutputFormat } from './format.js';
import { errorMessage } from '../../controller/errors.js';

/** Where a command writes; `process.stdout` and `process.stderr` fit. */
export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
  /** Environment for configuration and NO_COLOR; process.env when absent. */
  env?: NodeJS.ProcessEnv;
  /** The clock for relative times ("2m ago"); Date.now when absent. */
  now?: () => number;
  /** Aborted on SIGINT/SIGTERM: `watch` stops cleanly, other commands give up. */
  signal?: AbortSignal;
}

/** A failure the user should read as one line; `exitCode` 1 for runtime failures, 2 for usage. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** Exit code of a command interrupted by SIGINT/SIGTERM (other than `watch`, which exits 0). */
export const INTERRUPTED = 130;

export interface GlobalOptions {
  config?: string;
  endpoints?: string;
  prefix?: string;
  timeout: string;
  output: OutputFormat;
  // A statemanager's gRPC API instead of etcd (see grpc-source.ts).
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

export const DEFAULT_TIMEOUT = '3s';

export interface KV {
  key: string;
  value: string;
  modRevision: number;
  version: number;
}

const PAGE = 5000;

export class Context {
  readonly output: OutputFormat;
  /** Set when the command reads a statemanager over gRPC rather than etcd. */
  readonly server: ServerTarget | undefined;
  private readonly etcdConfig: { config: Config; keys: KeyLayout } | undefined;
  /** Deadline for each etcd or gRPC call. */
  readonly timeoutMs: number;
  /**
   * For commands that wait (watch, resync --wait): how long, when --timeout was given. Their etcd
   * calls then keep the default deadline, so a short bound does not fail a slow first call.
   */
  readonly boundMs: number | undefined;
  readonly colour: boolean;
  readonly env: NodeJS.ProcessEnv;
  private client: Etcd3 | undefined;
  private readonly closers: (() => void)[] = [];
  /** The revision of the first read: later reads see the same snapshot. */
  private revision: number | undefined;

  constructor(
    readonly io: CliIO,
    readonly options: GlobalOptions,
    timeoutSource: string | undefined,
    /** The command waits, and --timeout bounds the wait rather than each etcd call. */
    timeoutIsBound = false,
  ) {
    const opts = options;
    this.env = io.env ?? process.env;
    const timeout = parseDuration(opts.timeout);
    if (timeout === undefined || timeout <= 0) {
      throw new UsageError(`--timeout "${opts.timeout}" is not a duration (use e.g. 500ms, 3s, 1m)`);
    }
    const given = timeoutSource === 'cli';
    this.boundMs = timeoutIsBound && given ? timeout : undefined;
    this.timeoutMs = timeoutIsBound ? parseDuration(DEFAULT_TIMEOUT)! : timeout;
    this.output = opts.output;
    this.server = serverTarget(opts, this.env);
    if (this.server === undefined) {
      // The flags go through the same validation as the controller's environment variables.
      const env: NodeJS.ProcessEnv = { ...this.env };
      if (opts.endpoints !== undefined) env.ETCD_ENDPOINTS = opts.endpoints;
      if (opts.prefix !== undefined) env.STATEMANAGER_KEY_PREFIX = opts.prefix;
      try {
        const config = loadConfig(opts.config ?? (env.STATEMANAGER_CONFIG || undefined), env);
        this.etcdConfig = { config, keys: new KeyLayout(config.keyPrefix) };
      } catch (err) {
        if (err instanceof ConfigError) throw new UsageError(err.message);
        throw err;
      }
    }
    this.colour = this.output === 'table' && shouldColour(io.stdout.isTTY, this.env);
  }

  static of(cmd: Command, io: CliIO, timeoutIsBound = false): Context {
    return new Context(io, cmd.optsWithGlobals<GlobalOptions>(), cmd.getOptionValueSourceWithGlobals('timeout'), timeoutIsBound);
  }

  /** The controller's configuration (etcd mode only). */
  get config(): Config {
    if (!this.etcdConfig) throw new Error('no etcd configuration: the command reads a statemanager over gRPC');
    return this.etcdConfig.config;
  }

  get keys(): KeyLayout {
    if (!this.etcdConfig) throw new Error('no etcd key layout: the command reads a statemanager over gRPC');
    return this.etcdConfig.keys;
  }

  /** Runs when the command ends (a gRPC channel to close). */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  now(): number {
    return (this.io.now ?? Date.now)();
  }

  get endpoints(): string {
    return this.config.etcd.endpoints.join(',');
  }

  etcd(): Etcd3 {
    this.client ??= createEtcdClient({ ...this.config.etcd, requestTimeout: this.timeoutMs });
    return this.client;
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
    for (const fn of this.closers.splice(0)) fn();
  }

  /** Call options with this command's deadline. */
  deadline(): { deadline: number } {
    return { deadline: Date.now() + this.timeoutMs };
  }

  /**
   * One etcd operation, bounded by the deadline even if the client library retries, and given
   * up when the command is interrupted. Failures become a CliError naming the endpoints.
   */
  async call<T>(fn: () => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    const signal = this.io.signal;
    if (signal?.aborted) throw new CliError('interrupted', INTERRUPTED);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineError()), timeoutMs + 250);
      onAbort = () => reject(new CliError('interrupted', INTERRUPTED));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([fn(), bound]);
    } catch (err) {
      throw this.translate(err);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Every key under a prefix, in key order, page by page, at one snapshot revision. */
  async range(prefix: string): Promise<KV[]> {
    const out: KV[] = [];
    const key = Buffer.from(prefix);
    // Every read of one command sees the same snapshot: the first read's revision.
    this.revision = await rangePaged(
      (req) => this.call(() => this.etcd().kv.range(req, this.deadline())),
      { key, rangeEnd: prefixEnd(key), pageSize: PAGE, ...(this.revision !== undefined ? { revision: this.revision } : {}) },
      (kvs) => {
        for (const kv of kvs) out.push(toKeyValue(kv));
      },
    );
    return out;
  }

  /** The newest key under a prefix (history keys sort by sequence), or undefined. */
  async lastUnder(prefix: string): Promise<KV | undefined> {
    const req: IRangeRequest = {
      key: Buffer.from(prefix),
      range_end: prefixEnd(Buffer.from(prefix)),
      limit: 1,
      sort_order: 'Descend',
      sort_target: 'Key',
    };
    if (this.revision !== undefined) req.revision = this.revision;
    const res = await this.call(() => this.etcd().kv.range(req, this.deadline()));
    this.revision ??= Number(res.header.revision);
    const kv = res.kvs[0];
    return kv ? toKeyValue(kv) : undefined;
  }

  async get(key: string): Promise<KV | undefined> {
    const req: IRangeRequest = { key: Buffer.from(key) };
    if (this.revision !== undefined) req.revision = this.revision;
    const res = await this.call(() => this.etcd().kv.range(req, this.deadline()));
    this.revision ??= Number(res.header.revision);
    const kv = res.kvs[0];
    return kv ? toKeyValue(kv) : undefined;
  }

  /** The current etcd revision (also proves etcd answers). */
  async currentRevision(): Promise<number> {
    const res = await this.call(() => this.etcd().kv.range({ key: Buffer.from(this.keys.leader), keys_only: true }, this.deadline()));
    return Number(res.header.revision);
  }

  /**
   * A watcher with its handlers attached before it connects (events from the start revision
   * can arrive in the same read as the confirmation, before an awaited create() returns).
   * Resolves once etcd confirmed the watch.
   */
  async watch(build: (b: WatchBuilder) => WatchBuilder, attach: (w: Watcher) => void): Promise<Watcher> {
    const watcher = build(this.etcd().watch()).watcher();
    attach(watcher);
    try {
      await this.call(
        () =>
          new Promise<void>((resolve, reject) => {
            watcher.once('connected', () => resolve());
            watcher.once('error', reject);
          }),
      );
    } catch (err) {
      await watcher.cancel().catch(() => undefined);
      throw err;
    }
    return watcher;
  }

  /** Print a result: the data as JSON or YAML, or the table built from it. */
  emit(data: unknown, table: () => string): void {
    if (this.output === 'json') this.io.stdout.write(JSON.stringify(data, null, 2) + '\n');
    else if (this.output === 'yaml') this.io.stdout.write(toYaml(data));
    else this.io.stdout.write(table());
  }

  /** A failure from etcd (or our own deadline) as one line the operator can act on. */
  translate(err: unknown): unknown {
    if (err instanceof CliError) return err;
    const where = `etcd at ${this.endpoints}`;
    const name = err instanceof Error ? err.constructor.name : '';
    const message = errorMessage(err);
    if (err instanceof DeadlineError || /deadline/i.test(message) || name === 'GRPCDeadlineExceededError') {
      return new CliError(`cannot reach ${where}: no answer within ${formatDuration(this.timeoutMs)}`);
    }
    if (/unauthenticated|authentication|permission denied|invalid auth token/i.test(message + name)) {
      return new CliError(`${where} refused the request: ${firstLine(message)}`);
    }
    if (
      /Unavailable|BrokenCircuit|ConnectFailed|ClientClosed|Cancelled/.test(name) ||
      /UNAVAILABLE|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENOTFOUND|No connection|circuit breaker/i.test(message)
    ) {
      const cause = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:|$)/.exec(message)?.[1];
      const reason = cause ?? (/circuit breaker/i.test(message) ? 'connection failed repeatedly' : firstLine(message));
      return new CliError(`cannot reach ${where}: ${reason.trim()}`);
    }
    return new CliError(`etcd request failed (${where}): ${firstLine(message)}`);
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

class DeadlineError extends Error {
  constructor() {
    super('deadline');
    this.name = 'DeadlineError';
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

