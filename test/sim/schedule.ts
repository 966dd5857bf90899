// One schedule: a small fleet drawn from the seed, container churn mixed with faults for a
// while, then every fault healed and a quiet spell, then the invariants. Everything — the fleet,
// the churn, the faults, etcd's and the ActionController's delays, the code's own jitter — comes
// from the seed, so `--seed N` replays a schedule exactly.
import { KeyLayout } from '../../domain/keys.js';
import { SimActionController } from './action-controller.js';
import { cacheDiff } from './cache-check.js';
import { churn } from './churn.js';
import { FakeEtcdConnection, type Network } from './fake-client.js';
import { FakeEtcdServer } from './fake-etcd.js';
import { injectFault } from './faults.js';
import { drawFleet, packageOfScenario, writeFleet, type Ops } from './fleet-plan.js';
import { checkAll, type FaultMark } from './invariants.js';
import type { Mutation } from './mutations.js';
import { NodeAgents } from './node-agents.js';
import { Random } from './random.js';
import { SimReplica } from './replica.js';
import { Rival } from './rival.js';
import { Scheduler } from './scheduler.js';
import type { SimContext } from './sim-context.js';

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
  const write = (ops: Ops): void => {
    if (server.available) server.write('agent', ops);
  };

  const plan = drawFleet(random);
  const { settings } = plan;
  writeFleet(write, keys, plan, random);
  const agents = new NodeAgents(server, sched, keys);
  agents.start(plan.nodes.filter(() => random.chance(0.8)));

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

  const ctx: SimContext = {
    sched,
    random,
    server,
    keys,
    plan,
    ac,
    agents,
    rival: new Rival(server, sched, net, keys, settings.historyLength),
    replicas,
    replicaCount,
    slow,
    setEtcdSlow: (ms) => (etcdSlowMs = ms),
    write,
    startReplica,
    leader,
    fault: (kind, detail = '') => {
      faults.push({ at: sched.elapsed(), kind });
      trace(`${sched.elapsed()}ms fault ${kind} ${detail}`);
    },
  };
  for (let t = random.between(0, 300); t < activeMs; t += random.between(50, 700)) sched.at(t, () => churn(ctx));
  const faultCount = random.between(2, 8);
  for (let k = 0; k < faultCount; k++) sched.at(random.between(500, activeMs), () => injectFault(ctx));

  await sched.runUntil(activeMs);

  // --- heal, stay quiet, check ---
  server.comeBack();
  etcdSlowMs = 0;
  slow.clear();
  ac.mode = 'ok';
  for (let s = 0; s < replicaCount; s++) if (!replicas[s]?.alive) startReplica(s);
  await sched.runUntil(activeMs + quietMs);
  // Repeated Reconciles still write now and then: check between two writes, not during one.
  for (let k = 0; k < 20 && (server.log[server.log.length - 1]?.at ?? 0) > sched.elapsed() - 300; k++) await sched.runUntil(sched.elapsed() + 300);
  trace(`${sched.elapsed()}ms quiet; leader ${leader()?.conn.id ?? 'none'}; revision ${server.revision}`);

  if (!leader()) violations.push('no leader among the live replicas after the quiet spell');
  for (const r of live()) violations.push(...cacheDiff(r, server));
  violations.push(
    ...checkAll({
      server,
      replicaConns,
      historyLength: settings.historyLength,
      liveness: plan.liveness,
      calls: ac.calls,
      packageOfScenario: (s) => packageOfScenario(plan, s),
      faults,
      repeat: settings.repeat,
      endAt: sched.elapsed(),
    }),
  );
  if (o.trace) {
    // A replay shows every commit and every Reconcile call, to read next to the violations.
    for (const c of server.log) for (const ch of c.changes) trace(`commit ${c.at}ms rev ${c.revision} ${c.writer} ${ch.type} ${ch.key} ${ch.kv ? JSON.stringify(ch.kv.value.slice(0, 80)) : ''}`);
    for (const c of ac.calls) trace(`reconcile ${c.at}ms rev ${c.revision} ${c.replica} ${c.scenario} accepted=${c.accepted} answered=${c.answered}`);
  }
  for (const r of live()) r.crash();
  const faultKinds: Record<string, number> = {};
  for (const f of faults) faultKinds[f.kind] = (faultKinds[f.kind] ?? 0) + 1;
  return { seed, faults: faults.length, faultKinds, violations, steps: sched.steps, commits: server.log.length, calls: ac.calls.length };
}
