// Log lines that an outsider can cause (refused calls, calls failing during an outage) at a bounded rate: a flood of bad calls
// must not become a flood of log lines. Each kind of line gets `perInterval` lines per
// interval; when an interval ends with lines suppressed, one line says how many, with the last of
// them (else a kind that stops for good, such as bad keys found at start, never told it).
import type { Logger } from './logger.js';

export interface ThrottledLogOptions {
  logger: Logger;
  /** Lines per kind per interval. Default 10. */
  perInterval?: number;
  /** Default 10 s. */
  intervalMs?: number;
  /** The clock of the intervals, in monotonic ms: a step of the wall clock must not stretch or cut an interval (default performance.now). */
  now?: () => number;
}

interface Window {
  start: number;
  logged: number;
  suppressed: number;
  /** The last line suppressed, for the summary at the interval's end. */
  last?: { level: 'warn' | 'error'; message: string; meta: Record<string, unknown> };
}

export class ThrottledLog {
  private readonly windows = new Map<string, Window>();
  private readonly perInterval: number;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(private readonly o: ThrottledLogOptions) {
    this.perInterval = o.perInterval ?? 10;
    this.intervalMs = o.intervalMs ?? 10_000;
    this.now = o.now ?? (() => performance.now());
  }

  /** Logs a warning unless `kind` has used up its lines in this interval. */
  warn(kind: string, message: string, meta: Record<string, unknown>): void {
    this.line('warn', kind, message, meta);
  }

  /**
   * Logs an error unless `kind` has used up its lines in this interval: calls that fail while
   * etcd is away come as fast as callers retry (an outage of 10 s was 9,000 lines).
   */
  error(kind: string, message: string, meta: Record<string, unknown>): void {
    this.line('error', kind, message, meta);
  }

  private line(level: 'warn' | 'error', kind: string, message: string, meta: Record<string, unknown>): void {
    const now = this.now();
    let w = this.windows.get(kind);
    // A clock that went back opens a new window (it once silenced a kind for as long as the step).
    if (w === undefined || now - w.start >= this.intervalMs || now < w.start) {
      const suppressed = w?.suppressed ?? 0;
      w = { start: now, logged: 0, suppressed: 0 };
      this.windows.set(kind, w);
      if (suppressed > 0) meta = { ...meta, suppressedBefore: suppressed };
    }
    if (w.logged >= this.perInterval) {
      if (w.suppressed++ === 0) this.summarizeAtEnd(kind, w, now);
      w.last = { level, message, meta };
      return;
    }
    w.logged++;
    this.o.logger[level](message, meta);
  }

  /** At the end of `w`'s interval, if no later line of `kind` has said it: how many were suppressed. */
  private summarizeAtEnd(kind: string, w: Window, now: number): void {
    const timer = setTimeout(() => {
      if (this.windows.get(kind) !== w || w.suppressed === 0 || !w.last) return;
      this.windows.delete(kind);
      const { level, message, meta } = w.last;
      this.o.logger[level](`${message} (the last of ${w.suppressed} such lines not logged in ${this.intervalMs / 1000} s)`, { ...meta, suppressed: w.suppressed });
    }, Math.max(0, w.start + this.intervalMs - now));
    timer.unref();
  }
}
