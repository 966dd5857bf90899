// The V8 flags that follow from `memory` in the configuration, applied before the caches fill.
import { setFlagsFromString } from 'node:v8';
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
