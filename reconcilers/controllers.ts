// The one place the reconcilers and their controllers are built: the program (src/app.ts), the
// in-memory test world (test/fakes/world.ts) and the deterministic simulation (test/sim/) all
// build them here, so what the tests and the simulation exercise is what runs.
//
// Construction follows the dependencies, with nothing bound late: the model, package and
// request controllers need nothing queued into them to exist; the Enqueue is made over them;
// the resync-request reconciler (the one reconciler that queues work) is given that Enqueue,
// and its controller comes last.
import { Controller, type Reconciler } from '../controller/controller.js';
import type { Logger } from '../controller/logger.js';
import type { ControllerMetrics, QueueMetricsProvider } from '../controller/metrics.js';
import { ExponentialRateLimiter } from '../controller/rate-limiter.js';
import { WorkQueue } from '../controller/workqueue.js';
import { wireEventMapping, type Enqueue } from './event-mapping.js';
import type { Fleet } from './fleet.js';
import type { LagTracker } from './lag-tracker.js';
import { ModelPasses } from './model-passes.js';
import { ModelReconciler } from './model-reconciler.js';
import { PackageCascade } from './package-cascade.js';
import type { DomainObserver, ActionControllerClient, Clock, StateStore } from './ports.js';
import { PackageReconciler } from './package-reconciler.js';
import { ReconcileRequestReconciler, type RepeatPolicy } from './reconcile-request-reconciler.js';
import { ResyncRequestReconciler } from './resync-request-reconciler.js';
import { HistoryReconciler, historyKey } from './history-reconciler.js';
import type { PackageState } from '../domain/states.js';

export type ControllerKind = 'model' | 'package' | 'request' | 'resync' | 'history';

export interface ControllerSettings {
  /** Backoff of a failing model, package or resync key. */
  keyBackoff: { base: number; cap: number };
  /** Backoff of a reconcile request whose delivery failed. */
  requestBackoff: { base: number; cap: number };
  workers: number;
  requestWorkers: number;
}

export interface ControllersDeps {
  fleet: Fleet;
  store: StateStore;
  actionController: ActionControllerClient;
  observer: DomainObserver;
  clock: Clock;
  /** Recorded in history: which replica decided. */
  source: string;
  triggerStates: ReadonlySet<PackageState>;
  repeat: RepeatPolicy;
  logger: Logger;
  lag?: LagTracker;
  settings: ControllerSettings;
  queueMetrics?(name: ControllerKind): QueueMetricsProvider;
  controllerMetrics?(name: ControllerKind): ControllerMetrics;
  /** Test-only: a work queue to use instead of the real one (the simulation's planted bugs, the test world's recording). */
  makeQueue?(name: ControllerKind, rateLimiter: ExponentialRateLimiter): WorkQueue;
  /**
   * Write the packages a model's new state changes in the model's transaction when nothing else
   * is about to decide them (reconcilers/package-cascade.ts). Default true; false keeps the
   * two-step path (model, then package), which tests of the package reconciler alone use.
   */
  foldPackages?: boolean;
  /** Whether this replica may act as the leader now (the ActionController is called only then; see ReconcileRequestReconcilerDeps.mayAct). */
  mayAct?: () => boolean;
}

export interface Reconcilers {
  model: ModelReconciler;
  package: PackageReconciler;
  request: ReconcileRequestReconciler;
  resync: ResyncRequestReconciler;
  history: HistoryReconciler;
}

export interface Controllers {
  /** Each a Runnable: hand them to the Manager as they are. */
  controllers: Record<ControllerKind, Controller>;
  /** Tests that drive a reconciler themselves call it here. */
  reconcilers: Reconcilers;
  /** Queues into the controllers (what the event mapping and resyncs use). */
  enqueue: Enqueue;
  /** The resync's model passes the packages wait for (a gauge reads how many are due). */
  passes: ModelPasses;
}

/** Reconcilers and their controllers, with the fleet's events mapped onto them. */
export function buildControllers(d: ControllersDeps): Controllers {
  const { settings: s, fleet, store, observer, clock, source, lag, triggerStates } = d;
  const controller = (name: ControllerKind, reconciler: Reconciler, backoff: { base: number; cap: number }, workers: number, jitter = false): Controller => {
    const rateLimiter = new ExponentialRateLimiter({ baseMs: backoff.base, capMs: backoff.cap, jitter });
    const queue = d.makeQueue?.(name, rateLimiter) ?? new WorkQueue({ name, rateLimiter, ...(d.queueMetrics ? { metrics: d.queueMetrics(name) } : {}) });
    return new Controller({ name, reconciler, queue, workers, logger: d.logger, ...(d.controllerMetrics ? { metrics: d.controllerMetrics(name) } : {}) });
  };
  const withLag = lag ? { lag } : {};
  // The coalescing rule asks the queues; they are built below, before any reconcile runs.
  const cascade: PackageCascade = new PackageCascade({
    fleet,
    triggerStates,
    source,
    work: {
      model: (name: string): boolean => work.model.hasWork(name),
      modelQueuedAgain: (name: string): boolean => work.model.queuedAgain(name),
      package: (name: string): boolean => work.package.hasWork(name),
      modelsWaiting: (): number => work.model.waiting(),
      writesWaiting: (): number => store.writesWaiting(),
    },
    requeuePackage: (name) => work.package.enqueue(name),
  });
  const folds = d.foldPackages === false ? {} : { cascade };
  const model: ModelReconciler = new ModelReconciler({ fleet, store, observer, clock, source, ...withLag, ...folds });
  const passes: ModelPasses = new ModelPasses({
    fleet,
    modelHasWork: (name): boolean => work.model.hasWork(name),
    promoteModel: (name): void => work.model.promote(name),
    queuePackage: (name, priority): void => work.package.enqueue(name, priority),
  });
  const pkg = new PackageReconciler({ fleet, store, observer, clock, triggerStates, source, waitForModels: (p, models) => passes.waitForModels(p, models), modelQueued: (m): boolean => work.model.hasWork(m), ...withLag, ...folds });
  const request = new ReconcileRequestReconciler({
    fleet,
    store,
    actionController: d.actionController,
    observer,
    clock,
    triggerStates,
    repeat: d.repeat,
    // Moves each waiting retry forward (the earlier time wins), so none runs twice.
    retryNow: (pkgs) => {
      for (const p of pkgs) work.request.enqueueAfter(p, 1);
    },
    packageDecisionPending: (p): boolean => passes.holds(p) || work.package.hasWork(p),
    ...(d.mayAct ? { mayAct: d.mayAct } : {}),
  });
  const work = {
    model: controller('model', passes.wrap(model), s.keyBackoff, s.workers),
    package: controller('package', pkg, s.keyBackoff, s.workers),
    // Jittered: the requests of every package in Error fail together while the ActionController
    // is away, and without it retried together (2,000 at once every 30 s in a black-box probe).
    request: controller('request', request, s.requestBackoff, s.requestWorkers, true),
  };
  const enqueue = enqueueInto(work, passes);
  const resync = new ResyncRequestReconciler({ fleet, store, enqueue, logger: d.logger });
  const history = new HistoryReconciler({ fleet, store });
  const controllers = { ...work, resync: controller('resync', resync, s.keyBackoff, 1), history: controller('history', history, s.keyBackoff, 1) };
  wireEventMapping(
    fleet,
    { ...enqueue, resync: (id) => controllers.resync.enqueue(id), history: (kind, name) => controllers.history.enqueue(historyKey(kind, name)) },
    lag,
  );
  return { controllers, reconcilers: { model, package: pkg, request, resync, history }, enqueue, passes };
}

function enqueueInto(c: Record<'model' | 'package' | 'request', Controller>, passes: ModelPasses): Enqueue {
  return {
    model: (name, priority) => c.model.enqueue(name, priority),
    modelPass: (name, priority) => {
      passes.expect(name);
      c.model.enqueue(name, priority);
    },
    modelAfter: (name, delayMs) => c.model.enqueueAfter(name, delayMs),
    // A package waiting for a resync's model passes would only return: the last pass queues it.
    package: (name, priority) => {
      if (!passes.holds(name)) c.package.enqueue(name, priority);
    },
    packageDefinitionChanged: (name) => {
      passes.definitionChanged(name);
      c.package.enqueue(name);
    },
    packageForResync: (name, priority) => {
      if (passes.holdForResync(name)) return false;
      c.package.enqueue(name, priority);
      return true;
    },
    request: (name, priority) => c.request.enqueue(name, priority),
  };
}
