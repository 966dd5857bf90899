// The domain's reports as log lines and metrics: every state change logged once as
// {kind, name, from, to, reason}; bad input logged with its key and counted by reason.
import type { Logger } from '../../controller/logger.js';
import type { DomainObserver, ReconcileRequestResult } from '../../reconcilers/ports.js';
import type { ResourceKind } from '../../domain/states.js';
import type { Metrics } from './metrics.js';

/** winston's level check, when the logger has one (the interface of controller/logger.ts does not). */
type LevelCheck = (level: string) => boolean;

export class LoggingObserver implements DomainObserver {
  private readonly levelEnabled: LevelCheck | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    const check = (logger as { isLevelEnabled?: unknown }).isLevelEnabled;
    this.levelEnabled = typeof check === 'function' ? (check as LevelCheck).bind(logger) : undefined;
  }

  invalidInput(reason: string, key: string, detail: string): void {
    this.metrics.invalidInput.labels({ reason }).inc();
    this.logger.warn('invalid input skipped', { reason, key, detail });
  }

  transition(kind: ResourceKind, name: string, from: string | null, to: string | null, reason: string): void {
    this.metrics.transition(kind, from ?? 'none', to ?? 'none');
    // One per state change: below the configured level (the benchmarks run at warn) winston
    // would still take the line through its streams before dropping it.
    if (this.levelEnabled?.('info') === false) return;
    this.logger.info('state changed', { kind, name, from, to, reason });
  }

  reconcileRequest(result: ReconcileRequestResult, pkg: string, detail?: string): void {
    this.metrics.reconcileRequests.labels({ result }).inc();
    if (this.levelEnabled?.(result === 'failed' ? 'warn' : 'info') === false) return;
    const meta = { package: pkg, result, ...(detail ? { detail } : {}) };
    if (result === 'failed') this.logger.warn('reconcile request not delivered, will retry', meta);
    else this.logger.info(`reconcile request ${result}`, meta);
  }
}
