// createEtcdClient against a real etcd: a call that ran out of its deadline leaves every
// connection to the member as it is, where etcd3 closed them all (and a gRPC caller's short
// deadlines then cost the leader its lease); a member that is down still has its clients closed
// and made again.
import test from 'ava';
import type * as grpc from '@grpc/grpc-js';
import { GRPCDeadlineExceededError, GRPCUnavailableError, type Etcd3 } from 'etcd3';
import { parseConfig } from '../../src/config/config.js';
import { createEtcdClient, etcdChannelOptions, ETCD_CHANNEL_OPTIONS, FIRST_SKIP_MS, HUNG_AFTER_MS } from '../../src/etcd/client.js';
import { ConnectionPool } from 'etcd3/lib/connection-pool.js';
import { silentEndpoint } from '../helpers/silent-etcd.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  await etcd?.stop();
});

/** etcd3 1.1.2's service clients of its one member, by service name. */
function services(client: Etcd3): Record<string, grpc.Client | undefined> {
  return (client as unknown as { pool: { hosts: { cachedServices: Record<string, grpc.Client | undefined> }[] } }).pool.hosts[0]!.cachedServices;
}

test.serial("300 reads whose deadline passes close no connection: the lease stays kept alive and a slow call in flight is answered", async (t) => {
  const client = createEtcdClient(parseConfig({ etcd: { endpoints: [etcd.endpoint] } }).etcd);
  t.teardown(() => client.close());
  await client.put('/client-test/k').value('v').exec();
  const kvBefore = services(client).KV;
  t.truthy(kvBefore);
  const lease = client.lease(2, { autoKeepAlive: true });
  await lease.grant();
  const leaseClient = services(client).Lease;
  let lost = false;
  lease.on('lost', () => (lost = true));

  // In flight during the storm: a range of 2,000 keys with a normal deadline.
  await Promise.all(Array.from({ length: 2000 }, (_, i) => client.put(`/client-test/many/${i}`).value('x'.repeat(100)).exec()));
  const slow = client.getAll().prefix('/client-test/many/').strings();
  const storm = await Promise.allSettled(
    Array.from({ length: 300 }, (_, i) => client.kv.range({ key: Buffer.from('/client-test/k') }, { deadline: Date.now() + (i % 3) })),
  );
  const failed = storm.filter((r) => r.status === 'rejected');
  t.true(failed.length > 0, 'some calls ran out of their deadline');
  for (const r of failed) t.true((r as PromiseRejectedResult).reason instanceof GRPCDeadlineExceededError, 'typed as before');
  t.is(Object.keys(await slow).length, 2000, 'the call in flight was answered');
  t.is(services(client).KV, kvBefore, 'the KV client was not closed');
  t.is(services(client).Lease, leaseClient, 'the lease client was not closed');
  await new Promise((r) => setTimeout(r, 2500));
  t.false(lost, 'the lease was kept alive past its TTL');
  t.is((await client.get('/client-test/k').string()), 'v');
  await lease.revoke();
});

test.serial('a member that is down still has its clients closed, and the next call after it is back goes through', async (t) => {
  const client = createEtcdClient(parseConfig({ etcd: { endpoints: [etcd.endpoint], requestTimeout: 2000 } }).etcd);
  t.teardown(() => client.close());
  await client.put('/client-test/down').value('v').exec();
  const kvBefore = services(client).KV;
  await etcd.kill('SIGKILL');
  try {
    const err = await t.throwsAsync(client.get('/client-test/down').string());
    t.true(err instanceof GRPCUnavailableError, String(err));
    t.not(services(client).KV, kvBefore, "UNAVAILABLE closed the member's clients");
  } finally {
    await etcd.restart();
  }
  t.is(await client.get('/client-test/down').string(), 'v');
});

test.serial(`a hung member (connections open, nothing answered) beside a live one: after one call waits past its deadline there (at least HUNG_AFTER_MS, ${HUNG_AFTER_MS} ms), calls go to the live one for FIRST_SKIP_MS`, async (t) => {
  // Found by black-box probing: one member of three SIGSTOPped for 60 s made 10–25 % of
  // SendStateChange calls fail and /readyz flap, the other two answering at once.
  const hung = await silentEndpoint(t);
  const told: [string, number][] = [];
  // The hung member last: etcd3's deterministic order tries it first.
  const client = createEtcdClient(parseConfig({ etcd: { endpoints: [etcd.endpoint, hung], requestTimeout: 2000 } }).etcd, { onMemberHung: (m, forMs) => told.push([m, forMs]) });
  ConnectionPool.deterministicOrder = true;
  t.teardown(() => {
    ConnectionPool.deterministicOrder = false;
    client.close();
  });
  await etcd.client().put('/client-test/hung').value('v').exec();
  const outcomes: string[] = [];
  for (let i = 0; i < 6; i++) {
    const started = Date.now();
    const r = await client.kv.range({ key: Buffer.from('/client-test/hung') }, { deadline: started + HUNG_AFTER_MS + 200 }).then(
      (res) => `${res.kvs[0]?.value.toString()}`,
      (err: unknown) => (err instanceof GRPCDeadlineExceededError ? 'deadline' : String(err)),
    );
    outcomes.push(`${r} ${Date.now() - started < HUNG_AFTER_MS ? 'fast' : 'slow'}`);
  }
  t.deepEqual(outcomes, ['deadline slow', 'v fast', 'v fast', 'v fast', 'v fast', 'v fast']);
  t.deepEqual(told, [[hung, FIRST_SKIP_MS]]);
});

test('an endpoint written with a trailing slash reaches etcd (the client took `host:port/` for a name it could not parse)', async (t) => {
  const client = createEtcdClient(parseConfig({ etcd: { endpoints: [`${etcd.endpoint}/`] } }).etcd);
  t.teardown(() => client.close());
  await client.put('/slash/k').value('v');
  t.is(await client.get('/slash/k').string(), 'v');
});

// Over a saturated narrow link a keepalive ping's answer waits behind the data already sent: at
// 64 kbit/s every connection was dropped 15 s after it opened (black-box probing). The keepalive
// is configured (etcd.keepaliveTime, etcd.keepaliveTimeout); the rest of the channel stays as it is.
test('the etcd channels take the configured keepalive, and nothing else changes', (t) => {
  const defaults = parseConfig({}).etcd;
  t.deepEqual(etcdChannelOptions(defaults), ETCD_CHANNEL_OPTIONS, 'the defaults are the channel options');
  const slow = etcdChannelOptions({ keepaliveTime: 20_000, keepaliveTimeout: 30_000 });
  t.is(slow['grpc.keepalive_time_ms'], 20_000);
  t.is(slow['grpc.keepalive_timeout_ms'], 30_000);
  t.deepEqual({ ...slow, 'grpc.keepalive_time_ms': 0, 'grpc.keepalive_timeout_ms': 0 }, { ...ETCD_CHANNEL_OPTIONS, 'grpc.keepalive_time_ms': 0, 'grpc.keepalive_timeout_ms': 0 });
});
