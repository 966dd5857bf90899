// Which etcd members calls skip: one that let a call wait at least slowCallMs and run out of its
// deadline, while another member is not skipped; for suspectForMs, doubled each time it is found
// hung again up to maxSuspectForMs; cleared by any answer of etcd's.
import test from 'ava';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { MemberSkippedError, MemberSuspicion } from '../../src/etcd/member-suspicion.js';

const SLOW = 1000;
const FIRST = 10_000;
const MAX = 60_000;

function world(members = ['a', 'b', 'c']) {
  const w = { clock: 0, hung: [] as [string, number][], cleared: [] as string[] };
  const s = new MemberSuspicion({
    members,
    slowCallMs: SLOW,
    suspectForMs: FIRST,
    maxSuspectForMs: MAX,
    onSuspect: (m, forMs) => w.hung.push([m, forMs]),
    onCleared: (m) => w.cleared.push(m),
    now: () => w.clock,
  });
  return { w, s };
}

const deadline = () => new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded');

test('a deadline failure after waiting below slowCallMs says nothing; at it the member is skipped for suspectForMs (below, at and past its end)', (t) => {
  const { w, s } = world();
  s.failed('a', deadline(), SLOW - 1);
  t.false(s.skips('a'), 'a short deadline (a caller with 5 ms) says nothing about the member');
  s.failed('a', deadline(), SLOW);
  t.true(s.skips('a'));
  t.deepEqual(w.hung, [['a', FIRST]]);
  t.false(s.skips('b'));
  w.clock = FIRST - 1;
  t.true(s.skips('a'), 'below the end');
  w.clock = FIRST;
  t.false(s.skips('a'), 'at the end: tried again');
});

test('found hung again, the skip doubles up to maxSuspectForMs (below, at and past the cap); an answer starts it again from the first', (t) => {
  const { w, s } = world();
  // Each call sent when the one before it had found the member hung (every member hung, say).
  for (let i = 0; i < 5; i++) {
    w.clock += SLOW;
    s.failed('a', deadline(), SLOW);
  }
  t.deepEqual(w.hung.map(([, ms]) => ms), [FIRST, 2 * FIRST, 4 * FIRST, MAX, MAX]);
  s.answered('a');
  t.deepEqual(w.cleared, ['a']);
  t.false(s.skips('a'));
  s.failed('a', deadline(), SLOW);
  t.is(w.hung.at(-1)![1], FIRST);
});

test('the calls in flight when a member was found hung are the same hang: no new strike, no new line; a call sent after it is', (t) => {
  const { w, s } = world();
  w.clock = 5000;
  s.failed('a', deadline(), SLOW); // sent at 4000, found hung at 5000
  w.clock = 5500;
  s.failed('a', deadline(), SLOW + 400); // sent at 4100: in flight before
  s.failed('a', deadline(), 5500 - 4999); // sent at 4999, still before
  t.deepEqual(w.hung, [['a', FIRST]], 'one line, the first skip');
  s.failed('a', deadline(), 5500 - 5000); // sent at 5000 exactly (every member hung, say): below SLOW, nothing
  w.clock = 6200;
  s.failed('a', deadline(), SLOW); // sent at 5200, after it was found: hung again
  t.deepEqual(w.hung, [['a', FIRST], ['a', 2 * FIRST]]);
});

test('one etcd: nothing to skip to, nothing tracked or told; every member hung is still called', (t) => {
  const alone = world(['only']);
  alone.s.failed('only', deadline(), SLOW);
  t.false(alone.s.skips('only'), 'the only member');
  t.deepEqual(alone.s.suspected(), []);
  t.deepEqual(alone.w.hung, []);
  const { s } = world(['a', 'b']);
  s.failed('a', deadline(), SLOW);
  t.true(s.skips('a'));
  s.failed('b', deadline(), SLOW);
  t.false(s.skips('a'), 'both hung: both called');
  t.false(s.skips('b'));
  t.deepEqual(s.suspected(), ['a', 'b']);
});

test("an answer of etcd's clears the member (an error of etcd's too); a connection failure is etcd3's to handle and clears nothing", (t) => {
  const { w, s } = world();
  s.failed('a', deadline(), SLOW);
  s.failed('a', new GRPCUnavailableError('14 UNAVAILABLE: No connection established'), 5);
  t.true(s.skips('a'));
  s.failed('a', new Error('etcdserver: mvcc: database space exceeded'), 5);
  t.false(s.skips('a'));
  t.deepEqual(w.cleared, ['a']);
});

test("as etcd3's per-member policy: a skipped member is not called (so etcd3 goes on to the next), a call's outcome is learned", async (t) => {
  const { w, s } = world();
  let calls = 0;
  const inner = { execute: async <T>(fn: (c: { signal: AbortSignal; attempt: number }) => PromiseLike<T> | T) => fn({ signal: new AbortController().signal, attempt: 0 }) };
  const a = s.policy('a', inner);
  const hang = async () => {
    calls++;
    w.clock += SLOW;
    throw deadline();
  };
  await t.throwsAsync(a.execute(hang), { instanceOf: GRPCDeadlineExceededError });
  await t.throwsAsync(a.execute(hang), { instanceOf: MemberSkippedError });
  t.is(calls, 1, 'the skipped call never reached the member');
  w.clock += FIRST;
  const stream = { on: () => stream };
  t.is(await a.execute(() => stream), stream);
  t.deepEqual(w.cleared, [], 'a stream opened is no answer (a keep-alive stream opens on a hung member too)');
  t.is(await a.execute(async () => 'answered'), 'answered');
  t.deepEqual(w.cleared, ['a']);
});
