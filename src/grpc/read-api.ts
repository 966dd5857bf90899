// Contract section 5 over gRPC: GetResourceState, GetResourceStateHistory, ListResourcesByState
// and SubscribeToStateChanges. Answers come from the replica's caches (history from etcd) and
// the shared state feed; each call is authorized as a `read`. A subscription is served at the
// client's pace: events are written while the stream takes them and the feed resumes it on
// 'drain'; one that stops reading is cut by the feed (RESOURCE_EXHAUSTED, naming the revision to
// resume from). Subscriptions are bounded per identity and in total; a list answer is capped.
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
import type { Severity } from '../generated/statemanager/Severity.js';
import type { ResourceKind } from '../../domain/states.js';
import type { Logger } from '../../controller/logger.js';
import { errorMessage } from '../../controller/errors.js';
import type { Caller } from '../auth/identity.js';
import type { Authorizer } from '../auth/policy.js';
import type { ThrottledLog } from '../observability/throttled-log.js';
import type { StateReader, ResourceStateView, TransitionView } from '../state-api/reader.js';
import type { StateChangeRecord, StateFeed, Subscription, SubscriptionEnd } from '../state-api/feed.js';
import { LIMITS, quote, textProblem } from './validation.js';
import { splitHostPort } from '../config/address.js';
import { SubscriptionQuota } from '../state-api/subscription-quota.js';
import { RESOURCE_TYPE_OF, kindOfResourceType, msToNs, nsToMs } from './resource-types.js';

export interface StreamMetrics {
  opened(): void;
  closed(): void;
  sent(n: number): void;
  cut(reason: 'slow' | 'compacted' | 'restarted' | 'stopped'): void;
}

/** Bounds of the read API (grpc.limits in docs/grpc.md). */
export interface ReadLimits {
  /** Subscriptions one identity may hold open (anonymous callers: per peer address). Default 100. */
  subscriptionsPerIdentity: number;
  /** Subscriptions this replica holds open in total. Default 2000. */
  subscriptionsTotal: number;
  /** Resources one ListResourcesByState answer carries at most. Default 1000. */
  listMaxResults: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = { subscriptionsPerIdentity: 100, subscriptionsTotal: 2000, listMaxResults: 1000 };

export interface ReadApiDeps {
  reader: StateReader;
  feed: StateFeed;
  authorizer: Authorizer;
  logger: Logger;
  refusals?: ThrottledLog;
  metrics?: StreamMetrics;
  limits?: Partial<ReadLimits>;
  now?: () => number;
}

const TYPE_OF = RESOURCE_TYPE_OF;
const UNHEALTHY = new Set(['Error', 'Dead', 'Degraded']);
const FILTER_KEYS = new Set(['name', 'since_revision']);

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

export interface ReadHandlers {
  GetResourceState: Unary<ResourceStateRequest__Output, ResourceStateResponse>;
  GetResourceStateHistory: Unary<ResourceStateHistoryRequest__Output, ResourceStateHistoryResponse>;
  ListResourcesByState: Unary<ListResourcesByStateRequest__Output, ListResourcesByStateResponse>;
  SubscribeToStateChanges: (call: grpc.ServerWritableStream<StateChangeSubscriptionRequest__Output, StateChangeEvent>) => void;
}

/**
 * `authenticate` answers the caller the gate let through, or a refusal; `record` counts answers
 * by method and status (or "OK" / "NOT_FOUND_OR_INVALID" for answers with success: false).
 */
export function readHandlers(
  deps: ReadApiDeps,
  authenticate: (method: string, call: { metadata: grpc.Metadata }) => Caller | Partial<grpc.StatusObject>,
  record: (method: string, code: string) => void,
): ReadHandlers {
  const now = deps.now ?? Date.now;
  const nowNs = (): string => msToNs(now());
  const limits: ReadLimits = { ...DEFAULT_READ_LIMITS, ...deps.limits };
  const quota = new SubscriptionQuota({ perIdentity: limits.subscriptionsPerIdentity, total: limits.subscriptionsTotal });

  /** The caller, if it may read; else the refusal to answer with. */
  const admit = (method: string, call: { metadata: grpc.Metadata }): Caller | Partial<grpc.StatusObject> => {
    const caller = authenticate(method, call);
    if (!('identity' in caller)) return caller;
    if (deps.authorizer.authorize(caller, { method: 'read', call: method }).allowed) return caller;
    const meta = { method, identity: caller.identity, via: caller.via };
    if (deps.refusals) deps.refusals.warn('denied', 'gRPC call denied', meta);
    else deps.logger.warn('gRPC call denied', meta);
    record(method, 'PERMISSION_DENIED');
    return { code: grpc.status.PERMISSION_DENIED, details: `${caller.identity} may not read states` };
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

  const failed = (method: string, err: unknown): Partial<grpc.StatusObject> => {
    deps.logger.error('gRPC read failed', { method, error: errorMessage(err) });
    record(method, 'UNAVAILABLE');
    return { code: grpc.status.UNAVAILABLE, details: 'the state could not be read; try again' };
  };

  const toHistory = (t: TransitionView): StateTransitionHistory => ({
    from_state: t.from,
    to_state: t.to,
    timestamp_ns: msToNs(t.at),
    transition_id: t.transitionId,
    reason: t.reason,
    source: attributedSource(t.source, t.identity),
    duration_ms: String(t.durationMs),
    success: true,
  });

  const toState = (v: ResourceStateView): ResourceState => ({
    resource_type: TYPE_OF[v.kind],
    resource_name: v.name,
    current_state: v.state,
    desired_state: '',
    last_transition_time_ns: v.enteredAt === undefined ? '0' : msToNs(v.enteredAt),
    state_generation: String(v.generation),
    asil_level: 'ASIL_LEVEL_UNSPECIFIED',
    metadata: { revision: String(v.revision) },
    history: v.history.map(toHistory),
    health_status: {
      healthy: !UNHEALTHY.has(v.state),
      status_message: `${v.kind} ${v.name} is ${v.state}`,
      last_health_check_ns: nowNs(),
      checks: [],
    },
  });

  return {
    GetResourceState(call, callback) {
      const method = 'GetResourceState';
      const caller = admit(method, call);
      if (!('identity' in caller)) return callback(caller);
      const k = kindOrProblem(call.request.resource_type, call.request.resource_name);
      if ('problem' in k) {
        record(method, 'OK');
        return callback(null, { success: false, message: k.problem });
      }
      deps.reader.get(k.kind, call.request.resource_name).then(
        (a) => {
          record(method, 'OK');
          callback(null, a.ok ? { success: true, message: '', resource_state: toState(a.value) } : { success: false, message: a.message });
        },
        (err: unknown) => callback(failed(method, err)),
      );
    },

    GetResourceStateHistory(call, callback) {
      const method = 'GetResourceStateHistory';
      const caller = admit(method, call);
      if (!('identity' in caller)) return callback(caller);
      const r = call.request;
      const k = kindOrProblem(r.resource_type, r.resource_name);
      const problem = 'problem' in k ? k.problem : r.limit < 0 ? `limit ${r.limit} is negative` : undefined;
      if (problem !== undefined || 'problem' in k) {
        record(method, 'OK');
        return callback(null, { success: false, message: problem ?? '', history: [] });
      }
      deps.reader.historyOf({ kind: k.kind, name: r.resource_name, from: nsToMs(r.start_time_ns), to: nsToMs(r.end_time_ns), limit: r.limit }).then(
        (a) => {
          record(method, 'OK');
          callback(null, a.ok ? { success: true, message: '', history: a.value.map(toHistory) } : { success: false, message: a.message, history: [] });
        },
        (err: unknown) => callback(failed(method, err)),
      );
    },

    ListResourcesByState(call, callback) {
      const method = 'ListResourcesByState';
      const caller = admit(method, call);
      if (!('identity' in caller)) return callback(caller);
      const r = call.request;
      record(method, 'OK');
      const k = kindOrProblem(r.resource_type, undefined);
      if ('problem' in k) return callback(null, { success: false, message: k.problem, resources: [], total_count: 0 });
      if (r.limit < 0) return callback(null, { success: false, message: `limit ${r.limit} is negative`, resources: [], total_count: 0 });
      if (Object.keys(r.label_selector).length > 0) {
        return callback(null, { success: false, message: 'label_selector is not supported: statemanager keeps no labels', resources: [], total_count: 0 });
      }
      const cap = limits.listMaxResults;
      const a = deps.reader.list({ kind: k.kind, state: r.state, limit: r.limit === 0 || r.limit > cap ? cap : r.limit });
      if (!a.ok) return callback(null, { success: false, message: a.message, resources: [], total_count: 0 });
      const capped = a.value.total > a.value.resources.length && (r.limit === 0 || r.limit > cap);
      callback(null, {
        success: true,
        message: capped
          ? `revision ${a.value.revision}; capped at ${cap} of ${a.value.total} (grpc.limits.listMaxResults): the first ${cap} by name; narrow the list by state`
          : `revision ${a.value.revision}`,
        resources: a.value.resources.map(toState),
        total_count: a.value.total,
      });
    },

    SubscribeToStateChanges(call) {
      const method = 'SubscribeToStateChanges';
      const refuse = (s: Partial<grpc.StatusObject>): void => {
        call.emit('error', s);
      };
      const caller = admit(method, call);
      if (!('identity' in caller)) return refuse(caller);
      const parsed = parseSubscription(call.request);
      if ('problem' in parsed) {
        record(method, 'INVALID_ARGUMENT');
        return refuse({ code: grpc.status.INVALID_ARGUMENT, details: parsed.problem });
      }
      const who = caller.via === 'anonymous' ? `anonymous@${peerHost(call.getPeer())}` : caller.identity;
      const slot = quota.take(who);
      if (!slot.ok) {
        const meta = { identity: caller.identity, peer: call.getPeer() };
        if (deps.refusals) deps.refusals.warn('subscriptions', 'subscription refused: over its limit', meta);
        else deps.logger.warn('subscription refused: over its limit', meta);
        record(method, 'RESOURCE_EXHAUSTED');
        return refuse({ code: grpc.status.RESOURCE_EXHAUSTED, details: slot.problem });
      }
      // The feed never calls back from inside subscribe(), but the stream may end before it answered.
      const held: { sub?: Subscription } = {};
      let over = false;
      deps.metrics?.opened();
      const close = (): boolean => {
        if (over) return false;
        over = true;
        held.sub?.close();
        slot.release();
        deps.metrics?.closed();
        return true;
      };
      const finish = (code: grpc.status, details: string, reason?: 'slow' | 'compacted' | 'restarted' | 'stopped'): void => {
        if (!close()) return;
        if (reason) deps.metrics?.cut(reason);
        record(method, grpc.status[code]);
        if (code === grpc.status.OK) {
          call.end();
          return;
        }
        call.emit('error', { code, details });
        // A client that reads nothing never receives the status: free the stream anyway.
        if (code === grpc.status.RESOURCE_EXHAUSTED) setTimeout(() => call.destroy(), 5000).unref();
      };
      const sub = (held.sub = deps.feed.subscribe(parsed.filter, {
        // Written while the stream takes it; false pauses the subscription until 'drain'.
        send: (r) => {
          if (over) return false;
          const more = call.write(toEvent(r, nowNs()));
          deps.metrics?.sent(1);
          return more;
        },
        end: (reason) => {
          if (reason.kind === 'slow') deps.logger.warn('state subscriber cut off: it does not read', { identity: caller.identity, peer: call.getPeer(), behind: reason.behind, resumeRevision: reason.resumeRevision });
          const [code, details, why] = endStatus(reason);
          finish(code, details, why);
        },
      }));
      if (over) sub.close();
      call.on('drain', () => sub.resume());
      call.on('cancelled', () => {
        if (close()) record(method, 'CANCELLED');
      });
    },
  };
}

/** The recorded source, with the authenticated identity beside it when it says something more. */
export function attributedSource(source: string, identity: string | undefined): string {
  if (identity === undefined || identity === '' || identity === source) return source;
  return source === '' ? `(identity ${identity})` : `${source} (identity ${identity})`;
}

/** The host of a grpc-js peer string ("127.0.0.1:5000", "[::1]:5000", "ipv4:…"). */
function peerHost(peer: string): string {
  return splitHostPort(peer.replace(/^ipv[46]:/, '')).host;
}

function endStatus(reason: SubscriptionEnd): [grpc.status, string, 'slow' | 'compacted' | 'restarted' | 'stopped'] {
  switch (reason.kind) {
    case 'slow':
      return [grpc.status.RESOURCE_EXHAUSTED, `the subscriber stopped reading while ${reason.behind} changes arrived; subscribe again with filter since_revision=${reason.resumeRevision} (every change up to it was sent)`, 'slow'];
    case 'compacted':
      return [grpc.status.OUT_OF_RANGE, `revision compacted (etcd keeps changes from ${reason.compactRevision}): list the states again, then subscribe from the revision of that answer`, 'compacted'];
    case 'restarted':
      return [grpc.status.UNAVAILABLE, `${reason.detail}; subscribe again with since_revision set to the last revision received`, 'restarted'];
    case 'stopped':
      return [grpc.status.UNAVAILABLE, 'statemanager is shutting down; subscribe again (to any replica) with since_revision', 'stopped'];
  }
}

const SEVERITY: Record<string, Severity> = { Error: 'SEVERITY_ERROR', Dead: 'SEVERITY_ERROR', Degraded: 'SEVERITY_WARNING' };

function toEvent(r: StateChangeRecord, nowNs: string): StateChangeEvent {
  return {
    event_type: 'EVENT_TYPE_STATE_CHANGE',
    state_change: {
      resource_type: TYPE_OF[r.kind],
      resource_name: r.name,
      current_state: r.from,
      target_state: r.to,
      transition_id: '',
      timestamp_ns: msToNs(r.seenAt),
      source: 'statemanager',
    },
    event_timestamp_ns: nowNs,
    event_id: `${r.revision}-${r.index}`,
    severity: SEVERITY[r.to] ?? 'SEVERITY_INFO',
    description: `${r.kind} ${r.name}: ${r.from || '(none)'} -> ${r.to || '(deleted)'}`,
    metadata: { revision: String(r.revision), kind: r.kind },
  };
}

/** The request as a feed filter, or what is wrong with it. */
export function parseSubscription(req: StateChangeSubscriptionRequest__Output): { filter: { kind?: ResourceKind; name?: string; sinceRevision?: number } } | { problem: string } {
  const type: unknown = req.resource_type;
  let kind: ResourceKind | undefined;
  if (type !== 'RESOURCE_TYPE_UNSPECIFIED') {
    kind = kindOfResourceType(type);
    if (kind === undefined) return { problem: `resource_type ${String(type)} is not SCENARIO, PACKAGE, MODEL or UNSPECIFIED (every type)` };
  }
  const unknown = Object.keys(req.filter).filter((k) => !FILTER_KEYS.has(k));
  if (unknown.length > 0) return { problem: `filter ${unknown.map(quote).join(', ')} not understood (known: name, since_revision)` };
  const filter: { kind?: ResourceKind; name?: string; sinceRevision?: number } = {};
  if (kind) filter.kind = kind;
  const name = req.filter.name;
  if (name !== undefined) {
    const p = textProblem(name, { required: true, maxBytes: LIMITS.resourceNameBytes, noControl: true, noInvisible: true });
    if (p) return { problem: `filter["name"] ${p}` };
    filter.name = name;
  }
  const since = req.filter.since_revision;
  if (since !== undefined) {
    if (!/^\d{1,15}$/.test(since)) return { problem: `filter["since_revision"] ${quote(since)} is not a revision (a non-negative integer)` };
    filter.sinceRevision = Number(since);
  }
  return { filter };
}
