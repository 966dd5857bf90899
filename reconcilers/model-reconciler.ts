// A model's state from its containers (and their nodes), written only when it changes. A node
// whose lease grace is running out is looked at again when it has (level-based, like the node
// lifecycle controller: the answer depends on the clock, so the reconcile asks to be requeued).
import { REQUEUE, type Reconciler, type ReconcileResult } from '../controller/controller.js';
import { effectiveStatus } from '../domain/container.js';
import type { Fleet } from './fleet.js';
import { NO_CASCADE, type Cascade, type PackageCascade } from './package-cascade.js';
import { reportPackageDecision } from './package-decision.js';
import { isTooLarge, type DomainObserver, type Clock, type CommitOutcome, type StateStore, type StateTransition } from './ports.js';
import type { LagTracker } from './lag-tracker.js';
import type { NodeReadiness } from '../domain/node-liveness.js';
import { isDiagramEdge, nextModelState, summarizeCounts } from '../domain/rules.js';
import type { ContainerStatus } from '../domain/states.js';

export interface ModelReconcilerDeps {
  fleet: Fleet;
  store: StateStore;
  observer: DomainObserver;
  clock: Clock;
  /** Recorded in history: which replica decided. */
  source: string;
  lag?: LagTracker;
  /** Writes the packages the model's new state changes in the same transaction, when nothing else is about to. */
  cascade?: PackageCascade;
}

export class ModelReconciler implements Reconciler {
  constructor(private readonly d: ModelReconcilerDeps) {}

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const { fleet, store, observer } = this.d;
    const stored = fleet.storedModelState(name);

    if (!fleet.isModelListed(name)) {
      this.d.lag?.modelUnchanged(name);
      if (!stored) return;
      const res = await store.deleteState({ kind: 'model', name, expected: stored });
      if (!res.committed) return REQUEUE;
      observer.transition('model', name, stored.value.state ?? null, null, 'no package lists the model');
      return;
    }

    const now = this.d.clock.now();
    // Lease graces are measured on the monotonic clock; `now` dates what is written.
    const elapsed = this.d.clock.elapsed();
    // Each node's readiness once. A model's containers are usually on one node: a Map is made
    // only when a second node turns up (one per reconcile was a visible share of the garbage).
    let firstNode: string | undefined;
    let firstReadiness: NodeReadiness | undefined;
    let otherNodes: Map<string, NodeReadiness> | undefined;
    const containers = fleet.containersOfModel(name);
    const statuses = new Array<ContainerStatus>(containers.length);
    for (let i = 0; i < containers.length; i++) {
      const c = containers[i]!;
      let r: NodeReadiness | undefined;
      if (c.node === firstNode) r = firstReadiness!;
      else if (firstNode === undefined) {
        firstNode = c.node;
        r = firstReadiness = fleet.nodeReadiness(c.node, elapsed);
      } else {
        otherNodes ??= new Map();
        r = otherNodes.get(c.node);
        if (!r) otherNodes.set(c.node, (r = fleet.nodeReadiness(c.node, elapsed)));
      }
      statuses[i] = effectiveStatus(c.status, r.ready);
    }
    // Nothing is allocated for nodes that are Ready for good (the common case: no closure, no list).
    let recheckMs: number | undefined;
    let notReady: string[] | undefined;
    if (firstNode !== undefined) {
      recheckMs = recheckIn(firstReadiness!, recheckMs);
      if (!firstReadiness!.ready) (notReady ??= []).push(notReadyLabel(firstNode, firstReadiness!));
    }
    if (otherNodes !== undefined) {
      for (const [node, r] of otherNodes) {
        recheckMs = recheckIn(r, recheckMs);
        if (!r.ready) (notReady ??= []).push(notReadyLabel(node, r));
      }
    }
    const after: ReconcileResult | undefined = recheckMs === undefined ? undefined : { requeueAfterMs: Math.max(1, Math.ceil(recheckMs)) };
    const prev = stored?.value.state;
    const next = nextModelState(prev, statuses);
    if (prev === next) {
      this.d.lag?.modelUnchanged(name);
      return after;
    }

    const reason = `containers: ${summarizeCounts(statuses)}${notReady !== undefined ? `; NotReady nodes: ${nodeList(notReady)}` : ''}`;
    const cascade = this.d.cascade?.plan(name, next, now) ?? NO_CASCADE;
    const transition: StateTransition = {
      kind: 'model',
      name,
      to: next,
      expected: stored,
      history: {
        kind: 'model',
        name,
        from: prev ?? null,
        to: next,
        // The time it was decided at, as its cascaded packages' (found by an operator's audit: a
        // package's entry 13 ms before the model change that caused it).
        at: new Date(now).toISOString(),
        reason,
        source: this.d.source,
        drawn: isDiagramEdge('model', prev, next),
      },
    };
    const folded = cascade.transitions.length === 0 ? { res: await store.writeState(transition), folded: false } : await this.writeFolded(transition, cascade);
    if (!folded.res.committed) return REQUEUE;
    observer.transition('model', name, prev ?? null, next, reason);
    if (folded.folded) for (const d of cascade.decisions) reportPackageDecision(observer, d);
    return after;
  }

  /** The model's transition with its packages' in one write; the model's alone when that is more than the store takes at once. */
  private async writeFolded(transition: StateTransition, cascade: Cascade): Promise<{ res: CommitOutcome; folded: boolean }> {
    const folds = this.d.cascade!;
    folds.begin(cascade);
    try {
      let res: CommitOutcome;
      try {
        res = await this.d.store.writeStates([transition, ...cascade.transitions], cascade.unchanged);
      } catch (err) {
        // Over etcd's transaction limits (set lower than the default): the packages are left to
        // their own reconciles, which the settle below lets run.
        if (!isTooLarge(err)) throw err;
        return { res: await this.d.store.writeState(transition), folded: false };
      }
      // Before the fold settles: settling lets a deferred package reconcile run, which finds
      // nothing left to write and would close the lag without its sample.
      if (res.committed) for (const t of cascade.transitions) this.d.lag?.packageSettled(t.name, true);
      return { res, folded: true };
    } finally {
      folds.settle(cascade);
    }
  }
}

/**
 * The NotReady nodes a history entry names, at most MAX_NODES_IN_REASON: a model on 100 nodes
 * with long names made one entry of 20 KB, a write over a lowered --max-request-bytes that never
 * went through (black-box probing), and every entry is kept 50 times over.
 */
export const MAX_NODES_IN_REASON = 10;

function nodeList(names: string[]): string {
  names.sort();
  if (names.length <= MAX_NODES_IN_REASON) return names.join(', ');
  return `${names.slice(0, MAX_NODES_IN_REASON).join(', ')} and ${names.length - MAX_NODES_IN_REASON} more`;
}

/** The earlier of `ms` and when the node's readiness changes by time alone. */
function recheckIn(r: NodeReadiness, ms: number | undefined): number | undefined {
  return r.changesInMs === undefined ? ms : Math.min(ms ?? Infinity, r.changesInMs);
}

function notReadyLabel(node: string, r: NodeReadiness): string {
  return r.cause === 'lease' ? `${node} (lease absent)` : node;
}
