// History left behind by state keys deleted while no replica of this release watched (stopped,
// restarting, an older release leading, the StateManager this one replaced): the deletion event
// that queues the history controller never came, so the entries stayed for good, and a state
// created again under the name mixed its new history with them (found by a black-box probe of
// rolling upgrades). Once per leadership, after the resync's work has had its time, every kind's
// history is listed (keys only, page by page) and each name whose entries outrun its state — no
// state, or entries past its version — goes to the history controller, which trims by the level
// under a guard, as for a deletion seen live. A sweep that fails is tried again later, while leading.
import type { Logger } from '../controller/logger.js';
import type { Runnable } from '../controller/manager.js';
import { errorMessage } from '../controller/errors.js';
import type { ResourceKind } from '../domain/states.js';

/** A name with history entries, and its highest entry's version. */
export interface HistoryName {
  name: string;
  lastVersion: number;
}

/** The names with history of a kind, in key order, a page at a time; stops early when `signal` is aborted. */
export interface HistoryNames {
  list(kind: ResourceKind, page: (names: readonly HistoryName[]) => void, signal: AbortSignal): Promise<void>;
}

export interface HistorySweepOptions {
  names: HistoryNames;
  /** The stored state's version as the caches hold it; undefined when there is none. */
  storedVersion(kind: ResourceKind, name: string): number | undefined;
  /** Queue the history controller for the name. */
  queue(kind: ResourceKind, name: string): void;
  logger: Logger;
  /** Wait after winning leadership (the resync goes first); 0 sweeps at once. */
  delayMs: number;
  /** Wait before a failed sweep is tried again, doubling up to `retryCapMs` (default 1 min and 15 min). */
  retryMs?: number;
  retryCapMs?: number;
}

const KINDS: readonly ResourceKind[] = ['model', 'package', 'scenario'];

export class HistorySweep implements Runnable {
  readonly name = 'history-sweep';
  readonly needLeaderElection = true;
  private abort: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly o: HistorySweepOptions) {}

  start(): void {
    this.run();
  }

  resume(): void {
    this.run();
  }

  pause(): Promise<void> {
    return this.halt();
  }

  stop(): Promise<void> {
    return this.halt();
  }

  /** The sweep in progress, if any (tests). */
  get done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private run(): void {
    if (this.running) return;
    const abort = (this.abort = new AbortController());
    this.running = this.sweepUntilDone(abort.signal).finally(() => (this.running = undefined));
  }

  /**
   * Sweeps, and after a failure sweeps again later while still leading: a leader on a slow link
   * (black-box probing: 256 kbit/s to etcd) failed its one sweep on a page's deadline and held
   * leadership for good, so history left behind was never found.
   */
  private async sweepUntilDone(signal: AbortSignal): Promise<void> {
    if (this.o.delayMs > 0) await abortableSleep(this.o.delayMs, signal);
    let wait = this.o.retryMs ?? 60_000;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await this.sweep(signal);
        if (attempt > 1 && !signal.aborted) this.o.logger.info('history swept after failures', { attempts: attempt });
        return;
      } catch (err) {
        if (signal.aborted) return;
        this.o.logger.warn('history sweep failed; trying again', { error: errorMessage(err), attempt, retryInMs: wait });
      }
      await abortableSleep(wait, signal);
      wait = Math.min(wait * 2, this.o.retryCapMs ?? 15 * 60_000);
    }
  }

  private async halt(): Promise<void> {
    this.abort?.abort();
    await this.running;
  }

  private async sweep(signal: AbortSignal): Promise<void> {
    let names = 0;
    let queued = 0;
    for (const kind of KINDS) {
      if (signal.aborted) return;
      await this.o.names.list(
        kind,
        (page) => {
          for (const h of page) {
            names++;
            const version = this.o.storedVersion(kind, h.name);
            if (version !== undefined && h.lastVersion <= version) continue;
            this.o.queue(kind, h.name);
            queued++;
          }
        },
        signal,
      );
    }
    if (signal.aborted) return;
    this.o.logger[queued > 0 ? 'info' : 'debug']('history swept', { names, leftBehind: queued });
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
