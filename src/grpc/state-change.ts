// SendStateChange: validation, then (scenarios only) a compare-and-swap on the stored state,
// read from etcd directly (this may run on a replica that is not the leader). Checks in the
// order of contract section 3; on a lost race the state is read again and every check runs
// again, so of two identical concurrent requests exactly one succeeds.
import { randomUUID } from 'node:crypto';
import type { Etcd3, IKeyValue } from 'etcd3';
import type { StateChange__Output } from '../generated/statemanager/StateChange.js';
import type { StateChangeResponse } from '../generated/statemanager/StateChangeResponse.js';
import type { ErrorCode__Output } from '../generated/statemanager/ErrorCode.js';
import type { KeyLayout } from '../../reconcilers/keys.js';
import type { HistoryEntry, StateStore } from '../../reconcilers/ports.js';
import { scenarioTransitionAllowed } from '../../reconcilers/rules.js';
import { parseState, type ScenarioState } from '../../reconcilers/states.js';
import type { Logger } from '../../controller/logger.js';
import type { Caller } from '../auth/identity.js';
import type { Authorizer } from '../auth/policy.js';
import { classifyEtcdError, etcdDeadline } from '../etcd/errors.js';
import { validateStateChange, type ValidStateChange } from './validation.js';
import { errorMessage } from '../../controller/errors.js';

export interface StateChangeDeps {
  client: Etcd3;
  keys: KeyLayout;
  store: StateStore;
  authorizer: Authorizer;
  logger: Logger;
  requestTimeoutMs: number;
  maxAttempts: number;
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

  const stateKey = deps.keys.stateKey('scenario', req.name);
  try {
    for (let attempt = 1; attempt <= deps.maxAttempts; attempt++) {
      const kv = await readKey(deps, stateKey, call.callerDeadline);
      // A stored value that is not a scenario state counts as absent.
      const stored = kv ? parseState('scenario', kv.value.toString()) : undefined;
      const refusal = check(deps, call.caller, req, stored);
      if (refusal) return answer(refusal.code, refusal.message, refusal.details);

      const source = req.source ?? call.caller.identity;
      const history: HistoryEntry = {
        kind: 'scenario',
        name: req.name,
        from: stored ?? null,
        to: req.target,
        at: new Date().toISOString(),
        reason: 'requested',
        source,
        transitionId,
        drawn: true,
      };
      const outcome = await deps.store.writeState({
        kind: 'scenario',
        name: req.name,
        to: req.target,
        expected: kv ? { modRevision: Number(kv.mod_revision), version: Number(kv.version) } : undefined,
        history,
      });
      if (outcome.committed) {
        deps.logger.info('scenario state changed', {
          kind: 'scenario',
          name: req.name,
          from: stored ?? null,
          to: req.target,
          reason: 'requested',
          source,
          transitionId,
          identity: call.caller.identity,
          revision: outcome.revision,
        });
        return answer('ERROR_CODE_SUCCESS', `scenario ${req.name}: ${stored ?? 'absent'} -> ${req.target}`);
      }
    }
    return answer(
      'ERROR_CODE_PRECONDITION_FAILED',
      'the stored state kept changing',
      `scenario ${req.name} changed concurrently ${deps.maxAttempts} times; nothing was written`,
    );
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

interface Refusal {
  code: ErrorCode__Output;
  message: string;
  details: string;
}

/** Authorization, then the precondition, then the transition table; undefined when allowed. */
function check(deps: StateChangeDeps, caller: Caller, req: ValidStateChange, stored: ScenarioState | undefined): Refusal | undefined {
  // Authorized against the state the caller says it changes from: if that differs from the
  // stored one the precondition refuses the request anyway.
  const from = req.current ?? stored;
  const decision = deps.authorizer.authorize(caller, { method: 'SendStateChange', kind: 'scenario', name: req.name, from, to: req.target });
  if (!decision.allowed) {
    deps.logger.warn('gRPC call denied', {
      method: 'SendStateChange',
      identity: caller.identity,
      via: caller.via,
      kind: 'scenario',
      name: req.name,
      from: from ?? null,
      to: req.target,
    });
    return {
      code: 'ERROR_CODE_PERMISSION_DENIED',
      message: 'permission denied',
      details: `${caller.identity} may not move scenario ${req.name} from ${from ?? 'absent'} to ${req.target}`,
    };
  }
  if (req.current !== undefined && req.current !== stored) {
    return {
      code: 'ERROR_CODE_PRECONDITION_FAILED',
      message: 'current_state does not match the stored state',
      details: `current_state is ${req.current} but scenario ${req.name} is ${stored ?? 'absent (no stored state)'}`,
    };
  }
  // validateStateChange read the target as a scenario state.
  if (!scenarioTransitionAllowed(stored, req.target as ScenarioState)) {
    return {
      code: 'ERROR_CODE_INVALID_STATE_TRANSITION',
      message: 'invalid state transition',
      details:
        stored === req.target
          ? `scenario ${req.name} is already ${stored}`
          : `scenario ${req.name}: ${stored ?? 'absent'} -> ${req.target} is not a scenario transition`,
    };
  }
  return undefined;
}

async function readKey(deps: StateChangeDeps, key: string, callerDeadline?: number): Promise<IKeyValue | undefined> {
  const res = await deps.client.kv.range({ key: Buffer.from(key) }, { deadline: etcdDeadline(deps.requestTimeoutMs, callerDeadline) });
  return res.kvs[0];
}

function systemNowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}
