// After a resync a package waits for its models' passes (reconcilers/model-passes.ts): the
// program's controllers (buildControllers, real work queues and workers) on the in-memory fakes,
// and the waiting rule's edges on their own.
import test from 'ava';
import { silentLogger } from '../../controller/logger.js';
import { buildControllers } from '../../reconcilers/controllers.js';
import { enqueueAll } from '../../reconcilers/event-mapping.js';
import { Fleet } from '../../reconcilers/fleet.js';
import { ModelPasses } from '../../reconcilers/model-passes.js';
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
  const fleet = new Fleet({ keys, lw, observer: silentObserver, clock: { now: () => NOW } });
  fleet.caches.start();
  await fleet.caches.waitForSync();
  const store = new SlowStore(lw, keys);
  const built = buildControllers({
    fleet,
    store,
    actionController: new FakeActionController(),
    observer: silentObserver,
    clock: { now: () => NOW },
    source: 'controller/test',
    logger: silentLogger,
    triggerStates: new Set(['Error'] as const),
    repeat: { initialMs: 0, capMs: 0 },
    settings: { keyBackoff: { base: 1, cap: 10 }, requestBackoff: { base: 1, cap: 10 }, workers: 4, requestWorkers: 1 },
  });
  const { modelPass: _p, modelAwaited: _a, ...withoutPasses } = built.enqueue;
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

function passesOver(o: { states?: Record<string, string>; packages?: Record<string, string[]> } = {}) {
  const work = new Set<string>();
  const promoted: string[] = [];
  const queued: string[] = [];
  const states = new Map(Object.entries(o.states ?? {}));
  const passes = new ModelPasses({
    fleet: {
      packagesOfModel: (m) => o.packages?.[m] ?? [],
      storedModelState: (m) => (states.has(m) ? ({ value: { state: states.get(m) } } as never) : undefined),
    },
    modelHasWork: (m) => work.has(m),
    promoteModel: (m) => void promoted.push(m),
    queuePackage: (p, priority) => void queued.push(`${p}:${priority}`),
  });
  const resync = (m: string): void => {
    passes.expect(m);
    work.add(m);
  };
  return { passes, work, promoted, queued, states, resync };
}

test('waiting: a due model with work is waited for and moved ahead; not due, or due with its work dropped, it is not', (t) => {
  const w = passesOver({ states: { m1: 'Running', m2: 'Running' } });
  w.resync('m1');
  t.true(w.passes.waitFor('m1', 'p'));
  t.deepEqual(w.promoted, ['m1']);
  // A live event queues m2: never waited for when it has a state.
  w.work.add('m2');
  t.false(w.passes.waitFor('m2', 'p'));
  // m1's queued work was dropped (a queue shut down): nothing would end the wait.
  w.work.delete('m1');
  t.false(w.passes.waitFor('m1', 'p'));
  t.is(w.passes.dueCount(), 0);
  t.deepEqual(w.promoted, ['m1'], 'only due models are moved ahead');
});

test('waiting: a model with no state yet whose first pass is coming is waited for without being due (a live package definition)', (t) => {
  const w = passesOver();
  w.work.add('m');
  t.true(w.passes.waitFor('m', 'p'));
  t.deepEqual(w.promoted, [], 'not due: nothing to move ahead of');
  w.work.delete('m');
  t.false(w.passes.waitFor('m', 'p'), 'no work coming: read as Created');
});

test('a pass ends the wait whatever its outcome; one that began before the model was due does not', async (t) => {
  const w = passesOver({ states: { m: 'Running' }, packages: { m: ['p1', 'p2'] } });
  let release!: () => void;
  const model = w.passes.wrap({
    reconcile: (name) => (name === 'slow' ? new Promise<void>((r) => (release = r)) : Promise.reject(new Error('etcd unreachable'))),
  });
  // A pass running when the resync comes: the resync's own pass is still queued behind it.
  w.states.set('slow', 'Running');
  const running = model.reconcile('slow');
  w.resync('slow');
  release();
  await running;
  t.is(w.passes.dueCount(), 1);
  t.true(w.passes.waitFor('slow', 'p'));
  // A failing pass ends the wait too (the key is retried with backoff; its packages are not held).
  w.resync('m');
  await t.throwsAsync(model.reconcile('m'), { message: 'etcd unreachable' });
  t.false(w.passes.waitFor('m', 'p'), 'its work is retried, but it is no longer due');
  t.is(w.passes.dueCount(), 1, "only 'slow' is still due");
  t.deepEqual(w.queued, ['p1:low', 'p2:low'], 'unchanged: the pass queues the packages that waited');
});

test('a pass that changed the state leaves its packages to the state event, except one that waited and has not run since', async (t) => {
  const w = passesOver({ states: { m: 'Dead' }, packages: { m: ['p', 'pw', 'pr', 'pl'] } });
  const model = w.passes.wrap({
    reconcile: async () => {
      t.true(w.passes.waitFor('m', 'pw'), 'pw ran while the pass was computing: it waits');
      t.true(w.passes.waitFor('m', 'pr'));
      w.states.set('m', 'Running'); // the write: its event queues all four now
      t.false(w.passes.waitFor('m', 'pl'), "pl's worker took it at once: the new state is there, nothing left to wait for");
      t.false(w.passes.waitFor('m', 'pr'), 'pr too, and it is decided now');
    },
  });
  w.resync('m');
  await model.reconcile('m');
  t.deepEqual(w.queued, ['pw:low'], 'p and pr are not queued twice, nor pl');
  t.is(w.passes.dueCount(), 0);
});

test('a resync during a pass of a due model: the running pass ends the wait, the queued one still runs', async (t) => {
  const w = passesOver({ states: { m: 'Running' }, packages: { m: ['p'] } });
  let release!: () => void;
  const model = w.passes.wrap({ reconcile: () => new Promise<void>((r) => (release = r)) });
  w.resync('m');
  const running = model.reconcile('m');
  w.resync('m'); // a second resync while the first's pass runs
  release();
  await running;
  t.is(w.passes.dueCount(), 0);
  t.deepEqual(w.queued, ['p:low']);
});
