// The history sweep's listing on a real etcd: names in key order with their highest version,
// a name whose entries straddle pages given once, keys that are not entries skipped, and the
// sweep itself: only names whose entries outrun their state are queued; leadership lost stops it.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import { EtcdHistoryNames } from '../../src/etcd/history-names.js';
import { HistorySweep, type HistoryName } from '../../reconcilers/history-sweep.js';
import { silentLogger } from '../../controller/logger.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

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
