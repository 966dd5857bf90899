// The one place the reconcilers and their controllers are wired: the program (src/app.ts), the
// in-memory test world (test/fakes/world.ts) and the deterministic simulation (test/sim/) all
// build them here, so what the tests and the simulation exercise is what runs.
import { Controller, type Reconciler } from '../controller/controller.js';
import type { Logger } from '../controller/logger.js';
import type { ControllerMetrics, QueueMetricsProvider } from '../controller/metrics.js';
import { ExponentialRateLimiter } from '../controller/rate-limiter.js';
import { WorkQueue } from '../controller/workqueue.js';
import { wireEventMapping, type Enqueue, type Priority } from './event-mapping.js';
import type { Fleet } from './fleet.js';
import type { LagTracker } from './lag-tracker.js';
import { ModelReconciler } from './model-reconciler.js';
import type { DomainObserver, ActionControllerClient, Clock, StateStore } from './ports.js';
import { PackageReconciler } from './package-reconciler.js';
import { ReconcileRequestReconciler, type RepeatPolicy } from './reconcile-request-reconciler.js';
import { ResyncRequestReconciler } from './resync-request-reconciler.js';
import type { PackageState } from '../domain/states.js';

export type ControllerKind = 'model' | 'package' | 'request' | 'resync';

export interface ReconcilerDeps {
  fleet: Fleet;
  store: StateStore;
  actionController: ActionControllerClient;
  observer: DomainObserver;
  clock: Clock;
  /** Recorded in history: which replica decided. */
  source: string;
  triggerStates: ReadonlySet<PackageState>;
  repeat: RepeatPolicy;
  /** Where the resync-request reconciler queues the work a request asks for. */
  enqueue: Enqueue;
  logger: Logger;
  lag?: LagTracker;
}

export type Reconcilers = Record<ControllerKind, Reconciler> & {
  model: ModelReconciler;
  package: PackageReconciler;
  request: ReconcileRequestReconciler;
  resync: ResyncRequestReconciler;
};

/** The four reconcilers, without queues (tests that call them directly use this). */
export function buildReconcilers(d: ReconcilerDeps): Reconcilers {
  const { fleet, store, observer, clock, source, lag, triggerStates } = d;
  return {
    model: new ModelReconciler({ fleet, store, observer, clock, source, ...(lag ? { lag } : {}) }),
    package: new PackageReconciler({ fleet, store, observer, clock, triggerStates, source, ...(lag ? { lag } : {}) }),
    request: new ReconcileRequestReconciler({ fleet, store, actionController: d.actionController, observer, clock, triggerStates, repeat: d.repeat }),
    resync: new ResyncRequestReconciler({ fleet, store, enqueue: d.enqueue, logger: d.logger }),
  };
}

export interface ControllerSettings {
  /** Backoff of a failing model, package or resync key. */
  keyBackoff: { base: number; cap: number };
  /** Backoff of a reconcile request whose delivery failed. */
  requestBackoff: { base: number; cap: number };
  workers: number;
  requestWorkers: number;
}

export interface ControllersDeps extends Omit<ReconcilerDeps, 'enqueue'> {
  settings: ControllerSettings;
  queueMetrics?(name: ControllerKind): QueueMetricsProvider;
  controllerMetrics?(name: ControllerKind): ControllerMetrics;
  /** Test-only: a work queue to use instead of the real one (the simulation's planted bugs). */
  makeQueue?(name: ControllerKind, rateLimiter: ExponentialRateLimiter): WorkQueue;
}

export interface Controllers {
  controllers: Record<ControllerKind, Controller>;
  queues: Record<ControllerKind, WorkQueue>;
  reconcilers: Reconcilers;
  /** Queues into the controllers (what the event mapping and resyncs use). */
  enqueue: Enqueue;
}

/** Reconcilers, work queues and controllers, with the fleet's events mapped onto the queues. */
export function buildControllers(d: ControllersDeps): Controllers {
  const { settings: s, fleet } = d;
  const queues = {} as Record<ControllerKind, WorkQueue>;
  const controllers = {} as Record<ControllerKind, Controller>;
  const enqueue: Enqueue = {
    model: (name: string, p: Priority = 'high') => controllers.model.enqueue(name, p),
    modelAfter: (name: string, delayMs: number) => queues.model.addAfter(name, delayMs),
    package: (name: string, p: Priority = 'high') => controllers.package.enqueue(name, p),
    request: (name: string, p: Priority = 'high') => controllers.request.enqueue(name, p),
  };
  const reconcilers = buildReconcilers({ ...d, enqueue });
  const make = (name: ControllerKind, backoff: { base: number; cap: number }, workers: number): void => {
    const rateLimiter = new ExponentialRateLimiter({ baseMs: backoff.base, capMs: backoff.cap });
    const queue = d.makeQueue?.(name, rateLimiter) ?? new WorkQueue({ name, rateLimiter, ...(d.queueMetrics ? { metrics: d.queueMetrics(name) } : {}) });
    queues[name] = queue;
    controllers[name] = new Controller({ name, reconciler: reconcilers[name], queue, workers, logger: d.logger, ...(d.controllerMetrics ? { metrics: d.controllerMetrics(name) } : {}) });
  };
  make('model', s.keyBackoff, s.workers);
  make('package', s.keyBackoff, s.workers);
  make('request', s.requestBackoff, s.requestWorkers);
  make('resync', s.keyBackoff, 1);
  wireEventMapping(fleet, enqueue, d.lag);
  // Queued on every replica (the queue collects while workers are paused); applied by the leader.
  fleet.resyncRequests.addHandler((e) => {
    const id = fleet.keys.parseResyncRequestKey(e.key);
    if (e.type !== 'deleted' && id !== undefined) controllers.resync.enqueue(id);
  });
  return { controllers, queues, reconcilers, enqueue };
}
