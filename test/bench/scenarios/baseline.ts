// 5. baseline: the storm against the deliberately simple comparison controller
// (test/bench/baseline.ts), in its own process on a fresh etcd holding the same fleet with its
// states already correct. The generator runs the same storm (same mix, same concurrency) for a
// shorter time, then the baseline works through its backlog; its sustained throughput is the
// events it processed over the time from the first put to the last event processed.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { StormResult } from '../generator.js';
import { log, monoMs, sleep, waitFor } from '../lib/common.js';
import { closeEnv, fmt, freshEtcd, generator, type Ctx, type Env, type ScenarioResult, type Target } from '../lib/context.js';
import { bulkPut, currentRevision } from '../lib/etcdio.js';
import type { GeneratorProcess } from '../lib/generator-client.js';
import { expectedStates, readWorld, verify, ABSENT } from '../lib/oracle.js';
import { spawnTracked, stopChild } from '../lib/procs.js';
import { cpuWindow, etcdPid, formatShares, waitQuiet } from '../lib/cpu.js';

interface Progress {
  processed: number;
  lastRev: number;
  backlog: number;
  errors: number;
  t: number;
}

export async function baseline(ctx: Ctx): Promise<ScenarioResult> {
  let env: Env | undefined;
  let gen: GeneratorProcess | undefined;
  let child: ChildProcess | undefined;
  try {
    env = await freshEtcd(ctx);
    // Start from correct states, as statemanager would have left them.
    const world = await readWorld(env.client);
    const exp = expectedStates(world, ABSENT);
    const states: [string, string][] = [];
    for (const [m, s] of exp.models) states.push([`/model/${m}/state`, s]);
    for (const [p, s] of exp.packages) states.push([`/package/${p}/state`, s]);
    await bulkPut(env.client, states);

    const from = (await currentRevision(env.client)) + 1;
    const progress: Progress = { processed: 0, lastRev: 0, backlog: 0, errors: 0, t: 0 };
    let ready = false;
    child = spawnTracked(process.execPath, ['--import', 'tsx', join(ctx.root, 'test/bench/baseline.ts')], {
      cwd: ctx.root,
      env: { ...process.env, BENCH_ETCD: env.etcd.endpoint, BENCH_FROM_REV: String(from), BENCH_MAX_SECONDS: '1800' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let done: { rev: number; resolve: () => void } | undefined;
    child.on('message', (m: Partial<Progress> & { ready?: boolean }) => {
      if (m.ready) ready = true;
      if (m.processed !== undefined) {
        Object.assign(progress, m, { t: monoMs() });
        if (done && progress.lastRev >= done.rev) done.resolve();
      }
    });
    if (!(await waitFor(() => ready, 30_000))) throw new Error('baseline controller did not start');
    gen = await generator(ctx, env);
    await sleep(300);
    const concurrency = ctx.opts.stormConcurrency || ctx.ceiling?.concurrency || 64;
    const seconds = ctx.opts.baselineStormSeconds;
    log(`baseline: storm of ${seconds} s at ${concurrency} in flight against the comparison controller`);
    await waitQuiet({ baseline: child.pid, etcd: etcdPid(env.etcd.dataDir), generator: gen.pid }, ctx.opts.quick ? 0 : 60_000);
    const cpu = cpuWindow({ baseline: child.pid, etcd: etcdPid(env.etcd.dataDir), generator: gen.pid });
    const res = await gen.call<StormResult>({ cmd: 'storm', concurrency, seconds, maxPuts: seconds * 40_000 }, (seconds + 60) * 1000);
    const cpuStorm = cpu.end();
    const cpuDrain = cpuWindow({ baseline: child.pid, etcd: etcdPid(env.etcd.dataDir) });
    await gen.stop();
    gen = undefined;
    let lastRev = 0;
    for (const r of res.rev) if (r > lastRev) lastRev = r;
    const capSeconds = Math.max(60, res.puts / 20);
    log(`baseline: ${fmt.n(res.puts)} puts written in ${((res.t1 - res.t0) / 1000).toFixed(1)} s; waiting (at most ${capSeconds.toFixed(0)} s) for the baseline to work through them`);
    const drained = await new Promise<boolean>((resolve) => {
      if (progress.lastRev >= lastRev) return resolve(true);
      const timer = setTimeout(() => resolve(false), capSeconds * 1000);
      done = {
        rev: lastRev,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
    });
    const tDone = progress.t;
    const cpuDrainShares = cpuDrain.end();
    const elapsed = (tDone - res.t0) / 1000;
    const throughput = drained ? res.puts / elapsed : progress.processed / ((monoMs() - res.t0) / 1000);
    const check = await verify(env.client);
    const sm = ctx.stormProcessedPerSecond;
    const ratio = sm !== undefined ? sm / throughput : NaN;
    const table: [string, string][] = [
      ['generator', `${fmt.n(res.puts)} puts in ${fmt.s((res.t1 - res.t0) / 1000)} = ${fmt.n(res.puts / ((res.t1 - res.t0) / 1000))} puts/s at ${concurrency} in flight`],
      [
        'baseline throughput',
        drained
          ? `${fmt.n(throughput)} events/s (all ${fmt.n(res.puts)} processed ${fmt.s(elapsed)} after the first put; ${progress.errors} errors)`
          : `${fmt.n(throughput)} events/s — NOT drained within ${capSeconds.toFixed(0)} s (${fmt.n(progress.processed)} of ${fmt.n(res.puts)})`,
      ],
      ['CPU while the generator ran', formatShares(cpuStorm)],
      ['CPU while the baseline caught up', formatShares(cpuDrainShares)],
      ['statemanager (storm scenario)', sm !== undefined ? `${fmt.n(sm)} events/s` : 'storm not run'],
      ['statemanager / baseline', Number.isFinite(ratio) ? `${ratio.toFixed(1)}×` : 'n/a'],
      ['baseline correctness', check.ok ? `ok (${check.checked.models} models, ${check.checked.packages} packages)` : `FAILED: ${check.mismatchCount} wrong`],
    ];
    const targets: Target[] = [
      { name: 'baseline: statemanager ≥ 10× the comparison controller', target: '≥ 10×', value: Number.isFinite(ratio) ? `${ratio.toFixed(1)}×` : 'n/a', met: Number.isFinite(ratio) ? ratio >= 10 : null },
      { name: 'baseline: comparison controller drained with correct states', target: 'correct', value: drained && check.ok ? 'correct' : drained ? 'wrong states' : 'not drained', met: drained && check.ok },
    ];
    return {
      name: 'baseline',
      figures: { puts: res.puts, stormSeconds: (res.t1 - res.t0) / 1000, concurrency, drained, elapsedSeconds: elapsed, throughput, statemanagerThroughput: sm, ratio, errors: progress.errors, cpuStorm, cpuDrain: cpuDrainShares },
      table,
      targets,
      // The oracle judges the baseline too; only a drained baseline can be judged.
      correctness: drained ? { ok: check.ok, detail: check.mismatches } : null,
    };
  } finally {
    await gen?.stop();
    if (child) await stopChild(child, 'SIGTERM', 3000);
    await closeEnv(env);
  }
}
