// The history sweep's listing on a real etcd: names in key order with their highest version,
// a name whose entries straddle pages given once, keys that are not entries skipped, and the
// sweep itself: only names whose entries outrun their state are queued; leadership lost stops it.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import { EtcdHistoryNames } from '../../src/etcd/history-names.js';
import { HistorySweep, type HistoryName } from '../../reconcilers/history-sweep.js';
import { silentLogger } from '../../controller/logger.js';
import { parseConfig } from '../../src/config/config.js';
import { createEtcdClient } from '../../src/etcd/client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { startThrottleProxy } from '../helpers/throttle-proxy.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(() => etcd?.stop());

test('names of one kind, in order, each once with its highest version, at page sizes below, at and past a name\'s entries', async (t) => {
  const keys = new KeyLayout('/hn');
  const client = etcd.client();
  for (let v = 1; v <= 3; v++) await client.put(keys.historyKey('model', 'a', v)).value('{}');
  for (let v = 1; v <= 5; v++) await client.put(keys.historyKey('model', 'b/with/slashes', v)).value('{}');
  await client.put(keys.historyKey('model', 'c', 7)).value('{}');
  await client.put(`${keys.historyPrefix('model', 'c')}not-a-number`).value('{}');
  await client.put(keys.historyKey('package', 'other-kind', 1)).value('{}');
  for (const pageSize of [1, 2, 3, 4, 5, 100]) {
    const pages: HistoryName[][] = [];
    await new EtcdHistoryNames({ client, keys, requestTimeoutMs: 2000, pageSize, pauseMs: 0 }).list('model', (p) => void pages.push([...p]), new AbortController().signal);
    t.deepEqual(pages.flat(), [{ name: 'a', lastVersion: 3 }, { name: 'b/with/slashes', lastVersion: 5 }, { name: 'c', lastVersion: 7 }], `page size ${pageSize}`);
  }
  const aborted = new AbortController();
  aborted.abort();
  const pages: unknown[] = [];
  await new EtcdHistoryNames({ client, keys, requestTimeoutMs: 2000 }).list('model', (p) => void pages.push(p), aborted.signal);
  t.deepEqual(pages, [], 'aborted: nothing read');
});

test('the sweep queues a name with no state or entries past its version, not one at or below it; paused before its delay ends, it lists nothing', async (t) => {
  const listed: string[] = [];
  const names = {
    list: async (kind: string, page: (n: readonly HistoryName[]) => void) => {
      listed.push(kind);
      if (kind === 'model') page([{ name: 'no-state', lastVersion: 1 }, { name: 'behind', lastVersion: 4 }, { name: 'at', lastVersion: 3 }, { name: 'below', lastVersion: 2 }]);
    },
  };
  const versions: Record<string, number> = { behind: 3, at: 3, below: 3 };
  const queued: string[] = [];
  const sweep = new HistorySweep({ names, storedVersion: (_k, n) => versions[n], queue: (k, n) => void queued.push(`${k}/${n}`), logger: silentLogger, delayMs: 0 });
  sweep.start();
  await sweep.done;
  t.deepEqual(queued, ['model/no-state', 'model/behind']);
  t.deepEqual(listed, ['model', 'package', 'scenario']);

  listed.length = 0;
  const later = new HistorySweep({ names, storedVersion: () => undefined, queue: () => undefined, logger: silentLogger, delayMs: 60_000 });
  later.start();
  await later.pause();
  t.deepEqual(listed, []);
});

test('a sweep that fails is tried again while leading, after 1, 2, 4 … times retryMs up to its cap; paused meanwhile, it stops', async (t) => {
  let lists = 0;
  const failures = 3;
  const names = {
    list: async (kind: string, page: (n: readonly HistoryName[]) => void) => {
      if (kind === 'model' && ++lists <= failures) throw new Error('4 DEADLINE_EXCEEDED: Deadline exceeded after 5.000s');
      if (kind === 'model') page([{ name: 'left', lastVersion: 2 }]);
    },
  };
  const lines: { message: string; meta?: Record<string, unknown> }[] = [];
  const logger = { ...silentLogger, warn: (message: string, meta?: Record<string, unknown>) => void lines.push({ message, meta }), info: (message: string, meta?: Record<string, unknown>) => void lines.push({ message, meta }) };
  const queued: string[] = [];
  const sweep = new HistorySweep({ names, storedVersion: () => undefined, queue: (k, n) => void queued.push(`${k}/${n}`), logger, delayMs: 0, retryMs: 20, retryCapMs: 50 });
  sweep.start();
  await sweep.done;
  t.is(lists, failures + 1);
  t.deepEqual(queued, ['model/left']);
  t.deepEqual(lines.filter((l) => l.message.startsWith('history sweep failed')).map((l) => l.meta?.retryInMs), [20, 40, 50], 'doubling, up to the cap');
  t.like(lines.at(-1), { message: 'history swept after failures', meta: { attempts: 4 } });

  // Failing for good: pausing (leadership lost) ends the retries.
  const failing = new HistorySweep({ names: { list: async () => Promise.reject(new Error('UNAVAILABLE')) }, storedVersion: () => undefined, queue: () => undefined, logger: silentLogger, delayMs: 0, retryMs: 10_000 });
  failing.start();
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  await failing.pause();
  t.true(Date.now() - started < 1000, 'pause ends the wait');
});

test('over a link too narrow for a page within the request deadline, the same page is asked again smaller until it gets through', async (t) => {
  const keys = new KeyLayout('/hn-narrow');
  const client = etcd.client();
  // 2,000 names of one entry each: keys-only pages of about 60 bytes a key.
  for (let i = 0; i < 2000; i += 100) {
    await client.if(keys.historyKey('model', 'none', 1), 'Create', '==', 0).then(...Array.from({ length: 100 }, (_, j) => client.put(keys.historyKey('model', `model-${String(i + j).padStart(5, '0')}`, 1)).value('{}'))).commit();
  }
  const url = new URL(etcd.endpoint);
  const proxy = await startThrottleProxy({ host: url.hostname, port: Number(url.port) }, 40_000);
  t.teardown(() => proxy.stop());
  // The program's own client (etcd3 with statemanager's policies: no circuit breaker).
  const narrow = createEtcdClient(parseConfig({ etcd: { endpoints: [proxy.endpoint] } }).etcd);
  t.teardown(() => narrow.close());
  // A page of 2,000 keys needs about 3 s at 40 KB/s; the deadline is 2 s. The answers of pages
  // given up still cross the link ahead of the next (as on a real narrow link), so a list may
  // fail after its bounded retries: the sweep then lists again later, at the smaller size it kept.
  const historyNames = new EtcdHistoryNames({ client: narrow, keys, requestTimeoutMs: 2000, pageSize: 2000, pauseMs: 0 });
  const failures: string[] = [];
  let names: string[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    names = [];
    try {
      await historyNames.list('model', (p) => void names.push(...p.map((n) => n.name)), new AbortController().signal);
      break;
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  t.true(failures.every((m) => /DEADLINE_EXCEEDED/.test(m)), failures.join('; '));
  t.is(names.length, 2000, `after ${failures.length} failed lists`);
  t.is(new Set(names).size, 2000);
});
