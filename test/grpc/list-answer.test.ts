// ListResourcesByState's answer over many resources is built a slice at a time: the joined
// encodings are the message grpc-js would have encoded whole, the byte budget cuts it exactly as
// before, the event loop is free between slices, and identical lists share one answer. Before,
// 20 callers listing 38,000 models together held every other call up to 6 s (black-box probing).
import test from 'ava';
import type { ResourceState } from '../../src/generated/statemanager/ResourceState.js';
import type { ListResourcesByStateResponse } from '../../src/generated/statemanager/ListResourcesByStateResponse.js';
import { buildListAnswer, LIST_SLICE, SharedAnswers } from '../../src/grpc/list-answer.js';
import { loadStateManagerProto, preEncoder } from '../../src/grpc/proto.js';
import { listedResourceBytes } from '../../src/grpc/read-api.js';
import { largestLoopGap } from '../helpers/loop-gap.js';

const method = loadStateManagerProto().statemanager.StateManagerConnection.service.ListResourcesByState;
const encode = preEncoder(method);

const toState = (i: number): ResourceState => ({
  resource_type: 'RESOURCE_TYPE_MODEL',
  resource_name: `model-${String(i).padStart(6, '0')}`,
  current_state: 'Running',
  desired_state: '',
  last_transition_time_ns: '0',
  state_generation: String(i),
  asil_level: 'ASIL_LEVEL_UNSPECIFIED',
  metadata: { revision: '42' },
  history: [],
});
const views = (n: number) => Array.from({ length: n }, (_, i) => i);
const head = (total: number) => (shown: number) => ({ success: true as const, total_count: total, message: `revision 42; ${shown} shown` });

test('the joined slices decode to the whole answer, in order, with the head\'s fields (slices below, at and past one)', async (t) => {
  for (const n of [LIST_SLICE - 1, LIST_SLICE, LIST_SLICE + 1, 3 * LIST_SLICE + 7]) {
    const sliced = await buildListAnswer(views(n), { maxBytes: Number.MAX_SAFE_INTEGER, toState, bytesOf: listedResourceBytes, encode }, head(n + 5));
    const plain = (await buildListAnswer(views(n), { maxBytes: Number.MAX_SAFE_INTEGER, toState, bytesOf: listedResourceBytes }, head(n + 5))) as ListResourcesByStateResponse;
    t.true(Buffer.isBuffer(sliced));
    t.deepEqual(sliced, method.responseSerialize(plain), `${n} resources: the same bytes as one encoding`);
    const decoded = method.responseDeserialize(sliced as Buffer);
    t.like(decoded, { success: true, total_count: n + 5, message: `revision 42; ${n} shown` });
    t.is(decoded.resources.length, n);
    t.is(decoded.resources[n - 1]!.resource_name, toState(n - 1).resource_name!);
  }
});

test('the byte budget cuts the answer where it did: below, at and past the budget', async (t) => {
  const one = listedResourceBytes(toState(0));
  for (const [budget, shown] of [[10 * one - 1, 9], [10 * one, 10], [10 * one + 1, 10]] as const) {
    let seen = -1;
    const sliced = await buildListAnswer(views(20), { maxBytes: budget, toState, bytesOf: listedResourceBytes, encode }, (s) => ((seen = s), head(20)(s)));
    t.is(seen, shown, `budget ${budget}`);
    t.is(method.responseDeserialize(sliced as Buffer).resources.length, shown);
  }
});

test.serial('a list of 40,000 gives the event loop back between slices', async (t) => {
  let answer: unknown;
  const gap = await largestLoopGap(async () => {
    answer = await buildListAnswer(views(40_000), { maxBytes: Number.MAX_SAFE_INTEGER, toState, bytesOf: listedResourceBytes, encode }, head(40_000));
  }, 1);
  t.log(`largest event-loop gap while building 40,000: ${gap.toFixed(1)} ms`);
  t.is(method.responseDeserialize(answer as Buffer).resources.length, 40_000);
  // One slice of 2,048 (conversion and encoding, well under 50 ms here) plus a loaded CI's slack;
  // the whole list at once takes several hundred.
  t.true(gap < 150, `gap ${gap.toFixed(1)} ms`);
});

test('identical keys share one answer; a failed one is not kept; the oldest goes past the bound', async (t) => {
  const shared = new SharedAnswers<number>(2);
  let builds = 0;
  const build = async () => ++builds;
  t.is(await shared.get('a', build), 1);
  t.is(await shared.get('a', build), 1);
  t.is(builds, 1);
  await t.throwsAsync(shared.get('bad', () => Promise.reject(new Error('no'))));
  await new Promise((r) => setImmediate(r));
  t.is(await shared.get('bad', build), 2, 'built again after a failure');
  t.is(await shared.get('b', build), 3);
  t.is(await shared.get('a', build), 4, "past the bound of 2 the oldest ('a') went");
});
