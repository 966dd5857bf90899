// TriggerOffloading (contract section 3): the policy manager asks for a model to be moved to
// another node. Authorized (a permission of its own, optionally limited to model names), then
// checked without calling anyone (names, source ≠ target, the package's definition in this
// replica's caches lists the model), then forwarded to the ActionController's OffloadModel.
// Identical requests in flight on this replica share one ActionController call. Every request
// that passes authorization is logged at info with the caller's identity and counted by outcome;
// one that reaches the ActionController stage is recorded in etcd for `describe model`.
import { answerDeadline } from './answer-deadline.js';
import { notSent } from './not-sent.js';
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { OffloadingRequest__Output } from '../generated/statemanager/OffloadingRequest.js';
import type { OffloadingResponse } from '../generated/statemanager/OffloadingResponse.js';
import type { Logger } from '../../controller/logger.js';
import type { Caller } from '../auth/identity.js';
import type { Authorizer } from '../auth/policy.js';
import type { ThrottledLog } from '../../controller/throttled-log.js';
import { ActionControllerCallError, OffloadsInFlightError, type OffloadModelClient } from '../action-controller/client.js';
import type { OffloadingRecords } from '../etcd/offloading-store.js';
import { cutToBytes, RECORD_MESSAGE_BYTES, type ForwardedOutcome, type OffloadingRecord } from '../offloading/record.js';
import type { SingleFlight } from '../offloading/single-flight.js';
import { validateOffloading, type OffloadRequest } from '../offloading/validate.js';
import { LIMITS, quote, textProblem } from './validation.js';
import { UNLIMITED, type WriteBudget } from './write-budget.js';
import { errorMessage } from '../../controller/errors.js';

/** Every outcome a request can have, the label of statemanager_offloading_requests_total. */
export const OFFLOADING_OUTCOMES = ['accepted', 'rejected', 'unavailable', 'timeout', 'lost', 'invalid', 'not_found', 'denied', 'not_ready', 'over_budget'] as const;
export type OffloadingOutcome = (typeof OFFLOADING_OUTCOMES)[number];

/** The package definitions as this replica's caches hold them (the Fleet). */
export interface PackageModels {
  modelsOfPackage(pkg: string): readonly string[] | undefined;
  /** False until the caches have listed etcd once: a missing definition then means nothing. */
  hasSynced(): boolean;
}

/** What one ActionController call gave, shared by every identical request that joined it. */
export interface Forwarded {
  outcome: ForwardedOutcome;
  message: string;
  transitionId: string;
  durationMs: number;
  /** Settles once the record is stored (or failed to be, which is logged). */
  recorded?: Promise<void>;
}

export interface OffloadingDeps {
  authorizer: Authorizer;
  logger: Logger;
  actionController: OffloadModelClient;
  records: OffloadingRecords;
  definitions: PackageModels;
  /** One per server: identical requests in flight share a call. */
  flights: SingleFlight<Forwarded>;
  /** Bytes of `reason` accepted (grpc.limits.offloadingReasonBytes). */
  reasonBytes: number;
  /** Where denials are logged, at a bounded rate (an outsider can cause them). */
  refusals: ThrottledLog;
  /** Counts each request by outcome. */
  counted?: (outcome: OffloadingOutcome) => void;
  now?: () => number;
}

export interface OffloadingCall {
  caller: Caller;
  request: OffloadingRequest__Output;
  /** The client's deadline (epoch ms), if any. */
  callerDeadline?: number;
  /** The caller's budget of bytes into etcd (its record); unlimited when omitted. */
  budget?: WriteBudget;
}

export async function handleOffloading(deps: OffloadingDeps, call: OffloadingCall): Promise<OffloadingResponse> {
  const now = deps.now ?? Date.now;
  const receivedAt = now();
  const { caller, request } = call;
  const refused = (outcome: OffloadingOutcome, message: string): OffloadingResponse => {
    deps.counted?.(outcome);
    return { accepted: false, message, transition_id: `offload-${randomUUID()}` };
  };

  // Authorized first, on the model name as sent (a pattern match; nothing is looked up).
  if (!deps.authorizer.authorize(caller, { method: 'TriggerOffloading', model: request.model_name }).allowed) {
    const meta = { method: 'TriggerOffloading', identity: caller.identity, via: caller.via, model: quote(request.model_name) };
    deps.refusals.warn('denied', 'gRPC call denied', meta);
    return refused('denied', `permission denied: ${caller.identity} may not offload model ${quote(request.model_name)}`);
  }
  // From here on every request is logged with the authenticated identity: at info when it goes
  // to the ActionController; refused, at warn at most 10 a kind per 10 s, like every refusal (one
  // caller refused 23,639 times in 10 s wrote 8.5 MB of log: found by black-box probing).
  const meta = (outcome: OffloadingOutcome, message: string, extra: Record<string, unknown>): Record<string, unknown> => ({
      identity: caller.identity,
      outcome,
      model: quote(request.model_name),
      package: quote(request.package_name),
      scenario: quote(request.scenario_name),
      source: quote(request.source_node),
      target: quote(request.target_node),
      policy: quote(request.policy_name),
      reason: quote(request.reason),
      // Not `message`: the logger would merge it into the line's own message.
      answer: message,
      ...extra,
  });
  const log = (outcome: OffloadingOutcome, message: string, extra: Record<string, unknown> = {}): void => void deps.logger.info('offloading request', meta(outcome, message, extra));
  const refuse = (outcome: OffloadingOutcome, message: string): OffloadingResponse => {
    deps.refusals.warn(`offloading-${outcome}`, 'offloading request', meta(outcome, message, {}));
    return refused(outcome, message);
  };

  const v = validateOffloading(request, deps.reasonBytes);
  if (!v.ok) return refuse('invalid', v.message);
  const req = v.value;
  if (!deps.definitions.hasSynced()) return refuse('not_ready', 'statemanager has not read the package definitions yet (starting up); retry shortly');
  const models = deps.definitions.modelsOfPackage(req.package);
  if (models === undefined) return refuse('not_found', `package_name ${quote(req.package)}: no such package (no valid definition Package/${req.package})`);
  if (!models.includes(req.model)) return refuse('not_found', `model_name ${quote(req.model)}: package ${quote(req.package)} does not list this model`);

  // The record this request may leave is charged to the caller's budget before anything is sent.
  const budget = call.budget ?? UNLIMITED;
  const bytes = recordBytes(req, caller);
  if (!budget.take(bytes)) {
    return refuse('over_budget', `${caller.identity} is over its write budget (grpc.limits.writeBytesPerSecond); nothing was sent; retry in ${Math.ceil(budget.waitMs(bytes) / 1000)} s`);
  }

  const answerBy = answerDeadline(receivedAt, call.callerDeadline);
  const key = JSON.stringify([req.scenario, req.package, req.model, req.source, req.target, req.policy, req.reason]);
  const flight = deps.flights.do(key, (callers) => forward(deps, req, caller, receivedAt, answerBy, callers), answerBy);
  if (flight.shared) budget.refund(bytes); // the first caller's call records it
  const result = await withinDeadline(flight.promise, answerBy, now);
  // The answer waits for the record while the caller's deadline allows, so an answer usually
  // means it is recorded; the ActionController's answer is never held back past the deadline.
  if (result?.recorded) await withinDeadline(result.recorded, answerBy, now);
  const answer = result ?? {
    outcome: 'timeout' as const,
    message: `the ActionController at ${deps.actionController.addr} did not answer within the caller's deadline; the outcome is unknown`,
    transitionId: `offload-${randomUUID()}`,
    durationMs: now() - receivedAt,
  };
  log(answer.outcome, answer.message, { transitionId: answer.transitionId, shared: flight.shared, durationMs: answer.durationMs });
  deps.counted?.(answer.outcome);
  return { accepted: answer.outcome === 'accepted', message: answer.message, transition_id: answer.transitionId };
}

/** One ActionController call, and its record (the answer does not wait for etcd beyond the caller's deadline). */
async function forward(deps: OffloadingDeps, req: OffloadRequest, caller: Caller, receivedAt: number, answerBy: number, callers: () => number): Promise<Forwarded> {
  const now = deps.now ?? Date.now;
  const started = now();
  let result: Omit<Forwarded, 'durationMs'>;
  if (answerBy - started < MIN_CALL_MS) {
    result = { outcome: 'timeout', message: "no time left in the caller's deadline to call the ActionController; nothing was sent", transitionId: mintId(req, started) };
  } else {
    try {
      const res = await deps.actionController.offloadModel(
        {
          scenario_name: req.scenario,
          package_name: req.package,
          model_name: req.model,
          source_node: req.source,
          target_node: req.target,
          policy_name: req.policy,
          reason: req.reason,
        },
        // The configured timeout, not the first caller's deadline: identical requests joining later
        // share this call, and a first caller with 1.5 s cut it for 49 joiners with up to 10 s
        // (black-box probe). A caller whose deadline comes first gets its own timely answer.
        Number.POSITIVE_INFINITY,
      );
      result = {
        outcome: res.success ? 'accepted' : 'rejected',
        message: res.message,
        transitionId: validId(res.transition_id) ? res.transition_id : mintId(req, started),
      };
    } catch (err) {
      result = failure(deps, err, req, started);
    }
  }
  const forwarded: Forwarded = { ...result, durationMs: now() - started };
  const record: OffloadingRecord = {
    at: new Date(receivedAt).toISOString(),
    model: req.model,
    package: req.package,
    scenario: req.scenario,
    source: req.source,
    target: req.target,
    policy: req.policy,
    reason: req.reason,
    identity: caller.identity,
    callers: callers(),
    outcome: forwarded.outcome,
    message: cutToBytes(forwarded.message, RECORD_MESSAGE_BYTES),
    transitionId: forwarded.transitionId,
    durationMs: forwarded.durationMs,
  };
  const recorded = deps.records.add(record).then(
    (stored) => {
      // No package lists the model any more (its state went while the ActionController answered).
      if (!stored) deps.refusals.warn('offloading-not-recorded', 'offloading request not recorded: the model has no state (no package lists it any more, or its first state is not written yet)', { model: req.model, transitionId: record.transitionId, outcome: record.outcome });
    },
    (err: unknown) => {
      deps.refusals.error('offloading-not-recorded', 'offloading request not recorded', { model: req.model, transitionId: record.transitionId, error: errorMessage(err) });
    },
  );
  return { ...forwarded, recorded };
}

function failure(deps: OffloadingDeps, err: unknown, req: OffloadRequest, at: number): Omit<Forwarded, 'durationMs'> {
  const addr = deps.actionController.addr;
  const transitionId = mintId(req, at);
  if (err instanceof OffloadsInFlightError) {
    return { outcome: 'unavailable', message: `statemanager has ${err.inFlight} OffloadModel calls in flight to the ActionController at ${addr} already, the most it keeps; nothing was sent; retry later`, transitionId };
  }
  if (!(err instanceof ActionControllerCallError)) {
    deps.refusals.error('offload-call-failed', 'OffloadModel call failed', { model: req.model, error: errorMessage(err) });
    return { outcome: 'unavailable', message: `the ActionController at ${addr} could not be called: ${errorMessage(err)}`, transitionId };
  }
  if (err.code === grpc.status.DEADLINE_EXCEEDED) {
    return { outcome: 'timeout', message: `the ActionController at ${addr} did not answer in time; the outcome is unknown`, transitionId };
  }
  if (err.code === grpc.status.UNIMPLEMENTED) {
    return { outcome: 'unavailable', message: `the ActionController at ${addr} does not implement OffloadModel; the model was not moved`, transitionId };
  }
  if (err.code === grpc.status.UNAVAILABLE && notSent(err.details)) {
    return { outcome: 'unavailable', message: `the ActionController at ${addr} cannot be reached (${err.details}); the model was not moved`, transitionId };
  }
  if (err.code === grpc.status.UNAVAILABLE) {
    // Sent, and then the connection went (or the ActionController said UNAVAILABLE itself): it
    // may have moved the model. Found by black-box probing: a connection dropped after the call
    // arrived was answered "the model was not moved", and a policy manager may ask again.
    return { outcome: 'lost', message: `the connection to the ActionController at ${addr} was lost during the call (${err.details}); the outcome is unknown`, transitionId };
  }
  return { outcome: 'unavailable', message: `the ActionController at ${addr} failed the call: ${grpc.status[err.code] ?? err.code}: ${err.details}`, transitionId };
}

/** Below this much time left, the ActionController is not called at all. */
const MIN_CALL_MS = 10;


/** The shared result, or undefined when `answerBy` comes first. */
async function withinDeadline<T>(p: Promise<T>, answerBy: number, now: () => number): Promise<T | undefined> {
  if (!Number.isFinite(answerBy)) return p;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, answerBy - now()));
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The ActionController's id is used when it gives one that is fit to show and store. */
function validId(id: string): boolean {
  return id.length > 0 && textProblem(id, { maxBytes: LIMITS.transitionIdBytes, noControl: true, noInvisible: true }) === undefined;
}

/** Pullpiri's StateManager's own form: offload-{model}-{source}-{epoch ms}. */
function mintId(req: OffloadRequest, at: number): string {
  return `offload-${req.model}-${req.source}-${at}`;
}

/** What the record of this request can cost at most (the ActionController's message bounded). */
function recordBytes(req: OffloadRequest, caller: Caller): number {
  const text = [req.scenario, req.package, req.model, req.source, req.target, req.policy, req.reason, caller.identity];
  // Keys of the JSON, the time, the id and numbers: a fixed part.
  return 400 + 2 * Buffer.byteLength(req.model) + text.reduce((n, s) => n + Buffer.byteLength(JSON.stringify(s)), 0) + RECORD_MESSAGE_BYTES + LIMITS.transitionIdBytes;
}
