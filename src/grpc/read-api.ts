// Contract section 5 over gRPC, the unary reads: GetResourceState, GetResourceStateHistory and
// ListResourcesByState, answered from the replica's caches (history from etcd); a list answer is
// capped. SubscribeToStateChanges is in subscribe.ts. The skeleton authorizes each as a `read`.
import * as grpc from '@grpc/grpc-js';
import type { ResourceStateRequest__Output } from '../generated/statemanager/ResourceStateRequest.js';
import type { ResourceStateResponse } from '../generated/statemanager/ResourceStateResponse.js';
import type { ResourceState } from '../generated/statemanager/ResourceState.js';
import type { ResourceStateHistoryRequest__Output } from '../generated/statemanager/ResourceStateHistoryRequest.js';
import type { ResourceStateHistoryResponse } from '../generated/statemanager/ResourceStateHistoryResponse.js';
import type { ListResourcesByStateRequest__Output } from '../generated/statemanager/ListResourcesByStateRequest.js';
import type { ListResourcesByStateResponse } from '../generated/statemanager/ListResourcesByStateResponse.js';
import type { StateChangeSubscriptionRequest__Output } from '../generated/statemanager/StateChangeSubscriptionRequest.js';
import type { StateChangeEvent } from '../generated/statemanager/StateChangeEvent.js';
import type { StateTransitionHistory } from '../generated/statemanager/StateTransitionHistory.js';
import type { ResourceKind } from '../../domain/states.js';
import type { Logger } from '../../controller/logger.js';
import { classifyEtcdError } from '../etcd/errors.js';
import { errorMessage } from '../../controller/errors.js';
import type { ThrottledLog } from '../../controller/throttled-log.js';
import type { StateReader, ResourceStateView, TransitionView } from '../state-api/reader.js';
import type { StateFeed } from '../state-api/feed.js';
import { SubscriptionQuota } from '../state-api/subscription-quota.js';
import { LIMITS, textProblem } from './validation.js';
import { RESOURCE_TYPE_OF, kindOfResourceType, msToNs, nsToMs } from './resource-types.js';
import { answer, refuse, type Refusal, type Skeleton } from './handler.js';
import { answerDeadlineOf } from './answer-deadline.js';
import { subscribeSpec, type StreamMetrics } from './subscribe.js';
import type { PreEncoded } from './proto.js';
import { buildListAnswer, SharedAnswers } from './list-answer.js';

import { LIST_BYTES_IN_FLIGHT_DEFAULT, LIST_MAX_BYTES_DEFAULT, LIST_MAX_RESULTS_DEFAULT } from './config.js';
import { BytesInFlight } from './bytes-in-flight.js';

export type { StreamMetrics };

/** Bounds of the read API (grpc.limits in docs/grpc.md). */
export interface ReadLimits {
  /** Subscriptions one identity may hold open (anonymous callers: per peer address). Default 100. */
  subscriptionsPerIdentity: number;
  /** Subscriptions this replica holds open in total. Default 2000. */
  subscriptionsTotal: number;
  /** Resources one ListResourcesByState answer carries at most. Default 100,000. */
  listMaxResults: number;
  /** Encoded bytes one ListResourcesByState answer carries at most (its resources). Default 4 MiB. */
  listMaxBytes: number;
  /** Bytes of long list answers being made and sent at once (src/grpc/bytes-in-flight.ts). Default 32 MiB. */
  listBytesInFlight?: number;
}

/** The defaults of grpc.limits (src/grpc/config.ts says why the lists' are these). */
export const DEFAULT_READ_LIMITS: ReadLimits = { subscriptionsPerIdentity: 100, subscriptionsTotal: 2000, listMaxResults: LIST_MAX_RESULTS_DEFAULT, listMaxBytes: LIST_MAX_BYTES_DEFAULT };

/** Bytes of a varint holding `n`. */
const varintBytes = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 5);
/** A length-delimited field with a one-byte tag (field numbers below 16, as all of these). */
const field = (v: string): number => {
  const n = Buffer.byteLength(v);
  return 1 + varintBytes(n) + n;
};
const nested = (n: number): number => 1 + varintBytes(n) + n;
/** An int64 field at most: its tag and a 10-byte varint. */
const INT64_FIELD = 11;
/** An enum or bool field at most (values below 128). */
const SMALL_FIELD = 2;

/**
 * An upper bound of one resource's encoded size in a ListResourcesByState answer (protobuf, with
 * int64s counted at their longest): within about a fifth of the real size plus a few bytes
 * (test/state-api/subscriptions.test.ts encodes answers with the served proto to check).
 */
export function listedResourceBytes(r: ResourceState): number {
  let n = SMALL_FIELD + field(r.resource_name ?? '') + field(r.current_state ?? '') + (r.desired_state ? field(r.desired_state) : 0) + 2 * INT64_FIELD + SMALL_FIELD;
  for (const [k, v] of Object.entries(r.metadata ?? {})) n += nested(field(k) + field(v));
  for (const h of r.history ?? []) n += nested(field(h.from_state ?? '') + field(h.to_state ?? '') + INT64_FIELD + field(h.reason ?? '') + field(h.source ?? ''));
  const health = r.health_status;
  if (health) n += nested(SMALL_FIELD + field(health.status_message ?? '') + INT64_FIELD);
  return nested(n);
}


export interface ReadApiDeps {
  reader: StateReader;
  feed: StateFeed;
  /**
   * Why the replica's caches cannot answer yet (its informers' first lists not applied), or
   * undefined. Until then the cached reads answer UNAVAILABLE: a replica starting up answered
   * "not found" for existing resources and lists of 5,000 of 50,000 with success (found by
   * black-box probing, 1.6 s on a quiet cluster, 5 s and more under load).
   */
  loading?: () => string | undefined;
  logger: Logger;
  refusals: ThrottledLog;
  metrics?: StreamMetrics;
  limits?: Partial<ReadLimits>;
  now?: () => number;
  /** Encodes a subscription event once for all its subscribers (the server's response encoder). */
  encodeEvent?: (event: StateChangeEvent) => PreEncoded;
  /** Encodes a list answer a slice at a time (the server's response encoder). */
  encodeList?: (response: ListResourcesByStateResponse) => PreEncoded;
  /** The turns of long lists being made and sent (tests look at it); one of limits.listBytesInFlight otherwise. */
  listSends?: BytesInFlight;
  /** The longest a long list's call without a deadline holds its turn before it is cut (tests). Default LIST_HOLD_CAP_MS. */
  listHoldCapMs?: number;
}

const UNHEALTHY = new Set(['Error', 'Dead', 'Degraded']);

/**
 * GetResourceState gives up on the history this long before the caller's deadline, and answers
 * the cached state without it: time for the answer to be encoded and reach the caller.
 */
export const HISTORY_ANSWER_MARGIN_MS = 250;
/** Lists that may be this long or longer take a turn to be made and sent (smaller ones cost little). */
export const LIST_GATED_BYTES = 64 * 1024;
/** Callers whose list answers wait their turn at most; one more is refused. */
export const LIST_SENDS_WAITING = 1000;
/**
 * A list waits for its turn until this long before its caller's deadline: making and sending a
 * 4 MiB answer takes 0.35-1.8 s of one core, and turns granted later were spent on answers that
 * came after the deadline (a probe: 990 of 1,659 calls with 1.5 s deadlines ended so, with no
 * word of why). A caller with less time left is refused at once when the budget is full.
 */
const LIST_SEND_MARGIN_MS = 2000;
/**
 * A long list's call still open this long after its caller's deadline (the client gave up, and
 * does not read: grpc-js holds the status behind the unread answer), or this long after its turn
 * without a deadline, is cut and its turn given back (a probe's client that never read held
 * every turn for 120 s, renewably).
 */
export const LIST_LATE_CUT_MS = 1000;
export const LIST_HOLD_CAP_MS = 60_000;
/** Bytes one listed resource is taken for when deciding whether a list may be long (listedResourceBytes of a typical one). */
const LISTED_BYTES_ESTIMATE = 100;

/** A list refused in the answer itself (success false), as the contract's other refusals. */
const refusedList = (message: string) => answer<ListResourcesByStateResponse>({ success: false, message, resources: [], total_count: 0 });

type Unary<Req, Res> = grpc.handleUnaryCall<Req, Res>;

export interface ReadHandlers {
  GetResourceState: Unary<ResourceStateRequest__Output, ResourceStateResponse>;
  GetResourceStateHistory: Unary<ResourceStateHistoryRequest__Output, ResourceStateHistoryResponse>;
  ListResourcesByState: Unary<ListResourcesByStateRequest__Output, ListResourcesByStateResponse>;
  SubscribeToStateChanges: grpc.handleServerStreamingCall<StateChangeSubscriptionRequest__Output, StateChangeEvent>;
}

/**
 * The read methods as specs for the handler skeleton, which authorizes each as a `read`. An
 * answer with success: false is counted OK; a read that fails is UNAVAILABLE.
 */
export function readHandlers(deps: ReadApiDeps, s: Skeleton): ReadHandlers {
  const now = deps.now ?? Date.now;
  const nowNs = (): string => msToNs(now());
  const limits: ReadLimits = { ...DEFAULT_READ_LIMITS, ...deps.limits };
  const lists = new SharedAnswers<ListResourcesByStateResponse | PreEncoded>();
  const sending = deps.listSends ?? new BytesInFlight({ capacity: limits.listBytesInFlight ?? LIST_BYTES_IN_FLIGHT_DEFAULT, maxWaiting: LIST_SENDS_WAITING });

  /** A list's answer from the caches: walked and built returning to the event loop as it goes (reader.ts, list-answer.ts). */
  const listAnswer = (kind: ResourceKind, r: ListResourcesByStateRequest__Output, limit: number, callerDeadline: number | undefined) => {
    const cap = limits.listMaxResults;
    return deps.reader.list({ kind, state: r.state, limit }, callerDeadline === undefined ? undefined : callerDeadline - HISTORY_ANSWER_MARGIN_MS).then(async (a) => {
      if (!a.ok) return refusedList(a.message);
      const { resources: views, total, revision } = a.value;
      // The same question at the same revision has the same answer: built once for all who ask.
      const key = `${kind}\n${r.state.toLowerCase()}\n${limit}\n${r.limit === 0 || r.limit > cap}\n${revision}\n${total}\n${views.length}`;
      const built = await lists.get(key, () =>
        buildListAnswer(views, { maxBytes: limits.listMaxBytes, toState, bytesOf: listedResourceBytes, ...(deps.encodeList ? { encode: deps.encodeList } : {}) }, (shown) => {
          let message = `revision ${revision}`;
          if (shown < views.length) {
            message += `; capped at ${shown} of ${total} (grpc.limits.listMaxBytes: ${limits.listMaxBytes} bytes in one answer): the first ${shown} by name (no paging: a smaller limit gives fewer of the same; narrow the list by state)`;
          } else if (total > shown && (r.limit === 0 || r.limit > cap)) {
            message += `; capped at ${cap} of ${total} (grpc.limits.listMaxResults): the first ${cap} by name (no paging: a smaller limit gives fewer of the same; narrow the list by state)`;
          }
          return { success: true, message, total_count: total };
        }),
      );
      // A pre-encoded answer is written as is (every response encoder passes one through).
      return answer(built as ListResourcesByStateResponse);
    });
  };

  const kindOrProblem = (type: unknown, name: string | undefined): { kind: ResourceKind } | { problem: string } => {
    const kind = kindOfResourceType(type);
    if (kind === undefined) return { problem: `resource_type ${String(type)} is not SCENARIO, PACKAGE or MODEL` };
    if (name !== undefined) {
      const p = textProblem(name, { required: true, maxBytes: LIMITS.resourceNameBytes, noControl: true, noInvisible: true });
      if (p) return { problem: `resource_name ${p}` };
    }
    return { kind };
  };

  const notYet = (): ReturnType<typeof refuse> | undefined => {
    const why = deps.loading?.();
    return why === undefined ? undefined : refuse(grpc.status.UNAVAILABLE, `this replica is starting: ${why}; retry, or ask another replica`);
  };

  const fail = (method: string, err: unknown): Refusal => {
    deps.refusals.error(`read-failed-${method}`, 'gRPC read failed', { method, error: errorMessage(err) });
    return { code: grpc.status.UNAVAILABLE, details: readFailureDetails(err) };
  };

  const toState = (v: ResourceStateView): ResourceState => ({
    resource_type: RESOURCE_TYPE_OF[v.kind],
    resource_name: v.name,
    current_state: v.state,
    desired_state: '',
    last_transition_time_ns: v.enteredAt === undefined ? '0' : msToNs(v.enteredAt),
    state_generation: String(v.generation),
    asil_level: 'ASIL_LEVEL_UNSPECIFIED',
    // A reader that asked for history and got none can tell why: etcd was away (README, State API).
    metadata: v.historyUnavailable === undefined ? { revision: String(v.revision) } : { revision: String(v.revision), history: `unavailable: ${v.historyUnavailable}` },
    history: v.history.map(toHistory),
    health_status: {
      healthy: !UNHEALTHY.has(v.state),
      status_message: `${v.kind} ${v.name} is ${v.state}`,
      last_health_check_ns: nowNs(),
      checks: [],
    },
  });

  return {
    GetResourceState: s.unary<ResourceStateRequest__Output, ResourceStateResponse>({
      method: 'GetResourceState',
      permission: 'read',
      fail,
      run({ request: r, callerDeadline }) {
        const k = kindOrProblem(r.resource_type, r.resource_name);
        if ('problem' in k) return answer({ success: false, message: k.problem });
        const starting = notYet();
        if (starting) return starting;
        // The history read ends early enough for the cached state to reach the caller in time.
        const historyDeadline = callerDeadline === undefined ? undefined : callerDeadline - HISTORY_ANSWER_MARGIN_MS;
        return deps.reader.get(k.kind, r.resource_name, historyDeadline).then((a) => answer(a.ok ? { success: true, message: '', resource_state: toState(a.value) } : { success: false, message: a.message }));
      },
    }),

    GetResourceStateHistory: s.unary<ResourceStateHistoryRequest__Output, ResourceStateHistoryResponse>({
      method: 'GetResourceStateHistory',
      permission: 'read',
      fail,
      run({ request: r, callerDeadline }) {
        const k = kindOrProblem(r.resource_type, r.resource_name);
        if ('problem' in k) return answer({ success: false, message: k.problem, history: [] });
        if (r.limit < 0) return answer({ success: false, message: `limit ${r.limit} is negative`, history: [] });
        const query = { kind: k.kind, name: r.resource_name, from: nsToMs(r.start_time_ns), to: nsToMs(r.end_time_ns), limit: r.limit };
        // The etcd read ends early enough for its failure to reach the caller in time (found by
        // black-box probing: with etcd just frozen, 12 of 60 calls ended at the caller's deadline).
        return deps.reader.historyOf(query, answerDeadlineOf(Date.now(), callerDeadline)).then((a) => answer(a.ok ? { success: true, message: '', history: a.value.map(toHistory) } : { success: false, message: a.message, history: [] }));
      },
    }),

    ListResourcesByState: s.unary<ListResourcesByStateRequest__Output, ListResourcesByStateResponse>({
      method: 'ListResourcesByState',
      permission: 'read',
      fail,
      run({ request: r, callerDeadline, onEnd, cutAfter }) {
        const k = kindOrProblem(r.resource_type, undefined);
        if ('problem' in k) return refusedList(k.problem);
        if (r.limit < 0) return refusedList(`limit ${r.limit} is negative`);
        if (Object.keys(r.label_selector).length > 0) return refusedList('label_selector is not supported: statemanager keeps no labels');
        const starting = notYet();
        if (starting) return starting;
        const cap = limits.listMaxResults;
        const limit = r.limit === 0 || r.limit > cap ? cap : r.limit;
        // A list that may be long takes its turn before it is made: being made (views), encoded
        // and sent (grpc-js's copy) it holds up to twice its answer's size, and 50 callers listing
        // 50,000 models at once ran the heap out under the chart's 512Mi (black-box probing in a
        // cgroup). Short lists never wait.
        const mayBe = Math.min(limits.listMaxBytes, Math.min(limit, deps.reader.count(k.kind)) * LISTED_BYTES_ESTIMATE);
        const turn = mayBe >= LIST_GATED_BYTES ? sending.acquire(mayBe, callerDeadline === undefined ? undefined : callerDeadline - LIST_SEND_MARGIN_MS) : undefined;
        return (turn ?? Promise.resolve(undefined)).then((t) => {
          if (t === 'busy' || t === 'late') {
            return refuse(
              grpc.status.RESOURCE_EXHAUSTED,
              `${Math.round(sending.inFlight / 1048576)} MB of list answers are being made and sent to other callers (grpc.limits.listBytesInFlight: ${limits.listBytesInFlight ?? LIST_BYTES_IN_FLIGHT_DEFAULT} bytes)${t === 'busy' ? ` and ${sending.waiting} callers wait` : ''}; retry, or narrow the list by state or limit`,
            );
          }
          if (t !== undefined) {
            onEnd(t);
            const cap = deps.listHoldCapMs ?? LIST_HOLD_CAP_MS;
            cutAfter(callerDeadline === undefined ? cap : Math.min(cap, callerDeadline + LIST_LATE_CUT_MS - Date.now()));
          }
          return listAnswer(k.kind, r, limit, callerDeadline);
        });
      },
    }),

    SubscribeToStateChanges: s.serverStream(
      subscribeSpec({
        feed: deps.feed,
        logger: deps.logger,
        quota: new SubscriptionQuota({ perIdentity: limits.subscriptionsPerIdentity, total: limits.subscriptionsTotal }),
        nowNs,
        refusals: deps.refusals,
        ...(deps.metrics ? { metrics: deps.metrics } : {}),
        ...(deps.encodeEvent ? { encode: deps.encodeEvent } : {}),
      }),
    ),
  };
}

/** Without a state reader: every read method answers UNIMPLEMENTED. */
export function unimplementedReads(s: Skeleton): ReadHandlers {
  const no = (method: string) => ({ method, permission: 'per-request', run: () => refuse(grpc.status.UNIMPLEMENTED, `${method} is not served by this server`) }) as const;
  return {
    GetResourceState: s.unary(no('GetResourceState')),
    GetResourceStateHistory: s.unary(no('GetResourceStateHistory')),
    ListResourcesByState: s.unary(no('ListResourcesByState')),
    SubscribeToStateChanges: s.serverStream({ ...no('SubscribeToStateChanges'), run: () => ({ code: grpc.status.UNIMPLEMENTED, details: 'SubscribeToStateChanges is not served by this server' }) }),
  };
}

function toHistory(t: TransitionView): StateTransitionHistory {
  return {
    from_state: t.from,
    to_state: t.to,
    timestamp_ns: msToNs(t.at),
    transition_id: t.transitionId,
    reason: t.reason,
    source: attributedSource(t.source, t.identity),
    duration_ms: String(t.durationMs),
    success: true,
  };
}

/** The recorded source, with the authenticated identity beside it when it says something more. */
export function attributedSource(source: string, identity: string | undefined): string {
  if (identity === undefined || identity === '' || identity === source) return source;
  return source === '' ? `(identity ${identity})` : `${source} (identity ${identity})`;
}

/** What a caller is told when a read's etcd part failed: why, in etcd's terms, without its internals. */
export function readFailureDetails(err: unknown): string {
  if (errorMessage(err) === 'etcd is unreachable') return 'etcd cannot be reached; the state could not be read; try again';
  switch (classifyEtcdError(err)) {
    case 'timeout':
      return 'etcd did not answer in time; the state could not be read; try again';
    case 'unavailable':
      return 'etcd cannot be reached; the state could not be read; try again';
    case 'refused':
      return "etcd refused statemanager's credentials or permissions; the state could not be read";
    default:
      return 'the state could not be read; try again';
  }
}
