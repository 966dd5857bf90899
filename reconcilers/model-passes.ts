// After a resync a package is decided from its models' recomputed states, not their stored ones.
//
// A model's stored state can be behind its containers: the leader that saw them change died
// before writing it (a takeover), or an event was missed (what resyncs heal). A package decided
// from that stored state writes a state its containers do not imply, with a history entry and,
// for Error, a reconcile request: a black-box run of 15 leader kills saw 28 Error entries of
// 1–51 ms. So a model queued by a resync is "due" until its pass has run, and a package that
// lists due models waits for all of them: it is counted, not queued, and the last of their
// passes queues it. An event for a waiting package moves its due models ahead of the rest of the
// resync, so a live change is not held behind all of it.
//
// Counting keeps a resync at one run per package, whatever its size: a package of 5,000 models
// woken by each pass would have run 5,000 times, each reading its models again. Only a resync
// makes a model due, and one pass of any outcome ends it: live events never make a package wait,
// so a model that never stops changing cannot starve its packages.
import { REQUEUE, type Reconciler, type ReconcileResult } from '../controller/controller.js';
import type { Priority } from '../controller/workqueue.js';
import type { Fleet } from './fleet.js';

/**
 * How long after its first lost race a due model's passes may go on losing them before one ends
 * its pass all the same: long enough for a cache to catch up with a stream a little behind,
 * short enough that a model whose state some other writer keeps changing does not hold its
 * packages for long.
 */
export const LOST_RACES_WINDOW_MS = 2000;

export interface ModelPassesDeps {
  fleet: Pick<Fleet, 'packagesOfModel' | 'modelsOfPackage' | 'storedModelState'>;
  /** Whether work for the model is queued or running. */
  modelHasWork(name: string): boolean;
  /** Move the model's queued work ahead of a resync's (nothing when it is not waiting in a queue). */
  promoteModel(name: string): void;
  queuePackage(name: string, priority: Priority): void;
  /** Monotonic ms (tests); performance.now by default. */
  now?: () => number;
}

/** A package waiting for passes: its model list when counted (a new definition is counted again) and how many are left. */
interface Waiting {
  models: readonly string[];
  left: number;
  /** Its due models were moved ahead of the resync's other work (once is enough). */
  hurried: boolean;
}

export class ModelPasses {
  /** Models queued by a resync whose pass has not run yet. */
  private readonly due = new Set<string>();
  private readonly waiting = new Map<string, Waiting>();
  /** When due models' passes first lost their race (see wrap). */
  private readonly lostRaces = new Map<string, number>();

  constructor(private readonly d: ModelPassesDeps) {}

  /**
   * A resync queued the model: packages that list it wait for its pass. Only a stored state can
   * be behind the containers; a model with none is waited for as a first state (below), so a cold
   * start, where no model has one, counts nothing.
   */
  expect(model: string): void {
    if (this.d.fleet.storedModelState(model) !== undefined) this.due.add(model);
  }

  /**
   * For a resync, after its models: whether the package is left to them (then it is not queued).
   * It waits for the passes of its due models, counted; or for the first state of a model with
   * none and work coming, whose state event queues it (a cold start queued every package here
   * too, and each ran twice).
   */
  holdForResync(pkg: string): boolean {
    const models = this.d.fleet.modelsOfPackage(pkg);
    if (models === undefined) return false;
    if (this.count(pkg, models, false) > 0) return true;
    for (const m of models) if (this.d.fleet.storedModelState(m) === undefined && this.d.modelHasWork(m)) return true;
    return false;
  }

  /**
   * An event for the package: whether it is waiting for passes, so queueing it would only make
   * it return (a model's state event at a cold start did that for every package). Its due models
   * then move ahead of the resync's other work: something is happening to it now. (A new
   * definition is counted again: definitionChanged.)
   */
  holds(pkg: string): boolean {
    const w = this.waiting.get(pkg);
    if (w === undefined) return false;
    this.hurry(w);
    return true;
  }

  /** The package's definition changed: what it waits for is counted again when it runs. */
  definitionChanged(pkg: string): void {
    this.waiting.delete(pkg);
  }

  /**
   * A package reconcile's question: wait for due models it lists that have not passed? The last
   * of their passes queues it. (The reconciler also waits for a model with no state yet whose
   * first is coming: that state's event queues it.)
   */
  waitForModels(pkg: string, models: readonly string[] | undefined): boolean {
    if (models === undefined) {
      this.waiting.delete(pkg);
      return false;
    }
    const w = this.waiting.get(pkg);
    if (w !== undefined && w.models === models) {
      this.hurry(w);
      return true;
    }
    return this.due.size > 0 && this.count(pkg, models, true) > 0;
  }

  /** Models still due (a gauge, tests). */
  dueCount(): number {
    return this.due.size;
  }

  /** Packages waiting for passes (tests). */
  waitingCount(): number {
    return this.waiting.size;
  }

  /**
   * The model reconciler with the end of each due pass reported. Any outcome ends it but a lost
   * race (REQUEUE: etcd's state is not the one the cache read), for LOST_RACES_WINDOW_MS:
   * a new leader's cache of model states can be behind its cache of package states (a stream
   * each), and a package decided after such a pass read the model state the last leader had
   * already replaced (code review: a package written Error, with a Reconcile call, that its
   * models never implied). The pass after the cache caught up ends it.
   */
  wrap(inner: Reconciler): Reconciler {
    return {
      reconcile: async (model: string): Promise<ReconcileResult | void> => {
        // A pass that began before the model was due does not count: the resync's is still queued.
        if (!this.due.has(model)) return inner.reconcile(model);
        let result: ReconcileResult | void;
        try {
          result = await inner.reconcile(model);
        } catch (err) {
          this.passed(model);
          throw err;
        }
        if (result === REQUEUE && this.lostRace(model)) return result;
        this.passed(model);
        return result;
      },
    };
  }

  /** A due pass lost its race: whether the model stays due (its next pass is the one waited for). */
  private lostRace(model: string): boolean {
    const now = this.now();
    const first = this.lostRaces.get(model) ?? now;
    if (now - first >= LOST_RACES_WINDOW_MS) return false;
    this.lostRaces.set(model, first);
    return true;
  }

  /** A lost race's retry is coming (requeued after a backoff, so not work in the queue meanwhile). */
  private retrying(model: string): boolean {
    const first = this.lostRaces.get(model);
    return first !== undefined && this.now() - first < LOST_RACES_WINDOW_MS;
  }

  private now(): number {
    return this.d.now?.() ?? performance.now();
  }

  /** Due models of `pkg` with work coming, recorded as what it waits for (moved ahead when `hurry`). */
  private count(pkg: string, models: readonly string[], hurry: boolean): number {
    let left = 0;
    for (const m of models) {
      if (!this.due.has(m)) continue;
      // A pass that lost its race is requeued after a backoff (not work in the queue meanwhile).
      if (!this.d.modelHasWork(m) && !this.retrying(m)) {
        // Its queued work was dropped (a queue shut down): no pass is coming.
        this.due.delete(m);
        continue;
      }
      left++;
      if (hurry) this.d.promoteModel(m);
    }
    if (left > 0) this.waiting.set(pkg, { models, left, hurried: hurry });
    else this.waiting.delete(pkg);
    return left;
  }

  private hurry(w: Waiting): void {
    if (w.hurried) return;
    w.hurried = true;
    for (const m of w.models) if (this.due.has(m)) this.d.promoteModel(m);
  }

  private passed(model: string): void {
    this.lostRaces.delete(model);
    if (!this.due.delete(model) || this.waiting.size === 0) return;
    for (const p of this.d.fleet.packagesOfModel(model)) {
      const w = this.waiting.get(p);
      if (w === undefined) continue;
      // A definition that gained this model after the count makes it short: the package runs
      // early, counts again and waits for the rest.
      if (--w.left > 0) continue;
      this.waiting.delete(p);
      this.d.queuePackage(p, 'low');
    }
  }
}
