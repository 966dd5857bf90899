// etcdPreviousValues against a real etcd: each key's value at its own revision, in the order asked,
// in transactions of at most LOOKUPS_PER_TRANSACTION (below, at and past it), and a compacted
// revision reported as ReplayLookupCompacted.
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { etcdPreviousValues, LOOKUPS_PER_TRANSACTION } from '../../src/etcd/previous-values.js';
import { ReplayLookupCompacted, type PreviousLookup } from '../../src/state-api/replay-decoder.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  await etcd?.stop();
});

/** etcd3's client with its transactions counted. */
function counting(client: Etcd3): { client: Etcd3; txns: () => number } {
  let txns = 0;
  const kv = client.kv;
  const counted = new Proxy(kv, {
    get(target, prop, receiver) {
      if (prop === 'txn') return (...args: Parameters<typeof kv.txn>) => (txns++, kv.txn(...args));
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  return { client: new Proxy(client, { get: (target, prop, receiver) => (prop === 'kv' ? counted : (Reflect.get(target, prop, receiver) as unknown)) }), txns: () => txns };
}

test.serial('values at each lookup\'s own revision, in order; absent keys undefined; transactions of at most 100: below, at and past it', async (t) => {
  const client = etcd.client();
  // Key i: first 'a<i>', then 'b<i>'; the lookups ask for the first value (at the revision before the rewrite).
  const n = LOOKUPS_PER_TRANSACTION + 1;
  const lookups: PreviousLookup[] = [];
  const expected: (string | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const first = Number((await client.put(`/pv/k${i}`).value(`a${i}`).exec()).header.revision);
    await client.put(`/pv/k${i}`).value(`b${i}`).exec();
    lookups.push({ key: `/pv/k${i}`, revision: first });
    expected.push(`a${i}`);
  }
  // One key that did not exist yet at its revision.
  const before = Number((await client.put('/pv/other').value('x').exec()).header.revision);
  await client.put('/pv/late').value('late').exec();
  for (const size of [LOOKUPS_PER_TRANSACTION - 1, LOOKUPS_PER_TRANSACTION, LOOKUPS_PER_TRANSACTION + 1]) {
    const c = counting(client);
    const ask = [...lookups.slice(0, size - 1), { key: '/pv/late', revision: before }];
    const values = await etcdPreviousValues(c.client, 3000)(ask);
    t.deepEqual(values, [...expected.slice(0, size - 1), undefined], `${size} lookups`);
    t.is(c.txns(), size <= LOOKUPS_PER_TRANSACTION ? 1 : 2, `${size} lookups in ${c.txns()} transactions`);
  }
});

test.serial('a revision compacted away is reported as ReplayLookupCompacted, with the revision asked', async (t) => {
  const client = etcd.client();
  const old = Number((await client.put('/pv/c').value('old').exec()).header.revision);
  const now = Number((await client.put('/pv/c').value('new').exec()).header.revision);
  await client.kv.compact({ revision: now });
  const err = await t.throwsAsync(etcdPreviousValues(client, 3000)([{ key: '/pv/c', revision: old }]));
  t.true(err instanceof ReplayLookupCompacted, String(err));
  t.is((err as ReplayLookupCompacted).revision, old);
});
