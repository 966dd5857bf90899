// Preloaded into statemanager by the fleetscale scenario (node --expose-gc --import=…): on
// SIGUSR2, collect all garbage, so the next /metrics scrape's heap used is the live heap.
// Plain JavaScript: statemanager runs from dist/ with plain node. Nothing else is changed.
import { renameSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import v8 from 'node:v8';

process.on('SIGUSR2', () => {
  // Twice: the first collection can leave objects that only its finalizers released.
  globalThis.gc?.();
  globalThis.gc?.();
  // Heap used read here, right after the collection: a /metrics scrape 500 ms later also counted
  // what the idle process allocated meanwhile (timers, keepalives), which moved the difference
  // between two small fleets by about 130 KB from run to run.
  const out = process.env.BENCH_GC_REPORT;
  if (!out) return;
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]));
  writeFileSync(`${out}.tmp`, JSON.stringify({ usedHeapSize: v8.getHeapStatistics().used_heap_size, spaces }));
  renameSync(`${out}.tmp`, out);
});
