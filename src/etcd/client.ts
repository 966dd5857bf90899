// The etcd clients from configuration: etcd3 for unary calls (ranges, transactions, leases) and
// our own watch client for watches, sharing endpoints, credentials and channel settings.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { handleWhen, retry } from 'cockatiel';
import { Etcd3, GRPCDeadlineExceededError, isRecoverableError, RecoverableError, type IOptions } from 'etcd3';
import type { Config } from '../config/config.js';
import { OWN_SUBCHANNEL_POOL } from '../grpc/connect-deadline.js';
import { AuthBackoff } from './auth-backoff.js';
import { MemberSuspicion } from './member-suspicion.js';
import { installFastLongStrings } from './long-strings.js';
import { EtcdWatchClient } from './watch-client.js';

type EtcdConfig = Config['etcd'];
type HostPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['host']>;

/**
 * grpc-js reconnects a failed connection after 1 s growing to 120 s by default, and shares that
 * backoff between every channel to the same address: after a long etcd outage the first call
 * could wait minutes for the next attempt. Reconnect fast instead (loopback or a LAN).
 * Its DNS resolver also refuses to resolve again within 30 s: a call on a fresh channel to a
 * member that just died waited "for name resolution" until its deadline, so losing one member of
 * three stalled writes for seconds (measured: 5 s to converge; 0.1 s with 100 ms here).
 */
export const ETCD_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  'grpc.dns_min_time_between_resolutions_ms': 100,
  // Each client its own connection, so one stuck connecting can be replaced (connect-deadline.ts).
  ...OWN_SUBCHANNEL_POOL,
};

/** ETCD_CHANNEL_OPTIONS with the configured keepalive (etcd.keepaliveTime, etcd.keepaliveTimeout). */
export function etcdChannelOptions(c: Pick<EtcdConfig, 'keepaliveTime' | 'keepaliveTimeout'>): grpc.ChannelOptions {
  return { ...ETCD_CHANNEL_OPTIONS, 'grpc.keepalive_time_ms': c.keepaliveTime, 'grpc.keepalive_timeout_ms': c.keepaliveTimeout };
}

const NEVER_ABORTED = new AbortController().signal;

/**
 * Every etcd3 call asks etcd to refuse it when the member has no leader (etcd's `hasleader`
 * metadata, what clientv3.WithRequireLeader sets): a member cut off from the rest of its cluster
 * then answers UNAVAILABLE "etcdserver: no leader" at once, and the call goes on to the next
 * member, instead of waiting for its deadline there (a write waited 21 s, a read its whole
 * deadline). The lease's keep-alive stream fails the same way and starts again on another member,
 * instead of going unanswered until the leadership's renew deadline. The watch client sets it too.
 */
export const REQUIRE_LEADER: grpc.Interceptor = (options, nextCall) =>
  new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('hasleader', 'true');
      next(metadata, listener);
    },
  });

/**
 * etcd3's policy around each call to a member (no circuit breaker, see below). etcd3 closes every
 * client of a member (the KV, the lease keeping leadership, …) after any "recoverable" failure,
 * and retries the call; but a call that ran out of its deadline says nothing about the
 * connection, and its retry has no time left either. A gRPC caller's 5 ms deadline passed on to
 * a read made every such read close every connection to etcd twice (10,182 closed in 10 s by one
 * well-behaved client), and a flood of them cost the leader its lease: not renewed for 14 s
 * (black-box probe). Such a failure now reaches the caller as it is, typed as before, closing
 * nothing and not retried: a dead connection is found by keepalive (ETCD_CHANNEL_OPTIONS), one
 * stuck connecting by EtcdStuckConnections, and a member that refuses connections fails with
 * UNAVAILABLE, which still closes its clients and goes on to the next member.
 */
export const PER_CALL_FAILURES_KEEP_CONNECTIONS = {
  async execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T): Promise<T> {
    try {
      return await fn({ signal: NEVER_ABORTED, attempt: 0 });
    } catch (err) {
      if (isPerCallFailure(err)) delete (err as { [RecoverableError]?: boolean })[RecoverableError];
      throw err;
    }
  },
};

/** A failure of the call itself, not of the connection it went over. */
export function isPerCallFailure(err: unknown): boolean {
  return err instanceof GRPCDeadlineExceededError;
}

/** A call to a member that waited at least this long and ran out of its deadline marks the member hung (member-suspicion.ts). */
export const HUNG_AFTER_MS = 1000;
/** How long a hung member is first skipped; doubled each time it is found hung again, up to MAX_SKIP_MS. */
export const FIRST_SKIP_MS = 10_000;
export const MAX_SKIP_MS = 60_000;

export interface EtcdClientHooks {
  /** A member let a call wait past its deadline: calls skip it for `forMs` while another member answers. */
  onMemberHung?: (member: string, forMs: number) => void;
  /** A member found hung answered a call again. */
  onMemberAnswered?: (member: string) => void;
}

export function createEtcdClient(c: EtcdConfig, hooks: EtcdClientHooks = {}): Etcd3 {
  installFastLongStrings();
  const suspicion = new MemberSuspicion({
    members: c.endpoints,
    slowCallMs: HUNG_AFTER_MS,
    suspectForMs: FIRST_SKIP_MS,
    maxSuspectForMs: MAX_SKIP_MS,
    ...(hooks.onMemberHung ? { onSuspect: hooks.onMemberHung } : {}),
    ...(hooks.onMemberAnswered ? { onCleared: hooks.onMemberAnswered } : {}),
  });
  const options: IOptions = {
    hosts: c.endpoints,
    dialTimeout: c.requestTimeout,
    faultHandling: {
      // etcd3's default breaker refuses every call for 5 s after three failures, even once etcd
      // is back, and with several members it opened on live ones too (a failure on the dead one
      // resets every channel, and the retries then missed their deadlines): calls failed for
      // seconds with "circuit breaker is open". A dead member refuses connections at once, so
      // no breaker: the retry goes to the next member. A hung one (connections open, nothing
      // answered) is skipped for a while once a call waited past its deadline there.
      host: ((member: string) => suspicion.policy(member, PER_CALL_FAILURES_KEEP_CONNECTIONS)) as unknown as HostPolicy,
      // Each retry picks another member: one attempt per member, then the caller's own backoff.
      global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(1, c.endpoints.length) + 1 }),
      // No watchBackoff: nothing in the program watches through etcd3's watch manager any more
      // (the controller, the read API and the CLI all use EtcdWatchClient).
    },
    // etcd3 hands these to each grpc-js client, which takes interceptors beside channel options.
    grpcOptions: { ...etcdChannelOptions(c), interceptors: [REQUIRE_LEADER] } as grpc.ChannelOptions,
  };
  const tls = readTls(c);
  if (tls) {
    // rootCertificate undefined: the system's trust store (an empty buffer would trust nothing).
    options.credentials = { rootCertificate: tls.ca as Buffer, ...(tls.key ? { privateKey: tls.key } : {}), ...(tls.cert ? { certChain: tls.cert } : {}) };
  }
  if (c.username) options.auth = { username: c.username, password: c.password };
  const client = new Etcd3(options);
  if (c.username) holdRefusedCredentials(client, new AuthBackoff());
  return client;
}

/**
 * etcd3 authenticates again on every call after a refusal (its Authenticator forgets a failed
 * attempt): route its attempts through an AuthBackoff. etcd3 1.1.2 keeps the Authenticator at
 * `pool.authenticator`; another version without it is left as it is.
 */
function holdRefusedCredentials(client: Etcd3, backoff: AuthBackoff): void {
  const authenticator = (client as unknown as { pool?: { authenticator?: { getMetadata?: () => Promise<grpc.Metadata> } } }).pool?.authenticator;
  const getMetadata = authenticator?.getMetadata;
  if (!authenticator || typeof getMetadata !== 'function') return;
  authenticator.getMetadata = () => backoff.run(() => getMetadata.call(authenticator));
}

export function createEtcdWatchClient(c: EtcdConfig): EtcdWatchClient {
  installFastLongStrings();
  return new EtcdWatchClient({
    endpoints: c.endpoints,
    credentials: channelCredentials(c),
    channelOptions: etcdChannelOptions(c),
    requestTimeoutMs: c.requestTimeout,
    ...(c.username ? { auth: { username: c.username, password: c.password } } : {}),
  });
}

function channelCredentials(c: EtcdConfig): grpc.ChannelCredentials {
  const tls = readTls(c);
  if (tls) return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
  if (c.endpoints.some((e) => e.startsWith('https://'))) return grpc.credentials.createSsl();
  return grpc.credentials.createInsecure();
}

function readTls(c: EtcdConfig): { ca?: Buffer; key?: Buffer; cert?: Buffer } | undefined {
  if (!c.tls.caFile && !c.tls.certFile) return undefined;
  return {
    ...(c.tls.caFile ? { ca: readFileSync(c.tls.caFile) } : {}),
    ...(c.tls.keyFile ? { key: readFileSync(c.tls.keyFile) } : {}),
    ...(c.tls.certFile ? { cert: readFileSync(c.tls.certFile) } : {}),
  };
}
