// etcd that comes back behind what an informer has seen (restored from an older backup, or on a
// new volume) has another history: the informer must notice, list again and take the list as it
// is, whatever the revisions in it. Before, it resumed its watch from its own revision, which
// etcd accepted and answered with nothing until its revision passed it: statemanager stayed
// ready and never wrote another state (found by black-box probing). Also what an outage logs:
// one warning when the watch drops, not one per retry.
import test from 'ava';
import { Informer, type InformerEvent, type WatchRestartReason } from '../../controller/informer.js';
import { InformerSet } from '../../controller/informer-set.js';
import { WatchBacklogTooLargeError, type KeyValue, type ListerWatcher, type WatchCallbacks } from '../../controller/lister-watcher.js';
import type { Logger } from '../../controller/logger.js';
import { EtcdListerWatcher } from '../../src/etcd/lister-watcher.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';

const kv = (key: string, value: string, modRevision: number): KeyValue => ({ key, value, modRevision, createRevision: modRevision, version: 1 });

/** A store whose content and revision the test sets, and whose open watch the test can end. */
function scriptedStore(items: KeyValue[], revision: number) {
  const store = { items, revision, lists: 0, watches: [] as WatchCallbacks[] };
  const lw: ListerWatcher = {
    list: async () => {
      store.lists++;
      return { items: store.items, revision: store.revision };
    },
    watch: (_p, _from, cb) => {
      store.watches.push(cb);
      return { close: async () => undefined };
    },
    isCompacted: async () => false,
    currentRevision: async () => store.revision,
  };
  return { store, lw };
}

/** The store's content replaced, and its open watch ended with `error` (as etcd ends it). */
function replaceAndEndWatch(store: ReturnType<typeof scriptedStore>['store'], items: KeyValue[], revision: number, error: string): void {
  store.items = items;
  store.revision = revision;
  store.watches.at(-1)!.onError(new Error(error));
}

function informerWith(lw: ListerWatcher) {
  const restarts: WatchRestartReason[] = [];
  const informer = new Informer<string>({
    name: 'h',
    prefix: '/h/',
    lw,
    parse: (_k, v) => v,
    retryBaseMs: 10,
    retryCapMs: 50,
    metrics: { watchRestart: (_i, reason) => restarts.push(reason), lastRevision: () => undefined },
  });
  const events: InformerEvent<string>[] = [];
  informer.addHandler((e) => events.push(e));
  return { informer, events, restarts };
}

/** Whether an event of `type` for `key` came (with `value`, when given, as the new value). */
const sawEvent = (events: InformerEvent<string>[], type: InformerEvent<string>['type'], key: string, value?: string): boolean =>
  events.some((e) => e.type === type && e.key === key && (value === undefined || (e.type !== 'deleted' && e.new.value === value)));

const contents = (i: Informer<string>): [string, string][] => [...i.cache.values()].map((e) => [e.key, e.value] as [string, string]).sort(([a], [b]) => a.localeCompare(b));

test('a store behind the cache is listed again and taken as it is, even a key at the same revision with another value', async (t) => {
  const { store, lw } = scriptedStore([kv('/h/a', 'old', 2), kv('/h/c', '1', 40)], 50);
  const { informer, events, restarts } = informerWith(lw);
  informer.start();
  await informer.waitForSync();
  t.is(informer.lastRevision, 50);
  events.length = 0;

  // The replacement: /h/a written at revision 2 again, with another value; /h/c gone; /h/b new.
  replaceAndEndWatch(store, [kv('/h/a', 'new', 2), kv('/h/b', '1', 3)], 3, 'etcd canceled the watch: behind');

  await eventually(() => assert.deepStrictEqual(contents(informer), [['/h/a', 'new'], ['/h/b', '1']]));
  t.deepEqual(restarts, ['history_replaced']);
  t.is(store.lists, 2);
  t.is(informer.lastRevision, 3, 'the revision starts again from the list');
  t.true(sawEvent(events, 'updated', '/h/a', 'new'));
  t.true(events.every((e) => e.synthetic), 'a relist reports differences as synthetic events');
  t.true(sawEvent(events, 'added', '/h/b'));
  t.true(sawEvent(events, 'deleted', '/h/c'));

  // From there on revisions are compared again: a stale put is ignored as before.
  store.watches.at(-1)!.onEvents([{ type: 'put', kv: kv('/h/b', '2', 4) }], 4);
  store.watches.at(-1)!.onEvents([{ type: 'put', kv: kv('/h/b', 'stale', 3) }], 4);
  t.deepEqual(contents(informer), [['/h/a', 'new'], ['/h/b', '2']]);
  await informer.stop();
});

test('restored with its revision bumped and compacted: the relist takes keys older than the cache saw, and undoes own deletes the backup predates', async (t) => {
  const { store, lw } = scriptedStore([kv('/h/a', 'after-backup', 40), kv('/h/c', '1', 45), kv('/h/d', '1', 10)], 50);
  lw.isCompacted = async () => store.revision > 50;
  const { informer, events, restarts } = informerWith(lw);
  informer.start();
  await informer.waitForSync();
  // An own delete the watch has not delivered yet: a tombstone at 51.
  informer.assume({ key: '/h/d', deletedAt: 51 });
  t.deepEqual(contents(informer), [['/h/a', 'after-backup'], ['/h/c', '1']]);
  events.length = 0;

  // The backup (taken at 30) restored with the revision bumped to 1,000 and marked compacted.
  replaceAndEndWatch(store, [kv('/h/a', 'backup', 20), kv('/h/d', '1', 10)], 1000, 'compacted');

  await eventually(() => assert.deepStrictEqual(contents(informer), [['/h/a', 'backup'], ['/h/d', '1']]));
  t.deepEqual(restarts, ['compacted']);
  t.is(informer.lastRevision, 1000);
  t.true(sawEvent(events, 'updated', '/h/a', 'backup'));
  t.true(sawEvent(events, 'added', '/h/d'));
  t.true(sawEvent(events, 'deleted', '/h/c'));
  await informer.stop();
});

test('a relist in one history keeps own writes made after the list, and a key changed since the cache saw it', async (t) => {
  const { store, lw } = scriptedStore([kv('/h/a', '1', 40), kv('/h/b', '1', 41)], 50);
  lw.isCompacted = async () => store.revision > 50;
  const { informer } = informerWith(lw);
  informer.start();
  await informer.waitForSync();
  // Own writes committed at 70 and 71, after the list the relist will be at (60).
  informer.assume(kv('/h/a', 'own', 70));
  informer.assume({ key: '/h/b', deletedAt: 71 });
  replaceAndEndWatch(store, [kv('/h/a', '2', 55), kv('/h/b', '1', 41), kv('/h/c', '1', 58)], 60, 'compacted');
  await eventually(() => assert.ok(informer.cache.has('/h/c')));
  t.deepEqual(contents(informer), [['/h/a', 'own'], ['/h/c', '1']]);
  await informer.stop();
});

test('a watch that ends while the store is at or past the cache resumes without listing again', async (t) => {
  const { store, lw } = scriptedStore([kv('/h/a', '1', 5)], 10);
  const { informer, restarts } = informerWith(lw);
  informer.start();
  await informer.waitForSync();
  for (const revision of [10, 11]) {
    store.revision = revision;
    const watches = store.watches.length;
    store.watches.at(-1)!.onError(new Error('etcd canceled the watch: this member lags'));
    await eventually(() => assert.ok(store.watches.length > watches, 'watched again'));
  }
  t.is(store.lists, 1);
  t.deepEqual(restarts, ['error', 'error']);
  t.deepEqual(contents(informer), [['/h/a', '1']]);
  await informer.stop();
});

test('a store that cannot tell its revision is not taken for a replaced one', async (t) => {
  const { store, lw } = scriptedStore([kv('/h/a', '1', 5)], 10);
  lw.currentRevision = async () => {
    throw new Error('etcd unavailable');
  };
  const { informer, restarts } = informerWith(lw);
  informer.start();
  await informer.waitForSync();
  const watches = store.watches.length;
  store.watches.at(-1)!.onError(new Error('stream broke'));
  await eventually(() => assert.ok(store.watches.length > watches));
  t.is(store.lists, 1);
  t.deepEqual(restarts, ['error']);
  await informer.stop();
});

/** A logger that records [level, message, meta] in order. */
function recordingLogger(): { lines: [string, string, Record<string, unknown>][]; logger: Logger } {
  const lines: [string, string, Record<string, unknown>][] = [];
  const at = (level: string) => (message: string, meta: Record<string, unknown> = {}) => void lines.push([level, message, meta]);
  return { lines, logger: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } };
}

test('a watch disconnected again and again warns once, then again only when disconnectedWarnEveryMs has passed (below, at, past), and says when it resumed', async (t) => {
  const { store, lw } = scriptedStore([kv('/h/a', '1', 5)], 10);
  const { lines, logger } = recordingLogger();
  const restarts: WatchRestartReason[] = [];
  let now = 1_000;
  const informer = new Informer<string>({
    name: 'h',
    prefix: '/h/',
    lw,
    parse: (_k, v) => v,
    logger,
    metrics: { watchRestart: (_i, reason) => restarts.push(reason), lastRevision: () => undefined },
    disconnectedWarnEveryMs: 200,
    now: () => now,
  });
  informer.start();
  await informer.waitForSync();
  const w = store.watches.at(-1)!;
  lines.length = 0;
  const drop = (): void => w.onDisconnected!(new Error('connect ECONNREFUSED'));
  for (let i = 0; i < 5; i++) drop();
  t.deepEqual(lines.map(([level, message]) => [level, message]), [['warn', 'watch disconnected, it resumes by itself']]);
  now = 1_199; // just below the period since the warning
  drop();
  t.is(lines.length, 1);
  now = 1_200; // at it
  drop();
  t.is(lines.length, 2);
  t.like(lines[1], ['warn', 'watch still disconnected, retrying', { informer: 'h', retries: 6, forMs: 200 }]);
  now = 1_399; // below the period since that one
  drop();
  t.is(lines.length, 2);
  now = 1_401; // past it
  drop();
  t.like(lines[2], ['warn', 'watch still disconnected, retrying', { retries: 8, forMs: 401 }]);
  now = 1_500;
  w.onConnected!();
  t.like(lines[3], ['info', 'watch resumed', { informer: 'h', retries: 8, afterMs: 500 }]);
  w.onConnected!(); // connected again without a disconnection: nothing to say
  t.is(lines.length, 4);
  t.is(restarts.filter((r) => r === 'disconnected').length, 9, 'every disconnection counted');
  // A new outage warns at once again.
  drop();
  t.like(lines[4], ['warn', 'watch disconnected, it resumes by itself']);
  await informer.stop();
});

test('a list failing again and again warns once, then again only when disconnectedWarnEveryMs has passed (below, at, past), and says when it listed', async (t) => {
  const { lines, logger } = recordingLogger();
  let now = 1_000;
  let calls = 0;
  const lw: ListerWatcher = {
    list: async () => {
      calls++;
      now += 50;
      if (calls <= 10) throw new Error('etcdserver: authentication failed, invalid user ID or password');
      return { items: [], revision: 7 };
    },
    watch: () => ({ close: async () => undefined }),
    isCompacted: async () => false,
  };
  const informer = new Informer<string>({
    name: 'h',
    prefix: '/h/',
    lw,
    parse: (_k, v) => v,
    logger,
    disconnectedWarnEveryMs: 200,
    retryBaseMs: 1,
    retryCapMs: 1,
    now: () => now,
  });
  informer.start();
  await informer.waitForSync();
  // Attempts at 1,050 (the first: said), 1,200 (150 ms later: below), 1,250 (200 ms: at), 1,450 (past once more), then a list at 1,550.
  t.deepEqual(
    lines.filter(([, m]) => m.startsWith('informer list')).map(([level, message, meta]) => [level, message, meta.attempt]),
    [
      ['warn', 'informer list failed, retrying', 1],
      ['warn', 'informer list still failing, retrying', 5],
      ['warn', 'informer list still failing, retrying', 9],
      ['info', 'informer listed after failures', undefined],
    ],
  );
  t.like(lines.find(([, m]) => m === 'informer listed after failures')?.[2], { informer: 'h', attempts: 11 });
  await informer.stop();
});

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  await etcd?.stop();
});

test.serial('real etcd: a watch resuming ahead of etcd ends with a reason when asked to, and waits otherwise', async (t) => {
  const client = etcd.client();
  const head = Number((await client.put('/w/x').value('1').exec()).header.revision);
  const wc = etcd.watchClient();
  const outcomes: string[] = [];
  const behind = wc.watch({ key: Buffer.from('/w/x'), startRevision: head + 100, cancelIfBehind: true }, {
    onEvents: () => outcomes.push('events'),
    onCreated: () => outcomes.push('created'),
    onCompacted: () => outcomes.push('compacted'),
    onCanceled: (reason) => outcomes.push(`canceled: ${reason}`),
  });
  const waiting: string[] = [];
  const plain = wc.watch({ key: Buffer.from('/w/x'), startRevision: head + 100 }, {
    onEvents: () => waiting.push('events'),
    onCreated: () => waiting.push('created'),
    onCompacted: () => waiting.push('compacted'),
    onCanceled: (reason) => waiting.push(`canceled: ${reason}`),
  });
  await eventually(() => assert.strictEqual(outcomes.length, 1));
  t.regex(outcomes[0]!, new RegExp(`^canceled: etcd's revision ${head} is behind ${head + 99}`));
  await eventually(() => assert.deepStrictEqual(waiting, ['created']));
  behind.close();
  plain.close();
});

test.serial('real etcd: cancelIfBehind at its boundary — a watch from the next revision waits, one from a revision further on ends', async (t) => {
  const client = etcd.client();
  const head = Number((await client.put('/w/y').value('1').exec()).header.revision);
  const wc = etcd.watchClient();
  const watchFrom = (startRevision: number): { outcomes: string[]; close(): void } => {
    const outcomes: string[] = [];
    const w = wc.watch({ key: Buffer.from('/w/y'), startRevision, cancelIfBehind: true }, {
      onEvents: (events) => outcomes.push(`events ${events.length}`),
      onCreated: () => outcomes.push('created'),
      onCompacted: () => outcomes.push('compacted'),
      onCanceled: () => outcomes.push('canceled'),
    });
    return { outcomes, close: () => w.close() };
  };
  const next = watchFrom(head + 1); // every change after what etcd has: the normal resume
  const past = watchFrom(head + 2); // one revision etcd has not reached
  await eventually(() => assert.deepStrictEqual([next.outcomes, past.outcomes], [['created'], ['canceled']]));
  await client.put('/w/y').value('2');
  await eventually(() => assert.deepStrictEqual(next.outcomes, ['created', 'events 1']));
  next.close();
  past.close();
  t.deepEqual([next.outcomes, past.outcomes], [['created', 'events 1'], ['canceled']]);
});

test.serial('real etcd: wiped and refilled with fewer revisions, the informer converges on the new content', async (t) => {
  const client = etcd.client();
  const prefix = '/wipe/';
  for (let i = 0; i < 60; i++) await client.put(`${prefix}k${i % 6}`).value(`v${i}`);
  const restarts: WatchRestartReason[] = [];
  const informer = new Informer<string>({
    name: 'wipe',
    prefix,
    lw: new EtcdListerWatcher(etcd.client(), etcd.watchClient()),
    parse: (_k, v) => v,
    retryBaseMs: 50,
    retryCapMs: 500,
    metrics: { watchRestart: (_i, reason) => restarts.push(reason), lastRevision: () => undefined },
  });
  informer.start();
  await informer.waitForSync();
  const seen = informer.lastRevision;
  t.true(seen > 60);

  await etcd.restart({ wipe: true });
  const writer = etcd.client();
  await writer.put(`${prefix}k0`).value('fresh');
  await writer.put(`${prefix}new`).value('1');
  const now = Number((await writer.get('x').exec()).header.revision);
  t.true(now < seen, `etcd at ${now}, the informer at ${seen}`);

  await eventually(
    () =>
      assert.deepStrictEqual(contents(informer), [
        [`${prefix}k0`, 'fresh'],
        [`${prefix}new`, '1'],
      ]),
    { timeoutMs: 20_000 },
  );
  t.true(restarts.includes('history_replaced'));
  // And it follows the new history from there.
  await writer.put(`${prefix}later`).value('2');
  await eventually(() => assert.strictEqual(informer.cache.get(`${prefix}later`)?.value, '2'), { timeoutMs: 10_000 });
  t.true(informer.lastRevision < seen);
  await informer.stop();
});

test('a watch whose backlog is too large to receive is not resumed from the same revision (it would fail again for ever): the informer lists again and watches from the list', async (t) => {
  const { store, lw } = scriptedStore([kv('/h/a', '1', 5)], 10);
  const froms: number[] = [];
  const watch = lw.watch.bind(lw);
  lw.watch = (p, from, cb) => (froms.push(from), watch(p, from, cb));
  const { informer, restarts } = informerWith(lw);
  informer.start();
  await informer.waitForSync();
  // A partition's backlog: 100 large values written meanwhile, one response too large for the client.
  store.items = [kv('/h/a', '2', 60), kv('/h/b', '1', 70)];
  store.revision = 110;
  store.watches.at(-1)!.onError(new WatchBacklogTooLargeError(11, 'Received message larger than max (104861917 vs 67108864)'));
  await eventually(() => assert.deepStrictEqual(contents(informer), [['/h/a', '2'], ['/h/b', '1']]));
  t.deepEqual(restarts, ['backlog_too_large']);
  t.is(store.lists, 2);
  t.deepEqual(froms, [11, 111], 'the second watch starts after the list, not at the revision whose catch-up was too large');
  await informer.stop();
});

test.serial('real etcd: restored behind, one informer finds it and every informer of the set lists again as it is — also a quiet one whose revision the new history has passed, which no check of its own can tell; the listeners hear of it once, after', async (t) => {
  const client = etcd.client();
  await client.put('/quiet/x').value('old');
  const restarts: [string, WatchRestartReason][] = [];
  const make = (name: string, prefix: string) =>
    new Informer<string>({
      name,
      prefix,
      lw: new EtcdListerWatcher(etcd.client(), etcd.watchClient()),
      parse: (_k, v) => v,
      retryBaseMs: 50,
      retryCapMs: 500,
      metrics: { watchRestart: (i, reason) => restarts.push([i, reason]), lastRevision: () => undefined },
    });
  const busy = make('busy', '/busy/');
  const quiet = make('quiet', '/quiet/');
  const set = new InformerSet([busy as Informer<unknown>, quiet as Informer<unknown>]);
  const told: string[] = [];
  set.onHistoryReplaced((detail) => told.push(detail));
  set.start();
  await set.waitForSync();
  // Changes the quiet informer does not watch: its revision stays at its list's.
  for (let i = 0; i < 80; i++) await client.put(`/busy/k${i % 5}`).value(`v${i}`);
  await eventually(() => assert.ok(busy.lastRevision > 80));
  const quietAt = quiet.lastRevision;
  // Read before the restore: once etcd is back the busy informer may find it and list again
  // before the writes below end, and then its revision is the new history's (a run failed so).
  const busyAt = busy.lastRevision;
  t.true(busyAt > 80 && quietAt < 10, `busy at ${busyAt}, quiet at ${quietAt}`);

  // The restore: the quiet key rewritten at a revision the quiet informer has already passed,
  // then enough other writes that etcd is past the quiet informer (but behind the busy one).
  // All written before the informers can reach etcd again: a quiet informer reconnecting while
  // etcd was still below its revision found the restore itself (a CI run failed so).
  let now = 0;
  await etcd.restart({
    wipe: true,
    prefill: async (c) => {
      await c.put('/quiet/x').value('new');
      now = Number((await c.get('x').exec()).header.revision);
      for (let i = 0; now <= quietAt + 2; i++) now = Number((await c.put(`/other/k${i}`).value('x').exec()).header.revision);
    },
  });
  const writer = etcd.client();
  t.true(now > quietAt && now < busyAt, `etcd at ${now}`);

  await eventually(() => assert.strictEqual(quiet.cache.get('/quiet/x')?.value, 'new'), { timeoutMs: 20_000 });
  await eventually(() => assert.strictEqual(told.length, 1));
  t.regex(told[0]!, /informer busy found etcd at revision \d+, behind what it had seen/);
  t.deepEqual(
    restarts.filter(([, r]) => r === 'history_replaced').map(([i]) => i).sort(),
    ['busy', 'quiet'],
  );
  t.is(busy.cache.size, 0, 'the busy prefix is empty in the new history');
  // Both follow the new history from there.
  await writer.put('/quiet/y').value('1');
  await eventually(() => assert.strictEqual(quiet.cache.get('/quiet/y')?.value, '1'), { timeoutMs: 10_000 });
  await set.stop();
});

test.serial('real etcd: relistAll (an operator\'s full resync) lists every informer again as it is: a key the cache holds that etcd does not is gone, one it missed is there, counted as requested; the listeners are not told; the watch goes on', async (t) => {
  const client = etcd.client();
  await client.put('/req/a').value('1');
  const restarts: [string, WatchRestartReason][] = [];
  const informer = new Informer<string>({
    name: 'req',
    prefix: '/req/',
    lw: new EtcdListerWatcher(etcd.client(), etcd.watchClient()),
    parse: (_k, v) => v,
    retryBaseMs: 50,
    retryCapMs: 500,
    metrics: { watchRestart: (i, reason) => restarts.push([i, reason]), lastRevision: () => undefined },
  });
  const set = new InformerSet([informer as Informer<unknown>]);
  const told: string[] = [];
  set.onHistoryReplaced((detail) => told.push(detail));
  set.start();
  await set.waitForSync();
  // A cache that went wrong without a watch event to say so: a key etcd never held, and a value changed behind it.
  // (Told as own writes at a revision etcd has not reached: no watch event will ever correct them.)
  const at = informer.lastRevision + 1000;
  informer.assume({ key: '/req/ghost', value: 'x', modRevision: at, createRevision: at, version: 1 });
  informer.assume({ key: '/req/a', value: 'stale', modRevision: at, createRevision: 0, version: 2 });
  t.is(informer.cache.get('/req/a')?.value, 'stale');
  t.is(informer.cache.get('/req/ghost')?.value, 'x');
  await set.relistAll();
  t.is(informer.cache.get('/req/ghost'), undefined);
  t.is(informer.cache.get('/req/a')?.value, '1');
  t.deepEqual(restarts, [['req', 'requested']]);
  t.deepEqual(told, []);
  await client.put('/req/b').value('2');
  await eventually(() => assert.strictEqual(informer.cache.get('/req/b')?.value, '2'), { timeoutMs: 10_000 });
  await set.stop();
});
