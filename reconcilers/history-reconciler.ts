// History left behind by a state key someone else deleted. statemanager deletes a state's
// history with the state when it deletes the state itself; an operator or another program
// deleting `/model|package|scenario/{name}/state` left the entries for good (a scenario's state
// is deleted to free a place under the undefined-scenario limit: found by black-box probing, 9,908
// names of history and 3.6 MB after 23 minutes of scenario churn). A state created again starts at
// version 1 and overwrites only the entries it reaches, so two histories mixed.
//
// Keyed `{kind}/{name}`, queued on a state key's deletion that was not this process's own write.
// The level decides: a state still absent removes every entry, a state created again meanwhile
// removes the entries past its version; a guard that fails (the cache behind etcd) retries.
import { REQUEUE, type Reconciler, type ReconcileResult } from '../controller/controller.js';
import type { Fleet } from './fleet.js';
import type { StateStore } from './ports.js';
import { isResourceKind } from '../domain/states.js';

export interface HistoryReconcilerOptions {
  fleet: Pick<Fleet, 'storedState'>;
  store: Pick<StateStore, 'trimHistory'>;
}

export const historyKey = (kind: string, name: string): string => `${kind}/${name}`;

export class HistoryReconciler implements Reconciler {
  constructor(private readonly o: HistoryReconcilerOptions) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    const name = key.slice(slash + 1);
    if (slash < 0 || !isResourceKind(kind)) return;
    const stored = this.o.fleet.storedState(kind, name);
    const res = await this.o.store.trimHistory(kind, name, stored ? { modRevision: stored.modRevision, version: stored.version } : undefined);
    return res.committed ? undefined : REQUEUE;
  }
}
