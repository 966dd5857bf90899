// Contract section 5's reads, answered from this replica's informer caches (a follower from its
// own) and, for history, from etcd: the resource's state, its recorded transitions, and the
// resources of a kind by state. Transport-free: the gRPC layer maps the answers to messages.
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { parseState, type ResourceKind } from '../../domain/states.js';

/** A stored state as a cache holds it. */
export interface StoredStateView {
  name: string;
  /** Canonical spelling, or the raw value when it is not a state name. */
  state: string;
  /** The state key's etcd version (one more with every change). */
  version: number;
}

/** What the reader needs of the caches. */
export interface StateCaches {
  get(kind: ResourceKind, name: string): StoredStateView | undefined;
  list(kind: ResourceKind): Iterable<StoredStateView>;
  /** The newest etcd revision the kind's cache has seen. */
  revision(kind: ResourceKind): number;
}

/** A resource's recorded transitions, oldest first, read fresh. */
export interface HistoryStore {
  read(kind: ResourceKind, name: string): Promise<HistoryEntry[]>;
}

export interface ResourceStateView {
  kind: ResourceKind;
  name: string;
  state: string;
  generation: number;
  /** When the current state was entered (epoch ms), when recorded. */
  enteredAt: number | undefined;
  revision: number;
  history: TransitionView[];
}

export interface TransitionView {
  from: string;
  to: string;
  at: number;
  transitionId: string;
  reason: string;
  source: string;
  /** The authenticated identity that asked for it (requested changes), which the caller cannot choose. */
  identity?: string;
  /** How long the resource had been in `from` (0 for the first entry). */
  durationMs: number;
}

export type ReadAnswer<T> = { ok: true; value: T } | { ok: false; message: string };

export interface ListQuery {
  kind: ResourceKind;
  /** Empty: every state. Matched case-insensitively and in Pullpiri's spellings. */
  state: string;
  /** 0: no limit. */
  limit: number;
}

export interface HistoryQuery {
  kind: ResourceKind;
  name: string;
  /** Epoch ms bounds, inclusive; undefined: unbounded. */
  from?: number;
  to?: number;
  /** The newest `limit` entries (0: all), oldest first. */
  limit: number;
}

export class StateReader {
  constructor(
    private readonly caches: StateCaches,
    private readonly history: HistoryStore,
  ) {}

  async get(kind: ResourceKind, name: string): Promise<ReadAnswer<ResourceStateView>> {
    const revision = this.caches.revision(kind);
    const stored = this.caches.get(kind, name);
    if (!stored) return { ok: false, message: `${kind} ${JSON.stringify(name)} not found (no stored state)` };
    const transitions = toTransitions(await this.history.read(kind, name));
    const last = transitions[transitions.length - 1];
    const current = last !== undefined && last.to === stored.state ? last : undefined;
    return {
      ok: true,
      value: { kind, name, state: stored.state, generation: stored.version, enteredAt: current?.at, revision, history: transitions },
    };
  }

  async historyOf(q: HistoryQuery): Promise<ReadAnswer<TransitionView[]>> {
    const entries = await this.history.read(q.kind, q.name);
    if (entries.length === 0 && !this.caches.get(q.kind, q.name)) {
      return { ok: false, message: `${q.kind} ${JSON.stringify(q.name)} not found (no stored state, no history)` };
    }
    let out = toTransitions(entries).filter((t) => (q.from === undefined || t.at >= q.from) && (q.to === undefined || t.at <= q.to));
    if (q.limit > 0 && out.length > q.limit) out = out.slice(out.length - q.limit);
    return { ok: true, value: out };
  }

  list(q: ListQuery): ReadAnswer<{ resources: ResourceStateView[]; total: number; revision: number }> {
    const wanted = q.state.trim();
    const canonical = wanted === '' ? undefined : parseState(q.kind, wanted);
    if (wanted !== '' && canonical === undefined) return { ok: false, message: `state ${JSON.stringify(wanted)} is not a ${q.kind} state` };
    const revision = this.caches.revision(q.kind);
    const matches = [...this.caches.list(q.kind)].filter((s) => canonical === undefined || s.state === canonical);
    matches.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const shown = q.limit > 0 ? matches.slice(0, q.limit) : matches;
    return {
      ok: true,
      value: {
        total: matches.length,
        revision,
        resources: shown.map((s) => ({ kind: q.kind, name: s.name, state: s.state, generation: s.version, enteredAt: undefined, revision, history: [] })),
      },
    };
  }
}

function toTransitions(entries: HistoryEntry[]): TransitionView[] {
  const out: TransitionView[] = [];
  let previousAt: number | undefined;
  for (const e of entries) {
    const at = Date.parse(e.at);
    if (Number.isNaN(at)) continue;
    out.push({
      from: e.from ?? '',
      to: e.to,
      at,
      transitionId: e.transitionId ?? '',
      reason: e.reason,
      source: e.source,
      ...(typeof e.identity === 'string' ? { identity: e.identity } : {}),
      durationMs: previousAt === undefined ? 0 : Math.max(0, at - previousAt),
    });
    previousAt = at;
  }
  return out;
}
