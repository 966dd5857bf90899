// The state caches of contract section 5 reads: the fleet's model, package and scenario states,
// which every replica keeps whether it leads or not, read through the fleet's read model.
import type { Fleet, WatchedKind } from '../../reconcilers/fleet.js';
import type { ResourceKind } from '../../domain/states.js';
import type { StateCaches, StoredStateView } from './reader.js';
import type { PrefixCounts } from '../etcd/prefix-counts.js';

export type CountStates = (kind: ResourceKind, sinceRevision: number) => Promise<PrefixCounts>;

/** A kind's cache found equal to etcd at `storeRevision` while the cache stood at `cacheRevision`. */
interface Verified {
  cacheRevision: number;
  storeRevision: number;
  at: number;
}

/** How often a quiet kind's revision is checked against etcd at most (each check counts its prefix twice). */
export const VERIFY_EVERY_MS = 1000;
/**
 * A kind's checks are spaced at least this many times the last one's duration: each reads every
 * key of the prefix in etcd (measured on etcd 3.4: 82 ms and 95 ms of etcd's CPU at 50,000 model
 * states), so a client reading a quiet fleet every second costs etcd at most 1/CHECK_COST_FACTOR
 * of its time, not 10 % a kind.
 */
export const CHECK_COST_FACTOR = 20;
/** The longest a kind waits for its next check after a slow or failed one (etcd's timeout is 5 s by default). */
export const MAX_CHECK_GAP_MS = 30_000;

const INFORMER_OF = { model: 'modelStates', package: 'packageStates', scenario: 'scenarioStates' } as const satisfies Record<ResourceKind, WatchedKind>;

export class FleetStateCaches implements StateCaches {
  /** Per kind: changes of the set of names (added, removed) and of any state, counted from the fleet's change events. */
  private readonly versions: Record<ResourceKind, { names: number; states: number }> = {
    model: { names: 0, states: 0 },
    package: { names: 0, states: 0 },
    scenario: { names: 0, states: 0 },
  };

  private readonly verified = new Map<ResourceKind, Verified>();
  /** When each kind's cache last changed, in monotonic ms (-Infinity: not since the start). */
  private readonly changedAt: Record<ResourceKind, number> = { model: -Infinity, package: -Infinity, scenario: -Infinity };
  private readonly verifying = new Map<ResourceKind, Promise<void>>();
  /** When each kind's last check started, and when the next may (CHECK_COST_FACTOR times its duration later). */
  private readonly nextCheckAt: Record<ResourceKind, number> = { model: 0, package: 0, scenario: 0 };

  constructor(
    private readonly fleet: Pick<Fleet, 'storedState' | 'storedStates' | 'stateRevision' | 'stateKeyCount' | 'stateAheadRevision' | 'stateReached' | 'onChange'>,
    /** Without it the revision is the cache's own: that of the kind's last change. */
    private readonly count?: CountStates,
    /** Monotonic ms: the checks' intervals (a step of the wall clock must not space them). */
    private readonly now: () => number = () => performance.now(),
  ) {
    for (const kind of Object.keys(INFORMER_OF) as ResourceKind[]) {
      const v = this.versions[kind];
      fleet.onChange(INFORMER_OF[kind], (e) => {
        v.states++;
        this.changedAt[kind] = this.now();
        // A stored value that is not a state reads as absent (contract section 1): a key going
        // from one to the other is a name coming or going for the lists.
        if (e.type !== 'updated' || (e.old.value.state === undefined) !== (e.new.value.state === undefined)) v.names++;
      });
    }
  }

  /** A stored value that is not a state name is absent here, as for every reader (contract section 1). */
  get(kind: ResourceKind, name: string): StoredStateView | undefined {
    const e = this.fleet.storedState(kind, name);
    const state = e?.value.state;
    return state !== undefined ? { name, state, version: e!.version, modRevision: e!.modRevision } : undefined;
  }

  size(kind: ResourceKind): number {
    return this.fleet.stateKeyCount(kind);
  }

  *list(kind: ResourceKind): Iterable<StoredStateView> {
    for (const [name, e] of this.fleet.storedStates(kind)) {
      const state = e.value.state;
      if (state !== undefined) yield { name, state, version: e.version, modRevision: e.modRevision };
    }
  }

  /**
   * The cache's revision, or a later etcd revision the cache was found equal to etcd at (while it
   * has not changed since): for a quiet kind, the revision of its last change is one etcd may have
   * compacted, and a subscriber told it could not resume from it (found by black-box probing).
   */
  revision(kind: ResourceKind): number {
    const own = this.fleet.stateRevision(kind);
    const v = this.verified.get(kind);
    return v !== undefined && v.cacheRevision === own ? Math.max(own, v.storeRevision) : own;
  }

  /**
   * Checks a quiet kind's cache against etcd (not changed for VERIFY_EVERY_MS), at most every
   * VERIFY_EVERY_MS, sharing a check under way: in one read, whether a key under the prefix was
   * modified after the cache's revision, and how many there are. None modified and as many as
   * the cache holds means etcd's keys there are the cache's, unchanged (a key created after it
   * would show as modified; one deleted, with none created, in the count),
   * so the cache is etcd at the read's revision. Anything else, or the cache moving meanwhile,
   * leaves the cache's own revision. Not etcd's progress notifications: etcd 3.4 answers a progress
   * request out of order with the watch's events (etcd-io/etcd#15220), so they may come before
   * changes the cache has still to receive.
   */
  refresh(kind: ResourceKind): Promise<void> {
    // The leader's own writes are in its cache before the watch brings them (assume): a read
    // answered then held changes after its revision (found by black-box probing: 123 leader lists
    // differed from etcd at their own revision, and the events after them carried old states the
    // client had not seen). Wait for the watch to reach them first.
    const ahead = this.fleet.stateAheadRevision(kind);
    const caughtUp = ahead > this.fleet.stateRevision(kind) ? this.fleet.stateReached(kind, ahead) : undefined;
    const checked = this.verify(kind);
    return caughtUp === undefined ? checked : Promise.all([caughtUp, checked]).then(() => undefined);
  }

  private verify(kind: ResourceKind): Promise<void> {
    if (this.count === undefined) return Promise.resolve();
    const under = this.verifying.get(kind);
    if (under !== undefined) return under;
    const now = this.now();
    // A kind that changed within the interval has a recent revision of its own (compactions keep
    // more history than that: the chart keeps 5 minutes); the check is for quiet kinds, and costs
    // etcd a read of every key of the prefix.
    if (now - this.changedAt[kind] < VERIFY_EVERY_MS) return Promise.resolve();
    const cacheRevision = this.fleet.stateRevision(kind);
    const v = this.verified.get(kind);
    if (v !== undefined && v.cacheRevision === cacheRevision && now - v.at < VERIFY_EVERY_MS) return Promise.resolve();
    if (now < this.nextCheckAt[kind]) return Promise.resolve();
    const keys = this.fleet.stateKeyCount(kind);
    const check = this.count(kind, cacheRevision).then(
      (c) => {
        this.spaceChecks(kind, now);
        if (c.unchangedSince && c.total === keys && this.fleet.stateRevision(kind) === cacheRevision && this.fleet.stateKeyCount(kind) === keys) {
          this.verified.set(kind, { cacheRevision, storeRevision: c.revision, at: this.now() });
        }
      },
      () => {
        // etcd cannot say: the cache's own revision (a failed check is spaced as a slow one).
        this.spaceChecks(kind, now);
      },
    );
    const done = check.finally(() => this.verifying.delete(kind));
    this.verifying.set(kind, done);
    return done;
  }

  private spaceChecks(kind: ResourceKind, startedAt: number): void {
    this.nextCheckAt[kind] = startedAt + Math.min(MAX_CHECK_GAP_MS, CHECK_COST_FACTOR * (this.now() - startedAt));
  }

  namesVersion(kind: ResourceKind): number {
    return this.versions[kind].names;
  }

  statesVersion(kind: ResourceKind): number {
    return this.versions[kind].states;
  }
}
