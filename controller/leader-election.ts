// One leader among replicas, after client-go's leaderelection: campaign for a lock, run the
// leader's work while holding it, stop at once when it is lost, and hand it over on shutdown.
import { silentLogger, type Logger } from './logger.js';

export interface LeaderLock {
  /** Try once to take the lock; true if this process holds it now. */
  tryAcquire(): Promise<boolean>;
  /** Resolves when the holder may have changed, or after `timeoutMs`. */
  waitForChange(timeoutMs: number): Promise<void>;
  /** Resolves when the held lock is lost (lease expired, revoked, or taken). */
  lost(): Promise<string>;
  /** Give the lock up so another replica can take it without waiting for expiry. */
  release(): Promise<void>;
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
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly log: Logger;
  private exitResolve: ((reason: string) => void) | undefined;
  /** Resolves when the elector gave up for good after a loss with onLost = 'exit'. */
  readonly exited: Promise<string>;

  constructor(private readonly o: LeaderElectorOptions) {
    this.log = o.logger ?? silentLogger;
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
    await this.o.lock.release().catch((err: unknown) => this.log.warn('leader lock release failed', { error: String(err) }));
    if (wasLeading) this.log.info('leadership released', { identity: this.o.identity });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let acquired = false;
      try {
        acquired = await this.o.lock.tryAcquire();
      } catch (err) {
        this.log.warn('leader election attempt failed', { identity: this.o.identity, error: (err as Error).message });
      }
      if (this.stopped) return;
      if (!acquired) {
        await this.o.lock.waitForChange(this.o.retryPeriodMs).catch(() => new Promise((r) => setTimeout(r, this.o.retryPeriodMs)));
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
