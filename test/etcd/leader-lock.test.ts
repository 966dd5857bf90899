// The leader lock's renewals, on a fake etcd3 client: the lease is renewed every third of it, each
// renewal a keep-alive of its own (keepaliveOnce, bounded by the 2/3 renew deadline) counted from
// when it was sent; a renewal unanswered 5/12 of the lease is retried (nudge), attempt by attempt,
// each bounded by 1/12; and the lock is given up at 2/3 of the lease when none is answered.
import { EventEmitter } from 'node:events';
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { EtcdLeaderLock } from '../../src/etcd/leader-lock.js';
import { silentLogger } from '../../controller/logger.js';
import { isLeadershipLost } from '../../controller/controller.js';
import type { EtcdWatchClient } from '../../src/etcd/watch-client.js';

class FakeLease extends EventEmitter {
  readonly onceCalls: { at: number; deadline: number }[] = [];
  readonly streams: FakeKeepAliveStream[] = [];
  /** The TTL etcd answers a renewal with ('0': it expired the lease). */
  ttlAnswer = '3';
  constructor(readonly answerOnce: (deadline: number, attemptMs: number) => Promise<void>) {
    super();
  }
  grant = async (): Promise<string> => '7';
  keepaliveOnce = (o: { deadline: number }): Promise<unknown> => {
    const at = Date.now();
    this.onceCalls.push({ at, deadline: o.deadline });
    return this.answerOnce(o.deadline, o.deadline - at);
  };
  release = (): void => undefined;
  revoke = async (): Promise<void> => undefined;
  /** The retries (bounded by what is left to the renew deadline), not the regular renewals (by the whole 2/3 of the lease). */
  get retries(): { at: number; deadline: number }[] {
    return this.onceCalls.filter((c) => c.deadline - c.at < REGULAR_MS - 10);
  }
  get regular(): { at: number; deadline: number }[] {
    return this.onceCalls.filter((c) => c.deadline - c.at >= REGULAR_MS - 10);
  }
}

/** A LeaseKeepAlive stream of etcd3's lease client (the lock's regular renewals): answered as the lease's answerOnce says. */
class FakeKeepAliveStream extends EventEmitter {
  /** Half-closed right after the write (etcd3 resets the member's connections when a writable stream fails). */
  endedAfterWrite = false;
  written = false;
  cancelled = false;
  settled = false;
  constructor(
    private readonly lease: FakeLease,
    private readonly deadline: number,
  ) {
    super();
    lease.streams.push(this);
  }
  write(): void {
    const at = Date.now();
    this.written = true;
    this.lease.onceCalls.push({ at, deadline: this.deadline });
    this.lease.answerOnce(this.deadline, this.deadline - at).then(
      () => this.settle(() => this.emit('data', { TTL: this.lease.ttlAnswer })),
      (err: unknown) => this.settle(() => this.emit('error', err)),
    );
  }
  end(): void {
    if (this.written) this.endedAfterWrite = true;
  }
  cancel(): void {
    this.cancelled = true;
    this.settle(() => this.emit('error', new Error('1 CANCELLED')));
  }
  private settle(fn: () => void): void {
    if (this.settled) return;
    this.settled = true;
    fn();
  }
}

/** etcd3's client as the lock uses it, over `lease`; `txn` answers the campaign. */
function fakeClient(lease: FakeLease, txn: () => Promise<unknown> = async () => ({ succeeded: true, responses: [], header: { revision: '1' } })): Etcd3 {
  return {
    lease: () => lease,
    leaseClient: { leaseKeepAlive: async (o: { deadline: number }) => new FakeKeepAliveStream(lease, o.deadline) },
    kv: { txn },
  } as unknown as Etcd3;
}

const LEASE_S = 3; // renews every 1,000 ms; retries after 1,250 ms, one more every 250 ms; gives up after 2,000 ms
const REGULAR_MS = 2_000; // a regular renewal's bound: the renew deadline
/** Whether an attempt bounded by `attemptMs` is a regular renewal (or the one before a campaign), not a retry. */
const isRegular = (attemptMs: number): boolean => attemptMs >= REGULAR_MS - 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const answered = async (): Promise<void> => undefined;
/** No answer: the attempt fails at its deadline. */
const unanswered = (deadline: number): Promise<void> => sleep(deadline - Date.now()).then(() => Promise.reject(new Error('4 DEADLINE_EXCEEDED')));

function lockWith(lease: FakeLease): EtcdLeaderLock {
  const client = fakeClient(lease);
  // The key's watch while held (watchKey): nothing happens to the key in these tests.
  const watcher = { watch: () => ({ close: () => undefined }) } as unknown as EtcdWatchClient;
  return new EtcdLeaderLock({ client, watcher, key: '/sm/leader', identity: 'a', leaseSeconds: LEASE_S, requestTimeoutMs: 5_000, logger: silentLogger });
}

test('renewals answered: one every third of the lease, each bounded by the renew deadline, no retry, the lock held', async (t) => {
  const lease = new FakeLease(answered);
  const lock = lockWith(lease);
  t.true(await lock.tryAcquire());
  let lost: string | undefined;
  void lock.lost().then((r) => (lost = r));
  await sleep(3_100);
  t.deepEqual(lease.retries, []);
  t.true(lease.regular.length >= 2 && lease.regular.length <= 4, `${lease.regular.length} renewals in 3.1 s`);
  t.true(lease.regular.every((c) => c.deadline - c.at > 1_990 && c.deadline - c.at <= 2_000), 'each bounded by the 2 s renew deadline');
  t.is(lost, undefined);
  t.true(lock.mayAct());
  await lock.release();
  const after = lease.onceCalls.length;
  await sleep(1_200);
  t.is(lease.onceCalls.length, after, 'no renewal once released');
});

test('regular renewals unanswered: retried after 5/12 of the lease (not before), each attempt bounded by what is left to the renew deadline, and the lock held past it', async (t) => {
  const lease = new FakeLease((deadline, attemptMs) => (isRegular(attemptMs) ? unanswered(deadline) : answered()));
  const lock = lockWith(lease);
  const acquiredAt = Date.now();
  t.true(await lock.tryAcquire());
  let lost: string | undefined;
  void lock.lost().then((r) => (lost = r));
  await sleep(4_000); // twice the renew deadline
  const first = lease.retries[0];
  t.truthy(first, 'retried');
  t.true(first!.at - acquiredAt >= 1_250, `first at ${first!.at - acquiredAt} ms, the threshold is 1,250 ms`);
  t.true(first!.at - acquiredAt < 1_250 + 1_000, `first at ${first!.at - acquiredAt} ms`);
  // Sent once 1,250 ms passed unrenewed: at most 750 ms left to the 2,000 ms deadline, at least a twelfth (250 ms).
  t.true(lease.retries.every((c) => c.deadline - c.at >= 240 && c.deadline - c.at <= 760), `bounds ${lease.retries.map((c) => c.deadline - c.at).join(', ')} ms`);
  // Each answered retry restarts the count: one every 1.25–1.5 s, not one per tick.
  t.true(lease.retries.length >= 2 && lease.retries.length <= 4, `${lease.retries.length} retries`);
  t.is(lost, undefined);
  await lock.release();
});

test('regular renewals and retries unanswered: at most three retries, then the lock is given up at 2/3 of the lease', async (t) => {
  const lease = new FakeLease(unanswered);
  const lock = lockWith(lease);
  const acquiredAt = Date.now();
  t.true(await lock.tryAcquire());
  const reason = await lock.lost();
  const lostAfter = Date.now() - acquiredAt;
  t.regex(reason, /lease not renewed for \d+ ms/);
  t.true(lostAfter >= 2_000 && lostAfter < 3_000, `given up after ${lostAfter} ms`);
  // One every 250 ms from 1,250 ms until the lock is given up at 2,000 ms.
  t.true(lease.retries.length >= 1 && lease.retries.length <= 4, `${lease.retries.length} retries`);
  t.true(lease.retries.every((c) => c.at - acquiredAt >= 1_250));
  t.false(lock.mayAct());
  await sleep(500);
  const after = lease.onceCalls.length;
  await sleep(1_100);
  t.is(lease.onceCalls.length, after, 'no renewal once given up');
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
// stayed held past the moment etcd could expire the lease (code review). Here the regular renewals
// (every 1 s of the 3 s lease, renew deadline 2 s) are answered `lateMs` after they were sent;
// retries get no answer within their 250 ms.
async function renewedLate(lateMs: number, forMs: number): Promise<{ lostAfterMs: number | undefined; mayActAtEnd: boolean }> {
  const lease = new FakeLease((deadline, attemptMs) => (isRegular(attemptMs) ? sleep(lateMs).then(() => undefined) : unanswered(deadline)));
  const lock = lockWith(lease);
  const acquiredAt = Date.now();
  if (!(await lock.tryAcquire())) throw new Error('not acquired');
  let lostAfterMs: number | undefined;
  void lock.lost().then(() => (lostAfterMs = Date.now() - acquiredAt));
  await sleep(forMs);
  const mayActAtEnd = lock.mayAct();
  await lock.release();
  return { lostAfterMs, mayActAtEnd };
}

test('renewals answered 0.5 s late (below a third of the lease): the lock is held', async (t) => {
  const r = await renewedLate(500, 3_500);
  t.is(r.lostAfterMs, undefined);
  t.true(r.mayActAtEnd);
});

test('renewals answered 1.2 s late (past a third of the lease): the renew deadline counts from their sending and the lock is given up', async (t) => {
  // The newest renewal answered was sent 1 s + 1.2 s before the next answer: past the 2 s deadline.
  const r = await renewedLate(1_200, 3_500);
  t.not(r.lostAfterMs, undefined, 'given up');
  t.true(r.lostAfterMs! >= 2_000 && r.lostAfterMs! < 3_300, `given up after ${r.lostAfterMs} ms`);
  t.false(r.mayActAtEnd);
});

test("a campaign under a kept lease whose renewals went unanswered renews it first: unanswered, the key is not taken; answered, it is, and held", async (t) => {
  let answering = false;
  const lease = new FakeLease((deadline) => (answering ? answered() : unanswered(deadline)));
  let winning = false;
  let txns = 0;
  const client = fakeClient(lease, async () => {
    txns++;
    return winning
      ? { succeeded: true, responses: [], header: { revision: '1' } }
      : { succeeded: false, responses: [{ response_range: { kvs: [{ lease: '9', value: Buffer.from('b') }] } }], header: { revision: '1' } };
  });
  const watcher = { watch: () => ({ close: () => undefined }) } as unknown as EtcdWatchClient;
  const lock = new EtcdLeaderLock({ client, watcher, key: '/sm/leader', identity: 'a', leaseSeconds: LEASE_S, requestTimeoutMs: 5_000, logger: silentLogger });
  t.false(await lock.tryAcquire(), 'another replica holds the key: the lease is granted and kept');
  t.is(txns, 1);
  // Its renewals go unanswered for 1.5 s (past 5/12 of the lease); then the key is free.
  await sleep(1_500);
  winning = true;
  const before = lease.onceCalls.length;
  const startedAt = Date.now();
  // A failed attempt (the elector counts and says it), not a campaign lost to another replica.
  await t.throwsAsync(lock.tryAcquire(), { message: /could not be renewed/ }, 'the renewal before the campaign is unanswered: no campaign');
  t.is(txns, 1, 'the key was not asked for');
  const first = lease.onceCalls.slice(before).find((c) => c.at >= startedAt);
  t.truthy(first, 'a renewal tried first');
  t.true(first!.deadline - first!.at >= REGULAR_MS - 10, 'bounded as a regular renewal (a slow link takes seconds)');
  answering = true;
  t.true(await lock.tryAcquire(), 'renewed, then won');
  t.is(txns, 2);
  t.true(lock.mayAct());
  let lost: string | undefined;
  void lock.lost().then((r) => (lost = r));
  await sleep(2_500);
  t.is(lost, undefined, 'held: counted from the renewal before the campaign, then the regular ones');
  t.true(lock.mayAct());
  await lock.release();
});

test('each regular renewal is half-closed once written, and the renewals under way are cancelled when the lock is released', async (t) => {
  // Each renewal answered 900 ms after it was sent: at 1.5 s the one sent at 1 s is under way.
  const lease = new FakeLease((deadline, attemptMs) => (isRegular(attemptMs) ? sleep(900).then(() => undefined) : unanswered(deadline)));
  const lock = lockWith(lease);
  t.true(await lock.tryAcquire());
  await sleep(1_500);
  const regular = lease.streams.filter((s) => s.written);
  t.true(regular.length >= 1, `${regular.length} renewals sent`);
  t.true(regular.every((s) => s.endedAfterWrite), 'half-closed: a failure then resets no connection (etcd3 resets only for a writable stream)');
  const open = lease.streams.filter((s) => !s.settled);
  t.true(open.length >= 1, `${open.length} under way`);
  await lock.release();
  t.true(open.every((s) => s.cancelled), 'cancelled at release, not left to their deadline');
});

test('a renewal etcd answers with TTL 0 (it expired the lease) loses the lock; a follower campaigns again with a new lease', async (t) => {
  const lease = new FakeLease(answered);
  const lock = lockWith(lease);
  t.true(await lock.tryAcquire());
  lease.ttlAnswer = '0';
  const reason = await lock.lost();
  t.regex(reason, /lease lost/);
  t.false(lock.mayAct());
  t.false(lock.isHeld());
});
