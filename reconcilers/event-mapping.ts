// Which keys a change affects. Handlers only enqueue names; the reconcilers read the level.
import type { InformerEvent, InformerHandler } from '../controller/informer.js';
import type { ContainerEntry, Fleet, NodeKey, StoredState, Watched, WatchedKind } from './fleet.js';
import type { LagTracker } from './lag-tracker.js';

import type { Priority } from '../controller/workqueue.js';
import type { ResourceKind } from '../domain/states.js';

export type { Priority };

export interface Enqueue {
  model(name: string, priority?: Priority): void;
  /** Queue the model once `delayMs` have passed (the work queue's delayed add). */
  modelAfter(name: string, delayMs: number): void;
  package(name: string, priority?: Priority): void;
  request(pkg: string, priority?: Priority): void;
  /**
   * Queue the model for a resync's pass: packages that list it wait for the pass, which queues
   * them (ModelPasses). Absent: the model is queued as by `model`, and its packages by the resync.
   */
  modelPass?(name: string, priority?: Priority): void;
  /** The package's definition changed (queued as by `package`, and counted again if it waits for passes). Absent: `package`. */
  packageDefinitionChanged?(name: string): void;
  /**
   * A resync's package, after its models: queued, or left to its models' passes (false then;
   * ModelPasses.holdForResync). Absent: queued as by `package`.
   */
  packageForResync?(name: string, priority?: Priority): boolean;
}

/** What the event mapping queues into: the work above, and operator resync requests by id. */
export interface EventQueues extends Enqueue {
  resync(id: string): void;
  /** A state key deleted by someone else: its history to remove (reconcilers/history-reconciler.ts). */
  history?(kind: ResourceKind, name: string): void;
}

function before<T>(e: InformerEvent<T>): T | undefined {
  return e.type === 'added' ? undefined : e.old.value;
}

function after<T>(e: InformerEvent<T>): T | undefined {
  return e.type === 'deleted' ? undefined : e.new.value;
}

export function wireEventMapping(fleet: Fleet, q: EventQueues, lag?: LagTracker): void {
  const { keys } = fleet;
  // The events of an informer's first list queue nothing: work starts only once every cache has
  // synced, with a resync that queues every model, package and reconcile request (enqueueAll,
  // from the Manager), and those reconciles read the whole level. Queued here as well, a cold
  // start of 100,000 containers made 125,000 queue adds for nothing, 25,000 request reconciles
  // that found no request, and a follower held queues of the whole fleet until it led.
  const onChange = <K extends WatchedKind>(kind: K, handler: InformerHandler<Watched[K]>): void =>
    fleet.onChange(kind, (e) => {
      if (!e.initial) handler(e);
    });

  onChange('containers', (e) => {
    const o = before<ContainerEntry>(e);
    const n = after<ContainerEntry>(e);
    if (o && n && o.model === n.model && o.status === n.status && o.node === n.node) return;
    if (o) {
      lag?.containerChanged(o.model);
      q.model(o.model);
    }
    if (n && n.model !== o?.model) {
      lag?.containerChanged(n.model);
      q.model(n.model);
    }
  });

  onChange('nodes', (e) => {
    const lease = keys.parseNodeLeaseKey(e.key);
    if (lease !== undefined) {
      // Node leases: back at once; gone, then the node turns NotReady once the grace has passed.
      if (!fleet.liveness.enabled || e.type === 'updated') return;
      if (e.type === 'added') for (const m of fleet.modelsOnNode(lease)) q.model(m);
      else for (const m of fleet.modelsOnNode(lease)) q.modelAfter(m, fleet.liveness.graceMs);
      return;
    }
    if (statusReady(before(e)) === statusReady(after(e))) return;
    const node = keys.parseNodeStatusKey(e.key);
    if (node === undefined) return;
    for (const m of fleet.modelsOnNode(node)) q.model(m);
  });

  onChange('packageDefs', (e) => {
    const name = keys.parsePackageDefKey(e.key);
    if (name === undefined) return;
    if (q.packageDefinitionChanged) q.packageDefinitionChanged(name);
    else q.package(name);
    const o = new Set(before(e)?.models ?? []);
    const n = new Set(after(e)?.models ?? []);
    // A model whose listing changed may gain or lose its state key.
    for (const m of o) if (!n.has(m)) q.model(m);
    for (const m of n) if (!o.has(m)) q.model(m);
  });

  onChange('scenarioDefs', (e) => {
    const o = before(e);
    const n = after(e);
    if (o !== undefined) q.request(o);
    if (n !== undefined && n !== o) q.request(n);
  });

  // statemanager deletes a state's history with the state; a deletion by anyone else leaves it.
  const historyOf = (kind: ResourceKind, e: InformerEvent<unknown>, name: string): void => {
    if (e.type === 'deleted' && !e.assumed) q.history?.(kind, name);
  };

  onChange('modelStates', (e) => {
    const name = keys.parseStateKey('model', e.key);
    if (name === undefined) return;
    historyOf('model', e, name);
    // A foreign or bad value is repaired by recomputation; our own write (assumed) needs none.
    if (!e.assumed) q.model(name);
    if (stateOf(before(e)) !== stateOf(after(e))) {
      const packages = fleet.packagesOfModel(name);
      lag?.modelChanged(name, packages);
      for (const p of packages) q.package(p);
    }
  });

  onChange('packageStates', (e) => {
    const name = keys.parseStateKey('package', e.key);
    if (name === undefined) return;
    historyOf('package', e, name);
    if (!e.assumed) q.package(name);
    // The request reconciler reads a package's state only for the package's request. A request
    // written with the state comes on its own watch and is queued from there; one that came first
    // is waiting for this state and is queued now (a cold start queued every package here).
    if (stateOf(before(e)) !== stateOf(after(e)) && fleet.reconcileRequest(name) !== undefined) q.request(name);
  });

  onChange('scenarioStates', (e) => {
    const name = keys.parseStateKey('scenario', e.key);
    if (name !== undefined) historyOf('scenario', e, name);
  });

  onChange('requests', (e) => {
    const name = keys.parseReconcileRequestKey(e.key);
    if (name !== undefined) q.request(name);
  });

  // Queued on every replica (the queue collects while workers are paused); applied by the leader.
  // Those of the first list too: a resync does not queue resync requests.
  fleet.onChange('resyncRequests', (e) => {
    const id = keys.parseResyncRequestKey(e.key);
    if (e.type !== 'deleted' && id !== undefined) q.resync(id);
  });
}

function statusReady(k: NodeKey | undefined): boolean {
  return k?.kind !== 'status' || k.ready;
}

function stateOf<S>(s: StoredState<S> | undefined): S | undefined {
  return s?.state;
}

/**
 * Every model, package and reconcile request, for a resync; but not a package that waits for its
 * models' passes (ModelPasses: the last of them queues it). With passes, every package that lists
 * a model is left to its models: decided from their recomputed states, not the stored ones, which
 * a takeover or a missed event may have left behind the containers.
 */
export function enqueueAll(fleet: Fleet, q: Enqueue, priority: Priority): { models: number; packages: number; packagesAfterModels: number; requests: number } {
  const models = fleet.allNames('model');
  const packages = fleet.allNames('package');
  const requests = fleet.allNames('request');
  for (const m of models) {
    if (q.modelPass) q.modelPass(m, priority);
    else q.model(m, priority);
  }
  let afterModels = 0;
  for (const p of packages) {
    if (q.packageForResync) {
      if (!q.packageForResync(p, priority)) afterModels++;
    } else q.package(p, priority);
  }
  for (const r of requests) q.request(r, priority);
  return { models: models.size, packages: packages.size - afterModels, packagesAfterModels: afterModels, requests: requests.size };
}
