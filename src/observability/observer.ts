// The domain's reports as log lines and metrics: every state change logged once as
// {kind, name, from, to, reason}; bad input logged with its key and counted by reason. What
// others can cause in bulk — bad values written to etcd, deliveries failing while the
// ActionController is away — is counted every time but logged at a bounded rate per reason
// (ThrottledLog): 20,000 junk values were 17,000 lines (10 MB) in 8 s, 2,000 packages waiting for
// an absent ActionController 20,000 lines in 2.5 minutes.
import type { Logger } from '../../controller/logger.js';
import type { DomainObserver, ReconcileRequestResult } from '../../reconcilers/ports.js';
import type { ResourceKind } from '../../domain/states.js';
import type { Metrics } from './metrics.js';
import { ThrottledLog } from '../../controller/throttled-log.js';

/** winston's level check and level, when the logger has them (the interface of controller/logger.ts does not). */
interface Leveled {
  isLevelEnabled?: unknown;
  level?: unknown;
}

export class LoggingObserver implements DomainObserver {
  private readonly levelCheck: ((level: string) => boolean) | undefined;
  /** The answers of levelCheck for info and warn, for the logger's level when they were asked. */
  private checkedFor: unknown = undefined;
  private infoOn = true;
  private warnOn = true;
  private readonly throttled: ThrottledLog;

  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    /** The bounded lines' clock (tests). */
    now?: () => number,
  ) {
    this.throttled = new ThrottledLog({ logger, ...(now ? { now } : {}) });
    const check = (logger as Leveled).isLevelEnabled;
    this.levelCheck = typeof check === 'function' ? (check as (level: string) => boolean).bind(logger) : undefined;
  }

  /**
   * Whether a line at `level` ('info' or 'warn') would be written. winston's own check builds
   * arrays on every call, so its answers are kept until the logger's level changes.
   */
  private levelEnabled(level: 'info' | 'warn'): boolean {
    if (this.levelCheck === undefined) return true;
    const current = (this.logger as Leveled).level;
    if (current !== this.checkedFor) {
      this.checkedFor = current;
      this.infoOn = this.levelCheck('info');
      this.warnOn = this.levelCheck('warn');
    }
    return level === 'info' ? this.infoOn : this.warnOn;
  }

  invalidInput(reason: string, key: string, detail: string): void {
    this.metrics.invalidInput.labels({ reason }).inc();
    this.throttled.warn(`invalid input: ${reason}`, 'invalid input skipped', { reason, key, detail });
  }

  transition(kind: ResourceKind, name: string, from: string | null, to: string | null, reason: string, details?: Readonly<Record<string, string | number>>): void {
    this.metrics.transition(kind, from ?? 'none', to ?? 'none');
    // One per state change: below the configured level (the benchmarks run at warn) winston
    // would still take the line through its streams before dropping it.
    if (!this.levelEnabled('info')) return;
    this.logger.info('state changed', details === undefined ? { kind, name, from, to, reason } : { kind, name, from, to, reason, ...details });
  }

  reconcileRequest(result: ReconcileRequestResult, pkg: string, detail?: string): void {
    this.metrics.reconcileRequests.labels({ result }).inc();
    if (!this.levelEnabled(result === 'failed' ? 'warn' : 'info')) return;
    const meta = { package: pkg, result, ...(detail ? { detail } : {}) };
    if (result === 'failed') this.throttled.warn('reconcile request failed', 'reconcile request not delivered, will retry', meta);
    else this.logger.info(`reconcile request ${result}`, meta);
  }
}
