// The reconcile-request reconciler asks the store, not its caches, before it calls the
// ActionController or drops a request, and does not call twice for a delivery it could not record
// (cases the deterministic simulation, test/sim, found mishandled).
import test from 'ava';
import { fakeWorld } from '../fakes/world.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

async function inError() {
  const w = await fakeWorld({ clock: { now: () => NOW } });
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
