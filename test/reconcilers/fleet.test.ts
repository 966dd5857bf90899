// The fleet as a read model, without etcd: subscriptions by kind, the state API's reads, the
// sync flag, and bad input reported once per key where agents repeat it.
import test from 'ava';
import { Fleet } from '../../reconcilers/fleet.js';
import { KeyLayout } from '../../domain/keys.js';
import { silentObserver, type DomainObserver } from '../../reconcilers/ports.js';
import { FakeListerWatcher } from '../fakes/lister-watcher.js';

async function setup() {
  const keys = new KeyLayout('');
  const lw = new FakeListerWatcher();
  const invalid: string[] = [];
  const observer: DomainObserver = { ...silentObserver, invalidInput: (reason, key) => void invalid.push(`${reason} ${key}`) };
  const fleet = new Fleet({ keys, lw, observer });
  const synced = fleet.hasSynced();
  fleet.caches.start();
  await fleet.caches.waitForSync();
  return { keys, lw, fleet, invalid, synced };
}

test('hasSynced is false until every cache has listed', async (t) => {
  const { fleet, synced } = await setup();
  t.false(synced);
  t.true(fleet.hasSynced());
  await fleet.caches.stop();
});

test('onChange: a handler of one kind hears that kind only, after the cache has the value', async (t) => {
  const { keys, lw, fleet } = await setup();
  const heard: string[] = [];
  fleet.onChange('modelStates', (e) => void heard.push(`${e.type} ${e.key} ${fleet.storedModelState('m1')?.value.state}`));
  lw.put(keys.stateKey('package', 'p1'), 'Running');
  lw.put(keys.stateKey('model', 'm1'), 'Running');
  lw.delete(keys.stateKey('model', 'm1'));
  t.deepEqual(heard, [`added ${keys.stateKey('model', 'm1')} Running`, `deleted ${keys.stateKey('model', 'm1')} undefined`]);
  await fleet.caches.stop();
});

test('the state API reads any kind by name, lists it with names, and knows its revision', async (t) => {
  const { keys, lw, fleet } = await setup();
  lw.put(keys.stateKey('scenario', 's1'), 'Waiting');
  lw.put(keys.stateKey('scenario', 's2'), 'Completed');
  const kv = lw.put(keys.stateKey('model', 'm1'), 'Paused');
  t.is(fleet.storedState('scenario', 's1')?.value.state, 'Waiting');
  t.is(fleet.storedState('scenario', 'nope'), undefined);
  t.deepEqual([...fleet.storedStates('scenario')].map(([name, e]) => `${name}=${e.value.state}`).sort(), ['s1=Waiting', 's2=Completed']);
  t.is(fleet.stateRevision('model'), kv.modRevision);
  await fleet.caches.stop();
});

test('a container without a model is reported once per key; other bad input every time', async (t) => {
  const { keys, lw, fleet, invalid } = await setup();
  const noModel = JSON.stringify({ id: 'c1', state: { Status: 'running' }, annotation: {} });
  lw.put(keys.containerKey('n1', 'c1'), noModel);
  lw.put(keys.containerKey('n1', 'c1'), noModel);
  lw.put(keys.nodeStatusKey('n1'), 'maybe');
  lw.put(keys.nodeStatusKey('n1'), 'maybe');
  t.deepEqual(invalid, [`no_model ${keys.containerKey('n1', 'c1')}`, `bad_node_status ${keys.nodeStatusKey('n1')}`, `bad_node_status ${keys.nodeStatusKey('n1')}`]);
  await fleet.caches.stop();
});

test('reads by name find what the key built from the name holds, a name with a slash too', async (t) => {
  const { keys, lw, fleet } = await setup();
  lw.put(keys.stateKey('model', 'm1'), 'Running');
  lw.put(keys.stateKey('model', 'a/b'), 'Paused');
  lw.put(keys.stateKey('package', 'p1'), 'Running');
  lw.put(keys.packageDefKey('p1'), 'spec:\n  models:\n    - name: m1\n');
  lw.put(keys.reconcileRequestKey('p1'), '{}');
  lw.put(keys.nodeStatusKey('n1'), 'NotReady');
  lw.put(keys.nodeLeaseKey('n1'), 'x');
  t.is(fleet.storedModelState('m1')?.value.state, 'Running');
  t.is(fleet.storedState('model', 'm1')?.value.state, 'Running');
  t.is(fleet.storedModelState('a/b'), undefined, 'a key that parses to no name is not cached: by name or by key, nothing');
  t.is(fleet.storedModelState('a'), undefined);
  t.is(fleet.storedModelState(''), undefined);
  t.is(fleet.storedPackageState('p1')?.value.state, 'Running');
  t.is(fleet.storedState('package', 'p1')?.value.state, 'Running');
  t.deepEqual(fleet.modelsOfPackage('p1'), ['m1']);
  t.not(fleet.reconcileRequest('p1'), undefined);
  t.false(fleet.statusReady('n1'));
  t.true(fleet.leasePresent('n1'));
  t.true(fleet.statusReady('n2'));
  t.false(fleet.leasePresent('n2'));
  lw.delete(keys.stateKey('model', 'm1'));
  lw.delete(keys.nodeLeaseKey('n1'));
  lw.delete(keys.packageDefKey('p1'));
  t.is(fleet.storedModelState('m1'), undefined);
  t.false(fleet.leasePresent('n1'));
  t.false(fleet.statusReady('n1'));
  t.is(fleet.modelsOfPackage('p1'), undefined);
  await fleet.caches.stop();
});
