// The composition root of the program, and the only one: etcd clients, the fleet (the
// informers' read model), the guarded state store, the controllers (reconcilers/controllers.ts)
// under the Manager, and what every replica serves: gRPC (scenario writes, TriggerOffloading,
// the state API's reads and subscriptions) and HTTP (probes, metrics). The lifecycle (start
// order, leadership, resync, readiness) is the Manager's; the process around it (configuration,
// signals, crash policy) is src/statemanager.ts's. Nothing here keeps state of its own.
import type { Etcd3 } from 'etcd3';
import { hostname } from 'node:os';
import type { LeaderElector, LeaderLock } from '../controller/leader-election.js';
import type { Logger } from '../controller/logger.js';
import { Manager, type CheckResult } from '../controller/manager.js';
import { buildControllers } from '../reconcilers/controllers.js';
import { enqueueAll, type Enqueue } from '../reconcilers/event-mapping.js';
import { Fleet } from '../reconcilers/fleet.js';
import { UndefinedScenarios } from '../reconcilers/undefined-scenarios.js';
import { KeyLayout } from '../domain/keys.js';
import { LagTracker } from '../reconcilers/lag-tracker.js';
import { systemClock, type ActionControllerClient, type Clock } from '../reconcilers/ports.js';
import { GrpcActionControllerClient, type OffloadModelClient } from './action-controller/client.js';
import type { Config } from './config/config.js';
import { createEtcdClient, createEtcdWatchClient } from './etcd/client.js';
import { EtcdHistoryStore } from './etcd/history-store.js';
import { EtcdHistoryNames } from './etcd/history-names.js';
import { HistorySweep } from '../reconcilers/history-sweep.js';
import { historyKey } from '../reconcilers/history-reconciler.js';
import { EtcdLeaderLock } from './etcd/leader-lock.js';
import { EtcdListerWatcher } from './etcd/lister-watcher.js';
import { countPrefix } from './etcd/prefix-counts.js';
import { EtcdOffloadingStore } from './etcd/offloading-store.js';
import { EtcdProbe } from './etcd/probe.js';
import { etcdReplayMarker } from './etcd/replay-marker.js';
import { etcdPreviousValues } from './etcd/previous-values.js';
import { EtcdStuckConnections } from './etcd/stuck-connections.js';
import { RecentLists } from './grpc/container-sync.js';
import { ConnectDeadline } from './grpc/connect-deadline.js';
import { EtcdStateStore } from './etcd/state-store.js';
import type { EtcdWatchClient } from './etcd/watch-client.js';
import { createStateManagerServer, type StateManagerServer } from './grpc/server.js';
import { HttpServer } from './http/server.js';
import { maintainFleetGauges } from './observability/gauges.js';
import { Metrics } from './observability/metrics.js';
import { clientCertificates } from './observability/client-certificates.js';
import { LoggingObserver } from './observability/observer.js';
import { StateFeed } from './state-api/feed.js';
import { FleetStateCaches } from './state-api/fleet-caches.js';
import { StateReader } from './state-api/reader.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics?: Metrics;
  etcd?: Etcd3;
  actionController?: ActionControllerClient;
  /** TriggerOffloading's way to the ActionController; by default the client Reconcile uses. */
  offloadModel?: OffloadModelClient;
  clock?: Clock;
  /** Told when a list shows the fleet is larger than a vehicle (a full page of keys): src/main.ts turns V8's optimizing compilers on. */
  onLargeFleet?: () => void;
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
  private readonly enqueue: Enqueue;
  private readonly probe: EtcdProbe;
  private readonly stuckConnections: EtcdStuckConnections;
  /** Every state change from one etcd watch (opened with the first subscriber), for every subscriber of this replica. */
  private readonly feed: StateFeed;
  private readonly grpc: StateManagerServer;
  private readonly http: HttpServer;
  private readonly log: Logger;
  private readonly closeClients: () => void;

  constructor(deps: AppDeps) {
    const { config, logger } = deps;
    this.log = logger;
    const keys = (this.keys = new KeyLayout(config.keyPrefix));
    // Members that let a call wait past its deadline and have not answered since (a hung member).
    const hungMembers = new Set<string>();
    const etcd = (this.etcd =
      deps.etcd ??
      createEtcdClient(config.etcd, {
        onMemberHung: (member, forMs) => {
          hungMembers.add(member);
          logger.warn('etcd member let a call run out of its deadline: calls go to the other members meanwhile', { member, skippedForMs: forMs });
        },
        onMemberAnswered: (member) => {
          hungMembers.delete(member);
          logger.info('etcd member answers again', { member });
        },
      }));
    this.watchClient = createEtcdWatchClient(config.etcd);
    const metrics = (this.metrics = deps.metrics ?? new Metrics());
    for (const c of clientCertificates(config)) metrics.clientCertificateExpiry.labels({ what: c.what }).set(c.expiresAt);
    const observer = (this.observer = new LoggingObserver(logger, metrics));
    const requestTimeoutMs = config.etcd.requestTimeout;
    const le = config.leaderElection;
    this.identity = le.identity || `${hostname()}-${process.pid}`;
    const leaderLock = le.enabled
      ? new EtcdLeaderLock({ client: etcd, watcher: this.watchClient, key: keys.leader, identity: this.identity, leaseSeconds: Math.max(1, Math.round(le.leaseDuration / 1000)), requestTimeoutMs, logger })
      : undefined;

    const clock = deps.clock ?? systemClock;
    const liveness = { enabled: config.nodeLiveness.enabled, graceMs: config.nodeLiveness.grace };
    const fleet = (this.fleet = new Fleet({ keys, lw: new EtcdListerWatcher(etcd, this.watchClient, undefined, undefined, deps.onLargeFleet), observer, logger, metrics: metrics.informers(), liveness, clock }));
    maintainFleetGauges(metrics, fleet);
    const historyLength = config.history.length;
    this.store = new EtcdStateStore({ client: etcd, txn: this.watchClient, keys, historyLength, requestTimeoutMs, maxTxnOps: config.grpc.etcdMaxTxnOps, logger, ...(leaderLock ? { guard: leaderLock } : {}), onCommit: (changes) => fleet.caches.assume(changes), ownPuts: fleet.caches });
    const ac = config.actionController;
    const ownedActionController = deps.actionController && deps.offloadModel ? undefined : new GrpcActionControllerClient({ addr: ac.addr, timeoutMs: ac.timeout, offloadTimeoutMs: ac.offloadTimeout, tls: ac.tls, onConnectTimeout: () => metrics.connectTimeouts.labels({ peer: 'action_controller' }).inc() });
    this.offloadModel = deps.offloadModel ?? ownedActionController!;
    this.closeClients = () => {
      ownedActionController?.close();
      this.watchClient.close();
      if (!deps.etcd) this.etcd.close();
    };

    const { controllers, enqueue, passes } = buildControllers({
      fleet,
      store: this.store,
      actionController: deps.actionController ?? ownedActionController!, observer, clock, logger,
      source: `controller/${this.identity}`,
      lag: new LagTracker(() => performance.now(), (s) => metrics.lag.observe(s)),
      triggerStates: new Set(config.reconcile.triggerStates),
      repeat: { initialMs: config.reconcile.repeatInitial, capMs: config.reconcile.repeatCap },
      settings: {
        keyBackoff: { base: config.controller.backoffBase, cap: config.controller.backoffCap },
        requestBackoff: { base: config.reconcile.retryBase, cap: config.reconcile.retryCap },
        workers: config.controller.workers,
        requestWorkers: config.reconcile.workers,
      },
      queueMetrics: (name) => metrics.queue(name), controllerMetrics: (name) => metrics.controller(name),
      ...(leaderLock ? { mayAct: () => leaderLock.mayAct() } : {}),
    });
    this.enqueue = enqueue;
    metrics.resyncModelsPending(() => passes.dueCount());
    metrics.etcdMembersHung(() => hungMembers.size);
    this.manager = this.buildManager(config, leaderLock);
    for (const c of Object.values(controllers)) this.manager.add(c);
    if (config.history.sweepAfter > 0) {
      this.manager.add(
        new HistorySweep({
          names: new EtcdHistoryNames({ client: etcd, keys, requestTimeoutMs }),
          storedVersion: (kind, name) => fleet.storedState(kind, name)?.version,
          queue: (kind, name) => controllers.history.enqueue(historyKey(kind, name)),
          logger,
          delayMs: config.history.sweepAfter,
        }),
      );
    }
    this.probe = new EtcdProbe({
      client: etcd, key: keys.own, logger,
      lookAgainAfterDeadline: config.etcd.endpoints.length > 1,
      alarmGauge: (alarm, members) => metrics.etcdAlarms.labels({ alarm }).set(members),
      revisionGauge: (revision) => metrics.etcdRevision.set(revision),
      // Keys that failed meanwhile wait out their backoff (up to controller.backoffCap): now, not then.
      onAlarmsCleared: () => this.resync('etcd alarm cleared'),
    });
    this.manager.addReadyCheck('etcd', () => (this.probe.reachable() ? undefined : this.probe.credentialsRefused() ? 'refused our credentials or permissions' : 'unreachable'));
    // etcd's request timeout is also its dial timeout (createEtcdClient): a connection attempt gets as long.
    this.stuckConnections = new EtcdStuckConnections({
      etcd, watchClient: this.watchClient, logger,
      deadline: new ConnectDeadline(requestTimeoutMs),
      onReset: () => metrics.connectTimeouts.labels({ peer: 'etcd' }).inc(),
    });

    const limits = config.grpc.limits;
    const undefinedScenarios = new UndefinedScenarios(fleet);
    metrics.scenarioStatesWithoutDefinition(() => undefinedScenarios.undefinedScenarioStates());
    this.feed = new StateFeed({
      source: this.watchClient, keys, logger, maxPausedBehind: limits.subscriberBufferEvents, replayWatches: limits.replayWatches, disconnectedCutMs: requestTimeoutMs,
      // Any replica may write it: one key, rewritten by each replay that has no buffered change to wait for.
      markReplay: etcdReplayMarker(etcd, keys, this.identity, requestTimeoutMs),
      // Once per key a replay touches, instead of etcd looking up every event's previous value.
      lookUpPrevious: etcdPreviousValues(etcd, requestTimeoutMs),
      // Linearizable, so a lagging member is not taken for etcd being behind the client.
      etcdRevision: async () => Number((await etcd.kv.range({ key: Buffer.from(keys.replayMarker), count_only: true }, { deadline: Date.now() + requestTimeoutMs })).header.revision),
    });
    metrics.apiEtcdWatches(() => this.feed.etcdWatches);
    // etcd restored behind what was seen: once every cache has taken the new history as it is,
    // the feed starts again and every key is recomputed (states written in the lost history are gone).
    const recentLists = new RecentLists();
    fleet.caches.onHistoryReplaced((detail) => {
      this.feed.historyReplaced(detail);
      // The container lists written before say nothing of what the restored etcd holds.
      recentLists.clear();
      this.resync(`etcd history replaced (${detail})`);
    });
    // Every replica serves gRPC; scenario writes are compare-and-swap, so their store needs no leader guard.
    this.grpc = createStateManagerServer({
      client: etcd, keys, logger, observer, requestTimeoutMs, metrics: metrics.grpc(),
      store: new EtcdStateStore({ client: etcd, txn: this.watchClient, keys, historyLength, requestTimeoutMs, maxTxnOps: config.grpc.etcdMaxTxnOps, logger }),
      config: config.grpc,
      recentLists,
      credentialsReloadMs: config.grpc.credentialsReloadInterval,
      // The replica's own caches: every replica keeps them, leader or not.
      placement: fleet,
      scenarios: undefinedScenarios,
      // TriggerOffloading: checked against the same caches, sent on the Reconcile client's connection.
      offloading: {
        actionController: this.offloadModel,
        records: new EtcdOffloadingStore({ client: etcd, keys, requestTimeoutMs, perModel: limits.offloadingRecordsPerModel }),
        definitions: fleet,
        counted: (outcome) => metrics.offloadingRequest(outcome),
      },
      readApi: { reader: new StateReader(new FleetStateCaches(fleet, (kind, since) => countPrefix(etcd, keys.statePrefix(kind), since, requestTimeoutMs)), new EtcdHistoryStore(etcd, keys, requestTimeoutMs, () => !this.probe.knownUnreachable())), feed: this.feed, metrics: metrics.subscriptions(), loading: () => (this.fleet.caches.hasSynced() ? undefined : 'its caches have not loaded the states from etcd yet') },
    });
    this.http = new HttpServer({
      addr: config.http.addr,
      registry: metrics.registry,
      probes: { ready: () => this.ready(), healthy: () => this.manager.healthy() },
      connectionRefused: () => metrics.httpConnectionsRefused.inc(),
    });
  }

  private buildManager(config: Config, lock: LeaderLock | undefined): Manager {
    const le = config.leaderElection;
    const leaderGauge = this.metrics.leader.labels({ name: 'statemanager' });
    // Without leader election this replica does all the work: it is the leader (found by an
    // operator's audit: 0 on the only writer, and the dashboard's leader panel showed nobody).
    leaderGauge.set(lock ? 0 : 1);
    let led = false;
    const onLeaderChange = (leading: boolean): void => {
      leaderGauge.set(leading ? 1 : 0);
      if (led && !leading) this.metrics.leadershipLost.inc();
      led = leading;
    };
    return new Manager({
      caches: this.fleet.caches,
      resync: (reason) => this.resync(reason),
      resyncPeriodMs: config.controller.resyncPeriod,
      logger: this.log,
      ...(lock ? { leaderElection: { identity: this.identity, lock, retryPeriodMs: Math.max(200, le.leaseDuration / 5), onLost: le.onLost, onLeaderChange } } : {}),
    });
  }

  get elector(): LeaderElector | undefined {
    return this.manager.elector;
  }

  /** Bind and serve HTTP (probes, metrics) and gRPC; resolves with the bound ports. */
  async serve(): Promise<{ http: number; grpc: number }> {
    const http = await this.http.start();
    const { port: grpc } = await this.grpc.start();
    return { http, grpc };
  }

  /** Watch at once (and probe etcd); workers start once every informer has synced. */
  start(): Promise<void> {
    this.probe.start();
    this.stuckConnections.start();
    return this.manager.start();
  }

  /** Recompute everything from what is in etcd; live events go ahead of this work. */
  resync(reason: string): void {
    const counts = enqueueAll(this.fleet, this.enqueue, 'low');
    this.log.info('resync', { reason, ...counts });
  }

  ready(): CheckResult {
    return this.manager.ready();
  }

  isLeader(): boolean {
    return this.manager.isLeader();
  }

  /** Stop serving, finish in-flight keys, hand leadership over, close the clients. */
  async stop(): Promise<void> {
    await this.grpc.stop();
    this.feed.stop();
    await this.probe.stop();
    await this.stuckConnections.stop();
    await this.manager.stop();
    this.closeClients();
    await this.http.stop();
  }
}
