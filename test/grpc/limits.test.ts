// The per-identity token bucket and the bounded refusal log, in memory with a fake clock.
import test from 'ava';
import { RateLimiter } from '../../src/grpc/rate-limit.js';
import { ThrottledLog } from '../../src/throttled-log.js';
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
