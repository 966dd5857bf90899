// The elector's loop after failed attempts (a lock whose etcd refuses: NOSPACE, no quorum): it
// waits its retry period with jitter instead of the lock's change (which ends at once while no one
// holds the lock), and says so in one line, then at most one a minute while it lasts.
import test from 'ava';
import { FAILURE_LOG_EVERY_MS, LeaderElector, RETRY_JITTER, type LeaderLock } from '../../controller/leader-election.js';
import { captureLogger } from '../grpc/_support.js';

const RETRY_MS = 3000;

function world(failures: number, released: boolean | void = undefined) {
  const w = { clock: 0, attempts: 0, waitsForChange: 0, sleeps: [] as number[], random: 0.5, led: false, failures };
  const lock: LeaderLock = {
    tryAcquire: async () => {
      w.attempts++;
      if (w.attempts <= w.failures) throw new Error('etcdserver: mvcc: database space exceeded');
      return true;
    },
    // As the etcd lock does while no one holds the key: at once.
    waitForChange: async () => void w.waitsForChange++,
    lost: () => new Promise<string>(() => undefined),
    release: async () => released,
    holder: async () => undefined,
  };
  const logger = captureLogger();
  const elector = new LeaderElector({
    identity: 'me',
    lock,
    callbacks: { onStartedLeading: () => void (w.led = true), onStoppedLeading: () => undefined },
    retryPeriodMs: RETRY_MS,
    onLost: 'follow',
    logger,
    now: () => w.clock,
    random: () => w.random,
    sleep: async (ms) => {
      w.sleeps.push(ms);
      w.clock += ms;
      await new Promise((r) => setImmediate(r));
    },
  });
  return { w, elector, logger };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
}

test('a failed attempt waits the retry period times 1 to RETRY_JITTER, not for the lock to change; the next attempt that answers leads', async (t) => {
  const { w, elector } = world(3);
  w.random = 0.999;
  elector.start();
  await until(() => w.led);
  t.true(w.led);
  t.is(w.attempts, 4);
  t.is(w.waitsForChange, 0, 'a lock without holder would have ended the wait at once');
  t.is(w.sleeps.length, 3);
  for (const ms of w.sleeps) t.true(ms >= RETRY_MS && ms < RETRY_MS * RETRY_JITTER, `${ms} ms`);
  const low = world(1);
  low.w.random = 0;
  low.elector.start();
  await until(() => low.w.led);
  t.deepEqual(low.w.sleeps, [RETRY_MS], 'no jitter drawn: exactly the retry period');
  await elector.stop();
  await low.elector.stop();
});

test(`attempts failing in a row: one line, then none until FAILURE_LOG_EVERY_MS (${FAILURE_LOG_EVERY_MS} ms) after it (below, at), and one when attempts answer again`, async (t) => {
  // 21 failures 3 s apart (random 0: exactly the retry period): lines at 0 and at 60 s (the 21st
  // attempt fails at 60 s, so the 20th, at 57 s, is below it), then the recovery line.
  const { w, elector, logger } = world(21);
  w.random = 0;
  elector.start();
  await until(() => w.led);
  const failed = logger.lines.filter((l) => l.message === 'leader election attempt failed');
  t.deepEqual(
    failed.map((l) => l.meta.failedInRow),
    [1, 21],
    'the first failure, then the one at 60 s (the 20th, at 57 s, is below the interval)',
  );
  t.is(failed[0]!.meta.error, 'etcdserver: mvcc: database space exceeded');
  const back = logger.lines.filter((l) => l.message === 'leader election attempts answered again');
  t.deepEqual(back.map((l) => l.meta.failedInRow), [21]);
  t.is(w.attempts, 22);
  await elector.stop();
});

test(`past FAILURE_LOG_EVERY_MS after the last line (random 0.5: 3.3 s apart), the next failure is logged`, async (t) => {
  // Failures at 0, 3.3, …, 56.1, 59.4 (below 60 s: not logged), 62.7 s (past: logged).
  const { w, elector, logger } = world(20);
  w.random = 0.5;
  elector.start();
  await until(() => w.led);
  const failed = logger.lines.filter((l) => l.message === 'leader election attempt failed');
  t.deepEqual(failed.map((l) => l.meta.failedInRow), [1, 20]);
  await elector.stop();
});

test('stopping a leader says "released" only when the lock was removed; with etcd away it says the lock stays until its lease expires', async (t) => {
  for (const [released, level, line] of [
    [true, 'info', 'leadership released'],
    [undefined, 'info', 'leadership released'],
    [false, 'warn', 'leadership given up, but the lock could not be removed (etcd unreachable?): another replica takes over when its lease expires'],
  ] as const) {
    const { w, elector, logger } = world(0, released);
    elector.start();
    await until(() => w.led);
    await elector.stop();
    const said = logger.lines.filter((l) => /^leadership (released|given up)/.test(l.message)).map((l) => `${l.level} ${l.message}`);
    t.deepEqual(said, [`${level} ${line}`], String(released));
  }
});

test('an attempt that fails because the elector is stopping (its clients closed under it) is not logged', async (t) => {
  let fail!: (err: Error) => void;
  const lock: LeaderLock = {
    tryAcquire: () => new Promise<boolean>((_, reject) => (fail = reject)),
    waitForChange: async () => undefined,
    lost: () => new Promise<string>(() => undefined),
    release: async () => undefined,
    holder: async () => undefined,
  };
  const logger = captureLogger();
  const elector = new LeaderElector({ identity: 'me', lock, callbacks: { onStartedLeading: () => undefined, onStoppedLeading: () => undefined }, retryPeriodMs: RETRY_MS, onLost: 'follow', logger });
  elector.start();
  await until(() => fail !== undefined);
  await elector.stop();
  fail(new Error('Tried to call a Lease method on etcd3, but the client was already closed'));
  await until(() => false);
  t.deepEqual(logger.lines.map((l) => l.message), []);
});
