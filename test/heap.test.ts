import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import test from 'ava';
import { MAX_NEW_SPACE_BYTES, youngGrowthFactor } from '../src/process/heap.js';

const run = promisify(execFile);

test('the young generation may double while the doubling stays within the cap, not past it', (t) => {
  const cap = MAX_NEW_SPACE_BYTES;
  t.is(youngGrowthFactor(cap / 2 - 1, cap), 2, 'below');
  t.is(youngGrowthFactor(cap / 2, cap), 2, 'at: the doubling lands on the cap');
  t.is(youngGrowthFactor(cap / 2 + 1, cap), 1, 'past');
  t.is(youngGrowthFactor(cap, cap), 1, 'at the cap');
});

// A busy process (allocating, as a cold start does) with the cap against one left to V8's own
// growth: the capped one's young generation stays near the cap.
const script = (heapUrl: string) => `
  import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
  import { growYoungGenerationWithFleet, startWithSmallYoungGeneration } from '${heapUrl}';
  startWithSmallYoungGeneration();
  const cap = Number(process.argv[1]);
  if (cap > 0) growYoungGenerationWithFleet(0, 20, cap);
  else setFlagsFromString('--semi-space-growth-factor=2');
  let keep = [];
  let max = 0;
  const end = Date.now() + 1500;
  while (Date.now() < end) {
    for (let i = 0; i < 50000; i++) keep.push({ i, s: 'x' + i });
    if (keep.length > 400000) keep = [];
    await new Promise((r) => setImmediate(r));
    max = Math.max(max, getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size);
  }
  console.log(max);
`;

async function youngGenerationMax(cap: number): Promise<number> {
  const heapUrl = pathToFileURL(resolve('src/process/heap.ts')).href;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(heapUrl), String(cap)]);
  return Number(stdout.trim());
}

test('a busy process keeps its young generation near the cap; without it V8 grows it further', async (t) => {
  const capped = await youngGenerationMax(MAX_NEW_SPACE_BYTES);
  const uncapped = await youngGenerationMax(0);
  t.log(`young generation: ${(capped / 2 ** 20).toFixed(1)} MB capped, ${(uncapped / 2 ** 20).toFixed(1)} MB left to V8`);
  t.true(capped > 0);
  // Checks run between scavenges, so the cap can be overshot by a doubling or two (docs/performance.md).
  t.true(capped <= 4 * MAX_NEW_SPACE_BYTES, `capped at ${capped} B`);
  if (uncapped > 4 * MAX_NEW_SPACE_BYTES) t.true(capped < uncapped);
});
