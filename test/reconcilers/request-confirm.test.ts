// The reconcile-request reconciler asks the store, not its caches, before it calls the
// ActionController or drops a request, and does not call twice for a delivery it could not record
// (cases the deterministic simulation, test/sim, found mishandled).
import test from 'ava';
import { fakeWorld } from '../fakes/world.js';
import { silentObserver, type DomainObserver } from '../../reconcilers/ports.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

async function inError() {
  const w = await fakeWorld({ clock: { now: () => NOW, elapsed: () => NOW } });
  w.packageDef('p', ['m']);
  w.container('n1', 'c', 'm', 'dead');
  await w.model.reconcile('m');
  await w.pkg.reconcile('p');
  return w;
}

test('no call when the store says the package has left Error (the caches lag)', async (t) => {
  const w = await inError();
  w.store.confirmReconcileRequest = async () => ({ packageState: 'Running' });
  t.deepEqual(await w.request.reconcile('p'), { requeue: true });
  t.deepEqual(w.ac.calls, []);
});

test('no call when the request changed or went since the cache saw it', async (t) => {
  const w = await inError();
  w.store.confirmReconcileRequest = async () => undefined;
  t.deepEqual(await w.request.reconcile('p'), { requeue: true });
  t.deepEqual(w.ac.calls, []);
});

test('a delivery the store could not record is recorded on the retry without calling again', async (t) => {
  const w = await inError();
  const update = w.store.updateReconcileRequest.bind(w.store);
  w.store.updateReconcileRequest = async () => {
    throw Object.assign(new Error('etcd unavailable'), { retryAfterMs: 200 });
  };
  await t.throwsAsync(w.request.reconcile('p'));
  t.is(w.ac.calls.length, 1);
  w.store.updateReconcileRequest = update;
  await w.request.reconcile('p');
  t.is(w.ac.calls.length, 1, 'not called again');
  t.like(JSON.parse(w.lw.get(w.keys.reconcileRequestKey('p'))!.value), { deliveries: 1 });
});

test('a request is kept while the store still holds its package in Error, though the cache says otherwise', async (t) => {
  const w = await inError();
  w.lw.put(w.keys.stateKey('package', 'p'), 'Running');
  w.store.confirmReconcileRequest = async () => ({ packageState: 'Error' });
  t.deepEqual(await w.request.reconcile('p'), { requeue: true });
  t.truthy(w.lw.get(w.keys.reconcileRequestKey('p')));
  t.deepEqual(w.ac.calls, []);
});

/** A retry moved to now by a delivery that succeeded. */
const hurried = (q: string): boolean => q.startsWith('request/') && q.endsWith('+1ms');

/** Packages p1..pN, each with one dead model: every one in Error with a request. */
async function manyInError(n: number) {
  const w = await fakeWorld({ clock: { now: () => NOW, elapsed: () => NOW } });
  for (let i = 1; i <= n; i++) {
    w.packageDef(`p${i}`, [`m${i}`]);
    w.container('n1', `c${i}`, `m${i}`, 'dead');
    await w.model.reconcile(`m${i}`);
    await w.pkg.reconcile(`p${i}`);
  }
  return w;
}

// A black-box probe: 2,000 requests failed for 150 s (ActionController away), then took 30 s to
// deliver, each waiting out its own backoff (up to the 30 s retry cap) after it was back.
test('when the ActionController answers again, the requests whose delivery failed are tried at once', async (t) => {
  const w = await manyInError(3);
  w.ac.failing = true;
  for (const p of ['p1', 'p2', 'p3']) t.deepEqual(await w.request.reconcile(p), { requeue: true }, p);
  w.ac.failing = false;
  w.queued.length = 0;
  await w.request.reconcile('p2');
  t.is(w.ac.calls.length, 1);
  // The others' waiting retries move to now (1 ms): the queue keeps the earlier time, so none runs twice.
  t.deepEqual(w.queued.filter(hurried).sort(), ['request/p1+1ms', 'request/p3+1ms']);
  // Once: the next delivery that succeeds has nobody left to hurry.
  w.queued.length = 0;
  await w.request.reconcile('p1');
  t.deepEqual(w.queued.filter(hurried), []);
});

test('a delivery that succeeds after only its own failure hurries nothing; a request gone is not hurried', async (t) => {
  const w = await manyInError(4);
  w.ac.failing = true;
  await w.request.reconcile('p3');
  w.ac.failing = false;
  w.queued.length = 0;
  await w.request.reconcile('p3');
  t.deepEqual(w.queued.filter(hurried), [], 'its own failure only');
  // p1 and p2 fail; p2's request goes (its package left Error); p4's success hurries p1 alone.
  w.ac.failing = true;
  await w.request.reconcile('p1');
  await w.request.reconcile('p2');
  w.lw.delete(w.keys.reconcileRequestKey('p2'));
  await w.request.reconcile('p2');
  w.ac.failing = false;
  w.queued.length = 0;
  await w.request.reconcile('p4');
  t.deepEqual(w.queued.filter(hurried), ['request/p1+1ms']);
});

test('a repeat waits its delay, and no longer when the wall clock stepped back since the delivery', async (t) => {
  const clock = { wall: NOW, now(): number { return this.wall; }, elapsed: () => 0 };
  const w = await fakeWorld({ clock, repeat: { initialMs: 60_000, capMs: 60_000 } });
  w.packageDef('p', ['m']);
  w.container('n1', 'c', 'm', 'dead');
  await w.model.reconcile('m');
  await w.pkg.reconcile('p');
  await w.request.reconcile('p');
  t.is(w.ac.calls.length, 1);
  clock.wall += 20_000;
  t.deepEqual(await w.request.reconcile('p'), { requeueAfterMs: 40_000 }, 'the rest of the delay');
  t.is(w.ac.calls.length, 1);
  clock.wall -= 3_600_000; // the clock synced an hour back
  await w.request.reconcile('p');
  t.is(w.ac.calls.length, 2, 'repeated now, not in an hour and 40 s');
  t.like(JSON.parse(w.lw.get(w.keys.reconcileRequestKey('p'))!.value), { deliveries: 2 });
  clock.wall += 59_000;
  t.deepEqual(await w.request.reconcile('p'), { requeueAfterMs: 1_000 }, 'the next delay counts from the new clock');
});

test('a package found in Error with no request (another writer put it there) gets one, once, without a state write; a failed guard retries', async (t) => {
  const lines: string[] = [];
  const w = await fakeWorld({ clock: { now: () => NOW, elapsed: () => NOW }, observer: silentObserverFor(lines) });
  w.packageDef('p', ['m']);
  w.container('n1', 'c', 'm', 'dead');
  w.lw.put(w.keys.stateKey('model', 'p-unrelated'), 'Running');
  w.lw.put(w.keys.stateKey('model', 'm'), 'Dead');
  w.lw.put(w.keys.stateKey('package', 'p'), 'Error');
  const stateRevision = w.lw.get(w.keys.stateKey('package', 'p'))!.modRevision;
  const create = w.store.createReconcileRequest.bind(w.store);
  let refused = 1;
  w.store.createReconcileRequest = async (r, s) => (refused-- > 0 ? { committed: false } : create(r, s));
  t.deepEqual(await w.pkg.reconcile('p'), { requeue: true }, 'a guard that failed (the state moved meanwhile) is a retry');
  t.is(w.lw.get(w.keys.reconcileRequestKey('p')), undefined);
  t.is(await w.pkg.reconcile('p'), undefined);
  t.like(JSON.parse(w.lw.get(w.keys.reconcileRequestKey('p'))!.value), { package: 'p', state: 'Error', deliveries: 0, requestedAt: new Date(NOW).toISOString() });
  t.is(w.lw.get(w.keys.stateKey('package', 'p'))!.modRevision, stateRevision, 'the state is not written');
  t.deepEqual(lines, ['created p package found Error with no reconcile request (written so by another writer)']);
  await w.request.reconcile('p');
  t.is(w.ac.calls.length, 1);
  await w.pkg.reconcile('p');
  t.is(lines.filter((l) => l.startsWith('created')).length, 1, 'not again while the request stands');
});

test('a package found in Error that its models take out of it: a transition, no request', async (t) => {
  const w = await fakeWorld({ clock: { now: () => NOW, elapsed: () => NOW } });
  w.packageDef('p', ['m']);
  w.container('n1', 'c', 'm', 'running');
  w.lw.put(w.keys.stateKey('model', 'm'), 'Running');
  w.lw.put(w.keys.stateKey('package', 'p'), 'Error');
  await w.pkg.reconcile('p');
  t.is(w.state('package', 'p'), 'Running');
  t.is(w.lw.get(w.keys.reconcileRequestKey('p')), undefined);
});

function silentObserverFor(lines: string[]): DomainObserver {
  return { ...silentObserver, reconcileRequest: (result, pkg, detail) => void lines.push(`${result} ${pkg} ${detail ?? ''}`.trim()) };
}

test('an owed call for a package that left Error: a removal the store could not make is made on the retry without calling again; a failed call is retried', async (t) => {
  const w = await inError();
  w.lw.put(w.keys.stateKey('package', 'p'), 'Running');
  w.store.confirmReconcileRequest = async () => ({ packageState: 'Running' });
  w.ac.failing = true;
  t.deepEqual(await w.request.reconcile('p'), { requeue: true });
  t.truthy(w.lw.get(w.keys.reconcileRequestKey('p')), 'kept while its call fails');
  w.ac.failing = false;
  const remove = w.store.deleteReconcileRequest.bind(w.store);
  w.store.deleteReconcileRequest = async () => {
    throw Object.assign(new Error('etcd unavailable'), { retryAfterMs: 200 });
  };
  await t.throwsAsync(w.request.reconcile('p'));
  t.is(w.ac.calls.length, 1);
  w.store.deleteReconcileRequest = remove;
  await w.request.reconcile('p');
  t.is(w.ac.calls.length, 1, 'not called again');
  t.is(w.lw.get(w.keys.reconcileRequestKey('p')), undefined);
});
