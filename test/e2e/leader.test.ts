// Several replicas on one real etcd: one leader writes, a killed leader is replaced within the
// lease, SIGTERM hands over faster, and a deposed leader's write is refused by the guard.
import test from 'ava';
import { EtcdLeaderLock, NotLeaderError } from '../../src/etcd/leader-lock.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { KeyLayout } from '../../domain/keys.js';
import { silentLogger } from '../../controller/logger.js';
import { sharedEnv } from '../helpers/shared-env.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { startReplica, type Replica } from '../helpers/replica.js';

const replicas: Replica[] = [];
const env = sharedEnv(test, () => Promise.all(replicas.map((r) => r.kill('SIGKILL'))));

const LEASE_S = 4;

async function pair(prefix: string): Promise<[Replica, Replica]> {
  const config = { keyPrefix: prefix, leaderElection: { enabled: true, leaseDuration: `${LEASE_S}s` } };
  const a = await startReplica({ identity: `${prefix}-a`, etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, config });
  const b = await startReplica({ identity: `${prefix}-b`, etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, config });
  replicas.push(a, b);
  return [a, b];
}

async function holder(w: FleetWriter): Promise<string | null> {
  return w.client.get(w.keys.leader).string();
}

async function writers(w: FleetWriter, kind: 'model' | 'package', name: string): Promise<Set<string>> {
  const entries = await w.client.getAll().prefix(w.keys.historyPrefix(kind, name)).strings();
  return new Set(Object.values(entries).map((v) => (JSON.parse(v) as { source: string }).source));
}

test.serial('exactly one replica leads and writes; SIGKILL of the leader hands over within the lease', async (t) => {
  const w = new FleetWriter(env.etcd.client(), '/ha1');
  await w.packageDef('p', ['m']);
  await w.container('n1', 'c1', 'm', 'running');
  const [a, b] = await pair('/ha1');
  await eventually(async () => assert.strictEqual(await w.state('package', 'p'), 'Running'), { timeoutMs: 20_000 });
  const leaderId = await holder(w);
  const [leader, follower] = leaderId === a.identity ? [a, b] : [b, a];
  t.is(leaderId, leader.identity);
  t.is(await leader.metric('leader_election_master_status', 'name="statemanager"'), 1);
  t.is(await follower.metric('leader_election_master_status', 'name="statemanager"'), 0);
  t.is((await follower.get('/readyz')).status, 200, 'a follower is ready');
  t.deepEqual(await writers(w, 'model', 'm'), new Set([`controller/${leader.identity}`]));

  await leader.kill('SIGKILL');
  const killedAt = Date.now();
  // Changed while nobody leads: the new leader must converge it.
  await w.container('n1', 'c1', 'm', 'exited');
  await eventually(async () => assert.strictEqual(await holder(w), follower.identity), { timeoutMs: (LEASE_S + 6) * 1000, intervalMs: 50 });
  const takeover = Date.now() - killedAt;
  t.log(`takeover after SIGKILL: ${takeover} ms (lease ${LEASE_S} s)`);
  t.true(takeover <= (LEASE_S + 2) * 1000, `takeover took ${takeover} ms`);
  await eventually(async () => assert.strictEqual(await w.state('package', 'p'), 'Exited'), { timeoutMs: 10_000 });
  t.deepEqual(await writers(w, 'package', 'p'), new Set([`controller/${leader.identity}`, `controller/${follower.identity}`]));
  t.is(await follower.metric('leader_election_master_status', 'name="statemanager"'), 1);
});

test.serial('SIGTERM of the leader hands over faster than the lease', async (t) => {
  const w = new FleetWriter(env.etcd.client(), '/ha2');
  await w.packageDef('p', ['m']);
  await w.container('n1', 'c1', 'm', 'running');
  const [a, b] = await pair('/ha2');
  await eventually(async () => assert.ok((await holder(w)) !== null), { timeoutMs: 20_000 });
  const leaderId = await holder(w);
  const [leader, follower] = leaderId === a.identity ? [a, b] : [b, a];
  const sentAt = Date.now();
  const exit = leader.kill('SIGTERM');
  await eventually(async () => assert.strictEqual(await holder(w), follower.identity), { timeoutMs: LEASE_S * 3000, intervalMs: 20 });
  const takeover = Date.now() - sentAt;
  t.log(`takeover after SIGTERM: ${takeover} ms (lease ${LEASE_S} s)`);
  t.true(takeover < LEASE_S * 1000, `handover took ${takeover} ms`);
  t.is(await exit, 0, 'SIGTERM exits cleanly');
  await w.container('n1', 'c1', 'm', 'paused');
  await eventually(async () => assert.strictEqual(await w.state('package', 'p'), 'Paused'), { timeoutMs: 10_000 });
});

for (const signal of ['SIGHUP', 'SIGQUIT'] as const) {
  test.serial(`${signal} of the leader stops it as SIGTERM does: said, the lock released, exit 0`, async (t) => {
    // Found by black-box probing: a hangup ended the process with no line and its lease held.
    const w = new FleetWriter(env.etcd.client(), `/ha-${signal}`);
    const [a, b] = await pair(`/ha-${signal}`);
    await eventually(async () => assert.ok((await holder(w)) !== null), { timeoutMs: 20_000 });
    const leader = (await holder(w)) === a.identity ? a : b;
    const follower = leader === a ? b : a;
    const sentAt = Date.now();
    const exit = leader.kill(signal);
    await eventually(async () => assert.strictEqual(await holder(w), follower.identity), { timeoutMs: LEASE_S * 3000, intervalMs: 20 });
    t.true(Date.now() - sentAt < LEASE_S * 1000, 'handed over before the lease ran out');
    t.is(await exit, 0);
    t.true(leader.output.some((l) => l.includes('"stopping"') && l.includes(signal)));
  });
}

test.serial('SIGTERM as soon as the process is ready exits 0 with no unexpected exception (three times)', async (t) => {
  // Found by black-box probing: 8 of 10 such stops ended with exit 70, the first election attempt
  // failing on the closed clients and logging after the log had ended ("write after end").
  for (let i = 0; i < 3; i++) {
    const r = await startReplica({ identity: `term-${i}`, etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, config: { keyPrefix: `/ha-term-${i}`, leaderElection: { enabled: true, leaseDuration: `${LEASE_S}s` } } });
    replicas.push(r);
    await eventually(() => assert.ok(r.output.some((l) => l.includes('statemanager ready'))), { timeoutMs: 20_000, intervalMs: 5 });
    t.is(await r.kill('SIGTERM'), 0, r.output.slice(-5).join('\n'));
    t.false(r.output.some((l) => l.includes('unexpected exception')));
  }
});

test.serial('signals sent again and again while stopping: exit 0 every time (three runs)', async (t) => {
  // Found by black-box probing: a process left to end by itself after `stopped` lost its signal
  // handlers on the way out, and a signal then killed it (4 to 6 runs of 10 with one every 1 ms).
  for (let i = 0; i < 3; i++) {
    const r = await startReplica({ identity: `burst-${i}`, etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, config: { keyPrefix: `/ha-burst-${i}` } });
    replicas.push(r);
    await eventually(() => assert.ok(r.output.some((l) => l.includes('statemanager ready'))), { timeoutMs: 20_000 });
    const exit = r.kill('SIGTERM');
    const burst = setInterval(() => void r.kill((['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const)[Math.floor(Math.random() * 4)]!), 1);
    const code = await exit;
    clearInterval(burst);
    t.is(code, 0, r.output.slice(-5).join('\n'));
    t.true(r.output.some((l) => l.includes('"stopped"')));
  }
});

test.serial("a deposed leader's write is refused by the guard", async (t) => {
  const keys = new KeyLayout('/ha3');
  const client = env.etcd.client();
  const lockA = new EtcdLeaderLock({ client, watcher: env.etcd.watchClient(), key: keys.leader, identity: 'a', leaseSeconds: 2, requestTimeoutMs: 3000, logger: silentLogger });
  t.true(await lockA.tryAcquire());
  const lost = lockA.lost();
  const storeA = new EtcdStateStore({ client, keys, historyLength: 10, requestTimeoutMs: 3000, guard: lockA });
  const entry = { kind: 'model' as const, name: 'm', from: null, to: 'Running', at: new Date().toISOString(), reason: 't', source: 'a', drawn: true };
  t.true((await storeA.writeState({ kind: 'model', name: 'm', to: 'Running', expected: undefined, history: entry })).committed);

  // A's lease ends behind its back (as after a partition), and B takes the lock.
  const other = env.etcd.client();
  const kv = (await other.kv.range({ key: Buffer.from(keys.leader) })).kvs[0]!;
  await other.leaseClient.leaseRevoke({ ID: kv.lease });
  const lockB = new EtcdLeaderLock({ client: other, watcher: env.etcd.watchClient(), key: keys.leader, identity: 'b', leaseSeconds: 2, requestTimeoutMs: 3000, logger: silentLogger });
  t.true(await lockB.tryAcquire());

  const stored = (await client.kv.range({ key: Buffer.from(keys.stateKey('model', 'm')) })).kvs[0]!;
  const expected = { modRevision: Number(stored.mod_revision), version: Number(stored.version) };
  await t.throwsAsync(
    storeA.writeState({ kind: 'model', name: 'm', to: 'Dead', expected, history: { ...entry, from: 'Running', to: 'Dead' } }),
    { instanceOf: NotLeaderError },
  );
  t.is(await client.get(keys.stateKey('model', 'm')).string(), 'Running');
  t.regex(await lost, /another lease|gone|lease|deleted/, 'lost by its lease, the key held by another, or the key deleted with the revoked lease (its watch may tell first)');
  t.false(lockA.isHeld());
  // Once it knows, it does not even try.
  t.throws(() => lockA.compares(), { instanceOf: NotLeaderError });
  await lockB.release();
});

test.serial('real etcd: the leader lock renews its lease by itself (half-closed keep-alives) past a TTL; with its regular renewals gone unanswered, its retries hold the lease past two TTLs', async (t) => {
  const keys = new KeyLayout('/ha5');
  const client = env.etcd.client();
  const lock = new EtcdLeaderLock({ client, watcher: env.etcd.watchClient(), key: keys.leader, identity: 'a', leaseSeconds: 3, requestTimeoutMs: 3000, logger: silentLogger });
  t.true(await lock.tryAcquire());
  let lost: string | undefined;
  void lock.lost().then((r) => (lost = r));
  const leaseId = (await client.kv.range({ key: Buffer.from(keys.leader) })).kvs[0]!.lease;
  // etcd3's own keep-alives are off: only the lock's renewals keep the 3 s lease.
  await new Promise((r) => setTimeout(r, 4_000));
  t.is(lost, undefined);
  t.true(lock.mayAct());
  t.is((await client.kv.range({ key: Buffer.from(keys.leader) })).kvs[0]?.lease, leaseId, 'renewed in etcd past its TTL');
  // The regular renewals (bounded by the whole 2 s renew deadline) get no answer from now on,
  // each failing at its deadline, as when they go to a member that answers none: the retries
  // (bounded by what is left of it) keep the lease.
  const own = lock as unknown as { keepAliveHalfClosed: (lease: unknown, attemptMs: number) => Promise<void> };
  const real = own.keepAliveHalfClosed.bind(lock);
  own.keepAliveHalfClosed = (lease, attemptMs) =>
    attemptMs >= 1_990 ? new Promise((_resolve, reject) => setTimeout(() => reject(new Error('4 DEADLINE_EXCEEDED')), attemptMs)) : real(lease, attemptMs);
  await new Promise((r) => setTimeout(r, 6_000)); // two TTLs, three renew deadlines
  t.is(lost, undefined);
  t.true(lock.isHeld());
  // etcd itself renewed it: the key is still there under the same lease.
  t.is((await client.kv.range({ key: Buffer.from(keys.leader) })).kvs[0]?.lease, leaseId);
  await lock.release();
});

test.serial('a restarted replica revokes the leader key its previous run left under its identity, once; another identity\'s key is never touched', async (t) => {
  const keys = new KeyLayout('/ha4');
  const client = env.etcd.client();
  const lock = (identity: string) => new EtcdLeaderLock({ client, watcher: env.etcd.watchClient(), key: keys.leader, identity, leaseSeconds: 30, requestTimeoutMs: 3000, logger: silentLogger });
  // The previous run of "r" died holding the key: a 60 s lease nobody renews.
  const stale = await client.lease(60, { autoKeepAlive: false }).grant();
  await client.put(keys.leader).value('r').lease(stale).exec();
  const r = lock('r');
  t.false(await r.tryAcquire(), 'the first answer finds the stale key and revokes it');
  t.is(await client.get(keys.leader).string(), null, 'the stale key is gone at once, not after 60 s');
  t.true(await r.tryAcquire());
  t.is(await r.holder(), 'r');

  // Misconfigured: a second live process with the same identity takes the key once...
  const twin = lock('r');
  t.false(await twin.tryAcquire());
  t.true(await twin.tryAcquire());
  const leaseOf = async () => (await client.kv.range({ key: Buffer.from(keys.leader) })).kvs[0]?.lease;
  const twinLease = await leaseOf();
  t.regex(await r.lost(), /lease|leader key was deleted/, 'the first lost its lease to the twin (the key deleted with it: its watch may tell first)');
  // ...and the first, whose first answer is spent, never takes it back: no ping-pong.
  for (let i = 0; i < 3; i++) t.false(await r.tryAcquire());
  t.is(await leaseOf(), twinLease, 'the twin still holds the key under its own lease');
  await twin.release();

  // A key under another identity is left to its lease, whatever the attempt.
  const other = await client.lease(60, { autoKeepAlive: false }).grant();
  await client.put(keys.leader).value('someone-else').lease(other).exec();
  const fresh = lock('r');
  t.false(await fresh.tryAcquire());
  t.false(await fresh.tryAcquire());
  t.is(await client.get(keys.leader).string(), 'someone-else');
  await client.leaseClient.leaseRevoke({ ID: other });
  await r.release();
  await fresh.release();
});

test.serial('without leader election the one replica reports itself the leader (leader_election_master_status 1), as it does all the work', async (t) => {
  // Found by an operator's audit: 0 on the only writer, and the dashboard's leader panel showed nobody.
  const w = new FleetWriter(env.etcd.client(), '/ha9');
  await w.packageDef('p', ['m']);
  await w.container('n1', 'c1', 'm', 'running');
  const solo = await startReplica({ identity: 'ha9-solo', etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, config: { keyPrefix: '/ha9', leaderElection: { enabled: false } } });
  replicas.push(solo);
  await eventually(async () => assert.strictEqual(await w.state('package', 'p'), 'Running'), { timeoutMs: 20_000 });
  t.is(await solo.metric('leader_election_master_status', 'name="statemanager"'), 1);
});

test.serial('a replica whose lease is taken from it counts the lost leadership (statemanager_leadership_lost_total), which a scraped gauge can miss', async (t) => {
  // Found by black-box probing: three losses in 40 s under overload showed only as a gauge's flaps.
  const w = new FleetWriter(env.etcd.client(), '/ha10');
  const r = await startReplica({ identity: 'ha10-a', etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, config: { keyPrefix: '/ha10', leaderElection: { enabled: true, leaseDuration: `${LEASE_S}s` } } });
  replicas.push(r);
  await eventually(async () => assert.strictEqual(await r.metric('leader_election_master_status', 'name="statemanager"'), 1), { timeoutMs: 20_000 });
  t.is(await r.metric('statemanager_leadership_lost_total'), 0, 'exported from the start, at 0');
  // Its lease ends behind its back (as after a partition).
  const kv = (await w.client.kv.range({ key: Buffer.from(w.keys.leader) })).kvs[0]!;
  await w.client.leaseClient.leaseRevoke({ ID: kv.lease });
  await eventually(async () => assert.strictEqual(await r.metric('statemanager_leadership_lost_total'), 1), { timeoutMs: 20_000 });
  // The only replica: it leads again, and the count stays.
  await eventually(async () => assert.strictEqual(await r.metric('leader_election_master_status', 'name="statemanager"'), 1), { timeoutMs: 20_000 });
  t.is(await r.metric('statemanager_leadership_lost_total'), 1);
});

// Found by a code review (each fails without its fix): nothing looked at the leader key while it
// was held, a stop during a campaign's lease grant left the key for a whole lease, and a replica
// held past its renew deadline still called the ActionController before its timer said so.
test.serial('the leader key deleted or put under another lease while held: lost at once, not at the next write', async (t) => {
  const keys = new KeyLayout('/ha-watch');
  const client = env.etcd.client();
  const lock = new EtcdLeaderLock({ client, watcher: env.etcd.watchClient(), key: keys.leader, identity: 'a', leaseSeconds: 30, requestTimeoutMs: 3000, logger: silentLogger });
  t.true(await lock.tryAcquire());
  const lost = lock.lost();
  const started = Date.now();
  await client.delete().key(keys.leader).exec(); // an operator's etcdctl del
  t.is(await lost, 'leader key was deleted');
  t.true(Date.now() - started < 3000, `${Date.now() - started} ms`);
  t.false(lock.isHeld());
  t.false(lock.mayAct());
  await lock.release();

  const again = new EtcdLeaderLock({ client, watcher: env.etcd.watchClient(), key: keys.leader, identity: 'b', leaseSeconds: 30, requestTimeoutMs: 3000, logger: silentLogger });
  t.true(await again.tryAcquire());
  const other = await client.lease(30, { autoKeepAlive: false }).grant();
  await client.put(keys.leader).value('x').lease(other).exec();
  t.is(await again.lost(), 'leader key is held by another lease');
  await client.leaseClient.leaseRevoke({ ID: other });
  await again.release();
});

test.serial('released while a campaign waits for its lease (a stop): the campaign keeps nothing, and no key is left', async (t) => {
  const keys = new KeyLayout('/ha-stop');
  const client = env.etcd.client();
  const lock = new EtcdLeaderLock({ client, watcher: env.etcd.watchClient(), key: keys.leader, identity: 'a', leaseSeconds: 30, requestTimeoutMs: 3000, logger: silentLogger });
  const campaign = lock.tryAcquire();
  // The grant is under way: release now, as a SIGTERM at that moment does.
  t.true(await lock.release());
  t.false(await campaign);
  t.false(lock.isHeld());
  t.is(await client.get(keys.leader).string(), null, 'no key held for the lease');
  await new Promise((r) => setTimeout(r, 300));
  t.is(await client.get(keys.leader).string(), null, 'nor put a moment later');
});

test.serial('mayAct: held and renewed within the renew deadline; a process held past it says no before its timer runs', async (t) => {
  const keys = new KeyLayout('/ha-act');
  const client = env.etcd.client();
  // 3 s lease: renew deadline 2 s.
  const lock = new EtcdLeaderLock({ client, watcher: env.etcd.watchClient(), key: keys.leader, identity: 'a', leaseSeconds: 3, requestTimeoutMs: 3000, logger: silentLogger });
  t.false(lock.mayAct(), 'not held');
  t.true(await lock.tryAcquire());
  t.true(lock.mayAct());
  // Held (a stall: GC, SIGSTOP, a starved CPU) for longer than the renew deadline, then asked
  // at once, before any timer or answer can run.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_100);
  t.true(lock.isHeld(), 'its deadline timer has not run yet');
  t.false(lock.mayAct(), 'but it may not act');
  await lock.release();
});
