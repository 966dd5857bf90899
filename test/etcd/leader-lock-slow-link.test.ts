// The leader lock over a link with a long round trip, on a real etcd through a proxy that delays
// every chunk each way: a 3 s lease (renewals every 1 s, retries after 1.25 s, one more every
// 250 ms, given up at 2 s) over a 500 ms round trip, longer than a retry's twelfth of the lease.
// Black-box probing found leadership moving every 10–25 s at 2 and 4 s round trips on a 15 s
// lease: retries bounded by 1.25 s never got their answer, and each timed out on a stream etcd3
// left writable, which reset every connection to the member, the regular renewal with them.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import { EtcdLeaderLock } from '../../src/etcd/leader-lock.js';
import { silentLogger } from '../../controller/logger.js';
import { parseConfig } from '../../src/config/config.js';
import { createEtcdClient } from '../../src/etcd/client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { startDelayProxy } from '../helpers/delay-proxy.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(() => etcd?.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('over a 500 ms round trip a 3 s lease is held for three leases, and a follower then takes the key', async (t) => {
  const url = new URL(etcd.endpoint);
  const proxy = await startDelayProxy({ host: url.hostname, port: Number(url.port) }, 250);
  t.teardown(() => proxy.stop());
  const slow = () => createEtcdClient(parseConfig({ etcd: { endpoints: [proxy.endpoint], requestTimeout: '3s' } }).etcd);
  const clientA = slow();
  const clientB = slow();
  t.teardown(() => {
    clientA.close();
    clientB.close();
  });
  const keys = new KeyLayout('/slow');
  const lock = (client: ReturnType<typeof slow>, identity: string) =>
    new EtcdLeaderLock({ client, watcher: etcd.watchClient(), key: keys.leader, identity, leaseSeconds: 3, requestTimeoutMs: 3000, logger: silentLogger });
  const a = lock(clientA, 'a');
  const b = lock(clientB, 'b');
  t.true(await a.tryAcquire());
  t.false(await b.tryAcquire(), 'b follows, its lease kept');
  let lost: string | undefined;
  void a.lost().then((r) => (lost = r));
  const direct = etcd.client();
  const leaseId = (await direct.kv.range({ key: Buffer.from(keys.leader) })).kvs[0]!.lease;
  await sleep(9_000);
  t.is(lost, undefined, `held: ${lost}`);
  t.true(a.mayAct());
  t.is((await direct.kv.range({ key: Buffer.from(keys.leader) })).kvs[0]?.lease, leaseId, 'renewed in etcd all along');
  // b's kept lease, renewed over the same link, campaigns as soon as a gives the key up.
  await a.release();
  const until = Date.now() + 5_000;
  let won = false;
  while (!won && Date.now() < until) won = await b.tryAcquire().catch(() => false);
  t.true(won, 'b took the key within 5 s');
  await b.release();
});
