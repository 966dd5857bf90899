// The simulation's event loop: virtual time, one timer heap, one ready callback at a time with
// every microtask it causes run before the next (as Node does between timers). While installed it
// stands in for setTimeout/setInterval/Date.now/performance.now/Math.random, so the real code's
// own timers, deadlines and jitter run on virtual time and on the seed.
import type { Random } from './random.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  /** Repeat period for setInterval. */
  every: number | undefined;
  cancelled: boolean;
}

/** What setTimeout returns here: enough of Node's Timeout for the code under test. */
class SimTimeout {
  constructor(readonly timer: Timer) {}
  unref(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  hasRef(): boolean {
    return false;
  }
  refresh(): this {
    return this;
  }
  [Symbol.toPrimitive](): number {
    return this.timer.seq;
  }
}

const realSetImmediate = globalThis.setImmediate;

export class Scheduler {
  private t = 0;
  private seq = 0;
  private heap: Timer[] = [];
  /** Callbacks run so far (a figure for the report). */
  steps = 0;
  private restore: (() => void) | undefined;

  constructor(
    readonly random: Random,
    /** Virtual epoch, so ISO dates in history look like dates. */
    readonly epochMs = Date.UTC(2026, 0, 1),
  ) {}

  /** Virtual wall-clock time in ms. */
  now(): number {
    return this.epochMs + this.t;
  }

  /** Virtual ms since the start of the run. */
  elapsed(): number {
    return this.t;
  }

  at(delayMs: number, fn: () => void): SimTimeout {
    return this.add(delayMs, fn, undefined);
  }

  every(periodMs: number, fn: () => void): SimTimeout {
    return this.add(periodMs, fn, Math.max(1, periodMs));
  }

  cancel(handle: unknown): void {
    if (handle instanceof SimTimeout) handle.timer.cancelled = true;
  }

  /** Run ready callbacks until virtual time `untilMs` (since start) or `stop()` says so. */
  async runUntil(untilMs: number, stop?: () => boolean): Promise<void> {
    for (;;) {
      await drainMicrotasks();
      if (stop?.()) return;
      const next = this.heap[0];
      if (!next || next.at > untilMs) break;
      this.pop();
      if (next.cancelled) continue;
      this.t = Math.max(this.t, next.at);
      if (next.every !== undefined) {
        next.at = this.t + next.every;
        next.seq = ++this.seq;
        this.push(next);
      }
      this.steps++;
      next.fn();
    }
    this.t = Math.max(this.t, untilMs);
  }

  /** Stand in for the global timers, clocks and Math.random until uninstall(). */
  install(): void {
    if (this.restore) return;
    const g = globalThis as unknown as Record<string, unknown>;
    const saved = {
      setTimeout: g.setTimeout,
      clearTimeout: g.clearTimeout,
      setInterval: g.setInterval,
      clearInterval: g.clearInterval,
      dateNow: Date.now,
      perfNow: performance.now,
      random: Math.random,
    };
    g.setTimeout = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => this.at(ms ?? 0, () => fn(...args));
    g.setInterval = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => this.every(ms ?? 0, () => fn(...args));
    g.clearTimeout = (h: unknown) => this.cancel(h);
    g.clearInterval = (h: unknown) => this.cancel(h);
    Date.now = () => this.now();
    performance.now = () => this.t;
    Math.random = () => this.random.next();
    this.restore = () => {
      g.setTimeout = saved.setTimeout;
      g.clearTimeout = saved.clearTimeout;
      g.setInterval = saved.setInterval;
      g.clearInterval = saved.clearInterval;
      Date.now = saved.dateNow;
      performance.now = saved.perfNow;
      Math.random = saved.random;
    };
  }

  uninstall(): void {
    this.restore?.();
    this.restore = undefined;
  }

  private add(delayMs: number, fn: () => void, every: number | undefined): SimTimeout {
    const d = Number.isFinite(delayMs) && delayMs > 0 ? delayMs : 0;
    const timer: Timer = { at: this.t + d, seq: ++this.seq, fn, every, cancelled: false };
    this.push(timer);
    return new SimTimeout(timer);
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(timer: Timer): void {
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(timer, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = timer;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (h.length === 0 || !last) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && this.less(h[r]!, h[l]!) ? r : l;
      if (!this.less(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}

/** Every pending microtask (and those they queue) runs before a macrotask: one real turn. */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}
