import test from 'ava';
import { Controller, type Reconciler, type ReconcileResult } from '../../controller/controller.js';
import { type Logger, silentLogger } from '../../controller/logger.js';
import type { ControllerMetrics, ReconcileOutcome } from '../../controller/metrics.js';
import { ExponentialRateLimiter } from '../../controller/rate-limiter.js';
import { WorkQueue, type Priority } from '../../controller/workqueue.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Poll until `condition` holds; fails the test only after a generous deadline. */
async function waitFor(condition: () => boolean, what = 'condition', timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Gate {
  promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

type Handler = (key: string, call: number) => Promise<ReconcileResult | void> | ReconcileResult | void;

/** Records every reconcile call (key and order) and delegates to `handler`. */
class FakeReconciler implements Reconciler {
  readonly calls: string[] = [];
  constructor(private readonly handler: Handler = () => undefined) {}
  async reconcile(key: string): Promise<ReconcileResult | void> {
    this.calls.push(key);
    return this.handler(key, this.calls.filter((k) => k === key).length);
  }
  count(key: string): number {
    return this.calls.filter((k) => k === key).length;
  }
}

interface LogEntry {
  level: string;
  message: string;
  meta: Record<string, unknown> | undefined;
}

function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const log = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    entries.push({ level, message, meta });
  };
  return { entries, error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug') };
}

function fastQueue(name = 'q'): WorkQueue {
  return new WorkQueue({ name, rateLimiter: new ExponentialRateLimiter({ baseMs: 1, capMs: 4 }) });
}

test('constructor rejects a non-positive worker count', (t) => {
  const queue = fastQueue();
  t.throws(() => new Controller({ name: 'c', reconciler: new FakeReconciler(), queue, workers: 0, logger: silentLogger }), {
    instanceOf: RangeError,
  });
});

test('keys added before start wait until start', async (t) => {
  const queue = fastQueue();
  const rec = new FakeReconciler();
  const c = new Controller({ name: 'c', reconciler: rec, queue, logger: silentLogger });
  c.enqueue('a');
  queue.add('b', 'low');
  await sleep(20);
  t.deepEqual(rec.calls, []);
  t.is(queue.len(), 2);
  c.start();
  await waitFor(() => rec.calls.length === 2 && queue.processingCount() === 0, 'both reconciled');
  t.deepEqual(rec.calls, ['a', 'b']);
  await c.stop();
});

test('distinct keys are reconciled in parallel, never more than `workers` at once', async (t) => {
  const queue = fastQueue();
  const g = gate();
  let active = 0;
  let maxActive = 0;
  const rec = new FakeReconciler(async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    await g.promise;
    active--;
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, workers: 3, logger: silentLogger });
  c.start();
  for (const k of ['a', 'b', 'c', 'd', 'e']) c.enqueue(k);
  await waitFor(() => active === 3, 'three workers busy');
  await sleep(20);
  t.is(rec.calls.length, 3, 'the other keys wait for a free worker');
  t.is(queue.len(), 2);
  g.open();
  await waitFor(() => rec.calls.length === 5 && queue.processingCount() === 0, 'all reconciled');
  t.is(maxActive, 3);
  t.deepEqual([...rec.calls].sort(), ['a', 'b', 'c', 'd', 'e']);
  await c.stop();
});

test('a key is never reconciled by two workers at once under many concurrent adds', async (t) => {
  const queue = fastQueue();
  const activePerKey = new Map<string, number>();
  let maxPerKey = 0;
  let active = 0;
  let maxActive = 0;
  const rec = new FakeReconciler(async (key) => {
    const n = (activePerKey.get(key) ?? 0) + 1;
    activePerKey.set(key, n);
    maxPerKey = Math.max(maxPerKey, n);
    active++;
    maxActive = Math.max(maxActive, active);
    await sleep(3);
    active--;
    activePerKey.set(key, n - 1);
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, workers: 8, logger: silentLogger });
  c.start();
  const keys = ['k0', 'k1', 'k2', 'k3'];
  for (let round = 0; round < 100; round++) {
    for (const k of keys) {
      c.enqueue(k);
      c.enqueue(k, 'low');
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await waitFor(() => queue.len() === 0 && queue.processingCount() === 0, 'queue idle');
  t.is(maxPerKey, 1);
  t.true(maxActive > 1, 'different keys did run in parallel');
  for (const k of keys) t.true(rec.count(k) >= 1);
  t.true(rec.calls.length < 800, 'adds of a waiting key were deduplicated');
  await c.stop();
});

test('a key added during its reconcile is reconciled exactly once more', async (t) => {
  const queue = fastQueue();
  const first = gate();
  const rec = new FakeReconciler(async (_key, call) => {
    if (call === 1) await first.promise;
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, workers: 4, logger: silentLogger });
  c.start();
  c.enqueue('a');
  await waitFor(() => rec.calls.length === 1, 'first reconcile started');
  for (let i = 0; i < 5; i++) c.enqueue('a');
  await sleep(20);
  t.is(rec.count('a'), 1, 'not started again while in flight, despite idle workers');
  first.open();
  await waitFor(() => rec.count('a') === 2, 'second reconcile');
  await sleep(30);
  t.is(rec.count('a'), 2);
  await c.stop();
});

test('lane priority is applied when a worker becomes free, including promotion', async (t) => {
  const queue = fastQueue();
  const g = gate();
  const rec = new FakeReconciler(async (key) => {
    if (key === 'a') await g.promise;
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, workers: 1, logger: silentLogger });
  c.start();
  c.enqueue('a');
  await waitFor(() => rec.calls.length === 1, 'a started');
  c.enqueue('x', 'low');
  c.enqueue('y', 'low');
  c.enqueue('b', 'high');
  c.enqueue('y', 'high');
  g.open();
  await waitFor(() => rec.calls.length === 4, 'all reconciled');
  t.deepEqual(rec.calls, ['a', 'b', 'y', 'x']);
  await c.stop();
});

test('a thrown error is logged with the key and retried through the rate limiter until success', async (t) => {
  const queue = fastQueue();
  const logger = recordingLogger();
  const seenRequeues: number[] = [];
  const rec = new FakeReconciler((key, call) => {
    seenRequeues.push(queue.numRequeues(key));
    if (call <= 3) throw new Error('boom');
  });
  const c = new Controller({ name: 'ctl', reconciler: rec, queue, logger });
  c.start();
  c.enqueue('bad');
  await waitFor(() => rec.count('bad') === 4 && queue.processingCount() === 0, 'four attempts');
  t.deepEqual(seenRequeues, [0, 1, 2, 3], 'each failure went through the rate limiter');
  t.is(queue.numRequeues('bad'), 0, 'success forgets the failures');
  const errors = logger.entries.filter((e) => e.level === 'error');
  t.is(errors.length, 3);
  for (const e of errors) {
    t.is(e.message, 'reconcile failed');
    t.deepEqual(e.meta, { controller: 'ctl', key: 'bad', error: 'boom' });
  }
  await c.stop();
});

test('reconcile failures of many keys are logged 10 per window, each still counted, and the next window says how many were left out', async (t) => {
  const queue = new WorkQueue({ name: 'q', rateLimiter: new ExponentialRateLimiter({ baseMs: 60_000, capMs: 60_000 }) });
  const logger = recordingLogger();
  let errorsCounted = 0;
  const metrics: ControllerMetrics = { reconcileTotal: () => undefined, reconcileError: () => errorsCounted++, reconcileTime: () => undefined, activeWorkers: () => undefined };
  let wall = 1_000_000;
  const rec = new FakeReconciler(() => {
    throw new Error('etcd is out of space');
  });
  const c = new Controller({ name: 'ctl', reconciler: rec, queue, logger, metrics, wallClock: () => wall });
  c.start();
  const failures = () => logger.entries.filter((e) => e.message === 'reconcile failed');
  // 9, 10, 11 and 25 failures in one window: at most 10 lines.
  let queued = 0;
  for (const [n, lines] of [[9, 9], [10, 10], [11, 10], [25, 10]] as const) {
    while (queued < n) c.enqueue(`k${queued++}`);
    await waitFor(() => errorsCounted === n && queue.processingCount() === 0, `${n} failures`);
    t.is(failures().length, lines, `${n} failures in one window`);
  }
  t.true(failures().every((e) => e.level === 'error' && e.meta?.controller === 'ctl' && e.meta?.error === 'etcd is out of space'));
  // 9,999 ms later still the same window; at 10,000 ms a new one, whose first line names the 15 left out.
  wall += 9_999;
  c.enqueue('late');
  await waitFor(() => errorsCounted === 26 && queue.processingCount() === 0, 'one more failure');
  t.is(failures().length, 10);
  wall += 1;
  c.enqueue('later');
  await waitFor(() => errorsCounted === 27 && queue.processingCount() === 0, 'a failure in the next window');
  t.is(failures().length, 11);
  t.like(failures()[10]?.meta, { key: 'later', suppressedBefore: 16 });
  await c.stop();
});

test('non-Error throw values and synchronous throws are handled without unhandled rejections', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const queue = fastQueue();
    const logger = recordingLogger();
    const thrown: unknown[] = ['plain string', { code: 7 }, undefined, null, Object.create(null), 42];
    let calls = 0;
    const reconciler: Reconciler = {
      // Not async: the throw happens synchronously inside reconcile().
      reconcile: () => {
        calls++;
        if (calls <= thrown.length) throw thrown[calls - 1];
        return Promise.resolve();
      },
    };
    const c = new Controller({ name: 'ctl', reconciler, queue, logger });
    c.start();
    c.enqueue('k');
    await waitFor(() => calls === thrown.length + 1 && queue.processingCount() === 0, 'eventual success');
    const errors = logger.entries.filter((e) => e.message === 'reconcile failed');
    t.is(errors.length, thrown.length);
    t.true(errors.every((e) => e.meta?.key === 'k' && typeof e.meta.error === 'string'));
    t.is(errors[0]?.meta?.error, 'plain string');
    t.regex(String(errors[1]?.meta?.error), /code: 7/);
    t.is(errors[2]?.meta?.error, 'undefined');
    t.is(errors[3]?.meta?.error, 'null');
    t.is(errors[5]?.meta?.error, '42');
    await c.stop();
    await sleep(20);
    t.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('a throwing logger neither loses the retry nor causes an unhandled rejection', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const queue = fastQueue();
    const logger: Logger = {
      ...silentLogger,
      error: () => {
        throw new Error('logger down');
      },
    };
    const rec = new FakeReconciler((_key, call) => {
      if (call === 1) throw new Error('boom');
    });
    const c = new Controller({ name: 'ctl', reconciler: rec, queue, logger });
    c.start();
    c.enqueue('k');
    await waitFor(() => rec.count('k') === 2 && queue.processingCount() === 0, 'retried');
    await c.stop();
    await sleep(20);
    t.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

/** A real WorkQueue that records the calls the controller makes on it. */
class SpyQueue extends WorkQueue {
  readonly ops: string[] = [];
  override addAfter(key: string, delayMs: number, priority?: Priority): void {
    this.ops.push(`addAfter ${key} ${delayMs}`);
    super.addAfter(key, delayMs, priority);
  }
  override addRateLimited(key: string, priority?: Priority): void {
    this.ops.push(`addRateLimited ${key}`);
    super.addRateLimited(key, priority);
  }
  override forget(key: string): void {
    this.ops.push(`forget ${key}`);
    super.forget(key);
  }
}

test('requeueAfterMs forgets the backoff and reconciles again after the delay', async (t) => {
  const queue = new SpyQueue({ name: 'q', rateLimiter: new ExponentialRateLimiter({ baseMs: 1, capMs: 4 }) });
  const seenRequeues: number[] = [];
  const rec = new FakeReconciler((key, call) => {
    seenRequeues.push(queue.numRequeues(key));
    if (call === 1) throw new Error('boom');
    if (call === 2) return { requeueAfterMs: 20, requeue: true };
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, logger: silentLogger });
  c.start();
  c.enqueue('a');
  await waitFor(() => rec.count('a') === 3 && queue.processingCount() === 0, 'third reconcile');
  t.deepEqual(seenRequeues, [0, 1, 0]);
  t.deepEqual(queue.ops, [
    'addRateLimited a',
    'addAfter a 1',
    'forget a',
    'addAfter a 20',
    'forget a',
  ]);
  await c.stop();
});

test('requeue: true retries through the rate limiter without logging an error', async (t) => {
  const queue = fastQueue();
  const logger = recordingLogger();
  const seenRequeues: number[] = [];
  const rec = new FakeReconciler((key, call) => {
    seenRequeues.push(queue.numRequeues(key));
    if (call <= 2) return { requeue: true };
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, logger });
  c.start();
  c.enqueue('a');
  await waitFor(() => rec.count('a') === 3 && queue.processingCount() === 0, 'third reconcile');
  t.deepEqual(seenRequeues, [0, 1, 2]);
  t.is(queue.numRequeues('a'), 0);
  t.deepEqual(logger.entries.filter((e) => e.level === 'error'), []);
  await c.stop();
});

test('a reconcile stopped by a lost leadership is retried through the rate limiter and counted as a requeue, not logged or counted as an error', async (t) => {
  const queue = fastQueue();
  const logger = recordingLogger();
  const results: ReconcileOutcome[] = [];
  let errors = 0;
  const metrics: ControllerMetrics = { reconcileTotal: (r) => void results.push(r), reconcileError: () => void errors++, reconcileTime: () => undefined, activeWorkers: () => undefined };
  const seenRequeues: number[] = [];
  const lost = Object.assign(new Error('not the leader: the leader lock was lost; write refused'), { leadershipLost: true as const });
  const rec = new FakeReconciler((key, call) => {
    seenRequeues.push(queue.numRequeues(key));
    if (call <= 2) throw lost;
    // A marker that is not exactly `true` is an ordinary failure.
    if (call === 3) throw Object.assign(new Error('odd'), { leadershipLost: 'yes' });
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, logger, metrics });
  c.start();
  c.enqueue('a');
  await waitFor(() => rec.count('a') === 4 && queue.processingCount() === 0, 'fourth reconcile');
  t.deepEqual(seenRequeues, [0, 1, 2, 3], 'each went through the rate limiter');
  t.deepEqual(results, ['requeue', 'requeue', 'error', 'success']);
  t.is(errors, 1);
  t.deepEqual(logger.entries.filter((e) => e.level === 'error').map((e) => e.meta?.error), ['odd']);
  t.deepEqual(logger.entries.filter((e) => e.level === 'debug').map((e) => e.message), ['reconcile stopped: leadership lost', 'reconcile stopped: leadership lost']);
  await c.stop();
});

test('stop() drains in-flight reconciles and takes no new keys', async (t) => {
  const queue = fastQueue();
  const g = gate();
  let finished = 0;
  const rec = new FakeReconciler(async (key) => {
    await g.promise;
    finished++;
    if (key === 'a') throw new Error('failing during drain');
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, workers: 2, logger: silentLogger });
  c.start();
  c.enqueue('a');
  c.enqueue('b');
  c.enqueue('waiting');
  await waitFor(() => rec.calls.length === 2, 'two in flight');
  let stopped = false;
  const stopping = c.stop().then(() => {
    stopped = true;
  });
  c.enqueue('late');
  await sleep(20);
  t.false(stopped, 'stop waits for in-flight reconciles');
  t.true(queue.isShuttingDown());
  g.open();
  await stopping;
  t.is(finished, 2, 'in-flight reconciles ran to completion');
  t.is(queue.processingCount(), 0);
  await sleep(30);
  t.deepEqual([...rec.calls].sort(), ['a', 'b'], 'no key was taken after stop, nor the failed key retried');
  await c.stop();
  t.throws(() => c.start());
});

test('stop() before start resolves at once', async (t) => {
  const queue = fastQueue();
  const rec = new FakeReconciler();
  const c = new Controller({ name: 'c', reconciler: rec, queue, logger: silentLogger });
  c.enqueue('a');
  await c.stop();
  t.deepEqual(rec.calls, []);
});

test('pause() stops taking keys while the queue keeps collecting; resume() continues', async (t) => {
  const queue = fastQueue();
  const rec = new FakeReconciler();
  const c = new Controller({ name: 'c', reconciler: rec, queue, workers: 2, logger: silentLogger });
  c.start();
  await c.pause();
  t.true(c.isPaused());
  c.enqueue('a');
  c.enqueue('b');
  c.enqueue('c', 'low');
  await sleep(30);
  t.deepEqual(rec.calls, []);
  t.is(queue.len(), 3);
  c.resume();
  await waitFor(() => rec.calls.length === 3, 'all reconciled after resume');
  t.deepEqual(rec.calls.slice(2), ['c'], 'low lane still last');
  await c.stop();
});

test('pause() resolves once in-flight reconciles finish and no new key starts meanwhile', async (t) => {
  const queue = fastQueue();
  const g = gate();
  const rec = new FakeReconciler(async (key) => {
    if (key === 'a') await g.promise;
  });
  const c = new Controller({ name: 'c', reconciler: rec, queue, workers: 2, logger: silentLogger });
  c.start();
  c.enqueue('a');
  await waitFor(() => rec.calls.length === 1, 'a in flight');
  let paused = false;
  const pausing = c.pause().then(() => {
    paused = true;
  });
  c.enqueue('b');
  c.enqueue('a');
  await sleep(20);
  t.false(paused);
  t.deepEqual(rec.calls, ['a'], 'b is not taken although a worker is free');
  g.open();
  await pausing;
  await sleep(20);
  t.deepEqual(rec.calls, ['a'], 're-added a is not taken while paused');
  t.is(queue.len(), 2);
  c.resume();
  await waitFor(() => rec.calls.length === 3, 'resumed');
  t.deepEqual(rec.calls.slice(1).sort(), ['a', 'b']);
  await c.stop();
});

test('controller metrics: results, errors, reconcile time and active workers', async (t) => {
  const queue = fastQueue();
  const totals = new Map<ReconcileOutcome, number>();
  let errors = 0;
  const times: number[] = [];
  let active = 0;
  let maxActive = 0;
  const metrics: ControllerMetrics = {
    reconcileTotal: (r) => totals.set(r, (totals.get(r) ?? 0) + 1),
    reconcileError: () => void errors++,
    reconcileTime: (s) => void times.push(s),
    activeWorkers: (d) => {
      active += d;
      maxActive = Math.max(maxActive, active);
    },
  };
  let clock = 0;
  const rec = new FakeReconciler((key, call) => {
    if (call > 1) return;
    if (key === 'err') throw new Error('x');
    if (key === 'rq') return { requeue: true };
    if (key === 'ra') return { requeueAfterMs: 1 };
  });
  const c = new Controller({
    name: 'c',
    reconciler: rec,
    queue,
    workers: 1,
    logger: silentLogger,
    metrics,
    // Each reconcile reads the clock twice (start, end): 250ms apart.
    now: () => (clock += 250),
  });
  c.start();
  for (const k of ['ok', 'err', 'rq', 'ra']) c.enqueue(k);
  await waitFor(() => rec.calls.length === 7 && queue.processingCount() === 0, 'seven reconciles');
  t.deepEqual(Object.fromEntries(totals), { success: 4, error: 1, requeue: 1, requeue_after: 1 });
  t.is(errors, 1);
  t.deepEqual(times, Array<number>(7).fill(0.25));
  t.is(active, 0);
  t.is(maxActive, 1);
  await c.stop();
});

test('enqueueAfter queues the key once the delay has passed', async (t) => {
  const queue = fastQueue();
  const rec = new FakeReconciler();
  const c = new Controller({ name: 'c', reconciler: rec, queue, logger: silentLogger });
  c.start();
  c.enqueueAfter('a', 40);
  await sleep(10);
  t.deepEqual(rec.calls, [], 'not before the delay');
  await waitFor(() => rec.calls.length === 1, 'reconciled after the delay');
  await c.stop();
});

test('a controller is a Runnable: the Manager runs it as it is, on the leader', async (t) => {
  const { Manager } = await import('../../controller/manager.js');
  const caches = { start: () => undefined, waitForSync: async () => undefined, hasSynced: () => true, stop: async () => undefined };
  const queue = fastQueue();
  const rec = new FakeReconciler();
  const c = new Controller({ name: 'c', reconciler: rec, queue, logger: silentLogger });
  t.true(c.needLeaderElection, 'controllers need leadership by default');
  const m = new Manager({ caches });
  m.add(c);
  c.enqueue('a');
  await m.start();
  await waitFor(() => rec.calls.length === 1, 'reconciled once the manager started it');
  await m.stop();
  t.true(queue.isShuttingDown(), 'stopped with the manager');
});
