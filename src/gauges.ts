// Gauges derived from the informers' caches, computed at scrape time (no hot-path cost), so a
// follower reports what the leader does.
import type { Fleet } from '../reconcilers/fleet.js';
import { MODEL_STATES, PACKAGE_STATES } from '../reconcilers/states.js';
import type { Metrics } from './metrics.js';

export function collectFleetGauges(metrics: Metrics, fleet: Fleet): void {
  const count = (kind: 'model' | 'package', names: readonly string[], values: Iterable<{ value: { state: string | undefined } }>): void => {
    const counts = new Map<string, number>(names.map((n) => [n, 0]));
    for (const e of values) if (e.value.state) counts.set(e.value.state, (counts.get(e.value.state) ?? 0) + 1);
    for (const [state, n] of counts) metrics.resources.set({ kind, state }, n);
  };
  count('model', MODEL_STATES, fleet.modelStates.cache.values());
  count('package', PACKAGE_STATES, fleet.packageStates.cache.values());
  let pending = 0;
  for (const e of fleet.requests.cache.values()) if ((e.value.record?.deliveries ?? 0) === 0) pending++;
  metrics.reconcileRequestsPending.set(pending);
}
