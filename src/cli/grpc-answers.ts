// The statemanager API's answers as the commands print them: transitions, details, and the
// caller's identity the server appends to a recorded source.
import type { ResourceKind } from '../../domain/states.js';
import type { ResourceState__Output } from '../generated/statemanager/ResourceState.js';
import type { StateTransitionHistory__Output } from '../generated/statemanager/StateTransitionHistory.js';
import { nsToMs } from '../grpc/resource-types.js';
import type { ResourceDetail, Transition } from './source.js';

/** The server's answer for an unknown resource: `package "nope" not found (...)`. */
export function isNotFound(message: string): boolean {
  return / not found\b/.test(message);
}

export function nsToIso(ns: string): string | null {
  const ms = nsToMs(ns);
  return ms === undefined ? null : new Date(ms).toISOString();
}

export function toTransition(kind: ResourceKind, name: string, h: StateTransitionHistory__Output): Transition {
  return {
    kind,
    name,
    from: h.from_state === '' ? null : h.from_state,
    to: h.to_state,
    at: nsToIso(h.timestamp_ns) ?? '',
    reason: h.reason,
    ...splitSource(h.source),
    ...(h.transition_id !== '' ? { transitionId: h.transition_id } : {}),
  };
}

/**
 * The API has no identity field: the server appends the authenticated identity to the recorded
 * source as ` (identity X)` when it differs. Only the last such group is the server's (a caller
 * chooses its source, and may write anything in it).
 */
export function splitSource(text: string): { source: string; identity?: string } {
  const m = /^(.*?) ?\(identity ([^()]+)\)$/s.exec(text);
  return m ? { source: m[1]!, identity: m[2]! } : { source: text };
}

export function toDetail(kind: ResourceKind, r: ResourceState__Output): ResourceDetail {
  const history = r.history.map((h) => toTransition(kind, r.resource_name, h));
  const revision = Number(r.metadata.revision);
  // The server answers from its caches while etcd is away, saying the history is unavailable.
  const unavailable = /^unavailable: (.*)$/s.exec(r.metadata.history ?? '')?.[1];
  return {
    name: r.resource_name,
    state: r.current_state === '' ? null : r.current_state,
    since: history[history.length - 1]?.at ?? null,
    generation: Number(r.state_generation),
    history,
    ...(Number.isSafeInteger(revision) ? { revision } : {}),
    ...(r.health_status ? { health: { healthy: r.health_status.healthy, message: r.health_status.status_message } } : {}),
    ...(unavailable !== undefined ? { historyUnavailable: unavailable } : {}),
  };
}
