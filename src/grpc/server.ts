// The statemanager.StateManagerConnection server: credentials (plaintext, TLS or mutual TLS),
// the call gate, and every method built once, at start, on one handler skeleton (handler.ts).
import { BytesInFlight } from './bytes-in-flight.js';
import * as grpc from '@grpc/grpc-js';
import { isLoopback, splitHostPort } from '../config/address.js';
import type { Etcd3 } from 'etcd3';
import type { StateManagerConnectionHandlers } from '../generated/statemanager/StateManagerConnection.js';
import type { KeyLayout } from '../../domain/keys.js';
import type { StateStore, DomainObserver } from '../../reconcilers/ports.js';
import type { Logger } from '../../controller/logger.js';
import { Authenticator, type AnonymousAccess } from '../auth/identity.js';
import { Authorizer, type ModelPlacement } from '../auth/policy.js';
import type { ScenarioDefinitions } from '../../reconcilers/undefined-scenarios.js';
import { watchTlsCredentials, watchTokenFiles, DEFAULT_CREDENTIALS_RELOAD_MS } from './credentials.js';
import type { ReloadMetrics } from '../process/file-reloader.js';
import { anonymousAccess, requiresClientCert, streamsShortOfBudgets, type GrpcServerConfig } from './config.js';
import { CallGate } from './call-gate.js';
import { RateLimiter } from './rate-limit.js';
import { InFlightLimiter } from './in-flight.js';
import { ThrottledLog } from '../../controller/throttled-log.js';
import { loadStateManagerProto, preEncoder, withContainerListBounds } from './proto.js';
import { LIST_SENDS_WAITING, readHandlers, unimplementedReads, type StreamMetrics } from './read-api.js';
import type { StateReader } from '../state-api/reader.js';
import type { StateFeed } from '../state-api/feed.js';
import { errorMessage } from '../../controller/errors.js';
import { skeleton } from './handler.js';
import { ConnectionGate, type ConnectionRefusal } from './connection-gate.js';
import { listenGated, type Listener } from './listener.js';
import { containerListTurns, writeHandlers, type OffloadingService } from './write-api.js';
import type { RecentLists } from './container-sync.js';
import { installLongDeadlines } from './long-deadlines.js';

/** How a connection refusal names the bound it hit. */
const LIMIT_NAMES: Record<ConnectionRefusal, (limit: number) => string> = {
  peer: (n) => `${n} from one address (grpc.limits.connectionsPerPeer)`,
  total: (n) => `${n} in all (grpc.limits.maxConnections)`,
  rate: (n) => `${n} new per second from one address (grpc.limits.connectionsPerSecondPerPeer)`,
};

/** Counts answered calls; `code` is the gRPC status name, or for SendStateChange answered OK its ErrorCode. */
export interface GrpcMetrics {
  request(method: string, code: string): void;
  /** Whether anonymous callers are served from beyond loopback (`allowAnonymous: true`), set at start. */
  anonymousBeyondLoopback?(on: boolean): void;
  /** Reloads of the TLS files and token files (outcome success or error), and when each was last loaded. */
  credentials?: ReloadMetrics;
  /** Open connections, and connections closed as they came for being over a bound. */
  connections?: { open(count: number): void; refused(reason: ConnectionRefusal): void };
  /** Given, at start, how to read the container lists waiting for a turn (write-turns.ts). */
  containerListsWaiting?(read: () => number): void;
  /** Given, at start, how to read the long lists waiting for a turn and the bytes being sent (bytes-in-flight.ts). */
  listSends?(read: () => { waiting: number; inFlight: number }): void;
}

export interface StateManagerServerOptions {
  client: Etcd3;
  keys: KeyLayout;
  /**
   * Writes scenario states. It must not be guarded by leadership: any replica serves gRPC
   * (the compare-and-swap on the state key is what keeps writers apart).
   */
  store: StateStore;
  logger: Logger;
  config: GrpcServerConfig;
  metrics?: GrpcMetrics;
  /** Deadline of each etcd call. Default 5000. */
  requestTimeoutMs?: number;
  /** stop(): wait this long for calls in flight, then cut them. Default 5000. */
  shutdownTimeoutMs?: number;
  /** How long an admitted call's request may take to arrive whole (CallGateOptions.requestArrivalMs; tests shorten it). */
  requestArrivalMs?: number;
  /** How often the certificate, key, CA and token files are checked for changes. Default 10000. */
  credentialsReloadMs?: number;
  /** Where statemanager.proto is; found next to the sources or the build by default. */
  protoDir?: string;
  /** Where requested scenario transitions are reported (logged and counted). */
  observer?: DomainObserver;
  /** Where packages place their models, for `placedModelsOnly` rules (the replica's own caches). */
  placement?: ModelPlacement;
  /** Scenario definitions and the states held without one (grpc.limits.undefinedScenarioStates); unbounded without it. */
  scenarios?: ScenarioDefinitions;
  /** Whether a peer address is this machine's (anonymous callers' default reach). Default: loopback. */
  isLocalPeer?: (address: string) => boolean;
  /** Contract section 5 (reads and subscriptions); without it those calls answer UNIMPLEMENTED. */
  readApi?: { reader: StateReader; feed: StateFeed; metrics?: StreamMetrics; loading?: () => string | undefined; listSends?: BytesInFlight; listHoldCapMs?: number };
  /** TriggerOffloading (contract section 3); without it the call answers UNIMPLEMENTED. */
  offloading?: OffloadingService;
  /** The container lists last written per node, for the caller to clear when etcd's history is replaced; default: the server's own. */
  recentLists?: RecentLists;
}

export interface StateManagerServer {
  /** Reads certificates and token files, binds and serves; resolves with the bound port. */
  start(): Promise<{ port: number }>;
  /** Graceful shutdown bounded by shutdownTimeoutMs, then forced. Idempotent. */
  stop(): Promise<void>;
}

export function createStateManagerServer(o: StateManagerServerOptions): StateManagerServer {
  const { config, logger } = o;
  const requestTimeoutMs = o.requestTimeoutMs ?? 5000;
  let server: grpc.Server | undefined;
  let listener: Listener | undefined;
  let stopReloading = (): void => undefined;

  const start = async (): Promise<{ port: number }> => {
    if (server) throw new Error('gRPC server already started');
    const proto = loadStateManagerProto(o.protoDir);
    const reload = {
      logger,
      intervalMs: o.credentialsReloadMs ?? DEFAULT_CREDENTIALS_RELOAD_MS,
      ...(o.metrics?.credentials ? { metrics: o.metrics.credentials } : {}),
    };
    const tls = config.tls ? await watchTlsCredentials(config.tls, requiresClientCert(config), reload) : undefined;
    const tokenFiles = await watchTokenFiles(config.auth.tokens, reload).catch((err: unknown) => {
      tls?.stop();
      throw err;
    });
    stopReloading = () => {
      tls?.stop();
      tokenFiles.stop();
    };
    const credentials = tls?.credentials ?? grpc.ServerCredentials.createInsecure();
    const tokens = tokenFiles.tokens;
    const anonymous = anonymousAccess(config);
    const isLocalPeer = o.isLocalPeer ?? isLoopback;
    const authenticator = new Authenticator({ tokens, anonymous, isLocal: isLocalPeer });
    const authorizer = new Authorizer(config.auth.rules, o.placement);
    warnAboutExposure(config, anonymous, logger);
    const shortOfStreams = streamsShortOfBudgets(config.limits);
    if (shortOfStreams !== undefined) logger.warn(shortOfStreams);
    o.metrics?.anonymousBeyondLoopback?.(anonymous === 'anywhere');

    const record = (method: string, code: string): void => o.metrics?.request(method, code);
    const refusals = new ThrottledLog({ logger });
    const gate = new CallGate({
      authenticator,
      rateLimiter: new RateLimiter({ perSecond: config.limits.callsPerSecond, burst: config.limits.burst }),
      inFlight: new InFlightLimiter(config.limits.callsInFlightPerIdentity),
      authFailures: new RateLimiter({ perSecond: config.limits.authFailuresPerMinute / 60, burst: Math.max(1, config.limits.authFailuresPerMinute) }),
      refusals,
      refused: record,
      isLocalPeer,
      ...(o.requestArrivalMs !== undefined ? { requestArrivalMs: o.requestArrivalMs } : {}),
    });
    const turns = containerListTurns(config);
    o.metrics?.containerListsWaiting?.(() => turns.waiting);
    const methods = skeleton({ admitted: (m) => gate.admittedOf(m), authorizer, logger, refusals, record });
    const listSends = o.readApi?.listSends ?? new BytesInFlight({ capacity: config.limits.listBytesInFlight, maxWaiting: LIST_SENDS_WAITING });
    o.metrics?.listSends?.(() => ({ waiting: listSends.waiting, inFlight: listSends.inFlight }));
    const read = o.readApi;
    const handlers = {
      ...(read
        ? readHandlers(
            {
              reader: read.reader,
              feed: read.feed,
              ...(read.loading ? { loading: read.loading } : {}),
              listSends,
              ...(read.listHoldCapMs !== undefined ? { listHoldCapMs: read.listHoldCapMs } : {}),
              logger,
              refusals,
              ...(read.metrics ? { metrics: read.metrics } : {}),
              encodeEvent: preEncoder(proto.statemanager.StateManagerConnection.service.SubscribeToStateChanges),
              encodeList: preEncoder(proto.statemanager.StateManagerConnection.service.ListResourcesByState),
              limits: {
                subscriptionsPerIdentity: config.limits.subscriptionsPerIdentity,
                subscriptionsTotal: config.limits.subscriptionsTotal,
                listMaxResults: config.limits.listMaxResults,
                listMaxBytes: config.limits.listMaxBytes,
                listBytesInFlight: config.limits.listBytesInFlight,
              },
            },
            methods,
          )
        : unimplementedReads(methods)),
      ...writeHandlers(
        {
          containerListTurns: turns,
          client: o.client,
          keys: o.keys,
          store: o.store,
          authorizer,
          logger,
          refusals,
          config,
          requestTimeoutMs,
          ...(o.observer ? { observer: o.observer } : {}),
          ...(o.placement ? { placement: o.placement } : {}),
          ...(o.scenarios ? { scenarios: o.scenarios } : {}),
          ...(o.offloading ? { offloading: o.offloading } : {}),
          ...(o.recentLists ? { recentLists: o.recentLists } : {}),
        },
        methods,
      ),
    } satisfies StateManagerConnectionHandlers;

    // grpc-js ends a call whose deadline is more than 24.8 days away at once (long-deadlines.ts).
    installLongDeadlines();
    const s = new grpc.Server({
      'grpc.max_receive_message_length': config.maxMessageBytes,
      'grpc.max_concurrent_streams': config.limits.maxConcurrentStreams,
      ...(config.limits.keepaliveTimeMs > 0
        ? { 'grpc.keepalive_time_ms': config.limits.keepaliveTimeMs, 'grpc.keepalive_timeout_ms': config.limits.keepaliveTimeoutMs }
        : {}),
      interceptors: [gate.interceptor],
    });
    const service = withContainerListBounds(proto.statemanager.StateManagerConnection.service, {
      maxContainers: config.maxContainersPerList,
      namesPerContainer: config.limits.namesPerContainer,
      mapEntries: config.limits.mapEntries,
    });
    s.addService(service, handlers);
    // statemanager accepts the connections itself and hands them to grpc-js, so that one past
    // the connection bounds is closed before TLS or HTTP/2 spend anything on it (connection-gate.ts).
    const injector = s.createConnectionInjector(credentials);
    const connections = new ConnectionGate(
      {
        total: config.limits.maxConnections,
        perPeer: config.limits.connectionsPerPeer,
        perPeerPerSecond: config.limits.connectionsPerSecondPerPeer,
        isLocal: isLocalPeer,
      },
      {
        open: (n) => o.metrics?.connections?.open(n),
        refused: (reason, peer, limit) => {
          o.metrics?.connections?.refused(reason);
          refusals.warn(`connection-${reason}`, reason === 'rate' ? 'gRPC connection refused: too many new from one address' : 'gRPC connection refused: too many open', {
            peer,
            limit: LIMIT_NAMES[reason](limit),
          });
        },
      },
    );
    listener = await listenGated(config.addr, connections, (socket) => injector.injectConnection(socket), logger).catch((err: unknown) => {
      s.forceShutdown();
      stopReloading();
      throw new Error(`cannot listen for gRPC on ${config.addr}: ${errorMessage(err)}`, { cause: err });
    });
    const port = listener.port;
    server = s;
    logger.info('gRPC server listening', {
      addr: config.addr,
      port,
      tls: config.tls !== undefined,
      mutualTls: requiresClientCert(config),
      tokens: tokens.size,
      anonymous,
      callsPerSecond: config.limits.callsPerSecond || 'unlimited',
      writeBytesPerSecond: config.limits.writeBytesPerSecond || 'unlimited',
      authorizationRules: config.auth.rules?.length ?? 'none (anonymous callers only)',
    });
    return { port };
  };

  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    stopReloading();
    listener?.close();
    listener = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        logger.warn('gRPC calls still running at shutdown: cancelled');
        s.forceShutdown();
        resolve();
      }, o.shutdownTimeoutMs ?? 5000);
      s.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  };

  return { start, stop };
}

function warnAboutExposure(config: GrpcServerConfig, anonymous: AnonymousAccess, logger: Logger): void {
  const loopback = isLoopback(hostOf(config.addr));
  if (anonymous === 'anywhere') {
    logger.warn('grpc.auth.allowAnonymous is true: anyone who can reach the gRPC port can change states, without an identity', { addr: config.addr });
  }
  if (anonymous === 'loopback' && !loopback) {
    logger.info('no caller identities configured: only loopback peers are served, others are refused (UNAUTHENTICATED)', { addr: config.addr });
  }
}

export function hostOf(addr: string): string {
  return splitHostPort(addr).host;
}

export { isLoopback };
