// The hot series count in plain numbers and fold into prom-client at collection: a scrape must
// read exactly what an inc/dec/set-per-call implementation would have shown.
import test from 'ava';
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
