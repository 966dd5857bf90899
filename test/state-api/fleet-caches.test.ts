// The state caches' revision for a quiet kind: brought up to etcd's only when the cache is found
// equal to etcd (none of the prefix's keys modified since the cache's revision, as many keys as
// the cache holds, the cache unmoved meanwhile), at most every VERIFY_EVERY_MS, one check shared.
import test from 'ava';
import { CHECK_COST_FACTOR, FleetStateCaches, MAX_CHECK_GAP_MS, VERIFY_EVERY_MS } from '../../src/state-api/fleet-caches.js';
import type { PrefixCounts } from '../../src/etcd/prefix-counts.js';

function world() {
  const w = {
    revision: 10,
    keys: 3,
    clock: 1_000,
    answer: { revision: 50, unchangedSince: true, total: 3 } as PrefixCounts | Error,
    changed: [] as ((e: { type: string }) => void)[],
    ahead: 0,
    reachedWaiters: [] as [number, () => void][],
    asked: [] as number[],
    /** Runs while the count is under way (a change arriving meanwhile). */
    meanwhile: undefined as (() => void) | undefined,
  };
  const fleet = {
    storedState: () => undefined,
    storedStates: function* () {},
    stateRevision: () => w.revision,
    stateKeyCount: () => w.keys,
    stateAheadRevision: () => Math.max(w.revision, w.ahead),
    stateReached: (_kind: string, revision: number) => new Promise<void>((resolve) => w.reachedWaiters.push([revision, resolve])),
    onChange: (_kind: string, h: (e: { type: string }) => void) => void w.changed.push(h),
  };
  const count = async (_kind: string, since: number): Promise<PrefixCounts> => {
    w.asked.push(since);
    await new Promise((r) => setImmediate(r));
    w.meanwhile?.();
    if (w.answer instanceof Error) throw w.answer;
    return w.answer;
  };
  const caches = new FleetStateCaches(fleet as never, count, () => w.clock);
  return { w, caches };
}

test("equal to etcd: the revision is etcd's until the cache moves; a kind never checked, or without a counter, says its own", async (t) => {
  const { w, caches } = world();
  t.is(caches.revision('model'), 10);
  await caches.refresh('model');
  t.deepEqual(w.asked, [10]);
  t.is(caches.revision('model'), 50);
  t.is(caches.revision('package'), 10, 'another kind is not checked by this one');
  w.revision = 11; // a change arrived: the check was of the cache before it
  t.is(caches.revision('model'), 11);
  const without = new FleetStateCaches({ stateRevision: () => 7, stateAheadRevision: () => 7, stateKeyCount: () => 0, onChange: () => undefined } as never);
  await without.refresh('model');
  t.is(without.revision('model'), 7);
});

for (const [what, answer, meanwhile] of [
  ['a key modified since the cache revision', { revision: 50, unchangedSince: false, total: 3 }, undefined],
  ['a key fewer than the cache holds (one deleted)', { revision: 50, unchangedSince: true, total: 2 }, undefined],
  ['a key more than the cache holds', { revision: 50, unchangedSince: true, total: 4 }, undefined],
  ['the cache moved while etcd was read', { revision: 50, unchangedSince: true, total: 3 }, (w: { revision: number }) => (w.revision = 12)],
  ['the cache gained a key while etcd was read (an own write, its revision not moved)', { revision: 50, unchangedSince: true, total: 3 }, (w: { keys: number }) => (w.keys = 4)],
  ['etcd could not be read', new Error('etcd unavailable'), undefined],
] as const) {
  test(`not equal, the cache's own revision: ${what}`, async (t) => {
    const { w, caches } = world();
    w.answer = answer;
    if (meanwhile) w.meanwhile = () => meanwhile(w as never);
    await caches.refresh('model');
    t.is(caches.revision('model'), w.revision);
  });
}

test(`a kind that changed within VERIFY_EVERY_MS is not checked (its revision is recent): below, at and past it`, async (t) => {
  const { w, caches } = world();
  w.clock = 100_000;
  for (const h of w.changed) h({ type: 'added' }); // every kind changed now
  w.clock += VERIFY_EVERY_MS - 1;
  await caches.refresh('model');
  t.deepEqual(w.asked, [], 'below');
  w.clock += 1;
  await caches.refresh('model');
  t.deepEqual(w.asked, [10], 'at');
  t.is(caches.revision('model'), 50);
});

test(`at most one check every VERIFY_EVERY_MS (${VERIFY_EVERY_MS} ms) while the cache stands still: below, at and past it; callers at once share one`, async (t) => {
  const { w, caches } = world();
  await Promise.all([caches.refresh('model'), caches.refresh('model'), caches.refresh('model')]);
  t.deepEqual(w.asked, [10], 'three callers, one check');
  w.clock += VERIFY_EVERY_MS - 1;
  await caches.refresh('model');
  t.is(w.asked.length, 1, 'below: not checked again');
  w.clock += 1;
  w.answer = { revision: 60, unchangedSince: true, total: 3 };
  await caches.refresh('model');
  t.is(w.asked.length, 2, 'at: checked again');
  t.is(caches.revision('model'), 60);
  w.revision = 20; // the cache moved: checked at once, whatever the clock
  await caches.refresh('model');
  t.deepEqual(w.asked, [10, 10, 20]);
});

for (const [what, took, gap] of [
  ['a check of 100 ms', 100, CHECK_COST_FACTOR * 100],
  ['a check of 10 s (past the cap)', 10_000, MAX_CHECK_GAP_MS],
] as const) {
  test(`checks are spaced CHECK_COST_FACTOR (${CHECK_COST_FACTOR}) times the last one's duration, at most MAX_CHECK_GAP_MS: ${what}, the next one below, at and past ${gap} ms; a failed one too`, async (t) => {
    const { w, caches } = world();
    w.meanwhile = () => (w.clock += took); // etcd takes `took` to answer
    const start = w.clock;
    await caches.refresh('model');
    t.is(w.asked.length, 1);
    w.meanwhile = undefined;
    w.revision = 11; // the cache moved: no verified revision to keep, so only the spacing holds it back
    w.clock = start + gap - 1;
    await caches.refresh('model');
    t.is(w.asked.length, 1, 'below');
    t.is(caches.revision('model'), 11, "not checked: the cache's own revision");
    w.clock = start + gap;
    w.answer = new Error('etcd unavailable');
    w.meanwhile = () => (w.clock += took);
    await caches.refresh('model');
    t.is(w.asked.length, 2, 'at');
    w.meanwhile = undefined;
    w.answer = { revision: 70, unchangedSince: true, total: 3 };
    w.clock = start + 2 * gap - 1; // the failed check started at start + gap
    await caches.refresh('model');
    t.is(w.asked.length, 2, 'a failed check is spaced too');
    w.clock += 1;
    await caches.refresh('model');
    t.is(w.asked.length, 3, 'past it');
    t.is(caches.revision('model'), 70);
  });
}

test("the leader's own writes ahead of its watch (assumed) are waited for: the refresh ends when the cache's revision reaches them, not before", async (t) => {
  const { w, caches } = world();
  for (const h of w.changed) h({ type: 'added' }); // busy: no check against etcd, only the wait
  w.ahead = 14;
  let done = false;
  const p = caches.refresh('model').then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  t.false(done, 'the cache (10) has not reached the own write at 14');
  t.deepEqual(w.reachedWaiters.map(([r]) => r), [14]);
  w.revision = 14;
  w.reachedWaiters[0]![1]();
  await p;
  t.true(done);
  t.deepEqual(w.asked, [], 'a busy kind is not checked against etcd');
  // Nothing ahead: nothing waited for.
  w.ahead = 0;
  await caches.refresh('model');
  t.is(w.reachedWaiters.length, 1);
});
