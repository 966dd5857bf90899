// A reader in a process of its own (so that the flood's clients do not slow its own event loop):
// GetResourceState every 50 ms against argv[2] for argv[3]/argv[4], until stdin says "stop"; then
// prints [ms since start, latency ms] pairs as one JSON line.
import { DraftClient } from '../helpers/draft-client.js';

const [target, type, name] = process.argv.slice(2) as [string, string, string];
const client = new DraftClient(target);
const latencies: [number, number][] = [];
const start = performance.now();
let stopping = false;
process.stdin.on('data', () => (stopping = true));
while (!stopping) {
  const t0 = performance.now();
  const a = await client.getState(type, name);
  latencies.push([t0 - start, performance.now() - t0]);
  if (!a.success) throw new Error(a.message);
  await new Promise((r) => setTimeout(r, 50));
}
process.stdout.write(JSON.stringify(latencies) + '\n');
client.close();
process.exit(0);
