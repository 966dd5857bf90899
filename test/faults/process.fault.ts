// Faults of the statemanager process itself: stalled past a compaction (SIGSTOP), killed
// mid-storm (SIGKILL), and started after a compaction it never saw. Real etcd, the real entry
// point as a child process, a real gRPC ActionController.
import test from 'ava';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { FaultFleet, alive, countBy, errorEntries, faultConfig, history, redundantWrites, storm, waitConverged } from './_harness.js';

let etcd: EtcdServer | undefined;
let ac: FakeActionController | undefined;
const replicas: Replica[] = [];

test.afterEach.always(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.kill('SIGKILL')));
  await ac?.stop();
  await etcd?.stop();
  etcd = ac = undefined;
});

async function world(): Promise<{ etcd: EtcdServer; ac: FakeActionController; fleet: FaultFleet }> {
  etcd = await startEtcd();
  ac = await startActionController();
  const fleet = new FaultFleet();
  await fleet.seed(etcd.client());
  return { etcd, ac, fleet };
}

async function replica(e: EtcdServer, a: FakeActionController, identity: string, config: Record<string, unknown> = {}): Promise<Replica> {
  const r = await startReplica({ identity, etcdEndpoint: e.endpoint, acAddr: a.addr, config: faultConfig(config) });
  replicas.push(r);
  return r;
}

function tail(r: Replica): string {
  return r.output.slice(-15).join('\n');
}

test.serial('SIGSTOP during a storm of 1 KiB values, compaction past its revision, SIGCONT: alive and converged', async (t) => {
  const { etcd, ac, fleet } = await world();
  const c = etcd.client();
  const sm = await replica(etcd, ac, 'stopped');
  t.true((await waitConverged(c, 30_000)).check.ok, 'converged before the fault');

  sm.process.kill('SIGSTOP');
  // 50,000 updates of 1 KiB, some deletions the process will only learn of by listing again.
  const s = await storm(c, fleet, { updates: 50_000, inFlight: 64, padBytes: 1024, deleteShare: 0.05, seed: 7 });
  await c.kv.compact({ revision: String(s.lastRevision), physical: true });
  sm.process.kill('SIGCONT');
  const resumedAt = Date.now();

  const converged = await waitConverged(c, 60_000, resumedAt);
  t.true(alive(sm), `the process is alive after SIGCONT:\n${tail(sm)}`);
  t.true(converged.check.ok, converged.check.mismatches.join('\n'));
  t.log(`SIGSTOP + ${s.written} updates + compaction: converged ${converged.ms} ms after SIGCONT`);
  // Stays up: the crash came from responses processed after the relist.
  await new Promise((r) => setTimeout(r, 2000));
  t.true(alive(sm), `alive 2 s later:\n${tail(sm)}`);
  t.true(((await sm.metric('statemanager_watch_restarts_total', 'informer="containers",reason="compacted"')) ?? 0) >= 1, 'the compaction was seen');
  t.deepEqual(redundantWrites(await history(c)), []);
});

test.serial('SIGKILL mid-storm, restart: converged, every Error entry reconciled at least once', async (t) => {
  const { etcd, ac, fleet } = await world();
  const c = etcd.client();
  const first = await replica(etcd, ac, 'killed');
  t.true((await waitConverged(c, 30_000)).check.ok);

  let stop = false;
  const load = storm(c, fleet, { rate: 1500, inFlight: 32, seed: 11, stop: () => stop });
  await new Promise((r) => setTimeout(r, 1500));
  await first.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 500));
  const second = await replica(etcd, ac, 'restarted');
  await new Promise((r) => setTimeout(r, 1500));
  stop = true;
  const s = await load;

  const converged = await waitConverged(c, 30_000, s.lastWriteAt);
  t.true(converged.check.ok, converged.check.mismatches.join('\n'));
  t.log(`SIGKILL mid-storm (${s.written} updates): converged ${converged.ms} ms after the last write`);
  t.true(alive(second), tail(second));

  // Every package in Error now has been reconciled at least once; no package got more calls than
  // it had Error entries, plus one for a delivery the killed process made but had not recorded.
  const entries = await history(c);
  const errors = errorEntries(entries);
  await new Promise((r) => setTimeout(r, 1000));
  const calls = countBy(ac.calls, (call) => call.scenario_name);
  const inError = [...Object.entries(await c.getAll().prefix('/package/').strings())].filter(([, v]) => v === 'Error').map(([k]) => k.split('/')[2]!);
  t.true(inError.length > 0, 'the storm put some packages in Error');
  for (const p of inError) t.true((calls.get(p) ?? 0) >= 1, `package ${p} is in Error and was never reconciled`);
  for (const [p, n] of calls) t.true(n <= (errors.get(p) ?? 0) + 1, `package ${p}: ${n} Reconcile calls for ${errors.get(p) ?? 0} Error entries`);
  t.deepEqual(redundantWrites(entries), []);
});

test.serial('compaction while stopped, then start: converged from the list', async (t) => {
  const { etcd, ac, fleet } = await world();
  const c = etcd.client();
  const first = await replica(etcd, ac, 'before');
  t.true((await waitConverged(c, 30_000)).check.ok);
  await first.kill('SIGTERM');
  const s = await storm(c, fleet, { updates: 5_000, inFlight: 32, deleteShare: 0.05, seed: 13 });
  await c.kv.compact({ revision: String(s.lastRevision), physical: true });
  const startedAt = Date.now();
  const second = await replica(etcd, ac, 'after');
  const converged = await waitConverged(c, 30_000, startedAt);
  t.true(converged.check.ok, converged.check.mismatches.join('\n'));
  t.true(alive(second));
  t.log(`compaction while stopped: converged ${converged.ms} ms after start`);
});
