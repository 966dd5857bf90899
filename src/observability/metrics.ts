// Prometheus metrics with the names operators know from client-go and controller-runtime,
// plus statemanager's own. One Registry per process (injected, never global), so tests can
// run several instances side by side.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** prom-client's default gauges whose names end in _total, which Prometheus keeps for counters. */
const GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
import type { InformerMetrics, WatchRestartReason } from '../../controller/informer.js';
import type { ControllerMetrics, QueueMetricsProvider } from '../../controller/metrics.js';
import { HotSeries, type HotCounter } from './hot-metrics.js';
import type { ReloadMetrics } from '../process/file-reloader.js';
import type { Count, FleetGaugeSink } from './gauges.js';

const QUEUE_BUCKETS = [1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
const RECONCILE_BUCKETS = [5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/**
 * How often the event-loop lag histogram (nodejs_eventloop_lag_*) samples, in ms. prom-client's
 * default, 10 ms, woke an idle statemanager 100 times a second, about 1 % of a core on the bench
 * machine; at 100 ms a stall of 100 ms or more is still always seen, shorter ones in proportion.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

export class Metrics implements FleetGaugeSink {
  readonly registry: Registry;
  private readonly hot = new HotSeries();
  /** statemanager_state_transitions_total's series by kind, from and to. */
  private readonly transitionCounters = new Map<string, Map<string, Map<string, HotCounter>>>();
  private readonly q: {
    depth: Gauge<'name'>;
    adds: Counter<'name'>;
    latency: Histogram<'name'>;
    work: Histogram<'name'>;
    unfinished: Gauge<'name'>;
    longest: Gauge<'name'>;
    retries: Counter<'name'>;
  };
  private readonly c: {
    total: Counter<'controller' | 'result'>;
    errors: Counter<'controller'>;
    time: Histogram<'controller'>;
    workers: Gauge<'controller'>;
  };
  readonly transitions: Counter<'kind' | 'from' | 'to'>;
  readonly reconcileRequests: Counter<'result'>;
  private readonly pendingGauge: Gauge;
  readonly invalidInput: Counter<'reason'>;
  readonly watchRestarts: Counter<'informer' | 'reason'>;
  readonly etcdRevision: Gauge;
  readonly etcdAlarms: Gauge<'alarm'>;
  readonly connectTimeouts: Counter<'peer'>;
  readonly unexpectedExceptions: Counter<'origin'>;
  readonly lastRevision: Gauge<'informer'>;
  readonly leader: Gauge<'name'>;
  readonly leadershipLost: Counter;
  readonly grpcRequests: Counter<'method' | 'code'>;
  /** TriggerOffloading requests by outcome (accepted, rejected, unavailable, timeout, invalid, not_found, denied, not_ready, over_budget). */
  readonly offloadingRequests: Counter<'outcome'>;
  readonly grpcAnonymousAllowed: Gauge;
  readonly grpcConnections: Gauge;
  readonly httpConnectionsRefused: Counter;
  private containerListsWaitingNow: () => number = () => 0;
  private listSendsNow: () => { waiting: number; inFlight: number } = () => ({ waiting: 0, inFlight: 0 });
  readonly grpcConnectionsRefused: Counter<'reason'>;
  readonly apiSubscriptions: Gauge;
  readonly apiEventsSent: Counter;
  readonly apiSubscriptionsCut: Counter<'reason'>;
  readonly lag: Histogram;
  private readonly resourceGauge: Gauge<'kind' | 'state'>;
  readonly credentialReloads: Counter<'what' | 'outcome'>;
  readonly credentialsLoaded: Gauge<'what'>;
  readonly clientCertificateExpiry: Gauge<'what'>;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    const registry = (this.registry = options.registry ?? new Registry());
    if (options.defaultMetrics !== false) {
      collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
      // prom-client's gauges named like counters fail `promtool check metrics` (a black-box probe):
      // the same counts stay, by type, in nodejs_active_{handles,requests,resources}.
      for (const name of GAUGES_NAMED_TOTAL) registry.removeSingleMetric(name);
    }
    const r = [registry];
    // Series moved on every key fold their plain-number counts in at collection (hot-metrics.ts).
    const collect = (): void => this.hot.flush();
    this.q = {
      depth: new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers: r, collect }),
      adds: new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers: r, collect }),
      latency: new Histogram({
        name: 'workqueue_queue_duration_seconds',
        help: 'How long in seconds an item stays in workqueue before being requested',
        labelNames: ['name'],
        buckets: QUEUE_BUCKETS,
        registers: r,
        collect,
      }),
      work: new Histogram({
        name: 'workqueue_work_duration_seconds',
        help: 'How long in seconds processing an item from workqueue takes',
        labelNames: ['name'],
        buckets: QUEUE_BUCKETS,
        registers: r,
        collect,
      }),
      unfinished: new Gauge({
        name: 'workqueue_unfinished_work_seconds',
        help: 'How many seconds of work has been done that is in progress and has not been observed by work_duration',
        labelNames: ['name'],
        registers: r,
      }),
      longest: new Gauge({
        name: 'workqueue_longest_running_processor_seconds',
        help: 'How many seconds has the longest running processor for workqueue been running',
        labelNames: ['name'],
        registers: r,
      }),
      retries: new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers: r, collect }),
    };
    this.c = {
      total: new Counter({
        name: 'controller_runtime_reconcile_total',
        help: 'Total number of reconciliations per controller',
        labelNames: ['controller', 'result'],
        registers: r,
      collect,
      }),
      errors: new Counter({
        name: 'controller_runtime_reconcile_errors_total',
        help: 'Total number of reconciliation errors per controller',
        labelNames: ['controller'],
        registers: r,
      }),
      time: new Histogram({
        name: 'controller_runtime_reconcile_time_seconds',
        help: 'Length of time per reconciliation per controller',
        labelNames: ['controller'],
        buckets: RECONCILE_BUCKETS,
        registers: r,
        collect,
      }),
      workers: new Gauge({
        name: 'controller_runtime_active_workers',
        help: 'Number of currently used workers per controller',
        labelNames: ['controller'],
        registers: r,
      collect,
      }),
    };
    this.transitions = new Counter({
      name: 'statemanager_state_transitions_total',
      help: 'State changes written, by kind and from/to state ("none" for a new or deleted state)',
      labelNames: ['kind', 'from', 'to'],
      registers: r,
      collect,
    });
    this.reconcileRequests = new Counter({
      name: 'statemanager_reconcile_requests_total',
      help: 'Reconcile requests to the ActionController by result (created, delivered, failed, cleared)',
      labelNames: ['result'],
      registers: r,
    });
    this.pendingGauge = new Gauge({
      name: 'statemanager_reconcile_requests_pending',
      help: 'Reconcile requests written but not yet delivered to the ActionController',
      registers: r,
      collect,
    });
    this.invalidInput = new Counter({
      name: 'statemanager_invalid_input_total',
      help: 'Bad input skipped (malformed values, unknown statuses, unexpected keys), by reason',
      labelNames: ['reason'],
      registers: r,
    });
    this.watchRestarts = new Counter({
      name: 'statemanager_watch_restarts_total',
      help: 'Watch interruptions by informer and reason (compacted, error, disconnected)',
      labelNames: ['informer', 'reason'],
      registers: r,
    });
    this.etcdAlarms = new Gauge({
      name: 'statemanager_etcd_alarms',
      help: "etcd members with each alarm raised (NOSPACE: out of space, CORRUPT), as read every 2 s; while above 0 etcd refuses every write",
      labelNames: ['alarm'],
      registers: r,
    });
    this.connectTimeouts = new Counter({
      name: 'statemanager_grpc_client_connect_timeouts_total',
      help: 'Connection attempts to etcd or the ActionController given up after their deadline (etcd.requestTimeout, actionController.timeout) and started again',
      labelNames: ['peer'],
      registers: r,
    });
    this.unexpectedExceptions = new Counter({
      name: 'statemanager_unexpected_exceptions_total',
      help: 'Exceptions nothing handled; each ends the process (exit 70) for the supervisor to restart',
      labelNames: ['origin'],
      registers: r,
    });
    this.lastRevision = new Gauge({
      name: 'statemanager_informer_last_revision',
      help: 'The last etcd revision each informer has applied',
      labelNames: ['informer'],
      registers: r,
      collect,
    });
    this.etcdRevision = new Gauge({
      name: 'statemanager_etcd_revision',
      help: "etcd's current revision, as the etcd probe last read it (every 2 s): an informer's statemanager_informer_last_revision far below it is a watch behind etcd",
      registers: r,
    });
    this.leader = new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
      labelNames: ['name'],
      registers: r,
    });
    // A gauge scraped every 15 s misses a flap of a few seconds; a counter does not.
    this.leadershipLost = new Counter({
      name: 'statemanager_leadership_lost_total',
      help: 'Times this replica lost the leadership it held (lease not renewed in time, taken over, or given up)',
      registers: r,
    });
    this.apiSubscriptions = new Gauge({
      name: 'statemanager_api_subscriptions',
      help: 'Open SubscribeToStateChanges streams on this replica',
      registers: r,
    });
    this.apiEventsSent = new Counter({
      name: 'statemanager_api_events_sent_total',
      help: 'State change events sent to subscribers',
      registers: r,
    });
    this.apiSubscriptionsCut = new Counter({
      name: 'statemanager_api_subscriptions_cut_total',
      help: 'Subscriptions ended by statemanager: slow (fell too far behind), compacted (resume revision gone), future (resume revision past etcd\'s), restarted, stopped',
      labelNames: ['reason'],
      registers: r,
    });
    this.grpcAnonymousAllowed = new Gauge({
      name: 'statemanager_grpc_anonymous_allowed',
      help: '1 when grpc.auth.allowAnonymous is true: callers without a certificate or token are served from anywhere',
      registers: r,
    });
    this.grpcConnections = new Gauge({
      name: 'statemanager_grpc_connections',
      help: 'gRPC connections open (TCP, before TLS and any call)',
      registers: r,
    });
    this.grpcConnectionsRefused = new Counter({
      name: 'statemanager_grpc_connections_refused_total',
      help: 'gRPC connections closed as they were accepted: peer (grpc.limits.connectionsPerPeer from one address), rate (grpc.limits.connectionsPerSecondPerPeer) or total (grpc.limits.maxConnections)',
      labelNames: ['reason'],
      registers: r,
    });
    this.sampledGauge('statemanager_grpc_container_lists_waiting', 'SendChangedContainerList calls waiting for a turn to write (grpc.limits.containerListsAtOnce)', () =>
      this.containerListsWaitingNow(),
    );
    this.sampledGauge('statemanager_grpc_lists_waiting', 'Long ListResourcesByState calls waiting for a turn to be made and sent (grpc.limits.listBytesInFlight)', () => this.listSendsNow().waiting);
    this.sampledGauge('statemanager_grpc_list_bytes_in_flight', 'Bytes of long ListResourcesByState answers being made and sent (at most grpc.limits.listBytesInFlight, or one answer)', () => this.listSendsNow().inFlight);
    this.httpConnectionsRefused = new Counter({
      name: 'statemanager_http_connections_refused_total',
      help: 'Connections to the probe and metrics port closed as they came: that many were open already',
      registers: r,
    });
    this.grpcRequests = new Counter({
      name: 'statemanager_grpc_requests_total',
      help: 'gRPC requests served, by method and code',
      labelNames: ['method', 'code'],
      registers: r,
    });
    this.offloadingRequests = new Counter({
      name: 'statemanager_offloading_requests_total',
      help: 'TriggerOffloading requests by outcome: accepted or rejected by the ActionController, unavailable, timeout, or refused before it (invalid, not_found, denied, not_ready, over_budget)',
      labelNames: ['outcome'],
      registers: r,
    });
    this.lag = new Histogram({
      name: 'statemanager_container_to_package_lag_seconds',
      help: 'Time from seeing a container change to writing the package state it caused',
      buckets: [1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    });
    this.resourceGauge = new Gauge({
      name: 'statemanager_resources',
      help: 'Resources by kind and current state',
      labelNames: ['kind', 'state'],
      registers: r,
      collect,
    });
    this.credentialReloads = new Counter({
      name: 'statemanager_credentials_reloads_total',
      help: 'Changed credential files (what: grpc_tls, grpc_tokens) put in service (outcome="success") or refused, the old ones kept (outcome="error")',
      labelNames: ['what', 'outcome'],
      registers: r,
    });
    this.credentialsLoaded = new Gauge({
      name: 'statemanager_credentials_last_reload_timestamp_seconds',
      help: 'When the credentials in service were loaded from their files (at start or by the last successful reload), Unix seconds',
      labelNames: ['what'],
      registers: r,
    });
    this.clientCertificateExpiry = new Gauge({
      name: 'statemanager_client_certificate_expiry_timestamp_seconds',
      help: 'When the client certificate statemanager presents expires (what: etcd_client, action_controller_client), Unix seconds; read once at start, so a renewed one needs a restart',
      labelNames: ['what'],
      registers: r,
    });
  }

  /** statemanager_resources{kind, state}, moved as the caches change (gauges.ts). */
  resources(kind: 'model' | 'package', state: string): Count {
    return this.hot.gaugeFor(`${kind}\0${state}`, this.resourceGauge, () => ({ kind, state }));
  }

  /** statemanager_reconcile_requests_pending, moved as the cache changes. */
  reconcileRequestsPending(): Count {
    return this.hot.gaugeFor('pending', this.pendingGauge, () => ({}));
  }

  /** What the gRPC server counts: calls by method and code, the anonymous-access flag, credential reloads. */
  grpc(): {
    request(method: string, code: string): void;
    anonymousBeyondLoopback(on: boolean): void;
    credentials: ReloadMetrics;
    connections: { open(count: number): void; refused(reason: string): void };
    containerListsWaiting(read: () => number): void;
    listSends(read: () => { waiting: number; inFlight: number }): void;
  } {
    return {
      request: (method, code) => this.grpcRequests.labels({ method, code }).inc(),
      anonymousBeyondLoopback: (on) => this.grpcAnonymousAllowed.set(on ? 1 : 0),
      credentials: this.credentials(),
      containerListsWaiting: (read) => {
        this.containerListsWaitingNow = read;
      },
      listSends: (read) => {
        this.listSendsNow = read;
      },
      connections: {
        open: (n) => this.grpcConnections.set(n),
        refused: (reason) => this.grpcConnectionsRefused.labels({ reason }).inc(),
      },
    };
  }

  /** What the read API's subscriptions count: open streams, events sent, streams cut by reason. */
  subscriptions(): { opened(): void; closed(): void; sent(n: number): void; cut(reason: string): void } {
    return {
      opened: () => this.apiSubscriptions.inc(),
      closed: () => this.apiSubscriptions.dec(),
      sent: (n) => this.apiEventsSent.inc(n),
      cut: (reason) => this.apiSubscriptionsCut.labels({ reason }).inc(),
    };
  }

  /** statemanager_offloading_requests_total{outcome} += 1 */
  offloadingRequest(outcome: string): void {
    this.offloadingRequests.labels({ outcome }).inc();
  }

  /**
   * statemanager_api_etcd_watches: what the read API costs etcd (the shared watch plus the
   * replays), read from `count` at each scrape. Once per registry.
   */
  apiEtcdWatches(count: () => number): void {
    this.sampledGauge('statemanager_api_etcd_watches', 'etcd watches held for SubscribeToStateChanges: the shared one and the replays from before the resume buffer', count);
  }

  /** statemanager_etcd_members_hung, read from `count` at each scrape. Once per registry. */
  etcdMembersHung(count: () => number): void {
    this.sampledGauge(
      'statemanager_etcd_members_hung',
      "etcd members that let a call wait past its deadline and have not answered one since: etcd's unary calls go to the other members while any answers",
      count,
    );
  }

  /** statemanager_scenario_states_without_definition, read from `count` at each scrape. Once per registry. */
  scenarioStatesWithoutDefinition(count: () => number): void {
    this.sampledGauge(
      'statemanager_scenario_states_without_definition',
      'Scenario states held whose Scenario/{name} definition is absent (bounded by grpc.limits.undefinedScenarioStates)',
      count,
    );
  }

  /** statemanager_resync_models_pending, read from `count` at each scrape. Once per registry. */
  resyncModelsPending(count: () => number): void {
    this.sampledGauge('statemanager_resync_models_pending', "Models a resync queued whose pass has not run yet: the packages listing them wait for it", count);
  }

  /** A gauge set from `read()` at each scrape: nothing to keep up to date between scrapes. */
  private sampledGauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** Where the credential files' reloads are counted (what: grpc_tls, grpc_tokens). */
  credentials(): ReloadMetrics {
    return {
      reloaded: (what, outcome) => this.credentialReloads.labels({ what, outcome }).inc(),
      loaded: (what, epochSeconds) => {
        // Both outcomes exist from the first load, so an alert on errors sees a zero first.
        for (const outcome of ['success', 'error']) this.credentialReloads.labels({ what, outcome }).inc(0);
        this.credentialsLoaded.labels({ what }).set(epochSeconds);
      },
    };
  }

  queue(name: string): QueueMetricsProvider {
    const l = { name };
    return {
      depth: this.hot.gauge(this.q.depth, l),
      adds: this.hot.counter(this.q.adds, l),
      latency: this.hot.histogram(this.q.latency, l),
      workDuration: this.hot.histogram(this.q.work, l),
      unfinishedWorkSeconds: this.q.unfinished.labels(l),
      longestRunningProcessorSeconds: this.q.longest.labels(l),
      retries: this.hot.counter(this.q.retries, l),
    };
  }

  controller(name: string): ControllerMetrics {
    // Every series exists from the start, so dashboards see zeros rather than gaps.
    const results = ['success', 'error', 'requeue', 'requeue_after', 'unavailable'] as const;
    const totals = new Map(results.map((result) => [result, this.hot.counter(this.c.total, { controller: name, result })]));
    // inc(0): a series exists only once touched (found by an operator's audit: none until the first error).
    this.c.errors.labels({ controller: name }).inc(0);
    const workers = this.hot.gauge(this.c.workers, { controller: name });
    const time = this.hot.histogram(this.c.time, { controller: name });
    return {
      reconcileTotal: (result) => totals.get(result)!.inc(),
      reconcileError: () => this.c.errors.labels({ controller: name }).inc(),
      reconcileTime: (s) => time.observe(s),
      activeWorkers: (d) => workers.inc(d),
    };
  }

  /** statemanager_state_transitions_total{kind, from, to} += 1 */
  transition(kind: string, from: string, to: string): void {
    // Found by the three names in turn, not by a joined string built (and hashed) per change.
    let byFrom = this.transitionCounters.get(kind);
    if (byFrom === undefined) this.transitionCounters.set(kind, (byFrom = new Map()));
    let byTo = byFrom.get(from);
    if (byTo === undefined) byFrom.set(from, (byTo = new Map()));
    let counter = byTo.get(to);
    if (counter === undefined) byTo.set(to, (counter = this.hot.counter(this.transitions, { kind, from, to })));
    counter.inc();
  }

  informers(): InformerMetrics {
    return {
      watchRestart: (informer: string, reason: WatchRestartReason) => this.watchRestarts.labels({ informer, reason }).inc(),
      lastRevision: (informer: string, revision: number) => this.hot.gaugeFor(informer, this.lastRevision, () => ({ informer })).set(revision),
    };
  }
}
