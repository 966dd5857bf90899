// SubscribeToStateChanges (contract section 5) as a stream spec for the handler skeleton. A
// subscription is served at the client's pace: events are written while the stream takes them
// and the feed resumes it on 'drain'; one that stops reading is cut by the feed
// (RESOURCE_EXHAUSTED, naming the revision to resume from). Subscriptions are bounded per
// identity and in total.
import * as grpc from '@grpc/grpc-js';
import type { StateChangeSubscriptionRequest__Output } from '../generated/statemanager/StateChangeSubscriptionRequest.js';
import type { StateChangeEvent } from '../generated/statemanager/StateChangeEvent.js';
import type { Severity } from '../generated/statemanager/Severity.js';
import type { ResourceKind } from '../../domain/states.js';
import type { Logger } from '../../controller/logger.js';
import type { ThrottledLog } from '../../controller/throttled-log.js';
import type { StateChangeRecord, StateFeed, Subscription, SubscriptionEnd } from '../state-api/feed.js';
import type { SubscriptionQuota } from '../state-api/subscription-quota.js';
import { LIMITS, quote, textProblem } from './validation.js';
import { RESOURCE_TYPE_OF, kindOfResourceType, msToNs } from './resource-types.js';
import type { StreamSpec } from './handler.js';
import type { PreEncoded } from './proto.js';

export interface StreamMetrics {
  opened(): void;
  closed(): void;
  sent(n: number): void;
  cut(reason: CutReason): void;
}

type CutReason = 'slow' | 'compacted' | 'future' | 'restarted' | 'stopped';

export interface SubscribeDeps {
  feed: StateFeed;
  logger: Logger;
  /** One per server: open subscriptions per identity and in total. */
  quota: SubscriptionQuota;
  nowNs: () => string;
  /** Where refusals are logged, at a bounded rate (an outsider can cause them). */
  refusals: ThrottledLog;
  metrics?: StreamMetrics;
  /**
   * Encodes an event once for every subscriber it goes to (the server's response encoder); without
   * it each write is encoded by grpc-js on its own. Encoding was half of a subscriber's CPU per event.
   */
  encode?: (event: StateChangeEvent) => PreEncoded;
}

const FILTER_KEYS = new Set(['name', 'since_revision']);

export function subscribeSpec(deps: SubscribeDeps): StreamSpec<StateChangeSubscriptionRequest__Output, StateChangeEvent | PreEncoded> {
  const event = eventWriter(deps);
  return {
    method: 'SubscribeToStateChanges',
    permission: 'read',
    run({ caller, request, peer, budgetKey }, stream) {
      const parsed = parseSubscription(request);
      if ('problem' in parsed) return { code: grpc.status.INVALID_ARGUMENT, details: parsed.problem };
      // The caller's budgets: its identity, or for anonymous callers what the call gate keys them by.
      const slot = deps.quota.take(budgetKey);
      if (!slot.ok) {
        const meta = { identity: caller.identity, peer };
        deps.refusals.warn('subscriptions', 'subscription refused: over its limit', meta);
        return { code: grpc.status.RESOURCE_EXHAUSTED, details: slot.problem };
      }
      // The feed never calls back from inside subscribe(), but the stream may end before it answered.
      const held: { sub?: Subscription } = {};
      deps.metrics?.opened();
      stream.onClose(() => {
        held.sub?.close();
        slot.release();
        deps.metrics?.closed();
      });
      const sub = (held.sub = deps.feed.subscribe(parsed.filter, {
        // Written while the stream takes it; false pauses the subscription until 'drain'.
        send: (r) => {
          if (stream.over) return false;
          const more = stream.write(event(r));
          deps.metrics?.sent(1);
          return more;
        },
        end: (reason) => {
          // At the refusal log's bounded rate: a thousand stalled clients are not a thousand lines.
          if (reason.kind === 'slow') deps.refusals.warn('subscriber-cut', 'state subscriber cut off: it does not keep up', { identity: caller.identity, peer, behind: reason.behind, resumeRevision: reason.resumeRevision });
          const [code, details, why] = endStatus(reason);
          if (!stream.over) deps.metrics?.cut(why);
          stream.end(code, details);
        },
      }));
      if (stream.over) sub.close();
      stream.onDrain(() => sub.resume());
      return undefined;
    },
  };
}

function endStatus(reason: SubscriptionEnd): [grpc.status, string, CutReason] {
  switch (reason.kind) {
    case 'slow':
      return [grpc.status.RESOURCE_EXHAUSTED, `the subscriber did not keep up (${reason.behind} changes arrived that it had not read); subscribe again with filter since_revision set to the resume_since_revision of the last event read, which is since_revision=${reason.resumeRevision} when every message before this status was read (every change up to it was sent; grpc-js drops the messages not yet read when this status comes)`, 'slow'];
    case 'compacted':
      return [grpc.status.OUT_OF_RANGE, `revision compacted (${reason.compactRevision !== undefined ? `etcd keeps changes from ${reason.compactRevision}` : 'etcd no longer keeps the changes after it'}): list the states again, then subscribe from the revision of that answer`, 'compacted'];
    case 'future':
      return [grpc.status.OUT_OF_RANGE, `since_revision ${reason.sinceRevision} is past etcd's revision ${reason.etcdRevision} (a revision from another etcd history, e.g. before a restore from backup): list the states again, then subscribe from the revision of that answer`, 'future'];
    case 'restarted':
      return [grpc.status.UNAVAILABLE, `${reason.detail}; subscribe again with filter since_revision set to the resume_since_revision of the last event received`, 'restarted'];
    case 'stopped':
      return [grpc.status.UNAVAILABLE, 'statemanager is shutting down; subscribe again (to any replica) with filter since_revision set to the resume_since_revision of the last event received', 'stopped'];
  }
}

/**
 * A change as its event: with an encoder, encoded at its first send and the same bytes written to
 * every other subscriber (its event_timestamp_ns is that first send's time). The bytes live as
 * long as the record (a WeakMap): in the feed's resume buffer, 10,000 changes, about 2 MB more,
 * each event in memory of its own (preEncoder: a slice of Node's buffer pool kept its 64 KiB).
 */
function eventWriter(deps: SubscribeDeps): (r: StateChangeRecord) => StateChangeEvent | PreEncoded {
  const encode = deps.encode;
  if (!encode) return (r) => toEvent(r, deps.nowNs());
  const encoded = new WeakMap<StateChangeRecord, PreEncoded>();
  return (r) => {
    let bytes = encoded.get(r);
    if (bytes === undefined) encoded.set(r, (bytes = encode(toEvent(r, deps.nowNs()))));
    return bytes;
  };
}

const SEVERITY: Record<string, Severity> = { Error: 'SEVERITY_ERROR', Dead: 'SEVERITY_ERROR', Degraded: 'SEVERITY_WARNING' };

function toEvent(r: StateChangeRecord, nowNs: string): StateChangeEvent {
  return {
    event_type: 'EVENT_TYPE_STATE_CHANGE',
    state_change: {
      resource_type: RESOURCE_TYPE_OF[r.kind],
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
    // resume_since_revision: what to resume from should the stream break after this event — the
    // revision before it while its revision has more changes (found by black-box probing: clients
    // resuming from the last revision they got after a replica was killed mid-transaction missed
    // 3–46 changes each).
    metadata: { revision: String(r.revision), kind: r.kind, resume_since_revision: String(r.endsRevision ? r.revision : r.revision - 1) },
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
  // An empty value is no filter: a map value cannot be left unset in proto3, and a client built
  // from the draft may send every key it knows (black-box probing: refused INVALID_ARGUMENT).
  // No name or revision is empty, so nothing is lost by it.
  const name = req.filter.name;
  if (name !== undefined && name !== '') {
    const p = textProblem(name, { required: true, maxBytes: LIMITS.resourceNameBytes, noControl: true, noInvisible: true });
    if (p) return { problem: `filter["name"] ${p}` };
    filter.name = name;
  }
  const since = req.filter.since_revision;
  if (since !== undefined && since !== '') {
    if (!/^\d{1,15}$/.test(since)) return { problem: `filter["since_revision"] ${quote(since)} is not a revision (a non-negative integer)` };
    filter.sinceRevision = Number(since);
  }
  return { filter };
}
