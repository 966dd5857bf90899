// The turns of long list answers being sent: by bytes, in order, a bounded line, a deadline, and
// a turn whose end is never seen given back after its cap.
import test from 'ava';
import { BytesInFlight, type Release } from '../../src/grpc/bytes-in-flight.js';

const granted = (r: Release | 'busy' | 'late'): Release => {
  if (typeof r !== 'function') throw new Error(`not granted: ${r}`);
  return r;
};

test('below and at the capacity at once; past it the next waits for a release, in order', async (t) => {
  const g = new BytesInFlight({ capacity: 10, maxWaiting: 10 });
  const a = granted(await g.acquire(4));
  const b = granted(await g.acquire(6));
  t.is(g.inFlight, 10, 'at the capacity');
  const order: string[] = [];
  const c = g.acquire(1).then((r) => (order.push('c'), granted(r)));
  const d = g.acquire(1).then((r) => (order.push('d'), granted(r)));
  await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(order, [], 'past it: waiting');
  t.is(g.waiting, 2);
  a();
  a(); // twice gives back once
  const [rc, rd] = await Promise.all([c, d]);
  t.deepEqual(order, ['c', 'd']);
  t.is(g.inFlight, 8);
  b();
  rc();
  rd();
  t.is(g.inFlight, 0);
});

test('one answer above the whole capacity goes when nothing else is being sent; a small one behind it waits its turn', async (t) => {
  const g = new BytesInFlight({ capacity: 10, maxWaiting: 10 });
  const small = granted(await g.acquire(2));
  let bigGot = false;
  const big = g.acquire(50).then((r) => ((bigGot = true), granted(r)));
  let afterGot = false;
  const after = g.acquire(1).then((r) => ((afterGot = true), granted(r)));
  await new Promise((r) => setTimeout(r, 10));
  t.false(bigGot);
  t.false(afterGot, 'in order: not past the one waiting first');
  small();
  const rb = await big;
  t.is(g.inFlight, 50);
  await new Promise((r) => setTimeout(r, 10));
  t.false(afterGot);
  rb();
  (await after)();
  t.is(g.inFlight, 0);
});

test('the line of waiting callers: below and at its bound they wait, past it refused at once', async (t) => {
  const g = new BytesInFlight({ capacity: 1, maxWaiting: 2 });
  const holder = granted(await g.acquire(1));
  const w1 = g.acquire(1);
  const w2 = g.acquire(1);
  t.is(g.waiting, 2);
  t.is(await g.acquire(1), 'busy');
  holder();
  granted(await w1)();
  granted(await w2)();
});

test('a deadline passed while waiting: late, and out of the line (the one behind it goes on)', async (t) => {
  const g = new BytesInFlight({ capacity: 5, maxWaiting: 10 });
  const holder = granted(await g.acquire(4));
  const late = g.acquire(5, Date.now() + 30);
  const next = g.acquire(1);
  t.is(await late, 'late');
  t.is(g.waiting, 0, 'the one behind it fitted once the first in line left');
  granted(await next)();
  holder();
  t.is(g.inFlight, 0);
});

test('a turn whose end is never seen is given back after its cap (below it held, past it free)', async (t) => {
  const g = new BytesInFlight({ capacity: 1, maxWaiting: 10, holdCapMs: 80 });
  granted(await g.acquire(1));
  await new Promise((r) => setTimeout(r, 40));
  t.is(g.inFlight, 1, 'below the cap: held');
  await new Promise((r) => setTimeout(r, 80));
  t.is(g.inFlight, 0, 'past it: given back');
});
