// The harness side of the cold start's client floor (issue 22, item 4; test/bench/client-floor.ts):
// spawn it as a separate Node process, let it do the I/O of statemanager's cold start through
// statemanager's own etcd code (the benchmarked build's dist/), and read its CPU from /proc the
// way statemanager's is read: spawn to done, module loading included.
import { join } from 'node:path';
import { log, monoMs } from './common.js';
import { closeEnv, fmt, freshEtcd, type Ctx, type Env } from './context.js';
import { cpuWindow, etcdPid, waitQuiet } from './cpu.js';
import type { Fleet } from './fleet.js';
import { IpcChild } from './ipc-child.js';
import { spawnTracked } from './procs.js';
import { procSample } from './statemanager.js';

/** The floor writes under this key prefix (a KeyLayout prefix); removed afterwards. */
export const CLIENT_FLOOR_PREFIX = '/bench-client-floor';

export type ClientFloorCommand = { cmd: 'run'; writes: number; timeoutMs: number } | { cmd: 'exit' };

/** What the child reports of itself (its own clocks and process.cpuUsage()). */
export interface ClientFloorReport {
  /** Keys listed, over every prefix statemanager's informers list. */
  listedKeys: number;
  /** Characters of the listed values, each read once as the informers read it to parse it. */
  listedChars: number;
  /** Prefixes listed and watched (statemanager's informers: 9). */
  prefixes: number;
  /** State writes committed through the state store. */
  writes: number;
  /** Writes whose guard did not hold (0 unless something else wrote the scratch keys). */
  notCommitted: number;
  /** Put events of the written state keys seen on the state watches. */
  echoes: number;
  /** Events on the other watches (0 unless something else wrote the fleet meanwhile). */
  otherEvents: number;
  /** Transactions the store sent (counted around the etcd3 client's txn). */
  txns: number;
  /** process.cpuUsage() at the end of each phase, seconds since the process began. */
  cpu: { loaded: number; listed: number; done: number };
  /** performance.now() at the end of each phase (ms since the process began). */
  at: { loaded: number; listed: number; done: number };
}

export interface ClientFloor extends ClientFloorReport {
  /** user + system from /proc/PID/stat, spawn to done (as statemanager's spawn to converged). */
  cpuSeconds: number;
  /** Spawn to done, on the harness's clock. */
  wallSeconds: number;
  /** Peak RSS (VmHWM) at done. */
  peakRssBytes: number;
  /** From the run command to done, in cores: etcd's CPU, and that of every process but the floor, etcd and the harness (a busy machine). */
  etcdShare: number;
  othersShare: number;
}

export interface ClientFloorComparison {
  /** containers + models + packages: the denominator of "CPU per object". */
  objects: number;
  floorPerObjectUs: number;
  statemanagerPerObjectUs: number;
  /** statemanager's CPU ÷ the floor's. */
  ratio: number;
  text: string;
}

/** Per object = CPU ÷ (containers + models + packages), the figure the cold-start target uses. */
export function compareToClientFloor(statemanagerCpuSeconds: number, floor: Pick<ClientFloor, 'cpuSeconds' | 'listedKeys' | 'writes' | 'echoes'>, objects: number): ClientFloorComparison {
  const perObject = (s: number): number => (s / objects) * 1e6;
  const floorPerObjectUs = perObject(floor.cpuSeconds);
  const statemanagerPerObjectUs = perObject(statemanagerCpuSeconds);
  const ratio = statemanagerCpuSeconds / floor.cpuSeconds;
  const text =
    `the same lists (${fmt.n(floor.listedKeys)} keys), ${fmt.n(floor.writes)} guarded writes and their ${fmt.n(floor.echoes)} watch echoes through etcd3 + grpc-js + statemanager's etcd code alone: ` +
    `${floor.cpuSeconds.toFixed(1)} s CPU (${fmt.n(floorPerObjectUs)} µs per object); statemanager ${statemanagerCpuSeconds.toFixed(1)} s (${fmt.n(statemanagerPerObjectUs)} µs) = ` +
    `${Number.isFinite(ratio) ? ratio.toFixed(1) : '?'}× the floor`;
  return { objects, floorPerObjectUs, statemanagerPerObjectUs, ratio, text };
}

/**
 * The client floor on a fresh etcd holding `fleet`, as statemanager's cold start had it: run on
 * the cold start's own etcd after statemanager and the write floor, it took 10.5–10.8 s instead
 * of 3.7 s and 3.5–3.8 s of CPU instead of 2.8 s (etcd slowed by their 400,000 keys written and
 * deleted, docs/performance.md).
 */
export async function clientFloorOnFreshEtcd(ctx: Ctx, fleet: Fleet, writes: number, label: string, timeoutMs: number): Promise<ClientFloor> {
  let env: Env | undefined;
  try {
    env = await freshEtcd(ctx, fleet);
    // Quiet as statemanager's start was (lib/converge.ts): etcd done with the load.
    await waitQuiet({ etcd: etcdPid(env.etcd.dataDir) }, ctx.opts.quick ? 0 : 60_000);
    return await clientFloor({ root: ctx.root, smRoot: ctx.opts.smRoot, env, writes, label, workDir: ctx.workDir, cpuProf: ctx.opts.cpuProf, timeoutMs });
  } finally {
    await closeEnv(env);
  }
}

/**
 * Run the client floor against `env`'s etcd: `writes` state writes (the cold start's count).
 * `root` holds test/bench/client-floor.ts, `smRoot` the build (dist/) whose etcd code it runs.
 */
export async function clientFloor(o: { root: string; smRoot: string; env: Env; writes: number; label: string; workDir: string; cpuProf: boolean; timeoutMs: number }): Promise<ClientFloor> {
  const args = o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${o.workDir}`, `--cpu-prof-name=client-floor-${o.label}.cpuprofile`] : [];
  let spawnedAt = 0;
  // Node strips the types of the one .ts file itself (no tsx: its loader would run for every
  // module the floor loads, which statemanager, plain JavaScript, does not pay).
  const ipc = new IpcChild<ClientFloorCommand>('client floor', () => {
    spawnedAt = monoMs();
    return spawnTracked(process.execPath, [...args, join(o.root, 'test/bench/client-floor.ts')], {
      cwd: o.root,
      env: { ...process.env, BENCH_ETCD: o.env.etcd.endpoint, BENCH_CLIENT_FLOOR_DIST: join(o.smRoot, 'dist') },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
  });
  try {
    await ipc.start();
    const window = cpuWindow({ floor: ipc.pid, etcd: etcdPid(o.env.etcd.dataDir) });
    const report = await ipc.call<ClientFloorReport>({ cmd: 'run', writes: o.writes, timeoutMs: o.timeoutMs }, o.timeoutMs + 10_000);
    const wallSeconds = (monoMs() - spawnedAt) / 1000;
    const p = ipc.pid ? procSample(ipc.pid) : undefined;
    const shares = window.end();
    const floor: ClientFloor = { ...report, cpuSeconds: p?.cpuSeconds ?? NaN, wallSeconds, peakRssBytes: p?.hwmBytes ?? NaN, etcdShare: shares.etcd ?? NaN, othersShare: shares.others };
    log(
      `${o.label}: client floor ${fmt.n(floor.listedKeys)} keys listed, ${fmt.n(floor.writes)} writes, ${fmt.n(floor.echoes)} echoes: ` +
        `${floor.cpuSeconds.toFixed(2)} s CPU (loading ${report.cpu.loaded.toFixed(2)}, lists ${(report.cpu.listed - report.cpu.loaded).toFixed(2)}, writes ${(report.cpu.done - report.cpu.listed).toFixed(2)}), ` +
        `${floor.wallSeconds.toFixed(2)} s wall; etcd ${(floor.etcdShare * 100).toFixed(0)} %, other processes ${(floor.othersShare * 100).toFixed(0)} % of a core`,
    );
    return floor;
  } finally {
    await ipc.stop();
    await o.env.client.delete().prefix(`${CLIENT_FLOOR_PREFIX}/`).exec();
  }
}
