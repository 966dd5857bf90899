// The V8 flags that follow from `memory` in the configuration, applied before the caches fill;
// and a young generation sized to the fleet (issue 22: a small footprint on one vehicle).
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import type { Config } from './config.js';

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

/**
 * Let the young generation grow again once the heap outgrows a small fleet (checked every
 * `periodMs`, then no more): a large fleet keeps V8's own sizing, a vehicle stays small.
 * Returns a stop function.
 */
export function growYoungGenerationWithFleet(thresholdBytes = SMALL_HEAP_BYTES, periodMs = 500): () => void {
  const check = (): boolean => {
    if (getHeapStatistics().used_heap_size < thresholdBytes) return false;
    setFlagsFromString(`--semi-space-growth-factor=${YOUNG_GROWTH_DEFAULT}`);
    return true;
  };
  if (check()) return () => undefined;
  const timer = setInterval(() => {
    if (check()) clearInterval(timer);
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
