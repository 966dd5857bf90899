// Faults of statemanager's peers: the leader replica killed under load, and the ActionController
// down for a long time (across a statemanager restart) or too slow to answer.
import test from 'ava';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { FaultFleet, alive, faultConfig, history, redundantWrites, storm, waitConverged } from './_harness.js';
import { startSlowActionController } from './_slow-action-controller.js';

let etcd: EtcdServer | undefined;
let ac: FakeActionController | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
const replicas: Replica[] = [];

test.afterEach.always(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.kill('SIGKILL')));
  for (const c of cleanups.splice(0)) await c();
  await ac?.stop();
  await etcd?.stop();
  etcd = ac = undefined;
});

async function replica(identity: string, acAddr: string, config: Record<string, unknown> = {}): Promise<Replica> {
  const r = await startReplica({ identity, etcdEndpoint: etcd!.endpoint, acAddr, config: faultConfig(config) });
  replicas.push(r);
  return r;
}

/** Put every container of `pkg` in `status` (one transaction). */
async function setPackage(fleet: FaultFleet, pkg: string, status: string): Promise<void> {
  const c = etcd!.client();
  const ops = fleet.containers
    .filter((r) => r.model.startsWith(`${pkg}-`))
    .map((r) => ({ request_put: { key: Buffer.from(`/container/${r.node}/${r.id}`), value: Buffer.from(FaultFleet.containerValue(r, status)) } }));
  await c.kv.txn({ compare: [], success: ops, failure: [] });
}

test.serial('leader killed under load: the follower converges, and no state is written by both', async (t) => {
  etcd = await startEtcd();
  ac = await startActionController();
  const fleet = new FaultFleet();
  const c = etcd.client();
  await fleet.seed(c);
  const le = { leaderElection: { enabled: true, leaseDuration: '3s' } };
  const a = await replica('ha-a', ac.addr, le);
  const b = await replica('ha-b', ac.addr, le);
  t.true((await waitConverged(c, 30_000)).check.ok);
  const leaderId = await c.get('/statemanager/leader').string();
  const [leader, follower] = leaderId === a.identity ? [a, b] : [b, a];

  let stop = false;
  const load = storm(c, fleet, { rate: 800, inFlight: 16, seed: 41, stop: () => stop });
  await new Promise((r) => setTimeout(r, 1500));
  const killedAt = Date.now();
  await leader.kill('SIGKILL');
  const deadAt = Date.now();
  await new Promise((r) => setTimeout(r, 5000));
  stop = true;
  const s = await load;
  const converged = await waitConverged(c, 30_000, s.lastWriteAt);
  t.true(converged.check.ok, converged.check.mismatches.join('\n'));
  t.true(alive(follower));
  t.is(await c.get('/statemanager/leader').string(), follower.identity);
  t.log(`leader SIGKILL under load: converged ${converged.ms} ms after the last write, ${Date.now() - killedAt} ms after the kill (lease 3 s)`);

  // Each history entry names the replica that decided it; a deposed leader's writes are refused
  // by the lease guard, so after the hand-over only the follower writes.
  const entries = await history(c);
  t.deepEqual(redundantWrites(entries), []);
  const sources = new Set(entries.map((e) => e.source));
  t.true([...sources].every((s2) => s2 === `controller/${leader.identity}` || s2 === `controller/${follower.identity}`), [...sources].join(','));
  // Never both at once: the old leader decided only before it died, the follower only after.
  const byLeader = entries.filter((e) => e.source === `controller/${leader.identity}`).map((e) => Date.parse(e.at));
  const byFollower = entries.filter((e) => e.source === `controller/${follower.identity}`).map((e) => Date.parse(e.at));
  t.true(byFollower.length > 0, 'the follower took over the writing');
  t.true(Math.max(...byLeader) <= deadAt, 'no decision of the old leader after it died');
  t.true(Math.min(...byFollower) >= killedAt, 'no decision of the follower while the old leader led');
});

test.serial('ActionController down for minutes across a restart: every pending request is delivered when it returns', async (t) => {
  etcd = await startEtcd();
  ac = await startActionController();
  const fleet = new FaultFleet({ nodes: 2, packages: 20, modelsPerPackage: 2, containersPerModel: 1 });
  const c = etcd.client();
  await fleet.seed(c);
  // A short backoff cap stands in for minutes of the production cap.
  const config = { reconcile: { repeatInitial: 0, retryBase: '100ms', retryCap: '2s' } };
  const first = await replica('ac-1', ac.addr, config);
  t.true((await waitConverged(c, 30_000)).check.ok);

  const downAt = Date.now();
  await ac.stop();
  const broken = ['p1', 'p5', 'p9', 'p13'];
  for (const p of broken) await setPackage(fleet, p, 'dead');
  await waitConverged(c, 15_000);
  for (const p of broken) t.is(await c.get(`/package/${p}/state`).string(), 'Error');
  await new Promise((r) => setTimeout(r, 3000));
  await first.kill('SIGTERM');
  const second = await replica('ac-2', ac.addr, config);
  await new Promise((r) => setTimeout(r, 3000));
  const pending = Object.keys(await c.getAll().prefix('/statemanager/reconcile/').strings()).length;
  t.is(pending, broken.length, 'the requests wait in etcd while the ActionController is down');

  const backAt = Date.now();
  await ac.restart();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && new Set(ac.calls.map((x) => x.scenario_name)).size < broken.length) await new Promise((r) => setTimeout(r, 50));
  const delivered = new Set(ac.calls.map((x) => x.scenario_name));
  t.deepEqual([...delivered].sort(), [...broken].sort());
  t.true(alive(second));
  t.log(`ActionController down ${backAt - downAt} ms across a restart: all ${broken.length} requests delivered ${Date.now() - backAt} ms after it returned`);
});

test.serial('a slow ActionController (answers after the deadline) blocks no other package', async (t) => {
  etcd = await startEtcd();
  ac = await startActionController();
  // p0's calls hang far past the deadline; everyone else's are answered at once.
  const slow = await startSlowActionController({ slowFor: (name) => name === 'p0', delayMs: 60_000 });
  cleanups.push(() => slow.stop());
  const fleet = new FaultFleet({ nodes: 2, packages: 12, modelsPerPackage: 1, containersPerModel: 1 });
  const c = etcd.client();
  await fleet.seed(c);
  await replica('slow', slow.addr, { actionController: { timeout: '1s' }, reconcile: { repeatInitial: 0, retryBase: '100ms', retryCap: '1s', workers: 2 } });
  t.true((await waitConverged(c, 30_000)).check.ok);
  await setPackage(fleet, 'p0', 'dead');
  await new Promise((r) => setTimeout(r, 300));
  const others = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];
  for (const p of others) await setPackage(fleet, p, 'dead');
  const start = Date.now();
  while (Date.now() - start < 15_000 && others.some((p) => !slow.answered.has(p))) await new Promise((r) => setTimeout(r, 50));
  const othersDoneMs = Date.now() - start;
  t.deepEqual(others.filter((p) => !slow.answered.has(p)), [], 'every other package reconciled while p0 hangs');
  while (Date.now() - start < 15_000 && (slow.calls.get('p0') ?? 0) < 2) await new Promise((r) => setTimeout(r, 50));
  t.true(slow.calls.get('p0')! >= 2, 'p0 is retried after its deadline');
  t.log(`slow ActionController: ${others.length} other packages reconciled within ${othersDoneMs} ms while p0 hung (p0 tried ${slow.calls.get('p0')} times)`);
});
