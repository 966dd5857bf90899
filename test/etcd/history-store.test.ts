// When each listed state was entered, from the history entry its own write added, read in
// transactions of LOOKUPS_PER_TXN single-key reads (ListResourcesByState answered 0 for every
// resource: a Pullpiri compatibility probe). On a real etcd: below, at and past one transaction.
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../domain/keys.js';
import { EtcdHistoryStore, LOOKUPS_PER_TXN } from '../../src/etcd/history-store.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;
let client: Etcd3;

test.before(async () => {
  etcd = await startEtcd();
  client = etcd.client();
});

test.after.always(async () => {
  await etcd?.stop();
});

let prefixes = 0;
const layout = () => new KeyLayout(`/hs${++prefixes}`);

const entry = (to: string, at: string) => JSON.stringify({ kind: 'model', name: 'x', from: null, to, at, reason: 'r', source: 's' });

for (const n of [LOOKUPS_PER_TXN - 1, LOOKUPS_PER_TXN, LOOKUPS_PER_TXN + 1, 4 * LOOKUPS_PER_TXN + 1]) {
  test(`${n} states (one transaction holds ${LOOKUPS_PER_TXN} reads): each one's time from the entry at its version`, async (t) => {
    const keys = layout();
    const states = Array.from({ length: n }, (_, i) => ({ name: `m${String(i).padStart(4, '0')}`, state: 'Running', version: 1 + (i % 3) }));
    const at = (i: number) => new Date(Date.UTC(2026, 11, 6, 12, 0, 0, i)).toISOString();
    for (let i = 0; i < n; i += 50) {
      await Promise.all(states.slice(i, i + 50).map((s, j) => client.put(keys.historyKey('model', s.name, s.version)).value(entry('Running', at(i + j)))));
    }
    const got = await new EtcdHistoryStore(client, keys, 3000).enteredAt('model', states);
    t.deepEqual(got, states.map((_, i) => Date.parse(at(i))));
  });
}

test('no entry at the version (written by another program, or trimmed), an entry of another state, an unreadable one: unknown', async (t) => {
  const keys = layout();
  await client.put(keys.historyKey('model', 'other', 2)).value(entry('Dead', '2026-12-06T12:00:00.000Z'));
  await client.put(keys.historyKey('model', 'bad', 1)).value('{not json');
  await client.put(keys.historyKey('model', 'older', 1)).value(entry('Running', '2026-12-06T12:00:00.000Z'));
  await client.put(keys.historyKey('model', 'ok', 3)).value(entry('Running', '2026-12-06T12:00:01.000Z'));
  const states = [
    { name: 'none', state: 'Running', version: 1 },
    { name: 'other', state: 'Running', version: 2 },
    { name: 'bad', state: 'Running', version: 1 },
    { name: 'older', state: 'Running', version: 2 }, // its entry is at version 1: a rewrite since
    { name: 'ok', state: 'Running', version: 3 },
  ];
  t.deepEqual(await new EtcdHistoryStore(client, keys, 3000).enteredAt('model', states), [undefined, undefined, undefined, undefined, Date.parse('2026-12-06T12:00:01.000Z')]);
});

test('etcd known unreachable: refused at once, without a call', async (t) => {
  const store = new EtcdHistoryStore(client, layout(), 3000, () => false);
  await t.throwsAsync(store.enteredAt('model', [{ name: 'm', state: 'Running', version: 1 }]), { message: 'etcd is unreachable' });
  t.deepEqual(await store.enteredAt('model', []), []);
});

test('an entered time read once is known while the state is the same change: a second list reads nothing from etcd; a new change (version), a key written again after a deletion (same version, another revision) or another state reads again', async (t) => {
  // Found by black-box probing: one client listing 20,000 quiet models read their 20,000 entries
  // every time, half of etcd's CPU.
  const keys = layout();
  await client.put(keys.historyKey('model', 'a', 1)).value(entry('Running', '2026-12-06T12:00:00.000Z'));
  await client.put(keys.historyKey('model', 'a', 2)).value(entry('Dead', '2026-12-06T12:00:05.000Z'));
  await client.put(keys.historyKey('model', 'b', 1)).value(entry('Running', '2026-12-06T12:00:01.000Z'));
  let txns = 0;
  const counting = { kv: { txn: (...args: Parameters<Etcd3['kv']['txn']>) => (txns++, client.kv.txn(...args)) } } as unknown as Etcd3;
  const store = new EtcdHistoryStore(counting, keys, 3000);
  const a1 = { name: 'a', state: 'Running', version: 1, modRevision: 10 };
  const b1 = { name: 'b', state: 'Running', version: 1, modRevision: 11 };
  const first = await store.enteredAt('model', [a1, b1]);
  t.is(txns, 1);
  t.deepEqual(await store.enteredAt('model', [a1, b1]), first);
  t.is(txns, 1, 'the same changes again: nothing read');
  t.deepEqual(await store.enteredAt('model', [{ ...a1, version: 2, state: 'Dead', modRevision: 20 }, b1]), [Date.parse('2026-12-06T12:00:05.000Z'), first[1]]);
  t.is(txns, 2, 'a new change of a: read');
  await store.enteredAt('model', [{ ...b1, modRevision: 30 }]);
  t.is(txns, 3, 'b written again after a deletion (version 1 again, another revision): read');
  await store.enteredAt('model', [{ ...b1, modRevision: 30 }]);
  t.is(txns, 3);
  // A state without a revision (another caller of the store) is always read.
  await store.enteredAt('model', [{ name: 'b', state: 'Running', version: 1 }]);
  t.is(txns, 4);
});

test('the entered times kept are bounded: below and at the bound every state is known; one more state starts again (a state already kept is updated in place)', async (t) => {
  const keys = layout();
  for (const n of ['a', 'b', 'c']) await client.put(keys.historyKey('model', n, 1)).value(entry('Running', '2026-12-06T12:00:00.000Z'));
  let txns = 0;
  const counting = { kv: { txn: (...args: Parameters<Etcd3['kv']['txn']>) => (txns++, client.kv.txn(...args)) } } as unknown as Etcd3;
  const store = new EtcdHistoryStore(counting, keys, 3000, () => true, 2);
  const s = (name: string, modRevision = 10) => ({ name, state: 'Running', version: 1, modRevision });
  await store.enteredAt('model', [s('a')]);
  await store.enteredAt('model', [s('b')]); // at the bound: 2 kept
  await store.enteredAt('model', [s('a'), s('b')]);
  t.is(txns, 2, 'below and at the bound: both known');
  await store.enteredAt('model', [s('a', 11)]); // a kept state changes: updated in place, nothing dropped
  await store.enteredAt('model', [s('a', 11), s('b')]);
  t.is(txns, 3);
  await store.enteredAt('model', [s('c')]); // past the bound: started again with c
  t.is(txns, 4);
  await store.enteredAt('model', [s('c')]);
  t.is(txns, 4, 'c kept');
  await store.enteredAt('model', [s('a', 11)]);
  t.is(txns, 5, 'a was dropped with the rest');
});
