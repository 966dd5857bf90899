// 4. cold start: the full fleet is in etcd, statemanager starts; time to ready, time until every
// state is right, peak RSS, idle CPU after. Then the same after a restart with a share of the
// containers changed while it was down.
import type { ChangesResult } from '../generator.js';
import { log, sleep } from '../lib/common.js';
import { closeEnv, fmt, freshEtcd, generator, type Ctx, type Env, type ScenarioResult, type Target } from '../lib/context.js';
import { startAndConverge, type ConvergeResult } from '../lib/converge.js';
import type { GeneratorProcess } from '../lib/generator-client.js';
import { readWorld, verify } from '../lib/oracle.js';
import type { StateManagerProcess } from '../lib/statemanager.js';
import { formatShares, type CpuShares } from '../lib/cpu.js';
import { compareToFloor, FLOOR_SHARE_GOAL, writeFloor } from '../lib/floor.js';

interface StartFigures {
  readyMs: number;
  convergedMs: number;
  converged: boolean;
  stateWrites: number;
  peakRssBytes: number;
  cpuSecondsToConverge: number;
  idleCpuCoreFraction: number;
  /** ActionController calls statemanager made in the idle window (reconcile repeats fall due in it). */
  idleAcCalls: number;
  cpu: CpuShares;
}

async function idleCpu(sm: StateManagerProcess, seconds: number, acCalls: () => number): Promise<{ fraction: number; acCalls: number }> {
  // V8's memory reducer runs a few full GCs in the seconds after a burst: let it finish.
  await sleep(seconds * 1000);
  const a = sm.proc();
  const callsBefore = acCalls();
  await sleep(seconds * 1000);
  const b = sm.proc();
  return { fraction: a && b ? (b.cpuSeconds - a.cpuSeconds) / seconds : NaN, acCalls: acCalls() - callsBefore };
}

async function measure(conv: ConvergeResult, idleSeconds: number, acCalls: () => number): Promise<StartFigures> {
  const p = conv.sm.proc();
  const peak = p?.hwmBytes ?? NaN;
  const cpu = p?.cpuSeconds ?? NaN;
  const idle = await idleCpu(conv.sm, idleSeconds, acCalls);
  return {
    readyMs: conv.readyMs,
    convergedMs: conv.convergedMs,
    converged: conv.converged,
    stateWrites: conv.stateWrites,
    peakRssBytes: peak,
    cpuSecondsToConverge: cpu,
    idleCpuCoreFraction: idle.fraction,
    idleAcCalls: idle.acCalls,
    cpu: conv.cpu,
  };
}

export async function coldstart(ctx: Ctx): Promise<ScenarioResult> {
  let env: Env | undefined;
  let gen: GeneratorProcess | undefined;
  let sm: StateManagerProcess | undefined;
  try {
    env = await freshEtcd(ctx);
    const idleSeconds = ctx.opts.quick ? 1 : 5;
    const first = await startAndConverge(ctx, env, 'coldstart');
    sm = first.sm;
    const acCalls = (): number => ctx.ac.calls.length;
    const cold = await measure(first, idleSeconds, acCalls);
    const check1 = await verify(env.client, first.expected);

    // Restart with containers changed while statemanager was down.
    await sm.stop();
    sm = undefined;
    const before = await readWorld(env.client);
    gen = await generator(ctx, env);
    const ch = await gen.call<ChangesResult>({ cmd: 'changes', fraction: ctx.opts.restartFraction, concurrency: 64 }, 300_000);
    await gen.stop();
    gen = undefined;
    log(`coldstart: changed ${fmt.n(ch.puts)} containers while statemanager was down (${ch.seconds.toFixed(1)} s)`);
    const second = await startAndConverge(ctx, env, 'restart', { before });
    sm = second.sm;
    const warm = await measure(second, idleSeconds, acCalls);
    const check2 = await verify(env.client, second.expected);

    const floor = await writeFloor(env, cold.stateWrites, 'coldstart');
    const vsFloor = compareToFloor(cold.stateWrites, cold.convergedMs, floor);
    const ok = check1.ok && check2.ok;
    const row = (f: StartFigures): string =>
      `ready ${fmt.ms(f.readyMs)}, converged ${f.converged ? fmt.ms(f.convergedMs) : 'NO'}, ${fmt.n(f.stateWrites)} state writes, peak RSS ${fmt.mb(f.peakRssBytes)}, CPU ${f.cpuSecondsToConverge.toFixed(1)} s, idle CPU ${fmt.pct(f.idleCpuCoreFraction)} of a core${idleCalls(f)}`;
    const table: [string, string][] = [
      ['cold start', row(cold)],
      [`restart, ${fmt.pct(ctx.opts.restartFraction)} changed`, row(warm)],
      [
        'etcd floor for those writes',
        `${fmt.n(floor.writes)} state + history puts in transactions of ${floor.perTxn} (etcd's --max-txn-ops 128), ${floor.inFlight} in flight: ${fmt.s(floor.seconds)}; statemanager's cold start, spawn to converged: ${vsFloor.text} (${(cold.convergedMs / 1000 / floor.seconds).toFixed(1)}× the floor's time)`,
      ],
      ['CPU until converged (cold)', formatShares(cold.cpu)],
      ['CPU until converged (restart)', formatShares(warm.cpu)],
      [
        'correctness',
        ok ? `ok (${check1.checked.models} models, ${check1.checked.packages} packages, exact)` : `FAILED: cold ${check1.mismatchCount} wrong, restart ${check2.mismatchCount} wrong`,
      ],
    ];
    const targets: Target[] = [];
    for (const [label, f] of [['cold start', cold], ['restart', warm]] as const) {
      const worst = Math.max(f.readyMs, f.convergedMs);
      targets.push({ name: `${label}: ready and converged`, target: '≤ 10 s', value: f.converged ? fmt.s(worst / 1000) : 'not converged', met: f.converged && worst <= 10_000 });
      targets.push({ name: `${label}: peak RSS`, target: '≤ 400 MB', value: fmt.mb(f.peakRssBytes), met: f.peakRssBytes <= 400 * 1024 * 1024 });
      targets.push({ name: `${label}: idle CPU after convergence`, target: 'near zero (< 2 % of a core)', value: `${fmt.pct(f.idleCpuCoreFraction)}${idleCalls(f)}`, met: f.idleCpuCoreFraction < 0.02 });
    }
    // Issue 13 asks more of the large fleet's cold start than issue 3's 10 s: converged in 4 s,
    // writing at etcd's pace (≥ 80 % of the floor's rate, see lib/floor.ts).
    targets.push({ name: 'cold start (large fleet): converged', target: '≤ 4 s', value: cold.converged ? fmt.s(cold.convergedMs / 1000) : 'not converged', met: cold.converged && cold.convergedMs <= 4_000 });
    targets.push({
      name: 'cold start: state writes/s vs etcd floor',
      target: `≥ ${(FLOOR_SHARE_GOAL * 100).toFixed(0)} % of the floor`,
      value: vsFloor.text,
      met: cold.converged && vsFloor.share >= FLOOR_SHARE_GOAL,
    });
    return {
      name: 'coldstart',
      figures: { cold, restart: warm, changedContainers: ch.puts, fleetLoadSeconds: env.loadSeconds, etcdFloor: floor, vsFloor },
      table,
      targets,
      correctness: { ok, detail: [...check1.mismatches, ...check2.mismatches] },
    };
  } finally {
    await gen?.stop();
    await sm?.stop();
    await closeEnv(env);
  }
}

/** " (40 ActionController calls in the window: …)" after the idle CPU when reconcile repeats fell due in it, else nothing. */
function idleCalls(f: StartFigures): string {
  return f.idleAcCalls > 0 ? ` (${fmt.n(f.idleAcCalls)} ActionController calls in the window: reconcile repeats)` : '';
}
