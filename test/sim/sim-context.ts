// What churn and faults act on during a schedule.
import type { KeyLayout } from '../../domain/keys.js';
import type { SimActionController } from './action-controller.js';
import type { FakeEtcdServer } from './fake-etcd.js';
import type { FleetPlan, Ops } from './fleet-plan.js';
import type { NodeAgents } from './node-agents.js';
import type { Random } from './random.js';
import type { SimReplica } from './replica.js';
import type { Rival } from './rival.js';
import type { Scheduler } from './scheduler.js';

export interface SimContext {
  sched: Scheduler;
  random: Random;
  server: FakeEtcdServer;
  keys: KeyLayout;
  plan: FleetPlan;
  ac: SimActionController;
  agents: NodeAgents;
  rival: Rival;
  replicas: ReadonlyArray<SimReplica | undefined>;
  replicaCount: number;
  /** Extra one-way delay per connection id (a slow replica). */
  slow: Map<string, number>;
  setEtcdSlow(ms: number): void;
  /** A write by a node agent or the API server (lost while etcd is down). */
  write(ops: Ops): void;
  startReplica(slot: number): void;
  leader(): SimReplica | undefined;
  fault(kind: string, detail?: string): void;
}
