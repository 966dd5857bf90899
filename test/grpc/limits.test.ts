// The per-identity token bucket and the bounded refusal log, in memory with a fake clock.
import test from 'ava';
import { RateLimiter } from '../../src/grpc/rate-limit.js';
import { InFlightLimiter } from '../../src/grpc/in-flight.js';
import { ThrottledLog } from '../../controller/throttled-log.js';
import { captureLogger } from './_support.js';

test('rate limiter: a burst, then the rate; identities are separate; 0 turns it off', (t) => {
  let now = 0;
  const r = new RateLimiter({ perSecond: 10, burst: 3, now: () => now });
  t.deepEqual([1, 2, 3, 4].map(() => r.take('a')), [true, true, true, false]);
  t.true(r.take('b'));
  now += 100; // one token back
  t.true(r.take('a'));
  t.false(r.take('a'));
  now += 10_000; // refilled to the burst, not beyond
  t.deepEqual([1, 2, 3, 4].map(() => r.take('a')), [true, true, true, false]);
  const off = new RateLimiter({ perSecond: 0, burst: 1 });
  t.false(off.enabled);
  t.true([1, 2, 3].every(() => off.take('a')));
});

test('rate limiter and throttled log: a clock that steps back refuses and silences nothing', (t) => {
  let now = 10_000_000;
  const r = new RateLimiter({ perSecond: 10, burst: 3, now: () => now });
  t.deepEqual([1, 2, 3].map(() => r.take('a')), [true, true, true]);
  now -= 3_600_000; // an hour back
  t.false(r.take('a'), 'still empty: the step gives nothing');
  now += 100;
  t.true(r.take('a'), 'refilled at the rate from the step on, not an hour later');
  t.false(r.take('a'));
  const logger = captureLogger();
  const log = new ThrottledLog({ logger, perInterval: 1, intervalMs: 1000, now: () => now });
  log.warn('k', 'one', {});
  log.warn('k', 'suppressed', {});
  now -= 3_600_000;
  log.warn('k', 'after the step', {});
  t.deepEqual(logger.lines.map((l) => [l.message, l.meta.suppressedBefore]), [['one', undefined], ['after the step', 1]]);
});

test('throttled log: an interval that ends with lines suppressed and no line after says how many, with the last of them', async (t) => {
  const logger = captureLogger();
  const log = new ThrottledLog({ logger, perInterval: 1, intervalMs: 60 });
  for (const key of ['/a', '/b', '/c']) log.warn('bad', 'invalid value', { key });
  log.warn('other', 'refused', {});
  t.deepEqual(logger.lines.map((l) => [l.message, l.meta.key]), [['invalid value', '/a'], ['refused', undefined]], 'within the interval: the first of each kind');
  await new Promise((r) => setTimeout(r, 150));
  t.deepEqual(logger.lines.slice(2).map((l) => [l.level, l.message, l.meta.key, l.meta.suppressed]), [['warn', 'invalid value (the last of 2 such lines not logged in 0.06 s)', '/c', 2]], 'one summary, for the kind that had lines suppressed');
  log.warn('bad', 'invalid value', { key: '/d' });
  t.is(logger.lines.at(-1)!.meta.key, '/d');
  t.is(logger.lines.at(-1)!.meta.suppressedBefore, undefined, 'not counted twice');
});

test('rate limiter: the table is bounded; the least recently seen identity goes first', (t) => {
  const r = new RateLimiter({ perSecond: 1, burst: 1, maxIdentities: 2, now: () => 0 });
  t.true(r.take('a'));
  t.true(r.take('b'));
  t.false(r.take('a')); // a seen again: b is now the oldest
  t.true(r.take('c')); // evicts b
  t.is(r.size, 2);
  t.false(r.take('a')); // a kept its empty bucket
  t.true(r.take('b')); // b starts afresh
});

test('throttled log: at most N lines per kind per interval; the next line says how many were suppressed', (t) => {
  let now = 0;
  const logger = captureLogger();
  const log = new ThrottledLog({ logger, perInterval: 2, intervalMs: 1000, now: () => now });
  for (let i = 0; i < 5; i++) log.warn('denied', 'gRPC call denied', { i });
  log.warn('unauthenticated', 'gRPC call unauthenticated', {});
  t.deepEqual(logger.lines.map((l) => [l.message, l.meta.i]), [
    ['gRPC call denied', 0],
    ['gRPC call denied', 1],
    ['gRPC call unauthenticated', undefined],
  ]);
  now = 1000;
  log.warn('denied', 'gRPC call denied', { i: 5 });
  t.like(logger.lines.at(-1)!.meta, { i: 5, suppressedBefore: 3 });
});

test('throttled log: errors at the error level, with their own window per kind beside the warnings', (t) => {
  let now = 0;
  const logger = captureLogger();
  const log = new ThrottledLog({ logger, perInterval: 2, intervalMs: 1000, now: () => now });
  for (let i = 0; i < 4; i++) log.error('read-failed', 'gRPC read failed', { i });
  log.warn('denied', 'gRPC call denied', {});
  t.deepEqual(logger.lines.map((l) => [l.level, l.message, l.meta.i]), [
    ['error', 'gRPC read failed', 0],
    ['error', 'gRPC read failed', 1],
    ['warn', 'gRPC call denied', undefined],
  ]);
  now = 999; // still within the interval: nothing more
  log.error('read-failed', 'gRPC read failed', { i: 4 });
  t.is(logger.lines.length, 3);
  now = 1000;
  log.error('read-failed', 'gRPC read failed', { i: 5 });
  t.like(logger.lines.at(-1)!, { level: 'error', meta: { i: 5, suppressedBefore: 3 } });
});

test('rate limiter: costs, refunds, a cost above the burst passes only on a full bucket, and the wait until it fits', (t) => {
  let now = 0;
  const r = new RateLimiter({ perSecond: 100, burst: 1000, now: () => now });
  t.true(r.take('a', 999)); // below the budget
  t.false(r.take('a', 2)); // just past it: nothing taken
  t.true(r.take('a', 1)); // exactly at it
  t.is(r.available('a'), 0);
  t.is(r.waitMs('a', 50), 500);
  r.refund('a', 300);
  t.is(r.available('a'), 300);
  now += 10_000;
  t.true(r.take('a', 5000)); // over the burst: taken as the whole burst
  t.is(r.available('a'), 0);
  t.false(r.take('a', 5000));
  t.is(r.waitMs('a', 5000), 10_000);
  t.false(r.exhausted('b')); // never seen
  t.true(r.exhausted('a'));
});

test('calls in flight: at most N per identity; a slot is released once, and only by its owner once owned', (t) => {
  const f = new InFlightLimiter(2);
  const a1 = f.acquire('a')!;
  const a2 = f.acquire('a')!;
  t.is(f.acquire('a'), undefined);
  t.truthy(f.acquire('b'));
  a1.release();
  a1.release(); // idempotent
  t.is(f.inFlight('a'), 1);
  const a3 = f.acquire('a')!;
  t.is(f.acquire('a'), undefined);
  a2.own();
  t.true(a2.owned);
  a2.release();
  a3.release();
  t.is(f.inFlight('a'), 0);
  t.true([1, 2, 3].every(() => new InFlightLimiter(0).acquire('x') !== undefined));
});

test('calls in flight: a slot whose handler never answers is released after the safety delay, and not twice', async (t) => {
  const f = new InFlightLimiter(1);
  const s = f.acquire('a')!;
  s.own();
  s.releaseAfter(20);
  t.is(f.acquire('a'), undefined);
  await new Promise((r) => setTimeout(r, 60));
  const next = f.acquire('a');
  t.truthy(next);
  s.release(); // late answer of the first: no effect on the second's count
  t.is(f.inFlight('a'), 1);
});
