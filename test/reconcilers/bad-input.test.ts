import test from 'ava';
import { BadInputReport } from '../../reconcilers/bad-input.js';
import { silentObserver } from '../../reconcilers/ports.js';

const noModel = { value: undefined, problem: { reason: 'no_model', detail: 'no model annotation' } };

function report(max: number) {
  const reported: string[] = [];
  const r = new BadInputReport({ ...silentObserver, invalidInput: (_reason, key) => reported.push(key) }, max);
  return { r, reported };
}

test('a container without a model is reported once per key, again once it had a model in between', (t) => {
  const { r, reported } = report(10);
  r.value('/container/n/a', noModel);
  r.value('/container/n/a', noModel);
  t.deepEqual(reported, ['/container/n/a']);
  r.value('/container/n/a', { value: { model: 'm' } });
  r.value('/container/n/a', noModel);
  t.deepEqual(reported, ['/container/n/a', '/container/n/a']);
});

test('the keys remembered are bounded: below, at and past the bound (deleted containers never come back to be forgotten)', (t) => {
  const { r, reported } = report(3);
  r.value('k1', noModel);
  r.value('k2', noModel);
  t.is(r.noModelKeys, 2, 'below');
  r.value('k3', noModel);
  t.is(r.noModelKeys, 3, 'at');
  r.value('k1', noModel);
  t.is(reported.length, 3, 'at the bound a remembered key is still not reported again');
  r.value('k4', noModel);
  t.is(r.noModelKeys, 1, 'past: started again with the new key');
  r.value('k1', noModel);
  t.deepEqual(reported, ['k1', 'k2', 'k3', 'k4', 'k1'], 'a forgotten key is reported once more');
  for (let i = 0; i < 1000; i++) r.value(`churn${i}`, noModel);
  t.true(r.noModelKeys <= 3);
});
