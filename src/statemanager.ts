// statemanager's process, loaded by the entry point (src/main.ts): configuration, logging, the
// controller app, the gRPC and HTTP servers, and a clean stop on SIGTERM/SIGINT (stop taking
// work, finish in-flight keys, close clients).
import { parseArgs } from 'node:util';
import { Gauge } from 'prom-client';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { EtcdStateStore } from './etcd/state-store.js';
import { StateFeed } from './state-api/feed.js';
import { StateReader } from './state-api/reader.js';
import { FleetStateCaches } from './state-api/fleet-caches.js';
import { EtcdHistoryStore } from './etcd/history-store.js';
import { EtcdOffloadingStore } from './etcd/offloading-store.js';
import { createStateManagerServer } from './grpc/server.js';
import { HttpServer } from './http/server.js';
import { createLogger } from './observability/logging.js';
import { StateManagerApp } from './app.js';
import { installCrashPolicy } from './process/crash.js';
import { errorMessage } from '../controller/errors.js';
import { applyHeapFlags, growYoungGenerationWithFleet, markStartedUp } from './process/heap.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, allowPositionals: false });
  let config: Config;
  try {
    config = loadConfig(values.config ?? process.env.STATEMANAGER_CONFIG);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`statemanager: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  applyHeapFlags(config.memory);
  growYoungGenerationWithFleet();
  const logger = createLogger(config.log.level, config.log.format);
  const running: { app?: StateManagerApp } = {};
  installCrashPolicy({
    context: () => ({ identity: running.app?.identity, leader: running.app?.isLeader() }),
    onCrash: (origin) => running.app?.metrics.unexpectedExceptions.labels({ origin }).inc(),
  });
  const app = (running.app = new StateManagerApp({ config, logger }));
  const http = new HttpServer({
    addr: config.http.addr,
    registry: app.metrics.registry,
    probes: { ready: () => app.ready(), healthy: () => app.manager.healthy() },
  });

  // Every state change, from one etcd watch (opened with the first subscriber), for every subscriber of this replica.
  const feed = new StateFeed({
    source: app.watchClient,
    keys: app.keys,
    logger,
    maxPausedBehind: config.grpc.limits.subscriberBufferEvents,
    replayWatches: config.grpc.limits.replayWatches,
  });
  // What the read API costs etcd: the shared watch plus the replays (at most grpc.limits.replayWatches).
  new Gauge({
    name: 'statemanager_api_etcd_watches',
    help: 'etcd watches held for SubscribeToStateChanges: the shared one and the replays from before the resume buffer',
    registers: [app.metrics.registry],
    collect() {
      this.set(feed.etcdWatches);
    },
  });
  // Every replica serves gRPC; scenario writes are compare-and-swap, so they need no leader guard.
  const grpcServer = createStateManagerServer({
    client: app.etcd,
    keys: app.keys,
    store: new EtcdStateStore({
      client: app.etcd,
      keys: app.keys,
      historyLength: config.history.length,
      requestTimeoutMs: config.etcd.requestTimeout,
    }),
    logger,
    observer: app.observer,
    config: config.grpc,
    credentialsReloadMs: config.grpc.credentialsReloadInterval,
    requestTimeoutMs: config.etcd.requestTimeout,
    metrics: {
      request: (method, code) => app.metrics.grpcRequests.labels({ method, code }).inc(),
      anonymousBeyondLoopback: (on) => app.metrics.grpcAnonymousAllowed.set(on ? 1 : 0),
      credentials: app.metrics.credentials(),
    },
    // The replica's own caches: every replica keeps them, leader or not.
    placement: app.fleet,
    // TriggerOffloading: checked against the same caches, sent on the Reconcile client's connection.
    offloading: {
      actionController: app.offloadModel,
      records: new EtcdOffloadingStore({ client: app.etcd, keys: app.keys, requestTimeoutMs: config.etcd.requestTimeout, perModel: config.grpc.limits.offloadingRecordsPerModel }),
      definitions: app.fleet,
      counted: (outcome) => app.metrics.offloadingRequests.labels({ outcome }).inc(),
    },
    readApi: {
      reader: new StateReader(new FleetStateCaches(app.fleet), new EtcdHistoryStore(app.etcd, app.keys, config.etcd.requestTimeout)),
      feed,
      metrics: {
        opened: () => app.metrics.apiSubscriptions.inc(),
        closed: () => app.metrics.apiSubscriptions.dec(),
        sent: (n) => app.metrics.apiEventsSent.inc(n),
        cut: (reason) => app.metrics.apiSubscriptionsCut.labels({ reason }).inc(),
      },
    },
  });

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    const force = setTimeout(() => {
      logger.error('stop took too long, exiting');
      process.exit(1);
    }, 25_000);
    force.unref();
    await grpcServer.stop();
    feed.stop();
    await app.stop();
    await http.stop();
    logger.info('stopped');
    logger.end();
    process.exitCode = 0;
  };
  // leaderElection.onLost: exit — leave it to the supervisor (Kubernetes, systemd) to restart us.
  void app.elector?.exited.then(async (reason) => {
    logger.error('leadership lost, exiting as configured', { reason });
    await stop('leadership lost');
    process.exitCode = 1;
  });
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  const port = await http.start();
  const grpc = await grpcServer.start();
  logger.info('statemanager starting', {
    etcd: config.etcd.endpoints,
    keyPrefix: config.keyPrefix,
    http: `${config.http.addr.replace(/:\d+$/, '')}:${port}`,
    grpc: `${config.grpc.addr.replace(/:\d+$/, '')}:${grpc.port}`,
    actionController: config.actionController.addr,
    workers: config.controller.workers,
  });
  await app.start();
  markStartedUp();
  logger.info('statemanager ready');
}

main().catch((err: unknown) => {
  process.stderr.write(`statemanager: ${errorMessage(err)}\n`);
  process.exit(1);
});
