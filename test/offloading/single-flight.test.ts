// Identical calls share one execution while a caller of it still waits: below, at and past the
// latest caller's deadline; the execution's own callers counted; a newer one not forgotten with an older.
import test from 'ava';
import { SingleFlight } from '../../src/offloading/single-flight.js';

/** Every promise reaction queued so far has run. */
const settled = () => new Promise((r) => setImmediate(r));

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test("a call joins while a caller still waits (below its deadline); at the deadline and past it a new execution starts; each execution counts its own callers", async (t) => {
  let clock = 1000;
  const flights = new SingleFlight<string>(() => clock);
  const first = deferred<string>();
  const runs: (() => number)[] = [];
  const run = (p: Promise<string>) => (callers: () => number) => {
    runs.push(callers);
    return p;
  };
  const a = flights.do('k', run(first.promise), 2000);
  t.false(a.shared);
  clock = 1999;
  const b = flights.do('k', run(Promise.resolve('never run')), 1500); // an earlier deadline keeps the latest
  t.true(b.shared, 'below the deadline: joined');
  clock = 2000;
  const second = deferred<string>();
  const c = flights.do('k', run(second.promise), 5000);
  t.false(c.shared, 'at the deadline: a new execution');
  clock = 2001;
  const d = flights.do('k', run(Promise.resolve('never run')), 6000);
  t.true(d.shared, 'the new execution is joined while its caller waits');
  await Promise.resolve();
  await Promise.resolve();
  t.is(runs.length, 2);
  t.is(runs[0]!(), 2, 'the first execution: two callers');
  t.is(runs[1]!(), 2, 'the second: two callers');
  first.resolve('old');
  t.is(await a.promise, 'old');
  await settled();
  t.is(flights.size, 1, 'the older execution settling does not forget the newer');
  clock = 7000; // past every deadline of the second
  const e = flights.do('k', run(Promise.resolve('third')), 8000);
  t.false(e.shared, 'past the deadline: a new execution');
  second.resolve('new');
  t.is(await c.promise, 'new');
  t.is(await e.promise, 'third');
  await settled();
  t.is(flights.size, 0);
});

test('a caller without a deadline keeps the execution joinable until it settles', async (t) => {
  let clock = 0;
  const flights = new SingleFlight<number>(() => clock);
  const p = deferred<number>();
  flights.do('k', () => p.promise);
  clock = Number.MAX_SAFE_INTEGER;
  t.true(flights.do('k', () => Promise.resolve(2), 1).shared);
  p.resolve(1);
  await settled();
  t.false(flights.do('k', () => Promise.resolve(3)).shared, 'settled: forgotten, a new one runs');
});
