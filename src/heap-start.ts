// Imported first by src/main.ts, so it runs before any dependency loads (see heap.ts).
import { startWithSmallYoungGeneration } from './heap.js';

startWithSmallYoungGeneration();
