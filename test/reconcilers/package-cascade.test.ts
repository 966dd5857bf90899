// A model reconcile that changes the model's state writes the packages it changes in the same
// transaction (reconcilers/package-cascade.ts) — unless other work is about to decide them: the
// coalescing rule, each case below, at and past its bounds.
import test from 'ava';
import { FOLD_BACKLOG_LIMIT, MAX_FOLDED_PACKAGES, MAX_READ_GUARDS } from '../../reconcilers/package-cascade.js';
import { LagTracker } from '../../reconcilers/lag-tracker.js';
import { fakeWorld } from '../fakes/world.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

const world = () => fakeWorld({ clock: { now: () => NOW, elapsed: () => NOW }, foldPackages: true });

test('a model change writes its package in the same transaction; the package reconcile then writes nothing', async (t) => {
  const w = await world();
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'running');
  await w.model.reconcile('m');
  t.deepEqual(w.store.writes, ['model/m=Running', 'package/p=Running']);
  const rev = (kind: 'model' | 'package', name: string) => w.lw.get(w.keys.stateKey(kind, name))?.modRevision;
  t.is(rev('model', 'm'), rev('package', 'p'), 'one transaction: one revision');
  t.like(w.store.history[1], { kind: 'package', name: 'p', from: null, to: 'Running', reason: 'models: 1 Running' });
  await w.pkg.reconcile('p');
  t.is(w.store.writes.length, 2, 'no redundant package write');
});

test('entering Error through a fold writes the reconcile request with it, once', async (t) => {
  const w = await world();
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'running');
  await w.model.reconcile('m');
  w.container('n1', 'c1', 'm', 'dead');
  await w.model.reconcile('m');
  t.is(w.state('package', 'p'), 'Error');
  const request = w.lw.get(w.keys.reconcileRequestKey('p'));
  t.truthy(request);
  t.is(request?.modRevision, w.lw.get(w.keys.stateKey('package', 'p'))?.modRevision);
  await w.pkg.reconcile('p');
  t.is(w.lw.get(w.keys.reconcileRequestKey('p'))?.modRevision, request?.modRevision, 'not written again');
  await w.request.reconcile('p');
  t.is(w.ac.calls.length, 1);
  w.container('n1', 'c1', 'm', 'running');
  await w.model.reconcile('m');
  t.is(w.state('package', 'p'), 'Running');
  t.is(w.lw.get(w.keys.reconcileRequestKey('p')), undefined, 'leaving Error clears the delivered request in the same transaction');
});

test('leaving Error before the call keeps the request owed: the fold leaves it, the call is made once, then it is removed', async (t) => {
  const w = await world();
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'dead');
  await w.model.reconcile('m');
  t.is(w.state('package', 'p'), 'Error');
  w.container('n1', 'c1', 'm', 'running');
  await w.model.reconcile('m');
  t.is(w.state('package', 'p'), 'Running');
  t.like(JSON.parse(w.lw.get(w.keys.reconcileRequestKey('p'))!.value), { deliveries: 0, state: 'Error' }, 'kept: its call is owed');
  await w.request.reconcile('p');
  t.deepEqual(w.ac.calls.map((c) => c.scenarioName), ['p']);
  t.is(w.lw.get(w.keys.reconcileRequestKey('p')), undefined, 'removed after the call');
  await w.request.reconcile('p');
  t.is(w.ac.calls.length, 1, 'once');
});

test('a package with work queued or running is left to its reconciler', async (t) => {
  const w = await world();
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'running');
  w.busy.add('package/p');
  await w.model.reconcile('m');
  t.deepEqual(w.store.writes, ['model/m=Running']);
});

test('a package whose other model has work queued or running is left to its reconciler', async (t) => {
  const w = await world();
  w.packageDef('p', ['m1', 'm2']);
  w.container('n1', 'c1', 'm1', 'running');
  w.busy.add('model/m2');
  await w.model.reconcile('m1');
  t.deepEqual(w.store.writes, ['model/m1=Running']);
  w.busy.delete('model/m2');
  w.container('n1', 'c1', 'm1', 'exited');
  await w.model.reconcile('m1');
  t.deepEqual(w.store.writes, ['model/m1=Running', 'model/m1=Exited', 'package/p=Running'], 'once settled, folded (m2 has no state yet: Created)');
});

test('a model queued again while it runs does not fold: its next pass decides', async (t) => {
  const w = await world();
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'running');
  w.busy.add('model/m+again');
  await w.model.reconcile('m');
  t.deepEqual(w.store.writes, ['model/m=Running']);
});

test('a lost race writes neither state; an unchanged package is not written', async (t) => {
  const w = await world();
  w.packageDef('p', ['m1', 'm2']);
  w.container('n1', 'a', 'm1', 'running');
  w.container('n1', 'b', 'm2', 'running');
  await w.model.reconcile('m1');
  await w.model.reconcile('m2');
  t.is(w.state('package', 'p'), 'Running');
  const writes = w.store.writes.length;
  w.container('n1', 'a', 'm1', 'dead');
  w.store.failNext = 1;
  t.deepEqual(await w.model.reconcile('m1'), { requeue: true });
  t.is(w.store.writes.length, writes, 'neither the model nor the package');
  await w.model.reconcile('m1');
  t.deepEqual(w.store.writes.slice(writes), ['model/m1=Dead', 'package/p=Degraded']);
  w.container('n1', 'b', 'm2', 'exited');
  w.container('n1', 'a', 'm1', 'exited');
  await w.model.reconcile('m2');
  t.deepEqual(w.store.writes.slice(writes + 2), ['model/m2=Exited'], 'Degraded still (m1 Dead): the package is not written');
});

test(`at most ${MAX_FOLDED_PACKAGES} packages fold into one transaction; the rest take the two-step path`, async (t) => {
  for (const n of [MAX_FOLDED_PACKAGES - 1, MAX_FOLDED_PACKAGES, MAX_FOLDED_PACKAGES + 1]) {
    const w = await world();
    for (let i = 0; i < n; i++) w.packageDef(`p${String(i).padStart(2, '0')}`, ['m']);
    w.container('n1', 'c1', 'm', 'running');
    await w.model.reconcile('m');
    const folded = w.store.writes.filter((x) => x.startsWith('package/')).length;
    t.is(folded, Math.min(n, MAX_FOLDED_PACKAGES), `${n} packages`);
    for (let i = 0; i < n; i++) await w.pkg.reconcile(`p${String(i).padStart(2, '0')}`);
    t.is(w.store.writes.filter((x) => x.endsWith('=Running')).length, n + 1, 'the rest written by the package reconciler');
  }
});

test(`a fold guards at most ${MAX_READ_GUARDS} other models' states; a package needing more takes the two-step path`, async (t) => {
  for (const others of [MAX_READ_GUARDS - 1, MAX_READ_GUARDS, MAX_READ_GUARDS + 1]) {
    const w = await world();
    const models = ['m', ...Array.from({ length: others }, (_, i) => `o${i}`)];
    w.packageDef('p', models);
    w.container('n1', 'c1', 'm', 'running');
    await w.model.reconcile('m');
    t.is(w.store.writes.includes('package/p=Running'), others <= MAX_READ_GUARDS, `${others} other models`);
  }
});

test(`saturated — ${FOLD_BACKLOG_LIMIT} model keys waiting for a worker, or ${FOLD_BACKLOG_LIMIT} writes waiting for a transaction slot — the two steps pipeline instead`, async (t) => {
  for (const waiting of [1, FOLD_BACKLOG_LIMIT - 1, FOLD_BACKLOG_LIMIT, FOLD_BACKLOG_LIMIT + 1]) {
    const saturated = waiting >= FOLD_BACKLOG_LIMIT;
    for (const what of ['model keys', 'writes'] as const) {
      const w = await world();
      w.packageDef('p', ['m']);
      if (what === 'model keys') w.busy.add(`model/*${waiting}`);
      else w.store.waiting = waiting;
      w.container('n1', 'c1', 'm', 'running');
      await w.model.reconcile('m');
      t.deepEqual(w.store.writes, saturated ? ['model/m=Running'] : ['model/m=Running', 'package/p=Running'], `${waiting} ${what} waiting`);
      if (saturated) {
        await w.pkg.reconcile('p');
        t.deepEqual(w.store.writes, ['model/m=Running', 'package/p=Running'], `${waiting} ${what} waiting: the package reconciler writes it`);
      }
    }
  }
});

test("a package's reconcile during a fold of it waits for the fold's answer, then runs again", async (t) => {
  const w = await world();
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'running');
  const fold = w.model.reconcile('m'); // its transaction is in flight until awaited
  const queuedBefore = w.queued.filter((q) => q === 'package/p').length;
  const deferred = w.pkg.reconcile('p'); // decides synchronously, before the fold's answer (a microtask away)
  t.is(w.queued.filter((q) => q === 'package/p').length, queuedBefore, 'not queued again before the fold is answered');
  await deferred;
  t.deepEqual(w.store.writes, ['model/m=Running', 'package/p=Running'], 'the package reconcile wrote nothing');
  await fold;
  t.is(w.queued.filter((q) => q === 'package/p').length, queuedBefore + 1, 'queued again once it is');
  await w.pkg.reconcile('p');
  t.is(w.store.writes.length, 2, 'and then finds the package right');
});

test('a fold samples the container-to-package lag even when a package worker runs first once the fold settles', async (t) => {
  const samples: number[] = [];
  const w = await fakeWorld({ clock: { now: () => NOW, elapsed: () => NOW }, foldPackages: true, lag: new LagTracker(() => 0, (s) => samples.push(s)) });
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'running');
  // A worker takes each package key the moment it is queued (as one does when the fold settles
  // and requeues a deferred package, before the model reconcile's own continuation runs).
  const push = w.queued.push.bind(w.queued);
  const runs: Promise<unknown>[] = [];
  w.queued.push = (...items: string[]) => {
    for (const i of items) if (i.startsWith('package/')) runs.push(w.pkg.reconcile(i.slice('package/'.length)));
    return push(...items);
  };
  await w.model.reconcile('m');
  await Promise.all(runs);
  t.deepEqual(w.store.writes, ['model/m=Running', 'package/p=Running']);
  t.is(samples.length, 1, 'one lag sample for the one package state written');
});

test('a folded package\'s history entry is not older than the model change that caused it: both at the time of the decision', async (t) => {
  let clock = NOW;
  const w = await fakeWorld({ clock: { now: () => (clock += 7), elapsed: () => clock }, foldPackages: true });
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'running');
  await w.model.reconcile('m');
  const [model, pkg] = w.store.history;
  t.like(model, { kind: 'model', name: 'm' });
  t.like(pkg, { kind: 'package', name: 'p' });
  t.is(model!.at, pkg!.at);
});

test('a fold over the store\'s transaction limits (etcd\'s set lower) writes the model alone; the package reconcile writes the package, and only written changes are reported', async (t) => {
  const transitions: string[] = [];
  const w = await fakeWorld({
    clock: { now: () => NOW, elapsed: () => NOW },
    foldPackages: true,
    observer: { invalidInput: () => undefined, reconcileRequest: () => undefined, transition: (kind, name, _from, to) => void transitions.push(`${kind}/${name}=${to}`) },
  });
  w.packageDef('p', ['m']);
  w.container('n1', 'c1', 'm', 'running');
  w.store.maxTransitions = 1;
  t.is(await w.model.reconcile('m'), undefined, 'not a failure: no retry with backoff');
  t.deepEqual(w.store.writes, ['model/m=Running']);
  t.deepEqual(transitions, ['model/m=Running'], 'the package decision that was not written is not reported');
  await w.pkg.reconcile('p');
  t.deepEqual(w.store.writes, ['model/m=Running', 'package/p=Running']);
  t.deepEqual(transitions, ['model/m=Running', 'package/p=Running']);
  // Under the limit again: folded.
  w.store.maxTransitions = 2;
  w.container('n1', 'c1', 'm', 'dead');
  await w.model.reconcile('m');
  t.deepEqual(w.store.writes.slice(2), ['model/m=Dead', 'package/p=Error']);
});
