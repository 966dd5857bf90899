// Container lists written in turns: at most `concurrency` at once, the rest in order; a caller
// waits no longer than its deadline (or maxWaitMs) and its list is then not written at all; a
// write under way is never cut.
import test from 'ava';
import { WriteTurns, WriteTurnTimeoutError } from '../../src/grpc/write-turns.js';

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
