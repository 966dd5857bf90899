// The pure functions of the sharding simulation (test/bench/shard-sim.ts, docs/scaling.md).
import test from 'ava';
import {
  assignModulo,
  assignRendezvous,
  assignShardsThenReplicas,
  balance,
  balancedShardOwners,
  capacity,
  crossShard,
  fnv1a32,
  hash32,
  imbalance,
  MEASURED_COSTS,
  movedFraction,
  movement,
  names,
  rendezvousOwner,
  report,
  simFleet,
} from './bench/shard-sim.js';

const keys = names('pkg', 5_000);

test('FNV-1a matches the published test vectors; hash32 is stable', (t) => {
  t.is(fnv1a32(''), 0x811c9dc5);
  t.is(fnv1a32('a'), 0xe40c292c);
  t.is(fnv1a32('foobar'), 0xbf9cf968);
  t.is(hash32('pkg00042'), hash32('pkg00042'));
  t.not(hash32('pkg00042'), hash32('pkg00043'));
});

test('assignment is deterministic and does not depend on the order of the members', (t) => {
  const r = names('replica-', 7);
  const a = assignRendezvous(keys, r);
  t.deepEqual(assignRendezvous(keys, r), a);
  t.deepEqual(assignRendezvous(keys, [...r].reverse()), a);
  t.deepEqual(balancedShardOwners(256, r), balancedShardOwners(256, [...r].reverse()));
  t.deepEqual(assignShardsThenReplicas(keys, 256, r), assignShardsThenReplicas(keys, 256, [...r].reverse()));
});

test('imbalance: one bucket, or equal buckets, is 1.0', (t) => {
  t.is(imbalance([17]), 1);
  t.is(imbalance([3, 3, 3]), 1);
  t.is(imbalance([0, 0]), 1);
  t.is(imbalance([1, 3]), 1.5);
  const b = balance(simFleet(4_000, 0.1, 1), 1);
  t.deepEqual([b.packagesModulo, b.packagesRendezvous, b.modelsModulo, b.modelsRendezvous, b.eventsModulo], [1, 1, 1, 1, 1]);
});

test('rendezvous: when one of R leaves, only its keys move (≤ 1.5/R); when one joins, keys move only to it', (t) => {
  for (const R of [2, 3, 4, 8, 16]) {
    const members = names('replica-', R);
    const before = assignRendezvous(keys, members);
    const gone = members[R - 1]!;
    const after = assignRendezvous(keys, members.slice(0, -1));
    const moved = movedFraction(before, after);
    t.true(moved <= 1.5 / R, `R=${R}: ${moved} moved`);
    for (let i = 0; i < keys.length; i++) if (before[i] !== after[i]) t.is(before[i], gone);
    const joined = assignRendezvous(keys, names('replica-', R + 1));
    for (let i = 0; i < keys.length; i++) if (before[i] !== joined[i]) t.is(joined[i], `replica-${R}`);
    t.true(movedFraction(before, joined) <= 1.5 / (R + 1), `R=${R} join`);
  }
});

test('modulo over replicas moves most keys when R changes', (t) => {
  for (const R of [3, 4, 8, 16]) t.true(movedFraction(assignModulo(keys, R), assignModulo(keys, R - 1)) > 0.5, `R=${R}`);
});

test('capped shard assignment: every shard owned, no replica above ceil(S/R)', (t) => {
  for (const R of [1, 2, 3, 5, 8, 16]) {
    const owners = balancedShardOwners(256, names('replica-', R));
    t.is(owners.filter((o) => o !== undefined).length, 256);
    const held = new Map<string, number>();
    for (const o of owners) held.set(o, (held.get(o) ?? 0) + 1);
    t.true(Math.max(...held.values()) <= Math.ceil(256 / R), `R=${R}`);
  }
});

test('rendezvousOwner refuses an empty member set', (t) => {
  t.throws(() => rendezvousOwner('k', []));
});

test('the fleet has the benchmark shape and the asked share of shared models', (t) => {
  const f = simFleet(40_000, 0.1, 3);
  t.is(f.models.length, 20_000);
  t.is(f.packages.length, 10_000);
  t.true(f.packageModels.every((l) => l.length === 2 || l.length === 3));
  t.true(f.modelContainers.every((c) => c === 2));
  // ~10 % of packages list one extra model: ~5 % of models are shared.
  t.true(f.shared > 0.04 * 20_000 && f.shared < 0.06 * 20_000, String(f.shared));
  t.deepEqual(simFleet(40_000, 0.1, 3).packageModels, f.packageModels);
});

test('cross-shard: none with one shard; model-by-hash edges cross at about 1 − 1/S', (t) => {
  const f = simFleet(20_000, 0.1, 1);
  const one = crossShard(f, 1);
  t.is(one.modelsOnSeveralShards, 0);
  t.is(one.crossEdgesByModelHash, 0);
  const eight = crossShard(f, 8);
  t.true(Math.abs(eight.crossEdgesByModelHash - 7 / 8) < 0.02);
  t.true(eight.crossEdgesByFirstPackage <= eight.modelsOnSeveralShards + 1e-9);
});

test('movement table: rendezvous leaves move about 1/R, modulo most', (t) => {
  const f = simFleet(20_000, 0.1, 1);
  const m = movement(f, 4, 256);
  t.true(m.leave.rendezvous <= 1.5 / 4);
  t.true(m.leave.shards <= 1.5 / 4);
  t.true(m.leave.modulo > 0.5);
  t.true(m.eventsImbalance.shardsCapped < 1.1);
});

test('capacity: one replica is its own work; more replicas raise the replica bound; the system is the lower bound', (t) => {
  const one = capacity(MEASURED_COSTS, 1, 1);
  t.is(one.perReplicaUs, MEASURED_COSTS.workUs);
  const four = capacity(MEASURED_COSTS, 4, 1.02);
  t.true(four.replicaBound > one.replicaBound);
  t.true(four.perReplicaUs > MEASURED_COSTS.filterUs);
  t.is(four.system, Math.min(four.replicaBound, four.etcdBound));
  const withFanout = capacity({ ...MEASURED_COSTS, etcdFanoutUs: 10, etcdEventUs: 100 }, 4, 1);
  t.true(withFanout.etcdBound < four.etcdBound);
});

test('the report is deterministic', (t) => {
  const o = { containers: 4_000, shared: 0.1, seed: 1, nodes: 50, shardCounts: [1, 4], replicaCounts: [1, 3], fixedShards: 64, costs: MEASURED_COSTS };
  t.is(report(o), report(o));
});
