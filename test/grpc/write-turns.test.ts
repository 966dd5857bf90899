// Container lists written in turns: at most `concurrency` at once, the rest in order; a caller
// waits no longer than its deadline (or maxWaitMs) and its list is then not written at all; a
// write under way is never cut.
import test from 'ava';
import { WriteTurnCancelledError, WriteTurns, WriteTurnsBusyError, WriteTurnsFullError, WriteTurnTimeoutError } from '../../src/grpc/write-turns.js';

/** A write that runs until `finish()` is called, recording when it started. */
function pendingWrite(log: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<string>((resolve) => (finish = () => resolve(name)));
  return {
    write: () => {
      log.push(`start ${name}`);
      return done;
    },
    finish: () => finish(),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

/** The waits' timers are unref'd: in the server its sockets keep the process alive; here this does. */
function keepAlive(t: { teardown(fn: () => void): void }): void {
  const hold = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(hold));
}

test('below and at the bound writes start at once; past it they wait, and start in order as turns free', async (t) => {
  const turns = new WriteTurns({ concurrency: 2, maxWaitMs: 10_000 });
  const log: string[] = [];
  const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => pendingWrite(log, n));
  const results = [a!, b!, c!, d!].map((w) => turns.run(w.write));
  await tick();
  t.deepEqual(log, ['start a', 'start b'], 'below (a) and at (b) the bound');
  t.is(turns.waiting, 2);
  t.is(turns.running, 2);
  b!.finish();
  await tick();
  t.deepEqual(log, ['start a', 'start b', 'start c'], 'c, the oldest waiting, takes the freed turn');
  a!.finish();
  c!.finish();
  d!.finish();
  t.deepEqual(await Promise.all(results), ['a', 'b', 'c', 'd']);
  t.is(turns.running, 0);
});

test("a write that gets no turn by its caller's deadline is refused and never runs; one whose turn comes before it runs", async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000 });
  const log: string[] = [];
  const busy = pendingWrite(log, 'busy');
  const first = turns.run(busy.write);
  const late = pendingWrite(log, 'late');
  const refused = turns.run(late.write, Date.now() + 100);
  const err = await t.throwsAsync(refused, { instanceOf: WriteTurnTimeoutError });
  t.true(err!.waitedMs >= 95, `waited ${err!.waitedMs} ms`);
  t.regex(err!.message, /^statemanager is writing other lists: waited \d+ ms for a turn; send the list again$/);
  t.is(turns.waiting, 0, 'the refused write left the line');
  const inTime = pendingWrite(log, 'in time');
  const served = turns.run(inTime.write, Date.now() + 2_000);
  setTimeout(() => busy.finish(), 50);
  await first;
  await tick();
  inTime.finish();
  t.is(await served, 'in time');
  t.deepEqual(log, ['start busy', 'start in time'], 'the refused write never started');
});

test('without a caller deadline the wait is bounded by maxWaitMs', async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 80 });
  const busy = pendingWrite([], 'busy');
  void turns.run(busy.write);
  const started = Date.now();
  await t.throwsAsync(turns.run(async () => 'never'), { instanceOf: WriteTurnTimeoutError });
  t.true(Date.now() - started >= 75);
  busy.finish();
});

test('a write under way is not cut when its caller deadline passes', async (t) => {
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000 });
  const w = pendingWrite([], 'slow');
  const result = turns.run(w.write, Date.now() + 30);
  await new Promise((r) => setTimeout(r, 80));
  w.finish();
  t.is(await result, 'slow');
});

test('concurrency 0: every write starts at once', async (t) => {
  const turns = new WriteTurns({ concurrency: 0, maxWaitMs: 10 });
  const log: string[] = [];
  const ws = ['a', 'b', 'c'].map((n) => pendingWrite(log, n));
  const results = ws.map((w) => turns.run(w.write, Date.now() - 1000));
  t.deepEqual(log, ['start a', 'start b', 'start c']);
  for (const w of ws) w.finish();
  t.deepEqual(await Promise.all(results), ['a', 'b', 'c']);
});

test('a wait for a turn does not keep a stopping process alive (its timer is unref\'d)', async (t) => {
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 60_000 });
  const busy = pendingWrite([], 'busy');
  void turns.run(busy.write);
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const waiting = turns.run(async () => 'next');
  t.is(timers(), before, 'no referenced timer for the wait');
  busy.finish();
  t.is(await waiting, 'next');
});

test('bytes waiting: below and at maxWaitingBytes a write waits; past it one is refused at once and never runs; a write that starts at once is never refused', async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000, maxWaitingBytes: 100 });
  const log: string[] = [];
  // Starts at once: not waiting, so its size does not count, however large.
  const big = pendingWrite(log, 'big');
  const first = turns.run(big.write, undefined, 10_000);
  await tick();
  t.is(turns.waitingBytes, 0);
  const below = pendingWrite(log, 'below');
  const at = pendingWrite(log, 'at');
  const past = pendingWrite(log, 'past');
  const w1 = turns.run(below.write, undefined, 60);
  const w2 = turns.run(at.write, undefined, 40); // 100: at the bound
  t.is(turns.waitingBytes, 100);
  const err = await t.throwsAsync(turns.run(past.write, undefined, 1), { instanceOf: WriteTurnsFullError });
  t.regex(err!.message, /^statemanager holds 0 KiB of other lists waiting to be written \(at most 0 KiB\); nothing was written; send the list again$/);
  t.is(turns.waiting, 2);
  // A turn frees: the oldest starts and gives its bytes back, so one of 60 fits again.
  big.finish();
  await first;
  await tick();
  t.is(turns.waitingBytes, 40);
  const again = pendingWrite(log, 'again');
  const w3 = turns.run(again.write, undefined, 60);
  t.is(turns.waitingBytes, 100);
  below.finish();
  at.finish();
  again.finish();
  t.deepEqual(await Promise.all([w1, w2, w3]), ['below', 'at', 'again']);
  t.false(log.includes('start past'));
  t.is(turns.waitingBytes, 0);
});

test("bytes waiting are given back when a write's wait ends without a turn (its caller's deadline)", async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000, maxWaitingBytes: 100 });
  const log: string[] = [];
  const busy = pendingWrite(log, 'busy');
  const first = turns.run(busy.write);
  const late = pendingWrite(log, 'late');
  await t.throwsAsync(turns.run(late.write, Date.now() + 50, 100), { instanceOf: WriteTurnTimeoutError });
  t.is(turns.waitingBytes, 0);
  const next = pendingWrite(log, 'next');
  const w = turns.run(next.write, undefined, 100);
  t.is(turns.waitingBytes, 100, 'room again for a write of the whole bound');
  busy.finish();
  next.finish();
  t.deepEqual(await Promise.all([first, w]), ['busy', 'next']);
});

// A caller already gone when its write asks for a turn (onGone calls back at once): its bytes are
// not left counted as waiting (code review: three such calls of 400 bytes left 1,200 counted, and a
// later list that had to wait was refused as if the waiting room were full).
test('bytes waiting are given back by a write whose caller is gone before it asks for a turn', async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000, maxWaitingBytes: 100 });
  const log: string[] = [];
  const busy = pendingWrite(log, 'busy');
  const first = turns.run(busy.write);
  for (let i = 0; i < 3; i++) {
    await t.throwsAsync(turns.run(pendingWrite(log, `gone${i}`).write, undefined, 100, undefined, (fn) => fn()), { instanceOf: WriteTurnCancelledError });
  }
  t.is(turns.waitingBytes, 0);
  const next = pendingWrite(log, 'next');
  const w = turns.run(next.write, undefined, 100);
  t.is(turns.waitingBytes, 100, 'a write of the whole bound still waits');
  busy.finish();
  next.finish();
  t.deepEqual(await Promise.all([first, w]), ['busy', 'next']);
  t.false(log.some((l) => l.startsWith('start gone')), 'no gone write ran');
});

test("one key's writes run one after another in the order they came, with turns free; other keys' writes do not wait for them", async (t) => {
  const turns = new WriteTurns({ concurrency: 8, maxWaitMs: 10_000 });
  const log: string[] = [];
  const [a1, a2, a3, b1] = ['a1', 'a2', 'a3', 'b1'].map((n) => pendingWrite(log, n));
  const results = [turns.run(a1!.write, undefined, 0, 'a'), turns.run(a2!.write, undefined, 0, 'a'), turns.run(a3!.write, undefined, 0, 'a'), turns.run(b1!.write, undefined, 0, 'b')];
  await tick();
  t.deepEqual(log, ['start a1', 'start b1'], "a2 and a3 wait for a1 though 6 turns are free; b's does not");
  t.is(turns.waiting, 2, 'the writes waiting in their line are counted as waiting');
  t.is(turns.running, 2);
  a1!.finish();
  await tick();
  await tick();
  t.deepEqual(log, ['start a1', 'start b1', 'start a2']);
  a2!.finish();
  await tick();
  await tick();
  t.deepEqual(log, ['start a1', 'start b1', 'start a2', 'start a3']);
  a3!.finish();
  b1!.finish();
  t.deepEqual(await Promise.all(results), ['a1', 'a2', 'a3', 'b1']);
  t.is(turns.waiting, 0);
});

test("a write that waits in its key's line past its deadline is refused and never runs; the one behind it still waits for the write under way", async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 8, maxWaitMs: 10_000 });
  const log: string[] = [];
  const first = pendingWrite(log, 'first');
  const late = pendingWrite(log, 'late');
  const third = pendingWrite(log, 'third');
  const r1 = turns.run(first.write, undefined, 0, 'n');
  const r2 = turns.run(late.write, Date.now() + 60, 0, 'n');
  const r3 = turns.run(third.write, Date.now() + 5_000, 0, 'n');
  const err = await t.throwsAsync(r2, { instanceOf: WriteTurnTimeoutError });
  t.true(err!.waitedMs >= 55, `waited ${err!.waitedMs} ms`);
  await tick();
  t.deepEqual(log, ['start first'], 'the third does not start beside the write still under way');
  t.is(turns.waiting, 1);
  first.finish();
  await r1;
  await tick();
  await tick();
  t.deepEqual(log, ['start first', 'start third']);
  third.finish();
  t.is(await r3, 'third');
  t.false(log.includes('start late'));
});

test("a key's line ends with its last write, failed or not: the next write of the key starts at once", async (t) => {
  const turns = new WriteTurns({ concurrency: 2, maxWaitMs: 10_000 });
  await t.throwsAsync(turns.run(async () => Promise.reject(new Error('etcd said no')), undefined, 0, 'n'), { message: 'etcd said no' });
  const log: string[] = [];
  const next = pendingWrite(log, 'next');
  const r = turns.run(next.write, undefined, 0, 'n');
  await tick();
  t.deepEqual(log, ['start next']);
  t.is(turns.waiting, 0);
  next.finish();
  t.is(await r, 'next');
});

test("bytes waiting: a write waiting in its key's line holds its bytes (turns free), and one past the bound is refused at once", async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 8, maxWaitMs: 10_000, maxWaitingBytes: 100 });
  const log: string[] = [];
  const under = pendingWrite(log, 'under way');
  const r1 = turns.run(under.write, undefined, 500, 'n');
  const at = pendingWrite(log, 'at');
  const r2 = turns.run(at.write, undefined, 100, 'n');
  t.is(turns.waitingBytes, 100, 'at the bound');
  await t.throwsAsync(turns.run(async () => 'past', undefined, 1, 'n'), { instanceOf: WriteTurnsFullError });
  const other = pendingWrite(log, 'other node');
  const r3 = turns.run(other.write, undefined, 1000, 'm');
  await tick();
  t.deepEqual(log, ['start under way', 'start other node'], "another node's write starts at once: it does not wait, so its size does not count");
  under.finish();
  await r1;
  await tick();
  await tick();
  t.is(turns.waitingBytes, 0);
  at.finish();
  other.finish();
  t.deepEqual(await Promise.all([r2, r3]), ['at', 'other node']);
});

/** A caller's going away, as the gRPC handler gives it (call.onEnd): `go()` makes it happen. */
function goneSignal() {
  const fns: (() => void)[] = [];
  let gone = false;
  return {
    onGone: (fn: () => void) => (gone ? fn() : void fns.push(fn)),
    go: () => {
      gone = true;
      for (const f of fns.splice(0)) f();
    },
  };
}

// Found by black-box probing: 20,000 node agents on 4,000 connections sending faster than the
// turns wrote grew the line to 18,000 lists, written after their callers had given up.
test('lists waiting: below and at maxWaiting a write waits; past it one is refused at once (full) and never runs', async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000, maxWaiting: 2 });
  const log: string[] = [];
  const [busy, w1, w2, past] = ['busy', 'w1', 'w2', 'past'].map((n) => pendingWrite(log, n));
  const r0 = turns.run(busy!.write);
  const r1 = turns.run(w1!.write);
  t.is(turns.admission(undefined), undefined, 'below the bound: admitted');
  const r2 = turns.run(w2!.write);
  t.is(turns.waiting, 2, 'at the bound');
  t.deepEqual(turns.admission(undefined), { waiting: 2, reason: 'full', expectedWaitMs: 0 });
  const err = await t.throwsAsync(turns.run(past!.write), { instanceOf: WriteTurnsBusyError });
  t.regex(err!.message, /^statemanager has 2 other lists waiting to be written \(the most it holds\); nothing was written; send the list again$/);
  for (const w of [busy!, w1!, w2!]) w.finish();
  t.deepEqual(await Promise.all([r0, r1, r2]), ['busy', 'w1', 'w2']);
  t.false(log.includes('start past'));
  t.is(turns.admission(undefined), undefined, 'a turn free again: admitted');
});

test("the line's pace: a write whose turn would come after its caller's deadline is refused at once (slow); one with time enough waits and runs", async (t) => {
  keepAlive(t);
  let clock = 0;
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000, now: () => clock });
  const log: string[] = [];
  t.is(turns.expectedWaitMs(), undefined, 'no pace before a write has ended');
  // One write of 200 ms (on the injected clock) sets the pace.
  const first = pendingWrite(log, 'first');
  const r1 = turns.run(first.write);
  clock += 200;
  first.finish();
  await r1;
  t.is(turns.expectedWaitMs(), 200);
  const busy = pendingWrite(log, 'busy');
  const r2 = turns.run(busy.write);
  // Nothing waits yet: the next write waits for one turn (200 ms).
  t.is(turns.admission(Date.now() + 150)?.reason, 'slow', 'its deadline comes before the expected turn');
  const err = await t.throwsAsync(turns.run(async () => 'never', Date.now() + 150), { instanceOf: WriteTurnsBusyError });
  t.regex(err!.message, /^statemanager has 0 other lists waiting to be written, about 200 ms of work, past this call's deadline; nothing was written; send the list again$/);
  t.is(turns.admission(Date.now() + 250), undefined, 'time enough: admitted');
  t.is(turns.admission(undefined), undefined, 'no deadline: only the count and maxWaitMs bound it');
  const inTime = pendingWrite(log, 'in time');
  const r3 = turns.run(inTime.write, Date.now() + 5_000);
  // With one waiting, the next would wait two turns.
  t.is(turns.expectedWaitMs(), 400);
  busy.finish();
  await r2;
  await tick();
  inTime.finish();
  t.is(await r3, 'in time');
  t.deepEqual(log, ['start first', 'start busy', 'start in time']);
});

test('a turn that comes after its caller\'s deadline (the event loop too busy to fire the timer) writes nothing', async (t) => {
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000 });
  const log: string[] = [];
  const busy = pendingWrite(log, 'busy');
  const r1 = turns.run(busy.write);
  const late = turns.run(async () => void log.push('start late'), Date.now() + 30);
  // The loop is held past the deadline, then the turn frees before the wait's timer can fire.
  const until = Date.now() + 60;
  while (Date.now() < until);
  busy.finish();
  await r1;
  const err = await t.throwsAsync(late, { instanceOf: WriteTurnTimeoutError });
  t.true(err!.waitedMs >= 30);
  t.deepEqual(log, ['start busy']);
});

test('a caller that goes away while its write waits (cancelled, or its deadline passed) leaves the line at once; its write never runs', async (t) => {
  keepAlive(t);
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000, maxWaitingBytes: 1000 });
  const log: string[] = [];
  const busy = pendingWrite(log, 'busy');
  const r1 = turns.run(busy.write);
  const caller = goneSignal();
  const left = turns.run(async () => void log.push('start gone'), undefined, 300, undefined, caller.onGone);
  const next = pendingWrite(log, 'next');
  const r3 = turns.run(next.write);
  t.is(turns.waiting, 2);
  t.is(turns.waitingBytes, 300);
  caller.go();
  await t.throwsAsync(left, { instanceOf: WriteTurnCancelledError });
  t.is(turns.waiting, 1, 'out of the line before any turn frees');
  t.is(turns.waitingBytes, 0);
  busy.finish();
  await r1;
  await tick();
  next.finish();
  t.is(await r3, 'next');
  t.deepEqual(log, ['start busy', 'start next']);
  // Gone before it asked: refused at once.
  const already = goneSignal();
  already.go();
  await t.throwsAsync(turns.run(async () => void log.push('start already'), undefined, 0, undefined, already.onGone), { instanceOf: WriteTurnCancelledError });
  t.false(log.includes('start already'));
});

test("a caller that goes away while its write waits in its key's line leaves it; the write behind it moves up", async (t) => {
  const turns = new WriteTurns({ concurrency: 8, maxWaitMs: 10_000 });
  const log: string[] = [];
  const first = pendingWrite(log, 'first');
  const r1 = turns.run(first.write, undefined, 0, 'n');
  const caller = goneSignal();
  const gone = turns.run(async () => void log.push('start gone'), undefined, 0, 'n', caller.onGone);
  const third = pendingWrite(log, 'third');
  const r3 = turns.run(third.write, undefined, 0, 'n');
  caller.go();
  await t.throwsAsync(gone, { instanceOf: WriteTurnCancelledError });
  t.is(turns.waiting, 1);
  first.finish();
  await r1;
  await tick();
  await tick();
  third.finish();
  t.is(await r3, 'third');
  t.deepEqual(log, ['start first', 'start third']);
});

test('a caller gone after its write started changes nothing: the write runs to its end', async (t) => {
  const turns = new WriteTurns({ concurrency: 1, maxWaitMs: 10_000 });
  const caller = goneSignal();
  const w = pendingWrite([], 'w');
  const r = turns.run(w.write, undefined, 0, undefined, caller.onGone);
  await tick();
  caller.go();
  w.finish();
  t.is(await r, 'w');
});
