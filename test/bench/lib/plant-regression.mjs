// Test-only: a regression planted into the benchmark's statemanager, to show that the regression
// gate (lib/regression.ts) fails the run. Preloaded (node --import=…) when BENCH_PLANT_REGRESSION
// is set: `alloc` keeps 48 MB of objects alive for the process's life; `delay` blocks the event
// loop 4 ms out of every 10. statemanager itself is not changed.
import process from 'node:process';
import { setInterval } from 'node:timers';

const kind = process.env.BENCH_PLANT_REGRESSION ?? '';
if (kind.includes('alloc')) {
  const kept = [];
  for (let i = 0; i < 48 * 1024; i++) kept.push(new Array(128).fill(i)); // about 48 MB of heap
  globalThis.__plantedRegression = kept;
}
if (kind.includes('delay')) {
  setInterval(() => {
    const end = Date.now() + 4;
    while (Date.now() < end);
  }, 10).unref();
}
