// etcd outages against leadership (default 15 s lease, so a 10 s renew deadline): outages shorter
// than the renew deadline, between it and the lease TTL, and longer than the TTL, with one and
// with two replicas. After etcd returns a 2 s burst of container updates must converge quickly —
// not a lease TTL later, which is what a stepped-down leader's lease (given a fresh TTL by etcd
// when it restarts) used to cost — and every state write must come from the replica that held
// the leader key at that revision.
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { FaultFleet, alive, faultConfig, redundantWrites, storm, waitConverged, type HistoryEntry } from './_harness.js';

let etcd: EtcdServer | undefined;
let ac: FakeActionController | undefined;
const replicas: Replica[] = [];

test.afterEach.always(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.kill('SIGKILL')));
  await ac?.stop();
  await etcd?.stop();
  etcd = ac = undefined;
});

const LEASE = { leaderElection: { enabled: true, leaseDuration: '15s' } };
const LEADER_KEY = '/statemanager/leader';

/** Who held the leader key from each revision on (etcd is fresh: nothing is compacted). */
async function leaderTimeline(c: Etcd3): Promise<{ revision: number; holder: string | undefined }[]> {
  const now = Number((await c.kv.range({ key: Buffer.from(LEADER_KEY) })).header.revision);
  const out: { revision: number; holder: string | undefined }[] = [];
  const w = await c.watch().key(LEADER_KEY).startRevision('1').create();
  await new Promise<void>((resolve) => {
    const done = (): void => void w.cancel().then(() => resolve());
    w.on('data', (res) => {
      for (const e of res.events) out.push({ revision: Number(e.kv.mod_revision), holder: e.type === 'Put' ? e.kv.value.toString() : undefined });
      if (Number(res.header.revision) >= now) done();
    });
    // Nothing after `now`: etcd confirms with a progress notify when asked; a timer is enough here.
    setTimeout(done, 2000);
  });
  return out;
}

/** Every history entry with the revision that committed it. */
async function historyAt(c: Etcd3): Promise<(HistoryEntry & { revision: number })[]> {
  const res = await c.getAll().prefix('/statemanager/history/').exec();
  return res.kvs.map((kv) => ({ ...(JSON.parse(kv.value.toString()) as HistoryEntry), revision: Number(kv.create_revision) }));
}

function holderAt(timeline: { revision: number; holder: string | undefined }[], revision: number): string | undefined {
  let h: string | undefined;
  for (const e of timeline) {
    if (e.revision > revision) break;
    h = e.holder;
  }
  return h;
}

for (const outageS of [2, 10, 20, 40]) {
  for (const count of [1, 2]) {
    test.serial(`etcd down ${outageS} s under ${count} replica${count > 1 ? 's' : ''} (lease 15 s): converged soon after it returns, one leader writing`, async (t) => {
      etcd = await startEtcd();
      ac = await startActionController();
      const fleet = new FaultFleet({ nodes: 4, packages: 150, modelsPerPackage: 2, containersPerModel: 2 });
      const c = etcd.client();
      await fleet.seed(c);
      for (let i = 0; i < count; i++) {
        replicas.push(await startReplica({ identity: `outage-${outageS}-${i}`, etcdEndpoint: etcd.endpoint, acAddr: ac.addr, config: faultConfig(LEASE) }));
      }
      t.true((await waitConverged(c, 30_000)).check.ok, 'converged before the outage');

      await etcd.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, outageS * 1000));
      await etcd.restart();
      const backAt = Date.now();
      const s = await storm(c, fleet, { durationMs: 2000, rate: 300, inFlight: 8, seed: outageS * 10 + count, tolerateErrors: true });
      const converged = await waitConverged(c, 40_000, s.lastWriteAt);
      t.true(converged.check.ok, converged.check.mismatches.slice(0, 10).join('\n'));
      t.true(replicas.every(alive), 'no replica exited');
      t.log(`outage ${outageS} s, ${count} replica(s): converged ${converged.ms} ms after the last write (${s.written} writes, ${s.failed} refused), ${Date.now() - backAt} ms after etcd returned`);
      // Faster than a lease TTL (15 s): nobody waited for the stepped-down leader's lease.
      t.true(converged.ms <= 5000, `converged ${converged.ms} ms after the last write (goal 2,000 ms; a lease TTL is 15,000 ms)`);

      const timeline = await leaderTimeline(c);
      const entries = await historyAt(c);
      t.deepEqual(redundantWrites(entries), []);
      const strangers = entries.filter((e) => e.source.startsWith('controller/') && `controller/${holderAt(timeline, e.revision) ?? '(none)'}` !== e.source);
      t.deepEqual(strangers.slice(0, 5), [], 'every state write comes from the replica holding the leader key at that revision');
    });
  }
}
