// /metrics at fleet scale: the resource and pending-request gauges follow every cache change
// (checked against a recount of the stored values), a scrape costs the same whatever the size of
// the fleet, and a flood of scrapes renders the registry at most once per interval. The flood's
// figures are printed, not asserted (shared machines): CPU per scrape and event-loop delay.
import test from 'ava';
import { Registry } from 'prom-client';
import { Fleet } from '../reconcilers/fleet.js';
import { KeyLayout } from '../domain/keys.js';
import { silentObserver } from '../reconcilers/ports.js';
import { MODEL_STATES, PACKAGE_STATES, parseState } from '../domain/states.js';
import { maintainFleetGauges } from '../src/observability/gauges.js';
import { DEFAULT_METRICS_MIN_INTERVAL_MS, HttpServer } from '../src/http/server.js';
import { MetricsPage } from '../src/http/metrics-page.js';
import { Metrics } from '../src/observability/metrics.js';
import { FakeListerWatcher } from './fakes/lister-watcher.js';
import { scrapeFlood } from './helpers/scrape-flood.js';

const MODELS = 20_000;
const PACKAGES = 5_000;
const keys = new KeyLayout('/sm');

/** The fleet gauges' lines of a page, by series. */
function series(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of text.split('\n')) {
    if (l.startsWith('statemanager_resources{') || l.startsWith('statemanager_reconcile_requests_pending ')) out[l.slice(0, l.lastIndexOf(' '))] = Number(l.slice(l.lastIndexOf(' ') + 1));
  }
  return out;
}

/** What the gauges must read, counted from the stored values themselves. */
async function recount(lw: FakeListerWatcher): Promise<Record<string, number>> {
  const out = new Map<string, number>();
  for (const s of MODEL_STATES) out.set(`statemanager_resources{kind="model",state="${s}"}`, 0);
  for (const s of PACKAGE_STATES) out.set(`statemanager_resources{kind="package",state="${s}"}`, 0);
  let pending = 0;
  for (const kind of ['model', 'package'] as const) {
    for (const kv of (await lw.list(keys.statePrefix(kind))).items) {
      const state = parseState(kind, kv.value);
      const k = `statemanager_resources{kind="${kind}",state="${state}"}`;
      if (state !== undefined) out.set(k, out.get(k)! + 1);
    }
  }
  for (const kv of (await lw.list(keys.reconcileRequests)).items) {
    try {
      if (((JSON.parse(kv.value) as { deliveries?: number }).deliveries ?? 0) === 0) pending++;
    } catch {
      pending++;
    }
  }
  out.set('statemanager_reconcile_requests_pending', pending);
  return Object.fromEntries(out);
}

async function bigFleet(): Promise<{ lw: FakeListerWatcher; fleet: Fleet; metrics: Metrics }> {
  const lw = new FakeListerWatcher();
  const ops: { put: string; value: string }[] = [];
  for (let i = 0; i < MODELS; i++) ops.push({ put: keys.stateKey('model', `m${i}`), value: MODEL_STATES[i % MODEL_STATES.length]! });
  for (let i = 0; i < PACKAGES; i++) ops.push({ put: keys.stateKey('package', `p${i}`), value: PACKAGE_STATES[i % PACKAGE_STATES.length]! });
  for (let i = 0; i < 100; i++) ops.push({ put: keys.reconcileRequestKey(`p${i}`), value: JSON.stringify({ package: `p${i}`, state: 'Error', requestedAt: '2026-01-01T00:00:00Z', deliveries: i % 3 }) });
  lw.txn(ops);
  const metrics = new Metrics();
  const fleet = new Fleet({ keys, lw, observer: silentObserver });
  maintainFleetGauges(metrics, fleet);
  fleet.caches.start();
  await fleet.caches.waitForSync();
  return { lw, fleet, metrics };
}

test.serial('the resource and pending-request gauges follow every cache change', async (t) => {
  const { lw, fleet, metrics } = await bigFleet();
  t.teardown(() => fleet.caches.stop());
  const check = async (what: string): Promise<void> => {
    t.deepEqual(series(await metrics.registry.metrics()), await recount(lw), what);
  };
  await check('after the initial list');
  t.is(series(await metrics.registry.metrics())['statemanager_resources{kind="model",state="Dead"}'], MODELS / MODEL_STATES.length);

  lw.txn([
    { put: keys.stateKey('model', 'm0'), value: 'Dead' },
    { put: keys.stateKey('model', 'm1'), value: 'MODEL_STATE_RUNNING' },
    { put: keys.stateKey('package', 'p0'), value: 'Error' },
    { delete: keys.stateKey('model', 'm2') },
    { put: keys.stateKey('model', 'new-model'), value: 'Created' },
  ]);
  await check('after updates, a deletion and a creation');
  // A value that is no state counts nowhere; its repair counts again.
  lw.put(keys.stateKey('model', 'm3'), 'not-a-state');
  await check('after a value that is no state');
  lw.put(keys.stateKey('model', 'm3'), 'Paused');
  await check('after its repair');
  // A request delivered leaves the pending count; a new one joins it; a cleared one leaves.
  lw.put(keys.reconcileRequestKey('p0'), JSON.stringify({ package: 'p0', state: 'Error', requestedAt: '2026-01-01T00:00:00Z', deliveries: 1 }));
  lw.put(keys.reconcileRequestKey('p999'), JSON.stringify({ package: 'p999', state: 'Error', requestedAt: '2026-01-01T00:00:00Z', deliveries: 0 }));
  lw.delete(keys.reconcileRequestKey('p3'));
  await check('after request changes');
  // A whole package prefix emptied.
  lw.txn(Array.from({ length: PACKAGES }, (_, i) => ({ delete: keys.stateKey('package', `p${i}`) })));
  await check('after every package state went');
  t.is(series(await metrics.registry.metrics())['statemanager_resources{kind="package",state="Error"}'], 0);
});

test.serial(`a flood of scrapes at ${MODELS} models: every scrape answered, gauges right (figures printed)`, async (t) => {
  const { lw, fleet, metrics } = await bigFleet();
  t.teardown(() => fleet.caches.stop());
  for (const interval of [0, DEFAULT_METRICS_MIN_INTERVAL_MS]) {
    // 64 scrapers from this one address (each has its own in a cluster): no bound per address.
    const http = new HttpServer({ addr: '127.0.0.1:0', registry: metrics.registry, probes: { ready: () => ({ ok: true, failing: [] }) }, metricsMinIntervalMs: interval, connectionsPerPeer: 0 });
    const port = await http.start();
    for (const clients of [1, 64]) {
      const f = await scrapeFlood(port, { clients, durationMs: 2000 });
      t.log(`${MODELS} models, ${PACKAGES} packages, render interval ${interval} ms, ${clients} clients: ${JSON.stringify(f)}`);
      t.is(f.failed, 0);
      t.true(f.scrapes > 0);
    }
    // A change is visible on the page once the interval has passed.
    lw.put(keys.stateKey('model', `flood-${interval}`), 'Dead');
    await new Promise((r) => setTimeout(r, interval + 1));
    const page = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    t.deepEqual(series(page), await recount(lw));
    await http.stop();
  }
});

test('one render per interval: a scrape at the interval renders again, one before it gets the last page', async (t) => {
  let now = 1000;
  let renders = 0;
  const page = new MetricsPage(async () => `page ${++renders}`, 100, () => now);
  t.is(await page.get(), 'page 1');
  now += 99;
  t.is(await page.get(), 'page 1', 'before the interval: the last page');
  now += 1;
  t.is(await page.get(), 'page 2', 'at the interval: rendered again');
  now += 250;
  t.is(await page.get(), 'page 3', 'past it: rendered again');
  t.is(renders, 3);
});

test('concurrent scrapes share one render; a failed render is not served again', async (t) => {
  let renders = 0;
  let fail = true;
  const page = new MetricsPage(
    async () => {
      renders++;
      if (fail) throw new Error('collect failed');
      return `page ${renders}`;
    },
    100,
    () => 0,
  );
  await t.throwsAsync(Promise.all([page.get(), page.get()]), { message: 'collect failed' });
  t.is(renders, 1);
  fail = false;
  t.is(await page.get(), 'page 2');
  t.is(renders, 2);
});

test('interval 0 renders every scrape; the HTTP server serves the page of the last render within the interval', async (t) => {
  const registry = new Registry();
  const { Counter } = await import('prom-client');
  const c = new Counter({ name: 'x_total', help: 'x', registers: [registry] });
  let now = 0;
  const serve = async (interval: number): Promise<(path: string) => Promise<string>> => {
    const http = new HttpServer({ addr: '127.0.0.1:0', registry, probes: { ready: () => ({ ok: true, failing: [] }) }, metricsMinIntervalMs: interval, now: () => now });
    const port = await http.start();
    t.teardown(() => http.stop());
    return async (path) => (await fetch(`http://127.0.0.1:${port}${path}`)).text();
  };
  const value = (text: string): string | undefined => text.split('\n').find((l) => l.startsWith('x_total '));
  const cached = await serve(100);
  t.is(value(await cached('/metrics')), 'x_total 0');
  c.inc();
  now = 99;
  t.is(value(await cached('/metrics')), 'x_total 0');
  now = 100;
  t.is(value(await cached('/metrics')), 'x_total 1');
  const fresh = await serve(0);
  c.inc();
  t.is(value(await fresh('/metrics')), 'x_total 2');
  c.inc();
  t.is(value(await fresh('/metrics')), 'x_total 3');
});
