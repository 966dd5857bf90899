// The client floor's figures (test/bench/lib/client-floor.ts): CPU per object over containers +
// models + packages, statemanager's CPU over the floor's, and the --no-client-floor switch.
import test from 'ava';
import { compareToClientFloor } from './lib/client-floor.js';

const floor = { cpuSeconds: 3.5, listedKeys: 150_050, writes: 98_143, echoes: 98_143 };

test('per object is CPU over containers + models + packages, in µs', (t) => {
  const c = compareToClientFloor(8.75, floor, 175_000);
  t.is(c.objects, 175_000);
  t.is(c.floorPerObjectUs, 20);
  t.is(c.statemanagerPerObjectUs, 50);
  t.is(c.ratio, 2.5);
});

test('the row names the lists, the writes, the echoes, both CPUs and the ratio', (t) => {
  const { text } = compareToClientFloor(8.75, floor, 175_000);
  t.regex(text, /^the same lists \(150,050 keys\), 98,143 guarded writes and their 98,143 watch echoes/);
  t.regex(text, /: 3\.5 s CPU \(20 µs per object\); statemanager 8\.8 s \(50 µs\) = 2\.5× the floor$/);
});

test('no CPU figure for statemanager gives no ratio, not a number in the row', (t) => {
  const c = compareToClientFloor(NaN, floor, 175_000);
  t.true(Number.isNaN(c.ratio));
  t.regex(c.text, /= \?× the floor$/);
});
