// The regression gate's arithmetic (lib/regression.ts): tolerances from a spread, verdicts in both
// directions, figures a run did not measure, and rewriting values while keeping tolerances.
import test from 'ava';
import { compare, derive, figuresOf, limitOf, updatedBaseline, type Baseline } from './lib/regression.js';

const baseline = (figures: Baseline['figures']): Baseline => ({ kind: 'quick', why: 'test', node: 'v0', updatedAt: '', figures });

test('the tolerance is 1.5 × the widest max ÷ min of the runs, never under 15 %; the value is the median', (t) => {
  const d = derive([{ footprintRssMB: 100 }, { footprintRssMB: 120 }, { footprintRssMB: 110 }, { heapPerModel: 900 }, { heapPerModel: 901 }]);
  t.is(d.footprintRssMB!.value, 110);
  t.is(d.footprintRssMB!.tolerance, 0.3);
  t.is(d.heapPerModel!.tolerance, 0.15);
  t.is(d.latencyVsFloor1000, undefined, 'a figure with fewer than two runs gets no entry');
});

test('lower-is-better fails above value × (1 + tolerance), higher-is-better below value ÷ (1 + tolerance)', (t) => {
  const b = baseline({
    footprintRssMB: { label: 'rss', better: 'lower', unit: 'MB', value: 100, tolerance: 0.2 },
    stormVsCeiling: { label: 'storm', better: 'higher', unit: '', value: 0.6, tolerance: 0.5 },
  });
  t.is(limitOf(b.figures.footprintRssMB!), 120);
  t.true(Math.abs(limitOf(b.figures.stormVsCeiling!) - 0.4) < 1e-9);
  const worse = (f: Record<string, number>): string[] => compare(b, f).filter((v) => v.worse).map((v) => v.key);
  t.deepEqual(worse({ footprintRssMB: 119.9, stormVsCeiling: 0.41 }), []);
  t.deepEqual(worse({ footprintRssMB: 120.1, stormVsCeiling: 0.39 }), ['footprintRssMB', 'stormVsCeiling']);
  t.deepEqual(worse({ footprintRssMB: 50, stormVsCeiling: 2 }), [], 'better is never a failure');
  t.deepEqual(worse({}), [], 'a figure the run did not measure is not judged');
  t.regex(compare(b, {})[0]!.text, /not measured/);
});

test('figures come from the scenarios that ran; --update-baseline keeps the tolerances', (t) => {
  const f = figuresOf([
    { name: 'footprint', figures: { statemanager: { rssBytes: 90 * 1048576, heapUsedBytes: 20 * 1048576 }, readyMedianMs: 600, deps: { loadMs: 300 } } },
    { name: 'latency', figures: { rates: [{ rate: 1000, endToEnd: { p99: 60 }, floor: { p99: 20 } }] } },
  ]);
  t.deepEqual(f, { latencyVsFloor1000: 3, footprintRssMB: 90, footprintHeapMB: 20, footprintReadyVsDepsLoad: 2 });
  const old = baseline({ footprintRssMB: { label: 'rss', better: 'lower', unit: 'MB', value: 100, tolerance: 0.2, spread: [99, 101] }, heapPerModel: { label: 'm', better: 'lower', unit: 'B', value: 900, tolerance: 0.3 } });
  const u = updatedBaseline(old, f, 'v24', 'why');
  t.is(u.figures.footprintRssMB!.value, 90);
  t.is(u.figures.footprintRssMB!.tolerance, 0.2);
  t.deepEqual(u.figures.heapPerModel, old.figures.heapPerModel, 'a figure this run did not measure is kept');
  t.is(u.why, 'why');
});
