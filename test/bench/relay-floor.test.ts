// The storm floor's relay options (test/bench/lib/relay-client.ts): which put events the relay
// writes for, and how its environment is read back.
import test from 'ava';
import { MAX_RELAY_STATES, relayFloor, relayFloorEnv, relaysEvent } from './lib/relay-client.js';

const relayedOf = (events: number, every: number): number[] => {
  const out: number[] = [];
  for (let n = 0; n < events; n++) if (relaysEvent(n, every)) out.push(n);
  return out;
};

test('every 1 relays every event', (t) => {
  t.deepEqual(relayedOf(5, 1), [0, 1, 2, 3, 4]);
});

test('an integer relays one event in every, the last of each group', (t) => {
  t.deepEqual(relayedOf(12, 4), [3, 7, 11]);
});

test('a fraction relays events / every of them, spread evenly', (t) => {
  // 4.5: 2 of every 9, never two in a row.
  t.deepEqual(relayedOf(18, 4.5), [4, 8, 13, 17]);
  for (const every of [1.01, 2.5, 4.43, 7.9]) {
    const relayed = relayedOf(100_000, every);
    t.is(relayed.length, Math.floor(100_000 / every), `every ${every}`);
    const gaps = relayed.slice(1).map((n, i) => n - relayed[i]!);
    t.true(gaps.every((g) => g === Math.floor(every) || g === Math.ceil(every)), `every ${every}: gaps ${Math.min(...gaps)}..${Math.max(...gaps)}`);
  }
});

test('the floor environment reads back as given; anything else is the plain relay', (t) => {
  const floor = { every: 4.43, states: 2, echo: true };
  t.deepEqual(relayFloor(relayFloorEnv(floor)), floor);
  t.deepEqual(relayFloor({}), { every: 1, states: 0, echo: false });
  for (const bad of ['0', '0.5', '-3', 'x', 'Infinity']) t.is(relayFloor({ BENCH_RELAY_EVERY: bad }).every, 1, bad);
  t.is(relayFloor({ BENCH_RELAY_EVERY: '1' }).every, 1);
  t.is(relayFloor({ BENCH_RELAY_EVERY: '1.5' }).every, 1.5);
});

test('state writes per relayed event: 0 up to MAX_RELAY_STATES, anything else the plain relay', (t) => {
  t.is(MAX_RELAY_STATES, 2);
  for (const n of [0, 1, 2]) t.is(relayFloor(relayFloorEnv({ every: 1, states: n, echo: false })).states, n);
  for (const bad of ['3', '-1', '1.5', 'x', '']) t.is(relayFloor({ BENCH_RELAY_STATE: bad }).states, 0, bad);
});
