// A replay's old states without etcd's prev_kv: looked up once per key before its first change,
// followed from its events after that, delivered in the order the responses came.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import type { EtcdWatchEvent } from '../../src/etcd/watch-client.js';
import { ReplayDecoder, ReplayLookupCompacted, type PreviousLookup } from '../../src/state-api/replay-decoder.js';
import type { StateChangeRecord } from '../../src/state-api/records.js';

const keys = new KeyLayout('');

function put(key: string, value: string, revision: number, version: number): EtcdWatchEvent {
  return { type: 'Put', kv: { key: Buffer.from(key), value: Buffer.from(value), create_revision: revision - version + 1, mod_revision: revision, version, lease: '0' } };
}
function del(key: string, revision: number): EtcdWatchEvent {
  return { type: 'Delete', kv: { key: Buffer.from(key), value: Buffer.alloc(0), create_revision: 0, mod_revision: revision, version: 0, lease: '0' } };
}

/** A decoder over scripted look-ups: each call waits until answered by hand. */
function harness() {
  const calls: { lookups: readonly PreviousLookup[]; answer(values: (string | undefined)[]): void; fail(err: unknown): void }[] = [];
  const delivered: { records: StateChangeRecord[]; through: number }[] = [];
  const errors: unknown[] = [];
  const decoder = new ReplayDecoder({
    keys,
    lookUp: (lookups) =>
      new Promise((resolve, reject) => {
        calls.push({ lookups, answer: resolve, fail: reject });
      }),
    onChanges: (records, through) => delivered.push({ records, through }),
    onError: (err) => errors.push(err),
    now: () => 0,
  });
  const changes = () => delivered.flatMap((d) => d.records.map((r) => `${r.kind}/${r.name}@${r.revision}.${r.index}: ${r.from || '-'} -> ${r.to || '-'}`));
  return { decoder, calls, delivered, errors, changes };
}

const tick = () => new Promise((r) => setImmediate(r));

test('creations need no look-up; a change of a key seen before is followed from its own events', async (t) => {
  const h = harness();
  h.decoder.push([put('/model/a/state', 'Created', 10, 1), put('/statemanager/history/model/a/000000000001', '{}', 10, 1)]);
  h.decoder.push([put('/model/a/state', 'Running', 11, 2)]);
  h.decoder.push([put('/model/a/state', 'Running', 12, 3)]); // a rewrite of the same state: no change
  h.decoder.push([del('/model/a/state', 13)]);
  await tick();
  t.is(h.calls.length, 0);
  t.deepEqual(h.changes(), ['model/a@10.0: - -> Created', 'model/a@11.0: Created -> Running', 'model/a@13.0: Running -> -']);
  t.deepEqual(h.delivered.map((d) => d.through), [10, 11, 12, 13], 'every response moves through, with or without a change');
  t.is(h.decoder.keysFollowed, 1);
});

test("a key's first change looks its old state up once, at the revision before it; later responses wait their turn", async (t) => {
  const h = harness();
  h.decoder.push([put('/package/p/state', 'Running', 20, 7), put('/model/m/state', 'Dead', 20, 4), put('/package/p/state', 'Error', 21, 8)]);
  h.decoder.push([put('/scenario/s/state', 'Idle', 22, 1)]); // needs nothing, but comes after the first
  h.decoder.push([del('/model/m/state', 23)]);
  await tick();
  t.is(h.calls.length, 1);
  t.deepEqual(h.calls[0]!.lookups, [
    { key: '/package/p/state', revision: 19 },
    { key: '/model/m/state', revision: 19 },
  ]);
  t.deepEqual(h.delivered, [], 'nothing before the look-up is answered');
  h.calls[0]!.answer(['Degraded', undefined]);
  await tick();
  t.is(h.calls.length, 1, 'no second look-up: both keys are followed now');
  t.deepEqual(h.changes(), [
    'package/p@20.0: Degraded -> Running',
    'model/m@20.1: - -> Dead',
    'package/p@21.0: Running -> Error',
    'scenario/s@22.0: - -> Idle',
    'model/m@23.0: Dead -> -',
  ]);
});

test('a delete as the first change is looked up; a value that is not a state reads as absent', async (t) => {
  const h = harness();
  h.decoder.push([del('/model/gone/state', 31), put('/model/odd/state', 'Running', 31, 2)]);
  await tick();
  t.deepEqual(h.calls[0]!.lookups, [
    { key: '/model/gone/state', revision: 30 },
    { key: '/model/odd/state', revision: 30 },
  ]);
  h.calls[0]!.answer(['Paused', 'not-a-state']);
  await tick();
  t.deepEqual(h.changes(), ['model/gone@31.0: Paused -> -', 'model/odd@31.1: - -> Running']);
});

test('a failed look-up is reported once and nothing after it is delivered', async (t) => {
  const h = harness();
  h.decoder.push([put('/model/a/state', 'Running', 40, 2)]);
  h.decoder.push([put('/model/b/state', 'Running', 41, 1)]);
  await tick();
  h.calls[0]!.fail(new ReplayLookupCompacted(39));
  await tick();
  t.is(h.errors.length, 1);
  t.true(h.errors[0] instanceof ReplayLookupCompacted);
  h.decoder.push([put('/model/c/state', 'Running', 42, 1)]);
  await tick();
  t.deepEqual(h.delivered, []);
});

test('closed while a look-up is under way: its answer and later responses deliver nothing', async (t) => {
  const h = harness();
  h.decoder.push([put('/model/a/state', 'Running', 50, 2)]);
  await tick();
  h.decoder.close();
  h.calls[0]!.answer(['Created']);
  h.decoder.push([put('/model/b/state', 'Running', 51, 1)]);
  await tick();
  t.deepEqual(h.delivered, []);
  t.deepEqual(h.errors, []);
});
