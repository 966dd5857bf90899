// Node leases end to end: the real app wiring on a real etcd with nodeLiveness on. A node agent
// keeps /node/n1/lease attached to a real etcd lease; when it stops renewing, the key expires
// with the lease, the node turns NotReady after the grace, its models Dead, the package Error,
// and a real gRPC stand-in ActionController receives the reconcile request.
import test from 'ava';
import type { StateManagerApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/config.js';
import { startApp } from '../helpers/app.js';
import { sharedEnv } from '../helpers/shared-env.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';

const TTL_S = 2;
const GRACE_MS = 1000;

const apps: StateManagerApp[] = [];
const env = sharedEnv(test, () => Promise.all(apps.map((a) => a.stop())));
let n = 0;

/** A package of two models, each with two running containers on n1, and a scenario targeting it. */
async function fleetOnN1() {
  const i = ++n;
  const w = new FleetWriter(env.etcd.client(), `/lease${i}`);
  const pkg = `pkg${i}`;
  const scenario = `scn${i}`;
  const models = [`m${i}a`, `m${i}b`] as const;
  await w.packageDef(pkg, [...models]);
  await w.scenarioDef(scenario, pkg);
  for (const m of models) {
    await w.container('n1', `${m}-1`, m, 'running');
    await w.container('n1', `${m}-2`, m, 'running');
  }
  return { w, pkg, scenario, models };
}

async function run(w: FleetWriter, nodeLiveness: { enabled: boolean; grace?: string }): Promise<StateManagerApp> {
  const app = await startApp(env.etcd, env.ac.addr, { keyPrefix: w.prefix, nodeLiveness });
  apps.push(app);
  return app;
}

test('configuration: nodeLiveness is off with a grace of 0 by default; the grace is a duration; a misspelt field is an error', (t) => {
  t.deepEqual(parseConfig({}).nodeLiveness, { enabled: false, grace: 0 });
  t.deepEqual(parseConfig({ nodeLiveness: { enabled: true, grace: '1.5s' } }).nodeLiveness, { enabled: true, grace: 1500 });
  t.is(parseConfig({ nodeLiveness: { grace: 250 } }).nodeLiveness.grace, 250);
  t.throws(() => parseConfig({ nodeLiveness: { grace: 'soon' } }), { message: /nodeLiveness\.grace: "soon" is not a duration/ });
  t.throws(() => parseConfig({ nodeLiveness: { enable: true } }), { message: /nodeLiveness/ });
});

const packageIs = (w: FleetWriter, pkg: string, state: string, timeoutMs = 10_000): Promise<void> =>
  eventually(async () => assert.strictEqual(await w.state('package', pkg), state), { timeoutMs });

test('a node agent that stops renewing its lease: package Error within TTL + grace + 1 s, reconcile request delivered; a new lease brings it back', async (t) => {
  const { w, pkg, scenario, models } = await fleetOnN1();
  const lease = w.client.lease(TTL_S);
  await lease.put(w.keys.nodeLeaseKey('n1')).value('alive');
  await run(w, { enabled: true, grace: `${GRACE_MS}ms` });
  await packageIs(w, pkg, 'Running');
  t.is(await w.state('model', models[0]), 'Running');

  // The agent dies: no more keepalives; etcd expires the lease and deletes the key.
  lease.release();
  const stoppedAt = Date.now();
  const budget = TTL_S * 1000 + GRACE_MS + 1000;
  await packageIs(w, pkg, 'Error', budget);
  t.log(`Error ${Date.now() - stoppedAt} ms after the last keepalive (budget ${budget} ms)`);
  t.is(await w.client.get(w.keys.nodeLeaseKey('n1')).string(), null, 'the lease key expired with its lease');
  t.is(await w.state('model', models[0]), 'Dead');
  await eventually(() => assert.ok(env.ac.calls.some((c) => c.scenario_name === scenario)), { timeoutMs: 5000 });
  t.like(env.ac.calls.find((c) => c.scenario_name === scenario), { current: 'FAILED', desired: 'RUNNING' });

  // The agent comes back with a new lease: Ready at once, no grace to wait for.
  const again = w.client.lease(TTL_S);
  await again.put(w.keys.nodeLeaseKey('n1')).value('alive');
  await packageIs(w, pkg, 'Running', 3000);
  await again.revoke();
});

test('a revoked lease (the agent shutting down cleanly) counts from the revocation', async (t) => {
  const { w, pkg } = await fleetOnN1();
  const lease = w.client.lease(30);
  await lease.put(w.keys.nodeLeaseKey('n1')).value('alive');
  await run(w, { enabled: true, grace: `${GRACE_MS}ms` });
  await packageIs(w, pkg, 'Running');
  await lease.revoke();
  const revokedAt = Date.now();
  await packageIs(w, pkg, 'Error', GRACE_MS + 1000);
  t.true(Date.now() - revokedAt >= GRACE_MS - 50, 'not before the grace');
});

test('liveness off: a node whose lease key goes stays Ready, and the lease key is not invalid input', async (t) => {
  const { w, pkg, models } = await fleetOnN1();
  const lease = w.client.lease(TTL_S);
  await lease.put(w.keys.nodeLeaseKey('n1')).value('alive');
  const app = await run(w, { enabled: false });
  await packageIs(w, pkg, 'Running');
  t.true(app.fleet.leasePresent('n1'), 'a recognised key');
  await lease.revoke();
  await eventually(() => assert.strictEqual(app.fleet.leasePresent('n1'), false));
  // A reconcile after the lease went: its containers still count as they are.
  await w.container('n1', `${models[1]}-1`, models[1], 'paused');
  await w.container('n1', `${models[1]}-2`, models[1], 'paused');
  await eventually(async () => assert.strictEqual(await w.state('model', models[1]), 'Paused'));
  t.is(await w.state('model', models[0]), 'Running');
  t.is(await w.state('package', pkg), 'Running');
  const text = await app.metrics.registry.metrics();
  t.false(/^statemanager_invalid_input_total\{[^}]*\} [1-9]/m.test(text), 'nothing reported as invalid');
});

test('a node whose keys all went and that comes back (containers first, the lease within the grace) gets a new grace, like a new node', async (t) => {
  const { w, pkg, scenario, models } = await fleetOnN1();
  const lease = w.client.lease(30);
  await lease.put(w.keys.nodeLeaseKey('n1')).value('alive');
  const app = await run(w, { enabled: true, grace: `${GRACE_MS}ms` });
  await packageIs(w, pkg, 'Running');
  // n1 goes entirely (its containers, then its lease), and stays gone for three graces.
  for (const m of models) for (const id of [`${m}-1`, `${m}-2`]) await w.removeContainer('n1', id);
  await lease.revoke();
  await eventually(() => assert.strictEqual(app.fleet.nodeHasKeys('n1'), false));
  const trackedWhileGone = app.fleet.leaseTrackedNodes;
  await new Promise((r) => setTimeout(r, 3 * GRACE_MS));
  const calls = env.ac.calls.filter((c) => c.scenario_name === scenario).length;

  // Back: containers first, the lease 300 ms later; the states watched all along, past the grace.
  const seen = new Set<string>();
  const watching = (async () => {
    for (const until = Date.now() + 2 * GRACE_MS; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
      seen.add(`${await w.state('model', models[0])}/${await w.state('package', pkg)}`);
    }
  })();
  for (const m of models) for (const id of [`${m}-1`, `${m}-2`]) await w.container('n1', id, m, 'running');
  await new Promise((r) => setTimeout(r, 300));
  const again = w.client.lease(30);
  await again.put(w.keys.nodeLeaseKey('n1')).value('alive');
  await watching;
  t.false([...seen].some((s) => s.includes('Dead') || s.includes('Error')), `seen: ${[...seen].join(', ')}`);
  await packageIs(w, pkg, 'Running', 3000);
  t.is(env.ac.calls.filter((c) => c.scenario_name === scenario).length, calls, 'no reconcile request');
  t.is(trackedWhileGone, 0, 'nothing was kept for n1 while it had no key');
  await again.revoke();
});
