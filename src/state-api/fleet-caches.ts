// The state caches of contract section 5 reads: the fleet's model, package and scenario states,
// which every replica keeps whether it leads or not, read through the fleet's read model.
import type { Fleet, WatchedKind } from '../../reconcilers/fleet.js';
import type { ResourceKind } from '../../domain/states.js';
import type { StateCaches, StoredStateView } from './reader.js';

const INFORMER_OF = { model: 'modelStates', package: 'packageStates', scenario: 'scenarioStates' } as const satisfies Record<ResourceKind, WatchedKind>;

export class FleetStateCaches implements StateCaches {
  /** Per kind: changes of the set of names (added, removed) and of any state, counted from the fleet's change events. */
  private readonly versions: Record<ResourceKind, { names: number; states: number }> = {
    model: { names: 0, states: 0 },
    package: { names: 0, states: 0 },
    scenario: { names: 0, states: 0 },
  };

  constructor(private readonly fleet: Pick<Fleet, 'storedState' | 'storedStates' | 'stateRevision' | 'onChange'>) {
    for (const kind of Object.keys(INFORMER_OF) as ResourceKind[]) {
      const v = this.versions[kind];
      fleet.onChange(INFORMER_OF[kind], (e) => {
        v.states++;
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
    return state !== undefined ? { name, state, version: e!.version } : undefined;
  }

  *list(kind: ResourceKind): Iterable<StoredStateView> {
    for (const [name, e] of this.fleet.storedStates(kind)) {
      const state = e.value.state;
      if (state !== undefined) yield { name, state, version: e.version };
    }
  }

  revision(kind: ResourceKind): number {
    return this.fleet.stateRevision(kind);
  }

  namesVersion(kind: ResourceKind): number {
    return this.versions[kind].names;
  }

  statesVersion(kind: ResourceKind): number {
    return this.versions[kind].states;
  }
}
