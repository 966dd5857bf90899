// Node leases (contract §1, "Node leases"), the way Kubernetes' node lifecycle controller reads
// them: level-based, from what is in etcd now plus the controller's own clock. A node whose
// `/node/{node}/lease` key has been absent for the grace counts as NotReady, exactly as if its
// status key said so; an explicit NotReady status wins over a live lease. Pure: no etcd, no
// timers; the time comes from the caller's clock.

export interface NodeLivenessOptions {
  /** Off: readiness is the status key alone, lease keys are ignored. */
  enabled: boolean;
  /** How long a lease key may be absent before the node counts as NotReady (ms). */
  graceMs: number;
}

export const LIVENESS_OFF: NodeLivenessOptions = Object.freeze({ enabled: false, graceMs: 0 });

/** What is known about one node now. */
export interface NodeLevel {
  /** `/node/{node}/status`: false for NotReady (absent or invalid counts as Ready). */
  statusReady: boolean;
  /** Whether `/node/{node}/lease` exists. */
  leasePresent: boolean;
  /**
   * When the lease key was last seen to go, or the node was first seen without one (ms on the
   * clock); ignored while the lease is present.
   */
  leaseAbsentSince: number;
}

export type NotReadyCause = 'status' | 'lease';

export interface NodeReadiness {
  ready: boolean;
  /** Why it is not ready. */
  cause?: NotReadyCause;
  /**
   * Milliseconds until the answer changes by time alone (the grace runs out); undefined when
   * only a change in etcd can change it.
   */
  changesInMs?: number;
}

const READY: NodeReadiness = Object.freeze({ ready: true });
const NOT_READY_STATUS: NodeReadiness = Object.freeze({ ready: false, cause: 'status' });
const NOT_READY_LEASE: NodeReadiness = Object.freeze({ ready: false, cause: 'lease' });

/**
 * 1. status NotReady → NotReady (it wins over a live lease);
 * 2. liveness off, or the lease key present → Ready;
 * 3. lease absent for at least the grace → NotReady;
 * 4. otherwise Ready, changing in (grace − time absent).
 */
export function nodeReadiness(level: NodeLevel, now: number, options: NodeLivenessOptions): NodeReadiness {
  if (!level.statusReady) return NOT_READY_STATUS;
  if (!options.enabled || level.leasePresent) return READY;
  const absentFor = Math.max(0, now - level.leaseAbsentSince);
  if (absentFor >= options.graceMs) return NOT_READY_LEASE;
  return { ready: true, changesInMs: options.graceMs - absentFor };
}
