// The state caches of contract section 5 reads: the fleet's model, package and scenario states,
// which every replica keeps whether it leads or not, read through the fleet's read model.
import type { Fleet } from '../../reconcilers/fleet.js';
import type { ResourceKind } from '../../domain/states.js';
import type { StateCaches, StoredStateView } from './reader.js';

export class FleetStateCaches implements StateCaches {
  constructor(private readonly fleet: Pick<Fleet, 'storedState' | 'storedStates' | 'stateRevision'>) {}

  get(kind: ResourceKind, name: string): StoredStateView | undefined {
    const e = this.fleet.storedState(kind, name);
    return e ? { name, state: e.value.state ?? e.value.raw, version: e.version } : undefined;
  }

  *list(kind: ResourceKind): Iterable<StoredStateView> {
    for (const [name, e] of this.fleet.storedStates(kind)) yield { name, state: e.value.state ?? e.value.raw, version: e.version };
  }

  revision(kind: ResourceKind): number {
    return this.fleet.stateRevision(kind);
  }
}
