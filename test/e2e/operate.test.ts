// What an operator sees: /metrics after a scripted scenario, /readyz through an etcd outage,
// and a resync asked for through /statemanager/resync/.
import test from 'ava';
import type { StateManagerApp } from '../../src/app.js';
import { HttpServer } from '../../src/http/server.js';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startApp } from '../helpers/app.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';

let etcd: EtcdServer;
let ac: FakeActionController;
const stops: (() => Promise<void>)[] = [];

test.before(async () => {
  etcd = await startEtcd();
  ac = await startActionController();
});

test.after.always(async () => {
  for (const s of stops.reverse()) await s();
  await ac?.stop();
  await etcd?.stop();
});

async function serve(app: StateManagerApp): Promise<(path: string) => Promise<{ status: number; body: string }>> {
  const http = new HttpServer({
    addr: '127.0.0.1:0',
    registry: app.metrics.registry,
    probes: { ready: () => app.ready() },
  });
  const port = await http.start();
  stops.push(() => http.stop());
  return async (path) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, body: await res.text() };
  };
}

function value(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test.serial('/metrics exposes queue, reconcile and domain series with sensible values', async (t) => {
  const w = new FleetWriter(etcd.client(), '/op1');
  await w.packageDef('ok', ['m-ok']);
  await w.packageDef('bad', ['m-bad']);
  await w.container('n1', 'c1', 'm-ok', 'running');
  await w.container('n1', 'c2', 'm-bad', 'running');
  const app = await startApp(etcd, ac.addr, { keyPrefix: '/op1' });
  stops.push(() => app.stop());
  const get = await serve(app);
  await eventually(async () => assert.strictEqual(await w.state('package', 'bad'), 'Running'));
  const before = (await get('/metrics')).body;
  const addsBefore = value(before, 'workqueue_adds_total{name="model"}') ?? 0;

  await w.container('n1', 'c2', 'm-bad', 'dead');
  await eventually(async () => assert.strictEqual(await w.state('package', 'bad'), 'Error'));
  await eventually(async () => {
    const body = (await get('/metrics')).body;
    assert.strictEqual(value(body, 'statemanager_resources{kind="package",state="Error"}'), 1);
    assert.strictEqual(value(body, 'statemanager_reconcile_requests_total{result="delivered"}'), 1);
  });
  const res = await get('/metrics');
  t.is(res.status, 200);
  const body = res.body;
  t.true((value(body, 'workqueue_adds_total{name="model"}') ?? 0) > addsBefore);
  t.is(value(body, 'statemanager_resources{kind="package",state="Running"}'), 1);
  t.is(value(body, 'statemanager_resources{kind="model",state="Dead"}'), 1);
  t.is(value(body, 'statemanager_state_transitions_total{kind="package",from="Running",to="Error"}'), 1);
  t.is(value(body, 'workqueue_depth{name="package"}'), 0);
  t.true((value(body, 'statemanager_container_to_package_lag_seconds_count') ?? 0) >= 1);
  t.true((value(body, 'controller_runtime_reconcile_total{controller="model",result="success"}') ?? 0) > 0);
  t.true((value(body, 'statemanager_informer_last_revision{informer="containers"}') ?? 0) > 0);
  for (const name of [
    'workqueue_queue_duration_seconds_bucket',
    'workqueue_work_duration_seconds_bucket',
    'workqueue_unfinished_work_seconds',
    'workqueue_longest_running_processor_seconds',
    'workqueue_retries_total',
    'controller_runtime_reconcile_errors_total',
    'controller_runtime_reconcile_time_seconds_bucket',
    'controller_runtime_active_workers',
    'statemanager_reconcile_requests_pending',
    'leader_election_master_status',
  ]) {
    t.true(body.includes(name), `missing ${name}`);
  }
});

test.serial('/readyz is 503 before the first sync and while etcd is down, 200 otherwise', async (t) => {
  const own = await startEtcd();
  stops.push(() => own.stop());
  await own.kill();
  // Started against a dead etcd: it must not crash, and must say why it is not ready.
  const app = await startAppNoWait(own, ac.addr, '/op2');
  stops.push(() => app.stop());
  const get = await serve(app);
  const early = await get('/readyz');
  t.is(early.status, 503);
  t.regex(early.body, /etcd/);
  t.regex(early.body, /informers-synced/);
  t.is((await get('/healthz')).status, 200);

  await own.restart();
  await eventually(async () => assert.strictEqual((await get('/readyz')).status, 200), { timeoutMs: 20_000 });
  await own.kill();
  await eventually(
    async () => {
      const r = await get('/readyz');
      assert.strictEqual(r.status, 503);
      assert.match(r.body, /etcd/);
    },
    { timeoutMs: 20_000 },
  );
  await own.restart();
  await eventually(async () => assert.strictEqual((await get('/readyz')).status, 200), { timeoutMs: 20_000 });
  t.pass();
});

test.serial('a resync request through /statemanager/resync/ is applied and removed', async (t) => {
  const w = new FleetWriter(etcd.client(), '/op3');
  await w.packageDef('p', ['m']);
  await w.container('n1', 'c1', 'm', 'running');
  const app = await startApp(etcd, ac.addr, { keyPrefix: '/op3' });
  stops.push(() => app.stop());
  await eventually(async () => assert.strictEqual(await w.state('model', 'm'), 'Running'));
  const key = `${w.keys.resyncRequests}req-1`;
  await w.client.put(key).value(JSON.stringify({ kind: 'model', name: 'm', requestedAt: new Date().toISOString() }));
  await eventually(async () => assert.strictEqual(await w.client.get(key).string(), null));
  t.pass();
});

async function startAppNoWait(etcdServer: EtcdServer, acAddr: string, prefix: string): Promise<StateManagerApp> {
  const { StateManagerApp } = await import('../../src/app.js');
  const { testConfig } = await import('../helpers/app.js');
  const { silentLogger } = await import('../../controller/logger.js');
  const { Metrics } = await import('../../src/observability/metrics.js');
  const app = new StateManagerApp({
    config: testConfig(etcdServer, acAddr, { keyPrefix: prefix }),
    logger: silentLogger,
    metrics: new Metrics({ defaultMetrics: false }),
  });
  void app.start();
  return app;
}
