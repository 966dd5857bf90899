// SendChangedContainerList: validation, authorization for the node named, then the etcd sync.
// Refusals are gRPC statuses (the response message has no error field).
import { answerDeadlineOf } from './answer-deadline.js';
import { status } from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { ContainerList__Output } from '../generated/monitoringserver/ContainerList.js';
import type { KeyLayout } from '../../domain/keys.js';
import type { Logger } from '../../controller/logger.js';
import type { Caller } from '../auth/identity.js';
import type { Authorizer, ModelPlacement } from '../auth/policy.js';
import type { ThrottledLog } from '../../controller/throttled-log.js';
import { ContainerSyncConflictError, PartlyWrittenError, syncContainerList, type RecentLists } from './container-sync.js';
import { classifyEtcdError } from '../etcd/errors.js';
import type { TxnOpsLimit } from '../etcd/txn-ops-limit.js';
import { quote, validateContainerList, type ContainerListLimits } from './validation.js';
import { errorMessage } from '../../controller/errors.js';
import { WriteBudgetExceededError, type WriteBudget } from './write-budget.js';
import { busyMessage, WriteTurnCancelledError, WriteTurnsBusyError, WriteTurnsFullError, WriteTurnTimeoutError, type Busy, type WriteTurns } from './write-turns.js';

export interface ContainerListDeps {
  client: Etcd3;
  keys: KeyLayout;
  authorizer: Authorizer;
  logger: Logger;
  requestTimeoutMs: number;
  maxAttempts: number;
  limits: ContainerListLimits;
  /** etcd's --max-txn-ops as configured, or as found (cut when etcd refuses a transaction as too large). */
  maxTxnOps: number | TxnOpsLimit;
  /** Where denials are logged, at a bounded rate. */
  refusals: ThrottledLog;
  /** Names the models not placed on the node in a denial. */
  placement?: ModelPlacement;
  /** The lists this server last applied per node: the same list again is checked, not read whole. */
  recent?: RecentLists;
  /** Lists written at once, server-wide; others wait their turn (write-turns.ts). */
  turns?: WriteTurns;
}

export interface ContainerListCall {
  caller: Caller;
  request: ContainerList__Output;
  callerDeadline?: number;
  /** The caller's budget of bytes into etcd; unlimited when omitted. */
  budget?: WriteBudget;
  /** Runs `fn` once the call is over (answered or cancelled): a list still waiting for its turn then leaves the line. */
  onEnd?(fn: () => void): void;
}

export type ContainerListOutcome = { ok: true; resp: string } | { ok: false; code: status; message: string };

export async function handleContainerList(deps: ContainerListDeps, call: ContainerListCall): Promise<ContainerListOutcome> {
  // Refused before any work when the lists waiting would not be written in time: under more lists
  // than the turns write, the refusals are most of the calls, and must cost little.
  const busy = deps.turns?.admission(answerDeadlineOf(Date.now(), call.callerDeadline));
  if (busy !== undefined) return refusedBusy(deps, call, call.request.node_name, busy);
  const v = validateContainerList(call.request, deps.limits);
  if (!v.ok) return { ok: false, code: status.INVALID_ARGUMENT, message: v.message };
  const { nodeName, containers, models } = v.value;

  const decision = deps.authorizer.authorize(call.caller, { method: 'SendChangedContainerList', nodeName, models });
  if (!decision.allowed) {
    const unplaced = deps.placement ? models.filter((m) => !deps.placement!.isModelPlacedOn(m, nodeName)) : [];
    const meta = { method: 'SendChangedContainerList', identity: call.caller.identity, via: call.caller.via, nodeName, ...(unplaced.length ? { unplacedModels: unplaced.slice(0, 10) } : {}) };
    deps.refusals.warn('denied', 'gRPC call denied', meta);
    const why = unplaced.length ? ` (no package places ${unplaced.slice(0, 5).map((m) => JSON.stringify(m)).join(', ')} on it)` : '';
    return { ok: false, code: status.PERMISSION_DENIED, message: `${call.caller.identity} may not send the container list of node ${nodeName}${why}` };
  }

  // etcd's work for the caller ends before its deadline, so the answer says what happened.
  const answerBy = answerDeadlineOf(Date.now(), call.callerDeadline);
  try {
    const limit = deps.maxTxnOps;
    const once = () => syncContainerList(
      {
        client: deps.client,
        keys: deps.keys,
        requestTimeoutMs: deps.requestTimeoutMs,
        maxAttempts: deps.maxAttempts,
        maxTxnOps: typeof limit === 'number' ? limit : limit.get(),
        ...(call.budget ? { budget: call.budget } : {}),
        ...(deps.recent ? { recent: deps.recent } : {}),
        ...(answerBy !== undefined ? { callerDeadline: answerBy } : {}),
      },
      nodeName,
      containers,
    );
    // A transaction etcd refuses as too large wrote nothing: the list again in smaller ones (the
    // sync reads the prefix again, so a part written before is taken as it is).
    const sync = async (): Promise<Awaited<ReturnType<typeof once>>> => {
      for (;;) {
        try {
          return await once();
        } catch (err) {
          const cause = err instanceof PartlyWrittenError ? err.cause : err;
          if (typeof limit === 'number' || classifyEtcdError(cause) !== 'too-large' || !limit.cut()) throw err;
        }
      }
    };
    const r = deps.turns ? await deps.turns.run(sync, answerBy, jsonBytes(containers), nodeName, call.onEnd) : await sync();
    const resp = `node ${nodeName}: ${r.put} put, ${r.deleted} deleted, ${r.unchanged} unchanged`;
    deps.logger.debug('container list applied', {
      nodeName,
      put: r.put,
      deleted: r.deleted,
      unchanged: r.unchanged,
      attempts: r.attempts,
      revision: r.revision,
      identity: call.caller.identity,
    });
    return { ok: true, resp };
  } catch (thrown) {
    // etcd failed after one of the call's transactions was written: said, as for ABORTED.
    const partly = thrown instanceof PartlyWrittenError;
    const err = partly ? thrown.cause : thrown;
    const message = errorMessage(err);
    const written = partly ? 'part of the list was written' : 'nothing was written';
    if (err instanceof WriteTurnsFullError) {
      deps.refusals.warn('container-list-full', 'SendChangedContainerList refused: too many lists waiting', { nodeName, identity: call.caller.identity, waitingBytes: err.waitingBytes });
      return { ok: false, code: status.RESOURCE_EXHAUSTED, message: `node ${nodeName}: ${message} (grpc.limits.containerListBytesWaiting)` };
    }
    if (err instanceof WriteTurnsBusyError) return refusedBusy(deps, call, nodeName, err.busy);
    if (err instanceof WriteTurnCancelledError) {
      // Nobody reads this answer: the client cancelled or gave up (its deadline passed).
      return { ok: false, code: status.CANCELLED, message: `node ${nodeName}: ${message}` };
    }
    if (err instanceof WriteTurnTimeoutError) {
      deps.refusals.warn('container-list-busy', 'SendChangedContainerList waited too long for a turn', { nodeName, identity: call.caller.identity, waitedMs: err.waitedMs });
      return { ok: false, code: status.RESOURCE_EXHAUSTED, message: `node ${nodeName}: ${message} (grpc.limits.containerListsAtOnce)` };
    }
    if (err instanceof WriteBudgetExceededError) {
      const meta = { method: 'SendChangedContainerList', identity: call.caller.identity, nodeName, bytes: err.bytes, ...(partly ? { partlyWritten: true } : {}) };
      deps.refusals.warn('write-budget', 'gRPC call over its write budget', meta);
      return { ok: false, code: status.RESOURCE_EXHAUSTED, message: `node ${nodeName}: ${call.caller.identity}: ${message}${partly ? `; ${written}` : ''}` };
    }
    const kind = err instanceof ContainerSyncConflictError ? 'conflict' : classifyEtcdError(err);
    const meta = { nodeName, identity: call.caller.identity, error: message, ...(partly ? { partlyWritten: true } : {}) };
    // What a caller can cause (an oversize change, a tiny deadline, a race) is warned at a
    // bounded rate, so no caller can fill the error log; only the unexpected is an error.
    if (kind === 'internal' || kind === 'refused') deps.refusals.error('container-list-failed', 'SendChangedContainerList failed', meta);
    else deps.refusals.warn(`container-list-${kind}`, partly ? 'SendChangedContainerList partly applied' : 'SendChangedContainerList not applied', meta);
    if (kind === 'conflict') return { ok: false, code: status.ABORTED, message };
    switch (kind) {
      case 'timeout':
        return { ok: false, code: status.DEADLINE_EXCEEDED, message: `etcd did not answer in time; ${partly ? `${written}; ` : ''}send the list again` };
      case 'unavailable':
        return { ok: false, code: status.UNAVAILABLE, message: `etcd is unavailable; ${partly ? `${written}; ` : ''}send the list again` };
      case 'no-space':
        return { ok: false, code: status.UNAVAILABLE, message: `etcd is out of space (its NOSPACE alarm is raised); ${written}; send the list again later` };
      case 'refused':
        return { ok: false, code: status.UNAVAILABLE, message: `etcd refused statemanager's credentials or permissions; ${written}; send the list again later` };
      case 'too-large':
        return {
          ok: false,
          code: status.RESOURCE_EXHAUSTED,
          message: `node ${nodeName}: the change exceeds etcd's transaction limits (--max-txn-ops, --max-request-bytes; grpc.etcdMaxTxnOps); ${written}`,
        };
      default:
        return { ok: false, code: status.INTERNAL, message: 'internal error' };
    }
  }
}

function refusedBusy(deps: ContainerListDeps, call: ContainerListCall, nodeName: string, busy: Busy): ContainerListOutcome {
  const meta = { nodeName: quote(nodeName), identity: call.caller.identity, waiting: busy.waiting, reason: busy.reason, expectedWaitMs: Math.ceil(busy.expectedWaitMs) };
  deps.refusals.warn('container-list-busy', 'SendChangedContainerList refused: the lists waiting would not be written in time', meta);
  const setting = busy.reason === 'full' ? 'containerListsWaiting' : 'containerListsAtOnce';
  return { ok: false, code: status.RESOURCE_EXHAUSTED, message: `node ${quote(nodeName)}: ${busyMessage(busy)} (grpc.limits.${setting})` };
}

/** What a list holds while it waits for its turn: its containers' JSON (UTF-16 length, close to the bytes for the ASCII-heavy JSON of containers). */
function jsonBytes(containers: readonly { json: string }[]): number {
  let n = 0;
  for (const c of containers) n += c.json.length;
  return n;
}
