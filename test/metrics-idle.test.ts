// The default Node.js series: their event-loop lag sampler must not keep an idle statemanager
// awake (prom-client's 10 ms default woke it 100 times a second), and must still see a stall.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { EVENT_LOOP_SAMPLE_MS } from '../src/observability/metrics.js';

const run = promisify(execFile);

// A process with the metrics registry, idle for a second, then stalled for `stallMs`: its main
// thread's voluntary context switches while idle, and the lag the registry recorded.
const script = (metricsUrl: string) => `
  import { readFileSync } from 'node:fs';
  import { Metrics } from '${metricsUrl}';
  const stallMs = Number(process.argv[1]);
  const switches = () => Number(/voluntary_ctxt_switches:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
  const m = new Metrics();
  await new Promise((r) => setTimeout(r, 300));
  const before = switches();
  await new Promise((r) => setTimeout(r, 1000));
  const idle = switches() - before;
  await m.registry.resetMetrics();
  const end = Date.now() + stallMs;
  while (Date.now() < end);
  await new Promise((r) => setTimeout(r, 2 * ${EVENT_LOOP_SAMPLE_MS}));
  const text = await m.registry.metrics();
  const max = Number(/^nodejs_eventloop_lag_max_seconds (\\S+)/m.exec(text)?.[1]);
  console.log(idle, max);
`;

async function sample(stallMs: number): Promise<{ idleSwitches: number; lagMaxMs: number }> {
  const metricsUrl = pathToFileURL(resolve('src/observability/metrics.ts')).href;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(metricsUrl), String(stallMs)]);
  const [idleSwitches = NaN, lagMax = NaN] = stdout.trim().split(' ').map(Number);
  return { idleSwitches, lagMaxMs: lagMax * 1000 };
}

const linux = (() => {
  try {
    return readFileSync('/proc/self/status', 'utf8').includes('voluntary_ctxt_switches');
  } catch {
    return false;
  }
})();

test('an idle process with the metrics registry wakes about once per lag sample, not 100 times a second', async (t) => {
  if (!linux) return t.pass('needs /proc/self/status');
  const { idleSwitches } = await sample(0);
  t.log(`${idleSwitches} voluntary context switches in 1 s idle (lag sampled every ${EVENT_LOOP_SAMPLE_MS} ms)`);
  // 10 samples a second, and room for the odd GC task or timer; prom-client's default made about 100.
  t.true(idleSwitches <= 30, `${idleSwitches} wake-ups in 1 s`);
});

test('a stall below, at and past the lag sampling interval is seen as at least itself, an idle loop as about the interval', async (t) => {
  const idle = (await sample(0)).lagMaxMs;
  t.log(`no stall: nodejs_eventloop_lag_max_seconds ${idle.toFixed(1)} ms`);
  t.true(idle < 2 * EVENT_LOOP_SAMPLE_MS, `idle seen as ${idle} ms`);
  for (const stallMs of [EVENT_LOOP_SAMPLE_MS / 2, EVENT_LOOP_SAMPLE_MS, 3 * EVENT_LOOP_SAMPLE_MS]) {
    const { lagMaxMs } = await sample(stallMs);
    t.log(`stall ${stallMs} ms: nodejs_eventloop_lag_max_seconds ${lagMaxMs.toFixed(1)} ms`);
    t.true(lagMaxMs >= stallMs, `stall ${stallMs} ms seen as ${lagMaxMs} ms`);
  }
});
