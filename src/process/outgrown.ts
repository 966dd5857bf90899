// Whether the process has outgrown one vehicle: the rule both of its vehicle-sized settings end on
// (the young generation's growth, src/process/heap.ts, and the optimizing compilers' hold,
// src/process/optimizers.ts), each with its own limits. Pure; the callers sample.

export type OutgrownReason = 'heap' | 'busy';

export interface OutgrownLimits {
  /** Heap used from which the process is no vehicle. */
  readonly heapBytes: number;
  /** Event-loop utilization (0–1) from which a check counts as busy... */
  readonly utilization: number;
  /** ...and how many busy checks in a row outgrow a vehicle. */
  readonly busyChecks: number;
}

/**
 * One check: `busyBefore` is how many checks in a row were busy before this one; `reason` is set
 * once the process has outgrown a vehicle (the heap first: it says the fleet is large, whatever the
 * loop does). A caller that does not count the loop yet (a start-up) passes a utilization of 0.
 */
export function outgrown(busyBefore: number, utilization: number, heapUsed: number, limits: OutgrownLimits): { busy: number; reason?: OutgrownReason } {
  const busy = utilization >= limits.utilization ? busyBefore + 1 : 0;
  if (heapUsed >= limits.heapBytes) return { busy, reason: 'heap' };
  return busy >= limits.busyChecks ? { busy, reason: 'busy' } : { busy };
}
