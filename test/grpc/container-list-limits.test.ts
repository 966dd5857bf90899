// SendChangedContainerList against an etcd whose --max-txn-ops is lower than statemanager was told
// (grpc.etcdMaxTxnOps, 128 by default): a transaction etcd refuses as too large wrote nothing, so
// the list goes again in smaller transactions, and later lists start from the smaller size
// (black-box probing: every list that changed more than etcd's limit was refused
// RESOURCE_EXHAUSTED, again at every resend; 4,000 dead containers never recorded).
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { TxnOpsLimit, MIN_TXN_OPS } from '../../src/etcd/txn-ops-limit.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { sendContainerList, snapshot, startTestServer, stopAll } from './_support.js';

let etcd: EtcdServer;
let client: Etcd3;
test.before(async () => {
  etcd = await startEtcd(['--max-txn-ops', '16']);
  client = etcd.client();
});
test.after.always(async () => {
  await stopAll();
  await etcd?.stop();
});

const list = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ id: `c${from + i}`, image: 'img', annotation: { model: `m${(from + i) % 7}` } }));

for (const [title, config] of [
  ['told nothing (128)', {}],
  ['told 64, still over etcd\'s 16', { etcdMaxTxnOps: 64 }],
] as const) {
  test(`${title}: a list of 200 new containers is written whole, in smaller transactions; one warning per cut; the next list goes at the smaller size at once`, async (t) => {
    const s = await startTestServer(client, config);
    t.is(await sendContainerList(s.client(), { node_name: 'n', containers: list(200) }), 'node n: 200 put, 0 deleted, 0 unchanged');
    t.is((await snapshot(client, s.keys.containerPrefix('n'))).kvs.size, 200);
    const cuts = s.logger.lines.filter((l) => l.level === 'warn' && /container list's transaction as too large/.test(l.message));
    // 128 → 64 → 32 → 16 (15 writes and the list's count: etcd's 16), or 64 → 32 → 16.
    t.deepEqual(cuts.map((l) => l.meta.to), config.etcdMaxTxnOps === 64 ? [32, 16] : [64, 32, 16]);
    t.true(cuts.every((l) => /set grpc\.etcdMaxTxnOps/.test(l.message)));
    // A second node's list: no more cuts.
    t.is(await sendContainerList(s.client(), { node_name: 'o', containers: list(100, 1000) }), 'node o: 100 put, 0 deleted, 0 unchanged');
    t.is(s.logger.lines.filter((l) => l.level === 'warn' && /too large/.test(l.message)).length, cuts.length);
    // Deletions too: a shorter list.
    t.is(await sendContainerList(s.client(), { node_name: 'n', containers: list(20) }), 'node n: 0 put, 180 deleted, 20 unchanged');
  });
}

test('told etcd\'s own limit (16): nothing is cut', async (t) => {
  const s = await startTestServer(client, { etcdMaxTxnOps: 16 });
  t.is(await sendContainerList(s.client(), { node_name: 'p', containers: list(200) }), 'node p: 200 put, 0 deleted, 0 unchanged');
  t.is(s.logger.lines.filter((l) => /too large/.test(l.message)).length, 0);
});

test(`TxnOpsLimit: halved at each cut, never below ${MIN_TXN_OPS}; a cut at the floor says there is nothing smaller`, (t) => {
  const cuts: [number, number][] = [];
  const limit = new TxnOpsLimit(20, (from, to) => cuts.push([from, to]));
  t.is(limit.get(), 20);
  t.true(limit.cut());
  t.true(limit.cut());
  t.is(limit.get(), 5);
  t.true(limit.cut(), '5 → 4: the floor');
  t.is(limit.get(), MIN_TXN_OPS);
  t.false(limit.cut());
  t.deepEqual(cuts, [[20, 10], [10, 5], [5, 4]]);
  t.is(new TxnOpsLimit(2).get(), MIN_TXN_OPS, 'configured below the floor: the floor');
});
