// A model reconcile that changes the model's state also decides the packages listing it and
// writes them in the same transaction: one etcd round trip from a container change to its
// package's state instead of two (issue 22).
//
// The coalescing rule keeps the two-step path's guarantees. A package is folded in only when
// nothing else is about to decide it: no work queued or running for the package or for any of
// its other models, the model itself not queued again, and neither a model key waiting for a
// worker nor a write waiting for a transaction slot (under saturation the two steps pipeline and
// coalesce better, so the fold is for an idle or lightly loaded controller, where it saves a
// whole round trip). So a fold writes only what the package
// reconcile would have written at that moment, never a state the two-step path would have
// coalesced away, and entering Error still makes exactly one reconcile request. Every other model
// state the decision read is guarded in the transaction, so a fold never writes from a stale
// level; a lost guard fails the whole transaction and the model is retried from the new level.
// Anything not folded is left to the package reconciler, which runs anyway (the model's change
// queues it) and finds a folded package already right.
import type { ModelState, PackageState } from '../domain/states.js';
import type { Fleet } from './fleet.js';
import { decidePackage, requestStatus, type PackageDecision } from './package-decision.js';
import type { ReadGuard, StateTransition } from './ports.js';

/** What the work queues hold: the coalescing rule asks before folding a package in. */
export interface QueuedWork {
  /** Work for the model is queued or running. */
  model(name: string): boolean;
  /** The model was queued again while its reconcile runs: this pass is not its last. */
  modelQueuedAgain(name: string): boolean;
  /** Work for the package is queued or running. */
  package(name: string): boolean;
  /** Model keys waiting for a worker (every worker busy): the controller is saturated. */
  modelsWaiting(): number;
  /** Writes waiting for a transaction slot in the store: etcd is saturated. */
  writesWaiting(): number;
}

export interface Cascade {
  transitions: StateTransition[];
  unchanged: ReadGuard[];
  decisions: PackageDecision[];
}

export interface PackageCascadeDeps {
  fleet: Fleet;
  work: QueuedWork;
  triggerStates: ReadonlySet<PackageState>;
  source: string;
  /** Queue a package again (one whose reconcile was deferred while a fold of it was in flight). */
  requeuePackage(name: string): void;
}

// One transaction must stay well inside etcd's --max-txn-ops (128 per list): a package costs up
// to 4 operations (state, history, history trim, request) and each guard one compare. Packages
// past these bounds take the two-step path.
export const MAX_FOLDED_PACKAGES = 16;
export const MAX_READ_GUARDS = 48;
/**
 * Model keys waiting for a worker, or writes waiting for a transaction slot, from which the
 * controller counts as saturated and stops folding: about one full transaction of model writes
 * (the store's 120 operations at two or three a write). With folding stopped at the first write
 * waiting, p50 at 1,000 flips/s was 3.6–4.3× etcd's floor; with a backlog of 16 or more allowed,
 * 2.6–3.0×, and 3,000/s was no worse (docs/performance.md).
 */
export const FOLD_BACKLOG_LIMIT = 40;

/** Shared and never mutated: plan() builds a new cascade when there is something to fold. */
export const NO_CASCADE: Cascade = { transitions: [], unchanged: [], decisions: [] };

export class PackageCascade {
  /** Packages in a fold whose transaction is in flight, with how many folds hold each. */
  private readonly folding = new Map<string, number>();
  /** Packages whose reconcile came while they were being folded: queued again once the folds settle. */
  private readonly deferred = new Set<string>();

  constructor(private readonly d: PackageCascadeDeps) {}

  /**
   * Whether a fold of `pkg` is in flight. Its reconcile then waits for it (defer): deciding now
   * would race the fold's write (a lost race and a backoff under load), and could decide from a
   * package state the watch delivered ahead of its model's, before the fold's answer put both in
   * the caches.
   */
  isFolding(pkg: string): boolean {
    return this.folding.has(pkg);
  }

  /** Queue `pkg` again once no fold of it is in flight. */
  defer(pkg: string): void {
    this.deferred.add(pkg);
  }

  /** A fold's transaction is about to be sent. */
  begin(c: Cascade): void {
    for (const t of c.transitions) this.folding.set(t.name, (this.folding.get(t.name) ?? 0) + 1);
  }

  /** A fold's transaction was answered (committed or not; on commit the caches already have it). */
  settle(c: Cascade): void {
    for (const t of c.transitions) {
      const n = (this.folding.get(t.name) ?? 1) - 1;
      if (n > 0) {
        this.folding.set(t.name, n);
        continue;
      }
      this.folding.delete(t.name);
      if (this.deferred.delete(t.name)) this.d.requeuePackage(t.name);
    }
  }

  /** The package transitions to write with `model` becoming `next` (often none). */
  plan(model: string, next: ModelState, now: number): Cascade {
    const { fleet, work } = this.d;
    // Saturated (a backlog of model keys waiting for a worker, or of writes waiting for a
    // transaction slot): two steps pipeline better than one. The package reconciler writes while
    // the model workers go on, the package queue coalesces a burst into one write, and the store
    // groups small writes into full transactions. A few writes waiting are not saturation: they
    // go out together in the store's next transaction, and the fold saves the package its own.
    if (work.modelQueuedAgain(model) || work.modelsWaiting() >= FOLD_BACKLOG_LIMIT || work.writesWaiting() >= FOLD_BACKLOG_LIMIT) return NO_CASCADE;
    let cascade: Cascade | undefined;
    const guarded = new Set<string>();
    for (const pkg of fleet.packagesOfModel(model)) {
      if (cascade && cascade.transitions.length >= MAX_FOLDED_PACKAGES) break;
      if (work.package(pkg)) continue;
      const models = fleet.modelsOfPackage(pkg);
      if (models === undefined) continue;
      const modelStates: ModelState[] = [];
      const reads: ReadGuard[] = [];
      let settled = true;
      for (const m of models) {
        if (m === model) {
          modelStates.push(next);
          continue;
        }
        if (work.model(m)) {
          settled = false;
          break;
        }
        const stored = fleet.storedModelState(m);
        modelStates.push(stored?.value.state ?? 'Created');
        if (!guarded.has(m)) reads.push({ kind: 'model', name: m, expected: stored });
      }
      if (!settled) continue;
      if ((cascade?.unchanged.length ?? 0) + reads.length > MAX_READ_GUARDS) continue;
      const decision = decidePackage({
        name: pkg,
        stored: fleet.storedPackageState(pkg),
        modelStates,
        request: requestStatus(fleet.reconcileRequest(pkg)),
        triggerStates: this.d.triggerStates,
        now,
        source: this.d.source,
      });
      if (!decision) continue;
      cascade ??= { transitions: [], unchanged: [], decisions: [] };
      cascade.transitions.push(decision.transition);
      cascade.decisions.push(decision);
      for (const r of reads) {
        guarded.add(r.name);
        cascade.unchanged.push(r);
      }
    }
    return cascade ?? NO_CASCADE;
  }
}
