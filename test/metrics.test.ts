// The hot series count in plain numbers and fold into prom-client at collection: a scrape must
// read exactly what an inc/dec/set-per-call implementation would have shown.
import test from 'ava';
import { Histogram, Registry } from 'prom-client';
import { Metrics } from '../src/observability/metrics.js';

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('queue, controller, informer and transition series read exact values at every scrape', async (t) => {
  const m = new Metrics({ defaultMetrics: false });
  const q = m.queue('model');
  const c = m.controller('model');
  const inf = m.informers();
  let text = await m.registry.metrics();
  // Series exist (as zeros) before anything happened.
  t.is(value(text, 'workqueue_depth{name="model"}'), 0);
  t.is(value(text, 'controller_runtime_reconcile_total{controller="model",result="error"}'), 0);
  t.is(value(text, 'controller_runtime_reconcile_errors_total{controller="model"}'), 0, 'before the first error too (an operator audit: no series until then)');
  t.is(value(text, 'controller_runtime_active_workers{controller="model"}'), 0);

  for (let i = 0; i < 5; i++) {
    q.adds.inc();
    q.depth.inc();
  }
  q.depth.dec();
  q.retries.inc();
  c.reconcileTotal('success');
  c.reconcileTotal('success');
  c.reconcileTotal('requeue');
  c.activeWorkers(1);
  c.activeWorkers(1);
  c.activeWorkers(-1);
  inf.lastRevision('containers', 41);
  inf.lastRevision('containers', 42);
  m.transition('package', 'none', 'idle');
  m.transition('package', 'idle', 'running');
  m.transition('package', 'idle', 'running');
  text = await m.registry.metrics();
  t.is(value(text, 'workqueue_adds_total{name="model"}'), 5);
  t.is(value(text, 'workqueue_depth{name="model"}'), 4);
  t.is(value(text, 'workqueue_retries_total{name="model"}'), 1);
  t.is(value(text, 'controller_runtime_reconcile_total{controller="model",result="success"}'), 2);
  t.is(value(text, 'controller_runtime_reconcile_total{controller="model",result="requeue"}'), 1);
  t.is(value(text, 'controller_runtime_active_workers{controller="model"}'), 1);
  t.is(value(text, 'statemanager_informer_last_revision{informer="containers"}'), 42);
  t.is(value(text, 'statemanager_state_transitions_total{kind="package",from="idle",to="running"}'), 2);
  t.is(value(text, 'statemanager_state_transitions_total{kind="package",from="none",to="idle"}'), 1);

  // A second scrape with nothing new reads the same (counters are not folded in twice), and
  // later counts add to the folded ones.
  text = await m.registry.metrics();
  t.is(value(text, 'workqueue_adds_total{name="model"}'), 5);
  q.adds.inc();
  q.depth.dec();
  text = await m.registry.metrics();
  t.is(value(text, 'workqueue_adds_total{name="model"}'), 6);
  t.is(value(text, 'workqueue_depth{name="model"}'), 3);
  // A single metric read through prom-client's own API sees the counts too.
  const adds = await m.registry.getSingleMetric('workqueue_adds_total')!.get();
  t.is(adds.values.find((v) => v.labels.name === 'model')?.value, 6);
});

// The queue's and the controller's histograms count in their own buckets and fold into
// prom-client's series at collection: what a scrape reads must equal prom-client observing each
// value itself (every bucket, +Inf, sum and count), at every scrape, and after a reset.
test('hot histograms read exactly what prom-client observing each value shows', async (t) => {
  const hot = new Metrics({ defaultMetrics: false });
  const plain = new Registry();
  const mk = (name: string, labelNames: string[], buckets: number[]) => new Histogram({ name, help: 'h', labelNames, buckets, registers: [plain] });
  const series = (text: string, name: string): string[] => text.split('\n').filter((l) => l.startsWith(name)).sort();
  const QUEUE = [1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
  const RECONCILE = [5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];
  const latency = mk('workqueue_queue_duration_seconds', ['name'], QUEUE);
  const work = mk('workqueue_work_duration_seconds', ['name'], QUEUE);
  const time = mk('controller_runtime_reconcile_time_seconds', ['controller'], RECONCILE);
  const queues = { model: hot.queue('model'), package: hot.queue('package') };
  const c = hot.controller('model');
  // Nothing observed yet: no series, as with prom-client's labelled children.
  t.deepEqual(series(await hot.registry.metrics(), 'workqueue_queue_duration_seconds_'), []);
  const values = [0, 1e-5, 2e-5, 0.00099, 0.001, 0.0025, 0.3, 1, 4.99, 5, 10, 10.5, 1e6, 0.07, 0.07, 3e-6];
  const check = async (): Promise<void> => {
    const a = await hot.registry.metrics();
    const b = await plain.metrics();
    for (const name of ['workqueue_queue_duration_seconds_', 'workqueue_work_duration_seconds_', 'controller_runtime_reconcile_time_seconds_']) {
      t.deepEqual(series(a, name), series(b, name), name);
    }
  };
  for (const [i, v] of values.entries()) {
    const name = i % 3 === 0 ? 'package' : 'model';
    queues[name].latency.observe(v);
    latency.labels({ name }).observe(v);
    queues.model.workDuration.observe(v / 2);
    work.labels({ name: 'model' }).observe(v / 2);
    c.reconcileTime(v * 3);
    time.labels({ controller: 'model' }).observe(v * 3);
  }
  await check();
  await check(); // a second scrape does not fold the same observations in twice
  queues.model.latency.observe(0.2);
  latency.labels({ name: 'model' }).observe(0.2);
  await check();
  // After a reset the series starts again from the next observation.
  hot.registry.resetMetrics();
  plain.resetMetrics();
  queues.package.latency.observe(0.004);
  latency.labels({ name: 'package' }).observe(0.004);
  await check();
  t.throws(() => queues.model.latency.observe(Number.NaN), { instanceOf: TypeError });
});

test('gRPC connection and container-list series: the waiting lists are read at each scrape; connections and refusals as told', async (t) => {
  const m = new Metrics({ defaultMetrics: false });
  const g = m.grpc();
  const value = async (name: string): Promise<string> => (await m.registry.getSingleMetricAsString(name)).split('\n').filter((l) => l.startsWith(name)).join('\n');
  t.is(await value('statemanager_grpc_container_lists_waiting'), 'statemanager_grpc_container_lists_waiting 0', 'nothing told yet');
  let waiting = 7;
  g.containerListsWaiting(() => waiting);
  t.is(await value('statemanager_grpc_container_lists_waiting'), 'statemanager_grpc_container_lists_waiting 7');
  waiting = 0;
  t.is(await value('statemanager_grpc_container_lists_waiting'), 'statemanager_grpc_container_lists_waiting 0');
  t.is(await value('statemanager_grpc_lists_waiting'), 'statemanager_grpc_lists_waiting 0', 'nothing told yet');
  g.listSends(() => ({ waiting: 12, inFlight: 8_388_608 }));
  t.is(await value('statemanager_grpc_lists_waiting'), 'statemanager_grpc_lists_waiting 12');
  t.is(await value('statemanager_grpc_list_bytes_in_flight'), 'statemanager_grpc_list_bytes_in_flight 8388608');
  g.connections.open(3);
  g.connections.refused('peer');
  g.connections.refused('peer');
  g.connections.refused('total');
  t.is(await value('statemanager_grpc_connections'), 'statemanager_grpc_connections 3');
  t.is(await value('statemanager_grpc_connections_refused_total'), 'statemanager_grpc_connections_refused_total{reason="peer"} 2\nstatemanager_grpc_connections_refused_total{reason="total"} 1');
  m.httpConnectionsRefused.inc();
  t.is(await value('statemanager_http_connections_refused_total'), 'statemanager_http_connections_refused_total 1');
});

test('every series named *_total is a counter (promtool check metrics lints a gauge so named; prom-client had three)', async (t) => {
  const m = new Metrics();
  const gaugesNamedTotal = (await m.registry.getMetricsAsJSON()).filter((x) => x.name.endsWith('_total') && String(x.type) !== 'counter').map((x) => x.name);
  t.deepEqual(gaugesNamedTotal, []);
  // The counts are still there, by type.
  const page = await m.registry.metrics();
  t.regex(page, /^nodejs_active_handles\{/m);
});
