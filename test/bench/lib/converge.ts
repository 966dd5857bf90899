// Start statemanager against what is in etcd and wait until every model and package state is
// what the rules give — noting when it became ready and when it converged.
import { log, monoMs } from './common.js';
import { type Ctx, type Env, statemanager } from './context.js';
import { expectedStates, readWorld, type Expected, type World } from './oracle.js';
import type { StateManagerProcess } from './statemanager.js';
import { ConvergenceTracker } from './watch.js';
import { cpuWindow, etcdPid, waitQuiet, type CpuShares } from './cpu.js';

export interface ConvergeResult {
  sm: StateManagerProcess;
  readyMs: number;
  convergedMs: number;
  converged: boolean;
  remaining: number;
  stateWrites: number;
  expected: Expected;
  /** CPU from spawn until convergence. */
  cpu: CpuShares;
}

export function storedStatesOf(w: World, prefix = ''): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of w.modelStates) m.set(`${prefix}/model/${k}/state`, v);
  for (const [k, v] of w.packageStates) m.set(`${prefix}/package/${k}/state`, v);
  return m;
}

/**
 * `prev` for the expected states: absent (cold start, the default) or the states stored in
 * `before` (a restart after inputs changed). It reads the fleet from etcd, not from ctx.fleet,
 * so it works for any fleet `env` holds; the time limits grow with the fleet (fleetscale passes
 * larger ones).
 */
export async function startAndConverge(
  ctx: Ctx,
  env: Env,
  label: string,
  o: { before?: World; timeoutMs?: number; readyTimeoutMs?: number; sm?: StateManagerProcess } = {},
): Promise<ConvergeResult> {
  const world = await readWorld(env.client);
  const before = o.before;
  const expected = expectedStates(
    world,
    before
      ? { model: (n) => before.modelStates.get(n), package: (n) => before.packageStates.get(n) }
      : { model: () => undefined, package: () => undefined },
  );
  const tracker = new ConvergenceTracker(env.client, '', expected, storedStatesOf(world));
  await tracker.start(world.revision + 1);
  await waitQuiet({ etcd: etcdPid(env.etcd.dataDir) }, ctx.opts.quick ? 0 : 60_000);
  const sm = o.sm ?? statemanager(ctx, env, label);
  try {
    await sm.start();
    const cpu = cpuWindow({ statemanager: sm.pid, etcd: etcdPid(env.etcd.dataDir) });
    const readyMs = await sm.waitReady(o.readyTimeoutMs ?? 120_000);
    const converged = await tracker.wait(o.timeoutMs ?? 180_000);
    const convergedMs = converged ? tracker.convergedAt - sm.startedAt : NaN;
    const cpuShares = cpu.end();
    log(`${label}: ready after ${readyMs.toFixed(0)} ms, ${converged ? `converged after ${convergedMs.toFixed(0)} ms` : `NOT converged (${tracker.remaining} states wrong)`}, ${tracker.writes} state writes`);
    return { sm, readyMs, convergedMs, converged, remaining: tracker.remaining, stateWrites: tracker.writes, expected, cpu: cpuShares };
  } finally {
    await tracker.stop();
  }
}

export { monoMs };
