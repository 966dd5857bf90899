import test from 'ava';
import type { QueueMetricsProvider } from '../../controller/metrics.js';
import { ExponentialRateLimiter, type RateLimiter } from '../../controller/rate-limiter.js';
import { WorkQueue } from '../../controller/workqueue.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves when the queue reports a ready key; rejects after a generous deadline. */
function nextReady(queue: WorkQueue, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('no key became ready'));
    }, timeoutMs);
    const off = queue.onReady(() => {
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

function drain(queue: WorkQueue): string[] {
  const keys: string[] = [];
  for (let key = queue.get(); key !== undefined; key = queue.get()) {
    keys.push(key);
    queue.done(key);
  }
  return keys;
}

interface Recorded {
  provider: QueueMetricsProvider;
  depth: number;
  adds: number;
  retries: number;
  latency: number[];
  workDuration: number[];
  unfinished: number[];
  longest: number[];
}

function recordingMetrics(): Recorded {
  const r: Recorded = {
    depth: 0,
    adds: 0,
    retries: 0,
    latency: [],
    workDuration: [],
    unfinished: [],
    longest: [],
    provider: undefined as unknown as QueueMetricsProvider,
  };
  r.provider = {
    depth: { inc: () => void r.depth++, dec: () => void r.depth-- },
    adds: { inc: (n = 1) => void (r.adds += n) },
    retries: { inc: (n = 1) => void (r.retries += n) },
    latency: { observe: (v) => void r.latency.push(v) },
    workDuration: { observe: (v) => void r.workDuration.push(v) },
    unfinishedWorkSeconds: { set: (v) => void r.unfinished.push(v) },
    longestRunningProcessorSeconds: { set: (v) => void r.longest.push(v) },
  };
  return r;
}

// --- rate limiter ---

test('exponential backoff doubles per failure, is capped, and forget resets it', (t) => {
  const limiter = new ExponentialRateLimiter({ baseMs: 10, capMs: 50 });
  t.deepEqual(
    [1, 2, 3, 4, 5].map(() => limiter.when('a')),
    [10, 20, 40, 50, 50],
  );
  t.is(limiter.numRequeues('a'), 5);
  t.is(limiter.when('b'), 10, 'failures are tracked per key');
  limiter.forget('a');
  t.is(limiter.numRequeues('a'), 0);
  t.is(limiter.when('a'), 10);
  t.is(limiter.numRequeues('b'), 1);
});

test('exponential backoff stays capped after very many failures', (t) => {
  const limiter = new ExponentialRateLimiter({ baseMs: 5, capMs: 1_000 });
  let last = 0;
  for (let i = 0; i < 2_000; i++) last = limiter.when('k');
  t.is(last, 1_000);
});

test('with jitter a delay is between half and all of the backoff, at the cap too, and keys failing together spread', (t) => {
  const limiter = new ExponentialRateLimiter({ baseMs: 10, capMs: 50, jitter: true });
  const firsts: number[] = [];
  for (let k = 0; k < 200; k++) {
    const delays = [1, 2, 3, 4, 5].map(() => limiter.when(`k${k}`));
    // Below, at and past the cap: 10, 20, 40, then 50 twice.
    [10, 20, 40, 50, 50].forEach((full, i) => t.true(delays[i]! >= full / 2 && delays[i]! <= full, `key ${k}, retry ${i + 1}: ${delays[i]} of ${full}`));
    firsts.push(delays[0]!);
  }
  // 200 keys failing together do not retry in one moment: their first delays spread over the half that is random.
  const spread = Math.max(...firsts) - Math.min(...firsts);
  t.true(spread >= 2.5, `first delays spread over ${spread} ms of 5`);
  t.is(limiter.numRequeues('k0'), 5);
});

// --- basic queue semantics ---

test('a key added twice while waiting is queued once', (t) => {
  const m = recordingMetrics();
  const q = new WorkQueue({ name: 't', metrics: m.provider });
  q.add('a');
  q.add('b');
  q.add('a');
  t.is(q.len(), 2);
  t.deepEqual(drain(q), ['a', 'b']);
  t.is(m.adds, 2, 'the deduplicated add is not counted');
  q.shutDown();
});

test('get on an empty queue returns undefined and done of an unknown key is harmless', (t) => {
  const q = new WorkQueue({ name: 't' });
  t.is(q.get(), undefined);
  q.done('nope');
  t.is(q.processingCount(), 0);
  t.is(q.len(), 0);
});

test('a key being processed is not handed out again until done, then exactly once more', (t) => {
  const q = new WorkQueue({ name: 't' });
  q.add('a');
  t.is(q.get(), 'a');
  t.is(q.processingCount(), 1);
  q.add('a');
  q.add('a', 'low');
  q.add('a');
  t.is(q.len(), 0, 'the dirty key is not waiting while processing');
  t.is(q.get(), undefined, 'never handed to a second worker');
  q.done('a');
  t.is(q.len(), 1);
  t.is(q.get(), 'a');
  q.done('a');
  t.is(q.get(), undefined, 'several re-adds during processing yield one more run');
});

test('high lane is drained before low lane, FIFO within each lane', (t) => {
  const q = new WorkQueue({ name: 't' });
  q.add('l1', 'low');
  q.add('h1');
  q.add('l2', 'low');
  q.add('h2', 'high');
  q.add('l3', 'low');
  t.deepEqual(drain(q), ['h1', 'h2', 'l1', 'l2', 'l3']);
});

test('a waiting low key re-added as high is promoted; a high key is never demoted', (t) => {
  const q = new WorkQueue({ name: 't' });
  q.add('x', 'low');
  q.add('y', 'low');
  q.add('z', 'low');
  q.add('h');
  q.add('y', 'high');
  q.add('h', 'low');
  t.is(q.len(), 4);
  t.deepEqual(drain(q), ['h', 'y', 'x', 'z']);
});

test('promote moves a waiting low key to the high lane and does nothing else: not for a key in flight (no second pass), a high key, or an absent one', (t) => {
  const q = new WorkQueue({ name: 't' });
  q.add('x', 'low');
  q.add('y', 'low');
  q.add('h');
  q.promote('y');
  q.promote('h');
  q.promote('absent');
  t.is(q.len(), 3);
  t.false(q.hasWork('absent'), 'promote adds nothing');
  t.is(q.get(), 'h');
  q.promote('h'); // in flight
  t.false(q.addedWhileProcessing('h'), 'a key in flight is not queued again, as add() would');
  q.done('h');
  t.false(q.hasWork('h'));
  t.deepEqual(drain(q), ['y', 'x']);
});

test('a key re-added while processing keeps the highest priority asked for', (t) => {
  const q = new WorkQueue({ name: 't' });
  q.add('a');
  t.is(q.get(), 'a');
  q.add('a', 'low');
  q.add('b', 'low');
  t.deepEqual([q.get()], ['b']);
  q.add('a', 'high');
  q.add('c', 'low');
  q.done('b');
  q.done('a');
  t.deepEqual(drain(q), ['a', 'c'], 'a was promoted to the high lane while dirty');
});

test('handles 200,000 keys in order with promotions', (t) => {
  const q = new WorkQueue({ name: 'big' });
  const n = 200_000;
  for (let i = 0; i < n; i++) q.add(`k${i}`, 'low');
  for (let i = 0; i < n; i += 1_000) q.add(`k${i}`, 'high');
  t.is(q.len(), n);
  const got = drain(q);
  t.is(got.length, n);
  t.is(got[0], 'k0');
  t.is(got[1], 'k1000');
  t.is(got[199], 'k199000');
  t.is(got[200], 'k1', 'low lane continues in FIFO order after the promoted keys');
  t.is(got[got.length - 1], `k${n - 1}`);
  t.is(new Set(got).size, n);
});

test('onReady fires once per key that becomes ready, and can be unsubscribed', (t) => {
  const q = new WorkQueue({ name: 't' });
  let calls = 0;
  const off = q.onReady(() => calls++);
  q.add('a');
  q.add('a');
  q.add('b', 'low');
  q.add('b', 'high');
  t.is(calls, 2, 'duplicates and promotions do not fire');
  t.is(q.get(), 'a');
  q.add('a');
  t.is(calls, 2, 'a dirty key is not ready yet');
  q.done('a');
  t.is(calls, 3, 'done() of a dirty key makes it ready');
  off();
  q.add('c');
  t.is(calls, 3);
});

// --- delays and rate limiting ---

test('addAfter delays the key, then adds it and notifies', async (t) => {
  const q = new WorkQueue({ name: 't' });
  const ready = nextReady(q);
  q.addAfter('a', 20);
  t.is(q.len(), 0);
  await ready;
  t.is(q.get(), 'a');
});

test('addAfter with delay <= 0 adds at once', (t) => {
  const q = new WorkQueue({ name: 't' });
  q.addAfter('a', 0);
  q.addAfter('b', -5, 'low');
  t.deepEqual(drain(q), ['a', 'b']);
});

test('addAfter keeps the earlier time when a key is already delayed', async (t) => {
  const q = new WorkQueue({ name: 't' });
  // Later request after an earlier one: the earlier one stands.
  q.addAfter('early-first', 10);
  q.addAfter('early-first', 60_000);
  // Earlier request after a later one: it replaces the later one.
  q.addAfter('late-first', 60_000);
  q.addAfter('late-first', 10);
  await sleep(10);
  for (let i = 0; i < 250 && q.len() < 2; i++) await sleep(20);
  t.deepEqual(drain(q).sort(), ['early-first', 'late-first']);
  await sleep(30);
  t.is(q.len(), 0, 'the superseded later time does not add the key again soon');
  q.shutDown();
});

test('delayed keys fire in time order regardless of insertion order', async (t) => {
  const q = new WorkQueue({ name: 't' });
  const order: string[] = [];
  q.onReady(() => {
    const key = q.get();
    if (key) {
      order.push(key);
      q.done(key);
    }
  });
  q.addAfter('c', 90);
  q.addAfter('a', 10);
  q.addAfter('b', 50);
  for (let i = 0; i < 250 && order.length < 3; i++) await sleep(20);
  t.deepEqual(order, ['a', 'b', 'c']);
});

test('a delayed low key re-requested as high fires into the high lane', async (t) => {
  const q = new WorkQueue({ name: 't' });
  q.addAfter('d', 10, 'low');
  q.addAfter('d', 60_000, 'high');
  q.add('w', 'low');
  await nextReady(q);
  t.deepEqual(drain(q), ['d', 'w']);
  q.shutDown();
});

test('addRateLimited waits for the rate limiter, counts a retry, and forget resets', async (t) => {
  const asked: string[] = [];
  const failures = new Map<string, number>();
  const limiter: RateLimiter = {
    when: (key) => {
      asked.push(key);
      failures.set(key, (failures.get(key) ?? 0) + 1);
      return 15;
    },
    forget: (key) => void failures.delete(key),
    numRequeues: (key) => failures.get(key) ?? 0,
  };
  const m = recordingMetrics();
  const q = new WorkQueue({ name: 't', rateLimiter: limiter, metrics: m.provider });
  const ready = nextReady(q);
  q.addRateLimited('a');
  t.is(q.len(), 0, 'not added immediately');
  t.deepEqual(asked, ['a']);
  t.is(m.retries, 1);
  t.is(q.numRequeues('a'), 1);
  await ready;
  t.is(q.get(), 'a');
  q.done('a');
  q.forget('a');
  t.is(q.numRequeues('a'), 0);
  q.shutDown();
});

test('rate-limited retries back off exponentially per key', (t) => {
  const delays: number[] = [];
  const inner = new ExponentialRateLimiter({ baseMs: 1_000, capMs: 4_000 });
  const limiter: RateLimiter = {
    when: (key) => {
      const d = inner.when(key);
      delays.push(d);
      return d;
    },
    forget: (key) => inner.forget(key),
    numRequeues: (key) => inner.numRequeues(key),
  };
  const q = new WorkQueue({ name: 't', rateLimiter: limiter });
  for (let i = 0; i < 4; i++) q.addRateLimited('a');
  q.forget('a');
  q.addRateLimited('a');
  t.deepEqual(delays, [1_000, 2_000, 4_000, 4_000, 1_000]);
  q.shutDown();
});

// --- shutdown ---

test('shutDown rejects new adds and drops delayed ones', async (t) => {
  const q = new WorkQueue({ name: 't' });
  q.add('waiting');
  q.addAfter('delayed', 10);
  q.shutDown();
  t.true(q.isShuttingDown());
  q.add('new');
  q.addAfter('new-delayed', 0);
  q.addRateLimited('retry');
  await sleep(50);
  t.deepEqual(drain(q), ['waiting'], 'keys already waiting can still be taken');
});

test('shutDownWithDrain resolves only after processing keys are done', async (t) => {
  const q = new WorkQueue({ name: 't' });
  q.add('a');
  q.add('b');
  t.is(q.get(), 'a');
  t.is(q.get(), 'b');
  let drained = false;
  const drain = q.shutDownWithDrain().then(() => {
    drained = true;
  });
  await sleep(10);
  t.false(drained);
  q.done('a');
  await sleep(10);
  t.false(drained, 'b is still processing');
  q.done('b');
  await drain;
  t.true(drained);
  await q.shutDownWithDrain();
  t.pass('draining an idle, shut-down queue resolves at once');
});

// --- metrics ---

test('metrics: depth, adds, latency, work duration, retries', (t) => {
  let clock = 0;
  const m = recordingMetrics();
  const q = new WorkQueue({
    name: 't',
    metrics: m.provider,
    now: () => clock,
    rateLimiter: new ExponentialRateLimiter({ baseMs: 1_000, capMs: 1_000 }),
  });
  q.add('a');
  q.add('b');
  q.add('a');
  t.is(m.depth, 2);
  t.is(m.adds, 2);
  clock = 1_500;
  t.is(q.get(), 'a');
  t.is(m.depth, 1);
  t.deepEqual(m.latency, [1.5]);
  q.add('a');
  t.is(m.adds, 3, 'a re-add while processing is an add');
  t.is(m.depth, 2, 'and counts towards depth, as in client-go');
  clock = 2_000;
  q.done('a');
  t.deepEqual(m.workDuration, [0.5]);
  t.is(m.depth, 2);
  clock = 2_250;
  t.is(q.get(), 'b');
  t.is(q.get(), 'a');
  t.is(m.depth, 0);
  t.deepEqual(m.latency, [1.5, 2.25, 0.75]);
  q.addRateLimited('c');
  t.is(m.retries, 1);
  q.shutDown();
});

test('metrics: unfinished work and longest running processor', (t) => {
  let clock = 0;
  const m = recordingMetrics();
  const q = new WorkQueue({ name: 't', metrics: m.provider, now: () => clock });
  q.add('a');
  q.add('b');
  t.is(q.get(), 'a');
  clock = 1_000;
  t.is(q.get(), 'b');
  clock = 4_000;
  q.updateUnfinishedWork();
  t.deepEqual([m.unfinished.at(-1), m.longest.at(-1)], [7, 4]);
  q.done('a');
  q.updateUnfinishedWork();
  t.deepEqual([m.unfinished.at(-1), m.longest.at(-1)], [3, 3]);
  q.done('b');
  q.updateUnfinishedWork();
  t.deepEqual([m.unfinished.at(-1), m.longest.at(-1)], [0, 0]);
  q.shutDown();
});

test('metrics: unfinished work is refreshed periodically by a timer', async (t) => {
  const m = recordingMetrics();
  const q = new WorkQueue({ name: 't', metrics: m.provider, unfinishedWorkUpdatePeriodMs: 5 });
  q.add('a');
  q.get();
  for (let i = 0; i < 250 && m.longest.length < 2; i++) await sleep(20);
  t.true(m.longest.length >= 2);
  t.true(m.longest.every((v) => v >= 0));
  q.done('a');
  q.shutDown();
  const count = m.longest.length;
  await sleep(30);
  t.is(m.longest.length, count, 'the timer stops once the queue is shut down and drained');
});

test('delay and metrics timers do not keep the process alive', (t) => {
  const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  // Measured synchronously, so no other test's timers interleave.
  const before = refTimers();
  const q = new WorkQueue({ name: 't', metrics: recordingMetrics().provider });
  q.addAfter('a', 60_000);
  q.addAfter('b', 30_000);
  t.is(refTimers(), before);
  q.shutDown();
});
