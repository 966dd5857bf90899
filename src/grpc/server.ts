// The statemanager.StateManagerConnection server: credentials (plaintext, TLS or mutual TLS),
// caller authentication and the handlers, with a metric and a log line per refusal.
import * as grpc from '@grpc/grpc-js';
import { isLoopback, splitHostPort } from '../config/address.js';
import type { Etcd3 } from 'etcd3';
import type { StateManagerConnectionHandlers } from '../generated/statemanager/StateManagerConnection.js';
import type { KeyLayout } from '../../domain/keys.js';
import type { StateStore, DomainObserver } from '../../reconcilers/ports.js';
import type { Logger } from '../../controller/logger.js';
import { Authenticator, type AnonymousAccess, type Caller } from '../auth/identity.js';
import { Authorizer, type ModelPlacement } from '../auth/policy.js';
import { watchTlsCredentials, watchTokenFiles, DEFAULT_CREDENTIALS_RELOAD_MS } from './credentials.js';
import type { ReloadMetrics } from '../process/file-reloader.js';
import { anonymousAccess, requiresClientCert, type GrpcServerConfig } from './config.js';
import { CallGate } from './call-gate.js';
import { RateLimiter } from './rate-limit.js';
import { InFlightLimiter } from './in-flight.js';
import { budgetOf } from './write-budget.js';
import { ThrottledLog } from '../observability/throttled-log.js';
import { handleContainerList } from './container-list.js';
import { callerDeadlineMs } from '../etcd/errors.js';
import { loadStateManagerProto } from './proto.js';
import { handleStateChange } from './state-change.js';
import { handleOffloading, type Forwarded, type OffloadingOutcome, type PackageModels } from './offloading.js';
import { SingleFlight } from '../offloading/single-flight.js';
import type { OffloadModelClient } from '../action-controller/client.js';
import type { OffloadingRecords } from '../etcd/offloading-store.js';
import { readHandlers, type ReadHandlers, type StreamMetrics } from './read-api.js';
import type { StateReader } from '../state-api/reader.js';
import type { StateFeed } from '../state-api/feed.js';
import { quote } from './validation.js';
import { errorMessage } from '../../controller/errors.js';

/** Counts answered calls; `code` is the gRPC status name, or for SendStateChange answered OK its ErrorCode. */
export interface GrpcMetrics {
  request(method: string, code: string): void;
  /** Whether anonymous callers are served from beyond loopback (`allowAnonymous: true`), set at start. */
  anonymousBeyondLoopback?(on: boolean): void;
  /** Reloads of the TLS files and token files (outcome success or error), and when each was last loaded. */
  credentials?: ReloadMetrics;
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
  /** How often the certificate, key, CA and token files are checked for changes. Default 10000. */
  credentialsReloadMs?: number;
  /** Where statemanager.proto is; found next to the sources or the build by default. */
  protoDir?: string;
  /** Where requested scenario transitions are reported (logged and counted). */
  observer?: DomainObserver;
  /** Where packages place their models, for `placedModelsOnly` rules (the replica's own caches). */
  placement?: ModelPlacement;
  /** Whether a peer address is this machine's (anonymous callers' default reach). Default: loopback. */
  isLocalPeer?: (address: string) => boolean;
  /** Contract section 5 (reads and subscriptions); without it those calls answer UNIMPLEMENTED. */
  readApi?: { reader: StateReader; feed: StateFeed; metrics?: StreamMetrics };
  /** TriggerOffloading (contract section 3); without it the call answers UNIMPLEMENTED. */
  offloading?: {
    /** The ActionController client (the one Reconcile uses: same connection, TLS and timeout). */
    actionController: OffloadModelClient;
    records: OffloadingRecords;
    /** The package definitions in this replica's caches (the Fleet). */
    definitions: PackageModels;
    /** Counts each request by outcome (statemanager_offloading_requests_total). */
    counted?: (outcome: OffloadingOutcome) => void;
  };
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
    const authenticator = new Authenticator({ tokens, anonymous, isLocal: o.isLocalPeer ?? isLoopback });
    const authorizer = new Authorizer(config.auth.rules, o.placement);
    warnAboutExposure(config, anonymous, logger);
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
    });
    // Bytes into etcd per identity (anonymous: per peer address), shared by both write methods.
    const writeBytes = new RateLimiter({ perSecond: config.limits.writeBytesPerSecond, burst: config.limits.writeBurstBytes });
    const budget = (call: { metadata: grpc.Metadata }) => budgetOf(writeBytes, gate.budgetKeyOf(call.metadata) ?? 'unknown');
    const refuse = (method: string, code: grpc.status, details: string): Partial<grpc.StatusObject> => {
      record(method, grpc.status[code]);
      return { code, details };
    };
    const authenticate = (method: string, call: { metadata: grpc.Metadata }): Caller | Partial<grpc.StatusObject> => {
      const caller = gate.callerOf(call.metadata);
      // Every call passes the gate first; a call without a caller is a wiring bug, refused.
      if (caller) return caller;
      logger.error('gRPC call reached its handler without passing the gate', { method });
      return refuse(method, grpc.status.UNAUTHENTICATED, 'not authenticated');
    };
    const failed = (method: string, err: unknown): Partial<grpc.StatusObject> => {
      logger.error('gRPC handler failed', { method, error: err instanceof Error ? err.stack ?? err.message : String(err) });
      return refuse(method, grpc.status.INTERNAL, 'internal error');
    };

    const reads: ReadHandlers = o.readApi
      ? readHandlers(
          {
            reader: o.readApi.reader,
            feed: o.readApi.feed,
            authorizer,
            logger,
            refusals,
            ...(o.readApi.metrics ? { metrics: o.readApi.metrics } : {}),
            limits: {
              subscriptionsPerIdentity: config.limits.subscriptionsPerIdentity,
              subscriptionsTotal: config.limits.subscriptionsTotal,
              listMaxResults: config.limits.listMaxResults,
            },
          },
          authenticate,
          record,
        )
      : unimplementedReads(refuse);

    // Identical TriggerOffloading requests in flight on this replica share one ActionController call.
    const flights = new SingleFlight<Forwarded>();

    const handlers: StateManagerConnectionHandlers = {
      ...reads,
      TriggerOffloading(call, callback) {
        const method = 'TriggerOffloading';
        const caller = authenticate(method, call);
        if (!('identity' in caller)) return callback(caller);
        const off = o.offloading;
        if (!off) return callback(refuse(method, grpc.status.UNIMPLEMENTED, 'TriggerOffloading is not served by this server'));
        handleOffloading(
          {
            authorizer,
            logger,
            refusals,
            actionController: off.actionController,
            records: off.records,
            definitions: off.definitions,
            flights,
            reasonBytes: config.limits.offloadingReasonBytes,
            budget: budget(call),
            ...(off.counted ? { counted: off.counted } : {}),
          },
          { caller, request: call.request, ...deadlineOf(call) },
        ).then(
          (response) => {
            record(method, 'OK');
            callback(null, response);
          },
          (err: unknown) => callback(failed(method, err)),
        );
      },
      SendAction(_call, callback) {
        callback(refuse('SendAction', grpc.status.UNIMPLEMENTED, 'SendAction is not implemented by statemanager'));
      },

      SendChangedContainerList(call, callback) {
        const method = 'SendChangedContainerList';
        const caller = authenticate(method, call);
        if (!('identity' in caller)) return callback(caller);
        handleContainerList(
          {
            client: o.client,
            keys: o.keys,
            authorizer,
            logger,
            requestTimeoutMs,
            maxAttempts: config.conflictRetries,
            limits: {
              maxContainers: config.maxContainersPerList,
              listBytes: config.limits.listBytes,
              namesPerContainer: config.limits.namesPerContainer,
              mapEntries: config.limits.mapEntries,
              valueBytes: config.limits.valueBytes,
            },
            maxTxnOps: config.etcdMaxTxnOps,
            refusals,
            budget: budget(call),
            ...(o.placement ? { placement: o.placement } : {}),
          },
          { caller, request: call.request, ...deadlineOf(call) },
        ).then(
          (outcome) => {
            if (!outcome.ok) {
              logger.debug('SendChangedContainerList refused', { identity: caller.identity, code: grpc.status[outcome.code], details: outcome.message });
              return callback(refuse(method, outcome.code, outcome.message));
            }
            record(method, 'OK');
            callback(null, { resp: outcome.resp });
          },
          (err: unknown) => callback(failed(method, err)),
        );
      },

      SendStateChange(call, callback) {
        const method = 'SendStateChange';
        const caller = authenticate(method, call);
        if (!('identity' in caller)) return callback(caller);
        handleStateChange(
          {
            client: o.client,
            keys: o.keys,
            store: o.store,
            authorizer,
            logger,
            requestTimeoutMs,
            maxAttempts: config.conflictRetries,
            refusals,
            budget: budget(call),
            ...(o.observer ? { observer: o.observer } : {}),
          },
          { caller, request: call.request, ...deadlineOf(call) },
        ).then(
          (response) => {
            record(method, String(response.error_code));
            if (response.error_code !== 'ERROR_CODE_SUCCESS') {
              logger.debug('SendStateChange refused', {
                identity: caller.identity,
                name: quote(call.request.resource_name),
                code: response.error_code,
                details: response.error_details,
                transitionId: response.transition_id,
              });
            }
            callback(null, response);
          },
          (err: unknown) => callback(failed(method, err)),
        );
      },
    };

    const s = new grpc.Server({
      'grpc.max_receive_message_length': config.maxMessageBytes,
      'grpc.max_concurrent_streams': config.limits.maxConcurrentStreams,
      interceptors: [gate.interceptor],
    });
    const service = proto.statemanager.StateManagerConnection.service;
    s.addService(service, gate.holdUntilAnswered(service, handlers));
    const port = await new Promise<number>((resolve, reject) => {
      s.bindAsync(config.addr, credentials, (err, p) => (err ? reject(err) : resolve(p)));
    }).catch((err: unknown) => {
      s.forceShutdown();
      stopReloading();
      throw new Error(`cannot listen for gRPC on ${config.addr}: ${errorMessage(err)}`, { cause: err });
    });
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

function unimplementedReads(refuse: (method: string, code: grpc.status, details: string) => Partial<grpc.StatusObject>): ReadHandlers {
  const no = (method: string) => refuse(method, grpc.status.UNIMPLEMENTED, `${method} is not served by this server`);
  return {
    GetResourceState: (_call, cb) => cb(no('GetResourceState')),
    GetResourceStateHistory: (_call, cb) => cb(no('GetResourceStateHistory')),
    ListResourcesByState: (_call, cb) => cb(no('ListResourcesByState')),
    SubscribeToStateChanges: (call) => void call.emit('error', no('SubscribeToStateChanges')),
  };
}

function deadlineOf(call: { getDeadline(): grpc.Deadline }): { callerDeadline?: number } {
  const ms = callerDeadlineMs(call.getDeadline());
  return ms === undefined ? {} : { callerDeadline: ms };
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
