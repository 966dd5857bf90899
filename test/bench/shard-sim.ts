// A deterministic simulation of sharding statemanager's work across replicas (issue 13,
// docs/scaling.md). It builds a fleet shaped like the benchmark's (test/bench/lib/fleet.ts:
// two containers per model, two models per package, 50 nodes) plus a fraction of packages that
// also list one model of another package, and prints, for several shard and replica counts:
//   - how evenly hash-mod-S and rendezvous hashing spread packages, models and container events;
//   - how many models are listed by packages of more than one shard, and how many model → package
//     edges cross shards (each costs one watch hop instead of an in-process enqueue);
//   - how many packages move when one replica of R leaves or joins (modulo, rendezvous, and fixed
//     shards handed out by rendezvous);
//   - the per-replica load and the projected events/s of the whole system, from measured per-event
//     CPU costs, with etcd's write rates as the ceiling.
//
// Run: npx tsx test/bench/shard-sim.ts [--containers 100000] [--shared 0.1] [--seed 1] ...
// (--help lists the inputs). Nothing here talks to etcd; the pure functions are tested in
// test/shard-sim.test.ts.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { rng } from './lib/common.js';
import { Fleet } from './lib/fleet.js';

// ---------------------------------------------------------------------------------------------
// Hashing and assignment (pure).

/** FNV-1a, 32 bits, over the UTF-16 code units of `s`. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's finaliser: spreads FNV's weak low bits over the whole word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A stable 32-bit hash of a string: the same on every replica, every run, every platform. */
export function hash32(s: string): number {
  return fmix32(fnv1a32(s));
}

/** Hash-mod-N: the shard (0 … n−1) of a key. Stable only while n does not change. */
export function moduloOwner(key: string, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`shard count must be a positive integer, got ${n}`);
  return hash32(key) % n;
}

/**
 * Rendezvous (highest random weight) hashing: the member with the highest hash of (key, member).
 * When a member leaves, only its keys move (to each key's second choice); when one joins, it takes
 * about 1/(R+1) of the keys, each from exactly one other member. Ties (vanishingly rare) go to the
 * smaller name, so the answer does not depend on the order of `members`.
 */
export function rendezvousOwner(key: string, members: readonly string[]): string {
  if (members.length === 0) throw new Error('rendezvous over no members');
  let best = '';
  let bestScore = -1;
  for (const m of members) {
    const score = hash32(`${key}\u0000${m}`);
    if (score > bestScore || (score === bestScore && m < best)) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

/** `count` member names: `${prefix}0`, `${prefix}1`, … */
export function names(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

/** Max over mean of the counts (1.0 = perfectly even; a single bucket is 1.0 by definition). */
export function imbalance(counts: ArrayLike<number>): number {
  const n = counts.length;
  if (n === 0) return 1;
  let sum = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    sum += counts[i]!;
    if (counts[i]! > max) max = counts[i]!;
  }
  return sum === 0 ? 1 : max / (sum / n);
}

/** How many entries of `weights` fall on each bucket of `owner`. */
export function bucketLoads(owners: ArrayLike<number>, buckets: number, weights?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(buckets);
  for (let i = 0; i < owners.length; i++) out[owners[i]!]! += weights ? weights[i]! : 1;
  return out;
}

/** Share (0 … 1) of positions where the two assignments differ. */
export function movedFraction<T>(before: readonly T[], after: readonly T[]): number {
  if (before.length !== after.length) throw new Error('assignments of different lengths');
  if (before.length === 0) return 0;
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++;
  return moved / before.length;
}

/** Owner of every key under hash-mod-N (as numbers) — the "modulo over replicas" scheme. */
export function assignModulo(keys: readonly string[], n: number): number[] {
  return keys.map((k) => moduloOwner(k, n));
}

/** Owner of every key under rendezvous over `members`. */
export function assignRendezvous(keys: readonly string[], members: readonly string[]): string[] {
  return keys.map((k) => rendezvousOwner(k, members));
}

/**
 * Shards → replicas by rendezvous with a cap: every (shard, replica) pair is scored with hash32,
 * pairs are taken best first, and a replica takes a shard while it holds fewer than
 * ceil(shards / replicas). Every replica computes the same table from the same member set.
 */
export function balancedShardOwners(shards: number, replicas: readonly string[]): string[] {
  if (replicas.length === 0) throw new Error('no replicas');
  const cap = Math.ceil(shards / replicas.length);
  const ids = names('shard-', shards);
  const pairs: { s: number; r: string; score: number }[] = [];
  ids.forEach((id, s) => {
    for (const r of replicas) pairs.push({ s, r, score: hash32(`${id}\u0000${r}`) });
  });
  pairs.sort((a, b) => b.score - a.score || a.s - b.s || (a.r < b.r ? -1 : a.r > b.r ? 1 : 0));
  const owner: string[] = new Array<string>(shards);
  const held = new Map<string, number>(replicas.map((r) => [r, 0]));
  let left = shards;
  for (const p of pairs) {
    if (left === 0) break;
    if (owner[p.s] !== undefined || held.get(p.r)! >= cap) continue;
    owner[p.s] = p.r;
    held.set(p.r, held.get(p.r)! + 1);
    left--;
  }
  return owner;
}

/** Shards → replicas by plain rendezvous (no cap). */
export function rendezvousShardOwners(shards: number, replicas: readonly string[]): string[] {
  return names('shard-', shards).map((s) => rendezvousOwner(s, replicas));
}

/**
 * Two-level scheme (the design in docs/scaling.md): keys → S fixed shards by hash-mod-S (never
 * changes), shards → live replicas (plain or capped rendezvous). A key's owner is its shard's.
 */
export function assignShardsThenReplicas(keys: readonly string[], shards: number, replicas: readonly string[], capped = true): string[] {
  const shardOwner = capped ? balancedShardOwners(shards, replicas) : rendezvousShardOwners(shards, replicas);
  return keys.map((k) => shardOwner[moduloOwner(k, shards)]!);
}

// ---------------------------------------------------------------------------------------------
// The fleet.

export interface SimFleet {
  containers: number;
  models: string[];
  packages: string[];
  /** Model indexes listed by each package. */
  packageModels: number[][];
  /** Package indexes listing each model. */
  modelPackages: number[][];
  /** Containers per model (container events are spread evenly over containers). */
  modelContainers: Int32Array;
  /** Models listed by two packages. */
  shared: number;
}

/**
 * The benchmark's layout for `containers` containers (models = C/2, packages = C/4, `nodes`
 * nodes), plus: each package, with probability `sharedFraction`, also lists the first model of a
 * random other package (seeded), so that model is shared by two packages.
 */
export function simFleet(containers: number, sharedFraction: number, seed: number, nodes = 50): SimFleet {
  const models = Math.max(1, Math.floor(containers / 2));
  const packages = Math.max(1, Math.floor(containers / 4));
  const f = new Fleet({ nodes, containers, models, packages, notReadyNodes: Math.min(1, nodes - 1), seed });
  const modelNames = Array.from({ length: models }, (_, m) => f.modelName(m));
  const packageNames = Array.from({ length: packages }, (_, p) => f.packageName(p));
  const packageModels: number[][] = [];
  const modelPackages: number[][] = Array.from({ length: models }, () => []);
  for (let p = 0; p < packages; p++) {
    const list: number[] = [];
    for (let m = f.packageStart[p]!; m < f.packageStart[p + 1]!; m++) list.push(m);
    packageModels.push(list);
  }
  const random = rng(seed * 104_729 + 7);
  let shared = 0;
  if (packages > 1) {
    for (let p = 0; p < packages; p++) {
      if (random() >= sharedFraction) continue;
      let q = Math.floor(random() * (packages - 1));
      if (q >= p) q++;
      const m = f.packageStart[q]!;
      if (packageModels[p]!.includes(m)) continue;
      packageModels[p]!.push(m);
    }
  }
  for (let p = 0; p < packages; p++) for (const m of packageModels[p]!) modelPackages[m]!.push(p);
  for (const l of modelPackages) if (l.length > 1) shared++;
  const modelContainers = new Int32Array(models);
  for (let m = 0; m < models; m++) modelContainers[m] = f.modelStart[m + 1]! - f.modelStart[m]!;
  return { containers, models: modelNames, packages: packageNames, packageModels, modelPackages, modelContainers, shared };
}

export interface CrossShard {
  /** Share of models listed by packages that sit on more than one shard. */
  modelsOnSeveralShards: number;
  /** Share of model → package edges where the model's owner shard is not the package's. */
  crossEdgesByModelHash: number;
  /** The same when a model is owned by the shard of the first package listing it. */
  crossEdgesByFirstPackage: number;
  /** Extra watch hops per model state change (mean over models, model-by-hash ownership). */
  hopsPerModelChange: number;
}

export function crossShard(fleet: SimFleet, shards: number): CrossShard {
  const pShard = fleet.packages.map((p) => moduloOwner(p, shards));
  let several = 0;
  let edges = 0;
  let crossHash = 0;
  let crossFirst = 0;
  let hops = 0;
  fleet.modelPackages.forEach((pkgs, m) => {
    const mShard = moduloOwner(fleet.models[m]!, shards);
    const first = pkgs.length > 0 ? pShard[Math.min(...pkgs)]! : mShard;
    const seen = new Set<number>();
    let h = 0;
    for (const p of pkgs) {
      seen.add(pShard[p]!);
      edges++;
      if (pShard[p] !== mShard) {
        crossHash++;
        h++;
      }
      if (pShard[p] !== first) crossFirst++;
    }
    hops += h;
    if (seen.size > 1) several++;
  });
  const models = fleet.models.length;
  return {
    modelsOnSeveralShards: several / models,
    crossEdgesByModelHash: edges ? crossHash / edges : 0,
    crossEdgesByFirstPackage: edges ? crossFirst / edges : 0,
    hopsPerModelChange: hops / models,
  };
}

export interface Balance {
  shards: number;
  packagesModulo: number;
  packagesRendezvous: number;
  modelsModulo: number;
  modelsRendezvous: number;
  /** Container events per shard (model-by-hash ownership, events uniform over containers). */
  eventsModulo: number;
}

export function balance(fleet: SimFleet, shards: number): Balance {
  const ids = names('shard-', shards);
  const idx = new Map(ids.map((s, i) => [s, i]));
  const pMod = fleet.packages.map((p) => moduloOwner(p, shards));
  const pRdv = fleet.packages.map((p) => idx.get(rendezvousOwner(p, ids))!);
  const mMod = fleet.models.map((m) => moduloOwner(m, shards));
  const mRdv = fleet.models.map((m) => idx.get(rendezvousOwner(m, ids))!);
  return {
    shards,
    packagesModulo: imbalance(bucketLoads(pMod, shards)),
    packagesRendezvous: imbalance(bucketLoads(pRdv, shards)),
    modelsModulo: imbalance(bucketLoads(mMod, shards)),
    modelsRendezvous: imbalance(bucketLoads(mRdv, shards)),
    eventsModulo: imbalance(bucketLoads(mMod, shards, fleet.modelContainers)),
  };
}

export interface Movement {
  replicas: number;
  /** Share of packages that change owner when the last of R replicas leaves (NaN for R = 1). */
  leave: { modulo: number; rendezvous: number; shards: number; shardsCapped: number };
  /** … when an (R+1)-th replica joins. */
  join: { modulo: number; rendezvous: number; shards: number; shardsCapped: number };
  /** Max/mean packages per replica. */
  packagesImbalance: { rendezvous: number; shards: number; shardsCapped: number };
  /** Max/mean container events per replica (models by their own hash, same schemes). */
  eventsImbalance: { rendezvous: number; shards: number; shardsCapped: number };
}

/** Max/mean of the (weighted) keys each of `replicas` owns. */
export function perReplicaImbalance(owners: readonly string[], replicas: readonly string[], weights?: ArrayLike<number>): number {
  const load = new Map<string, number>(replicas.map((r) => [r, 0]));
  owners.forEach((o, i) => load.set(o, (load.get(o) ?? 0) + (weights ? weights[i]! : 1)));
  return imbalance([...load.values()]);
}

/** How packages and container events move and spread over R replicas, under each scheme. */
export function movement(fleet: SimFleet, replicas: number, shards: number): Movement {
  const keys = fleet.packages;
  const r = names('replica-', replicas);
  const rMinus = r.slice(0, -1);
  const rPlus = names('replica-', replicas + 1);
  const schemes = {
    modulo: (members: string[]): (string | number)[] => assignModulo(keys, members.length),
    rendezvous: (members: string[]): (string | number)[] => assignRendezvous(keys, members),
    shards: (members: string[]): (string | number)[] => assignShardsThenReplicas(keys, shards, members, false),
    shardsCapped: (members: string[]): (string | number)[] => assignShardsThenReplicas(keys, shards, members, true),
  };
  const leave = {} as Movement['leave'];
  const join = {} as Movement['join'];
  for (const [name, assign] of Object.entries(schemes) as [keyof typeof schemes, (m: string[]) => (string | number)[]][]) {
    const now = assign(r);
    leave[name] = replicas > 1 ? movedFraction(now, assign(rMinus)) : NaN;
    join[name] = movedFraction(now, assign(rPlus));
  }
  const models = fleet.models;
  const w = fleet.modelContainers;
  return {
    replicas,
    leave,
    join,
    packagesImbalance: {
      rendezvous: perReplicaImbalance(assignRendezvous(keys, r), r),
      shards: perReplicaImbalance(assignShardsThenReplicas(keys, shards, r, false), r),
      shardsCapped: perReplicaImbalance(assignShardsThenReplicas(keys, shards, r, true), r),
    },
    eventsImbalance: {
      rendezvous: perReplicaImbalance(assignRendezvous(models, r), r, w),
      shards: perReplicaImbalance(assignShardsThenReplicas(models, shards, r, false), r, w),
      shardsCapped: perReplicaImbalance(assignShardsThenReplicas(models, shards, r, true), r, w),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Capacity.

export interface Costs {
  /** statemanager CPU per container event on the replica that owns its model (µs), all work included. */
  workUs: number;
  /** CPU per container event on a replica that only watches it (decode, cache, drop) (µs). */
  filterUs: number;
  /** Share of a core one replica may use before it counts as saturated. */
  coreBudget: number;
  /** etcd: single container puts per second it takes (the node agents' writes). */
  putCeiling: number;
  /** etcd: state + history puts per second in statemanager's batched transactions. */
  writeFloor: number;
  /** etcd puts statemanager makes per container event (state + history). */
  writesPerEvent: number;
  /** etcd CPU per watch event sent to one more watching replica (µs), 0 if unknown. */
  etcdFanoutUs: number;
  /** etcd CPU per container event with one watching replica (µs), for the fan-out share. */
  etcdEventUs: number;
}

export interface Capacity {
  replicas: number;
  /** CPU per container event on the busiest replica (µs). */
  perReplicaUs: number;
  /** Events/s at which the busiest replica reaches its core budget. */
  replicaBound: number;
  /** Events/s at which etcd runs out (container puts + state writes + watch fan-out). */
  etcdBound: number;
  /** min of the two. */
  system: number;
  /** Share of the busiest replica's CPU spent filtering events it does not own, at that rate. */
  filterShare: number;
}

/**
 * Projected capacity with R replicas sharing the work of `shards` shards: every replica pays the
 * filter cost for every event, the owner pays the rest of the work; the busiest replica carries
 * `imbalance` times its fair share. etcd's time per event is one single put, `writesPerEvent`
 * batched puts, and one watch event per extra replica; it saturates at 1 / that.
 */
export function capacity(c: Costs, replicas: number, imb: number): Capacity {
  const ownWork = Math.max(0, c.workUs - c.filterUs);
  const perReplicaUs = replicas === 1 ? c.workUs : c.filterUs + (ownWork * imb) / replicas;
  const replicaBound = (c.coreBudget * 1e6) / perReplicaUs;
  // etcd seconds per event: its share of the put ceiling and the write floor are measured on the
  // same box, so they add; fan-out grows its CPU per event by etcdFanoutUs per extra watcher.
  const putSeconds = 1 / c.putCeiling + c.writesPerEvent / c.writeFloor;
  const fanout = c.etcdEventUs > 0 ? 1 + ((replicas - 1) * c.etcdFanoutUs) / c.etcdEventUs : 1;
  const etcdBound = 1 / (putSeconds * fanout);
  const system = Math.min(replicaBound, etcdBound);
  return { replicas, perReplicaUs, replicaBound, etcdBound, system, filterShare: replicas === 1 ? 0 : c.filterUs / perReplicaUs };
}

// ---------------------------------------------------------------------------------------------
// The report.

const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '–');
const f3 = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : '–');
const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(1)} %` : '–');
const int = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padStart(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export interface SimOptions {
  containers: number;
  shared: number;
  seed: number;
  nodes: number;
  shardCounts: number[];
  replicaCounts: number[];
  /** Fixed shard count of the two-level scheme. */
  fixedShards: number;
  costs: Costs;
}

/**
 * The projection's defaults, measured on this 2-core machine (docs/scaling.md): the leader's CPU
 * per container event at ≥ 2,000 events/s (106–139 µs, saturation scenario 2026-12-02; 123 µs in
 * the large-fleet storm of 2026-11-28), a follower's (20–26 µs), the best single-put ceiling
 * (4,500–6,076 puts/s), the cold-start write floor (18,557–21,039 puts/s in transactions of 60),
 * and 0.4 state changes per event with a history entry each. One more watching replica did not
 * change etcd's CPU per event measurably, so fan-out is not charged by default.
 */
export const MEASURED_COSTS: Costs = {
  workUs: 125,
  filterUs: 25,
  coreBudget: 0.9,
  putCeiling: 6_076,
  writeFloor: 20_000,
  writesPerEvent: 0.8,
  etcdFanoutUs: 0,
  etcdEventUs: 0,
};

export function report(o: SimOptions): string {
  const out: string[] = [];
  const fleet = simFleet(o.containers, o.shared, o.seed, o.nodes);
  out.push(
    `fleet: ${int(fleet.containers)} containers, ${int(fleet.models.length)} models, ${int(fleet.packages.length)} packages, ${o.nodes} nodes; ` +
      `${int(fleet.shared)} models (${pct(fleet.shared / fleet.models.length)}) listed by two packages (shared fraction ${o.shared}, seed ${o.seed})`,
  );
  out.push('', '1. Balance: max/mean keys per shard (1.00 = even)', '');
  out.push(
    table(
      ['shards', 'packages mod', 'packages rdv', 'models mod', 'models rdv', 'container events mod'],
      o.shardCounts.map((s) => {
        const b = balance(fleet, s);
        return [String(s), f3(b.packagesModulo), f3(b.packagesRendezvous), f3(b.modelsModulo), f3(b.modelsRendezvous), f3(b.eventsModulo)];
      }),
    ),
  );
  out.push('', '2. Cross-shard models (packages by hash-mod-S; models by their own hash, or with their first package)', '');
  out.push(
    table(
      ['shards', 'models on >1 shard', 'cross edges (model hash)', 'cross edges (first package)', 'watch hops / model change'],
      o.shardCounts.map((s) => {
        const x = crossShard(fleet, s);
        return [String(s), pct(x.modelsOnSeveralShards), pct(x.crossEdgesByModelHash), pct(x.crossEdgesByFirstPackage), f3(x.hopsPerModelChange)];
      }),
    ),
  );
  const moves = o.replicaCounts.map((r) => movement(fleet, r, o.fixedShards));
  out.push(
    '',
    `3. Packages that move when one replica leaves (R → R−1) or joins (R → R+1). mod = hash mod R; rdv = rendezvous over replicas; ` +
      `shards = ${o.fixedShards} fixed shards (hash mod ${o.fixedShards}) handed to replicas by rendezvous; capped = the same, at most ceil(${o.fixedShards}/R) shards per replica`,
    '',
  );
  out.push(
    table(
      ['R', '1/R', 'leave mod', 'leave rdv', 'leave shards', 'leave capped', 'join mod', 'join rdv', 'join shards', 'join capped'],
      moves.map((m) => [
        String(m.replicas),
        pct(1 / m.replicas),
        pct(m.leave.modulo),
        pct(m.leave.rendezvous),
        pct(m.leave.shards),
        pct(m.leave.shardsCapped),
        pct(m.join.modulo),
        pct(m.join.rendezvous),
        pct(m.join.shards),
        pct(m.join.shardsCapped),
      ]),
    ),
  );
  out.push('', `   Load per replica, max/mean: packages, and container events (models owned by their own hash)`, '');
  out.push(
    table(
      ['R', 'pkgs rdv', 'pkgs shards', 'pkgs capped', 'events rdv', 'events shards', 'events capped'],
      moves.map((m) => [
        String(m.replicas),
        f2(m.packagesImbalance.rendezvous),
        f2(m.packagesImbalance.shards),
        f2(m.packagesImbalance.shardsCapped),
        f2(m.eventsImbalance.rendezvous),
        f2(m.eventsImbalance.shards),
        f2(m.eventsImbalance.shardsCapped),
      ]),
    ),
  );
  const c = o.costs;
  out.push(
    '',
    `4. Projected capacity, capped shards (work ${c.workUs} µs/event on the owner, filter ${c.filterUs} µs/event on every replica, budget ${c.coreBudget} core/replica; ` +
      `etcd: ${int(c.putCeiling)} single puts/s, ${int(c.writeFloor)} batched puts/s, ${c.writesPerEvent} statemanager puts/event` +
      `${c.etcdFanoutUs > 0 ? `, +${c.etcdFanoutUs} µs etcd CPU per extra watching replica on ${c.etcdEventUs} µs/event` : ', watch fan-out not charged'})`,
    '',
  );
  out.push(
    table(
      ['replicas', 'busiest µs/event', 'filter share', 'replica-bound events/s', 'etcd-bound events/s', 'system events/s', 'limit'],
      moves.map((m) => {
        const x = capacity(c, m.replicas, m.replicas === 1 ? 1 : m.eventsImbalance.shardsCapped);
        return [String(m.replicas), f2(x.perReplicaUs), pct(x.filterShare), int(x.replicaBound), int(x.etcdBound), int(x.system), x.replicaBound <= x.etcdBound ? 'replicas' : 'etcd'];
      }),
    ),
  );
  return out.join('\n');
}

function main(): void {
  const { values } = parseArgs({
    options: {
      containers: { type: 'string', default: '100000' },
      shared: { type: 'string', default: '0.1' },
      seed: { type: 'string', default: '1' },
      nodes: { type: 'string', default: '50' },
      shards: { type: 'string', default: '1,2,4,8,16' },
      replicas: { type: 'string', default: '1,2,3,4,8,16' },
      'fixed-shards': { type: 'string', default: '256' },
      'work-us': { type: 'string', default: String(MEASURED_COSTS.workUs) },
      'filter-us': { type: 'string', default: String(MEASURED_COSTS.filterUs) },
      'core-budget': { type: 'string', default: String(MEASURED_COSTS.coreBudget) },
      'put-ceiling': { type: 'string', default: String(MEASURED_COSTS.putCeiling) },
      'write-floor': { type: 'string', default: String(MEASURED_COSTS.writeFloor) },
      'writes-per-event': { type: 'string', default: String(MEASURED_COSTS.writesPerEvent) },
      'etcd-fanout-us': { type: 'string', default: String(MEASURED_COSTS.etcdFanoutUs) },
      'etcd-event-us': { type: 'string', default: String(MEASURED_COSTS.etcdEventUs) },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'usage: npx tsx test/bench/shard-sim.ts [--containers N] [--shared FRACTION] [--seed N] [--nodes N]\n' +
        '  [--shards 1,2,4,8,16] [--replicas 1,2,3,4,8,16] [--fixed-shards 256]\n' +
        '  [--work-us µs] [--filter-us µs] [--core-budget 0.9] [--put-ceiling puts/s] [--write-floor puts/s]\n' +
        '  [--writes-per-event N] [--etcd-fanout-us µs --etcd-event-us µs]\n',
    );
    return;
  }
  const num = (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${v}`);
    return n;
  };
  const list = (v: string): number[] => v.split(',').map((x) => num(x.trim()));
  process.stdout.write(
    report({
      containers: num(values.containers),
      shared: num(values.shared),
      seed: num(values.seed),
      nodes: num(values.nodes),
      shardCounts: list(values.shards),
      replicaCounts: list(values.replicas),
      fixedShards: num(values['fixed-shards']),
      costs: {
        workUs: num(values['work-us']),
        filterUs: num(values['filter-us']),
        coreBudget: num(values['core-budget']),
        putCeiling: num(values['put-ceiling']),
        writeFloor: num(values['write-floor']),
        writesPerEvent: num(values['writes-per-event']),
        etcdFanoutUs: num(values['etcd-fanout-us']),
        etcdEventUs: num(values['etcd-event-us']),
      },
    }) + '\n',
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
