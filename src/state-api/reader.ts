// Contract section 5's reads, answered from this replica's informer caches (a follower from its
// own) and, for history, from etcd: the resource's state, its recorded transitions, and the
// resources of a kind by state. Transport-free: the gRPC layer maps the answers to messages.
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { parseState, type ResourceKind } from '../../domain/states.js';
import { SLICE, Slicer, SortedNames, yieldToLoop, type NameList } from './sorted-names.js';

/** A stored state as a cache holds it. */
export interface StoredStateView {
  name: string;
  /** Canonical spelling (a stored value that is not a state name has no view: it reads as absent). */
  state: string;
  /** The state key's etcd version (one more with every change). */
  version: number;
  /** Optional: the revision of the state key's last change (tells a key written again after a deletion, whose versions start again at 1). */
  modRevision?: number;
}

/** What the reader needs of the caches. */
export interface StateCaches {
  get(kind: ResourceKind, name: string): StoredStateView | undefined;
  list(kind: ResourceKind): Iterable<StoredStateView>;
  /** Optional: about how many states of the kind list() gives (an upper bound), at once. */
  size?(kind: ResourceKind): number;
  /** The newest etcd revision the kind's cache has seen. */
  revision(kind: ResourceKind): number;
  /** Optional: brings revision() up to etcd's when the cache is found equal to etcd (a quiet kind). */
  refresh?(kind: ResourceKind): Promise<void>;
  /**
   * A number that grows whenever a name of the kind is added or removed (not when a state
   * changes). Without it the list of names is built again for every list call.
   */
  namesVersion?(kind: ResourceKind): number;
  /**
   * A number that grows with every change of the kind's stored states (added, changed,
   * removed). Without it list answers are neither shared nor kept.
   */
  statesVersion?(kind: ResourceKind): number;
}

/** A resource's recorded transitions, oldest first, read fresh. */
export interface HistoryStore {
  /** `deadline` (epoch ms): the caller's, when sooner than the store's own request timeout. */
  read(kind: ResourceKind, name: string, deadline?: number): Promise<HistoryEntry[]>;
  /** Optional: when each stored state was entered (epoch ms), undefined where not recorded; for lists. */
  enteredAt?(kind: ResourceKind, states: readonly StoredStateView[], deadline?: number): Promise<(number | undefined)[]>;
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
  /**
   * Why `history` (and `enteredAt`) could not be read, when they could not: etcd is away. The
   * state itself comes from this replica's cache, which an outage does not take away.
   */
  historyUnavailable?: string;
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
  /** Per kind, the sorted names the lists walk. */
  private readonly sorted = new Map<ResourceKind, SortedNames>();
  /** Answers identical queries share, by kind, state and limit (insertion order: oldest first). */
  private readonly answers = new Map<string, SharedAnswer>();

  constructor(
    private readonly caches: StateCaches,
    private readonly history: HistoryStore,
  ) {}

  /**
   * The cached state with its history from etcd; `historyDeadline` (epoch ms) bounds the history
   * read, so a caller still gets the cached state in time when etcd does not answer.
   */
  async get(kind: ResourceKind, name: string, historyDeadline?: number): Promise<ReadAnswer<ResourceStateView>> {
    await this.refreshed(kind, historyDeadline);
    const revision = this.caches.revision(kind);
    const stored = this.caches.get(kind, name);
    if (!stored) return { ok: false, message: `${kind} ${JSON.stringify(name)} not found (no stored state, or a stored value that is not a ${kind} state)` };
    let entries: HistoryEntry[];
    try {
      entries = await this.history.read(kind, name, historyDeadline);
    } catch (err) {
      // The state is in the cache; only its history lives in etcd alone.
      const why = err instanceof Error ? err.message : String(err);
      return { ok: true, value: { kind, name, state: stored.state, generation: stored.version, enteredAt: undefined, revision, history: [], historyUnavailable: why } };
    }
    const transitions = toTransitions(entries);
    const last = transitions[transitions.length - 1];
    const current = last !== undefined && last.to === stored.state ? last : undefined;
    return {
      ok: true,
      value: { kind, name, state: stored.state, generation: stored.version, enteredAt: current?.at, revision, history: transitions },
    };
  }

  /** The kind's revision refreshed (StateCaches.refresh), waited for at most REFRESH_WAIT_MS and no later than `deadline` (epoch ms). */
  private refreshed(kind: ResourceKind, deadline: number | undefined): Promise<void> {
    const p = this.caches.refresh?.(kind);
    if (p === undefined) return Promise.resolve();
    return settledBy(p, Math.min(deadline ?? Infinity, Date.now() + REFRESH_WAIT_MS), undefined);
  }

  /** `deadline` (epoch ms): the history read ends by then (it throws), so the caller is answered in time. */
  async historyOf(q: HistoryQuery, deadline?: number): Promise<ReadAnswer<TransitionView[]>> {
    const entries = await this.history.read(q.kind, q.name, deadline);
    if (entries.length === 0 && !this.caches.get(q.kind, q.name)) {
      return { ok: false, message: `${q.kind} ${JSON.stringify(q.name)} not found (no stored state, no history)` };
    }
    let out = toTransitions(entries).filter((t) => (q.from === undefined || t.at >= q.from) && (q.to === undefined || t.at <= q.to));
    if (q.limit > 0 && out.length > q.limit) out = out.slice(out.length - q.limit);
    return { ok: true, value: out };
  }

  /**
   * The kind's stored states in `q.state` (all when empty), by name, the first `q.limit` (0: all);
   * `total` counts every match. Never one long block of the event loop: the sorted names are
   * kept and built again only when a name came or went, and a walk over them returns to the loop
   * every few thousand names. What a caller gets: when no state changed while the answer was
   * made (always for an unfiltered list of at most a few thousand, which is answered in one
   * go) it is exactly the caches at `revision`, as before; otherwise every state in it was read
   * at or after `revision` (a change during the walk may show, or not, and then also arrives on
   * a subscription from `revision`), and `total` counts what the walk saw. Identical queries
   * (kind, state, limit) made while no state changed share one answer.
   */
  /** About how many states of the kind a list walks (at least); Infinity when the caches cannot say. */
  count(kind: ResourceKind): number {
    return this.caches.size?.(kind) ?? Infinity;
  }

  async list(q: ListQuery, deadline?: number): Promise<ReadAnswer<ListAnswer>> {
    const wanted = q.state.trim();
    const canonical = wanted === '' ? undefined : parseState(q.kind, wanted);
    if (wanted !== '' && canonical === undefined) return { ok: false, message: `state ${JSON.stringify(wanted)} is not a ${q.kind} state` };
    await this.refreshed(q.kind, deadline);
    const key = `${q.kind}\n${canonical ?? ''}\n${q.limit}`;
    const statesVersion = this.caches.statesVersion?.(q.kind);
    let entry = this.answers.get(key);
    // An answer still being made is joined even when a state changed since it began: like every
    // answer it is at or after the revision it began at (a walk reads the caches as it goes), and
    // under steady writes every caller made its own (found by black-box probing: 50 callers
    // listing 50,000 models at 3 changes/s took 0.7-1 s of CPU each, and the leader's event loop
    // fell 1.4 s behind).
    if (!entry || statesVersion === undefined || (entry.statesVersion !== statesVersion && entry.settled)) {
      const walked = this.walk(q.kind, canonical, q.limit);
      entry = { statesVersion, walked, promise: walked.then((found) => this.withEnteredAt(q.kind, found)) };
      if (statesVersion !== undefined) this.keep(key, entry);
    }
    // When each state was entered comes from etcd: a caller whose deadline comes first gets the
    // states without it (0), in time (found by black-box probing: reads left unanswered while etcd hung).
    const found = deadline === undefined ? await entry.promise : await settledBy(entry.promise, deadline, await entry.walked);
    // Nothing changed since the answer began: it is the caches as they are now, at today's revision.
    // A long answer's revision is fixed by its first such caller: it stays true (no state of the
    // kind changed since) and every caller of the answer then shares one array of views, where
    // etcd's revision, moving with every other write, gave each its own (a short answer, kept
    // for later callers, shows today's).
    const unchanged = found.statesVersion !== undefined && this.caches.statesVersion?.(q.kind) === found.statesVersion;
    const fixed = found.shown.length > SLICE && entry.views?.found === found ? entry.views.revision : undefined;
    const revision = unchanged ? (fixed ?? this.caches.revision(q.kind)) : found.revision;
    // One array of views for every caller given the same states at the same revision: 50 callers
    // listing 50,000 models each held their own (about 5 MB), and the heap ran out under the
    // chart's 512Mi (found by black-box probing in a cgroup).
    let views = entry.views;
    if (views === undefined || views.found !== found || views.revision !== revision) {
      views = entry.views = {
        found,
        revision,
        resources: found.shown.map((s, i) => ({ kind: q.kind, name: s.name, state: s.state, generation: s.version, enteredAt: found.enteredAt?.[i], revision, history: [] })),
      };
    }
    return { ok: true, value: { total: found.total, revision, resources: views.resources } };
  }

  /** Remember an answer (in flight or done) for identical queries while no state changes; a few only. */
  private keep(key: string, entry: SharedAnswer): void {
    this.answers.delete(key);
    this.answers.set(key, entry);
    if (this.answers.size > KEPT_ANSWERS) this.answers.delete(this.answers.keys().next().value!);
    entry.promise.then(
      (found) => {
        entry.settled = true;
        // A long answer (limit 0 over many) is not worth its memory once given.
        if (found.statesVersion === undefined || found.shown.length > SLICE) this.drop(key, entry);
      },
      () => {
        entry.settled = true;
        this.drop(key, entry);
      },
    );
  }

  private drop(key: string, entry: SharedAnswer): void {
    if (this.answers.get(key) === entry) this.answers.delete(key);
  }

  private namesOf(kind: ResourceKind): SortedNames {
    let names = this.sorted.get(kind);
    if (!names) {
      const caches = this.caches;
      const version = caches.namesVersion?.bind(caches);
      names = new SortedNames(
        function* () {
          for (const s of caches.list(kind)) yield s.name;
        },
        version ? () => version(kind) : undefined,
      );
      this.sorted.set(kind, names);
    }
    return names;
  }

  /** The walk's states with when each was entered; without them (0 in the answer) when etcd cannot say. */
  private async withEnteredAt(kind: ResourceKind, found: Found): Promise<Found> {
    if (!this.history.enteredAt || found.shown.length === 0) return found;
    try {
      return { ...found, enteredAt: await this.history.enteredAt(kind, found.shown) };
    } catch {
      return found;
    }
  }

  private async walk(kind: ResourceKind, canonical: string | undefined, limit: number): Promise<Found> {
    const list: NameList = await this.namesOf(kind).current();
    const names = list.names;
    const revision = this.caches.revision(kind);
    const statesVersion = this.caches.statesVersion?.(kind);
    // Every name in the list has a state and no other name does.
    const complete = list.version !== undefined && list.version === this.caches.namesVersion?.(kind);
    const shown: StoredStateView[] = [];
    if (complete && canonical === undefined && limit > 0 && limit <= SLICE) {
      // In one go: the first `limit` names and the count of all (a name without a state, which
      // the counter rules out, sends it the long way).
      for (let i = 0; i < limit && i < names.length; i++) {
        const s = this.caches.get(kind, names[i]!);
        if (s === undefined) break;
        shown.push(s);
      }
      if (shown.length === Math.min(limit, names.length)) return { total: names.length, shown, revision, statesVersion };
      shown.length = 0;
    }
    const slicer = new Slicer();
    let total = 0;
    for (const name of names) {
      if (slicer.full()) await yieldToLoop();
      const s = this.caches.get(kind, name);
      if (s === undefined || (canonical !== undefined && s.state !== canonical)) continue;
      total++;
      if (limit === 0 || shown.length < limit) shown.push(s);
    }
    // Exact only when the walk began with every name and no state changed during it.
    const exact = complete && statesVersion !== undefined && this.caches.statesVersion?.(kind) === statesVersion;
    return { total, shown, revision, statesVersion: exact ? statesVersion : undefined };
  }
}

/** Identical list queries share answers; this many are kept (each at most SLICE resources). */
const KEPT_ANSWERS = 32;

export interface ListAnswer {
  resources: ResourceStateView[];
  total: number;
  revision: number;
}

/** A walk's result: the shown states, the count of all matches, the revision at the start. */
interface Found {
  total: number;
  shown: StoredStateView[];
  revision: number;
  /** The states version the answer is exact at; undefined: states changed during the walk. */
  statesVersion: number | undefined;
  /** When each shown state was entered (epoch ms), where recorded. */
  enteredAt?: (number | undefined)[];
}

interface SharedAnswer {
  statesVersion: number | undefined;
  /** The states from the caches. */
  walked: Promise<Found>;
  /** The same with when each state was entered (read from etcd). */
  promise: Promise<Found>;
  /** Made: a caller after a change of a state makes another. */
  settled?: boolean;
  /** The last answer's resources, for the callers that get the same states at the same revision. */
  views?: { found: Found; revision: number; resources: ResourceStateView[] };
}

/** The longest a read waits for its kind's check against etcd (an etcd that hangs: the answer comes without it). */
export const REFRESH_WAIT_MS = 250;

/** `p`'s value, or `fallback` at `deadline` (epoch ms) if `p` has not settled by then. */
function settledBy<T>(p: Promise<T>, deadline: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), Math.max(0, deadline - Date.now()))));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
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
