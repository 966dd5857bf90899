// Gauges of the fleet (resources by state, reconcile requests not yet delivered), kept as the
// informers' caches change: every cache change passes through one handler that moves a count
// from the old value's bucket to the new one's. A scrape then reads a few numbers, whatever the
// size of the fleet (it used to walk every model and package: a scrape flood stalled the event
// loop). Every replica keeps them from its own caches, so a follower reports what the leader does.
import type { Fleet, Watched } from '../../reconcilers/fleet.js';
import { MODEL_STATES, PACKAGE_STATES } from '../../domain/states.js';
import type { StoredRequest, StoredState } from '../../domain/decoders.js';

/** A number moved up and down (a HotGauge). */
export interface Count {
  inc(): void;
  dec(): void;
}

/** Where the counts go (Metrics). */
export interface FleetGaugeSink {
  resources(kind: 'model' | 'package', state: string): Count;
  reconcileRequestsPending(): Count;
}

export function maintainFleetGauges(sink: FleetGaugeSink, fleet: Fleet): void {
  // Every state's series exists from the start, at zero.
  for (const s of MODEL_STATES) sink.resources('model', s);
  for (const s of PACKAGE_STATES) sink.resources('package', s);
  // Each state's count looked up once, not asked of the sink (a string and a closure) per change.
  const byState = (kind: 'model' | 'package') => {
    const counts = new Map<string, Count>();
    return (v: StoredState<string>): Count | undefined => {
      if (!v.state) return undefined;
      let c = counts.get(v.state);
      if (c === undefined) counts.set(v.state, (c = sink.resources(kind, v.state)));
      return c;
    };
  };
  track(fleet, 'modelStates', byState('model'));
  track(fleet, 'packageStates', byState('package'));
  const pending = sink.reconcileRequestsPending();
  track(fleet, 'requests', (v: StoredRequest) => ((v.record?.deliveries ?? 0) === 0 ? pending : undefined));
}

/** Keeps `bucket(value)` equal to the number of cached values of `kind` that fall in it. */
function track<K extends 'modelStates' | 'packageStates' | 'requests'>(fleet: Fleet, kind: K, bucket: (value: Watched[K]) => Count | undefined): void {
  fleet.onChange(kind, (e) => {
    if (e.type !== 'added') bucket(e.old.value)?.dec();
    if (e.type !== 'deleted') bucket(e.new.value)?.inc();
  });
}
