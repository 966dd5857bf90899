// A model's state from its containers (and their nodes), written only when it changes. A node
// whose lease grace is running out is looked at again when it has (level-based, like the node
// lifecycle controller: the answer depends on the clock, so the reconcile asks to be requeued).
import type { Reconciler, ReconcileResult } from '../controller/controller.js';
import { effectiveStatus } from './container.js';
import { CONFLICT } from './conflict.js';
import type { Fleet } from './fleet.js';
import type { DomainObserver } from './observer.js';
import type { LagTracker } from './lag-tracker.js';
import type { NodeReadiness } from './node-liveness.js';
import type { Clock, CommitOutcome, StateStore, StateTransition } from './ports.js';
import { isDiagramEdge, nextModelState } from './rules.js';
import type { ContainerStatus, ModelState } from './states.js';
import type { PackagePlan } from './package-reconciler.js';
import { summarizeCounts } from './summary.js';

export interface ModelReconcilerDeps {
  fleet: Fleet;
  store: StateStore;
  observer: DomainObserver;
  clock: Clock;
  /** Recorded in history: which replica decided. */
  source: string;
  lag?: LagTracker;
  /**
   * When given, a model whose state changes writes the states of the packages it changes in
   * the same transaction, instead of waiting for its own watch event to queue them: one etcd
   * round trip and one watch hop less from a container change to its package. The package
   * reconcilers still run on the event and confirm (level-based, nothing to write).
   */
  packages?: PackagePlanner;
  /**
   * Whether a model waits in the model queue or is being reconciled. A package with another
   * model pending is left to its own reconcile, which then sees both: a burst (a node going
   * down) still writes the package once, not once per model.
   */
  modelPending?: (model: string) => boolean;
}

/** Plans a package's next state with one model's new state standing in for the stored one. */
export interface PackagePlanner {
  plan(name: string, override: { model: string; state: ModelState }): PackagePlan | undefined;
}

const MAX_CASCADE = 16;

export class ModelReconciler implements Reconciler {
  constructor(private readonly d: ModelReconcilerDeps) {}

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const { fleet, store, observer } = this.d;
    const stored = fleet.storedModelState(name);

    if (!fleet.isModelListed(name)) {
      this.d.lag?.modelUnchanged(name);
      if (!stored) return;
      const res = await store.deleteState({ kind: 'model', name, expected: stored });
      if (!res.committed) return CONFLICT;
      observer.transition('model', name, stored.value.state ?? null, null, 'no package lists the model');
      return;
    }

    const now = this.d.clock.now();
    const nodes = new Map<string, NodeReadiness>();
    const statuses: ContainerStatus[] = [];
    for (const c of fleet.containersOfModel(name)) {
      let r = nodes.get(c.node);
      if (!r) nodes.set(c.node, (r = fleet.nodeReadiness(c.node, now)));
      statuses.push(effectiveStatus(c.status, r.ready));
    }
    let recheckMs: number | undefined;
    const notReady: string[] = [];
    for (const [node, r] of nodes) {
      if (r.changesInMs !== undefined) recheckMs = Math.min(recheckMs ?? Infinity, r.changesInMs);
      if (!r.ready) notReady.push(r.cause === 'lease' ? `${node} (lease absent)` : node);
    }
    const after: ReconcileResult | undefined = recheckMs === undefined ? undefined : { requeueAfterMs: Math.max(1, Math.ceil(recheckMs)) };
    const prev = stored?.value.state;
    const next = nextModelState(prev, statuses);
    if (prev === next) {
      this.d.lag?.modelUnchanged(name);
      return after;
    }

    const reason = `containers: ${summarizeCounts(statuses)}${notReady.length > 0 ? `; NotReady nodes: ${notReady.sort().join(', ')}` : ''}`;
    const cascaded = this.cascade(name, next);
    const since = this.d.lag?.pendingSince(name);
    const model: StateTransition = {
      kind: 'model',
      name,
      to: next,
      expected: stored,
      history: {
        kind: 'model',
        name,
        from: prev ?? null,
        to: next,
        at: new Date(this.d.clock.now()).toISOString(),
        reason,
        source: this.d.source,
        drawn: isDiagramEdge('model', prev, next),
      },
    };
    let res: CommitOutcome;
    try {
      res = await store.writeStates([model, ...cascaded.map((c) => c.plan.transition)]);
    } finally {
      for (const c of cascaded) this.inFlight.delete(c.name);
    }
    if (!res.committed) return CONFLICT;
    observer.transition('model', name, prev ?? null, next, reason);
    for (const c of cascaded) c.plan.committed();
    this.d.lag?.cascaded(since, cascaded.map((c) => c.name));
    return after;
  }

  /** Packages being written by some model's transaction right now: a second would only conflict. */
  private readonly inFlight = new Set<string>();

  /** The package writes to carry in the model's transaction (each package claimed by one model at a time). */
  private cascade(model: string, state: ModelState): { name: string; plan: PackagePlan }[] {
    const planner = this.d.packages;
    if (!planner) return [];
    const out: { name: string; plan: PackagePlan }[] = [];
    for (const pkg of this.d.fleet.packagesOfModel(model)) {
      // etcd bounds a transaction's operations (--max-txn-ops 128): the rest settle by their own reconciles.
      if (out.length >= MAX_CASCADE) break;
      if (this.inFlight.has(pkg)) continue; // its own reconcile, queued by the model's event, will settle it
      const pending = this.d.modelPending;
      if (pending && this.d.fleet.modelsOfPackage(pkg)?.some((m) => m !== model && pending(m))) continue;
      const plan = planner.plan(pkg, { model, state });
      if (!plan) continue;
      this.inFlight.add(pkg);
      out.push({ name: pkg, plan });
    }
    return out;
  }
}
