// The leader lock's renewals, on a fake etcd3 client: a regular renewal that goes unanswered is
// retried on a stream of its own (nudge) after 5/12 of the lease, attempt by attempt, and the
// lock is given up at 2/3 of the lease when none of them is answered either.
import { EventEmitter } from 'node:events';
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { EtcdLeaderLock } from '../../src/etcd/leader-lock.js';
import { silentLogger } from '../../controller/logger.js';
import { isLeadershipLost } from '../../controller/controller.js';
import type { EtcdWatchClient } from '../../src/etcd/watch-client.js';

class FakeLease extends EventEmitter {
  readonly onceCalls: { at: number; deadline: number }[] = [];
  constructor(private readonly answerOnce: (deadline: number) => Promise<void>) {
    super();
  }
  grant = async (): Promise<string> => '7';
  keepaliveOnce = (o: { deadline: number }): Promise<unknown> => {
    this.onceCalls.push({ at: Date.now(), deadline: o.deadline });
    return this.answerOnce(o.deadline);
  };
  release = (): void => undefined;
  revoke = async (): Promise<void> => undefined;
}

const LEASE_S = 3; // nudges after 1,250 ms, 250 ms each; gives up after 2,000 ms

function lockWith(lease: FakeLease): EtcdLeaderLock {
  const client = {
    lease: () => lease,
    kv: { txn: async () => ({ succeeded: true, responses: [], header: { revision: '1' } }) },
  } as unknown as Etcd3;
  // The key's watch while held (watchKey): nothing happens to the key in these tests.
  const watcher = { watch: () => ({ close: () => undefined }) } as unknown as EtcdWatchClient;
  return new EtcdLeaderLock({ client, watcher, key: '/sm/leader', identity: 'a', leaseSeconds: LEASE_S, requestTimeoutMs: 5_000, logger: silentLogger });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('regular renewals answered: no renewal on a stream of its own, the lock held', async (t) => {
  const lease = new FakeLease(async () => undefined);
  const lock = lockWith(lease);
  t.true(await lock.tryAcquire());
  let lost: string | undefined;
  void lock.lost().then((r) => (lost = r));
  const timer = setInterval(() => lease.emit('keepaliveSucceeded'), 500);
  await sleep(3_000);
  clearInterval(timer);
  t.deepEqual(lease.onceCalls, []);
  t.is(lost, undefined);
  await lock.release();
});

test('regular renewals unanswered: renewed on a new stream after 5/12 of the lease (not before), each attempt bounded by 1/12, and the lock held past its renew deadline', async (t) => {
  const lease = new FakeLease(async () => undefined);
  const lock = lockWith(lease);
  const acquiredAt = Date.now();
  t.true(await lock.tryAcquire());
  let lost: string | undefined;
  void lock.lost().then((r) => (lost = r));
  await sleep(4_000); // twice the renew deadline
  const first = lease.onceCalls[0];
  t.truthy(first, 'renewed on a new stream');
  t.true(first!.at - acquiredAt >= 1_250, `first at ${first!.at - acquiredAt} ms, the threshold is 1,250 ms`);
  t.true(first!.at - acquiredAt < 1_250 + 1_000, `first at ${first!.at - acquiredAt} ms`);
  t.true(lease.onceCalls.every((c) => c.deadline - c.at > 240 && c.deadline - c.at <= 250), 'each attempt has 250 ms');
  // Each answered renewal restarts the count: one every 1.25–1.5 s, not one per tick.
  t.true(lease.onceCalls.length >= 2 && lease.onceCalls.length <= 4, `${lease.onceCalls.length} renewals on new streams`);
  t.is(lost, undefined);
  await lock.release();
});

test('regular and new-stream renewals unanswered: at most three attempts, then the lock is given up at 2/3 of the lease', async (t) => {
  const lease = new FakeLease((deadline) => sleep(deadline - Date.now()).then(() => Promise.reject(new Error('4 DEADLINE_EXCEEDED'))));
  const lock = lockWith(lease);
  const acquiredAt = Date.now();
  t.true(await lock.tryAcquire());
  const reason = await lock.lost();
  const lostAfter = Date.now() - acquiredAt;
  t.regex(reason, /lease not renewed for \d+ ms/);
  t.true(lostAfter >= 2_000 && lostAfter < 3_000, `given up after ${lostAfter} ms`);
  t.true(lease.onceCalls.length >= 1 && lease.onceCalls.length <= 3, `${lease.onceCalls.length} attempts`);
  t.true(lease.onceCalls.every((c) => c.at - acquiredAt >= 1_250));
  await sleep(500);
  const after = lease.onceCalls.length;
  await sleep(600);
  t.is(lease.onceCalls.length, after, 'no attempt once given up');
});

test('release says whether the lock was removed: true when its lease is revoked, false when etcd refuses the revoke (the key then stays until the lease expires)', async (t) => {
  const ok = new FakeLease(async () => undefined);
  const held = lockWith(ok);
  t.true(await held.tryAcquire());
  t.true(await held.release());
  const away = new FakeLease(async () => undefined);
  away.revoke = async () => {
    throw new Error('etcd is unreachable');
  };
  const stuck = lockWith(away);
  t.true(await stuck.tryAcquire());
  t.false(await stuck.release());
  t.true(await lockWith(new FakeLease(async () => undefined)).release(), 'nothing held: nothing left behind');
});

test('a write guard without the lock refuses with an error the controllers read as a lost leadership, not a failure', (t) => {
  const lock = lockWith(new FakeLease(async () => undefined));
  const err = t.throws(() => lock.compares());
  t.is(err?.message, 'not the leader: this replica does not hold the leader lock');
  t.true(isLeadershipLost(err));
  t.false(isLeadershipLost(new Error('not the leader')), 'the message alone is not the marker');
});

// A renewal's answer that comes late (a slow or saturated link) does not move when etcd took it:
// etcd starts the lease's TTL again when the renewal arrives. Counted from the answer, the lock
// stayed held past the moment etcd could expire the lease (code review). Here keep-alives go out
// every third of the 3 s lease (renew deadline 2 s) and each is answered `lateMs` after it was
// sent; renewals on a new stream get no answer within their 250 ms.
async function renewedLate(lateMs: number, forMs: number): Promise<{ lostAfterMs: number | undefined; mayActAtEnd: boolean }> {
  const lease = new FakeLease((deadline) => sleep(deadline - Date.now()).then(() => Promise.reject(new Error('4 DEADLINE_EXCEEDED'))));
  const lock = lockWith(lease);
  // etcd3's stream: established, then a keep-alive at once and every third of the lease.
  lease.emit('keepaliveEstablished');
  const acquiredAt = Date.now();
  const acquired = await lock.tryAcquire();
  if (!acquired) throw new Error('not acquired');
  let lostAfterMs: number | undefined;
  void lock.lost().then(() => (lostAfterMs = Date.now() - acquiredAt));
  const answers: NodeJS.Timeout[] = [];
  const fire = (): void => {
    lease.emit('keepaliveFired');
    answers.push(setTimeout(() => lease.emit('keepaliveSucceeded'), lateMs));
  };
  fire();
  const timer = setInterval(fire, (LEASE_S * 1000) / 3);
  await sleep(forMs);
  clearInterval(timer);
  for (const a of answers) clearTimeout(a);
  const mayActAtEnd = lock.mayAct();
  await lock.release();
  return { lostAfterMs, mayActAtEnd };
}

test('keep-alives answered 0.5 s late (below a third of the lease): the lock is held', async (t) => {
  const r = await renewedLate(500, 3_500);
  t.is(r.lostAfterMs, undefined);
  t.true(r.mayActAtEnd);
});

test('keep-alives answered 1.2 s late (past a third of the lease): the renew deadline counts from their sending and the lock is given up', async (t) => {
  // The newest renewal answered was sent 1 s + 1.2 s before the next answer: past the 2 s deadline.
  const r = await renewedLate(1_200, 3_500);
  t.not(r.lostAfterMs, undefined, 'given up');
  t.true(r.lostAfterMs! >= 2_000 && r.lostAfterMs! < 3_300, `given up after ${r.lostAfterMs} ms`);
  t.false(r.mayActAtEnd);
});

test("a campaign won after the lease's keep-alives went unanswered counts from the last renewal answered, not from winning", async (t) => {
  const lease = new FakeLease((deadline) => sleep(deadline - Date.now()).then(() => Promise.reject(new Error('4 DEADLINE_EXCEEDED'))));
  let winning = false;
  const client = {
    lease: () => lease,
    kv: {
      txn: async () =>
        winning
          ? { succeeded: true, responses: [], header: { revision: '1' } }
          : { succeeded: false, responses: [{ response_range: { kvs: [{ lease: '9', value: Buffer.from('b') }] } }], header: { revision: '1' } },
    },
  } as unknown as Etcd3;
  const watcher = { watch: () => ({ close: () => undefined }) } as unknown as EtcdWatchClient;
  const lock = new EtcdLeaderLock({ client, watcher, key: '/sm/leader', identity: 'a', leaseSeconds: LEASE_S, requestTimeoutMs: 5_000, logger: silentLogger });
  const grantedAt = Date.now();
  t.false(await lock.tryAcquire(), 'another replica holds the key: the lease is granted and kept');
  // Its keep-alives go out and are not answered for 1.5 s; then the key is free and won.
  lease.emit('keepaliveEstablished');
  lease.emit('keepaliveFired');
  await sleep(1_500);
  winning = true;
  t.true(await lock.tryAcquire());
  const wonAt = Date.now();
  t.true(lock.mayAct(), 'the grant, 1.5 s ago, is within the 2 s deadline');
  const reason = await lock.lost();
  const lostAfterGrant = Date.now() - grantedAt;
  t.regex(reason, /lease not renewed for \d+ ms/);
  // From the grant's sending: 2 s after it, not 2 s after winning (3.5 s).
  t.true(lostAfterGrant >= 2_000 && lostAfterGrant < 2_800, `given up ${lostAfterGrant} ms after the grant, ${Date.now() - wonAt} ms after winning`);
  t.false(lock.mayAct());
});
