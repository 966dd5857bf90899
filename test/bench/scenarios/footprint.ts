// 7. footprint (issue 22, item 3): statemanager on one vehicle — 3 packages, 5 models, 10
// containers, the size of Pullpiri's examples. A fresh etcd holds that fleet; statemanager is
// spawned as production runs it (node dist/src/main.js). Figures: spawn → first /readyz 200 (the
// median of several starts), and after 20 s idle its resident memory (VmRSS from /proc) and V8
// heap (from /metrics). Beside it, two floors idle for the same time: Node alone, and a process
// that only loads statemanager's dependencies (lib/dep-floor.mjs) — what the runtime and the
// libraries cost before statemanager does anything.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { log, monoMs, sleep } from '../lib/common.js';
import { closeEnv, fmt, freshEtcd, statemanager, type Ctx, type Env, type ScenarioResult, type Target } from '../lib/context.js';
import { startAndConverge } from '../lib/converge.js';
import { Fleet, type FleetShape } from '../lib/fleet.js';
import { verify } from '../lib/oracle.js';
import { spawnTracked, stopChild } from '../lib/procs.js';
import { metric, procSample, type StateManagerProcess } from '../lib/statemanager.js';

/** One vehicle: the size of Pullpiri's examples. */
export const VEHICLE: FleetShape = { nodes: 2, containers: 10, models: 5, packages: 3, notReadyNodes: 0, seed: 1 };
export const FOOTPRINT_RSS_GOAL_BYTES = 64 * 1024 * 1024;
export const FOOTPRINT_READY_GOAL_MS = 1000;

export interface Memory {
  rssBytes: number;
  /** Of the RSS: anonymous pages (the process's own) and file pages (the node binary's code, shared). */
  rssAnonBytes: number;
  rssFileBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
}

export interface FootprintFigures {
  shape: FleetShape;
  idleSeconds: number;
  /** spawn → first /readyz 200 of every start; the first is a cold start (no states yet). */
  readyMs: number[];
  readyMedianMs: number;
  converged: boolean;
  statemanager: Memory;
  /** Node alone, idle. */
  bare: Memory & { loadMs: number };
  /** Node with statemanager's dependencies loaded, idle. */
  deps: Memory & { loadMs: number };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** A floor process: Node alone (`bare`) or with the dependencies loaded; resolves once loaded. */
class FloorProcess {
  private child: ChildProcess | undefined;
  private lines: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];
  loadMs = NaN;

  constructor(
    private readonly root: string,
    private readonly bare: boolean,
  ) {}

  async start(): Promise<void> {
    const args = [join(this.root, 'test/bench/lib/dep-floor.mjs'), ...(this.bare ? ['--bare'] : [])];
    const child = spawnTracked(process.execPath, args, { cwd: this.root, stdio: ['ignore', 'pipe', 'inherit'] });
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (l) => {
      try {
        this.lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        return;
      }
      for (const w of this.waiters.splice(0)) w();
    });
    const first = await this.next(30_000);
    this.loadMs = Number(first.loadMs);
  }

  private async next(timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = monoMs() + timeoutMs;
    while (this.lines.length === 0) {
      if (monoMs() > deadline) throw new Error('floor process did not answer');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return this.lines.shift()!;
  }

  async memory(): Promise<Memory> {
    const p = this.child?.pid ? procSample(this.child.pid) : undefined;
    this.child?.kill('SIGUSR2');
    const m = (await this.next(10_000)).memory as NodeJS.MemoryUsage;
    return { rssBytes: p?.rssBytes ?? NaN, rssAnonBytes: p?.rssAnonBytes ?? NaN, rssFileBytes: p?.rssFileBytes ?? NaN, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external };
  }

  async stop(): Promise<void> {
    if (this.child) await stopChild(this.child, 'SIGTERM', 5_000);
  }
}

async function smMemory(sm: StateManagerProcess): Promise<Memory> {
  const p = sm.proc();
  const m = await sm.scrape();
  return {
    rssBytes: p?.rssBytes ?? NaN,
    rssAnonBytes: p?.rssAnonBytes ?? NaN,
    rssFileBytes: p?.rssFileBytes ?? NaN,
    heapUsedBytes: metric(m, 'nodejs_heap_size_used_bytes'),
    heapTotalBytes: metric(m, 'nodejs_heap_size_total_bytes'),
    externalBytes: metric(m, 'nodejs_external_memory_bytes'),
  };
}

export async function footprint(ctx: Ctx): Promise<ScenarioResult> {
  let env: Env | undefined;
  let sm: StateManagerProcess | undefined;
  const floors = [new FloorProcess(ctx.root, true), new FloorProcess(ctx.root, false)] as const;
  const idleSeconds = 20;
  const starts = ctx.opts.quick ? 3 : 5;
  try {
    const fleet = new Fleet(VEHICLE);
    env = await freshEtcd(ctx, fleet);
    // Restarts first (each stopped once ready), then the cold start that stays up and idles.
    const readyMs: number[] = [];
    const first = await startAndConverge(ctx, env, 'footprint-cold', { timeoutMs: 30_000, readyTimeoutMs: 30_000 });
    sm = first.sm;
    readyMs.push(first.readyMs);
    const check = await verify(env.client, first.expected);
    for (let i = 1; i < starts; i++) {
      await sm.stop();
      sm = statemanager(ctx, env, 'footprint');
      await sm.start();
      readyMs.push(await sm.waitReady(30_000));
    }
    // The floors load beside the last statemanager once it is ready, and all three idle together.
    for (const f of floors) await f.start();
    log(`footprint: ready after ${readyMs.map((r) => r.toFixed(0)).join(', ')} ms; idle for ${idleSeconds} s`);
    await sleep(idleSeconds * 1000);
    const smMem = await smMemory(sm);
    const [bare, deps] = [await floors[0].memory(), await floors[1].memory()];
    const f: FootprintFigures = {
      shape: VEHICLE,
      idleSeconds,
      readyMs,
      readyMedianMs: median(readyMs),
      converged: first.converged,
      statemanager: smMem,
      bare: { ...bare, loadMs: floors[0].loadMs },
      deps: { ...deps, loadMs: floors[1].loadMs },
    };
    const mem = (m: Memory): string =>
      `RSS ${fmt.n(m.rssBytes / 1048576, 1)} MB (anonymous ${fmt.n(m.rssAnonBytes / 1048576, 1)} MB, file pages ${fmt.n(m.rssFileBytes / 1048576, 1)} MB), heap used ${fmt.n(m.heapUsedBytes / 1048576, 1)} MB of ${fmt.n(m.heapTotalBytes / 1048576, 1)} MB, external ${fmt.n(m.externalBytes / 1048576, 1)} MB`;
    const targets: Target[] = [
      {
        name: 'footprint, one vehicle: idle RSS',
        target: `≤ ${FOOTPRINT_RSS_GOAL_BYTES / 1048576} MB after ${idleSeconds} s idle`,
        value: `${fmt.n(smMem.rssBytes / 1048576, 1)} MB, of which ${fmt.n(smMem.rssFileBytes / 1048576, 1)} MB the node binary's and libraries' file pages (Node with the dependencies alone: ${fmt.n(deps.rssBytes / 1048576, 1)} MB; Node alone: ${fmt.n(bare.rssBytes / 1048576, 1)} MB)`,
        met: smMem.rssBytes <= FOOTPRINT_RSS_GOAL_BYTES,
      },
      {
        name: 'footprint, one vehicle: ready',
        target: `≤ ${FOOTPRINT_READY_GOAL_MS} ms from spawn`,
        value: `${fmt.ms(f.readyMedianMs)} (median of ${starts} starts)`,
        met: f.readyMedianMs <= FOOTPRINT_READY_GOAL_MS,
      },
    ];
    return {
      name: 'footprint',
      figures: f as unknown as Record<string, unknown>,
      table: [
        ['fleet', `${VEHICLE.containers} containers, ${VEHICLE.models} models, ${VEHICLE.packages} packages, ${VEHICLE.nodes} nodes (one vehicle)`],
        ['ready (spawn → /readyz 200)', `median ${fmt.ms(f.readyMedianMs)}; ${readyMs.map((r) => fmt.ms(r)).join(', ')} (the first a cold start)`],
        [`statemanager after ${idleSeconds} s idle`, mem(smMem)],
        ['Node + dependencies only', `${mem(deps)}; loaded in ${fmt.ms(floors[1].loadMs)}`],
        ['Node alone', mem(bare)],
        ['statemanager above the dependencies', `${fmt.n((smMem.rssBytes - deps.rssBytes) / 1048576, 1)} MB RSS, ${fmt.n((smMem.heapUsedBytes - deps.heapUsedBytes) / 1048576, 1)} MB heap used`],
        ['correctness', check.ok ? `ok (${VEHICLE.models} models, ${VEHICLE.packages} packages)` : `FAILED: ${check.mismatches.slice(0, 3).join('; ')}`],
      ],
      targets,
      correctness: { ok: check.ok && first.converged, detail: first.converged ? check.mismatches : ['did not converge', ...check.mismatches] },
    };
  } finally {
    for (const f of floors) await f.stop();
    await sm?.stop();
    await closeEnv(env);
  }
}
