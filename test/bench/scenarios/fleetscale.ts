// 6. fleetscale (issue 13): cold starts at growing fleet sizes — containers N, models N/2,
// packages N/4 — each from a fresh etcd holding that fleet: time to ready and to converged,
// state writes against etcd's floor for them, peak and steady memory, CPU (against the client
// floor: the same I/O through statemanager's etcd code alone, lib/client-floor.ts). Two more small cold
// starts measure what one more container and one more model cost. The curve goes into an SVG.
// Only the issue's own shape (100,000 containers, 50 nodes) is judged against its targets.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { log, sleep } from '../lib/common.js';
import { closeEnv, fmt, freshEtcd, statemanager, type Ctx, type Env, type ScenarioResult, type Target } from '../lib/context.js';
import { startAndConverge } from '../lib/converge.js';
import { etcdVersion } from '../lib/etcdio.js';
import { Fleet, type FleetShape } from '../lib/fleet.js';
import { clientFloorOnFreshEtcd, compareToClientFloor, type ClientFloor, type ClientFloorComparison } from '../lib/client-floor.js';
import { compareToFloor, FLOOR_SHARE_GOAL, writeFloor, type FloorComparison, type WriteFloor } from '../lib/floor.js';
import { verify } from '../lib/oracle.js';
import { renderCurveSvg } from '../lib/plot.js';
import { GC_ON_SIGNAL, metric, type MetricMap, type StateManagerProcess } from '../lib/statemanager.js';

/** The fleet: the only size the targets judge. */
const JUDGED = { containers: 100_000, nodes: 50 };

const isJudged = (p: StartPoint): boolean => p.shape.containers === JUDGED.containers && p.shape.nodes === JUDGED.nodes;

interface StartPoint {
  shape: FleetShape;
  readyMs: number;
  convergedMs: number;
  converged: boolean;
  stateWrites: number;
  /** VmHWM at convergence. */
  peakRssBytes: number;
  /** statemanager's CPU from spawn to convergence. */
  cpuSeconds: number;
  /** Meanwhile, in cores: etcd's CPU, and that of every process but statemanager, etcd and the harness (a busy machine). */
  etcdShare: number;
  othersShare: number;
  /** After the idle period: process_resident_memory_bytes. */
  steadyRssBytes: number;
  /** After the idle period and a full GC: nodejs_heap_size_used_bytes (see idleMemory). */
  heapUsedBytes: number;
  heapBeforeGcBytes: number;
  /**
   * Of heapUsedBytes, the spaces holding data (old, new and large-object spaces): without the code
   * and trusted spaces, whose compiled code and bytecode follow what the JIT happened to compile.
   */
  dataHeapBytes: number;
  /** Reconciles run by the model and package controllers over the cold start (any result). */
  reconciles: { model: number; package: number };
  floor?: WriteFloor;
  vsFloor?: FloorComparison;
  /** The same I/O through statemanager's etcd code alone (lib/client-floor.ts), on a fresh etcd after statemanager stopped. */
  clientFloor?: ClientFloor;
  vsClientFloor?: ClientFloorComparison;
}

interface Check {
  ok: boolean;
  detail: string[];
}

/** Containers N, models N/2, packages N/4, with `over` replacing any of them. */
export function fleetShape(containers: number, nodes: number, over: Partial<FleetShape> = {}): FleetShape {
  return {
    containers,
    models: Math.max(1, Math.floor(containers / 2)),
    packages: Math.max(1, Math.floor(containers / 4)),
    nodes,
    notReadyNodes: 1,
    seed: 1,
    ...over,
  };
}

const shapeText = (s: FleetShape): string => `${fmt.n(s.containers)} containers, ${fmt.n(s.models)} models, ${fmt.n(s.packages)} packages, ${s.nodes} nodes`;

/**
 * Idle for `seconds`, then RSS as the idle process has it, then heap used right after a full GC
 * (SIGUSR2, see GC_ON_SIGNAL), as the process itself read it at the end of the collection.
 * Without the GC, heap used carries whatever garbage the cold start left until V8 happens to
 * collect it, which buries the difference between two small fleets; read by a scrape after the GC,
 * it also carries what the process allocated in between.
 */
async function idleMemory(sm: StateManagerProcess, seconds: number): Promise<{ heapUsedBytes: number; steadyRssBytes: number; heapBeforeGcBytes: number; dataHeapBytes: number; reconciles: { model: number; package: number } }> {
  await sleep(seconds * 1000);
  const before = await sm.scrape();
  rmSync(sm.gcReportFile, { force: true });
  sm.signal('SIGUSR2');
  const report = await gcReport(sm.gcReportFile);
  return {
    steadyRssBytes: metric(before, 'process_resident_memory_bytes'),
    heapBeforeGcBytes: metric(before, 'nodejs_heap_size_used_bytes'),
    heapUsedBytes: report.usedHeapSize,
    dataHeapBytes: DATA_SPACES.reduce((sum, space) => sum + (report.spaces[space] ?? NaN), 0),
    reconciles: { model: reconcilesOf(before, 'model'), package: reconcilesOf(before, 'package') },
  };
}

/** V8's heap spaces that hold the program's objects (the rest hold code, bytecode and V8's own). */
const DATA_SPACES = ['old_space', 'new_space', 'large_object_space', 'new_large_object_space'];

/** The report GC_ON_SIGNAL's handler writes (renamed into place whole). */
async function gcReport(file: string): Promise<{ usedHeapSize: number; spaces: Record<string, number> }> {
  for (const until = Date.now() + 10_000; Date.now() < until; await sleep(50)) {
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as { usedHeapSize: number; spaces: Record<string, number> };
  }
  throw new Error(`no heap report in ${file} 10 s after SIGUSR2`);
}

/** controller_runtime_reconcile_total of one controller, summed over its results. */
function reconcilesOf(m: MetricMap, controller: string): number {
  let n = 0;
  for (const [k, v] of m) if (k.startsWith('controller_runtime_reconcile_total{') && k.includes(`controller="${controller}"`)) n += v;
  return n;
}

/** The time limits grow with the fleet: a 500k cold start takes minutes on two cores. */
function limits(containers: number): { readyTimeoutMs: number; timeoutMs: number } {
  return { readyTimeoutMs: Math.max(120_000, containers * 0.5), timeoutMs: Math.max(180_000, containers * 2) };
}

/** One cold start of `shape` on a fresh etcd; statemanager and etcd are gone when it returns. */
async function coldStartAt(ctx: Ctx, shape: FleetShape, label: string, o: { floor: boolean; idleSeconds: number }): Promise<{ point: StartPoint; check: Check; etcd: string }> {
  let env: Env | undefined;
  let sm: StateManagerProcess | undefined;
  try {
    log(`${label}: ${shapeText(shape)}`);
    env = await freshEtcd(ctx, new Fleet(shape));
    const etcd = await etcdVersion(env.etcd.endpoint);
    const conv = await startAndConverge(ctx, env, label, { ...limits(shape.containers), sm: statemanager(ctx, env, label, GC_ON_SIGNAL) });
    sm = conv.sm;
    const p = sm.proc();
    const idle = await idleMemory(sm, o.idleSeconds);
    const v = await verify(env.client, conv.expected);
    await sm.stop();
    sm = undefined;
    // The floor is etcd alone, so it runs after statemanager has stopped.
    const floor = o.floor && conv.stateWrites > 0 ? await writeFloor(env, conv.stateWrites, label) : undefined;
    await closeEnv(env);
    env = undefined;
    // The client floor on an etcd of its own holding the same fleet, alone on the machine.
    const cf =
      o.floor && conv.converged && conv.stateWrites > 0 && ctx.opts.clientFloor
        ? await clientFloorOnFreshEtcd(ctx, new Fleet(shape), conv.stateWrites, label, limits(shape.containers).timeoutMs)
        : undefined;
    const point: StartPoint = {
      shape,
      readyMs: conv.readyMs,
      convergedMs: conv.convergedMs,
      converged: conv.converged,
      stateWrites: conv.stateWrites,
      peakRssBytes: p?.hwmBytes ?? NaN,
      cpuSeconds: p?.cpuSeconds ?? NaN,
      etcdShare: conv.cpu.etcd ?? NaN,
      othersShare: conv.cpu.others,
      ...idle,
      ...(floor ? { floor, vsFloor: compareToFloor(conv.stateWrites, conv.convergedMs, floor) } : {}),
      ...(cf ? { clientFloor: cf, vsClientFloor: compareToClientFloor(p?.cpuSeconds ?? NaN, cf, shape.containers + shape.models + shape.packages) } : {}),
    };
    const detail = v.mismatches.map((m) => `${label}: ${m}`);
    if (!conv.converged) detail.unshift(`${label}: not converged (${conv.remaining} states wrong when the watch gave up)`);
    return { point, check: { ok: v.ok && conv.converged, detail }, etcd };
  } finally {
    await sm?.stop();
    await closeEnv(env);
  }
}

/** Bytes one more container (or model) costs: the difference of two cold starts over the difference in count. */
/**
 * What `units` more containers or models cost. `heap`: V8's data spaces only; the code and trusted
 * spaces (compiled code, bytecode) follow what the JIT happened to compile, ±100 KB between runs
 * of one shape, ±60 B per model of a quick fleet, rather than what the fleet holds. `heapWithCode`:
 * all of heap used.
 */
function perUnit(base: StartPoint, more: StartPoint, units: number): { heap: number; heapWithCode: number; steadyRss: number; peakRss: number; units: number } {
    return {
    heap: (more.dataHeapBytes - base.dataHeapBytes) / units,
    heapWithCode: (more.heapUsedBytes - base.heapUsedBytes) / units,
    steadyRss: (more.steadyRssBytes - base.steadyRssBytes) / units,
    peakRss: (more.peakRssBytes - base.peakRssBytes) / units,
    units,
  };
}

function sizeRow(p: StartPoint, idleSeconds: number): string {
  return (
    `ready ${fmt.ms(p.readyMs)}, converged ${p.converged ? fmt.ms(p.convergedMs) : 'NO'}, ${fmt.n(p.stateWrites)} state writes, peak RSS ${fmt.mb(p.peakRssBytes)}, CPU ${p.cpuSeconds.toFixed(1)} s; ` +
    `after ${idleSeconds} s idle: RSS ${fmt.mb(p.steadyRssBytes)} (${fmt.n(p.steadyRssBytes / p.shape.containers)} B per container), heap used ${fmt.mb(p.heapUsedBytes)} after a full GC (${fmt.mb(p.heapBeforeGcBytes)} before); reconciles: ${fmt.n(p.reconciles.model)} model, ${fmt.n(p.reconciles.package)} package`
  );
}

/** Growth exponent between the smallest and the largest size: value ∝ containers^k. */
function exponent(a: StartPoint, b: StartPoint, f: (p: StartPoint) => number): string {
  const k = Math.log(f(b) / f(a)) / Math.log(b.shape.containers / a.shape.containers);
  return Number.isFinite(k) ? k.toFixed(2) : '?';
}

function curveRow(points: StartPoint[]): string {
  const each = points.map((p) => `${fmt.n(p.shape.containers)}: ${p.converged ? fmt.s(p.convergedMs / 1000) : 'not converged'}, ${fmt.mb(p.peakRssBytes)}`).join('; ');
  if (points.length < 2) return each;
  const a = points[0]!;
  const b = points.at(-1)!;
  return `${each} — from ${fmt.n(a.shape.containers)} to ${fmt.n(b.shape.containers)} containers converged grows as N^${exponent(a, b, (p) => p.convergedMs)}, peak RSS as N^${exponent(a, b, (p) => p.peakRssBytes)}`;
}

/** Peak RSS goal of the fleet-100k cold start (issue 22). */
const PEAK_RSS_GOAL_MB = 300;

function judgedTargets(points: StartPoint[]): Target[] {
  const p = points.find(isJudged);
  const rows = [
    { name: 'fleet 100k: cold start to converged', target: '≤ 5 s' },
    // Issue 22's goal (issue 13 asked for 250 MB and closed with the miss explained: docs/performance.md).
    { name: 'fleet 100k: peak RSS', target: `≤ ${PEAK_RSS_GOAL_MB} MB` },
    // statemanager keeps up with etcd when it writes at ≥ 80 % of the rate etcd alone takes
    // the same number of state + history writes (lib/floor.ts); 100 % is etcd's own limit.
    { name: 'fleet 100k: state writes/s vs etcd floor', target: `≥ ${(FLOOR_SHARE_GOAL * 100).toFixed(0)} % of the floor` },
  ];
  if (!p) {
    const other = points.find((x) => x.shape.containers === JUDGED.containers);
    const value = other ? `not run (100,000 containers ran with ${other.shape.nodes} nodes; the issue's fleet has ${JUDGED.nodes})` : 'not run';
    return rows.map((r) => ({ ...r, value, met: null }));
  }
  const notConverged = { value: 'not converged', met: false };
  return [
    { ...rows[0]!, ...(p.converged ? { value: fmt.s(p.convergedMs / 1000), met: p.convergedMs <= 5_000 } : notConverged) },
    { ...rows[1]!, value: fmt.mb(p.peakRssBytes), met: p.peakRssBytes <= PEAK_RSS_GOAL_MB * 1024 * 1024 },
    { ...rows[2]!, ...(p.converged && p.vsFloor ? { value: p.vsFloor.text, met: p.vsFloor.share >= FLOOR_SHARE_GOAL } : notConverged) },
  ];
}

function writePlot(ctx: Ctx, points: StartPoint[], machine: string): string[] {
  const svg = renderCurveSvg(
    points.map((p) => ({ containers: p.shape.containers, peakRssMb: p.peakRssBytes / 1024 / 1024, convergedSeconds: p.converged ? p.convergedMs / 1000 : NaN })),
    {
      title: 'statemanager cold start by fleet size',
      date: new Date().toISOString().slice(0, 10),
      machine,
      subtitle: `models = containers / 2, packages = containers / 4, ${points[0]?.shape.nodes ?? '?'} nodes (1 NotReady); fresh etcd holding the fleet, no states`,
      // The goals are for the 100k fleet: drawn only when the plot has it.
      ...(points.some(isJudged) ? { targets: { peakRssMb: PEAK_RSS_GOAL_MB, convergedSeconds: 5, label: 'at 100k' } } : {}),
    },
  );
  const files = [join(ctx.workDir, 'fleet-scale.svg')];
  if (ctx.opts.plotFile) files.push(resolve(ctx.opts.plotFile));
  for (const f of files) {
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, svg);
  }
  log(`fleetscale: plot written to ${files.join(', ')}`);
  return files;
}

/** What one more container and one more model cost: on top of the smallest size S, once with
 *  2·S containers and once with twice the models (S: one container each, as the fleet allows). */
async function memoryRuns(ctx: Ctx, base: StartPoint, nodes: number, idleSeconds: number) {
  const s = base.shape;
  const moreContainersShape = fleetShape(2 * s.containers, nodes, { models: s.models, packages: s.packages });
  const moreModelsShape = fleetShape(s.containers, nodes, { models: 2 * s.models, packages: s.packages });
  const mc = await coldStartAt(ctx, moreContainersShape, `fleetscale-mem-containers-${moreContainersShape.containers}`, { floor: false, idleSeconds });
  const mm = await coldStartAt(ctx, moreModelsShape, `fleetscale-mem-models-${moreModelsShape.models}`, { floor: false, idleSeconds });
  return {
    mc,
    mm,
    perContainer: perUnit(base, mc.point, moreContainersShape.containers - s.containers),
    perModel: perUnit(base, mm.point, moreModelsShape.models - s.models),
  };
}

export async function fleetscale(ctx: Ctx): Promise<ScenarioResult> {
  const sizes = [...new Set(ctx.opts.fleetSizes)].sort((a, b) => a - b);
  if (sizes.length === 0) throw new Error('fleetscale: no --fleet-sizes');
  const nodes = ctx.opts.fleetNodes;
  // ~5 s idle before the steady figures; 3 s in the quick run (CI's time limit covers the whole bench).
  const idleSeconds = ctx.opts.quick ? 3 : 5;
  const points: StartPoint[] = [];
  const checks: Check[] = [];
  let etcd = 'unknown';
  for (const n of sizes) {
    const r = await coldStartAt(ctx, fleetShape(n, nodes), `fleetscale-${n}`, { floor: true, idleSeconds });
    points.push(r.point);
    checks.push(r.check);
    etcd = r.etcd;
  }

  const base = points[0]!;
  const mem = ctx.opts.fleetMemoryRuns ? await memoryRuns(ctx, base, nodes, idleSeconds) : undefined;
  if (mem) checks.push(mem.mc.check, mem.mm.check);

  const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, etcd ${etcd}`;
  const plotFiles = writePlot(ctx, points, machine);
  const ok = checks.every((c) => c.ok);
  const unit = (u: ReturnType<typeof perUnit>): string => `${fmt.n(u.heap)} B heap`;
  const unitRow = (u: ReturnType<typeof perUnit>, what: string, more: StartPoint): string =>
    `${unit(u)} (Δ heap data spaces after ${idleSeconds} s idle and a full GC / Δ ${what}; ${fmt.n(u.heapWithCode)} B with code and bytecode); RSS: ${fmt.n(u.steadyRss)} B steady, ${fmt.n(u.peakRss)} B peak — ${shapeText(base.shape)} → ${shapeText(more.shape)}`;

  const table: [string, string][] = [];
  for (const p of points) {
    table.push([`${fmt.n(p.shape.containers)} containers`, sizeRow(p, idleSeconds)]);
    if (p.floor && p.vsFloor) {
      table.push([`  etcd floor at ${fmt.n(p.shape.containers)}`, `${fmt.n(p.floor.writes)} writes alone in ${fmt.s(p.floor.seconds)}; statemanager, spawn to converged: ${p.vsFloor.text}`]);
    }
    if (p.clientFloor && p.vsClientFloor) {
      table.push([`  client floor at ${fmt.n(p.shape.containers)}`, `${p.vsClientFloor.text}; floor spawn to done ${fmt.s(p.clientFloor.wallSeconds)}, statemanager spawn to converged ${fmt.s(p.convergedMs / 1000)}`]);
    }
  }
  table.push(['curve', curveRow(points)]);
  if (mem) {
    table.push(['memory per container', unitRow(mem.perContainer, 'containers', mem.mc.point)]);
    table.push(['memory per model', unitRow(mem.perModel, 'models', mem.mm.point)]);
  }
  table.push(['plot', plotFiles.join(', ')]);
  table.push(['correctness', ok ? `ok (${checks.length} cold starts, every state exact)` : `FAILED: ${checks.filter((c) => !c.ok).length} of ${checks.length} cold starts wrong`]);

  const targets: Target[] = [
    ...judgedTargets(points),
    ...(mem
      ? [
          { name: 'memory per container', target: 'measured (no goal)', value: `${unit(mem.perContainer)} (${fmt.n(mem.perContainer.steadyRss)} B RSS)`, met: null },
          { name: 'memory per model', target: 'measured (no goal)', value: `${unit(mem.perModel)} (${fmt.n(mem.perModel.steadyRss)} B RSS)`, met: null },
        ]
      : []),
  ];
  return {
    name: 'fleetscale',
    figures: {
      sizes: points,
      ...(mem ? { memoryRuns: { moreContainers: mem.mc.point, moreModels: mem.mm.point }, perContainer: mem.perContainer, perModel: mem.perModel } : {}),
      plotFiles,
      idleSeconds,
    },
    table,
    targets,
    correctness: { ok, detail: checks.flatMap((c) => c.detail) },
  };
}
