// SendStateChange: validation, then (scenarios only) authorization on what the request says,
// then the domain's scenario changer over the stored state read from etcd directly (this may
// run on a replica that is not the leader); this module maps its outcomes and etcd failures to
// the contract's error codes. A caller without the read permission is never told the stored
// state: a denial, a failed precondition or an invalid transition say only what it sent.
import { AnswerDeadlineError, answerDeadlineOf, beforeAnswerDeadline, ranOutOfCallerDeadline } from './answer-deadline.js';
import { randomUUID } from 'node:crypto';
import type { Etcd3, IKeyValue } from 'etcd3';
import type { StateChange__Output } from '../generated/statemanager/StateChange.js';
import type { StateChangeResponse } from '../generated/statemanager/StateChangeResponse.js';
import type { ErrorCode__Output } from '../generated/statemanager/ErrorCode.js';
import type { KeyLayout } from '../../domain/keys.js';
import { type DomainObserver, silentObserver, systemClock, type Clock, type StateStore } from '../../reconcilers/ports.js';
import { ScenarioChanger, type ScenarioRefusal, type ScenarioStateRead } from './scenario-changer.js';
import { parseState, type ScenarioState } from '../../domain/states.js';
import type { Logger } from '../../controller/logger.js';
import type { Caller } from '../auth/identity.js';
import { ANY_STATE, type Authorizer } from '../auth/policy.js';
import { classifyEtcdError, etcdDeadline, notApplied } from '../etcd/errors.js';
import { LIMITS, validateStateChange, type ValidStateChange } from './validation.js';
import { errorMessage } from '../../controller/errors.js';
import type { ThrottledLog } from '../../controller/throttled-log.js';
import { UNLIMITED, type WriteBudget } from './write-budget.js';
import type { ScenarioDefinitions } from '../../reconcilers/undefined-scenarios.js';

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
  /** Where denials are logged, at a bounded rate (an outsider can cause them). */
  refusals: ThrottledLog;
  clock?: Clock;
  /**
   * Scenario definitions and the states held without one; with `maxUndefinedScenarioStates`
   * (> 0), a request creating one more such state is refused once that many exist.
   */
  scenarios?: ScenarioDefinitions;
  maxUndefinedScenarioStates?: number;
  /** Epoch nanoseconds; injectable for tests. */
  nowNs?: () => bigint;
}

export interface StateChangeCall {
  caller: Caller;
  request: StateChange__Output;
  /** The client's deadline (epoch ms), if any. */
  callerDeadline?: number;
  /** The caller's budget of bytes into etcd; unlimited when omitted. */
  budget?: WriteBudget;
}

/** The SendStateChange handler over `deps`; its scenario changer is built once, here. */
export function stateChangeHandler(deps: StateChangeDeps): (call: StateChangeCall) => Promise<StateChangeResponse> {
  const changer = new ScenarioChanger({
    reader: { read: (name, callerDeadline) => readScenarioState(deps, name, callerDeadline) },
    store: deps.store,
    observer: deps.observer ?? silentObserver,
    clock: deps.clock ?? systemClock,
    maxAttempts: deps.maxAttempts,
    ...(deps.scenarios && deps.maxUndefinedScenarioStates ? { admitNew: undefinedScenarioLimit(deps.scenarios, deps.maxUndefinedScenarioStates) } : {}),
  });
  return (call) => handleStateChange(deps, changer, call);
}

async function handleStateChange(deps: StateChangeDeps, changer: ScenarioChanger, call: StateChangeCall): Promise<StateChangeResponse> {
  const nowNs = deps.nowNs ?? systemNowNs;
  // An id over its limit is refused below and not echoed (black-box probing: a 100 KB id came
  // back whole in its refusal).
  const asked = call.request.transition_id;
  const transitionId = asked.length === 0 ? randomUUID() : Buffer.byteLength(asked, 'utf8') > LIMITS.transitionIdBytes ? '' : asked;
  const answer = (error_code: ErrorCode__Output, message: string, error_details = ''): StateChangeResponse => ({
    message,
    transition_id: transitionId,
    timestamp_ns: nowNs().toString(),
    error_code,
    error_details,
  });

  // etcd's work for the caller ends before its deadline, so the answer says what happened.
  const answerBy = answerDeadlineOf(Date.now(), call.callerDeadline);
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

  // Authorized before anything is read: on the state the caller claims to change from, or, when
  // it names none, on whether any rule allows this change from some state.
  const claimed = req.current as ScenarioState | undefined;
  const early = deny(deps, call.caller, req, claimed ?? ANY_STATE);
  if (early !== undefined) return answer('ERROR_CODE_PERMISSION_DENIED', 'permission denied', early);
  const reader = deps.authorizer.authorize(call.caller, { method: 'read', call: 'SendStateChange' }).allowed;

  const source = req.source ?? call.caller.identity;
  const budget = call.budget ?? UNLIMITED;
  const bytes = writtenBytes(deps, req, source, call.caller.identity, transitionId);
  if (!budget.take(bytes)) {
    const meta = { method: 'SendStateChange', identity: call.caller.identity, name: req.name, bytes };
    deps.refusals.warn('write-budget', 'gRPC call over its write budget', meta);
    return answer(
      'ERROR_CODE_RESOURCE_UNAVAILABLE',
      'over the write budget',
      `${call.caller.identity} is over its write budget (grpc.limits.writeBytesPerSecond); nothing was written; retry in ${Math.ceil(budget.waitMs(bytes) / 1000)} s`,
    );
  }

  try {
    // validateStateChange read both states as scenario states.
    const outcome = await beforeAnswerDeadline(changer.change(
      {
        name: req.name,
        target: req.target as ScenarioState,
        current: claimed,
        source,
        identity: call.caller.identity,
        transitionId,
        ...(answerBy === undefined ? {} : { callerDeadline: answerBy }),
      },
      // A claimed state was authorized above; otherwise the stored one is checked now.
      (from) => (claimed !== undefined ? undefined : deny(deps, call.caller, req, from, reader)),
    ), answerBy);
    if (!outcome.ok) budget.refund(bytes);
    if (!outcome.ok && outcome.refusal === 'over_limit') {
      deps.refusals.warn('undefined-scenarios', 'scenario state refused: too many without a definition', { method: 'SendStateChange', identity: call.caller.identity, name: req.name, limit: deps.maxUndefinedScenarioStates });
    }
    if (!outcome.ok && !reader) return answer(REFUSAL_CODES[outcome.refusal], outcome.message, withoutStoredState(outcome.refusal, req, outcome.details));
    if (!outcome.ok) return answer(REFUSAL_CODES[outcome.refusal], outcome.message, outcome.details);
    return answer('ERROR_CODE_SUCCESS', `scenario ${req.name}: ${outcome.from ?? 'absent'} -> ${outcome.to}`);
  } catch (err) {
    // Charged for nothing when etcd certainly applied nothing (unreachable, or refusing it whole).
    if (notApplied(err)) budget.refund(bytes);
    const failure = err instanceof AnswerDeadlineError ? 'timeout' : classifyEtcdError(err);
    const fields = { name: req.name, transitionId, identity: call.caller.identity, error: errorMessage(err) };
    // The caller's own deadline ran out (a client that gives 5 ms, or etcd not answering): said
    // to the caller, warned at a bounded rate.
    if (ranOutOfCallerDeadline(err, failure === 'timeout', answerBy, Date.now())) {
      deps.refusals.warn('state-change-caller-deadline', "SendStateChange ran out of the caller's deadline", fields);
    } else deps.refusals.error('state-change-failed', 'SendStateChange failed', fields);
    // A write that timed out may still have been applied: the caller has to read to know.
    const unknown = 'the outcome is unknown: read the state before retrying';
    if (failure === 'timeout') return answer('ERROR_CODE_TIMEOUT', 'etcd did not answer in time', unknown);
    if (failure === 'unavailable') return answer('ERROR_CODE_RESOURCE_UNAVAILABLE', 'etcd is unavailable', unknown);
    // Refused before it was applied: nothing was written, and nothing will be until an operator acts.
    if (failure === 'no-space') return answer('ERROR_CODE_RESOURCE_UNAVAILABLE', 'etcd is out of space (its NOSPACE alarm is raised); nothing was written', 'retry once etcd has been compacted, defragmented and its alarm disarmed');
    if (failure === 'refused') return answer('ERROR_CODE_RESOURCE_UNAVAILABLE', "etcd refused statemanager's credentials or permissions; nothing was written", "retry once statemanager's etcd user, password and role are right");
    return answer('ERROR_CODE_INTERNAL_ERROR', 'internal error', unknown);
  }
}

const REFUSAL_CODES: Record<ScenarioRefusal, ErrorCode__Output> = {
  denied: 'ERROR_CODE_PERMISSION_DENIED',
  precondition_failed: 'ERROR_CODE_PRECONDITION_FAILED',
  invalid_transition: 'ERROR_CODE_INVALID_STATE_TRANSITION',
  contended: 'ERROR_CODE_PRECONDITION_FAILED',
  over_limit: 'ERROR_CODE_RESOURCE_UNAVAILABLE',
};

/** Refuses a new state for a scenario without a definition once `limit` such states are held. */
function undefinedScenarioLimit(scenarios: ScenarioDefinitions, limit: number): (name: string) => string | undefined {
  return (name) => {
    if (scenarios.isScenarioDefined(name)) return undefined;
    const held = scenarios.undefinedScenarioStates();
    if (held < limit) return undefined;
    return `scenario ${name} has no definition (Scenario/${name}) and ${held} scenario states without one are held, the limit (grpc.limits.undefinedScenarioStates); nothing was written; write its definition first`;
  };
}

/**
 * The authorization rules' verdict, as a refusal detail (logged) or undefined when allowed.
 * `from` is ANY_STATE before the stored state is read; a stored state is named in the detail
 * only to a caller that may read it (the log always has it).
 */
function deny(deps: StateChangeDeps, caller: Caller, req: ValidStateChange, from: ScenarioState | undefined | typeof ANY_STATE, reader = false): string | undefined {
  const decision = deps.authorizer.authorize(caller, { method: 'SendStateChange', kind: 'scenario', name: req.name, from, to: req.target });
  if (decision.allowed) return undefined;
  const shown = from === ANY_STATE ? undefined : (from ?? 'absent');
  const meta = { method: 'SendStateChange', identity: caller.identity, via: caller.via, kind: 'scenario', name: req.name, from: from === ANY_STATE ? '(any)' : (from ?? null), to: req.target };
  deps.refusals.warn('denied', 'gRPC call denied', meta);
  if (shown === undefined) return `${caller.identity} may not move scenario ${req.name} to ${req.target}`;
  if (req.current !== undefined || reader) return `${caller.identity} may not move scenario ${req.name} from ${shown} to ${req.target}`;
  return `${caller.identity} may not move scenario ${req.name} from its stored state to ${req.target}`;
}

/** A refusal's detail for a caller without the read permission: what it sent, not what is stored. */
function withoutStoredState(refusal: ScenarioRefusal, req: ValidStateChange, details: string): string {
  switch (refusal) {
    case 'denied':
      return details; // deny() wrote it without the stored state
    case 'precondition_failed':
      return `current_state is ${req.current ?? '(any)'} but scenario ${req.name} is not in it`;
    case 'invalid_transition':
      return `scenario ${req.name}: the stored state -> ${req.target} is not a scenario transition`;
    case 'contended':
      return `scenario ${req.name} changed concurrently; nothing was written`;
    case 'over_limit':
      return details; // names no stored state
  }
}

/** What a committed change stores: the state key and value, a history key and entry. */
function writtenBytes(deps: StateChangeDeps, req: ValidStateChange, source: string, identity: string, transitionId: string): number {
  const stateKey = Buffer.byteLength(deps.keys.stateKey('scenario', req.name));
  const entry = JSON.stringify({ kind: 'scenario', name: req.name, from: 'Satisfied', to: req.target, at: new Date(0).toISOString(), reason: 'requested', source, identity, transitionId, drawn: true });
  return 2 * stateKey + 16 + Buffer.byteLength(req.target) + Buffer.byteLength(entry);
}

/**
 * The stored state and when the scenario's definition was created, in one read (one revision). A
 * stored value that is not a scenario state counts as absent. When the definition was created
 * after the state's last write, whether a definition existed at that write (a second read, at the
 * state's revision; unknown when etcd has compacted it).
 */
async function readScenarioState(deps: StateChangeDeps, name: string, callerDeadline?: number): Promise<ScenarioStateRead> {
  const deadline = etcdDeadline(deps.requestTimeoutMs, callerDeadline);
  const defKey = Buffer.from(deps.keys.scenarioDefKey(name));
  const res = await deps.client.kv.txn(
    {
      compare: [],
      success: [{ request_range: { key: Buffer.from(deps.keys.stateKey('scenario', name)) } }, { request_range: { key: defKey, keys_only: true } }],
      failure: [],
    },
    { deadline },
  );
  const kv: IKeyValue | undefined = res.responses[0]?.response_range?.kvs[0];
  const def: IKeyValue | undefined = res.responses[1]?.response_range?.kvs[0];
  const definedAt = def === undefined ? {} : { definedAt: Number(def.create_revision) };
  if (!kv) return { state: undefined, revision: undefined, ...definedAt };
  const read: ScenarioStateRead = { state: parseState('scenario', kv.value.toString()), revision: { modRevision: Number(kv.mod_revision), version: Number(kv.version) }, ...definedAt };
  if (read.state === undefined || read.definedAt === undefined || read.definedAt <= read.revision!.modRevision) return read;
  try {
    const then = await deps.client.kv.range({ key: defKey, revision: kv.mod_revision, count_only: true }, { deadline });
    return { ...read, definedAtWrite: Number(then.count) > 0 };
  } catch (err) {
    if (/compacted/i.test(errorMessage(err))) return read; // unknown: taken as withdrawn
    throw err;
  }
}

function systemNowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}
