// The worker loop of a controller (controller-runtime's internal controller): take keys from a
// WorkQueue, reconcile them with bounded concurrency, and turn the outcome into the next
// queue operation (forget, retry with backoff, or requeue after a delay). It knows nothing
// about what a key means; that is the Reconciler's business.
//
// Workers are async tasks this class counts itself (no task pool): a pool such as p-queue made
// a promise, an options object, an async-context binding and several events per task, a
// visible share of a storm's CPU and garbage, for a bound this class already keeps.
import { errorMessage } from './errors.js';
import type { Logger } from './logger.js';
import type { Runnable } from './manager.js';
import { noopControllerMetrics, type ControllerMetrics, type ReconcileOutcome } from './metrics.js';
import { ThrottledLog } from './throttled-log.js';
import type { Priority, WorkQueue } from './workqueue.js';

export interface ReconcileResult {
  /** Retry with the queue's rate-limited backoff, without counting as an error. */
  requeue?: boolean;
  /** Reconcile again after this many ms (takes precedence over `requeue`); resets the backoff. */
  requeueAfterMs?: number;
}

/**
 * An error that knows when to try again: the store was unreachable, nothing is wrong with the
 * key. The key is retried after `retryAfterMs` without growing its backoff, so an outage of any
 * length costs every key at most one such delay once the store is back.
 */
export interface RetryAfter {
  readonly retryAfterMs: number;
}

/**
 * An error saying this process no longer leads (its writes are fenced off): expected after a lost
 * election, which the election itself reports, so the key is retried with backoff and counted as
 * a requeue, not logged as a failure (a replica stalled past its lease logged 266 "reconcile
 * failed" lines at error level for it: black-box probing). The next leader resyncs anyway.
 */
export interface LeadershipLost {
  readonly leadershipLost: true;
}

export function isLeadershipLost(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Partial<LeadershipLost>).leadershipLost === true;
}

export function retryAfterOf(error: unknown): number | undefined {
  const ms = (error as Partial<RetryAfter> | null | undefined)?.retryAfterMs;
  return typeof error === 'object' && typeof ms === 'number' && ms >= 0 ? ms : undefined;
}

export interface Reconciler {
  /** Bring the world in line for `key`. Throwing retries the key with backoff. */
  reconcile(key: string): Promise<ReconcileResult | void>;
}

export interface ControllerOptions {
  name: string;
  reconciler: Reconciler;
  queue: WorkQueue;
  /** Keys reconciled in parallel; one key is never reconciled twice at once. Default 4. */
  workers?: number;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** Clock in ms for the reconcile-time metric. */
  now?: () => number;
  /** Whether it runs only on the leader (the Manager pauses it on a follower). Default true. */
  needLeaderElection?: boolean;
  /**
   * "reconcile failed" lines per `failureLogIntervalMs` (default 10 per 10 s; the next line names
   * how many were left out). Every failure is still counted in the metrics.
   */
  failureLogLines?: number;
  failureLogIntervalMs?: number;
  /** Wall clock in ms for the failure log's window (tests). */
  wallClock?: () => number;
}

/** A Runnable, so the Manager starts, pauses, resumes and stops it as it is. */
export class Controller implements Runnable {
  readonly name: string;
  readonly needLeaderElection: boolean;
  private readonly reconciler: Reconciler;
  private readonly queue: WorkQueue;
  private readonly workers: number;
  private readonly logger: Logger;
  private readonly failureLog: ThrottledLog;
  private readonly metrics: ControllerMetrics;
  private readonly now: () => number;
  /** Called once no task is outstanding (pause and stop wait for the tasks in flight). */
  private idleWaiters: (() => void)[] = [];

  private started = false;
  private paused = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Tasks started and not finished; never more than `workers`. */
  private outstanding = 0;
  /** Tasks started that have not taken their key yet. */
  private unclaimed = 0;
  private pumpScheduled = false;

  constructor(options: ControllerOptions) {
    const workers = options.workers ?? 4;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`controller ${options.name}: workers must be a positive integer`);
    }
    this.name = options.name;
    this.needLeaderElection = options.needLeaderElection ?? true;
    this.reconciler = options.reconciler;
    this.queue = options.queue;
    this.workers = workers;
    this.logger = options.logger;
    // A failure that hits every key (etcd out of space, a rejected guard) would otherwise be a
    // line per key and retry: 2,500 keys gave 45,000 lines in two minutes.
    this.failureLog = new ThrottledLog({
      logger: options.logger,
      perInterval: options.failureLogLines ?? 10,
      intervalMs: options.failureLogIntervalMs ?? 10_000,
      ...(options.wallClock ? { now: options.wallClock } : {}),
    });
    this.metrics = options.metrics ?? noopControllerMetrics;
    this.now = options.now ?? (() => performance.now());
  }

  /** Queue `key` for reconciliation; before start() it simply waits. */
  enqueue(key: string, priority: Priority = 'high'): void {
    this.queue.add(key, priority);
  }

  /** Queue `key` once `delayMs` have passed (e.g. when a node's lease grace runs out). */
  enqueueAfter(key: string, delayMs: number, priority: Priority = 'high'): void {
    this.queue.addAfter(key, delayMs, priority);
  }

  /** Move `key` ahead of the low-priority work if it is waiting there (WorkQueue.promote). */
  promote(key: string): void {
    this.queue.promote(key);
  }

  /** Whether work for `key` is queued or running (a reconciler coalescing with it asks). */
  hasWork(key: string): boolean {
    return this.queue.hasWork(key);
  }

  /** Keys waiting for a worker: above zero, every worker is busy. */
  waiting(): number {
    return this.queue.len();
  }

  /** The key was queued again while a worker has it: the running pass will not be its last. */
  queuedAgain(key: string): boolean {
    return this.queue.addedWhileProcessing(key);
  }

  /** Begin taking work. Call once caches are synced; keys queued earlier are picked up now. */
  start(): void {
    if (this.stopping) throw new Error(`controller ${this.name}: cannot start after stop`);
    if (this.started) return;
    this.started = true;
    this.unsubscribe = this.queue.onReady(() => this.schedulePump());
    this.schedulePump();
  }

  /**
   * Stop taking keys (the queue keeps collecting them), e.g. while not leader. Resolves once
   * reconciles already in flight have finished.
   */
  pause(): Promise<void> {
    this.paused = true;
    return this.idle();
  }

  resume(): void {
    this.paused = false;
    this.schedulePump();
  }

  isPaused(): boolean {
    return this.paused;
  }

  /**
   * Take no more keys, shut the queue down (new adds and pending retries are dropped, as in
   * controller-runtime) and resolve once in-flight reconciles have finished. Idempotent.
   */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopping = true;
      this.unsubscribe?.();
      this.unsubscribe = undefined;
      this.stopped = Promise.all([this.queue.shutDownWithDrain(), this.idle()]).then(() => undefined);
    }
    return this.stopped;
  }

  private canTake(): boolean {
    return this.started && !this.paused && !this.stopping;
  }

  // Many adds in one tick (a resync of 100k keys) collapse into a single pump, and the
  // caller of queue.add() never runs reconcile code synchronously.
  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    queueMicrotask(this.runPump);
  }

  /** schedulePump's microtask, made once (not a closure per schedule). */
  private readonly runPump = (): void => {
    this.pumpScheduled = false;
    this.pump();
  };

  // Keep at most `workers` tasks running and no more unclaimed tasks than ready keys.
  // A task picks its key only when it runs, so lane priority applies at that moment.
  private pump(): void {
    while (this.canTake() && this.outstanding < this.workers && this.unclaimed < this.queue.len()) {
      this.outstanding++;
      this.unclaimed++;
      // Started at once, as p-queue did: the task runs up to its first await before the loop goes on.
      this.work().catch(this.workerFailed);
    }
  }

  // work() handles reconcile failures itself; this only catches a throwing logger or metrics
  // sink, so it can never become an unhandled rejection.
  private readonly workerFailed = (error: unknown): void => {
    try {
      this.logger.error('controller worker failed', { controller: this.name, error: errorMessage(error) });
    } catch {
      // Nothing left to report to.
    }
  };

  /** Resolves once no task is outstanding (at once when none is). */
  private idle(): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // A task keeps taking keys while more are ready than other tasks are about to claim: one
  // pool task per burst instead of one per key, which at 100k keys was a large share of the
  // allocations (and so of the GC work and the peak heap) of a cold start.
  //
  // Each key is processed in this loop, not in an async function of its own: a second async
  // frame per key (its promise, its context, its await) was about a tenth of a storm's garbage.
  private async work(): Promise<void> {
    try {
      for (;;) {
        this.unclaimed--;
        if (!this.canTake()) return;
        const key = this.queue.get();
        if (key === undefined) return;
        const startedAt = this.now();
        this.metrics.activeWorkers(1);
        let result: ReconcileResult | void = undefined;
        let failure: { error: unknown } | undefined;
        try {
          result = await this.reconciler.reconcile(key);
        } catch (error) {
          failure = { error };
        }
        try {
          if (failure !== undefined) this.failed(key, failure.error);
          else this.metrics.reconcileTotal(this.requeue(key, result));
        } finally {
          this.metrics.reconcileTime((this.now() - startedAt) / 1000);
          this.metrics.activeWorkers(-1);
          this.queue.done(key);
        }
        if (!this.canTake() || this.queue.len() <= this.unclaimed) return;
        this.unclaimed++;
      }
    } finally {
      this.outstanding--;
      if (this.outstanding === 0 && this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
      this.schedulePump();
    }
  }

  /** A reconcile threw: retry after the store is back, or with backoff. */
  private failed(key: string, error: unknown): void {
    // Requeue first: a failing logger or metrics sink must not lose the retry.
    const retryAfterMs = retryAfterOf(error);
    if (retryAfterMs !== undefined) {
      this.queue.addAfter(key, retryAfterMs);
      this.metrics.reconcileTotal('unavailable');
      // One line per key and retry would flood the log during an outage; the etcd probe
      // reports the outage once.
      this.logger.debug('reconcile deferred: store unavailable', { controller: this.name, key, error: errorMessage(error), retryAfterMs });
      return;
    }
    this.queue.addRateLimited(key);
    if (isLeadershipLost(error)) {
      this.metrics.reconcileTotal('requeue');
      this.logger.debug('reconcile stopped: leadership lost', { controller: this.name, key, error: errorMessage(error) });
      return;
    }
    this.metrics.reconcileError();
    this.metrics.reconcileTotal('error');
    this.failureLog.error('reconcile failed', 'reconcile failed', { controller: this.name, key, error: errorMessage(error) });
  }

  private requeue(key: string, result: ReconcileResult | void): ReconcileOutcome {
    const after = result?.requeueAfterMs;
    if (after !== undefined && after > 0) {
      this.queue.forget(key);
      this.queue.addAfter(key, after);
      return 'requeue_after';
    }
    if (result?.requeue) {
      this.queue.addRateLimited(key);
      return 'requeue';
    }
    this.queue.forget(key);
    return 'success';
  }
}

/**
 * Try again shortly without counting a failure: the stored value moved since the cache saw it
 * (another writer, or our own echo not yet seen), and the next pass sees the new level.
 */
export const REQUEUE: ReconcileResult = Object.freeze({ requeue: true });
