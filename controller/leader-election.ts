// One leader among replicas, after client-go's leaderelection: campaign for a lock, run the
// leader's work while holding it, stop at once when it is lost, and hand it over on shutdown.
import { errorMessage } from './errors.js';
import { silentLogger, type Logger } from './logger.js';

export interface LeaderLock {
  /** Try once to take the lock; true if this process holds it now. */
  tryAcquire(): Promise<boolean>;
  /** Resolves when the holder may have changed, or after `timeoutMs`. */
  waitForChange(timeoutMs: number): Promise<void>;
  /** Resolves when the held lock is lost (lease expired, revoked, or taken). */
  lost(): Promise<string>;
  /**
   * Give the lock up so another replica can take it without waiting for expiry; false when it
   * could not be removed (it then expires with its lease).
   */
  release(): Promise<boolean | void>;
  /** Who holds it now, if known. */
  holder(): Promise<string | undefined>;
}

export interface LeaderCallbacks {
  onStartedLeading(): void | Promise<void>;
  /** Must stop the leader's work at once (it may already be too late to write). */
  onStoppedLeading(reason: string): void | Promise<void>;
}

export interface LeaderElectorOptions {
  identity: string;
  lock: LeaderLock;
  callbacks: LeaderCallbacks;
  /** Retry interval while following (and after errors). */
  retryPeriodMs: number;
  /** After losing the lock: campaign again ('follow') or stop campaigning ('exit'). */
  onLost: 'follow' | 'exit';
  logger?: Logger;
  onLeaderChange?(leading: boolean): void;
  /** Waits after a failed attempt; injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
  /** In [0, 1): the jitter of the wait after a failed attempt; injectable for tests. */
  random?: () => number;
  /** Clock in monotonic ms: a step of the wall clock must not stretch or cut an interval, for the rate of the failure lines (default performance.now); injectable for tests. */
  now?: () => number;
}

/** A failed attempt waits retryPeriodMs times 1 to this (client-go's JitterUntil factor), so replicas do not retry in step. */
export const RETRY_JITTER = 1.2;
/** While attempts keep failing, one line says so at most this often (with how many failed). */
export const FAILURE_LOG_EVERY_MS = 60_000;

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => number;
  /** Attempts failed in a row, and when the last line about them was logged. */
  private failedInRow = 0;
  private failureLoggedAt = 0;
  private exitResolve: ((reason: string) => void) | undefined;
  /** Resolves when the elector gave up for good after a loss with onLost = 'exit'. */
  readonly exited: Promise<string>;

  constructor(private readonly o: LeaderElectorOptions) {
    this.log = o.logger ?? silentLogger;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = o.random ?? Math.random;
    this.now = o.now ?? (() => performance.now());
    this.exited = new Promise((resolve) => (this.exitResolve = resolve));
  }

  isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stop campaigning; a leader releases the lock so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    const wasLeading = this.leading;
    if (wasLeading) await this.setLeading(false, 'shutting down');
    const removed = await this.o.lock.release().catch((err: unknown) => {
      this.log.warn('leader lock release failed', { error: String(err) });
      return false;
    });
    if (!wasLeading) return;
    // Found by an operator's audit: "released" was said with etcd away, the lock still standing.
    if (removed === false) this.log.warn('leadership given up, but the lock could not be removed (etcd unreachable?): another replica takes over when its lease expires', { identity: this.o.identity });
    else this.log.info('leadership released', { identity: this.o.identity });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let acquired: boolean;
      try {
        acquired = await this.o.lock.tryAcquire();
        this.attemptAnswered();
      } catch (err) {
        // Stopping closes the clients under an attempt: its failure is the stop, not news.
        if (this.stopped) return;
        this.attemptFailed(err);
        // Not waitForChange: it ends at once while no one holds the lock, and a failing etcd
        // (NOSPACE, no quorum) then had the follower try 42 times a second, each attempt a lease,
        // a watch and a read on etcd, and a line each (found by black-box probing).
        await this.sleep(this.o.retryPeriodMs * (1 + (RETRY_JITTER - 1) * this.random()));
        continue;
      }
      if (this.stopped) return;
      if (!acquired) {
        await this.o.lock.waitForChange(this.o.retryPeriodMs).catch(() => this.sleep(this.o.retryPeriodMs));
        continue;
      }
      this.log.info('became leader', { identity: this.o.identity });
      const lost = this.o.lock.lost();
      await this.setLeading(true, 'acquired');
      const reason = await lost;
      if (this.stopped) return;
      this.log.warn('lost leadership', { identity: this.o.identity, reason });
      await this.setLeading(false, reason);
      if (this.o.onLost === 'exit') {
        this.stopped = true;
        this.exitResolve?.(reason);
        return;
      }
    }
  }

  private attemptFailed(err: unknown): void {
    this.failedInRow++;
    const now = this.now();
    if (this.failedInRow > 1 && now - this.failureLoggedAt < FAILURE_LOG_EVERY_MS) return;
    this.failureLoggedAt = now;
    this.log.warn('leader election attempt failed', { identity: this.o.identity, error: errorMessage(err), failedInRow: this.failedInRow });
  }

  private attemptAnswered(): void {
    if (this.failedInRow === 0) return;
    this.log.info('leader election attempts answered again', { identity: this.o.identity, failedInRow: this.failedInRow });
    this.failedInRow = 0;
  }

  private async setLeading(leading: boolean, reason: string): Promise<void> {
    if (this.leading === leading) return;
    this.leading = leading;
    this.o.onLeaderChange?.(leading);
    try {
      if (leading) await this.o.callbacks.onStartedLeading();
      else await this.o.callbacks.onStoppedLeading(reason);
    } catch (err) {
      this.log.error('leader callback failed', { leading, error: (err as Error).message });
    }
  }
}
