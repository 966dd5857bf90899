// After a resync a package is decided from its models' recomputed states, not their stored ones.
//
// A model's stored state can be behind its containers: the leader that saw them change died
// before writing it (a takeover), or an event was missed (what resyncs heal). A package decided
// from that stored state writes a state its containers do not imply, with a history entry and,
// for Error, a reconcile request: a black-box run of 15 leader kills saw 28 Error entries of
// 1–51 ms. So a model queued by a resync is "due" until its pass has run; a package that lists a
// due model waits (the package reconciler returns, writing nothing) and the pass queues it when
// it ends. A waiting package moves the model it waits for ahead of the rest of the resync.
//
// Only a resync makes a model due, and one pass of any outcome ends it: live events never make a
// package wait, so a model that never stops changing cannot starve its packages.
import type { Reconciler, ReconcileResult } from '../controller/controller.js';
import type { Priority } from '../controller/workqueue.js';
import type { Fleet } from './fleet.js';

export interface ModelPassesDeps {
  fleet: Pick<Fleet, 'packagesOfModel' | 'storedModelState'>;
  /** Whether work for the model is queued or running. */
  modelHasWork(name: string): boolean;
  /** Move the model's queued work ahead of a resync's (nothing when it is not waiting in a queue). */
  promoteModel(name: string): void;
  queuePackage(name: string, priority: Priority): void;
}

const NOT_AWAITED = 0;
/** A resync's pass is due and has not written. */
const AWAITED_DUE = 1;
/** No state yet, and work is coming. */
const AWAITED_FIRST = 2;
/** Due, and the running pass has written its state. */
const WRITTEN = 3;
type Check = typeof NOT_AWAITED | typeof AWAITED_DUE | typeof AWAITED_FIRST | typeof WRITTEN;

export class ModelPasses {
  /** Models queued by a resync whose pass has not run yet. */
  private readonly due = new Set<string>();
  /** Packages that waited for a due model, by model: its pass queues them again. */
  private readonly waiters = new Map<string, Set<string>>();
  /** Due models whose pass is running, with the state they had when it began ('' for none). */
  private readonly running = new Map<string, string>();

  constructor(private readonly d: ModelPassesDeps) {}

  /** A resync queued the model: packages that list it wait for its pass. */
  expect(model: string): void {
    this.due.add(model);
  }

  /**
   * Whether a package reading the model should wait for it: a resync's pass of it is due (and
   * has not written its state yet), or it has no state yet and its first is coming (a cold start:
   * read as Created, half the packages were written twice).
   */
  awaited(model: string): boolean {
    return this.check(model) !== NOT_AWAITED;
  }

  /**
   * awaited(), for `pkg`: a due model moves ahead of the resync's other work and queues `pkg`
   * again when its pass ends. (A model with no state yet needs neither: its first state's event
   * queues its packages.)
   */
  waitFor(model: string, pkg: string): boolean {
    const c = this.check(model);
    if (c === AWAITED_DUE) {
      this.d.promoteModel(model);
      let w = this.waiters.get(model);
      if (w === undefined) this.waiters.set(model, (w = new Set()));
      w.add(pkg);
      return true;
    }
    // Decided now (the pass has written its state): its end need not queue the package again.
    if (c === WRITTEN) this.waiters.get(model)?.delete(pkg);
    return c === AWAITED_FIRST;
  }

  private check(model: string): Check {
    if (!this.d.modelHasWork(model)) {
      // Queued work dropped (a queue shut down): nothing is coming to end the wait.
      if (this.due.delete(model)) {
        this.waiters.delete(model);
        this.running.delete(model);
      }
      return NOT_AWAITED;
    }
    const state = this.d.fleet.storedModelState(model)?.value.state;
    if (!this.due.has(model)) return state === undefined ? AWAITED_FIRST : NOT_AWAITED;
    // The pass has written its state (its event queued the packages, this one among them): what
    // the package would wait for is there.
    const before = this.running.get(model);
    return before === undefined || before === (state ?? '') ? AWAITED_DUE : WRITTEN;
  }

  /** Models still due (a gauge, tests). */
  dueCount(): number {
    return this.due.size;
  }

  /** The model reconciler with the end of each due pass reported (any outcome ends it). */
  wrap(inner: Reconciler): Reconciler {
    return {
      reconcile: (model: string): Promise<ReconcileResult | void> => {
        // A pass that began before the model was due does not count: the resync's is still queued.
        if (!this.due.has(model)) return inner.reconcile(model);
        const before = this.d.fleet.storedModelState(model)?.value.state ?? '';
        this.running.set(model, before);
        return inner.reconcile(model).finally(() => this.passed(model, before));
      },
    };
  }

  private passed(model: string, before: string): void {
    this.running.delete(model);
    if (!this.due.delete(model)) return;
    const waited = this.waiters.get(model);
    if (waited !== undefined) this.waiters.delete(model);
    // A changed state queued the packages (event mapping), so only those that ran during the
    // pass and waited are queued again: all of them again would run each twice at a cold start.
    if ((this.d.fleet.storedModelState(model)?.value.state ?? '') === before) {
      for (const p of this.d.fleet.packagesOfModel(model)) if (waited === undefined || !waited.has(p)) this.d.queuePackage(p, 'low');
    }
    if (waited !== undefined) for (const p of waited) this.d.queuePackage(p, 'low');
  }
}
