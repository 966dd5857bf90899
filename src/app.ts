// Wires the domain (reconcilers/) into the machinery (controller/) over etcd and gRPC:
// informers → event mapping → work queues → reconcilers → guarded etcd writes. The lifecycle
// (start order, leadership, resync, readiness) is the Manager's; nothing here keeps state.
import type { Etcd3 } from 'etcd3';
import { hostname } from 'node:os';
import type { Controller } from '../controller/controller.js';
import type { LeaderElector } from '../controller/leader-election.js';
import type { Logger } from '../controller/logger.js';
import { Manager, type CheckResult } from '../controller/manager.js';
import { buildControllers, type ControllerKind } from '../reconcilers/controllers.js';
import { enqueueAll, type Enqueue } from '../reconcilers/event-mapping.js';
import { Fleet } from '../reconcilers/fleet.js';
import { KeyLayout } from '../domain/keys.js';
import { LagTracker } from '../reconcilers/lag-tracker.js';
import { systemClock, type ActionControllerClient, type Clock } from '../reconcilers/ports.js';
import { GrpcActionControllerClient, type OffloadModelClient } from './action-controller/client.js';
import type { Config } from './config/config.js';
import { createEtcdClient, createEtcdWatchClient } from './etcd/client.js';
import { EtcdLeaderLock } from './etcd/leader-lock.js';
import { EtcdListerWatcher } from './etcd/lister-watcher.js';
import { EtcdProbe } from './etcd/probe.js';
import { EtcdStateStore } from './etcd/state-store.js';
import type { EtcdWatchClient } from './etcd/watch-client.js';
import { maintainFleetGauges } from './observability/gauges.js';
import { Metrics } from './observability/metrics.js';
import { LoggingObserver } from './observability/observer.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics?: Metrics;
  etcd?: Etcd3;
  actionController?: ActionControllerClient;
  /** TriggerOffloading's way to the ActionController; by default the client Reconcile uses. */
  offloadModel?: OffloadModelClient;
  clock?: Clock;
}

export class StateManagerApp {
  readonly keys: KeyLayout;
  readonly etcd: Etcd3;
  readonly watchClient: EtcdWatchClient;
  readonly fleet: Fleet;
  readonly metrics: Metrics;
  readonly store: EtcdStateStore;
  readonly identity: string;
  readonly manager: Manager;
  /** Logs and counts domain events; the gRPC server reports scenario transitions through it. */
  readonly observer: LoggingObserver;
  /** The ActionController's OffloadModel, on the same client (connection, TLS, timeout) as Reconcile. */
  readonly offloadModel: OffloadModelClient;
  private readonly controllers: Record<ControllerKind, Controller>;
  private readonly enqueue: Enqueue;
  private readonly probe: EtcdProbe;
  private readonly log: Logger;
  private readonly closeClients: () => void;

  constructor(deps: AppDeps) {
    const { config, logger } = deps;
    this.log = logger;
    this.keys = new KeyLayout(config.keyPrefix);
    this.etcd = deps.etcd ?? createEtcdClient(config.etcd);
    this.watchClient = createEtcdWatchClient(config.etcd);
    this.metrics = deps.metrics ?? new Metrics();
    const clock = deps.clock ?? systemClock;
    const observer = (this.observer = new LoggingObserver(logger, this.metrics));
    const le = config.leaderElection;
    this.identity = le.identity || `${hostname()}-${process.pid}`;
    const leaderLock = le.enabled
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

    const liveness = { enabled: config.nodeLiveness.enabled, graceMs: config.nodeLiveness.grace };
    this.fleet = new Fleet({ keys: this.keys, lw: new EtcdListerWatcher(this.etcd, this.watchClient), observer, logger, metrics: this.metrics.informers(), liveness, clock });
    maintainFleetGauges(this.metrics, this.fleet);
    this.store = new EtcdStateStore({
      client: this.etcd,
      keys: this.keys,
      historyLength: config.history.length,
      requestTimeoutMs: config.etcd.requestTimeout,
      ...(leaderLock ? { guard: leaderLock } : {}),
      onCommit: (changes) => this.fleet.caches.assume(changes),
    });
    const ownedActionController = deps.actionController && deps.offloadModel
      ? undefined
      : new GrpcActionControllerClient({ addr: config.actionController.addr, timeoutMs: config.actionController.timeout, tls: config.actionController.tls });
    this.offloadModel = deps.offloadModel ?? ownedActionController!;
    this.closeClients = () => {
      ownedActionController?.close();
      this.watchClient.close();
      if (!deps.etcd) this.etcd.close();
    };

    const source = `controller/${this.identity}`;
    const lag = new LagTracker(() => performance.now(), (s) => this.metrics.lag.observe(s));
    const built = buildControllers({
      fleet: this.fleet,
      store: this.store,
      actionController: deps.actionController ?? ownedActionController!,
      observer,
      clock,
      source,
      lag,
      logger,
      triggerStates: new Set(config.reconcile.triggerStates),
      repeat: { initialMs: config.reconcile.repeatInitial, capMs: config.reconcile.repeatCap },
      settings: {
        keyBackoff: { base: config.controller.backoffBase, cap: config.controller.backoffCap },
        requestBackoff: { base: config.reconcile.retryBase, cap: config.reconcile.retryCap },
        workers: config.controller.workers,
        requestWorkers: config.reconcile.workers,
      },
      queueMetrics: (name) => this.metrics.queue(name),
      controllerMetrics: (name) => this.metrics.controller(name),
    });
    this.controllers = built.controllers;
    this.enqueue = built.enqueue;
    const { fleet } = this;

    const leaderGauge = this.metrics.leader.labels({ name: 'statemanager' });
    leaderGauge.set(0);
    this.manager = new Manager({
      caches: fleet.caches,
      resync: (reason) => this.resync(reason),
      resyncPeriodMs: config.controller.resyncPeriod,
      logger,
      ...(leaderLock
        ? {
            leaderElection: {
              identity: this.identity,
              lock: leaderLock,
              retryPeriodMs: Math.max(200, le.leaseDuration / 5),
              onLost: le.onLost,
              onLeaderChange: (leading: boolean) => leaderGauge.set(leading ? 1 : 0),
            },
          }
        : {}),
    });
    for (const c of Object.values(this.controllers)) this.manager.add(c);
    this.probe = new EtcdProbe(this.etcd, this.keys.own, logger);
    this.manager.addReadyCheck('etcd', () => (this.probe.reachable() ? undefined : 'unreachable'));
  }

  get elector(): LeaderElector | undefined {
    return this.manager.elector;
  }

  /** Queues into the controllers (the event mapping and resyncs use the same). */
  enqueuer(): Enqueue {
    return this.enqueue;
  }

  /** Watch at once (and probe etcd); workers start once every informer has synced. */
  start(): Promise<void> {
    this.probe.start();
    return this.manager.start();
  }

  /** Recompute everything from what is in etcd; live events go ahead of this work. */
  resync(reason: string): void {
    const counts = enqueueAll(this.fleet, this.enqueuer(), 'low');
    this.log.info('resync', { reason, ...counts });
  }

  ready(): CheckResult {
    return this.manager.ready();
  }

  isLeader(): boolean {
    return this.manager.isLeader();
  }

  /** Finish in-flight keys, hand leadership over, close the clients. */
  async stop(): Promise<void> {
    await this.probe.stop();
    await this.manager.stop();
    this.closeClients();
  }
}
