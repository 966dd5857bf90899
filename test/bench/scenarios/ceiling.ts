// 1. ceiling: container puts per second etcd accepts from the generator alone, by concurrency.
import type { CeilingLevel } from '../generator.js';
import { closeEnv, fmt, freshEtcd, generator, type Ctx, type Env, type ScenarioResult } from '../lib/context.js';
import type { GeneratorProcess } from '../lib/generator-client.js';
import { etcdPid, waitQuiet } from '../lib/cpu.js';

export async function ceiling(ctx: Ctx): Promise<ScenarioResult> {
  let env: Env | undefined;
  let gen: GeneratorProcess | undefined;
  try {
    env = await freshEtcd(ctx);
    gen = await generator(ctx, env);
    const { ceilingLevels: levels, ceilingSeconds: seconds } = ctx.opts;
    const res: CeilingLevel[] = [];
    for (const level of levels) {
      // One level at a time, each on a quiet machine (other work may share it).
      await waitQuiet({ etcd: etcdPid(env.etcd.dataDir), generator: gen.pid }, ctx.opts.quick ? 0 : 60_000);
      res.push(...(await gen.call<CeilingLevel[]>({ cmd: 'ceiling', levels: [level], seconds }, (seconds + 35) * 1000)));
    }
    const best = res.reduce((a, b) => (b.rate > a.rate ? b : a));
    // Every level, so the storm can compare with etcd alone at the storm's own concurrency.
    ctx.ceiling = { rate: best.rate, concurrency: best.concurrency, levels: res.map((l) => ({ concurrency: l.concurrency, rate: l.rate })) };
    const table: [string, string][] = res.map((l) => [
      `${l.concurrency} in flight`,
      `${fmt.n(l.rate)} puts/s (put latency p50 ${fmt.ms(l.latencyP50)}, p99 ${fmt.ms(l.latencyP99)}${l.errors ? `, ${l.errors} errors` : ''})`,
    ]);
    table.push(['ceiling', `${fmt.n(best.rate)} puts/s at ${best.concurrency} in flight`]);
    return {
      name: 'ceiling',
      figures: { levels: res, ceiling: best.rate, bestConcurrency: best.concurrency, fleetLoadSeconds: env.loadSeconds },
      table,
      targets: [],
      correctness: null,
    };
  } finally {
    await gen?.stop();
    await closeEnv(env);
  }
}
