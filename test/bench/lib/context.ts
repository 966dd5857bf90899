// What every scenario gets: the options of the run, the fleet, a fake ActionController, and a
// way to bring up a fresh etcd holding the fleet.
import type { Etcd3 } from 'etcd3';
import { join } from 'node:path';
import type { FakeActionController } from '../../helpers/action-controller.js';
import { startEtcd, type EtcdServer } from '../../helpers/etcd.js';
import { log, monoMs } from './common.js';
import { client, loadFleet } from './etcdio.js';
import type { Fleet, FleetShape } from './fleet.js';
import { GeneratorProcess } from './generator-client.js';
import { StateManagerProcess } from './statemanager.js';

export interface RunOptions {
  quick: boolean;
  shape: FleetShape;
  ceilingLevels: number[];
  ceilingSeconds: number;
  stormSeconds: number;
  /** In-flight puts of the storm generator; 0 = the best level of the ceiling sweep. */
  stormConcurrency: number;
  latencyRates: (number | 'half-ceiling')[];
  latencySeconds: number;
  /** latency: also measure the two-hop relay floor at the same rates (default on; --no-relay). */
  relay: boolean;
  /** storm: then the generator alone and with a do-nothing controller on the same etcd (default on; --no-storm-floor). */
  stormFloor: boolean;
  restartFraction: number;
  baselineStormSeconds: number;
  /** Container counts the fleetscale scenario cold-starts, one fresh etcd each. */
  fleetSizes: number[];
  /** fleetscale: also the two cold starts that measure memory per container and per model (default true). */
  fleetMemoryRuns: boolean;
  /** fleetscale: also the client floor of the cold start (lib/client-floor.ts; default true, --no-client-floor). */
  clientFloor: boolean;
  /** Nodes of every fleetscale fleet (the shape has 50). */
  fleetNodes: number;
  /** Also write the fleetscale plot here (it always goes into the run's directory). */
  plotFile?: string;
  cpuProf: boolean;
  /** Extra statemanager configuration (YAML lines). */
  smConfig: string;
  /** The checkout whose dist/src/main.js is benchmarked. */
  smRoot: string;
}

export interface Target {
  name: string;
  target: string;
  value: string;
  met: boolean | null;
}

export interface ScenarioResult {
  name: string;
  figures: Record<string, unknown>;
  /** Rows printed as the scenario's table. */
  table: [string, string][];
  targets: Target[];
  correctness: { ok: boolean; detail: string[] } | null;
}

export interface Ctx {
  root: string;
  workDir: string;
  opts: RunOptions;
  fleet: Fleet;
  ac: FakeActionController;
  /** Filled by the ceiling scenario: the best level, and every level it measured. */
  ceiling?: { rate: number; concurrency: number; levels?: { concurrency: number; rate: number }[] };
  /** Filled by the storm scenario. */
  stormProcessedPerSecond?: number;
}

export interface Env {
  etcd: EtcdServer;
  client: Etcd3;
  loadedRevision: number;
  loadSeconds: number;
}

/** A new etcd holding `fleet` (the run's fleet unless another is given, as fleetscale does). */
export async function freshEtcd(ctx: Ctx, fleet: Fleet = ctx.fleet): Promise<Env> {
  const etcd = await startEtcd();
  const c = client(etcd.endpoint);
  const t = monoMs();
  const loadedRevision = await loadFleet(c, fleet);
  const loadSeconds = (monoMs() - t) / 1000;
  log(`etcd at ${etcd.endpoint}, fleet loaded in ${loadSeconds.toFixed(1)} s (revision ${loadedRevision})`);
  return { etcd, client: c, loadedRevision, loadSeconds };
}

export async function closeEnv(env: Env | undefined): Promise<void> {
  if (!env) return;
  env.client.close();
  await env.etcd.stop();
}

export function statemanager(ctx: Ctx, env: Env, label: string, nodeArgs: string[] = []): StateManagerProcess {
  return new StateManagerProcess({
    root: ctx.opts.smRoot,
    etcdEndpoint: env.etcd.endpoint,
    actionControllerAddr: ctx.ac.addr,
    workDir: join(ctx.workDir),
    cpuProf: ctx.opts.cpuProf,
    label,
    extraConfig: ctx.opts.smConfig,
    nodeArgs,
  });
}

export async function generator(ctx: Ctx, env: Env): Promise<GeneratorProcess> {
  const g = new GeneratorProcess(ctx.root, env.etcd.endpoint, ctx.opts.shape);
  await g.start();
  return g;
}

export const fmt = {
  n: (v: number, d = 0): string => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }) : String(v)),
  ms: (v: number): string => (Number.isFinite(v) ? `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ms` : String(v)),
  s: (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)} s` : String(v)),
  mb: (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(0)} MB` : String(bytes)),
  pct: (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(1)} %` : String(v)),
};
