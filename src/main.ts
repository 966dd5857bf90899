// statemanager's entry point (node dist/src/main.js). Before anything else loads it sizes V8's young
// generation and holds off its optimizing compilers (src/process/heap.ts, optimizers.ts: statically
// imported dependencies would load first), then loads the process itself (src/statemanager.ts).
import { handleStopSignals } from './process/stop-signals.js';
import { startWithSmallYoungGeneration } from './process/heap.js';
import { holdOptimizingCompilers } from './process/optimizers.js';

const signals = handleStopSignals();
startWithSmallYoungGeneration();
const optimizers = holdOptimizingCompilers();
const { runStateManager } = await import('./statemanager.js');
runStateManager(optimizers, signals);
