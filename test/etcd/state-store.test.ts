// The etcd state store: guarded writes, bounded history, deletes that take history along.
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../domain/keys.js';
import type { HistoryEntry, StateTransition, StoredRevision } from '../../reconcilers/ports.js';
import * as grpc from '@grpc/grpc-js';
import { EtcdStateStore, type TxnSender } from '../../src/etcd/state-store.js';
import { EtcdWatchClient } from '../../src/etcd/watch-client.js';
import { encodeTxnRequest, type TxnRequest } from '../../src/etcd/txn-request-encoder.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  await etcd?.stop();
});

/** The two ways a transaction goes to etcd: through etcd3, and encoded by hand on the watch client. */
const PATHS: [string, () => { txn?: TxnSender }][] = [
  ['etcd3', () => ({})],
  ['by hand', () => ({ txn: etcd.watchClient() })],
];

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

for (const [path, via] of PATHS) {
  test(`${path}: history keeps the last N entries, in order, and goes with the state`, async (t) => {
    const keys = new KeyLayout(`/ss1-${path.replace(' ', '-')}`);
    const store = new EtcdStateStore({ client: etcd.client(), ...via(), keys, historyLength: 5, requestTimeoutMs: 3000 });
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

    // The model's offloading records go with it; another model's (even one whose name extends it) stay.
    await etcd.client().put(`${keys.offloadingPrefix('m')}000000000000001-a`).value('{}');
    await etcd.client().put(`${keys.offloadingPrefix('m2')}000000000000001-a`).value('{}');
    t.true((await store.deleteState({ kind: 'model', name: 'm', expected: expected! })).committed);
    t.is(await etcd.client().get(keys.stateKey('model', 'm')).string(), null);
    t.deepEqual(await etcd.client().getAll().prefix(keys.historyPrefix('model', 'm')).keys(), []);
    t.deepEqual(await etcd.client().getAll().prefix(keys.offloadingPrefix('m')).keys(), []);
    t.is((await etcd.client().getAll().prefix(keys.offloadingPrefix('m2')).keys()).length, 1);
  });
}

for (const [path, via] of PATHS) {
  test(`${path}: history length 0 writes no history`, async (t) => {
    const keys = new KeyLayout(`/ss2-${path.replace(' ', '-')}`);
    const store = new EtcdStateStore({ client: etcd.client(), ...via(), keys, historyLength: 0, requestTimeoutMs: 3000 });
    t.true((await store.writeState({ kind: 'model', name: 'm', to: 'Running', expected: undefined, history: entry(null, 'Running') })).committed);
    t.deepEqual(await etcd.client().getAll().prefix(keys.history).keys(), []);
  });
}

for (const [path, via] of PATHS) {
  test(`${path}: a state key deleted by someone else: its history is trimmed to what the level accounts for, under the state's guard`, async (t) => {
    const keys = new KeyLayout(`/ss-trim-${path.replace(' ', '-')}`);
    const client = etcd.client();
    const store = new EtcdStateStore({ client, ...via(), keys, historyLength: 50, requestTimeoutMs: 3000 });
    const seqs = async (): Promise<number[]> => (await client.getAll().prefix(keys.historyPrefix('model', 'm')).keys()).map((k) => Number(k.slice(k.lastIndexOf('/') + 1)));
    let expected: StoredRevision | undefined;
    for (const to of ['Created', 'Running', 'Paused', 'Running', 'Exited']) {
      t.true((await store.writeState({ kind: 'model', name: 'm', to, expected, history: entry(null, to) })).committed);
      expected = await stored(keys);
    }
    // A neighbour whose name extends this one keeps its history.
    t.true((await store.writeState({ kind: 'model', name: 'm2', to: 'Running', expected: undefined, history: entry(null, 'Running') })).committed);
    t.deepEqual(await seqs(), [1, 2, 3, 4, 5]);

    // Someone deletes the state key: the history is left.
    await client.delete().key(keys.stateKey('model', 'm'));
    // Created again at version 1 (its entry 1 overwritten): entries 2 to 5 are another key's.
    t.true((await store.writeState({ kind: 'model', name: 'm', to: 'Running', expected: undefined, history: entry(null, 'Running') })).committed);
    const now = await stored(keys);
    t.is(now.version, 1);
    // A guard on an older revision of the state: nothing removed.
    t.false((await store.trimHistory('model', 'm', { modRevision: now.modRevision - 1, version: 1 })).committed);
    t.false((await store.trimHistory('model', 'm', undefined)).committed, 'absent, but the state is there');
    t.deepEqual(await seqs(), [1, 2, 3, 4, 5]);
    t.true((await store.trimHistory('model', 'm', now)).committed);
    t.deepEqual(await seqs(), [1], 'below, at and past the version: entry 1 kept, 2 and on removed');
    t.is((JSON.parse((await client.get(keys.historyKey('model', 'm', 1)).string())!) as HistoryEntry).to, 'Running');

    // Deleted again and not created again: every entry goes; the neighbour's stay.
    await client.delete().key(keys.stateKey('model', 'm'));
    t.true((await store.trimHistory('model', 'm', undefined)).committed);
    t.deepEqual(await seqs(), []);
    t.deepEqual((await client.getAll().prefix(keys.historyPrefix('model', 'm2')).keys()).length, 1);
  });
}

/** The real client, with the most transactions it ever had outstanding at once. */
function countingClient(): { client: Etcd3; most: () => number; txns: () => number } {
  const real = etcd.client();
  let outstanding = 0;
  let most = 0;
  let txns = 0;
  const kv = {
    txn: (req: Parameters<Etcd3['kv']['txn']>[0], opts?: Parameters<Etcd3['kv']['txn']>[1]) => {
      outstanding++;
      txns++;
      most = Math.max(most, outstanding);
      return real.kv.txn(req, opts).finally(() => outstanding--);
    },
  };
  return { client: { kv } as unknown as Etcd3, most: () => most, txns: () => txns };
}

test('group commit: writes that fill whole transactions go out at once; a few wait for the slot', async (t) => {
  const keys = new KeyLayout('/ss-group');
  const write = (store: EtcdStateStore, i: number) =>
    store.writeState({ kind: 'model', name: `m${i}`, to: 'Running', expected: undefined, history: { ...entry(null, 'Running'), name: `m${i}` } });

  // 400 writes of 2 operations at once: about 7 full transactions, up to 4 in flight although
  // only 1 may be outstanding while a batch can still grow.
  const many = countingClient();
  const store = new EtcdStateStore({ client: many.client, keys, historyLength: 5, requestTimeoutMs: 5000, maxInFlight: 1, maxFullInFlight: 4 });
  const results = await Promise.all(Array.from({ length: 400 }, (_, i) => write(store, i)));
  t.true(results.every((r) => r.committed));
  t.is(Object.keys(await etcd.client().getAll().prefix(keys.statePrefix('model')).strings()).length, 400);
  t.true(many.most() > 1, `at most ${many.most()} in flight`);
  t.true(many.most() <= 4, `at most ${many.most()} in flight`);
  t.true(many.txns() <= 10, `${many.txns()} transactions for 400 writes`);

  // Writes that do not fill a transaction wait for the one slot and then go together.
  const few = countingClient();
  const small = new EtcdStateStore({ client: few.client, keys: new KeyLayout('/ss-group-few'), historyLength: 5, requestTimeoutMs: 5000, maxInFlight: 1, maxFullInFlight: 4 });
  const first = write(small, 0);
  await Promise.resolve();
  const rest = await Promise.all(Array.from({ length: 20 }, (_, i) => write(small, i + 1)));
  t.true((await first).committed && rest.every((r) => r.committed));
  t.is(few.most(), 1);
  t.is(few.txns(), 2, 'the first write alone, the 20 that waited in one transaction');
});

for (const [path, via] of PATHS) {
  test(`${path}: writeStates: several transitions in one transaction, committed only while every state read is unchanged`, async (t) => {
    const keys = new KeyLayout(`/ss-multi-${path.replace(' ', '-')}`);
    const committed: string[][] = [];
    const store = new EtcdStateStore({ client: etcd.client(), ...via(), keys, historyLength: 3, requestTimeoutMs: 3000, onCommit: (changes) => committed.push(changes.map((c) => c.key)) });
    const at = new Date().toISOString();
    const t1 = (kind: 'model' | 'package', name: string, to: string, expected?: StoredRevision) => ({
      kind,
      name,
      to,
      expected,
      history: { kind, name, from: null, to, at, reason: 'test', source: 'test', drawn: true },
    });
    const sibling = await store.writeState(t1('model', 'other', 'Running'));
    t.true(sibling.committed);
    const read = async (key: string) => (await etcd.client().kv.range({ key: Buffer.from(key) })).kvs[0];
    const otherAt = await read(keys.stateKey('model', 'other'));
    const otherSeen = { modRevision: Number(otherAt!.mod_revision), version: Number(otherAt!.version) };

    // The sibling moves on after it was read: nothing of the transaction is written.
    await etcd.client().put(keys.stateKey('model', 'other')).value('Dead');
    const stale = await store.writeStates([t1('model', 'm', 'Dead'), { ...t1('package', 'p', 'Error'), reconcileRequest: { put: { package: 'p', state: 'Error', requestedAt: at, deliveries: 0 } } }], [{ kind: 'model', name: 'other', expected: otherSeen }]);
    t.false(stale.committed);
    t.is(await read(keys.stateKey('model', 'm')), undefined);
    t.is(await read(keys.stateKey('package', 'p')), undefined);
    t.is(await read(keys.reconcileRequestKey('p')), undefined);

    // Read again: all of it at one revision, and the caches told of every key at once.
    const now = await read(keys.stateKey('model', 'other'));
    const fresh = await store.writeStates([t1('model', 'm', 'Dead'), { ...t1('package', 'p', 'Error'), reconcileRequest: { put: { package: 'p', state: 'Error', requestedAt: at, deliveries: 0 } } }], [{ kind: 'model', name: 'other', expected: { modRevision: Number(now!.mod_revision), version: Number(now!.version) } }]);
    t.true(fresh.committed);
    const revs = await Promise.all([keys.stateKey('model', 'm'), keys.stateKey('package', 'p'), keys.reconcileRequestKey('p'), keys.historyKey('package', 'p', 1)].map(async (k) => Number((await read(k))?.mod_revision)));
    t.deepEqual(revs, revs.map(() => (fresh as { revision: number }).revision));
    t.deepEqual(committed.at(-1), [keys.stateKey('model', 'm'), keys.stateKey('package', 'p'), keys.reconcileRequestKey('p')]);

    // A state that must still be absent.
    const absent = await store.writeStates([t1('package', 'q', 'Idle')], [{ kind: 'model', name: 'other', expected: undefined }]);
    t.false(absent.committed, 'model/other exists');
  });
}

test('ownPuts: every watched put of a write is announced before it is sent and released once answered, committed, lost or failed', async (t) => {
  const keys = new KeyLayout('/ss-own');
  const calls: string[] = [];
  const client = etcd.client();
  const store = new EtcdStateStore({
    client,
    keys,
    historyLength: 3,
    requestTimeoutMs: 3000,
    onCommit: (changes) => calls.push(`commit ${changes.map((c) => c.key).join(' ')}`),
    ownPuts: {
      sending: (puts) => calls.push(`sending ${puts.map((p) => `${p.key}=${p.value.slice(0, 11)}`).join(' ')}`),
      answered: (puts) => calls.push(`answered ${puts.map((p) => p.key).join(' ')}`),
    },
  });
  const at = new Date().toISOString();
  const pkg = (to: string, expected?: StoredRevision) => ({
    kind: 'package' as const,
    name: 'p',
    to,
    expected,
    history: { kind: 'package' as const, name: 'p', from: null, to, at, reason: 'test', source: 'test', drawn: true },
    reconcileRequest: { put: { package: 'p', state: to, requestedAt: at, deliveries: 0 } },
  });
  const state = keys.stateKey('package', 'p');
  const request = keys.reconcileRequestKey('p');

  t.true((await store.writeState(pkg('Error'))).committed);
  // The history key is not announced: no informer watches it.
  t.deepEqual(calls.splice(0), [`sending ${state}=Error ${request}={"package":`, `answered ${state} ${request}`, `commit ${state} ${request}`]);

  // A lost guard: announced and released, nothing committed.
  t.false((await store.writeState(pkg('Error'))).committed);
  t.deepEqual(calls.splice(0), [`sending ${state}=Error ${request}={"package":`, `answered ${state} ${request}`]);

  // A request record update announces its one key.
  const kv = (await client.kv.range({ key: Buffer.from(request) })).kvs[0]!;
  const rec = { package: 'p', state: 'Error', requestedAt: at, deliveries: 1 };
  t.true((await store.updateReconcileRequest(rec, { modRevision: Number(kv.mod_revision), version: Number(kv.version) })).committed);
  t.deepEqual(calls.splice(0), [`sending ${request}={"package":`, `answered ${request}`, `commit ${request}`]);

  // etcd gone: the write throws, and its puts are released all the same.
  const gone = new EtcdStateStore({
    client: new (client.constructor as new (o: object) => typeof client)({ hosts: 'http://127.0.0.1:9', dialTimeout: 200 }),
    keys,
    historyLength: 3,
    requestTimeoutMs: 300,
    ownPuts: { sending: (puts) => calls.push(`sending ${puts.length}`), answered: (puts) => calls.push(`answered ${puts.length}`) },
  });
  await t.throwsAsync(gone.writeState(pkg('Idle')));
  t.deepEqual(calls.splice(0), ['sending 2', 'answered 2']);
});

for (const [path, via] of PATHS) {
  test(`${path}: confirmReconcileRequest reads the package's state while the request is where it was, and nothing once it moved`, async (t) => {
    const keys = new KeyLayout(`/ss-confirm-${path.replace(' ', '-')}`);
    const store = new EtcdStateStore({ client: etcd.client(), ...via(), keys, historyLength: 3, requestTimeoutMs: 3000 });
    const at = new Date().toISOString();
    const to = 'Error';
    t.true((await store.writeState({ kind: 'package', name: 'p', to, expected: undefined, history: { ...entry(null, to), kind: 'package', name: 'p' }, reconcileRequest: { put: { package: 'p', state: to, requestedAt: at, deliveries: 0 } } })).committed);
    const kv = (await etcd.client().kv.range({ key: Buffer.from(keys.reconcileRequestKey('p')) })).kvs[0]!;
    const seen = { modRevision: Number(kv.mod_revision), version: Number(kv.version) };
    t.deepEqual(await store.confirmReconcileRequest('p', seen), { packageState: 'Error' });
    t.deepEqual(await store.confirmReconcileRequest('none', { modRevision: 1, version: 1 }), undefined);
    await etcd.client().put(keys.reconcileRequestKey('p')).value('{}');
    t.is(await store.confirmReconcileRequest('p', seen), undefined);
  });
}

test('by hand: an unreachable etcd fails a write as unavailable, after trying each member', async (t) => {
  const wc = new EtcdWatchClient({ endpoints: ['127.0.0.1:9', '127.0.0.1:9'], credentials: grpc.credentials.createInsecure() });
  try {
    const store = new EtcdStateStore({ client: etcd.client(), txn: wc, keys: new KeyLayout('/ss-gone'), historyLength: 3, requestTimeoutMs: 2000 });
    const started = Date.now();
    const err = await t.throwsAsync(store.writeState({ kind: 'model', name: 'm', to: 'Running', expected: undefined, history: entry(null, 'Running') }));
    t.is(err?.name, 'EtcdUnavailableError', err?.message);
    t.true(Date.now() - started < 2000, 'refused connections fail at once, not at the deadline');
  } finally {
    wc.close();
  }
});

test('a write is built into arrays of its exact size: every shape of transition (history full or not, a request put or removed, read guards) gives dense compares and operations, in order', async (t) => {
  const sent: TxnRequest[] = [];
  const store = new EtcdStateStore({
    client: undefined as never,
    txn: { txn: async (req) => (sent.push(req), { header: { revision: 9 }, succeeded: true, responses: [] }) },
    keys: new KeyLayout(''),
    historyLength: 3,
    requestTimeoutMs: 1000,
    ownPuts: { sending: () => undefined, answered: () => undefined },
  });
  const pkg = (name: string, version: number | undefined, reconcileRequest?: StateTransition['reconcileRequest']): StateTransition => ({
    kind: 'package',
    name,
    to: 'Error',
    expected: version === undefined ? undefined : { modRevision: 5, version },
    history: { ...entry(null, 'Error'), kind: 'package', name },
    ...(reconcileRequest ? { reconcileRequest } : {}),
  });
  const put = { put: { package: 'p', state: 'Error', requestedAt: 'now', deliveries: 0 } };
  const cases: [StateTransition[], number][] = [
    [[pkg('a', undefined)], 0],
    [[pkg('b', 2)], 0], // version 3: history not yet full
    [[pkg('c', 3)], 0], // version 4: the oldest entry falls out
    [[pkg('d', 5, put)], 2],
    [[pkg('e', undefined, { delete: true }), pkg('f', 7, put)], 1],
  ];
  for (const [transitions, guards] of cases) {
    const read = Array.from({ length: guards }, (_, i) => ({ kind: 'model' as const, name: `g${i}`, expected: { modRevision: 3, version: 1 } }));
    t.true((await store.writeStates(transitions, read)).committed);
    const req = sent.at(-1)!;
    const expectedOps = transitions.reduce((n, tr) => n + 2 + ((tr.expected?.version ?? 0) + 1 > 3 ? 1 : 0) + (tr.reconcileRequest ? 1 : 0), 0);
    t.is(req.compare.length, transitions.length + guards);
    t.is(req.success.length, expectedOps);
    t.true(Object.keys(req.compare).length === req.compare.length && Object.keys(req.success).length === req.success.length, 'no holes');
    t.deepEqual(
      req.compare.map((c) => c.key),
      [...transitions.map((tr) => `/package/${tr.name}/state`), ...read.map((g) => `/model/${g.name}/state`)],
    );
    t.notThrows(() => encodeTxnRequest(req));
  }
});
