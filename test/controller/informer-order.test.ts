// Orders of watch responses and own writes that the deterministic simulation (test/sim) found
// mishandled, pinned on a hand-driven ListerWatcher.
import test from 'ava';
import { Informer } from '../../controller/informer.js';
import type { KeyValue, ListerWatcher, WatchCallbacks } from '../../controller/lister-watcher.js';

function handDriven(): { lw: ListerWatcher; watch: () => WatchCallbacks } {
  let cb: WatchCallbacks | undefined;
  const lw: ListerWatcher = {
    list: async () => ({ items: [], revision: 10 }),
    watch: (_prefix, _from, callbacks) => {
      cb = callbacks;
      return { close: async () => undefined };
    },
    isCompacted: async () => false,
  };
  return { lw, watch: () => cb! };
}

const kv = (key: string, value: string, rev: number): KeyValue => ({ key, value, modRevision: rev, createRevision: rev, version: 1 });

async function started(): Promise<{ informer: Informer<string>; watch: () => WatchCallbacks }> {
  const { lw, watch } = handDriven();
  const informer = new Informer<string>({ name: 't', prefix: '/t/', lw, parse: (_k, v) => v });
  informer.start();
  await informer.waitForSync();
  await new Promise((r) => setImmediate(r));
  return { informer, watch };
}

test('a response whose header runs ahead of its events (etcd splitting a long catch-up) does not move the revision past them', async (t) => {
  const { informer, watch } = await started();
  watch().onEvents([{ type: 'put', kv: kv('/t/a', '1', 11) }], 2_000);
  t.is(informer.lastRevision, 11);
  await informer.stop();
});

test('an own delete answered after a newer own write of the key is ignored', async (t) => {
  const { informer } = await started();
  informer.assume(kv('/t/a', 'new', 13));
  informer.assume({ key: '/t/a', deletedAt: 12 });
  t.is(informer.cache.get('/t/a')?.value, 'new');
  await informer.stop();
});

test('a watch delete older than an own write already applied is ignored, and the key never goes back', async (t) => {
  const { informer, watch } = await started();
  const seen: string[] = [];
  informer.addHandler((e) => seen.push(`${e.type}@${e.type === 'deleted' ? e.old.modRevision : e.new.modRevision}`));
  informer.assume(kv('/t/a', 'new', 13));
  watch().onEvents([{ type: 'delete', kv: { key: '/t/a', value: '', modRevision: 12, createRevision: 0, version: 0 } }], 12);
  watch().onEvents([{ type: 'put', kv: kv('/t/a', 'new', 13) }], 13);
  t.is(informer.cache.get('/t/a')?.value, 'new');
  t.deepEqual(seen, ['added@13']);
  await informer.stop();
});
