// 2. storm: the generator writes container status changes as fast as etcd accepts them while
// statemanager runs. Measures whether statemanager keeps up, its queues, its etcd writes, its
// CPU and memory.
import type { StormResult } from '../generator.js';
import { log, monoMs, percentile, sleep, waitFor } from '../lib/common.js';
import { closeEnv, fmt, freshEtcd, generator, type Ctx, type Env, type ScenarioResult, type Target } from '../lib/context.js';
import { startAndConverge } from '../lib/converge.js';
import { readPrefix } from '../lib/etcdio.js';
import type { GeneratorProcess } from '../lib/generator-client.js';
import { canonicalState, verify } from '../lib/oracle.js';
import { metricSum, Sampler, type Sample, type StateManagerProcess } from '../lib/statemanager.js';
import { replay } from '../lib/watch.js';
import { cpuWindow, etcdPid, formatShares, waitQuiet, type CpuShares } from '../lib/cpu.js';
import { RelayProcess, relayFloorEnv } from '../lib/relay-client.js';

/** How many of the (sorted) revisions are ≤ r. */
function countUpTo(sortedRevs: Float64Array, r: number): number {
  let lo = 0;
  let hi = sortedRevs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedRevs[mid]! <= r) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface WriteAccounting {
  writes: number;
  changes: number;
  redundant: number;
  byKind: Record<'model' | 'package', { writes: number; changes: number }>;
}

/** Every state write in (fromRev, now], from etcd's history, and how many changed a value. */
export async function accountWrites(env: Env, fromRev: number): Promise<WriteAccounting> {
  const out: WriteAccounting = { writes: 0, changes: 0, redundant: 0, byKind: { model: { writes: 0, changes: 0 }, package: { writes: 0, changes: 0 } } };
  for (const kind of ['model', 'package'] as const) {
    const prefix = `/${kind}/`;
    const before = await readPrefix(env.client, prefix, fromRev);
    const after = await readPrefix(env.client, prefix);
    let last = 0;
    for (const v of after.kvs.values()) if (v.modRevision > fromRev) last = Math.max(last, v.modRevision);
    const events = await replay(env.client, prefix, fromRev, last, 120_000);
    const cur = new Map<string, string | undefined>();
    for (const [k, v] of before.kvs) cur.set(k, canonicalState(kind, v.value) ?? v.value);
    for (const e of events) {
      if (!e.key.endsWith('/state')) continue;
      const value = e.type === 'put' ? (canonicalState(kind, e.value) ?? e.value) : undefined;
      out.writes++;
      out.byKind[kind].writes++;
      if (value !== cur.get(e.key)) {
        out.changes++;
        out.byKind[kind].changes++;
      }
      cur.set(e.key, value);
    }
  }
  out.redundant = out.writes - out.changes;
  return out;
}

export async function storm(ctx: Ctx): Promise<ScenarioResult> {
  let env: Env | undefined;
  let gen: GeneratorProcess | undefined;
  let sm: StateManagerProcess | undefined;
  const sampler: { s?: Sampler } = {};
  try {
    env = await freshEtcd(ctx);
    const conv = await startAndConverge(ctx, env, 'storm');
    sm = conv.sm;
    if (!conv.converged) throw new Error(`statemanager did not converge before the storm (${conv.remaining} wrong)`);
    gen = await generator(ctx, env);
    await sleep(500);
    const concurrency = ctx.opts.stormConcurrency || ctx.ceiling?.concurrency || 64;
    const seconds = ctx.opts.stormSeconds;
    await waitQuiet({ statemanager: sm.pid, etcd: etcdPid(env.etcd.dataDir), generator: gen.pid }, ctx.opts.quick ? 0 : 60_000);
    const startRev = Number((await env.client.kv.range({ key: Buffer.from('\0'), limit: 1, count_only: true })).header.revision);
    const s = (sampler.s = new Sampler(sm, 250));
    const first = await s.tick();
    s.start();
    log(`storm: ${seconds} s at ${concurrency} puts in flight`);
    const cpu = cpuWindow({ statemanager: sm.pid, etcd: etcdPid(env.etcd.dataDir), generator: gen.pid });
    const res = await gen.call<StormResult>({ cmd: 'storm', concurrency, seconds, maxPuts: seconds * 40_000 }, (seconds + 60) * 1000);
    const cpuShares = cpu.end();
    const tEnd = monoMs();
    let lastRev = startRev;
    for (const r of res.rev) if (r > lastRev) lastRev = r;
    // Drain: the containers informer has passed the last put and every queue is empty.
    let drainedAt = NaN;
    await waitFor(async () => {
      const x = await s.tick();
      if (x && x.containersRevision >= lastRev && x.depth.model + x.depth.package === 0) {
        drainedAt = x.t;
        return true;
      }
      return false;
    }, 120_000, 50);
    // Keep sampling until 1 s after the last put, for the processed count at that moment.
    await waitFor(async () => {
      await s.tick();
      return monoMs() >= res.t1 + 1100;
    }, 5000, 50);
    s.stop();
    const metrics = await sm.scrape();
    const smProc = sm.proc();

    const duration = (res.t1 - res.t0) / 1000;
    const accepted = res.puts;
    const sortedRevs = Float64Array.from(res.rev).sort();
    const ackSorted = Float64Array.from(res.ackT).sort();
    const during = s.samples.filter((x) => x.t >= res.t0 && x.t <= res.t1);
    const at = (t: number): Sample | undefined => s.samples.find((x) => x.t >= t);
    const processedAt = (x: Sample | undefined): number => (x ? countUpTo(sortedRevs, x.containersRevision) : 0);
    const oneSecondAfter = at(res.t1 + 1000);
    const processed = processedAt(oneSecondAfter);
    // Events behind at each sample: acknowledged by etcd but not yet applied by the informer.
    const behind = during.map((x) => countUpTo(ackSorted, x.t) - processedAt(x));
    const depth = during.map((x) => x.depth.model + x.depth.package + x.depth.request);
    const n = depth.length;
    const q = Math.max(1, Math.floor(n / 4));
    const firstQuarterMax = Math.max(0, ...depth.slice(0, q));
    const lastQuarterMax = Math.max(0, ...depth.slice(n - q));
    // Least-squares slope of the depth over the storm: a queue that cannot keep up grows.
    const ts = during.map((x) => (x.t - res.t0) / 1000);
    const tm = ts.reduce((a, b) => a + b, 0) / Math.max(1, n);
    const dm = depth.reduce((a, b) => a + b, 0) / Math.max(1, n);
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      num += (ts[i]! - tm) * (depth[i]! - dm);
      den += (ts[i]! - tm) ** 2;
    }
    const depthSlope = den > 0 ? num / den : 0;
    const depthGrowth = depthSlope * duration;
    const depthBounded = depthGrowth <= Math.max(100, 0.25 * Math.max(0, ...depth));
    const cpuSeconds = (during.at(-1)?.cpuSeconds ?? NaN) - (first?.cpuSeconds ?? NaN);
    const cpuSpan = ((during.at(-1)?.t ?? NaN) - (first?.t ?? NaN)) / 1000;
    const rssMax = Math.max(0, ...s.samples.map((x) => x.rssBytes));
    const addsDuring = (during.at(-1)?.adds ?? NaN) - (first?.adds ?? NaN);

    log('storm: accounting state writes from etcd history');
    const writes = await accountWrites(env, startRev);
    const check = await verify(env.client);
    // The same etcd without statemanager, then with a do-nothing controller making its I/O.
    await sm.stop();
    const floor = ctx.opts.stormFloor ? await stormFloor(ctx, env, gen, { concurrency, seconds, every: Math.max(1, accepted / Math.max(1, writes.writes)) }) : undefined;
    const processedPerSecond = processed / duration;
    // For the baseline comparison: events per second from the first put until statemanager had
    // applied them all and emptied its queues (every state right again).
    const throughputToConverged = accepted / ((drainedAt - res.t0) / 1000);
    ctx.stormProcessedPerSecond = throughputToConverged;
    const ratio = accepted > 0 ? processed / accepted : NaN;
    const errors = metricSum(metrics, 'controller_runtime_reconcile_errors_total');
    const targets: Target[] = [
      { name: 'storm: processed / accepted', target: '≥ 1.0', value: ratio.toFixed(4), met: ratio >= 1 },
      {
        name: 'storm: queue depth bounded',
        target: 'does not grow over the storm',
        value: `max ${Math.max(0, ...depth)}, p99 ${percentile(depth, 99)}, trend ${depthSlope >= 0 ? '+' : ''}${depthSlope.toFixed(1)} keys/s`,
        met: depthBounded,
      },
      { name: 'storm: redundant state writes', target: '0', value: String(writes.redundant), met: writes.redundant === 0 },
      vsAlone(ctx, concurrency, accepted / duration),
    ];
    const table: [string, string][] = [
      ['generator', `${fmt.n(accepted)} puts accepted in ${fmt.s(duration)} = ${fmt.n(accepted / duration)} puts/s at ${concurrency} in flight${res.errors ? ` (${res.errors} errors)` : ''}`],
      ['events processed', `${fmt.n(processedPerSecond)} events/s (${fmt.n(processed)} of ${fmt.n(accepted)} applied by 1 s after the last put)`],
      ['processed / accepted', ratio.toFixed(4)],
      ['drained after last put', `${fmt.ms(drainedAt - res.t1)} (so ${fmt.n(throughputToConverged)} events/s from the first put to all states right)`],
      ['events behind (informer)', `max ${fmt.n(Math.max(0, ...behind))}, p99 ${fmt.n(percentile(behind, 99))}`],
      ['queue depth (model+package+request)', `max ${Math.max(0, ...depth)}, p99 ${percentile(depth, 99)}, trend ${depthSlope >= 0 ? '+' : ''}${depthSlope.toFixed(1)} keys/s: ${depthBounded ? 'bounded' : 'GROWING'}`],
      ['work-queue adds', `${fmt.n(addsDuring)} (${fmt.n(addsDuring / cpuSpan)} /s)`],
      [
        'state writes',
        `${fmt.n(writes.writes)} issued, ${fmt.n(writes.changes)} changed a value, ${writes.redundant} redundant (model ${fmt.n(writes.byKind.model.writes)}, package ${fmt.n(writes.byKind.package.writes)}); ${errors} reconcile errors`,
      ],
      ['statemanager CPU', `${fmt.pct(cpuSeconds / cpuSpan)} of one core (${cpuSeconds.toFixed(1)} s over ${cpuSpan.toFixed(1)} s)`],
      ['CPU during the storm (share of one core)', formatShares(cpuShares)],
      ['statemanager RSS', `max ${fmt.mb(rssMax)}, peak (VmHWM) ${fmt.mb(smProc?.hwmBytes ?? NaN)}`],
      ...(floor ? floorRows(floor, accepted / duration) : []),
      ['correctness', check.ok ? `ok (${check.checked.models} models, ${check.checked.packages} packages)` : `FAILED: ${check.mismatchCount} wrong`],
    ];
    return {
      name: 'storm',
      figures: {
        concurrency,
        seconds: duration,
        accepted,
        acceptedPerSecond: accepted / duration,
        processed,
        processedPerSecond,
        ratio,
        drainMs: drainedAt - tEnd,
        behindMax: Math.max(0, ...behind),
        behindP99: percentile(behind, 99),
        depthMax: Math.max(0, ...depth),
        depthP99: percentile(depth, 99),
        depthFirstQuarterMax: firstQuarterMax,
        depthLastQuarterMax: lastQuarterMax,
        depthBounded,
        depthSlopePerSecond: depthSlope,
        depthSeries: during.map((x) => [Math.round(x.t - res.t0), x.depth.model, x.depth.package, x.depth.request]),
        adds: addsDuring,
        writes,
        reconcileErrors: errors,
        cpuCoreFraction: cpuSeconds / cpuSpan,
        cpuShares,
        throughputToConverged,
        rssMaxBytes: rssMax,
        rssPeakBytes: smProc?.hwmBytes,
        coldStartBeforeStorm: { readyMs: conv.readyMs, convergedMs: conv.convergedMs },
        generatorErrors: res.errors,
        samplerErrors: s.errors,
        ...(floor ? { floor } : {}),
      },
      table,
      targets,
      correctness: { ok: check.ok, detail: check.mismatches },
    };
  } finally {
    sampler.s?.stop();
    await gen?.stop();
    await sm?.stop();
    await closeEnv(env);
  }
}

/**
 * Issue 13: with statemanager running, etcd should still accept ≥ 75 % of the container puts/s
 * it accepts from the generator alone at the same concurrency (the ceiling scenario's level of
 * that concurrency). Not judged when the ceiling did not run or did not measure that level.
 */
function vsAlone(ctx: Ctx, concurrency: number, acceptedPerSecond: number): Target {
  const name = 'storm: etcd accepts with statemanager vs alone';
  const target = '≥ 75 %';
  const alone = ctx.ceiling?.levels?.find((l) => l.concurrency === concurrency)?.rate ?? (ctx.ceiling?.concurrency === concurrency ? ctx.ceiling.rate : undefined);
  if (alone === undefined || !(alone > 0)) {
    const why = ctx.ceiling ? `ceiling not measured at ${concurrency} in flight` : 'ceiling not run';
    return { name, target, value: `${fmt.n(acceptedPerSecond)} puts/s (${why})`, met: null };
  }
  const share = acceptedPerSecond / alone;
  return { name, target, value: `${(share * 100).toFixed(0)} % (${fmt.n(acceptedPerSecond)} vs ${fmt.n(alone)} puts/s at ${concurrency} in flight)`, met: share >= 0.75 };
}

/** The storm's floor (--no-storm-floor skips it): what etcd accepts in the same place without statemanager. */
export interface StormFloor {
  concurrency: number;
  /** The generator alone, on the same etcd right after statemanager's storm: puts/s. */
  alonePerSecond: number;
  /** With the relay (test/bench/relay.ts) writing one state-shaped write per `every` container puts and watching its own writes: puts/s. */
  relayPerSecond: number;
  every: number;
  relayWrites: number;
  relayEchoes: number;
  relayErrors: number;
  aloneShares: CpuShares;
  relayShares: CpuShares;
}

/**
 * The storm twice more on the same etcd at the same concurrency, after statemanager has stopped:
 * the generator alone, then with a do-nothing controller making statemanager's I/O (its
 * watches, and one guarded state write with its history entry per `every` puts, grouped into
 * transactions as statemanager groups them). The judged ratio stays the one against the
 * ceiling (issue 13's definition); these say how much of the drop any controller on these two
 * cores costs, measured minutes apart instead of a scenario apart.
 */
async function stormFloor(ctx: Ctx, env: Env, gen: GeneratorProcess, o: { concurrency: number; seconds: number; every: number }): Promise<StormFloor> {
  const run = async (label: string, pids: Record<string, number | undefined>): Promise<{ perSecond: number; shares: CpuShares }> => {
    await waitQuiet({ etcd: etcdPid(env.etcd.dataDir), generator: gen.pid, ...pids }, ctx.opts.quick ? 0 : 30_000);
    log(`storm floor: ${label}, ${o.seconds} s at ${o.concurrency} in flight`);
    const cpu = cpuWindow({ etcd: etcdPid(env.etcd.dataDir), generator: gen.pid, ...pids });
    const r = await gen.call<StormResult>({ cmd: 'storm', concurrency: o.concurrency, seconds: o.seconds, maxPuts: o.seconds * 40_000 }, (o.seconds + 60) * 1000);
    return { perSecond: r.puts / ((r.t1 - r.t0) / 1000), shares: cpu.end() };
  };
  const alone = await run('the generator alone', {});
  const relay = new RelayProcess(ctx.root, env.etcd.endpoint, relayFloorEnv({ every: o.every, states: 1, echo: true }));
  try {
    await relay.start();
    await sleep(500);
    const withRelay = await run(`with the do-nothing controller (one state write per ${o.every.toFixed(2)} puts)`, { relay: relay.pid });
    await sleep(1000);
    const stats = await relay.stats();
    return {
      concurrency: o.concurrency,
      alonePerSecond: alone.perSecond,
      relayPerSecond: withRelay.perSecond,
      every: o.every,
      relayWrites: stats.puts,
      relayEchoes: stats.echoes ?? 0,
      relayErrors: stats.errors,
      aloneShares: alone.shares,
      relayShares: withRelay.shares,
    };
  } finally {
    await relay.stop();
  }
}

function floorRows(f: StormFloor, smPerSecond: number): [string, string][] {
  return [
    ['floor: generator alone, same etcd after', `${fmt.n(f.alonePerSecond)} puts/s at ${f.concurrency} in flight; with statemanager ÷ this: ${fmt.pct(smPerSecond / f.alonePerSecond)} (CPU: ${formatShares(f.aloneShares)})`],
    [
      'floor: a do-nothing controller',
      `${fmt.n(f.relayPerSecond)} puts/s = ${fmt.pct(f.relayPerSecond / f.alonePerSecond)} of alone, with statemanager's I/O (1 state write + history per ${f.every.toFixed(2)} puts: ${fmt.n(f.relayWrites)} writes, ${fmt.n(f.relayEchoes)} echoes${f.relayErrors ? `, ${f.relayErrors} errors` : ''}); statemanager ÷ this: ${fmt.pct(smPerSecond / f.relayPerSecond)} (CPU: ${formatShares(f.relayShares)})`,
    ],
  ];
}
