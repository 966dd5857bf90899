// One schedule: a small fleet drawn from the seed, container churn mixed with faults for a
// while, then every fault healed and a quiet spell, then the invariants. Everything — the fleet,
// the churn, the faults, etcd's and the ActionController's delays, the code's own jitter — comes
// from the seed, so `--seed N` replays a schedule exactly.
import { KeyLayout } from '../../reconcilers/keys.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { SimActionController, type AcMode } from './action-controller.js';
import { FakeEtcdConnection, type Network } from './fake-client.js';
import { FakeEtcdServer } from './fake-etcd.js';
import { checkAll, type FaultMark } from './invariants.js';
import type { Mutation } from './mutations.js';
import { Random } from './random.js';
import { SimReplica, type ReplicaSettings } from './replica.js';
import { Scheduler } from './scheduler.js';

export interface ScheduleOptions {
  mutation?: Mutation;
  /** Virtual ms of churn and faults (default 15 s). */
  activeMs?: number;
  /** Virtual ms of calm before the checks (default 25 s). */
  quietMs?: number;
  /** Print what happens. */
  trace?: (line: string) => void;
}

export interface ScheduleResult {
  seed: number;
  faults: number;
  /** Faults by kind. */
  faultKinds: Record<string, number>;
  violations: string[];
  steps: number;
  commits: number;
  calls: number;
}

const STATUSES = ['created', 'running', 'running', 'Running', 'paused', 'exited', 'dead', 'Restarting', 'bogus'];

export async function runSchedule(seed: number, o: ScheduleOptions = {}): Promise<ScheduleResult> {
  const random = new Random(seed);
  const sched = new Scheduler(random);
  sched.install();
  try {
    return await simulate(seed, random, sched, o);
  } finally {
    sched.uninstall();
  }
}

async function simulate(seed: number, random: Random, sched: Scheduler, o: ScheduleOptions): Promise<ScheduleResult> {
  const trace = o.trace ?? (() => undefined);
  const activeMs = o.activeMs ?? 15_000;
  const quietMs = o.quietMs ?? 25_000;
  const keys = new KeyLayout('');
  const server = new FakeEtcdServer(sched);
  // Per-connection extra delay (a slow replica) and etcd-wide extra delay (a slow etcd).
  const slow = new Map<string, number>();
  let etcdSlowMs = 0;
  const net: Network = { delay: (conn) => random.between(0, 3) + (slow.get(conn) ?? 0) + (etcdSlowMs > 0 ? random.int(etcdSlowMs) : 0) };
  const ac = new SimActionController(1500);
  const faults: FaultMark[] = [];
  const violations: string[] = [];
  const fault = (kind: string, detail = ''): void => {
    faults.push({ at: sched.elapsed(), kind });
    trace(`${sched.elapsed()}ms fault ${kind} ${detail}`);
  };

  // --- the fleet ---
  const liveness = random.chance(0.5);
  const settings: ReplicaSettings = {
    leaseSeconds: 3,
    requestTimeoutMs: 1000,
    historyLength: random.pick([0, 3, 50]),
    liveness: { enabled: liveness, graceMs: 1500 },
    repeat: random.chance(0.3) ? { initialMs: 3000, capMs: 12_000 } : { initialMs: 0, capMs: 0 },
    pageSize: random.between(2, 50),
  };
  const nodes = ['n1', 'n2', 'n3'].slice(0, random.between(1, 3));
  const models = ['m1', 'm2', 'm3', 'm4', 'm5'].slice(0, random.between(2, 5));
  const packages = ['p1', 'p2', 'p3'].slice(0, random.between(1, 3));
  const scenarioOf = new Map<string, string>();
  for (const p of packages) if (random.chance(0.6)) scenarioOf.set(p, `s-${p}`);
  const containers: Array<{ node: string; id: string; model: string }> = [];
  for (const m of models) for (let k = random.between(1, 2); k > 0; k--) containers.push({ node: random.pick(nodes), id: `${m}-c${k}`, model: m });
  const pkgDef = (ms: string[]): string => (ms.length === 0 ? 'spec:\n  models: []\n' : `spec:\n  models:\n${ms.map((m) => `    - name: ${m}\n`).join('')}`);
  const someModels = (): string[] => models.filter(() => random.chance(0.5)).slice(0, 3);
  const containerValue = (c: { id: string; model: string }, status: string): string =>
    random.chance(0.03)
      ? '{not json'
      : // Named by annotation or config; `names` alone (contract §1, issue 20) is not read by statemanager yet.
        JSON.stringify({ id: c.id, names: [`/model-${c.model}`], image: 'img', state: { Status: status }, ...(random.chance(0.5) ? { config: { model: c.model } } : { annotation: { 'io.pullpiri.annotations.model': c.model } }) });
  const agent = (ops: Parameters<FakeEtcdServer['write']>[1]): void => {
    if (server.available) server.write('agent', ops);
  };
  for (const p of packages) agent([{ put: { key: keys.packageDefKey(p), value: pkgDef(someModels().length > 0 ? someModels() : [models[0]!]) } }]);
  for (const [p, s] of scenarioOf) agent([{ put: { key: keys.scenarioDefKey(s), value: `spec:\n  target: ${p}\n` } }]);
  for (const c of containers) agent([{ put: { key: keys.containerKey(c.node, c.id), value: containerValue(c, random.pick(STATUSES)) } }]);

  // --- node agents keeping node leases (only read with liveness on, kept either way) ---
  const agents = new Map<string, { lease: string | undefined; alive: boolean }>();
  const agentKeepAlive = (node: string): void => {
    const a = agents.get(node)!;
    if (!a.alive || !server.available) return;
    try {
      if (a.lease && server.hasLease(a.lease)) server.keepAlive(a.lease);
      else {
        a.lease = server.grantLease(2000, `agent-${node}`);
        server.write('agent', [{ put: { key: keys.nodeLeaseKey(node), value: 'alive', lease: a.lease } }]);
      }
    } catch {
      a.lease = undefined;
    }
  };
  for (const n of nodes) {
    if (random.chance(0.8)) agents.set(n, { lease: undefined, alive: true });
  }
  for (const n of agents.keys()) {
    agentKeepAlive(n);
    sched.every(600, () => agentKeepAlive(n));
  }

  // --- replicas ---
  const replicaConns = new Set<string>();
  const replicaCount = random.chance(0.8) ? 2 : 1;
  const replicas: Array<SimReplica | undefined> = [];
  const incarnations = new Map<number, number>();
  const startReplica = (slot: number): void => {
    const inc = (incarnations.get(slot) ?? 0) + 1;
    incarnations.set(slot, inc);
    const conn = new FakeEtcdConnection(`r${slot}#${inc}`, server, sched, net);
    replicaConns.add(conn.id);
    const r = new SimReplica({ identity: `r${slot}`, conn, keys, ac, settings, mutation: o.mutation, violation: (m) => violations.push(m) });
    replicas[slot] = r;
    r.start();
    trace(`${sched.elapsed()}ms start ${conn.id}`);
  };
  for (let s = 0; s < replicaCount; s++) startReplica(s);
  const leader = (): SimReplica | undefined => replicas.find((r) => r?.isLeader());
  const live = (): SimReplica[] => replicas.filter((r): r is SimReplica => r !== undefined && r.alive);

  // --- a rival writer: the gRPC receiver on container keys, and a foreign writer of state keys ---
  const rivalConn = new FakeEtcdConnection('rival', server, sched, net);
  const rivalStore = new EtcdStateStore({ client: rivalConn.client(), keys, historyLength: settings.historyLength, requestTimeoutMs: 1000 });
  const rivalStateWrite = (): void => {
    const kind = random.chance(0.6) ? 'model' : 'package';
    const name = kind === 'model' ? random.pick(models) : random.pick(packages);
    const kv = server.data.get(keys.stateKey(kind, name));
    if (!kv) return;
    const choices = (kind === 'model' ? ['Running', 'Paused', 'Exited', 'Created'] : ['Running', 'Paused', 'Exited', 'Idle']).filter((v) => v !== kv.value);
    const to = random.pick(choices);
    const at = new Date(sched.now()).toISOString();
    void rivalStore
      .writeState({ kind, name, to, expected: { modRevision: kv.modRevision, version: kv.version }, history: { kind, name, from: kv.value, to, at, reason: 'rival', source: 'rival', drawn: false } })
      .catch(() => undefined);
  };

  // --- churn and faults during the active spell ---
  const churn = (): void => {
    const r = random.next();
    if (r < 0.55) {
      const c = random.pick(containers);
      agent([{ put: { key: keys.containerKey(c.node, c.id), value: containerValue(c, random.pick(STATUSES)) } }]);
    } else if (r < 0.65) {
      const c = random.pick(containers);
      agent([{ del: { key: keys.containerKey(c.node, c.id) } }]);
    } else if (r < 0.72) {
      const n = random.pick(nodes);
      if (random.chance(0.4)) agent([{ del: { key: keys.nodeStatusKey(n) } }]);
      else agent([{ put: { key: keys.nodeStatusKey(n), value: random.pick(['Ready', 'NotReady', 'NODE_DISCONNECTED', 'NODE_ALIVE']) } }]);
    } else if (r < 0.8) {
      const p = random.pick(packages);
      if (random.chance(0.2)) agent([{ del: { key: keys.packageDefKey(p) } }]);
      else agent([{ put: { key: keys.packageDefKey(p), value: pkgDef(someModels()) } }]);
    } else if (r < 0.9) {
      // Several containers at once, as one agent report.
      const cs = containers.filter(() => random.chance(0.5));
      if (cs.length > 0) agent(cs.map((c) => ({ put: { key: keys.containerKey(c.node, c.id), value: containerValue(c, random.pick(STATUSES)) } })));
    } else {
      // The gRPC receiver writing a container on an agent's behalf, through its own connection.
      const c = random.pick(containers);
      void rivalConn
        .client()
        .kv.txn({ compare: [], success: [{ request_put: { key: Buffer.from(keys.containerKey(c.node, c.id)), value: Buffer.from(containerValue(c, random.pick(STATUSES))) } }], failure: [] })
        .catch(() => undefined);
    }
  };

  const injectFault = (): void => {
    const r = random.int(13);
    const slot = random.int(replicaCount);
    const target = replicas[slot];
    switch (r) {
      case 0:
        if (target?.alive) fault('break-watches', `${target.conn.id} ${target.watch.breakSome(0.6)} streams`);
        break;
      case 1:
        if (target?.alive) {
          fault('hold-watches', target.conn.id);
          target.watch.hold(random.between(200, 3000));
        }
        break;
      case 2: {
        const back = random.between(0, 5);
        fault('compact', `to ${server.revision - back}`);
        server.compact(server.revision - back);
        break;
      }
      case 3:
        if (target?.alive) {
          fault('crash', target.conn.id);
          target.crash();
          // Unless the heal at the end of the active spell restarted it first: one process per identity.
          sched.at(random.between(0, 3000), () => !replicas[slot]?.alive && startReplica(slot));
        }
        break;
      case 4:
        if (server.available) {
          const ms = random.between(300, 6000);
          fault('etcd-down', `${ms}ms`);
          server.goDown();
          sched.at(ms, () => server.comeBack());
        }
        break;
      case 5: {
        // Leadership lost while the old leader still has writes in flight: its network turns slow,
        // then its lease goes (as if it expired), and the other replica may take over.
        const l = leader();
        if (!l) break;
        const lease = server.data.get(keys.leader)?.lease;
        fault('depose', l.conn.id);
        slow.set(l.conn.id, random.between(200, 1500));
        sched.at(random.between(0, 300), () => {
          if (lease && server.hasLease(lease)) server.revokeLease(lease, 'lease-expiry');
        });
        sched.at(random.between(1000, 4000), () => slow.delete(l.conn.id));
        break;
      }
      case 6:
        if (target?.alive) {
          fault('slow-replica', target.conn.id);
          slow.set(target.conn.id, random.between(50, 800));
          sched.at(random.between(500, 3000), () => slow.delete(target.conn.id));
        }
        break;
      case 7:
        fault('rival-state');
        rivalStateWrite();
        break;
      case 8: {
        const mode = random.pick<AcMode>(['failing', 'slow', 'timeout']);
        fault(`ac-${mode === 'failing' ? 'failing' : mode}`);
        ac.mode = mode;
        sched.at(random.between(500, 5000), () => (ac.mode = 'ok'));
        break;
      }
      case 9: {
        const n = random.pick(nodes);
        const a = agents.get(n);
        if (a?.alive) {
          fault('node-agent-dies', n);
          a.alive = false;
          sched.at(random.between(1000, 6000), () => {
            a.alive = true;
            agentKeepAlive(n);
          });
        } else if (!a) {
          // A node that never had an agent gets one.
          agents.set(n, { lease: undefined, alive: true });
          agentKeepAlive(n);
          sched.every(600, () => agentKeepAlive(n));
        }
        break;
      }
      case 10: {
        fault('etcd-slow');
        etcdSlowMs = random.between(100, 1500);
        sched.at(random.between(500, 3000), () => (etcdSlowMs = 0));
        break;
      }
      case 11:
        if (target?.alive) fault('cancel-watches', `${target.conn.id} ${target.watch.cancelSome(0.5)} watches`);
        break;
      default:
        if (target?.alive) fault('break-watches', `${target.conn.id} ${target.watch.breakSome(1)} streams`);
    }
  };

  const plan = (at: number, fn: () => void): void => void sched.at(at, fn);
  for (let t = random.between(0, 300); t < activeMs; t += random.between(50, 700)) plan(t, churn);
  const faultCount = random.between(2, 8);
  for (let k = 0; k < faultCount; k++) plan(random.between(500, activeMs), injectFault);

  await sched.runUntil(activeMs);

  // --- heal, stay quiet, check ---
  server.comeBack();
  etcdSlowMs = 0;
  slow.clear();
  ac.mode = 'ok';
  for (let s = 0; s < replicaCount; s++) if (!replicas[s]?.alive) startReplica(s);
  await sched.runUntil(activeMs + quietMs);
  trace(`${sched.elapsed()}ms quiet; leader ${leader()?.conn.id ?? 'none'}; revision ${server.revision}`);

  if (!leader()) violations.push('no leader among the live replicas after the quiet spell');
  for (const r of live()) violations.push(...cacheDiff(r, server));
  violations.push(
    ...checkAll({
      server,
      replicaConns,
      historyLength: settings.historyLength,
      liveness,
      calls: ac.calls,
      packageOfScenario: (s) => [...scenarioOf].find(([, sc]) => sc === s)?.[0] ?? s,
      faults,
      repeat: settings.repeat,
      endAt: sched.elapsed(),
    }),
  );
  if (o.trace) {
    // A replay shows every commit and every Reconcile call, to read next to the violations.
    for (const c of server.log) for (const ch of c.changes) trace(`commit ${c.at}ms rev ${c.revision} ${c.writer} ${ch.type} ${ch.key} ${ch.kv?.value.slice(0, 80) ?? ''}`);
    for (const c of ac.calls) trace(`reconcile ${c.at}ms rev ${c.revision} ${c.replica} ${c.scenario} accepted=${c.accepted} answered=${c.answered}`);
  }
  for (const r of live()) r.crash();
  const faultKinds: Record<string, number> = {};
  for (const f of faults) faultKinds[f.kind] = (faultKinds[f.kind] ?? 0) + 1;
  return { seed, faults: faults.length, faultKinds, violations, steps: sched.steps, commits: server.log.length, calls: ac.calls.length };
}

/** A live replica's caches hold what etcd holds (at the same revisions), once quiet. */
function cacheDiff(r: SimReplica, server: FakeEtcdServer): string[] {
  const out: string[] = [];
  for (const inf of r.fleet.caches.informers) {
    for (const key of inf.cache.keys()) {
      const kv = server.data.get(key);
      const entry = inf.cache.get(key)!;
      if (!kv) out.push(`${r.conn.id}: informer ${inf.name} still holds ${key}, gone from etcd`);
      else if (kv.modRevision !== entry.modRevision) out.push(`${r.conn.id}: informer ${inf.name} holds ${key} at revision ${entry.modRevision}, etcd at ${kv.modRevision}`);
    }
    for (const kv of server.data.values()) {
      if (kv.key.startsWith(inf.prefix) && !inf.cache.get(kv.key) && !kv.value.startsWith('{not json') && !kv.key.startsWith('/statemanager/history/') && kv.key !== '/statemanager/leader') {
        out.push(`${r.conn.id}: informer ${inf.name} misses ${kv.key}`);
      }
    }
  }
  return out;
}
