// One statemanager process in the simulation, built from the real pieces exactly as src/app.ts
// builds them (the controllers through reconcilers/controllers.ts): the real leader lock, state
// store, lister-watcher, informers, work queues, controllers, reconcilers and manager, over a
// FakeEtcdConnection. Crashing it closes its connection: memory is lost, etcd keeps everything.
import type { Informer } from '../../controller/informer.js';
import { silentLogger } from '../../controller/logger.js';
import { Manager } from '../../controller/manager.js';
import type { ExponentialRateLimiter } from '../../controller/rate-limiter.js';
import { WorkQueue, type Priority } from '../../controller/workqueue.js';
import { buildControllers, type Controllers } from '../../reconcilers/controllers.js';
import { enqueueAll } from '../../reconcilers/event-mapping.js';
import { Fleet } from '../../reconcilers/fleet.js';
import type { KeyLayout } from '../../domain/keys.js';
import { silentObserver } from '../../reconcilers/ports.js';
import type { RepeatPolicy } from '../../reconcilers/reconcile-request-reconciler.js';
import { EtcdLeaderLock } from '../../src/etcd/leader-lock.js';
import { EtcdListerWatcher } from '../../src/etcd/lister-watcher.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import type { SimActionController } from './action-controller.js';
import type { FakeEtcdConnection } from './fake-client.js';
import { FakeWatchClient } from './fake-watch.js';
import type { Mutation } from './mutations.js';

export interface ReplicaSettings {
  leaseSeconds: number;
  requestTimeoutMs: number;
  historyLength: number;
  liveness: { enabled: boolean; graceMs: number };
  repeat: RepeatPolicy;
  pageSize: number;
}

export interface ReplicaDeps {
  identity: string;
  conn: FakeEtcdConnection;
  keys: KeyLayout;
  ac: SimActionController;
  settings: ReplicaSettings;
  mutation: Mutation | undefined;
  /** Where the replica's own checks report (an informer going back in time). */
  violation(message: string): void;
}

/** The planted bug "a work queue that drops a key re-added while it is being processed". */
class DroppingWorkQueue extends WorkQueue {
  private readonly busy = new Set<string>();

  override add(key: string, priority: Priority = 'high'): void {
    if (this.busy.has(key)) return;
    super.add(key, priority);
  }

  override get(): string | undefined {
    const key = super.get();
    if (key !== undefined) this.busy.add(key);
    return key;
  }

  override done(key: string): void {
    this.busy.delete(key);
    super.done(key);
  }
}

export class SimReplica {
  readonly identity: string;
  readonly conn: FakeEtcdConnection;
  readonly watch: FakeWatchClient;
  readonly fleet: Fleet;
  readonly manager: Manager;
  readonly built: Controllers;
  private started: Promise<void> | undefined;

  constructor(d: ReplicaDeps) {
    const { conn, keys, settings: s, mutation } = d;
    this.identity = d.identity;
    this.conn = conn;
    const client = conn.client();
    this.watch = new FakeWatchClient(conn);
    const watcher = this.watch.asClient();
    const clock = { now: () => Date.now(), elapsed: () => performance.now() };
    const lock = new EtcdLeaderLock({
      client,
      watcher,
      key: keys.leader,
      identity: d.identity,
      leaseSeconds: s.leaseSeconds,
      requestTimeoutMs: s.requestTimeoutMs,
      logger: silentLogger,
      ...(mutation === 'unfenced-leader' ? { plantedBugUnfenced: true } : {}),
    });
    const fleet = (this.fleet = new Fleet({
      keys,
      lw: new EtcdListerWatcher(client, watcher, s.pageSize, s.requestTimeoutMs),
      observer: silentObserver,
      liveness: s.liveness,
      clock,
      ...(mutation === 'informer-resume-listed' ? { plantedBugResumeFromListed: true } : {}),
    }));
    const store = new EtcdStateStore({
      client,
      keys,
      historyLength: s.historyLength,
      requestTimeoutMs: s.requestTimeoutMs,
      guard: lock,
      onCommit: (changes) => fleet.caches.assume(changes),
      ...(mutation === 'unguarded-state-write' ? { plantedBugs: { stateWriteWithoutCompare: true } } : {}),
      ...(mutation === 'request-after-error' ? { plantedBugs: { requestAfterState: true } } : {}),
    });
    this.built = buildControllers({
      fleet,
      store,
      actionController: d.ac.clientFor(conn),
      observer: silentObserver,
      clock,
      source: `controller/${d.identity}`,
      logger: silentLogger,
      triggerStates: new Set(['Error'] as const),
      repeat: s.repeat,
      settings: { keyBackoff: { base: 5, cap: 2000 }, requestBackoff: { base: 100, cap: 2000 }, workers: 4, requestWorkers: 2 },
      ...(mutation === 'queue-drops-dirty' ? { makeQueue: (name: string, rateLimiter: ExponentialRateLimiter) => new DroppingWorkQueue({ name, rateLimiter }) } : {}),
    });
    this.watchMonotonic(d.violation);
    this.manager = new Manager({
      caches: fleet.caches,
      resync: () => void enqueueAll(fleet, this.built.enqueue, 'low'),
      // Out of the window on purpose: a missed event must be healed by the design, not the timer.
      resyncPeriodMs: 600_000,
      logger: silentLogger,
      leaderElection: { identity: d.identity, lock, retryPeriodMs: Math.max(200, (s.leaseSeconds * 1000) / 5), onLost: 'follow' },
    });
    for (const c of Object.values(this.built.controllers)) this.manager.add(c);
  }

  start(): void {
    this.started ??= this.manager.start().catch(() => undefined);
  }

  /** The process dies: no more answers from etcd or the ActionController, no more watches. */
  crash(): void {
    this.conn.close();
    this.watch.close();
  }

  get alive(): boolean {
    return !this.conn.isClosed;
  }

  isLeader(): boolean {
    return this.alive && this.manager.isLeader();
  }

  /** An informer never hands out a key at a revision it has already passed (it would go back in time). */
  private watchMonotonic(violation: (m: string) => void): void {
    for (const inf of this.fleet.caches.informers as readonly Informer<unknown>[]) {
      const seen = new Map<string, number>();
      inf.addHandler((e) => {
        if (e.type === 'deleted') return;
        const last = seen.get(e.key) ?? 0;
        if (e.new.modRevision <= last) violation(`${this.conn.id}: informer ${inf.name} went back in time on ${e.key} (revision ${e.new.modRevision} after ${last})`);
        seen.set(e.key, Math.max(last, e.new.modRevision));
      });
    }
  }
}
