// Since when each node's lease key has been absent: the clock-dependent bookkeeping node
// liveness needs. domain/node-liveness.ts decides from it (purely); the fleet feeds it the
// lease and node events it sees and answers readiness through it.
import { nodeReadiness, type NodeLivenessOptions, type NodeReadiness } from '../domain/node-liveness.js';
import type { Clock } from './ports.js';

/** What the caches say about a node now. */
export interface NodeLevelReader {
  /** The status key says Ready (absent or invalid: Ready). */
  statusReady(node: string): boolean;
  leasePresent(node: string): boolean;
}

export class NodeLeases {
  /** Nodes without a lease key: when it went, or when the node was first seen without one. */
  private readonly absentSince = new Map<string, number>();
  /** For a node never seen at all: absent since the bookkeeping began. */
  private readonly createdAt: number;

  constructor(
    readonly liveness: NodeLivenessOptions,
    private readonly clock: Clock,
    private readonly level: NodeLevelReader,
  ) {
    this.createdAt = clock.elapsed();
  }

  /** A node appeared (a container on it, or its status key): without a lease it counts as gone from now. */
  nodeSeen(node: string): void {
    if (!this.absentSince.has(node) && !this.level.leasePresent(node)) this.absentSince.set(node, this.clock.elapsed());
  }

  leaseGone(node: string): void {
    this.absentSince.set(node, this.clock.elapsed());
  }

  leaseBack(node: string): void {
    this.absentSince.delete(node);
  }

  /**
   * The node has no key left (no container, status or lease): drop what is held for it, so a
   * node that comes back is first seen again then, as a new node would be and as after a
   * restart, and the bookkeeping stays bounded by the nodes that have keys now.
   */
  forget(node: string): void {
    this.absentSince.delete(node);
  }

  /** How many nodes the bookkeeping holds. */
  get trackedNodes(): number {
    return this.absentSince.size;
  }

  /** Status, lease presence and time since the lease went, at `now` (a reading of the clock's `elapsed()`). */
  readiness(node: string, now: number): NodeReadiness {
    const statusReady = this.level.statusReady(node);
    // The lease is read only when it can matter (liveness on, status Ready).
    const leasePresent = !this.liveness.enabled || !statusReady || this.level.leasePresent(node);
    const leaseAbsentSince = leasePresent ? 0 : (this.absentSince.get(node) ?? this.createdAt);
    return nodeReadiness({ statusReady, leasePresent, leaseAbsentSince }, now, this.liveness);
  }
}
