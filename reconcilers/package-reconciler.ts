// A package's state from its models; entering a trigger state (Error by default) writes a
// durable reconcile request in the same transaction, leaving one removes it.
import { REQUEUE, type Reconciler, type ReconcileResult } from '../controller/controller.js';
import type { Fleet } from './fleet.js';
import type { PackageCascade } from './package-cascade.js';
import type { DomainObserver, Clock, StateStore } from './ports.js';
import type { LagTracker } from './lag-tracker.js';
import { decidePackage, reportPackageDecision, requestStatus } from './package-decision.js';
import type { ModelState, PackageState } from '../domain/states.js';

export interface PackageReconcilerDeps {
  fleet: Fleet;
  store: StateStore;
  observer: DomainObserver;
  clock: Clock;
  /** Recorded in history: which replica decided. */
  source: string;
  triggerStates: ReadonlySet<PackageState>;
  lag?: LagTracker;
  /** The folds of model reconciles: a package being folded is decided after its fold. */
  cascade?: PackageCascade;
  /** Whether to wait for the models: a resync's passes of them are due (ModelPasses.waitForModels). */
  waitForModels?(pkg: string, models: readonly string[] | undefined): boolean;
  /** Whether work for a model is queued or running. */
  modelQueued?(name: string): boolean;
}

export class PackageReconciler implements Reconciler {
  constructor(private readonly d: PackageReconcilerDeps) {}

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const { fleet, store, observer, triggerStates } = this.d;
    if (this.d.cascade?.isFolding(name)) {
      // A model's transaction is writing this package: decide after it is answered.
      this.d.cascade.defer(name);
      return;
    }
    const stored = fleet.storedPackageState(name);
    const models = fleet.modelsOfPackage(name);
    // A model whose resync pass is coming would be read from a stored state that may be behind
    // its containers; the last such pass queues the package again.
    if (this.d.waitForModels?.(name, models)) return;
    const request = requestStatus(fleet.reconcileRequest(name));
    const hasRequest = request !== 'none';

    if (models === undefined) {
      this.d.lag?.packageSettled(name, false);
      if (!stored) return;
      const res = await store.deleteState({ kind: 'package', name, expected: stored, deleteReconcileRequest: hasRequest });
      if (!res.committed) return REQUEUE;
      observer.transition('package', name, stored.value.state ?? null, null, 'package definition removed');
      if (hasRequest) observer.reconcileRequest('cleared', name, 'package removed');
      return;
    }

    const modelStates: ModelState[] = [];
    for (const m of models) {
      const model = fleet.storedModelState(m);
      // A model with no state yet whose reconcile is coming would be read as Created: a cold
      // start wrote half its packages twice (Idle, then their state). The model's first state
      // write queues the package again (or folds it in).
      if (model === undefined && this.d.modelQueued?.(m)) return;
      modelStates.push(model?.value.state ?? 'Created');
    }
    const decision = decidePackage({ name, stored, modelStates, request, triggerStates, now: this.d.clock.now(), source: this.d.source });
    if (!decision) {
      this.d.lag?.packageSettled(name, false);
      // In a trigger state with no request: another writer put it there (the StateManager this
      // one took over from, or an operator), so its repair was never asked for here. Level-based:
      // ask for it now, once (a request exists from then on until the package leaves the state).
      const state = stored?.value.state;
      if (stored && state !== undefined && triggerStates.has(state) && !hasRequest) {
        const at = new Date(this.d.clock.now()).toISOString();
        const res = await store.createReconcileRequest({ package: name, state, requestedAt: at, deliveries: 0, packageStateRevision: stored.modRevision }, stored);
        if (!res.committed) return REQUEUE;
        observer.reconcileRequest('created', name, `package found ${state} with no reconcile request (written so by another writer)`);
      }
      return;
    }
    const res = await store.writeState(decision.transition);
    if (!res.committed) return REQUEUE;
    reportPackageDecision(observer, decision);
    this.d.lag?.packageSettled(name, true);
  }
}
