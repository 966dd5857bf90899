// A work queue of string keys with client-go's guarantees (util/workqueue Type + delaying +
// rate limiting): a key waits at most once, is never handed to two workers at the same time,
// and a key added while it is being processed is handed out again after done(). Two lanes
// let periodic resyncs ('low') queue everything without delaying live events ('high').
// get() is non-blocking; consumers subscribe with onReady() instead of polling.
import { noopQueueMetrics, type QueueMetricsProvider } from './metrics.js';
import { ExponentialRateLimiter, type RateLimiter } from './rate-limiter.js';

export type Priority = 'high' | 'low';

export interface WorkQueueOptions {
  name: string;
  /** Used by addRateLimited(); defaults to client-go's 5ms..1000s exponential backoff. */
  rateLimiter?: RateLimiter;
  metrics?: QueueMetricsProvider;
  /** Clock in ms; injectable so metric values are deterministic in tests. */
  now?: () => number;
  /** How often unfinished-work gauges are refreshed (client-go: 500ms). Only with `metrics`. */
  unfinishedWorkUpdatePeriodMs?: number;
}

// setTimeout overflows (and fires at once) above this.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * A key with work: waiting in a lane (high or low), or handed out (in the in-flight list) and
 * maybe re-added meanwhile (`dirty`). One record per key for its whole stay, found by one Map:
 * a key's add, get and done cost one or two Map operations instead of five to eight over three
 * Maps (waiting, processing, dirty), and no record is made for a re-add or a hand-out.
 */
interface LaneNode {
  readonly key: string;
  /** When the key was first added (for the latency metric) while it waits. */
  addedAt: number;
  /** The list the record is on: a lane while waiting, `inFlight` while handed out. */
  lane: Lane;
  prev: LaneNode | undefined;
  next: LaneNode | undefined;
  /** When it was handed out, while in flight. */
  startedAt: number;
  /** Re-added while in flight: queued again on done(), with this priority and time of first re-add. */
  dirty: boolean;
  dirtyPriority: Priority;
  dirtyAddedAt: number;
}

// Doubly linked FIFO: push, shift and remove (needed to promote a key between lanes) are all
// O(1), so neither 100k-key resyncs nor promotions degrade like Array.shift/splice would.
class Lane {
  private head: LaneNode | undefined;
  private tail: LaneNode | undefined;

  push(node: LaneNode): void {
    node.lane = this;
    node.prev = this.tail;
    node.next = undefined;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
  }

  shift(): LaneNode | undefined {
    const node = this.head;
    if (node) this.remove(node);
    return node;
  }

  remove(node: LaneNode): void {
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = undefined;
    node.next = undefined;
  }

  forEach(fn: (node: LaneNode) => void): void {
    for (let n = this.head; n !== undefined; n = n.next) fn(n);
  }
}

interface DelayEntry {
  readonly key: string;
  readonly readyAt: number;
  /** Matches DelayedAdd.seq while this entry is the live one for its key. */
  readonly seq: number;
}

// Binary min-heap on readyAt, so one timer serves any number of delayed keys. Superseded
// entries are not removed eagerly; the queue skips them when they reach the top.
class DelayHeap {
  private items: DelayEntry[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): DelayEntry | undefined {
    return this.items[0];
  }

  push(entry: DelayEntry): void {
    const items = this.items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (p.readyAt <= entry.readyAt) break;
      items[i] = p;
      i = parent;
    }
    items[i] = entry;
  }

  pop(): DelayEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right]!.readyAt < items[left]!.readyAt ? right : left;
      if (items[child]!.readyAt >= last.readyAt) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }

  clear(): void {
    this.items = [];
  }
}

interface DelayedAdd {
  readyAt: number;
  priority: Priority;
  seq: number;
}

export class WorkQueue {
  readonly name: string;
  private readonly rateLimiter: RateLimiter;
  private readonly metrics: QueueMetricsProvider;
  private readonly now: () => number;

  private readonly high = new Lane();
  private readonly low = new Lane();
  /** Keys handed out and not yet done. */
  private readonly inFlight = new Lane();
  /** Every key waiting in a lane or in flight (the lane of its record says which). */
  private readonly keys = new Map<string, LaneNode>();
  /** Keys waiting in a lane, ready to be handed out. */
  private waitingCount = 0;
  /** Keys in flight. */
  private inFlightCount = 0;

  private readonly delayed = new Map<string, DelayedAdd>();
  private readonly delayHeap = new DelayHeap();
  private delaySeq = 0;
  private delayTimer: NodeJS.Timeout | undefined;
  private delayTimerAt = Infinity;

  private unfinishedWorkTimer: NodeJS.Timeout | undefined;
  private readonly readyListeners = new Set<() => void>();
  private shuttingDown = false;
  private drainWaiters: Array<() => void> = [];

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.rateLimiter = options.rateLimiter ?? new ExponentialRateLimiter({ baseMs: 5, capMs: 1_000_000 });
    this.metrics = options.metrics ?? noopQueueMetrics;
    this.now = options.now ?? (() => performance.now());
    if (options.metrics) {
      // Long-running reconciles would otherwise be invisible until they finish.
      const period = options.unfinishedWorkUpdatePeriodMs ?? 500;
      this.unfinishedWorkTimer = setInterval(() => this.updateUnfinishedWork(), period);
      this.unfinishedWorkTimer.unref();
    }
  }

  /**
   * Queue `key` unless it is already waiting. A waiting 'low' key re-added as 'high' moves to
   * the high lane; a key being processed is queued again once done() is called.
   */
  add(key: string, priority: Priority = 'high'): void {
    if (this.shuttingDown) return;
    const node = this.keys.get(key);
    if (node === undefined) {
      this.countAdd();
      const now = this.now();
      const fresh: LaneNode = { key, addedAt: now, lane: this.high, prev: undefined, next: undefined, startedAt: 0, dirty: false, dirtyPriority: priority, dirtyAddedAt: 0 };
      this.keys.set(key, fresh);
      this.enqueue(fresh, priority, now);
      return;
    }
    if (node.lane !== this.inFlight) {
      if (priority === 'high' && node.lane === this.low) {
        this.low.remove(node);
        this.high.push(node);
      }
      return;
    }
    if (node.dirty) {
      if (priority === 'high') node.dirtyPriority = 'high';
      return;
    }
    this.countAdd();
    node.dirty = true;
    node.dirtyPriority = priority;
    node.dirtyAddedAt = this.now();
  }

  /**
   * Move `key` to the high lane if it is waiting in the low one; nothing otherwise (a key in
   * flight is not queued again, as add() would). For a key other work waits on.
   */
  promote(key: string): void {
    const node = this.keys.get(key);
    if (node === undefined || node.lane !== this.low) return;
    this.low.remove(node);
    this.high.push(node);
  }

  /**
   * Add `key` after `delayMs`. If the key is already waiting for a delay the earlier time wins
   * (client-go semantics); 'high' wins over 'low'. Dropped if the queue shuts down meanwhile.
   */
  addAfter(key: string, delayMs: number, priority: Priority = 'high'): void {
    if (this.shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key, priority);
      return;
    }
    const readyAt = this.now() + delayMs;
    const existing = this.delayed.get(key);
    if (existing) {
      if (priority === 'high') existing.priority = 'high';
      if (existing.readyAt <= readyAt) return;
      existing.readyAt = readyAt;
      existing.seq = ++this.delaySeq;
      this.delayHeap.push({ key, readyAt, seq: existing.seq });
    } else {
      const seq = ++this.delaySeq;
      this.delayed.set(key, { readyAt, priority, seq });
      this.delayHeap.push({ key, readyAt, seq });
    }
    this.armDelayTimer();
  }

  /** Add `key` once the rate limiter says it may be retried. */
  addRateLimited(key: string, priority: Priority = 'high'): void {
    if (this.shuttingDown) return;
    this.metrics.retries.inc();
    this.addAfter(key, this.rateLimiter.when(key), priority);
  }

  /** Stop tracking `key`'s failures (it succeeded, or the caller gave up on it). */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * Take the next key (every 'high' key before any 'low' key) and mark it processing, or
   * undefined when nothing is waiting. The caller must call done(key) when finished.
   * Keys still waiting after shutDown() are still handed out, as in client-go.
   */
  get(): string | undefined {
    const node = this.high.shift() ?? this.low.shift();
    if (!node) return undefined;
    this.waitingCount--;
    const now = this.now();
    node.startedAt = now;
    this.inFlight.push(node);
    this.inFlightCount++;
    this.metrics.depth.dec();
    this.metrics.latency.observe((now - node.addedAt) / 1000);
    return node.key;
  }

  /** Finish processing `key`; if it was re-added meanwhile it becomes ready again now. */
  done(key: string): void {
    const node = this.keys.get(key);
    if (node === undefined || node.lane !== this.inFlight) return;
    this.inFlight.remove(node);
    this.inFlightCount--;
    this.metrics.workDuration.observe((this.now() - node.startedAt) / 1000);
    if (node.dirty) {
      node.dirty = false;
      this.enqueue(node, node.dirtyPriority, node.dirtyAddedAt);
    } else {
      this.keys.delete(key);
    }
    if (this.inFlightCount === 0 && this.shuttingDown) this.finishDrain();
  }

  /** Whether work for `key` is waiting, being processed, or re-added while being processed. */
  hasWork(key: string): boolean {
    return this.keys.has(key);
  }

  /** Re-added while being processed: the pass now running for `key` will not be its last. */
  addedWhileProcessing(key: string): boolean {
    return this.keys.get(key)?.dirty === true;
  }

  /** Keys ready to be handed out (not counting delayed keys or keys re-added while processing). */
  len(): number {
    return this.waitingCount;
  }

  processingCount(): number {
    return this.inFlightCount;
  }

  /**
   * Call `listener` whenever a key becomes ready to be handed out. Called synchronously from
   * add()/done()/timers, so it must not throw. Returns an unsubscribe function.
   */
  onReady(listener: () => void): () => void {
    this.readyListeners.add(listener);
    return () => {
      this.readyListeners.delete(listener);
    };
  }

  /** Refuse new adds and drop pending delayed adds. Keys already waiting can still be taken. */
  shutDown(): void {
    if (!this.shuttingDown) {
      this.shuttingDown = true;
      if (this.delayTimer) clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
      this.delayTimerAt = Infinity;
      this.delayed.clear();
      this.delayHeap.clear();
    }
    if (this.inFlightCount === 0) this.finishDrain();
  }

  /** shutDown(), then resolve once every key being processed has been marked done. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.inFlightCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Refresh the unfinished-work gauges; called periodically, public so tests can drive it. */
  updateUnfinishedWork(): void {
    const now = this.now();
    let total = 0;
    let longest = 0;
    this.inFlight.forEach((node) => {
      const seconds = (now - node.startedAt) / 1000;
      total += seconds;
      if (seconds > longest) longest = seconds;
    });
    this.metrics.unfinishedWorkSeconds.set(total);
    this.metrics.longestRunningProcessorSeconds.set(longest);
  }

  private countAdd(): void {
    this.metrics.adds.inc();
    this.metrics.depth.inc();
  }

  /** Put `node` (in no list) on its lane: it is ready to be handed out. */
  private enqueue(node: LaneNode, priority: Priority, addedAt: number): void {
    node.addedAt = addedAt;
    (priority === 'high' ? this.high : this.low).push(node);
    this.waitingCount++;
    for (const listener of this.readyListeners) listener();
  }

  /** The earliest delayed add that has not been superseded, discarding stale heap entries. */
  private peekDelayed(): DelayEntry | undefined {
    for (;;) {
      const top = this.delayHeap.peek();
      if (!top || this.delayed.get(top.key)?.seq === top.seq) return top;
      this.delayHeap.pop();
    }
  }

  private armDelayTimer(): void {
    const top = this.peekDelayed();
    if (!top) {
      if (this.delayTimer) clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
      this.delayTimerAt = Infinity;
      return;
    }
    if (this.delayTimer && this.delayTimerAt <= top.readyAt) return;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    const now = this.now();
    const wait = Math.min(Math.max(top.readyAt - now, 0), MAX_TIMEOUT_MS);
    this.delayTimerAt = now + wait;
    // A pending retry must not keep the process alive on its own.
    this.delayTimer = setTimeout(() => this.fireDelayed(), wait);
    this.delayTimer.unref();
  }

  private fireDelayed(): void {
    // The timer was armed for delayTimerAt; trusting it (not only the clock) means an early
    // tick or an injected clock that does not move cannot make the timer spin.
    const cutoff = Math.max(this.now(), this.delayTimerAt);
    this.delayTimer = undefined;
    this.delayTimerAt = Infinity;
    for (;;) {
      const top = this.peekDelayed();
      if (!top || top.readyAt > cutoff) break;
      this.delayHeap.pop();
      const pending = this.delayed.get(top.key);
      this.delayed.delete(top.key);
      if (pending) this.add(top.key, pending.priority);
    }
    this.armDelayTimer();
  }

  private finishDrain(): void {
    if (this.unfinishedWorkTimer) {
      clearInterval(this.unfinishedWorkTimer);
      this.unfinishedWorkTimer = undefined;
      this.updateUnfinishedWork();
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
