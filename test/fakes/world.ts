// The program's controllers (reconcilers/controllers.ts, the same buildControllers the app
// calls) on the in-memory fakes: a fleet over a FakeListerWatcher, a FakeStateStore, a
// FakeActionController, and work queues that record what the event mapping queues instead of
// holding it. The controllers are never started: tests call the reconcilers themselves, in the
// order they need.
import { silentLogger } from '../../controller/logger.js';
import type { ExponentialRateLimiter } from '../../controller/rate-limiter.js';
import { WorkQueue, type Priority } from '../../controller/workqueue.js';
import { buildControllers } from '../../reconcilers/controllers.js';
import type { EventQueues } from '../../reconcilers/event-mapping.js';
import { Fleet } from '../../reconcilers/fleet.js';
import type { LagTracker } from '../../reconcilers/lag-tracker.js';
import type { ModelPasses } from '../../reconcilers/model-passes.js';
import { KeyLayout } from '../../domain/keys.js';
import type { NodeLivenessOptions } from '../../domain/node-liveness.js';
import { silentObserver, type DomainObserver, type Clock } from '../../reconcilers/ports.js';
import { FakeActionController } from './action-controller.js';
import { FakeListerWatcher } from './lister-watcher.js';
import { FakeStateStore } from './state-store.js';

export interface FakeWorldOptions {
  prefix?: string;
  clock: Clock;
  observer?: DomainObserver;
  liveness?: NodeLivenessOptions;
  /** Let a model reconcile write the packages it changes (the program's default); off here so each reconciler is tested alone. */
  foldPackages?: boolean;
  lag?: LagTracker;
  /** Repeats of a delivered request while its package stays in Error; off by default. */
  repeat?: { initialMs: number; capMs: number };
  /** Whether this replica may act as the leader (the leader lock's mayAct); always, by default. */
  mayAct?: () => boolean;
}

export async function fakeWorld(o: FakeWorldOptions) {
  const keys = new KeyLayout(o.prefix ?? '');
  const lw = new FakeListerWatcher();
  const observer = o.observer ?? silentObserver;
  const clock = o.clock;
  const fleet = new Fleet({ keys, lw, observer, clock, ...(o.liveness ? { liveness: o.liveness } : {}) });
  fleet.caches.start();
  await fleet.caches.waitForSync();
  const store = new FakeStateStore(lw, keys);
  const ac = new FakeActionController();
  const queued: string[] = [];
  const busy = new Set<string>();
  const { reconcilers } = buildControllers({
    fleet,
    store,
    actionController: ac,
    observer,
    clock,
    source: 'controller/test',
    logger: silentLogger,
    triggerStates: new Set(['Error'] as const),
    repeat: o.repeat ?? { initialMs: 0, capMs: 0 },
    settings: { keyBackoff: { base: 1, cap: 10 }, requestBackoff: { base: 1, cap: 10 }, workers: 1, requestWorkers: 1 },
    makeQueue: (name, rateLimiter) => new RecordingQueue(name, rateLimiter, queued, busy),
    foldPackages: o.foldPackages ?? false,
    ...(o.lag ? { lag: o.lag } : {}),
    ...(o.mayAct ? { mayAct: o.mayAct } : {}),
  });
  const { model, package: pkg, request } = reconcilers;
  const container = (node: string, id: string, model: string, status: string): void =>
    void lw.put(keys.containerKey(node, id), JSON.stringify({ id, state: { Status: status }, annotation: { 'io.pullpiri.annotations.model': model } }));
  const packageDef = (name: string, models: string[]): void =>
    void lw.put(keys.packageDefKey(name), `spec:\n  models:\n${models.map((m) => `    - name: ${m}\n`).join('')}`);
  const state = (kind: 'model' | 'package', name: string): string | undefined => lw.get(keys.stateKey(kind, name))?.value;
  return { keys, lw, fleet, store, ac, model, pkg, request, queued, busy, container, packageDef, state };
}

/**
 * A work queue that records each key queued as `queue/key` (`model/key+Nms` when delayed), and
 * holds nothing. A test says which keys have work queued or running by adding `queue/key` to
 * `busy` (`queue/key+again` for one queued again while it runs, `queue/*` for a key waiting for
 * a worker, `queue/*N` for N of them).
 */
class RecordingQueue extends WorkQueue {
  constructor(
    private readonly queueName: string,
    rateLimiter: ExponentialRateLimiter,
    private readonly queued: string[],
    private readonly busy: ReadonlySet<string>,
  ) {
    super({ name: queueName, rateLimiter });
  }

  override hasWork(key: string): boolean {
    return this.busy.has(`${this.queueName}/${key}`) || this.addedWhileProcessing(key);
  }

  override addedWhileProcessing(key: string): boolean {
    return this.busy.has(`${this.queueName}/${key}+again`);
  }

  /** Keys waiting for a worker (every worker busy): 1 when `busy` holds `queue/*`, N for `queue/*N`. */
  override len(): number {
    const prefix = `${this.queueName}/*`;
    for (const b of this.busy) if (b.startsWith(prefix)) return Number(b.slice(prefix.length) || 1);
    return 0;
  }

  override add(key: string, _priority?: Priority): void {
    this.queued.push(`${this.queueName}/${key}`);
  }

  override addAfter(key: string, delayMs: number, _priority?: Priority): void {
    this.queued.push(`${this.queueName}/${key}+${delayMs}ms`);
  }
}

/**
 * Queues that record each key as `kind/name` (`model/name+Nms` for a delayed one, `resync/id` for
 * an operator's resync request). With `passes`, a resync queues models for their passes
 * (`modelPass`, recorded as `model/name`) and leaves to them the packages it holds.
 */
export function recordingEnqueue(passes?: Pick<ModelPasses, 'expect' | 'holdForResync'>): { queued: string[]; enqueue: EventQueues } {
  const queued: string[] = [];
  const enqueue: EventQueues = {
    model: (n) => void queued.push(`model/${n}`),
    modelAfter: (n, ms) => void queued.push(`model/${n}+${ms}ms`),
    package: (n) => void queued.push(`package/${n}`),
    request: (n) => void queued.push(`request/${n}`),
    resync: (id) => void queued.push(`resync/${id}`),
    ...(passes
      ? {
          modelPass: (n: string) => {
            passes.expect(n);
            queued.push(`model/${n}`);
          },
          packageForResync: (n: string) => {
            if (passes.holdForResync(n)) return false;
            queued.push(`package/${n}`);
            return true;
          },
        }
      : {}),
  };
  return { queued, enqueue };
}
