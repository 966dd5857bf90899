// After a resync a package waits for its models' passes (reconcilers/model-passes.ts): the
// program's controllers (buildControllers, real work queues and workers) on the in-memory fakes,
// and the waiting rule's edges on their own.
import test from 'ava';
import { silentLogger } from '../../controller/logger.js';
import { buildControllers } from '../../reconcilers/controllers.js';
import { enqueueAll } from '../../reconcilers/event-mapping.js';
import { Fleet } from '../../reconcilers/fleet.js';
import { LOST_RACES_WINDOW_MS, ModelPasses } from '../../reconcilers/model-passes.js';
import { REQUEUE } from '../../controller/controller.js';
import type { WatchCallbacks, WatchEvent } from '../../controller/lister-watcher.js';
import { silentObserver } from '../../reconcilers/ports.js';
import { KeyLayout } from '../../domain/keys.js';
import { FakeActionController } from '../fakes/action-controller.js';
import { FakeListerWatcher } from '../fakes/lister-watcher.js';
import { FakeStateStore } from '../fakes/state-store.js';
import { assert, eventually } from '../helpers/eventually.js';

const NOW = Date.parse('2026-12-06T08:00:00Z');

/** Writes answered after a few ms, as etcd's are: the fake's at once hid the race. */
class SlowStore extends FakeStateStore {
  override async writeStates(...args: Parameters<FakeStateStore['writeStates']>): ReturnType<FakeStateStore['writeStates']> {
    await new Promise((r) => setTimeout(r, 5));
    return super.writeStates(...args);
  }
}

/**
 * What a leader killed mid-work leaves: p's models were Dead and written so, then their containers
 * came back and the leader died before writing the models again; p is still Running (its Error
 * never written). The containers' level says m1, m2 and p are Running.
 */
async function takeoverWorld(o: { passes: boolean }) {
  const keys = new KeyLayout('');
  const lw = new FakeListerWatcher();
  for (const m of ['m1', 'm2']) {
    lw.put(keys.containerKey('n1', `${m}-c`), JSON.stringify({ id: `${m}-c`, state: { Status: 'running' }, annotation: { 'io.pullpiri.annotations.model': m } }));
    lw.put(keys.stateKey('model', m), 'Dead');
  }
  lw.put(keys.packageDefKey('p'), 'spec:\n  models:\n    - name: m1\n    - name: m2\n');
  lw.put(keys.stateKey('package', 'p'), 'Running');
  const fleet = new Fleet({ keys, lw, observer: silentObserver, clock: { now: () => NOW, elapsed: () => NOW } });
  fleet.caches.start();
  await fleet.caches.waitForSync();
  const store = new SlowStore(lw, keys);
  const built = buildControllers({
    fleet,
    store,
    actionController: new FakeActionController(),
    observer: silentObserver,
    clock: { now: () => NOW, elapsed: () => NOW },
    source: 'controller/test',
    logger: silentLogger,
    triggerStates: new Set(['Error'] as const),
    repeat: { initialMs: 0, capMs: 0 },
    settings: { keyBackoff: { base: 1, cap: 10 }, requestBackoff: { base: 1, cap: 10 }, workers: 4, requestWorkers: 1 },
  });
  const { modelPass: _p, packageForResync: _r, ...withoutPasses } = built.enqueue;
  // What the Manager does on winning leadership: resync, then start the workers.
  enqueueAll(fleet, o.passes ? built.enqueue : withoutPasses, 'low');
  const cs = Object.values(built.controllers);
  for (const c of cs) c.start();
  const state = (kind: 'model' | 'package', name: string): string | undefined => lw.get(keys.stateKey(kind, name))?.value;
  await eventually(() => {
    assert.deepStrictEqual([state('model', 'm1'), state('model', 'm2'), state('package', 'p')], ['Running', 'Running', 'Running']);
    assert.ok(cs.every((c) => c.waiting() === 0) && !built.controllers.package.hasWork('p') && !built.controllers.model.hasWork('m1') && !built.controllers.model.hasWork('m2'));
  });
  await Promise.all(cs.map((c) => c.stop()));
  await fleet.caches.stop();
  return { store, lw, keys };
}

test('after a takeover a package is decided from its models recomputed, not from their stale stored states: no transient Error, no reconcile request', async (t) => {
  const { store, lw, keys } = await takeoverWorld({ passes: true });
  t.deepEqual(store.writes.sort(), ['model/m1=Running', 'model/m2=Running'], 'the package was already right: nothing written for it');
  t.false(store.history.some((h) => h.kind === 'package'));
  t.is(lw.get(keys.reconcileRequestKey('p')), undefined);
});

test('without the passes (the package queued by the resync beside its models) the stale level is written: what this guards against', async (t) => {
  const { store } = await takeoverWorld({ passes: false });
  t.true(store.writes.includes('package/p=Error'), `writes: ${store.writes.join(', ')}`);
});

function passesOver(o: { states?: Record<string, string>; packages?: Record<string, string[]>; now?: () => number } = {}) {
  const work = new Set<string>();
  const promoted: string[] = [];
  const queued: string[] = [];
  const states = new Map(Object.entries(o.states ?? {}));
  const defs = new Map(Object.entries(o.packages ?? {}));
  let hasWorkCalls = 0;
  const passes = new ModelPasses({
    fleet: {
      packagesOfModel: (m) => [...defs].filter(([, ms]) => ms.includes(m)).map(([p]) => p),
      modelsOfPackage: (p) => defs.get(p),
      storedModelState: (m) => (states.has(m) ? ({ value: { state: states.get(m) } } as never) : undefined),
    },
    modelHasWork: (m) => (hasWorkCalls++, work.has(m)),
    promoteModel: (m) => void promoted.push(m),
    queuePackage: (p, priority) => void queued.push(`${p}:${priority}`),
    ...(o.now ? { now: o.now } : {}),
  });
  /** A resync: every model of every package queued for a pass, then the packages held or queued. */
  const resync = (): string[] => {
    for (const ms of defs.values()) for (const m of ms) {
      passes.expect(m);
      work.add(m);
    }
    return [...defs.keys()].filter((p) => !passes.holdForResync(p));
  };
  const model = passes.wrap({ reconcile: async (m) => void work.delete(m) });
  const run = (p: string): boolean => passes.waitForModels(p, defs.get(p));
  return { passes, work, promoted, queued, states, defs, resync, model, run, hasWorkCalls: () => hasWorkCalls };
}

test('a package waits for every due model of it, and the last of their passes queues it once', async (t) => {
  const w = passesOver({ states: { m1: 'Running', m2: 'Running', m3: 'Running' }, packages: { p: ['m1', 'm2'], q: ['m2', 'm3'] } });
  t.deepEqual(w.resync(), [], 'both held: nothing queued by the resync');
  t.deepEqual(w.promoted, [], 'the resync moves nothing ahead');
  t.true(w.passes.holds('p'), 'an event for p: not queued, it waits');
  t.deepEqual(w.promoted, ['m1', 'm2'], 'and its due models move ahead');
  t.true(w.passes.holds('p'));
  t.true(w.run('p'), 'woken by something else meanwhile, it still waits');
  t.deepEqual(w.promoted, ['m1', 'm2'], 'once');
  await w.model.reconcile('m1');
  t.deepEqual(w.queued, []);
  await w.model.reconcile('m2');
  t.deepEqual(w.queued, ['p:low']);
  t.false(w.passes.holds('p'));
  t.false(w.run('p'), 'decided now');
  await w.model.reconcile('m3');
  t.deepEqual(w.queued, ['p:low', 'q:low']);
  t.is(w.passes.waitingCount(), 0);
});

test('a package of 5,000 models is counted once and queued once per resync: reading its models again at each pass would be 12.5 million reads', async (t) => {
  const models = Array.from({ length: 5_000 }, (_, i) => `m${i}`);
  const w = passesOver({ states: Object.fromEntries(models.map((m) => [m, 'Running'])), packages: { big: models } });
  t.deepEqual(w.resync(), []);
  for (const m of models) {
    await w.model.reconcile(m);
    // The package is woken by other events meanwhile (its models' state events at a cold start).
    if (w.passes.holds('big')) t.true(w.run('big'));
  }
  t.deepEqual(w.queued, ['big:low']);
  t.true(w.hasWorkCalls() <= 2 * models.length, `${w.hasWorkCalls()} work lookups`);
});

test('a model with no state is not due (nothing stored can be stale): a cold start counts nothing, its packages are left to first states', async (t) => {
  const w = passesOver({ states: { m3: 'Running' }, packages: { p: ['m1', 'm2'], q: ['m3'] } });
  t.deepEqual(w.resync(), [], 'p waits for its models\' first states (their events queue it), q for m3\'s pass');
  t.is(w.passes.dueCount(), 1);
  t.is(w.passes.waitingCount(), 1, 'only q is counted');
  await w.model.reconcile('m1');
  await w.model.reconcile('m3');
  t.deepEqual(w.queued, ['q:low']);
  w.work.clear();
  t.false(w.passes.holdForResync('p'), 'no first state coming: queued by the resync');
});

test('live events never make a package wait', (t) => {
  const w = passesOver({ states: { m1: 'Running' }, packages: { p: ['m1'], q: ['m2'] } });
  w.work.add('m1'); // a container change queued m1
  w.work.add('m2'); // a new model (its first state's wait is the package reconciler's own)
  t.false(w.run('p'));
  t.false(w.run('q'));
  t.is(w.passes.waitingCount(), 0);
  t.deepEqual(w.promoted, []);
});

test('a due model whose queued work was dropped (a queue shut down) is not waited for', (t) => {
  const w = passesOver({ states: { m1: 'Running', m2: 'Running' }, packages: { p: ['m1', 'm2'] } });
  for (const m of ['m1', 'm2']) w.passes.expect(m);
  w.work.add('m2');
  t.true(w.passes.holdForResync('p'));
  t.is(w.passes.dueCount(), 1, 'm1 had no work');
  w.defs.set('p', ['m2', 'm1']); // counted again
  w.passes.definitionChanged('p');
  w.work.delete('m2');
  t.false(w.run('p'));
  t.is(w.passes.dueCount(), 0);
  t.is(w.passes.waitingCount(), 0);
});

test('a pass ends the wait whatever its outcome; one that began before the model was due does not', async (t) => {
  const w = passesOver({ states: { m: 'Running' }, packages: { p: ['m'] } });
  let release!: () => void;
  const model = w.passes.wrap({ reconcile: () => new Promise<void>((r) => (release = r)) });
  const running = model.reconcile('m'); // a live event's pass, running when the resync comes
  w.resync();
  release();
  await running;
  t.is(w.passes.dueCount(), 1, "the resync's own pass is still to come");
  t.true(w.run('p'));
  const failing = w.passes.wrap({ reconcile: () => Promise.reject(new Error('etcd unreachable')) });
  await t.throwsAsync(failing.reconcile('m'), { message: 'etcd unreachable' });
  t.deepEqual(w.queued, ['p:low'], 'retried with backoff, but its packages are not held for it');
  t.is(w.passes.dueCount(), 0);
});

test('a definition changed while waiting is counted again: a model removed no longer holds it, a model added is waited for', async (t) => {
  const w = passesOver({ states: { m1: 'Running', m2: 'Running', m3: 'Running' }, packages: { p: ['m1', 'm2'], other: ['m3'] } });
  w.resync();
  w.defs.set('p', ['m1']); // m2 removed
  w.passes.definitionChanged('p');
  t.false(w.passes.holds('p'), "the definition's event queues it");
  t.true(w.run('p'), 'counted again: m1 still due');
  await w.model.reconcile('m1');
  t.deepEqual(w.queued, ['p:low'], 'the last pass of the new definition queues it; m2 was not waited for');
  await w.model.reconcile('m2');
  t.deepEqual(w.queued, ['p:low']);
  // Gained a due model after it was counted and before the event ran it: short by one, so it runs
  // early, counts again and waits for the rest.
  w.queued.length = 0;
  w.defs.set('late', ['m3']);
  w.resync();
  w.defs.set('late', ['m3', 'mx']);
  w.states.set('mx', 'Running');
  w.passes.expect('mx');
  w.work.add('mx');
  await w.model.reconcile('m3');
  t.true(w.run('late'), 'mx still due');
  await w.model.reconcile('mx');
  t.true(w.queued.includes('late:low'));
  t.false(w.run('late'));
});

test('a resync during a pass of a due model: the running pass ends the wait, the queued one still runs', async (t) => {
  const w = passesOver({ states: { m: 'Running' }, packages: { p: ['m'] } });
  let release!: () => void;
  const model = w.passes.wrap({ reconcile: () => new Promise<void>((r) => (release = r)) });
  w.resync();
  const running = model.reconcile('m');
  w.resync(); // a second resync while the first's pass runs
  release();
  await running;
  t.is(w.passes.dueCount(), 0);
  t.deepEqual(w.queued, ['p:low']);
});

// A new leader's cache of model states can be behind its cache of package states (a stream
// each): a due model's pass that loses its race read a state the last leader had replaced, so it
// keeps the model due (its retry is the pass waited for) for LOST_RACES_WINDOW_MS; past it a lost
// race ends the pass, so a model some other writer keeps changing cannot hold its packages.
test(`a due pass that lost its race keeps its packages waiting for the next pass, for ${LOST_RACES_WINDOW_MS} ms from the first: below, at and past it`, async (t) => {
  let now = 0;
  const w = passesOver({ states: { m: 'Dead' }, packages: { p: ['m'] }, now: () => now });
  const lost = w.passes.wrap({ reconcile: async () => REQUEUE });
  t.deepEqual(w.resync(), [], 'p held for m');
  w.work.delete('m'); // requeued after a backoff: not in the queue meanwhile
  t.is(await lost.reconcile('m'), REQUEUE);
  t.true(w.run('p'), 'still waiting: its retry is coming');
  t.deepEqual(w.queued, []);
  now = LOST_RACES_WINDOW_MS - 1;
  await lost.reconcile('m');
  t.true(w.run('p'), 'below the window');
  now = LOST_RACES_WINDOW_MS;
  await lost.reconcile('m');
  t.deepEqual(w.queued, ['p:low'], 'at the window the lost race ends the pass');
  t.is(w.passes.dueCount(), 0);
  // A lost race, then a pass that commits or finds nothing to do: that pass ends it.
  now = 0;
  t.deepEqual(w.resync(), []);
  w.work.delete('m');
  await lost.reconcile('m');
  t.true(w.run('p'));
  await w.model.reconcile('m');
  t.deepEqual(w.queued, ['p:low', 'p:low']);
  t.is(w.passes.dueCount(), 0);
});

/** The model-state stream held back (a new leader's informers, a stream each, a little apart). */
class LaggingLW extends FakeListerWatcher {
  private readonly held: { cb: WatchCallbacks; events: WatchEvent[]; rev: number }[] = [];
  hold = false;
  constructor(private readonly lagging: string) {
    super();
  }
  override watch(prefix: string, from: number, cb: WatchCallbacks) {
    if (prefix !== this.lagging) return super.watch(prefix, from, cb);
    return super.watch(prefix, from, { ...cb, onEvents: (events, rev) => (this.hold ? void this.held.push({ cb, events, rev }) : cb.onEvents(events, rev)) });
  }
  release(): void {
    this.hold = false;
    for (const h of this.held.splice(0)) h.cb.onEvents(h.events, h.rev);
  }
}

// Found by a code review (with this reproduction): the last leader wrote m Running, then p Running
// (its request removed), then handed over; the new leader's model-state stream was 50 ms behind,
// its resync's pass of m lost its race (the cache said Dead), ended the pass, and p was decided
// from m Dead: written Error, with a request and a Reconcile call, then Running again.
test('a takeover with the model-state stream behind the package-state stream: no package state its models do not imply, no call', async (t) => {
  const keys = new KeyLayout('');
  const lw = new LaggingLW(keys.statePrefix('model'));
  lw.put(keys.containerKey('n1', 'c'), JSON.stringify({ id: 'c', state: { Status: 'dead' }, annotation: { 'io.pullpiri.annotations.model': 'm' } }));
  lw.put(keys.packageDefKey('p'), 'spec:\n  models:\n    - name: m\n');
  lw.put(keys.stateKey('model', 'm'), 'Dead');
  lw.txn([
    { put: keys.stateKey('package', 'p'), value: 'Error' },
    { put: keys.reconcileRequestKey('p'), value: JSON.stringify({ package: 'p', state: 'Error', requestedAt: new Date(NOW).toISOString(), deliveries: 1, lastDeliveredAt: new Date(NOW).toISOString() }) },
  ]);
  const fleet = new Fleet({ keys, lw, observer: silentObserver, clock: { now: () => NOW, elapsed: () => NOW } });
  fleet.caches.start();
  await fleet.caches.waitForSync();
  lw.hold = true;
  lw.put(keys.containerKey('n1', 'c'), JSON.stringify({ id: 'c', state: { Status: 'running' }, annotation: { 'io.pullpiri.annotations.model': 'm' } }));
  lw.put(keys.stateKey('model', 'm'), 'Running');
  lw.txn([{ put: keys.stateKey('package', 'p'), value: 'Running' }, { delete: keys.reconcileRequestKey('p') }]);
  const store = new FakeStateStore(lw, keys);
  const ac = new FakeActionController();
  const built = buildControllers({
    fleet, store, actionController: ac, observer: silentObserver,
    clock: { now: () => NOW, elapsed: () => NOW }, source: 'controller/new-leader', logger: silentLogger,
    triggerStates: new Set(['Error'] as const), repeat: { initialMs: 0, capMs: 0 },
    settings: { keyBackoff: { base: 1, cap: 10 }, requestBackoff: { base: 1, cap: 10 }, workers: 4, requestWorkers: 1 },
  });
  enqueueAll(fleet, built.enqueue, 'low'); // Manager.startLeading: the resync, then the workers
  const controllers = Object.values(built.controllers);
  for (const c of controllers) c.start();
  await new Promise((r) => setTimeout(r, 50));
  lw.release();
  await new Promise((r) => setTimeout(r, 300));
  await Promise.all(controllers.map((c) => c.stop()));
  await fleet.caches.stop();
  t.false(store.writes.includes('package/p=Error'), `writes: ${store.writes.join(', ')}`);
  t.deepEqual(ac.calls, []);
  t.is(lw.get(keys.stateKey('package', 'p'))?.value, 'Running');
});
