// EtcdListerWatcher's lists against a real etcd: a listed value is read from its page when asked
// (each read the same string), list() hands back plain strings of their own, and key, value and
// revisions are etcd's.
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { WatchBacklogTooLargeError, type KeyValue } from '../../controller/lister-watcher.js';
import { parseConfig } from '../../src/config/config.js';
import * as grpc from '@grpc/grpc-js';
import { createEtcdClient, createEtcdWatchClient, ETCD_CHANNEL_OPTIONS } from '../../src/etcd/client.js';
import { EtcdListerWatcher } from '../../src/etcd/lister-watcher.js';
import { EtcdWatchClient } from '../../src/etcd/watch-client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { startThrottleProxy } from '../helpers/throttle-proxy.js';

let etcd: EtcdServer;
let kv: Etcd3;
let wc: EtcdWatchClient;
test.before(async () => {
  etcd = await startEtcd();
  const config = parseConfig({ etcd: { endpoints: [etcd.endpoint] } }).etcd;
  kv = createEtcdClient(config);
  wc = createEtcdWatchClient(config);
});
test.after.always(async () => {
  wc?.close();
  kv?.close();
  await etcd?.stop();
});

/** Values of every kind a container or definition may hold: multi-byte UTF-8, empty, long, invalid UTF-8. */
const VALUES: [string, Buffer][] = [
  ['a', Buffer.from('{"id":"a","state":{"Status":"running"}}')],
  ['b', Buffer.from('모델 ✓ émoji 🚗')],
  ['c', Buffer.alloc(0)],
  ['d', Buffer.from('x'.repeat(100_000))],
  ['e', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
];

test.serial('a listed page: each value as etcd holds it, the same string on every read; list() the same as plain properties', async (t) => {
  const prefix = '/lw-test/';
  for (const [k, v] of VALUES) await kv.put(prefix + k).value(v);
  await kv.put(prefix + 'a').value(VALUES[0]![1]); // a second version
  const lw = new EtcdListerWatcher(kv, wc, 2); // pages of two keys: three pages
  const pages: KeyValue[][] = [];
  const revision = await lw.listPages(prefix, (items) => pages.push(items));
  t.deepEqual(
    pages.map((p) => p.length),
    [2, 2, 1],
  );
  const listed = pages.flat();
  t.deepEqual(
    listed.map((i) => i.key),
    VALUES.map(([k]) => prefix + k),
  );
  for (const [i, item] of listed.entries()) {
    const expected = VALUES[i]![1].toString();
    t.is(item.value, expected, item.key);
    t.is(item.value, item.value, `${item.key}: read twice`);
    const stored = await kv.get(item.key).exec();
    const s = stored.kvs[0]!;
    t.is(item.modRevision, Number(s.mod_revision));
    t.is(item.createRevision, Number(s.create_revision));
    t.is(item.version, Number(s.version));
  }
  t.is(listed[0]!.version, 2);

  const all = await lw.list(prefix);
  t.is(all.revision, revision);
  t.deepEqual(
    all.items.map((i) => i.key),
    VALUES.map(([k]) => prefix + k),
  );
  for (const [i, item] of all.items.entries()) {
    // An own data property, not a getter over the page's message.
    const d = Object.getOwnPropertyDescriptor(item, 'value');
    t.is(d?.value, VALUES[i]![1].toString(), item.key);
    t.is(d?.get, undefined);
  }
});

test.serial('a list tells of each page that came full (a fleet larger than a page), not of a shorter one', async (t) => {
  // Pages of three keys: a prefix with two keys (below), three (at), four (past: one full page and one of one).
  const fullPages: number[] = [];
  for (const n of [2, 3, 4, 7]) {
    const prefix = `/lw-full-${n}/`;
    for (let i = 0; i < n; i++) await kv.put(`${prefix}${i}`).value('v');
    let full = 0;
    const lw = new EtcdListerWatcher(kv, wc, 3, 30_000, () => full++);
    t.is((await lw.list(prefix)).items.length, n);
    fullPages.push(full);
  }
  t.deepEqual(fullPages, [0, 1, 1, 2]);
});

test.serial('a watch whose catch-up is larger than the client receives ends with WatchBacklogTooLargeError at once, instead of reconnecting to the same catch-up for ever', async (t) => {
  const prefix = '/lw-too-large/';
  const from = Number((await kv.put(prefix + 'first').value('1').exec()).header.revision);
  // Three values of 400 KB: etcd sends a watcher that starts behind them one response of 1.2 MB.
  for (const k of ['a', 'b', 'c']) await kv.put(prefix + k).value('x'.repeat(400_000));
  const config = parseConfig({ etcd: { endpoints: [etcd.endpoint] } }).etcd;
  const small = new EtcdWatchClient({ endpoints: config.endpoints, credentials: grpc.credentials.createInsecure(), channelOptions: { ...ETCD_CHANNEL_OPTIONS, 'grpc.max_receive_message_length': 1024 * 1024 } });
  t.teardown(() => small.close());
  const lw = new EtcdListerWatcher(kv, small);
  const errors: Error[] = [];
  let disconnects = 0;
  let events = 0;
  const h = lw.watch(prefix, from + 1, {
    onEvents: (evs) => void (events += evs.length),
    onError: (err) => void errors.push(err),
    onDisconnected: () => void disconnects++,
  });
  t.teardown(() => h.close());
  await eventually(() => assert.strictEqual(errors.length, 1));
  await new Promise((r) => setTimeout(r, 500));
  t.true(errors[0] instanceof WatchBacklogTooLargeError, errors[0]!.message);
  t.regex(errors[0]!.message, /larger than max/);
  t.is(errors.length, 1, 'ended once');
  t.is(disconnects, 0, 'not taken for a broken connection to resume');
  t.is(events, 0);
  // Under the limit the same watch is delivered whole.
  const big = createEtcdWatchClient(config);
  t.teardown(() => big.close());
  let delivered = 0;
  const h2 = new EtcdListerWatcher(kv, big).watch(prefix, from + 1, { onEvents: (evs) => void (delivered += evs.length), onError: () => undefined });
  t.teardown(() => h2.close());
  await eventually(() => assert.strictEqual(delivered, 3));
});

test.serial('over a link too narrow for a page within its deadline, pages get smaller until a list gets through; the limit is kept for the next list', async (t) => {
  // 300 keys of 2,000 bytes (600 KB) behind a link of 300 KB/s, pages of 300 keys with a 1 s
  // deadline: a whole page needs 2 s. Each page that runs out of its deadline halves the limit.
  const prefix = '/lw-narrow/';
  const value = 'v'.repeat(2000);
  for (let i = 0; i < 300; i += 50) {
    const txn = kv.if(prefix + 'none', 'Create', '==', 0);
    const ops = Array.from({ length: 50 }, (_, j) => kv.put(`${prefix}${String(i + j).padStart(3, '0')}`).value(value));
    await txn.then(...ops).commit();
  }
  const url = new URL(etcd.endpoint);
  const proxy = await startThrottleProxy({ host: url.hostname, port: Number(url.port) }, 300_000);
  t.teardown(() => proxy.stop());
  const narrow = new EtcdWatchClient({ endpoints: [proxy.endpoint], credentials: grpc.credentials.createInsecure(), channelOptions: ETCD_CHANNEL_OPTIONS });
  t.teardown(() => narrow.close());
  const lw = new EtcdListerWatcher(kv, narrow, 300, 1000);
  t.is(lw.pageLimit, 300);
  const failures: string[] = [];
  let listed = 0;
  for (let attempt = 0; attempt < 8 && listed === 0; attempt++) {
    try {
      listed = (await lw.list(prefix)).items.length;
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  t.is(listed, 300, `listed after ${failures.length} failures`);
  t.true(failures.every((m) => /DEADLINE_EXCEEDED/.test(m)), failures.join('; '));
  const limit = lw.pageLimit;
  t.true(limit <= 150, `a page ran out of its deadline: limit ${limit}`);
  // The next list starts at that limit (a page that comes back full within a quarter of its
  // deadline may double it again): it gets through at once.
  t.is((await lw.list(prefix)).items.length, 300);
});
