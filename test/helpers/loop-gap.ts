// How long the event loop was held: the largest gap between ticks of a short interval timer while
// some work goes on (a timed assertion on the loop, never on the work's own speed).
import { performance } from 'node:perf_hooks';

/** The largest gap, in ms, between `tickMs` ticks while `run` goes on (and up to its end). */
export async function largestLoopGap(run: () => Promise<unknown>, tickMs = 5): Promise<number> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, tickMs);
  try {
    await run();
  } finally {
    clearInterval(timer);
  }
  return Math.max(worst, performance.now() - last);
}
