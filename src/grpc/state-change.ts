// SendStateChange: validation, then (scenarios only) the domain's scenario changer over the
// stored state read from etcd directly (this may run on a replica that is not the leader);
// this module maps its outcomes and etcd failures to the contract's error codes.
import { randomUUID } from 'node:crypto';
import type { Etcd3, IKeyValue } from 'etcd3';
import type { StateChange__Output } from '../generated/statemanager/StateChange.js';
import type { StateChangeResponse } from '../generated/statemanager/StateChangeResponse.js';
import type { ErrorCode__Output } from '../generated/statemanager/ErrorCode.js';
import type { KeyLayout } from '../../reconcilers/keys.js';
import type { DomainObserver } from '../../reconcilers/observer.js';
import { silentObserver } from '../../reconcilers/observer.js';
import { systemClock, type Clock, type StateStore, type StoredRevision } from '../../reconcilers/ports.js';
import { ScenarioChanger, type ScenarioRefusal } from '../../reconcilers/scenario-changer.js';
import { parseState, type ScenarioState } from '../../reconcilers/states.js';
import type { Logger } from '../../controller/logger.js';
import type { Caller } from '../auth/identity.js';
import type { Authorizer } from '../auth/policy.js';
import { classifyEtcdError, etcdDeadline } from '../etcd/errors.js';
import { validateStateChange, type ValidStateChange } from './validation.js';
import { errorMessage } from '../../controller/errors.js';
import type { ThrottledLog } from '../throttled-log.js';

export interface StateChangeDeps {
  client: Etcd3;
  keys: KeyLayout;
  store: StateStore;
  authorizer: Authorizer;
  logger: Logger;
  requestTimeoutMs: number;
  maxAttempts: number;
  /** Where committed transitions are reported (logged and counted); silent by default. */
  observer?: DomainObserver;
  /** Where denials are logged, at a bounded rate (else every one is logged). */
  refusals?: ThrottledLog;
  clock?: Clock;
  /** Epoch nanoseconds; injectable for tests. */
  nowNs?: () => bigint;
}

export interface StateChangeCall {
  caller: Caller;
  request: StateChange__Output;
  /** The client's deadline (epoch ms), if any. */
  callerDeadline?: number;
}

export async function handleStateChange(deps: StateChangeDeps, call: StateChangeCall): Promise<StateChangeResponse> {
  const nowNs = deps.nowNs ?? systemNowNs;
  const transitionId = call.request.transition_id.length > 0 ? call.request.transition_id : randomUUID();
  const answer = (error_code: ErrorCode__Output, message: string, error_details = ''): StateChangeResponse => ({
    message,
    transition_id: transitionId,
    timestamp_ns: nowNs().toString(),
    error_code,
    error_details,
  });

  const v = validateStateChange(call.request);
  if (!v.ok) return answer('ERROR_CODE_INVALID_REQUEST', 'invalid request', v.message);
  const req = v.value;
  if (req.kind !== 'scenario') {
    return answer(
      'ERROR_CODE_PRECONDITION_FAILED',
      `${req.kind} states are not changed on request`,
      req.kind === 'model'
        ? 'a model state is derived from its containers; nothing was written'
        : 'a package state is derived from its models; nothing was written',
    );
  }

  const changer = new ScenarioChanger({
    reader: { read: (name) => readScenarioState(deps, name, call.callerDeadline) },
    store: deps.store,
    observer: deps.observer ?? silentObserver,
    clock: deps.clock ?? systemClock,
    maxAttempts: deps.maxAttempts,
  });
  const source = req.source ?? call.caller.identity;
  try {
    // validateStateChange read both states as scenario states.
    const outcome = await changer.change(
      { name: req.name, target: req.target as ScenarioState, current: req.current as ScenarioState | undefined, source, identity: call.caller.identity, transitionId },
      (from) => deny(deps, call.caller, req, from),
    );
    if (!outcome.ok) return answer(REFUSAL_CODES[outcome.refusal], outcome.message, outcome.details);
    deps.logger.info('scenario state changed', {
      kind: 'scenario',
      name: req.name,
      from: outcome.from ?? null,
      to: outcome.to,
      reason: 'requested',
      source,
      transitionId,
      identity: call.caller.identity,
      revision: outcome.revision,
    });
    return answer('ERROR_CODE_SUCCESS', `scenario ${req.name}: ${outcome.from ?? 'absent'} -> ${outcome.to}`);
  } catch (err) {
    const failure = classifyEtcdError(err);
    deps.logger.error('SendStateChange failed', {
      name: req.name,
      transitionId,
      identity: call.caller.identity,
      error: errorMessage(err),
    });
    // A write that timed out may still have been applied: the caller has to read to know.
    const unknown = 'the outcome is unknown: read the state before retrying';
    if (failure === 'timeout') return answer('ERROR_CODE_TIMEOUT', 'etcd did not answer in time', unknown);
    if (failure === 'unavailable') return answer('ERROR_CODE_RESOURCE_UNAVAILABLE', 'etcd is unavailable', unknown);
    return answer('ERROR_CODE_INTERNAL_ERROR', 'internal error', unknown);
  }
}

const REFUSAL_CODES: Record<ScenarioRefusal, ErrorCode__Output> = {
  denied: 'ERROR_CODE_PERMISSION_DENIED',
  precondition_failed: 'ERROR_CODE_PRECONDITION_FAILED',
  invalid_transition: 'ERROR_CODE_INVALID_STATE_TRANSITION',
  contended: 'ERROR_CODE_PRECONDITION_FAILED',
};

/** The authorization rules' verdict, as a refusal detail (logged) or undefined when allowed. */
function deny(deps: StateChangeDeps, caller: Caller, req: ValidStateChange, from: ScenarioState | undefined): string | undefined {
  const decision = deps.authorizer.authorize(caller, { method: 'SendStateChange', kind: 'scenario', name: req.name, from, to: req.target });
  if (decision.allowed) return undefined;
  const meta = { method: 'SendStateChange', identity: caller.identity, via: caller.via, kind: 'scenario', name: req.name, from: from ?? null, to: req.target };
  if (deps.refusals) deps.refusals.warn('denied', 'gRPC call denied', meta);
  else deps.logger.warn('gRPC call denied', meta);
  return `${caller.identity} may not move scenario ${req.name} from ${from ?? 'absent'} to ${req.target}`;
}

/** A stored value that is not a scenario state counts as absent. */
async function readScenarioState(deps: StateChangeDeps, name: string, callerDeadline?: number): Promise<{ state: ScenarioState | undefined; revision: StoredRevision | undefined }> {
  const kv = await readKey(deps, deps.keys.stateKey('scenario', name), callerDeadline);
  if (!kv) return { state: undefined, revision: undefined };
  return { state: parseState('scenario', kv.value.toString()), revision: { modRevision: Number(kv.mod_revision), version: Number(kv.version) } };
}

async function readKey(deps: StateChangeDeps, key: string, callerDeadline?: number): Promise<IKeyValue | undefined> {
  const res = await deps.client.kv.range({ key: Buffer.from(key) }, { deadline: etcdDeadline(deps.requestTimeoutMs, callerDeadline) });
  return res.kvs[0];
}

function systemNowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}
