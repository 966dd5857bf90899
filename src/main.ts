// statemanager's entry point (node dist/src/main.js). It sizes V8's young generation before
// anything else loads (src/process/heap.ts: statically imported dependencies would load first), then
// loads the process itself (src/statemanager.ts).
import { startWithSmallYoungGeneration } from './process/heap.js';

startWithSmallYoungGeneration();
await import('./statemanager.js');
