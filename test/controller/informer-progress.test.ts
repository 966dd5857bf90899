// A list that takes long says how far it got (keys so far, the page size), every
// listProgressEveryMs while it lasts, and nothing once it is over or when it is quick.
import test from 'ava';
import { Informer, LIST_PROGRESS_EVERY_MS } from '../../controller/informer.js';
import type { KeyValue, ListerWatcher } from '../../controller/lister-watcher.js';
import type { Logger } from '../../controller/logger.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A list of `pages` pages of 10 keys, one every `pageMs`; a watch that stays quiet. */
function slowLister(pages: number, pageMs: number, pageLimit?: number): ListerWatcher {
  const lw: ListerWatcher & { pageLimit?: number } = {
    list: async () => ({ items: [], revision: 1 }),
    listPages: async (_prefix, onPage) => {
      for (let p = 0; p < pages; p++) {
        await sleep(pageMs);
        const items: KeyValue[] = Array.from({ length: 10 }, (_, i) => ({ key: `/k/${p}/${i}`, value: 'v', modRevision: 1, createRevision: 1, version: 1 }));
        onPage(items, 1);
      }
      return 1;
    },
    watch: () => ({ close: async () => undefined }),
    isCompacted: async () => false,
  };
  if (pageLimit !== undefined) lw.pageLimit = pageLimit;
  return lw;
}

function recorder(): { logger: Logger; lines: { message: string; meta: Record<string, unknown> | undefined }[] } {
  const lines: { message: string; meta: Record<string, unknown> | undefined }[] = [];
  const put = (message: string, meta?: Record<string, unknown>) => void lines.push({ message, meta });
  return { logger: { error: put, warn: put, info: put, debug: put }, lines };
}

async function listWith(lw: ListerWatcher, everyMs: number | undefined): Promise<{ progress: Record<string, unknown>[]; after: number }> {
  const { logger, lines } = recorder();
  const informer = new Informer<string>({ name: 'things', prefix: '/k/', lw, parse: (_k, v) => v, logger, ...(everyMs !== undefined ? { listProgressEveryMs: everyMs } : {}) });
  informer.start();
  await informer.waitForSync();
  const progress = lines.filter((l) => l.message === 'informer still listing').map((l) => l.meta!);
  await sleep(500);
  const after = lines.filter((l) => l.message === 'informer still listing').length - progress.length;
  await informer.stop();
  return { progress, after };
}

test('the default says a list still under way every 10 s', (t) => {
  t.is(LIST_PROGRESS_EVERY_MS, 10_000);
});

test('a list shorter than the interval says nothing of its progress', async (t) => {
  const r = await listWith(slowLister(3, 30), 300); // about 90 ms
  t.deepEqual(r.progress, []);
  t.is(r.after, 0);
});

test('a list longer than the interval says how far it got each interval, with the page size, and nothing once it is over', async (t) => {
  const r = await listWith(slowLister(8, 100, 250), 250); // about 800 ms: lines at 250, 500, 750 ms
  t.true(r.progress.length >= 2 && r.progress.length <= 4, `${r.progress.length} lines`);
  for (const p of r.progress) {
    t.is(p.informer, 'things');
    t.is(p.pageLimit, 250);
    t.is(typeof p.elapsedS, 'number');
  }
  const keys = r.progress.map((p) => p.keys as number);
  t.true(keys[0]! >= 10 && keys[0]! <= 30, `first at ${keys[0]} keys`);
  t.true(keys.every((k, i) => i === 0 || k > keys[i - 1]!), `keys grow: ${keys.join(', ')}`);
  t.true(keys[keys.length - 1]! < 80, 'said while listing, not after');
  t.is(r.after, 0, 'nothing once synced');
});

test('a lister that does not say its page size: the lines leave it out; 0 turns them off', async (t) => {
  const r = await listWith(slowLister(4, 100), 150);
  t.true(r.progress.length >= 1);
  t.false('pageLimit' in r.progress[0]!);
  const off = await listWith(slowLister(4, 100), 0);
  t.deepEqual(off.progress, []);
});
