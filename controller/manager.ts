// The lifecycle of a controller process, after controller-runtime's manager: caches start
// first; runnables start once they have synced; those that need leadership run only while
// this replica leads (paused, not stopped, when it loses it, so their queues keep collecting);
// a resync runs when leadership is won and periodically while it is held; named readiness and
// liveness checks are kept in one registry the probes read.
import { LeaderElector, type LeaderLock } from './leader-election.js';
import { silentLogger, type Logger } from './logger.js';

export interface Runnable {
  readonly name: string;
  /** Runs only on the leader (or always, when there is no leader election). */
  readonly needLeaderElection: boolean;
  start(): void;
  /** Leadership lost: stop taking work, finish what is in flight. */
  pause?(): Promise<void>;
  /** Leadership won again after a pause. */
  resume?(): void;
  stop(): Promise<void>;
}

/** The informer set: started before anything else, waited for before runnables start. */
export interface Caches {
  start(): void;
  waitForSync(): Promise<void>;
  hasSynced(): boolean;
  stop(): Promise<void>;
}

/** A named check: undefined when healthy, else why not. */
export type Check = () => string | undefined | void;

export interface ManagerOptions {
  caches: Caches;
  /** Recompute everything; called on winning leadership and every `resyncPeriodMs` while leading. */
  resync?: (reason: string) => void;
  resyncPeriodMs?: number;
  leaderElection?: {
    identity: string;
    lock: LeaderLock;
    retryPeriodMs: number;
    onLost: 'follow' | 'exit';
    onLeaderChange?(leading: boolean): void;
  };
  logger?: Logger;
}

export interface CheckResult {
  ok: boolean;
  failing: string[];
}

export class Manager {
  private readonly runnables: Runnable[] = [];
  private readonly readyChecks = new Map<string, Check>();
  private readonly healthChecks = new Map<string, Check>();
  readonly elector: LeaderElector | undefined;
  private readonly log: Logger;
  private startup: Promise<void> | undefined;
  private leaderRunnablesStarted = false;
  private leaderRunnablesRunning = false;
  private stopped = false;
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ManagerOptions) {
    this.log = o.logger ?? silentLogger;
    const le = o.leaderElection;
    this.elector = le
      ? new LeaderElector({
          ...le,
          logger: this.log,
          callbacks: {
            onStartedLeading: () => this.startLeading('became leader'),
            onStoppedLeading: () => this.stopLeading(),
          },
        })
      : undefined;
    this.addReadyCheck('informers-synced', () => (o.caches.hasSynced() ? undefined : 'not synced'));
    // A follower is ready: it serves reads and stands by with warm caches.
    this.addReadyCheck('workers', () => (this.isLeader() && !this.leaderRunnablesRunning ? 'not running' : undefined));
  }

  add(r: Runnable): void {
    this.runnables.push(r);
  }

  addReadyCheck(name: string, check: Check): void {
    this.readyChecks.set(name, check);
  }

  addHealthCheck(name: string, check: Check): void {
    this.healthChecks.set(name, check);
  }

  ready(): CheckResult {
    return run(this.readyChecks);
  }

  healthy(): CheckResult {
    return run(this.healthChecks);
  }

  isLeader(): boolean {
    return this.elector ? this.elector.isLeader() : true;
  }

  /** Whether the leader's runnables are running now (false on a follower). */
  leaderWorkRunning(): boolean {
    return this.leaderRunnablesRunning;
  }

  /** Start the caches at once; runnables once the caches have synced. Resolves then. */
  start(): Promise<void> {
    this.startup ??= (async () => {
      this.o.caches.start();
      await this.o.caches.waitForSync();
      if (this.stopped) return;
      for (const r of this.runnables) if (!r.needLeaderElection) r.start();
      if (this.elector) this.elector.start();
      else this.startLeading('start');
    })();
    return this.startup;
  }

  /** Hand leadership over (after in-flight work finishes), stop every runnable, then the caches. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.resyncTimer);
    if (this.elector) await this.elector.stop();
    this.leaderRunnablesRunning = false;
    await Promise.all(this.runnables.map((r) => r.stop()));
    await this.o.caches.stop();
  }

  /** A new leader resyncs before it works: whatever changed while it was not leading is seen. */
  private startLeading(reason: string): void {
    if (this.stopped) return;
    this.o.resync?.(reason);
    for (const r of this.runnables) {
      if (!r.needLeaderElection) continue;
      if (this.leaderRunnablesStarted) r.resume?.();
      else r.start();
    }
    this.leaderRunnablesStarted = true;
    this.leaderRunnablesRunning = true;
    clearInterval(this.resyncTimer);
    const period = this.o.resyncPeriodMs ?? 0;
    if (period > 0 && this.o.resync) {
      const resync = this.o.resync;
      this.resyncTimer = setInterval(() => resync('periodic'), period);
      this.resyncTimer.unref();
    }
  }

  private async stopLeading(): Promise<void> {
    this.leaderRunnablesRunning = false;
    clearInterval(this.resyncTimer);
    await Promise.all(this.runnables.filter((r) => r.needLeaderElection).map((r) => r.pause?.()));
  }
}

function run(checks: ReadonlyMap<string, Check>): CheckResult {
  const failing: string[] = [];
  for (const [name, check] of checks) {
    let problem: string | undefined | void;
    try {
      problem = check();
    } catch (err) {
      problem = String(err);
    }
    if (problem) failing.push(name);
  }
  return { ok: failing.length === 0, failing };
}
