// The methods that write (contract sections 2 and 3) as specs for the handler skeleton:
// SendChangedContainerList, SendStateChange, TriggerOffloading, and SendAction (not ours).
// Their dependencies are built once, here; only the caller's write budget differs per call.
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { StateManagerConnectionHandlers } from '../generated/statemanager/StateManagerConnection.js';
import type { KeyLayout } from '../../domain/keys.js';
import type { StateStore, DomainObserver } from '../../reconcilers/ports.js';
import type { Logger } from '../../controller/logger.js';
import type { Authorizer, ModelPlacement } from '../auth/policy.js';
import type { ThrottledLog } from '../../controller/throttled-log.js';
import type { OffloadModelClient } from '../action-controller/client.js';
import type { OffloadingRecords } from '../etcd/offloading-store.js';
import { SingleFlight } from '../offloading/single-flight.js';
import type { GrpcServerConfig } from './config.js';
import { answer, refuse, type Skeleton } from './handler.js';
import { RateLimiter } from './rate-limit.js';
import { budgetOf } from './write-budget.js';
import { WriteTurns } from './write-turns.js';
import { handleContainerList, type ContainerListDeps } from './container-list.js';
import { TxnOpsLimit } from '../etcd/txn-ops-limit.js';
import { RecentLists } from './container-sync.js';
import { stateChangeHandler } from './state-change.js';
import type { ScenarioDefinitions } from '../../reconcilers/undefined-scenarios.js';
import { handleOffloading, type Forwarded, type OffloadingDeps, type OffloadingOutcome, type PackageModels } from './offloading.js';
import { quote } from './validation.js';

/** TriggerOffloading's collaborators; without them the call answers UNIMPLEMENTED. */
export interface OffloadingService {
  /** The ActionController client (the one Reconcile uses: same connection, TLS and timeout). */
  actionController: OffloadModelClient;
  records: OffloadingRecords;
  /** The package definitions in this replica's caches (the Fleet). */
  definitions: PackageModels;
  /** Counts each request by outcome (statemanager_offloading_requests_total). */
  counted?: (outcome: OffloadingOutcome) => void;
}

export interface WriteApiDeps {
  client: Etcd3;
  /** Container lists written at once (default: from config.limits.containerListsAtOnce). */
  containerListTurns?: WriteTurns;
  keys: KeyLayout;
  store: StateStore;
  authorizer: Authorizer;
  logger: Logger;
  refusals: ThrottledLog;
  config: GrpcServerConfig;
  requestTimeoutMs: number;
  observer?: DomainObserver;
  placement?: ModelPlacement;
  scenarios?: ScenarioDefinitions;
  offloading?: OffloadingService;
  /** The container lists this replica last wrote per node (forgotten when etcd's history is replaced); default: the server's own. */
  recentLists?: RecentLists;
}

/** Longest wait for a container list's turn when its caller set no deadline (a node agent sends again). */
export const CONTAINER_LIST_MAX_WAIT_MS = 30_000;

export function containerListTurns(config: GrpcServerConfig): WriteTurns {
  return new WriteTurns({
    concurrency: config.limits.containerListsAtOnce,
    maxWaitMs: CONTAINER_LIST_MAX_WAIT_MS,
    maxWaitingBytes: config.limits.containerListBytesWaiting,
    maxWaiting: config.limits.containerListsWaiting,
  });
}

export type WriteHandlers = Pick<StateManagerConnectionHandlers, 'SendChangedContainerList' | 'SendStateChange' | 'TriggerOffloading' | 'SendAction'>;

export function writeHandlers(d: WriteApiDeps, s: Skeleton): WriteHandlers {
  const { config, logger } = d;
  // Bytes into etcd per identity (anonymous: per peer address), shared by every write method.
  const writeBytes = new RateLimiter({ perSecond: config.limits.writeBytesPerSecond, burst: config.limits.writeBurstBytes });
  const budget = (key: string) => budgetOf(writeBytes, key);

  const containerList: ContainerListDeps = {
    client: d.client,
    keys: d.keys,
    authorizer: d.authorizer,
    logger,
    requestTimeoutMs: d.requestTimeoutMs,
    maxAttempts: config.conflictRetries,
    limits: {
      maxContainers: config.maxContainersPerList,
      listBytes: config.limits.listBytes,
      namesPerContainer: config.limits.namesPerContainer,
      mapEntries: config.limits.mapEntries,
      valueBytes: config.limits.valueBytes,
    },
    maxTxnOps: new TxnOpsLimit(config.etcdMaxTxnOps, (from, to) =>
      logger.warn("etcd refused a container list's transaction as too large: smaller transactions from now on (set grpc.etcdMaxTxnOps to etcd's --max-txn-ops)", { from, to }),
    ),
    refusals: d.refusals,
    ...(d.placement ? { placement: d.placement } : {}),
    recent: d.recentLists ?? new RecentLists(),
    turns: d.containerListTurns ?? containerListTurns(config),
  };
  const stateChange = stateChangeHandler({
    client: d.client,
    keys: d.keys,
    store: d.store,
    authorizer: d.authorizer,
    logger,
    requestTimeoutMs: d.requestTimeoutMs,
    maxAttempts: config.conflictRetries,
    refusals: d.refusals,
    ...(d.observer ? { observer: d.observer } : {}),
    ...(d.scenarios ? { scenarios: d.scenarios, maxUndefinedScenarioStates: config.limits.undefinedScenarioStates } : {}),
  });
  const off = d.offloading;
  const offloading: OffloadingDeps | undefined = off && {
    authorizer: d.authorizer,
    logger,
    refusals: d.refusals,
    actionController: off.actionController,
    records: off.records,
    definitions: off.definitions,
    // Identical requests in flight on this replica share one ActionController call.
    flights: new SingleFlight<Forwarded>(),
    reasonBytes: config.limits.offloadingReasonBytes,
    ...(off.counted ? { counted: off.counted } : {}),
  };

  return {
    SendChangedContainerList: s.unary({
      method: 'SendChangedContainerList',
      permission: 'per-request',
      async run(call) {
        const outcome = await handleContainerList(containerList, { ...call, budget: budget(call.budgetKey) });
        if (outcome.ok) return answer({ resp: outcome.resp });
        logger.debug('SendChangedContainerList refused', { identity: call.caller.identity, code: grpc.status[outcome.code], details: outcome.message });
        return refuse(outcome.code, outcome.message);
      },
    }),

    // Answered OK with the contract's ErrorCode, which is what the metric counts.
    SendStateChange: s.unary({
      method: 'SendStateChange',
      permission: 'per-request',
      async run(call) {
        const response = await stateChange({ ...call, budget: budget(call.budgetKey) });
        if (response.error_code !== 'ERROR_CODE_SUCCESS') {
          logger.debug('SendStateChange refused', {
            identity: call.caller.identity,
            name: quote(call.request.resource_name),
            code: response.error_code,
            details: response.error_details,
            transitionId: response.transition_id,
          });
        }
        return answer(response, String(response.error_code));
      },
    }),

    TriggerOffloading: s.unary({
      method: 'TriggerOffloading',
      permission: 'per-request',
      run: async (call) =>
        offloading
          ? answer(await handleOffloading(offloading, { ...call, budget: budget(call.budgetKey) }))
          : refuse(grpc.status.UNIMPLEMENTED, 'TriggerOffloading is not served by this server'),
    }),

    SendAction: s.unary({
      method: 'SendAction',
      permission: 'per-request',
      run: () => refuse(grpc.status.UNIMPLEMENTED, 'SendAction is not implemented by statemanager'),
    }),
  };
}
