// Node agents keeping `/node/{node}/lease` attached to a 2 s etcd lease, renewed every 600 ms;
// a dead agent stops renewing, so the key goes when the lease expires.
import type { KeyLayout } from '../../domain/keys.js';
import type { FakeEtcdServer } from './fake-etcd.js';
import type { Scheduler } from './scheduler.js';

export class NodeAgents {
  private readonly agents = new Map<string, { lease: string | undefined; alive: boolean }>();

  constructor(
    private readonly server: FakeEtcdServer,
    private readonly sched: Scheduler,
    private readonly keys: KeyLayout,
  ) {}

  has(node: string): boolean {
    return this.agents.has(node);
  }

  isAlive(node: string): boolean {
    return this.agents.get(node)?.alive === true;
  }

  /** Agents for these nodes, keeping their leases from now on. */
  start(nodes: readonly string[]): void {
    for (const n of nodes) this.agents.set(n, { lease: undefined, alive: true });
    for (const n of nodes) {
      this.keepAlive(n);
      this.sched.every(600, () => this.keepAlive(n));
    }
  }

  die(node: string): void {
    const a = this.agents.get(node);
    if (a) a.alive = false;
  }

  revive(node: string): void {
    const a = this.agents.get(node);
    if (!a) return;
    a.alive = true;
    this.keepAlive(node);
  }

  private keepAlive(node: string): void {
    const a = this.agents.get(node)!;
    if (!a.alive || !this.server.available) return;
    try {
      if (a.lease && this.server.hasLease(a.lease)) this.server.keepAlive(a.lease);
      else {
        a.lease = this.server.grantLease(2000, `agent-${node}`);
        this.server.write('agent', [{ put: { key: this.keys.nodeLeaseKey(node), value: 'alive', lease: a.lease } }]);
      }
    } catch {
      a.lease = undefined;
    }
  }
}
