// EtcdListerWatcher's lists against a real etcd: a listed value is read from its page when asked
// (each read the same string), list() hands back plain strings of their own, and key, value and
// revisions are etcd's.
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import type { KeyValue } from '../../controller/lister-watcher.js';
import { parseConfig } from '../../src/config/config.js';
import { createEtcdClient, createEtcdWatchClient } from '../../src/etcd/client.js';
import { EtcdListerWatcher } from '../../src/etcd/lister-watcher.js';
import type { EtcdWatchClient } from '../../src/etcd/watch-client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

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
