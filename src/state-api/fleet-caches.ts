// The state caches of contract section 5 reads: the fleet's model, package and scenario state
// informers, which every replica keeps whether it leads or not.
import type { Informer } from '../../controller/informer.js';
import type { Fleet, StoredState } from '../../reconcilers/fleet.js';
import type { ResourceKind } from '../../domain/states.js';
import type { StateCaches, StoredStateView } from './reader.js';

export class FleetStateCaches implements StateCaches {
  constructor(private readonly fleet: Fleet) {}

  get(kind: ResourceKind, name: string): StoredStateView | undefined {
    const e = this.informer(kind).cache.get(this.fleet.keys.stateKey(kind, name));
    return e ? { name, state: e.value.state ?? e.value.raw, version: e.version } : undefined;
  }

  *list(kind: ResourceKind): Iterable<StoredStateView> {
    for (const e of this.informer(kind).cache.values()) {
      const name = this.fleet.keys.parseStateKey(kind, e.key);
      if (name !== undefined) yield { name, state: e.value.state ?? e.value.raw, version: e.version };
    }
  }

  revision(kind: ResourceKind): number {
    return this.informer(kind).lastRevision;
  }

  private informer(kind: ResourceKind): Informer<StoredState<string>> {
    const f = this.fleet;
    return (kind === 'model' ? f.modelStates : kind === 'package' ? f.packageStates : f.scenarioStates) as Informer<StoredState<string>>;
  }
}
