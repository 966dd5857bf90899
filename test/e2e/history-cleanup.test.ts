// History left behind by a state key someone else deleted (found by black-box probing: scenario
// states deleted to free places under the undefined-scenario limit left 9,908 names of history;
// a model's state deleted and created again showed five entries of the old key after the new
// one's first). The whole program on a real etcd: the history goes with such a deletion, and a
// state created again has only its own entries.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { StateManagerConnectionClient } from '../../src/generated/statemanager/StateManagerConnection.js';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startApp } from '../helpers/app.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { proto, scenarioChange as change, sendStateChange } from '../grpc/_support.js';

let etcd: EtcdServer;
let ac: FakeActionController;

test.before(async () => {
  etcd = await startEtcd();
  ac = await startActionController();
});

test.after.always(async () => {
  await ac?.stop();
  await etcd?.stop();
});

test('a state key deleted by someone else takes its history along; created again, it has only its own', async (t) => {
  const w = new FleetWriter(etcd.client(), '/hist-gc');
  await w.packageDef('p', ['m']);
  await w.container('n1', 'c1', 'm', 'running');
  const app = await startApp(etcd, ac.addr, { keyPrefix: w.prefix, grpc: { addr: '127.0.0.1:0' }, http: { addr: '127.0.0.1:0' } });
  t.teardown(() => app.stop());
  const { grpc: port } = await app.serve();
  const c: StateManagerConnectionClient = new proto.statemanager.StateManagerConnection(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => c.close());
  const history = async (kind: 'model' | 'scenario', name: string): Promise<HistoryEntry[]> =>
    Object.values(await w.client.getAll().prefix(w.keys.historyPrefix(kind, name)).strings()).map((v) => JSON.parse(v) as HistoryEntry);

  // A scenario with four entries, its state deleted directly (as an operator frees a place).
  for (const [target, current] of [['Idle', ''], ['Waiting', 'Idle'], ['Satisfied', 'Waiting'], ['Allowed', 'Satisfied']] as const) {
    t.is((await sendStateChange(c, change('s1', target, current))).error_code, 'ERROR_CODE_SUCCESS');
  }
  await sendStateChange(c, change('s2', 'Idle'));
  t.is((await history('scenario', 's1')).length, 4);
  await w.client.delete().key(w.keys.stateKey('scenario', 's1'));
  await eventually(async () => assert.deepStrictEqual(await history('scenario', 's1'), []));
  t.is((await history('scenario', 's2')).length, 1, 'another scenario keeps its history');
  // Created again: one entry, its own.
  t.is((await sendStateChange(c, change('s1', 'Idle'))).error_code, 'ERROR_CODE_SUCCESS');
  t.deepEqual((await history('scenario', 's1')).map((e) => [e.from, e.to]), [[null, 'Idle']]);

  // A model with several entries; its state key deleted while its container runs: statemanager
  // writes it again at version 1, and only that entry is left.
  await eventually(async () => assert.strictEqual(await w.state('model', 'm'), 'Running'));
  await w.container('n1', 'c1', 'm', 'paused');
  await eventually(async () => assert.strictEqual(await w.state('model', 'm'), 'Paused'));
  await w.container('n1', 'c1', 'm', 'running');
  await eventually(async () => assert.strictEqual(await w.state('model', 'm'), 'Running'));
  t.true((await history('model', 'm')).length >= 3);
  await w.client.delete().key(w.keys.stateKey('model', 'm'));
  await eventually(async () => {
    assert.strictEqual(await w.state('model', 'm'), 'Running');
    assert.deepStrictEqual((await history('model', 'm')).map((e) => e.to), ['Running']);
  });

  // statemanager's own deletion (no package lists the model now) takes the history in its own
  // transaction: nothing is queued for it — unless the deletion's watch event came before the
  // transaction's answer (then one trim finds nothing left to remove).
  const trims = async (): Promise<number> => {
    const text = await app.metrics.registry.metrics();
    return text.split('\n').filter((l) => l.startsWith('controller_runtime_reconcile_total{') && l.includes('controller="history"')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  };
  const before = await trims();
  t.true(before >= 2, `the two deletions above were reconciled (${before})`);
  await w.packageDef('p', ['other']);
  await eventually(async () => assert.strictEqual(await w.state('model', 'm'), null));
  t.deepEqual(await history('model', 'm'), []);
  await new Promise((r) => setTimeout(r, 300));
  t.true((await trims()) - before <= 1, `${(await trims()) - before} trims after statemanager's own deletion`);
});

test('history left behind while no replica watched (deleted before start) is found after winning leadership and trimmed by the level', async (t) => {
  const w = new FleetWriter(etcd.client(), '/hist-sweep');
  const entry = (kind: string, name: string, from: string | null, to: string) => JSON.stringify({ kind, name, from, to, at: '2026-12-01T00:00:00.000Z', reason: 'an earlier life', source: 'controller/old' });
  const put = (k: string, v: string) => w.client.put(k).value(v);
  // A scenario whose state is gone: four entries. A scenario created again at version 1 over
  // three older entries. A live scenario whose two entries are its own.
  for (const [i, [from, to]] of ([[null, 'Idle'], ['Idle', 'Waiting'], ['Waiting', 'Satisfied'], ['Satisfied', 'Allowed']] as const).entries()) await put(w.keys.historyKey('scenario', 'gone', i + 1), entry('scenario', 'gone', from, to));
  for (const [i, [from, to]] of ([[null, 'Idle'], ['Idle', 'Waiting'], ['Waiting', 'Satisfied']] as const).entries()) await put(w.keys.historyKey('scenario', 'again', i + 1), entry('scenario', 'again', from, to));
  await put(w.keys.stateKey('scenario', 'again'), 'Idle');
  await put(w.keys.historyKey('scenario', 'again', 1), entry('scenario', 'again', null, 'Idle'));
  await put(w.keys.stateKey('scenario', 'live'), 'Idle');
  await put(w.keys.historyKey('scenario', 'live', 1), entry('scenario', 'live', null, 'Idle'));
  await put(w.keys.stateKey('scenario', 'live'), 'Waiting');
  await put(w.keys.historyKey('scenario', 'live', 2), entry('scenario', 'live', 'Idle', 'Waiting'));
  const names = async (name: string) => Object.keys(await w.client.getAll().prefix(w.keys.historyPrefix('scenario', name)).strings()).length;

  const app = await startApp(etcd, ac.addr, { keyPrefix: w.prefix, history: { length: 50, sweepAfter: '100ms' } });
  t.teardown(() => app.stop());
  await eventually(async () => assert.deepStrictEqual([await names('gone'), await names('again'), await names('live')], [0, 1, 2]), { timeoutMs: 10_000 });
  t.deepEqual(Object.values(await w.client.getAll().prefix(w.keys.historyPrefix('scenario', 'again')).strings()).map((v) => (JSON.parse(v) as HistoryEntry).to), ['Idle']);
});
