// Delivers durable reconcile requests to the ActionController: at least once (a request
// pending at a crash is sent after restart), retried with the queue's backoff while the
// ActionController is unreachable, and repeated with growing intervals while the package stays
// in a trigger state. A request whose package left that state before its first call is called
// once all the same (the package did enter it), then removed; one already delivered is removed.
import { backoffDelay } from '../controller/backoff.js';
import { REQUEUE, type Reconciler, type ReconcileResult } from '../controller/controller.js';
import type { Fleet } from './fleet.js';
import { type DomainObserver, POD_STATUS, type ActionControllerClient, type Clock, type ReconcileRequestRecord, type StateStore, type StoredRevision } from './ports.js';
import { parseState, type PackageState } from '../domain/states.js';


/** Characters of the ActionController's `desc` logged with a delivery. */
const DESC_LOGGED = 200;

export interface RepeatPolicy {
  /** Delay before the first repeat after a delivery; 0 disables repeats. */
  initialMs: number;
  capMs: number;
}

export interface ReconcileRequestReconcilerDeps {
  fleet: Fleet;
  store: StateStore;
  actionController: ActionControllerClient;
  observer: DomainObserver;
  clock: Clock;
  triggerStates: ReadonlySet<PackageState>;
  repeat: RepeatPolicy;
  /**
   * Try these packages' requests now: their last delivery failed and they wait out a backoff (up
   * to `reconcile.retryCap`), but the ActionController has just answered another one.
   */
  retryNow?: (pkgs: string[]) => void;
  /**
   * Whether the package's own state is about to be decided again (queued, or waiting for a
   * resync's model passes): its stored state may be stale, so no call is made on it until then.
   */
  packageDecisionPending?: (pkg: string) => boolean;
  /**
   * Whether this replica may act as the leader at this moment: it holds the lock and its lease was
   * renewed within the renew deadline, on the monotonic clock. Asked right before each call: the
   * store's confirm is fenced, but a replica held (a pause, a stall) or answered late after it
   * called the ActionController once the lease had gone to another replica (code review).
   */
  mayAct?: () => boolean;
}

/** No call: this replica may no longer act as the leader (the controller requeues it, not as a failure). */
class NotActingLeader extends Error {
  readonly leadershipLost = true;
  constructor() {
    super('not calling the ActionController: this replica may no longer hold the leadership');
    this.name = 'NotActingLeader';
  }
}

/** How soon to look again when the package-state watch is behind the request's, at first. */
export const CATCH_UP_MS = 20;
/**
 * Then twice as long each time, up to this: the watch is normally one event behind (the request
 * and the state are written together), but a request another program wrote while no package state
 * changed waits for etcd's progress notification, which may take minutes.
 */
export const CATCH_UP_CAP_MS = 2000;

export function repeatDelayMs(policy: RepeatPolicy, deliveries: number): number {
  if (policy.initialMs <= 0 || deliveries <= 0) return 0;
  return backoffDelay(deliveries, policy.initialMs, policy.capMs);
}

export class ReconcileRequestReconciler implements Reconciler {
  /**
   * Deliveries the ActionController took whose record could not be written yet (etcd down), by
   * package, with the request revision they were for: the retry writes the record (or, with no
   * record, removes the request of a package that had left the trigger state) without calling
   * again. Without this every retry during an outage called the ActionController once more
   * (found by the simulation, test/sim). Lost on a crash: then one duplicate, as documented.
   */
  private readonly unrecorded = new Map<string, { modRevision: number; record: ReconcileRequestRecord | undefined }>();
  /** Packages whose request waits for the package-state watch, with the delay of the last look. */
  private readonly catchingUp = new Map<string, number>();
  /**
   * Packages whose last delivery failed: when the ActionController answers again they are tried
   * at once instead of after their backoff (2,000 requests after a 150 s outage took 30 s to
   * deliver at a 30 s retry cap with jitter; the first call that succeeds now sends the rest).
   */
  private readonly failedDelivery = new Set<string>();
  /** Packages whose call waits for their own decision, with the delay of the last look. */
  private readonly awaitingDecision = new Map<string, number>();

  constructor(private readonly d: ReconcileRequestReconcilerDeps) {}

  async reconcile(pkg: string): Promise<ReconcileResult | void> {
    const { fleet, store, observer, triggerStates, repeat } = this.d;
    const entry = fleet.reconcileRequest(pkg);
    const memo = this.unrecorded.get(pkg);
    if (memo && memo.modRevision !== entry?.modRevision) this.unrecorded.delete(pkg);
    if (!entry) {
      this.catchingUp.delete(pkg);
      this.failedDelivery.delete(pkg);
      this.awaitingDecision.delete(pkg);
      return;
    }
    const stateEntry = fleet.storedPackageState(pkg);
    // A request is created in the same transaction as the state that triggered it, but the two
    // arrive through different watches: decide only on a package state at least that new (or,
    // for one written apart from its state, the state it was guarded on: nothing may come after
    // it in that watch for a long time).
    const against = entry.value.record?.packageStateRevision;
    if (!fleet.packageStateSeenSince(pkg, entry.createRevision) && (against === undefined || against !== stateEntry?.modRevision)) {
      const last = this.catchingUp.get(pkg);
      const delay = last === undefined ? CATCH_UP_MS : Math.min(last * 2, CATCH_UP_CAP_MS);
      this.catchingUp.set(pkg, delay);
      return { requeueAfterMs: delay };
    }
    this.catchingUp.delete(pkg);
    const state = stateEntry?.value.state;
    if (state === undefined || !triggerStates.has(state)) {
      // A request rewritten in place keeps its create revision, so the check above can pass on a
      // package-state cache one write behind: ask the store before dropping it (found by the
      // simulation: a request re-put with Error was deleted on the stale state it replaced).
      const confirmed = await store.confirmReconcileRequest(pkg, entry);
      const stored = parseState('package', confirmed?.packageState);
      if (!confirmed || (stored !== undefined && triggerStates.has(stored))) return REQUEUE;
      // The package entered the trigger state and left it before its call was made (a short
      // episode, a busy or starved leader, a takeover): the entry is still called, once, and the
      // request removed after. A package that is gone is not called.
      const owed = (entry.value.record?.deliveries ?? 0) === 0 && stored !== undefined && memo?.modRevision !== entry.modRevision;
      if (owed) {
        const record = entry.value.record ?? { package: pkg, state: stored, requestedAt: new Date(this.d.clock.now()).toISOString(), deliveries: 0 };
        if (!(await this.call(pkg, record, `package left ${entry.value.record ? record.state : 'its trigger state'} before the call, now ${stored}`))) return { requeue: true };
        this.unrecorded.set(pkg, { modRevision: entry.modRevision, record: undefined });
      }
      const res = await store.deleteReconcileRequest(pkg, entry);
      this.unrecorded.delete(pkg);
      if (!res.committed) return REQUEUE;
      this.awaitingDecision.delete(pkg);
      this.failedDelivery.delete(pkg);
      observer.reconcileRequest('cleared', pkg, state ? `package is ${state}` : 'package has no state');
      return;
    }

    const pending = this.unrecorded.get(pkg);
    if (pending?.record) return this.record(pkg, pending.record, entry);

    const now = this.d.clock.now();
    // An unreadable record is treated as a fresh request: the package is in a trigger state.
    const record = entry.value.record ?? { package: pkg, state, requestedAt: new Date(now).toISOString(), deliveries: 0 };
    if (record.deliveries > 0) {
      const delay = repeatDelayMs(repeat, record.deliveries);
      if (delay === 0) return;
      const last = Date.parse(record.lastDeliveredAt ?? '') || 0;
      const due = last + delay;
      // Further off than the delay itself only when the wall clock stepped back since the last
      // delivery (or the replica that made it runs ahead): repeat now rather than wait the step.
      if (now < due && due - now <= delay) return { requeueAfterMs: due - now };
    }

    // After a restart or a takeover the stored state is the last leader's, which may be stale
    // (its containers changed meanwhile) until the package is decided again: a repeat went out to
    // packages that had left Error while statemanager was down (black-box probe: 8 of 1,000). Wait
    // for that decision; one that takes the package out of Error removes the request.
    if (this.d.packageDecisionPending?.(pkg)) {
      const last = this.awaitingDecision.get(pkg);
      const delay = last === undefined ? CATCH_UP_MS : Math.min(last * 2, CATCH_UP_CAP_MS);
      this.awaitingDecision.set(pkg, delay);
      return { requeueAfterMs: delay };
    }
    this.awaitingDecision.delete(pkg);

    // The caches may lag (a new leader, watches catching up after an outage): confirm in the store
    // that the request is still there and its package still in a trigger state, so a request the
    // package no longer needs is never sent (found by the simulation, test/sim). The guard also
    // keeps a replica that lost the lock from calling.
    const confirmed = await store.confirmReconcileRequest(pkg, entry);
    const storedState = parseState('package', confirmed?.packageState);
    if (!confirmed || storedState === undefined || !triggerStates.has(storedState)) return REQUEUE;

    const scenarioName = await this.call(pkg, record);
    if (scenarioName === undefined) return { requeue: true };
    const delivered = {
      ...record,
      state,
      deliveries: record.deliveries + 1,
      lastDeliveredAt: new Date(this.d.clock.now()).toISOString(),
      scenario: scenarioName,
    };
    return this.record(pkg, delivered, entry);
  }

  /** Calls the ActionController for the package; the scenario it named, or undefined when the call failed (reported, retried). */
  private async call(pkg: string, record: ReconcileRequestRecord, note?: string): Promise<string | undefined> {
    const { fleet, observer } = this.d;
    const scenarioName = fleet.scenarioFor(pkg);
    let answer: { status: number; desc: string };
    // Synchronously before the call: nothing may run between this look and the call leaving.
    if (this.d.mayAct && !this.d.mayAct()) throw new NotActingLeader();
    try {
      answer = await this.d.actionController.reconcile({
        scenarioName,
        current: POD_STATUS.FAILED,
        desired: POD_STATUS.RUNNING,
      });
    } catch (err) {
      // Reported (log line, metric) here; a quiet rate-limited retry rather than an error.
      observer.reconcileRequest('failed', pkg, `${scenarioName}: ${(err as Error).message}`);
      this.failedDelivery.add(pkg);
      return undefined;
    }
    // The answer's status is logged, not interpreted: the contract gives it no meaning.
    observer.reconcileRequest('delivered', pkg, `scenario ${scenarioName}, delivery ${record.deliveries + 1}, ActionController status ${answer.status}${answer.desc ? ` ${JSON.stringify(answer.desc.slice(0, DESC_LOGGED))}` : ''}${note ? `; ${note}` : ''}`);
    this.failedDelivery.delete(pkg);
    if (this.failedDelivery.size > 0) {
      const waiting = [...this.failedDelivery];
      this.failedDelivery.clear();
      this.d.retryNow?.(waiting);
    }
    return scenarioName;
  }

  /** Write a delivery down; if etcd cannot be reached, remember it so the retry does not call again. */
  private async record(pkg: string, delivered: ReconcileRequestRecord, entry: StoredRevision): Promise<ReconcileResult | void> {
    this.unrecorded.set(pkg, { modRevision: entry.modRevision, record: delivered });
    const res = await this.d.store.updateReconcileRequest(delivered, entry);
    this.unrecorded.delete(pkg);
    // Lost race (the package left Error meanwhile): the next pass decides; a duplicate call is
    // the price of at-least-once.
    if (!res.committed) return REQUEUE;
    const next = repeatDelayMs(this.d.repeat, delivered.deliveries);
    return next > 0 ? { requeueAfterMs: next } : undefined;
  }
}
