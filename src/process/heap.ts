// The V8 flags that follow from `memory` in the configuration, applied before the caches fill;
// and a young generation sized to the fleet (issue 22: a small footprint on one vehicle).
import { performance } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import type { Config } from '../config/config.js';

export function heapFlags(memory: Config['memory']): string[] {
  return memory.heapGrowthPercent > 0 ? [`--heap-growing-percent=${memory.heapGrowthPercent}`] : [];
}

/**
 * V8 reads this flag at every full collection, so setting it at start (before the informers
 * list) takes effect for the whole run; measured in docs/performance.md.
 */
export function applyHeapFlags(memory: Config['memory']): void {
  for (const f of heapFlags(memory)) setFlagsFromString(f);
}

/** V8's own factor by which a busy young generation grows, up to 16 MB semi-spaces. */
const YOUNG_GROWTH_DEFAULT = 2;
/**
 * Heap used above which the young generation may grow: statemanager on one vehicle (3 packages,
 * 10 containers) uses 25–30 MB with its garbage; a fleet of 100,000 containers passes this in
 * the first second of its listing.
 */
export const SMALL_HEAP_BYTES = 64 * 1024 * 1024;

/**
 * Keep the young generation at its initial size (1 MB semi-spaces): loading the dependencies
 * and parsing the protos made V8 grow it to its maximum (2 × 16 MB), which an idle process kept
 * resident (docs/performance.md, Footprint). V8 reads the factor at every growth decision, so
 * this must run before the dependencies load: src/main.ts calls it, then imports the rest.
 */
export function startWithSmallYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** A started process whose event loop was this busy for `BUSY_WINDOWS` checks in a row is not idle. */
export const BUSY_UTILIZATION = 0.5;
const BUSY_WINDOWS = 2;
let startedUp = false;

/** Called once the process is ready: from then on a busy event loop lets the young generation grow. */
export function markStartedUp(): void {
  startedUp = true;
}

/**
 * Let the young generation grow again once the heap outgrows a small fleet, or once the started
 * process is busy (event loop ≥ 50 % utilized for 2 checks in a row, 1 s; a start-up does not
 * count): a large fleet or a storm keeps V8's own sizing, an idle vehicle stays small. Checked
 * every `periodMs`, then no more. Returns a stop function.
 */
export function growYoungGenerationWithFleet(thresholdBytes = SMALL_HEAP_BYTES, periodMs = 500): () => void {
  let last = performance.eventLoopUtilization();
  let busy = 0;
  const check = (): boolean => {
    const now = performance.eventLoopUtilization();
    busy = startedUp && performance.eventLoopUtilization(now, last).utilization >= BUSY_UTILIZATION ? busy + 1 : 0;
    last = now;
    if (getHeapStatistics().used_heap_size < thresholdBytes && busy < BUSY_WINDOWS) return false;
    setFlagsFromString(`--semi-space-growth-factor=${YOUNG_GROWTH_DEFAULT}`);
    return true;
  };
  const timer = setInterval(() => {
    if (check()) clearInterval(timer);
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
