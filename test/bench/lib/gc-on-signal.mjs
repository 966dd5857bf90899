// Preloaded into statemanager by the fleetscale scenario (node --expose-gc --import=…): on
// SIGUSR2, collect all garbage, so the next /metrics scrape's heap used is the live heap.
// Plain JavaScript: statemanager runs from dist/ with plain node. Nothing else is changed.
import process from 'node:process';

process.on('SIGUSR2', () => {
  // Twice: the first collection can leave objects that only its finalizers released.
  globalThis.gc?.();
  globalThis.gc?.();
});
