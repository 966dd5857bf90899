// The etcd state store: guarded writes, bounded history, deletes that take history along.
import test from 'ava';
import { KeyLayout } from '../../reconcilers/keys.js';
import type { HistoryEntry, StoredRevision } from '../../reconcilers/ports.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  await etcd?.stop();
});

const entry = (from: string | null, to: string): HistoryEntry => ({
  kind: 'model',
  name: 'm',
  from,
  to,
  at: new Date().toISOString(),
  reason: 'test',
  source: 'test',
  drawn: true,
});

async function stored(keys: KeyLayout): Promise<StoredRevision> {
  const kv = (await etcd.client().kv.range({ key: Buffer.from(keys.stateKey('model', 'm')) })).kvs[0]!;
  return { modRevision: Number(kv.mod_revision), version: Number(kv.version) };
}

test('history keeps the last N entries, in order, and goes with the state', async (t) => {
  const keys = new KeyLayout('/ss1');
  const store = new EtcdStateStore({ client: etcd.client(), keys, historyLength: 5, requestTimeoutMs: 3000 });
  const states = ['Running', 'Paused'];
  let prev: string | null = null;
  let expected: StoredRevision | undefined;
  for (let i = 0; i < 12; i++) {
    const to = states[i % 2]!;
    const res = await store.writeState({ kind: 'model', name: 'm', to, expected, history: entry(prev, to) });
    t.true(res.committed);
    prev = to;
    expected = await stored(keys);
  }
  const history = await etcd.client().getAll().prefix(keys.historyPrefix('model', 'm')).strings();
  const seqs = Object.keys(history).map((k) => Number(k.slice(k.lastIndexOf('/') + 1)));
  t.deepEqual(seqs, [8, 9, 10, 11, 12]);
  t.deepEqual(
    Object.values(history).map((v) => (JSON.parse(v) as HistoryEntry).to),
    ['Paused', 'Running', 'Paused', 'Running', 'Paused'],
  );
  // A stale expectation loses: nothing is written.
  const stale = { modRevision: expected!.modRevision - 1, version: expected!.version - 1 };
  t.false((await store.writeState({ kind: 'model', name: 'm', to: 'Dead', expected: stale, history: entry('Paused', 'Dead') })).committed);
  t.is(await etcd.client().get(keys.stateKey('model', 'm')).string(), 'Paused');
  // "Must not exist yet" loses against an existing key.
  t.false((await store.writeState({ kind: 'model', name: 'm', to: 'Dead', expected: undefined, history: entry(null, 'Dead') })).committed);

  t.true((await store.deleteState({ kind: 'model', name: 'm', expected: expected! })).committed);
  t.is(await etcd.client().get(keys.stateKey('model', 'm')).string(), null);
  t.deepEqual(await etcd.client().getAll().prefix(keys.historyPrefix('model', 'm')).keys(), []);
});

test('history length 0 writes no history', async (t) => {
  const keys = new KeyLayout('/ss2');
  const store = new EtcdStateStore({ client: etcd.client(), keys, historyLength: 0, requestTimeoutMs: 3000 });
  t.true((await store.writeState({ kind: 'model', name: 'm', to: 'Running', expected: undefined, history: entry(null, 'Running') })).committed);
  t.deepEqual(await etcd.client().getAll().prefix(keys.history).keys(), []);
});
