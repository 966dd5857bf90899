// A package's state from its models; entering a trigger state (Error by default) writes a
// durable reconcile request in the same transaction, leaving one removes it.
import { REQUEUE, type Reconciler, type ReconcileResult } from '../controller/controller.js';
import type { Fleet } from './fleet.js';
import type { DomainObserver, Clock, ReconcileRequestRecord, StateStore } from './ports.js';
import type { LagTracker } from './lag-tracker.js';
import { isDiagramEdge, nextPackageState, summarizeCounts } from '../domain/rules.js';
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
}

export class PackageReconciler implements Reconciler {
  constructor(private readonly d: PackageReconcilerDeps) {}

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const { fleet, store, observer, triggerStates } = this.d;
    const stored = fleet.storedPackageState(name);
    const models = fleet.modelsOfPackage(name);
    const hasRequest = fleet.reconcileRequest(name) !== undefined;

    if (models === undefined) {
      this.d.lag?.packageSettled(name, false);
      if (!stored) return;
      const res = await store.deleteState({ kind: 'package', name, expected: stored, deleteReconcileRequest: hasRequest });
      if (!res.committed) return REQUEUE;
      observer.transition('package', name, stored.value.state ?? null, null, 'package definition removed');
      if (hasRequest) observer.reconcileRequest('cleared', name, 'package removed');
      return;
    }

    const states: ModelState[] = [];
    for (const m of models) states.push(fleet.storedModelState(m)?.value.state ?? 'Created');
    const prev = stored?.value.state;
    const next = nextPackageState(prev, states);
    if (prev === next) {
      this.d.lag?.packageSettled(name, false);
      return;
    }

    const now = new Date(this.d.clock.now()).toISOString();
    const reason = `models: ${summarizeCounts(states)}`;
    const entering = triggerStates.has(next) && (prev === undefined || !triggerStates.has(prev));
    const leaving = !triggerStates.has(next) && hasRequest;
    const request: ReconcileRequestRecord | undefined = entering
      ? { package: name, state: next, requestedAt: now, deliveries: 0 }
      : undefined;
    const res = await store.writeState({
      kind: 'package',
      name,
      to: next,
      expected: stored,
      history: {
        kind: 'package',
        name,
        from: prev ?? null,
        to: next,
        at: now,
        reason,
        source: this.d.source,
        drawn: isDiagramEdge('package', prev, next),
      },
      ...(request ? { reconcileRequest: { put: request } } : leaving ? { reconcileRequest: { delete: true } } : {}),
    });
    if (!res.committed) return REQUEUE;
    observer.transition('package', name, prev ?? null, next, reason);
    this.d.lag?.packageSettled(name, true);
    if (request) observer.reconcileRequest('created', name);
    if (leaving) observer.reconcileRequest('cleared', name, `package is ${next}`);
  }
}
