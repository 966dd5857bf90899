// What the domain reports as it works; src/ turns it into log lines and metrics.
import type { ResourceKind } from './states.js';

export type ReconcileRequestResult = 'created' | 'delivered' | 'failed' | 'cleared';

export interface DomainObserver {
  /** Bad input skipped: logged with the key, counted by reason. */
  invalidInput(reason: string, key: string, detail: string): void;
  /** A state change that was committed. */
  transition(kind: ResourceKind, name: string, from: string | null, to: string | null, reason: string): void;
  reconcileRequest(result: ReconcileRequestResult, pkg: string, detail?: string): void;
}

export const silentObserver: DomainObserver = {
  invalidInput: () => undefined,
  transition: () => undefined,
  reconcileRequest: () => undefined,
};
