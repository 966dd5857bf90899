// Faults of etcd: the only member stopped and restarted under load, and a three-member cluster
// losing the member on the first endpoint, then the leader member, under load.
import test from 'ava';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { EtcdCluster } from './_cluster.js';
import { FaultFleet, alive, faultConfig, history, redundantWrites, storm, waitConverged } from './_harness.js';

let etcd: EtcdServer | undefined;
let cluster: EtcdCluster | undefined;
let ac: FakeActionController | undefined;
const replicas: Replica[] = [];

test.afterEach.always(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.kill('SIGKILL')));
  await ac?.stop();
  await etcd?.stop();
  await cluster?.stop();
  etcd = cluster = ac = undefined;
});

async function readyz(r: Replica): Promise<number> {
  return (await r.get('/readyz')).status;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check().catch(() => false)) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  return -1;
}

test.serial('etcd stopped and restarted under load: /readyz 503 while gone, never exits, converges after', async (t) => {
  etcd = await startEtcd();
  ac = await startActionController();
  const fleet = new FaultFleet();
  const c = etcd.client();
  await fleet.seed(c);
  const sm = await startReplica({ identity: 'outage', etcdEndpoint: etcd.endpoint, acAddr: ac.addr, config: faultConfig() });
  replicas.push(sm);
  t.true((await waitConverged(c, 30_000)).check.ok);

  let stop = false;
  const load = storm(c, fleet, { rate: 500, inFlight: 16, seed: 21, tolerateErrors: true, stop: () => stop });
  await new Promise((r) => setTimeout(r, 1000));
  const killedAt = Date.now();
  await etcd.kill('SIGKILL');
  const notReadyMs = await until(async () => (await readyz(sm)) === 503, 10_000);
  t.true(notReadyMs >= 0, '/readyz turns 503 while etcd is gone');
  await new Promise((r) => setTimeout(r, Math.max(0, 4000 - (Date.now() - killedAt))));
  t.true(alive(sm), 'still running with etcd gone');
  await etcd.restart();
  const backAt = Date.now();
  // A 2 s burst after etcd returns.
  await new Promise((r) => setTimeout(r, 2000));
  stop = true;
  const s = await load;
  const readyMs = await until(async () => (await readyz(sm)) === 200, 10_000);

  const converged = await waitConverged(c, 30_000, s.lastWriteAt);
  t.true(converged.check.ok, converged.check.mismatches.join('\n'));
  t.true(alive(sm));
  t.log(`etcd outage 4 s: /readyz 503 after ${notReadyMs} ms, 200 again ${Date.now() - backAt - readyMs < 0 ? '?' : readyMs} ms after the burst; converged ${converged.ms} ms after the last write (target 2000 ms) — ${s.written} writes, ${s.failed} refused during the outage`);
  t.deepEqual(redundantWrites(await history(c)), []);
});

test.serial('three-member cluster: losing the first endpoint\'s member, then the leader, under load', async (t) => {
  cluster = await EtcdCluster.start(3);
  ac = await startActionController();
  const fleet = new FaultFleet();
  const c = cluster.client();
  await fleet.seed(c);
  const sm = await startReplica({
    identity: 'cluster',
    etcdEndpoint: cluster.endpoints.join(','),
    acAddr: ac.addr,
    config: faultConfig(),
  });
  replicas.push(sm);
  t.true((await waitConverged(c, 30_000)).check.ok);

  const figures: string[] = [];
  for (const which of ['first endpoint', 'leader'] as const) {
    let stop = false;
    const load = storm(c, fleet, { rate: 400, inFlight: 16, seed: which === 'leader' ? 31 : 32, tolerateErrors: true, stop: () => stop });
    await new Promise((r) => setTimeout(r, 1000));
    const victim = which === 'leader' ? await cluster.leader() : cluster.members[0]!;
    await cluster.kill(victim);
    await new Promise((r) => setTimeout(r, 3000));
    stop = true;
    const s = await load;
    const converged = await waitConverged(c, 30_000, s.lastWriteAt);
    t.true(converged.check.ok, `${which}: ${converged.check.mismatches.join('\n')}`);
    t.true(alive(sm));
    if (process.env.FAULT_LOGS) t.log(sm.output.filter((l) => /warn|error|deferred/.test(l)).slice(-40).join('\n'));
    figures.push(`${which} (${victim.name}) killed: converged ${converged.ms} ms after the last write (${s.written} writes, ${s.failed} refused)`);
    await cluster.restart(victim);
  }
  t.log(figures.join('; '));
  t.deepEqual(redundantWrites(await history(c)), []);
});
