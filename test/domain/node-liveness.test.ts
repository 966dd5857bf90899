// Node leases (contract §1, "Node leases") without etcd: the pure readiness rule, then the rule
// matrix through the fleet, the event mapping and the model, package and reconcile-request
// reconcilers, with an in-memory ListerWatcher and a clock the test moves; and the lease
// bookkeeping (reconcilers/node-leases.ts) on its own.
import test from 'ava';
import { LIVENESS_OFF, nodeReadiness, type NodeLivenessOptions } from '../../domain/node-liveness.js';
import { NodeLeases } from '../../reconcilers/node-leases.js';
import { MAX_NODES_IN_REASON } from '../../reconcilers/model-reconciler.js';
import { silentObserver, type DomainObserver, POD_STATUS } from '../../reconcilers/ports.js';
import { fakeWorld } from '../fakes/world.js';

const T0 = Date.parse('2026-12-01T12:00:00Z');
const ON: NodeLivenessOptions = { enabled: true, graceMs: 1000 };

test('nodeReadiness: the rule, first match wins', (t) => {
  const at = (statusReady: boolean, leasePresent: boolean, absentFor: number, o = ON) =>
    nodeReadiness({ statusReady, leasePresent, leaseAbsentSince: T0 }, T0 + absentFor, o);
  t.deepEqual(at(false, true, 0), { ready: false, cause: 'status' }, 'NotReady status wins over a live lease');
  t.deepEqual(at(false, false, 0, { enabled: false, graceMs: 0 }), { ready: false, cause: 'status' }, 'status counts with liveness off');
  t.deepEqual(at(true, false, 1e9, { enabled: false, graceMs: 0 }), { ready: true }, 'liveness off: the lease is not read');
  t.deepEqual(at(true, true, 1e9), { ready: true }, 'lease present');
  t.deepEqual(at(true, false, 400), { ready: true, changesInMs: 600 }, 'absent within the grace');
  t.deepEqual(at(true, false, 1000), { ready: false, cause: 'lease' }, 'absent for the grace');
  t.deepEqual(at(true, false, 5000), { ready: false, cause: 'lease' }, 'absent past the grace');
  t.deepEqual(at(true, false, 0, { enabled: true, graceMs: 0 }), { ready: false, cause: 'lease' }, 'grace 0: absent is NotReady at once');
  t.deepEqual(at(true, false, -50), { ready: true, changesInMs: 1000 }, 'a clock that went back counts as just gone');
});

/** `t` moves both readings; `step` moves the wall clock alone, as a clock sync does. */
const steppingClock = () => ({ t: T0, step: 0, now(): number { return this.t + this.step; }, elapsed(): number { return this.t; } });

async function world(liveness?: NodeLivenessOptions) {
  const clock = steppingClock();
  const invalid: string[] = [];
  const observer: DomainObserver = { ...silentObserver, invalidInput: (reason, key) => void invalid.push(`${reason} ${key}`) };
  const { keys, lw, fleet, store, model, pkg, request, ac, queued, container } = await fakeWorld({ prefix: '/p', clock, observer, ...(liveness ? { liveness } : {}) });
  const lease = (node: string): void => void lw.put(keys.nodeLeaseKey(node), 'alive');
  const leaseGone = (node: string): void => lw.delete(keys.nodeLeaseKey(node));
  const state = (kind: 'model' | 'package', name: string): string | undefined => lw.get(keys.stateKey(kind, name))?.value;
  /** Recompute the models, then the package and its request, as the queues would. */
  const settle = async (): Promise<void> => {
    for (const m of ['m1', 'm2']) await model.reconcile(m);
    await pkg.reconcile('p');
    await request.reconcile('p');
  };
  // A package of two models with running containers on n1.
  lw.put(keys.packageDefKey('p'), 'spec:\n  models:\n    - {name: m1, node: n1}\n    - {name: m2, node: n1}\n');
  container('n1', 'c1', 'm1', 'running');
  container('n1', 'c2', 'm2', 'running');
  return { keys, lw, clock, fleet, store, model, ac, queued, invalid, lease, leaseGone, state, settle, container };
}

test('liveness off: no lease ever, hours later the node is Ready; lease keys are recognised, not invalid, and queue nothing', async (t) => {
  const w = await world();
  w.clock.t += 3_600_000;
  await w.settle();
  t.is(w.state('package', 'p'), 'Running');
  w.queued.length = 0;
  w.lease('n1');
  w.leaseGone('n1');
  w.clock.t += 3_600_000;
  t.deepEqual(w.queued, []);
  t.is(await w.model.reconcile('m1'), undefined, 'no requeue');
  t.is(w.state('model', 'm1'), 'Running');
  t.deepEqual(w.invalid, []);
  t.true(w.fleet.nodeReadiness('n1', w.clock.elapsed()).ready);
});

test('lease present: Ready however long, and no requeue', async (t) => {
  const w = await world(ON);
  w.lease('n1');
  w.clock.t += 3_600_000;
  t.is(await w.model.reconcile('m1'), undefined);
  await w.settle();
  t.is(w.state('package', 'p'), 'Running');
  t.deepEqual(w.ac.calls, []);
  t.deepEqual(w.invalid, [], 'the lease key is not invalid input');
});

test('lease gone: Ready within the grace (the model asks to be looked at when it ends), then Dead → Error → reconcile request', async (t) => {
  const w = await world(ON);
  w.lease('n1');
  await w.settle();
  t.is(w.state('package', 'p'), 'Running');
  w.queued.length = 0;
  w.leaseGone('n1');
  t.deepEqual(w.queued.sort(), ['model/m1+1000ms', 'model/m2+1000ms'], 'delayed by the grace');

  w.clock.t += 400;
  t.deepEqual(await w.model.reconcile('m1'), { requeueAfterMs: 600 }, 'within the grace: still Running, recheck when it ends');
  t.is(w.state('model', 'm1'), 'Running');

  w.clock.t += 600;
  await w.settle();
  t.is(w.state('model', 'm1'), 'Dead');
  t.is(w.state('model', 'm2'), 'Dead');
  t.is(w.state('package', 'p'), 'Error');
  t.deepEqual(w.ac.calls, [{ scenarioName: 'p', current: POD_STATUS.FAILED, desired: POD_STATUS.RUNNING }]);
});

test('a step of the wall clock neither cuts nor stretches the grace (a vehicle syncing its clock at boot)', async (t) => {
  for (const step of [3_600_000, -3_600_000]) {
    const w = await world(ON);
    w.lease('n1');
    await w.settle();
    w.leaseGone('n1');
    w.clock.t += 400;
    w.clock.step += step;
    t.deepEqual(await w.model.reconcile('m1'), { requeueAfterMs: 600 }, `a ${step} ms step: still within the grace`);
    await w.settle();
    t.is(w.state('package', 'p'), 'Running');
    t.deepEqual(w.ac.calls, []);
    w.clock.t += 600;
    await w.settle();
    t.is(w.state('model', 'm1'), 'Dead', `a ${step} ms step: Dead when the grace ends`);
    t.is(w.state('package', 'p'), 'Error');
  }
  // Never seen with a lease: absent since the start, on the same clock.
  const w = await world(ON);
  w.clock.step += 3_600_000;
  t.deepEqual(await w.model.reconcile('m1'), { requeueAfterMs: 1000 }, 'no lease yet, the wall clock an hour on: the grace still runs');
});

test('lease back: the node\'s models are queued at once and recover', async (t) => {
  const w = await world(ON);
  w.lease('n1');
  w.leaseGone('n1');
  w.clock.t += 5000;
  await w.settle();
  t.is(w.state('package', 'p'), 'Error');
  w.queued.length = 0;
  w.lease('n1');
  t.deepEqual(w.queued.sort(), ['model/m1', 'model/m2'], 'not delayed');
  w.queued.length = 0;
  w.lw.put(w.keys.nodeLeaseKey('n1'), 'renewed under another lease');
  t.deepEqual(w.queued, [], 'a changed value of a present lease changes nothing');
  await w.settle();
  t.is(w.state('package', 'p'), 'Running');
});

test('never had a lease: absent since the node was first seen (its containers)', async (t) => {
  const w = await world(ON);
  t.deepEqual(await w.model.reconcile('m1'), { requeueAfterMs: 1000 }, 'first seen now: the whole grace to go');
  w.clock.t += 999;
  t.deepEqual(await w.model.reconcile('m1'), { requeueAfterMs: 1 });
  t.is(w.state('model', 'm1'), 'Running');
  w.clock.t += 1;
  await w.settle();
  t.is(w.state('package', 'p'), 'Error');
  t.is(w.ac.calls.length, 1);
});

test('a node first seen later gets its own grace', async (t) => {
  const w = await world(ON);
  w.lease('n1');
  w.clock.t += 60_000;
  w.lw.put(w.keys.packageDefKey('p'), 'spec:\n  models:\n    - {name: m1, node: n1}\n    - {name: m2, node: n1}\n    - {name: m3, node: n2}\n');
  w.lw.put(w.keys.containerKey('n2', 'c3'), JSON.stringify({ id: 'c3', state: { Status: 'running' }, annotation: { model: 'm3' } }));
  t.deepEqual(await w.model.reconcile('m3'), { requeueAfterMs: 1000 });
  t.is(w.state('model', 'm3'), 'Running');
  w.clock.t += 1000;
  await w.model.reconcile('m3');
  t.is(w.state('model', 'm3'), 'Dead');
  t.is(w.state('model', 'm1') ?? 'Running', 'Running', 'n1 keeps its lease');
});

test('status NotReady wins over a live lease; the lease does not make it Ready again', async (t) => {
  const w = await world(ON);
  w.lease('n1');
  w.lw.put(w.keys.nodeStatusKey('n1'), 'NotReady');
  await w.settle();
  t.is(w.state('model', 'm1'), 'Dead');
  t.is(w.state('package', 'p'), 'Error');
  w.queued.length = 0;
  w.lw.put(w.keys.nodeStatusKey('n1'), 'Ready');
  t.deepEqual(w.queued.sort(), ['model/m1', 'model/m2']);
  await w.settle();
  t.is(w.state('package', 'p'), 'Running');
});

test('grace 0: a lease gone is NotReady at once (the delayed add is an add)', async (t) => {
  const w = await world({ enabled: true, graceMs: 0 });
  w.lease('n1');
  await w.settle();
  t.is(w.state('package', 'p'), 'Running');
  w.queued.length = 0;
  w.leaseGone('n1');
  t.deepEqual(w.queued.sort(), ['model/m1+0ms', 'model/m2+0ms']);
  await w.settle();
  t.is(w.state('package', 'p'), 'Error');
});

test('the history says why: the node and that its lease is absent', async (t) => {
  const w = await world(ON);
  w.lease('n1');
  await w.settle();
  w.leaseGone('n1');
  w.clock.t += 1000;
  await w.model.reconcile('m1');
  t.is(w.store.history.at(-1)?.reason, 'containers: 1 unknown; NotReady nodes: n1 (lease absent)');
});

test('only /node/{node}/status and /node/{node}/lease are read; other /node/ keys stay ignored, a bad status stays reported', async (t) => {
  const w = await world(ON);
  w.lw.put('/p/node/n1/labels', 'x');
  w.lw.put('/p/node/n1/lease/extra', 'x');
  t.false(w.fleet.leasePresent('n1'));
  w.lw.put(w.keys.nodeStatusKey('n1'), 'maybe');
  t.deepEqual(w.invalid, ['bad_node_status /p/node/n1/status']);
  w.lease('n1');
  t.true(w.fleet.leasePresent('n1'));
  t.true(w.fleet.nodeReadiness('n1', w.clock.elapsed()).ready, 'an invalid status counts as Ready');
});

// A node's bookkeeping lasts as long as it has a key (a container, its status or its lease): a
// node whose keys all went is forgotten, so it comes back as a new node would (and as after a
// restart), and node names that churn do not pile up.

test('a node whose last key goes is forgotten; one with a key left is kept; churning names stay bounded', async (t) => {
  const w = await world(ON);
  t.is(w.fleet.leaseTrackedNodes, 1, 'n1: containers, no lease');
  w.lw.put(w.keys.nodeStatusKey('n2'), 'Ready');
  w.lw.put(w.keys.containerKey('n2', 'c3'), JSON.stringify({ id: 'c3', state: { Status: 'running' }, annotation: { model: 'mx' } }));
  w.lease('n3');
  t.is(w.fleet.leaseTrackedNodes, 2, 'n1 and n2 without a lease; n3 has one');

  w.lw.delete(w.keys.containerKey('n2', 'c3'));
  t.is(w.fleet.leaseTrackedNodes, 2, 'n2 keeps its status key');
  w.lw.delete(w.keys.containerKey('n1', 'c1'));
  t.is(w.fleet.leaseTrackedNodes, 2, 'n1 keeps a container');
  w.lw.delete(w.keys.containerKey('n1', 'c2'));
  t.is(w.fleet.leaseTrackedNodes, 1, 'n1 has no key left');
  w.leaseGone('n3');
  t.is(w.fleet.leaseTrackedNodes, 1, 'n3 went with its lease: nothing kept for it');
  w.lw.delete(w.keys.nodeStatusKey('n2'));
  t.is(w.fleet.leaseTrackedNodes, 0);

  for (let i = 0; i < 1000; i++) {
    const key = w.keys.containerKey(`churn-${i}`, 'c');
    w.lw.put(key, JSON.stringify({ id: 'c', state: { Status: 'running' }, annotation: { model: 'mx' } }));
    w.clock.t += 1000;
    w.lw.delete(key);
  }
  t.is(w.fleet.leaseTrackedNodes, 0, 'one node a second, each gone: nothing left');
  t.false(w.fleet.nodeHasKeys('churn-0'));
});

test('a node whose keys all went comes back as a new node: container first, lease within the grace, never NotReady', async (t) => {
  const w = await world(ON);
  w.lease('n1');
  await w.settle();
  t.is(w.state('package', 'p'), 'Running');
  // n1 goes entirely: containers, then the lease (the agent and its node gone).
  w.lw.delete(w.keys.containerKey('n1', 'c1'));
  w.lw.delete(w.keys.containerKey('n1', 'c2'));
  w.leaseGone('n1');
  w.clock.t += 17_000;
  const calls = w.ac.calls.length;
  const history = w.store.history.length;

  // n1 comes back, and n2 (never seen) starts the same way: a container first, the lease 500 ms later.
  w.lw.put(w.keys.packageDefKey('p'), 'spec:\n  models:\n    - {name: m1, node: n1}\n    - {name: m2, node: n2}\n');
  const running = (id: string, m: string): string => JSON.stringify({ id, state: { Status: 'running' }, annotation: { model: m } });
  w.lw.put(w.keys.containerKey('n1', 'c1'), running('c1', 'm1'));
  w.lw.put(w.keys.containerKey('n2', 'c2'), running('c2', 'm2'));
  const returning = await w.model.reconcile('m1');
  const fresh = await w.model.reconcile('m2');
  t.deepEqual(fresh, { requeueAfterMs: 1000 }, 'a new node: the whole grace to go');
  t.deepEqual(returning, fresh, 'the returning node: the same, not absent since it went 17 s ago');
  w.clock.t += 500;
  w.lease('n1');
  w.lease('n2');
  await w.settle();
  t.is(w.state('model', 'm1'), 'Running');
  t.is(w.state('package', 'p'), 'Running');
  t.deepEqual(w.store.history.slice(history).filter((h) => h.to === 'Dead' || h.to === 'Error'), [], 'never Dead or Error');
  t.is(w.ac.calls.length, calls, 'no reconcile request');
});

test('a node that keeps its status key but loses its containers stays tracked: its absence still counts from when it was first seen', async (t) => {
  const w = await world(ON);
  w.lw.put(w.keys.nodeStatusKey('n1'), 'Ready');
  w.lw.delete(w.keys.containerKey('n1', 'c1'));
  w.lw.delete(w.keys.containerKey('n1', 'c2'));
  t.true(w.fleet.nodeHasKeys('n1'));
  t.is(w.fleet.leaseTrackedNodes, 1);
  w.clock.t += 17_000;
  w.lw.put(w.keys.containerKey('n1', 'c1'), JSON.stringify({ id: 'c1', state: { Status: 'running' }, annotation: { model: 'm1' } }));
  t.is(await w.model.reconcile('m1'), undefined);
  t.is(w.state('model', 'm1'), 'Dead', 'no lease since T0: NotReady, not a new grace');
});

test('NodeLeases: absent since the lease went, since the node was first seen without one, or since the start', (t) => {
  const clock = steppingClock();
  const present = new Set<string>();
  const leases = new NodeLeases(ON, clock, { statusReady: () => true, leasePresent: (n) => present.has(n) });
  clock.t = T0 + 200;
  leases.nodeSeen('seen');
  present.add('live');
  leases.nodeSeen('live');
  clock.t = T0 + 400;
  leases.leaseGone('gone');
  clock.t = T0 + 1000;
  t.deepEqual(leases.readiness('never', clock.elapsed()), { ready: false, cause: 'lease' }, 'never seen: absent since the start');
  t.deepEqual(leases.readiness('seen', clock.elapsed()), { ready: true, changesInMs: 200 }, 'first seen without a lease');
  t.deepEqual(leases.readiness('gone', clock.elapsed()), { ready: true, changesInMs: 400 }, 'since the lease went');
  t.deepEqual(leases.readiness('live', clock.elapsed()), { ready: true }, 'lease present');
  present.add('gone');
  leases.leaseBack('gone');
  t.deepEqual(leases.readiness('gone', clock.elapsed()), { ready: true });
  t.is(leases.trackedNodes, 1, 'seen');
  leases.forget('seen');
  t.is(leases.trackedNodes, 0, 'forgotten');
  clock.t = T0 + 5000;
  leases.nodeSeen('seen');
  t.deepEqual(leases.readiness('seen', clock.elapsed()), { ready: true, changesInMs: 1000 }, 'seen again: first seen now');
});

test('NodeLeases: liveness off reads the status alone', (t) => {
  const leases = new NodeLeases(LIVENESS_OFF, { now: () => T0, elapsed: () => T0 }, { statusReady: (n) => n !== 'down', leasePresent: () => false });
  t.deepEqual(leases.readiness('up', T0 + 10_000), { ready: true });
  t.deepEqual(leases.readiness('down', T0), { ready: false, cause: 'status' });
});

for (const nodes of [MAX_NODES_IN_REASON, MAX_NODES_IN_REASON + 1, 100]) {
  test(`a model on ${nodes} NotReady nodes: the history names ${nodes <= MAX_NODES_IN_REASON ? 'all of them' : `the first ${MAX_NODES_IN_REASON} and how many more`}`, async (t) => {
    const w = await world(ON);
    for (let i = 0; i < nodes; i++) {
      const node = `node-${String(i).padStart(3, '0')}-${'x'.repeat(150)}`;
      w.container(node, `c${i}`, 'm1', 'running');
      w.lw.put(w.keys.nodeStatusKey(node), 'NotReady');
    }
    await w.model.reconcile('m1');
    const reason = w.store.history.filter((h) => h.name === 'm1').at(-1)?.reason ?? '';
    const named = reason.split('NotReady nodes: ')[1]!;
    t.is(named.split(', ').length, Math.min(nodes, MAX_NODES_IN_REASON));
    if (nodes > MAX_NODES_IN_REASON) t.regex(named, new RegExp(` and ${nodes - MAX_NODES_IN_REASON} more$`));
    else t.notRegex(named, /more$/);
    t.true(reason.length < 2000, `${reason.length} characters`);
  });
}
