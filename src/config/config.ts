// Configuration: a YAML file (optional) overlaid by environment variables (contract §4),
// validated once at start so a mistake stops start-up with one readable line.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PACKAGE_STATES } from '../../domain/states.js';
import { dialAddressSchema, hostPortSchema } from './address.js';
import { durationSchema } from './duration.js';
import { grpcServerConfigSchema } from '../grpc/config.js';

/** "500ms", "30s", "5m", "1h", or a number of milliseconds. */
export const duration = durationSchema;
const positiveDuration = durationSchema.pipe(z.number().positive('must be longer than 0'));

const endpointUrl = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'expected an http:// or https:// URL, e.g. http://127.0.0.1:2379')
  // Credentials in the URL were never used (the connection failed on the name) and were logged
  // with every endpoint (found by black-box probing). The message does not repeat them.
  .refine((v) => {
    try {
      const u = new URL(v);
      return u.username === '' && u.password === '';
    } catch {
      return true;
    }
  }, 'an etcd URL may not hold a user or password (it would be logged, and is not used): set etcd.username and etcd.password or etcd.passwordFile (ETCD_USERNAME, ETCD_PASSWORD)')
  // etcd serves gRPC at the root: a path, query or fragment would never be used, and the client
  // took `host:port/` for a name it could not parse, retrying for ever (black-box probing). A
  // trailing slash alone, as etcdctl accepts it, is dropped.
  .refine((v) => {
    try {
      const u = new URL(v);
      return u.pathname === '/' && u.search === '' && u.hash === '';
    } catch {
      return true;
    }
  }, 'an etcd URL is scheme://host:port, with no path, query or fragment, e.g. http://127.0.0.1:2379')
  // Without a port the client dialled 443 (black-box probing): etcd has no default to assume.
  .refine((v) => explicitPort(v) !== undefined, 'an etcd URL needs its port, e.g. http://127.0.0.1:2379')
  // What is used is the URL as parsed, written back: the text as given went to the client, so
  // `HTTP://`, an empty `?` or `#`, `/.` or a trailing `\` passed the checks above and never
  // connected (black-box probing).
  .transform((v) => `${new URL(v).protocol}//${new URL(v).hostname}:${Number(explicitPort(v))}`);

/** The port written in a URL (the parser drops 80 or 443 when it is the scheme's default). */
function explicitPort(url: string): string | undefined {
  const authority = /^[^:/?#]+:[/\\]{2}([^/?#\\]*)/.exec(url)?.[1] ?? '';
  return /:(\d+)$/.exec(authority)?.[1];
}

const tlsFiles = z
  .object({
    caFile: z.string().default(''),
    certFile: z.string().default(''),
    keyFile: z.string().default(''),
  })
  .strict()
  .refine((t) => (t.certFile === '') === (t.keyFile === ''), { message: 'a client certificate needs its key: set both certFile and keyFile, or neither' })
  .default({ caFile: '', certFile: '', keyFile: '' });

export const configSchema = z
  .object({
    // A prefix with surrounding spaces managed nothing, without a word (black-box probe: " ").
    keyPrefix: z
      .string()
      .refine((p) => p === p.trim(), 'may not start or end with whitespace')
      // eslint-disable-next-line no-control-regex
      .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), 'may not hold control characters')
      .default(''),
    etcd: z
      .object({
        endpoints: z.array(endpointUrl).min(1).default(['http://127.0.0.1:2379']),
        username: z.string().default(''),
        password: z.string().default(''),
        passwordFile: z.string().default(''),
        tls: tlsFiles,
        // Every etcd call's deadline: 0 failed every call, leader election included (a replica that could never lead yet said it was ready).
        requestTimeout: positiveDuration.default(5000),
        // The connections' keepalive: a ping after this long, dropped unanswered after the
        // timeout. Over a saturated narrow link the answer waits behind the data already sent (at
        // 64 kbit/s, 5 s was too little: every connection was dropped 15 s after it opened).
        // At least etcd's own --grpc-keepalive-min-time (5 s by default): a client pinging more
        // often is sent away (GOAWAY too_many_pings) and every connection dropped.
        keepaliveTime: duration.pipe(z.number().min(5000, "at least 5s (etcd's --grpc-keepalive-min-time: pinged more often, etcd closes the connection)")).default(10_000),
        // At least 1 s: a ping's answer takes a round trip and a turn of etcd's loop; 1 ms
        // dropped connections on an idle link (black-box probing), with nothing said.
        keepaliveTimeout: duration.pipe(z.number().min(1000, 'at least 1s (a ping is answered after a round trip; shorter drops healthy connections)')).default(5_000),
      })
      .strict()
      .refine((e) => e.username !== '' || (e.password === '' && e.passwordFile === ''), {
        message: 'a password needs a username (etcd.username or ETCD_USERNAME)',
        path: ['username'],
      })
      .prefault({}),
    // Only an entirely empty tls block (as Helm and examples render it) means plaintext.
    grpc: z.preprocess(dropEmptyTls, grpcServerConfigSchema.prefault({})),
    http: z
      .object({ addr: hostPortSchema.default('0.0.0.0:47086') })
      .strict()
      .prefault({}),
    actionController: z
      .object({
        addr: dialAddressSchema.default('127.0.0.1:47001'),
        timeout: positiveDuration.default(5000),
        // OffloadModel's deadline: the ActionController moves the model before it answers.
        offloadTimeout: positiveDuration.default(60_000),
        tls: tlsFiles,
      })
      .strict()
      .prefault({}),
    controller: z
      .object({
        // Model and package reconciles are async and I/O-bound: a worker holds its key until its
        // etcd write commits, so workers × round trip bounds the write rate. 256 let the state
        // store fill whole transactions under load (docs/performance.md: at 3,000 package
        // flips/s 64 fell seconds behind; 4 missed every target).
        workers: z.number().int().min(1).max(1024).default(256),
        // A full recompute every period; 0 turns it off. Under 1 s is a typo (1ms for 1m ran 800
        // resyncs a second, each logged: black-box probing).
        resyncPeriod: duration.refine((v) => v === 0 || v >= 1000, 'at least 1s, or 0 to turn the periodic resync off').default(600_000),
        backoffBase: duration.default(5),
        backoffCap: duration.default(30_000),
      })
      .strict()
      .prefault({}),
    reconcile: z
      .object({
        triggerStates: z.array(z.enum(PACKAGE_STATES)).min(1).default(['Error']),
        repeatInitial: duration.default(30_000),
        repeatCap: duration.default(300_000),
        retryBase: duration.default(500),
        retryCap: duration.default(30_000),
        /**
         * Concurrent ActionController calls. Each holds its worker for a confirming etcd read, the
         * call and the record's write: 4 delivered 65-80 a second, so 5,000 packages entering
         * Error at once waited up to 59 s and 1,157 that recovered 15 s later were never called
         * (black-box probing); 32 delivered all 5,000 in 10 s.
         */
        workers: z.number().int().min(1).max(64).default(32),
      })
      .strict()
      .prefault({}),
    // Node leases (contract §1): a node whose /node/{node}/lease key has been absent for the
    // grace counts as NotReady. Off by default: status keys alone decide.
    nodeLiveness: z
      .object({
        enabled: z.boolean().default(false),
        grace: duration.default(0),
      })
      .strict()
      .prefault({}),
    history: z
      .object({
        length: z.number().int().min(0).max(10_000).default(50),
        // After winning leadership: look for history left by state keys deleted while no replica
        // watched (reconcilers/history-sweep.ts); 0 turns it off.
        sweepAfter: duration.default(30_000),
      })
      .strict()
      .prefault({}),
    leaderElection: z
      .object({
        enabled: z.boolean().default(true),
        // etcd's lease TTL is whole seconds; below one second the lease was silently a second long.
        leaseDuration: duration.pipe(z.number().min(1000, 'at least 1s')).default(15_000),
        identity: z.string().default(''),
        onLost: z.enum(['follow', 'exit']).default('follow'),
      })
      .strict()
      .prefault({}),
    // V8 grows its heap by a factor it picks itself (up to 4× what a collection left alive);
    // during a cold start's burst that made peak memory about 5× the live data. A fixed
    // factor, like Go's GOGC, trades some GC CPU for a heap near the live size
    // (docs/performance.md). 0 leaves V8's own choice.
    memory: z
      .object({ heapGrowthPercent: z.number().int().min(0).max(400).default(50) })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
        format: z.enum(['json', 'text']).default('json'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/**
 * Only an entirely empty tls block (every value empty or false, as Helm renders unset values) means
 * plaintext. Anything else goes to the strict schema, so a misspelt or missing field is an
 * error, never a silent fall back to plaintext.
 */
function dropEmptyTls(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const grpc = v as Record<string, unknown>;
  const tls = grpc.tls as Record<string, unknown> | undefined | null;
  const empty = (x: unknown): boolean => x === undefined || x === null || x === '' || x === false;
  if (tls === null || (typeof tls === 'object' && Object.values(tls).every(empty))) {
    const { tls: _ignored, ...rest } = grpc;
    return rest;
  }
  if (tls && typeof tls === 'object' && tls.caFile === '') {
    const { caFile: _none, ...withoutCa } = tls;
    return { ...grpc, tls: withoutCa };
  }
  return v;
}

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    message: string,
    /** The setting refused (`actionController.addr`), when one was. */
    readonly path?: string,
  ) {
    super(message);
  }
}

/** The settings each environment variable sets, so that a refusal names the variable too. */
const ENV_SETTINGS: readonly (readonly [string, string])[] = [
  ['ETCD_ENDPOINTS', 'etcd.endpoints'],
  ['ETCD_USERNAME', 'etcd.username'],
  ['ETCD_PASSWORD', 'etcd.password'],
  ['STATEMANAGER_GRPC_ADDR', 'grpc.addr'],
  ['ACTION_CONTROLLER_ADDR', 'actionController.addr'],
  ['STATEMANAGER_HTTP_ADDR', 'http.addr'],
  ['STATEMANAGER_KEY_PREFIX', 'keyPrefix'],
  ['STATEMANAGER_LOG_LEVEL', 'log.level'],
  ['STATEMANAGER_LOG_FORMAT', 'log.format'],
  ['STATEMANAGER_WORKERS', 'controller.workers'],
  ['STATEMANAGER_HEAP_GROWTH_PERCENT', 'memory.heapGrowthPercent'],
  ['POD_NAME', 'leaderElection.identity'],
];

/** The environment variable that set the refused setting, if one did. */
function settingVariable(path: string, env: NodeJS.ProcessEnv): string | undefined {
  return ENV_SETTINGS.find(([name, at]) => env[name] !== undefined && (path === at || path.startsWith(`${at}.`)))?.[0];
}

/** Environment variables win over the file (contract §4). */
export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out = structuredClone(raw);
  const section = (name: string): Record<string, unknown> => {
    const s = out[name];
    if (s && typeof s === 'object' && !Array.isArray(s)) return s as Record<string, unknown>;
    const fresh: Record<string, unknown> = {};
    out[name] = fresh;
    return fresh;
  };
  if (env.ETCD_ENDPOINTS !== undefined) {
    section('etcd').endpoints = env.ETCD_ENDPOINTS.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }
  if (env.ETCD_USERNAME !== undefined) section('etcd').username = env.ETCD_USERNAME;
  if (env.ETCD_PASSWORD !== undefined) section('etcd').password = env.ETCD_PASSWORD;
  if (env.STATEMANAGER_GRPC_ADDR !== undefined) section('grpc').addr = env.STATEMANAGER_GRPC_ADDR;
  if (env.ACTION_CONTROLLER_ADDR !== undefined) section('actionController').addr = env.ACTION_CONTROLLER_ADDR;
  if (env.STATEMANAGER_HTTP_ADDR !== undefined) section('http').addr = env.STATEMANAGER_HTTP_ADDR;
  if (env.STATEMANAGER_KEY_PREFIX !== undefined) out.keyPrefix = env.STATEMANAGER_KEY_PREFIX;
  if (env.STATEMANAGER_LOG_LEVEL !== undefined) section('log').level = env.STATEMANAGER_LOG_LEVEL;
  if (env.STATEMANAGER_LOG_FORMAT !== undefined) section('log').format = env.STATEMANAGER_LOG_FORMAT;
  if (env.STATEMANAGER_WORKERS !== undefined) section('controller').workers = integerOf(env.STATEMANAGER_WORKERS);
  if (env.STATEMANAGER_HEAP_GROWTH_PERCENT !== undefined) section('memory').heapGrowthPercent = integerOf(env.STATEMANAGER_HEAP_GROWTH_PERCENT);
  // The pod's own name wins over an identity in the file too: a chart's extraConfig setting one
  // gave every replica the same identity, and two of them fought over the lease (black-box probe).
  if (env.POD_NAME !== undefined && env.POD_NAME !== '') section('leaderElection').identity = env.POD_NAME;
  return out;
}

/**
 * A decimal integer from an environment variable; anything else is passed on as text, for the
 * schema to refuse. Number() read "" and "  " as 0, "0x10" as 16 and "1e2" as 100 (black-box probe).
 */
function integerOf(text: string): number | string {
  return /^\s*-?\d+\s*$/.test(text) ? Number(text) : text;
}

export function parseConfig(raw: unknown): Config {
  const res = configSchema.safeParse(raw ?? {});
  if (!res.success) {
    const issue = res.error.issues[0]!;
    const where = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    const more = res.error.issues.length > 1 ? ` (and ${res.error.issues.length - 1} more)` : '';
    throw new ConfigError(`invalid configuration at ${where}: ${issue.message}${more}`, issue.path.join('.'));
  }
  return res.data;
}

/** The file named by --config or STATEMANAGER_CONFIG (if any), then the environment. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read configuration file ${file}: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError(`configuration file ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new ConfigError(`configuration file ${file} must hold a mapping`);
    }
    raw = doc as Record<string, unknown>;
  }
  let config: Config;
  try {
    config = parseConfig(applyEnv(raw, env));
  } catch (err) {
    const variable = err instanceof ConfigError && err.path !== undefined ? settingVariable(err.path, env) : undefined;
    if (variable === undefined) throw err;
    throw new ConfigError((err as ConfigError).message.replace(/^invalid configuration at [^:]+/, (at) => `${at} (set by ${variable})`), (err as ConfigError).path);
  }
  if (config.etcd.passwordFile && !config.etcd.password) {
    try {
      config.etcd.password = readFileSync(config.etcd.passwordFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`cannot read etcd.passwordFile: ${(err as Error).message}`);
    }
  }
  checkTlsFiles('etcd.tls', config.etcd.tls);
  checkTlsFiles('actionController.tls', config.actionController.tls);
  return config;
}

/**
 * The client TLS files of etcd or the ActionController: readable, and a certificate or key each.
 * Found by black-box probing: a missing one stopped the process with a bare ENOENT naming no
 * setting and exit 1 (a supervisor restarting it every 2 s), and a CA that is not PEM was taken at
 * start, every connection then failing with a TLS message that never named the CA.
 */
function checkTlsFiles(section: string, tls: { caFile: string; certFile: string; keyFile: string }): void {
  const check = (setting: string, file: string, what: string, parse: (b: Buffer) => unknown): Buffer | undefined => {
    if (file === '') return undefined;
    let contents: Buffer;
    try {
      contents = readFileSync(file);
    } catch (err) {
      throw new ConfigError(`cannot read ${section}.${setting} ${file}: ${(err as Error).message}`, `${section}.${setting}`);
    }
    try {
      parse(contents);
    } catch (err) {
      throw new ConfigError(`${section}.${setting} ${file} is not ${what}: ${(err as Error).message}`, `${section}.${setting}`);
    }
    return contents;
  };
  check('caFile', tls.caFile, 'a PEM certificate', (b) => new X509Certificate(b));
  const cert = check('certFile', tls.certFile, 'a PEM certificate', (b) => new X509Certificate(b));
  const key = check('keyFile', tls.keyFile, 'a PEM private key', (b) => createPrivateKey(b));
  // A key of another certificate failed every connection with a bare OpenSSL "key values mismatch".
  if (cert !== undefined && key !== undefined) {
    try {
      createSecureContext({ cert, key });
    } catch (err) {
      throw new ConfigError(`${section}.certFile ${tls.certFile} and ${section}.keyFile ${tls.keyFile} cannot be used together: ${(err as Error).message}`, `${section}.keyFile`);
    }
  }
}
