// Writers on statemanager's keys other than statemanager: the gRPC receiver putting containers
// on an agent's behalf, and a foreign program putting another value on a state key (guarded by
// the key's revision and with a history entry, through a state store without the leader fence).
import type { KeyLayout } from '../../domain/keys.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { FakeEtcdConnection, type Network } from './fake-client.js';
import type { FakeEtcdServer } from './fake-etcd.js';
import { containerValue, STATUSES, type FleetPlan } from './fleet-plan.js';
import type { Random } from './random.js';
import type { Scheduler } from './scheduler.js';

export class Rival {
  private readonly conn: FakeEtcdConnection;
  private readonly store: EtcdStateStore;

  constructor(
    private readonly server: FakeEtcdServer,
    private readonly sched: Scheduler,
    net: Network,
    private readonly keys: KeyLayout,
    historyLength: number,
  ) {
    this.conn = new FakeEtcdConnection('rival', server, sched, net);
    this.store = new EtcdStateStore({ client: this.conn.client(), keys, historyLength, requestTimeoutMs: 1000 });
  }

  writeContainer(random: Random, plan: FleetPlan): void {
    const c = random.pick(plan.containers);
    const put = { key: Buffer.from(this.keys.containerKey(c.node, c.id)), value: Buffer.from(containerValue(random, c, random.pick(STATUSES))) };
    void this.conn.client().kv.txn({ compare: [], success: [{ request_put: put }], failure: [] }).catch(() => undefined);
  }

  /** Another value than the stored one on a model or package state (never Error: see docs/reliability.md). */
  writeState(random: Random, plan: FleetPlan): void {
    const kind = random.chance(0.6) ? 'model' : 'package';
    const name = kind === 'model' ? random.pick(plan.models) : random.pick(plan.packages);
    const kv = this.server.data.get(this.keys.stateKey(kind, name));
    if (!kv) return;
    const choices = (kind === 'model' ? ['Running', 'Paused', 'Exited', 'Created'] : ['Running', 'Paused', 'Exited', 'Idle']).filter((v) => v !== kv.value);
    const to = random.pick(choices);
    const at = new Date(this.sched.now()).toISOString();
    void this.store
      .writeState({ kind, name, to, expected: { modRevision: kv.modRevision, version: kv.version }, history: { kind, name, from: kv.value, to, at, reason: 'rival', source: 'rival', drawn: false } })
      .catch(() => undefined);
  }
}
