// Wires the domain (reconcilers/) into the machinery (controller/) over etcd and gRPC:
// informers → event mapping → work queues → reconcilers → guarded etcd writes.
import type { Etcd3 } from 'etcd3';
import { hostname } from 'node:os';
import { Controller, type Reconciler } from '../controller/controller.js';
import { LeaderElector } from '../controller/leader-election.js';
import type { Logger } from '../controller/logger.js';
import { ExponentialRateLimiter } from '../controller/rate-limiter.js';
import { WorkQueue } from '../controller/workqueue.js';
import { enqueueAll, wireEventMapping, type Enqueue, type Priority } from '../reconcilers/event-mapping.js';
import { Fleet } from '../reconcilers/fleet.js';
import { KeyLayout } from '../reconcilers/keys.js';
import { LagTracker } from '../reconcilers/lag-tracker.js';
import { ModelReconciler } from '../reconcilers/model-reconciler.js';
import { PackageReconciler } from '../reconcilers/package-reconciler.js';
import { systemClock, type ActionControllerClient, type Clock } from '../reconcilers/ports.js';
import { ReconcileRequestReconciler } from '../reconcilers/reconcile-request-reconciler.js';
import { ResyncRequestReconciler } from '../reconcilers/resync-request-reconciler.js';
import { MODEL_STATES, PACKAGE_STATES } from '../reconcilers/states.js';
import { GrpcActionControllerClient } from './action-controller/client.js';
import type { Config } from './config.js';
import { createEtcdClient, createEtcdWatchClient } from './etcd/client.js';
import { EtcdLeaderLock } from './etcd/leader-lock.js';
import { EtcdListerWatcher } from './etcd/lister-watcher.js';
import { EtcdStateStore, type CommittedChange } from './etcd/state-store.js';
import type { EtcdWatchClient } from './etcd/watch-client.js';
import { Metrics } from './metrics.js';
import { LoggingObserver } from './observer.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics?: Metrics;
  etcd?: Etcd3;
  actionController?: ActionControllerClient;
  clock?: Clock;
}

export interface ReadyCheck {
  ok: boolean;
  failing: string[];
}

type Kind = 'model' | 'package' | 'request' | 'resync';

export class StateManagerApp {
  readonly keys: KeyLayout;
  readonly etcd: Etcd3;
  readonly watchClient: EtcdWatchClient;
  readonly fleet: Fleet;
  readonly metrics: Metrics;
  readonly store: EtcdStateStore;
  private readonly controllers: Record<Kind, Controller>;
  private readonly requestReconciler: ReconcileRequestReconciler;
  private readonly ownsEtcd: boolean;
  private readonly ownedActionController: GrpcActionControllerClient | undefined;
  private readonly log: Logger;
  private resyncTimer: NodeJS.Timeout | undefined;
  private etcdProbeTimer: NodeJS.Timeout | undefined;
  private etcdReachable = false;
  private workersRunning = false;
  private stopped = false;
  private startup: Promise<void> | undefined;
  private controllersStarted = false;
  readonly identity: string;
  readonly leaderLock: EtcdLeaderLock | undefined;
  readonly elector: LeaderElector | undefined;

  constructor(private readonly deps: AppDeps) {
    const { config, logger } = deps;
    this.log = logger;
    this.keys = new KeyLayout(config.keyPrefix);
    this.ownsEtcd = !deps.etcd;
    this.etcd = deps.etcd ?? createEtcdClient(config.etcd);
    this.watchClient = createEtcdWatchClient(config.etcd);
    this.metrics = deps.metrics ?? new Metrics();
    const clock = deps.clock ?? systemClock;
    const observer = new LoggingObserver(logger, this.metrics);
    const le = config.leaderElection;
    this.identity = le.identity || `${hostname()}-${process.pid}`;
    this.leaderLock = le.enabled
      ? new EtcdLeaderLock({
          client: this.etcd,
          watcher: this.watchClient,
          key: this.keys.leader,
          identity: this.identity,
          leaseSeconds: Math.max(1, Math.round(le.leaseDuration / 1000)),
          requestTimeoutMs: config.etcd.requestTimeout,
          logger,
        })
      : undefined;

    this.fleet = new Fleet({
      keys: this.keys,
      lw: new EtcdListerWatcher(this.etcd, this.watchClient),
      observer,
      logger,
      metrics: this.metrics.informers(),
    });
    this.store = new EtcdStateStore({
      client: this.etcd,
      keys: this.keys,
      historyLength: config.history.length,
      requestTimeoutMs: config.etcd.requestTimeout,
      ...(this.leaderLock ? { guard: this.leaderLock } : {}),
      onCommit: (changes) => this.assume(changes),
    });

    const triggerStates = new Set(config.reconcile.triggerStates);
    if (deps.actionController) {
      this.ownedActionController = undefined;
    } else {
      this.ownedActionController = new GrpcActionControllerClient({
        addr: config.actionController.addr,
        timeoutMs: config.actionController.timeout,
        tls: config.actionController.tls,
      });
    }
    const actionController = deps.actionController ?? this.ownedActionController!;
    this.requestReconciler = new ReconcileRequestReconciler({
      fleet: this.fleet,
      store: this.store,
      actionController,
      observer,
      clock,
      triggerStates,
      repeat: { initialMs: config.reconcile.repeatInitial, capMs: config.reconcile.repeatCap },
    });

    const make = (name: Kind, reconciler: Reconciler, baseMs: number, capMs: number, workers: number): Controller =>
      new Controller({
        name,
        reconciler,
        queue: new WorkQueue({
          name,
          rateLimiter: new ExponentialRateLimiter({ baseMs, capMs }),
          metrics: this.metrics.queue(name),
        }),
        workers,
        logger,
        metrics: this.metrics.controller(name),
      });
    const { backoffBase, backoffCap } = config.controller;
    const source = `controller/${this.identity}`;
    const lag = new LagTracker(() => performance.now(), (s) => this.metrics.lag.observe(s));
    this.controllers = {
      model: make(
        'model',
        new ModelReconciler({ fleet: this.fleet, store: this.store, observer, clock, source, lag }),
        backoffBase,
        backoffCap,
        config.controller.workers,
      ),
      package: make(
        'package',
        new PackageReconciler({ fleet: this.fleet, store: this.store, observer, clock, triggerStates, source, lag }),
        backoffBase,
        backoffCap,
        config.controller.workers,
      ),
      request: make('request', this.requestReconciler, config.reconcile.retryBase, config.reconcile.retryCap, config.reconcile.workers),
      resync: make('resync', new ResyncRequestReconciler({ fleet: this.fleet, store: this.store, enqueue: this.enqueuer(), logger }), backoffBase, backoffCap, 1),
    };
    wireEventMapping(this.fleet, this.enqueuer(), lag);
    // Queued on every replica (the queue collects while workers are paused); applied by the leader.
    this.fleet.resyncRequests.addHandler((e) => {
      const id = this.keys.parseResyncRequestKey(e.key);
      if (e.type !== 'deleted' && id !== undefined) this.controllers.resync.enqueue(id);
    });
    const leaderGauge = this.metrics.leader.labels({ name: 'statemanager' });
    leaderGauge.set(0);
    this.elector = this.leaderLock
      ? new LeaderElector({
          identity: this.identity,
          lock: this.leaderLock,
          retryPeriodMs: Math.max(200, le.leaseDuration / 5),
          onLost: le.onLost,
          logger,
          onLeaderChange: (leading) => leaderGauge.set(leading ? 1 : 0),
          callbacks: {
            onStartedLeading: () => this.startWorkers('became leader'),
            onStoppedLeading: () => this.pauseWorkers(),
          },
        })
      : undefined;
  }

  /** Reads the controllers when called, so reconcilers built before them can hold one. */
  enqueuer(): Enqueue {
    return {
      model: (name: string, p: Priority = 'high') => this.controllers.model.enqueue(name, p),
      package: (name: string, p: Priority = 'high') => this.controllers.package.enqueue(name, p),
      request: (name: string, p: Priority = 'high') => this.controllers.request.enqueue(name, p),
    };
  }

  /** Start watching at once; workers start once every informer has synced. */
  start(): Promise<void> {
    if (!this.startup) {
      this.fleet.start();
      this.probeEtcd();
      this.startup = this.fleet.waitForSync().then(() => {
        if (this.stopped) return;
        // Followers keep their informers warm; only the leader runs workers.
        if (this.elector) this.elector.start();
        else this.startWorkers('start');
      });
    }
    return this.startup;
  }

  /** Recompute everything from what is in etcd; live events go ahead of this work. */
  resync(reason: string): void {
    const counts = enqueueAll(this.fleet, this.enqueuer(), 'low');
    this.log.info('resync', { reason, ...counts });
  }

  ready(): ReadyCheck {
    const failing: string[] = [];
    if (!this.etcdReachable) failing.push('etcd');
    if (!this.fleet.hasSynced()) failing.push('informers-synced');
    // A follower is ready: it serves gRPC and stands by with warm caches.
    if (!this.workersRunning && (!this.elector || this.elector.isLeader())) failing.push('workers');
    return { ok: failing.length === 0, failing };
  }

  isEtcdReachable(): boolean {
    return this.etcdReachable;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.etcdProbeTimer);
    // Finish in-flight keys, then hand leadership over without waiting for the lease to expire.
    await this.elector?.stop();
    this.workersRunning = false;
    await Promise.all(Object.values(this.controllers).map((c) => c.stop()));
    await this.fleet.stop();
    this.ownedActionController?.close();
    this.watchClient.close();
    if (this.ownsEtcd) this.etcd.close();
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : true;
  }

  /** A new leader resyncs before it works: whatever changed while it was not leading is seen. */
  private startWorkers(reason: string): void {
    if (this.stopped) return;
    this.resync(reason);
    for (const c of Object.values(this.controllers)) {
      if (this.controllersStarted) c.resume();
      else c.start();
    }
    this.controllersStarted = true;
    this.workersRunning = true;
    const period = this.deps.config.controller.resyncPeriod;
    clearInterval(this.resyncTimer);
    if (period > 0) {
      this.resyncTimer = setInterval(() => this.resync('periodic'), period);
      this.resyncTimer.unref();
    }
  }

  private async pauseWorkers(): Promise<void> {
    this.workersRunning = false;
    clearInterval(this.resyncTimer);
    await Promise.all(Object.values(this.controllers).map((c) => c.pause()));
  }

  private assume(changes: CommittedChange[]): void {
    for (const change of changes) {
      const informer = this.fleet.informers().find((i) => change.key.startsWith(i.prefix));
      informer?.assume(change);
    }
  }

  private probeEtcd(): void {
    const tick = async (): Promise<void> => {
      try {
        await this.etcd.kv.range({ key: Buffer.from(this.keys.own), limit: 1, count_only: true }, { deadline: Date.now() + 2000 });
        if (!this.etcdReachable) this.log.info('etcd reachable');
        this.etcdReachable = true;
      } catch (err) {
        if (this.etcdReachable) this.log.warn('etcd unreachable', { error: (err as Error).message });
        this.etcdReachable = false;
      }
      if (!this.stopped) {
        this.etcdProbeTimer = setTimeout(() => void tick(), this.etcdReachable ? 2000 : 1000);
        this.etcdProbeTimer.unref();
      }
    };
    void tick();
  }

  /** Refresh the gauges computed from the caches (called before each scrape: no hot-path cost). */
  collectGauges(): void {
    const gauge = this.metrics.resources;
    const count = (kind: 'model' | 'package', names: readonly string[], values: Iterable<{ value: { state: string | undefined } }>): void => {
      const counts = new Map<string, number>(names.map((n) => [n, 0]));
      for (const e of values) if (e.value.state) counts.set(e.value.state, (counts.get(e.value.state) ?? 0) + 1);
      for (const [state, n] of counts) gauge.set({ kind, state }, n);
    };
    count('model', MODEL_STATES, this.fleet.modelStates.cache.values());
    count('package', PACKAGE_STATES, this.fleet.packageStates.cache.values());
    this.metrics.reconcileRequestsPending.set(this.requestReconciler.pending.size);
  }
}
