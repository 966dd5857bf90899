// SubscribeToStateChanges under a careless or hostile client, over real gRPC and a real etcd
// (issue 18): a resume whose backlog is larger than what one stream may hold unsent arrives
// whole, at the client's pace; a client that stops reading is cut and told where to resume;
// nothing leaks when a resume ends; subscriptions are bounded per identity and in total;
// replays from before the buffer share a bounded number of etcd watches; one list answer is
// capped; the history carries the authenticated identity.
import test, { type ExecutionContext } from 'ava';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { BytesInFlight } from '../../src/grpc/bytes-in-flight.js';
import type { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../domain/keys.js';
import { silentLogger } from '../../controller/logger.js';
import { StateFeed, type StateFeedOptions } from '../../src/state-api/feed.js';
import { etcdReplayMarker } from '../../src/etcd/replay-marker.js';
import { StateReader, type HistoryStore, type StateCaches, type StoredStateView } from '../../src/state-api/reader.js';
import { EtcdHistoryStore } from '../../src/etcd/history-store.js';
import { etcdPreviousValues } from '../../src/etcd/previous-values.js';
import type { EtcdWatch, EtcdWatchHandlers, WatchTarget } from '../../src/etcd/watch-client.js';
import type { GrpcServerConfigInput } from '../../src/grpc/config.js';
import { attributedSource, listedResourceBytes } from '../../src/grpc/read-api.js';
import { loadStateManagerProto } from '../../src/grpc/proto.js';
import type { ResourceState } from '../../src/generated/statemanager/ResourceState.js';
import { DraftClient, type Subscription } from '../helpers/draft-client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { startTestServer, stopAll, uniquePrefix } from '../grpc/_support.js';

let etcd: EtcdServer;
const cleanups: (() => void)[] = [];
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  for (const c of cleanups.splice(0)) c();
  await stopAll();
  await etcd?.stop();
});

/** Caches the tests fill by hand (the reads under test here are the subscription and the list). */
class HandCaches implements StateCaches {
  readonly states = new Map<string, StoredStateView>();
  get(_kind: unknown, name: string): StoredStateView | undefined {
    return this.states.get(name);
  }
  list(): Iterable<StoredStateView> {
    return this.states.values();
  }
  size(): number {
    return this.states.size;
  }
  revision(): number {
    return 1;
  }
}

/** Counts the etcd watches the feed opens at once (the replays' and the shared one). */
class CountingSource {
  open = 0;
  max = 0;
  opened = 0;
  readonly targets: WatchTarget[] = [];
  constructor(private readonly inner: { watch(t: WatchTarget, h: EtcdWatchHandlers): EtcdWatch }) {}
  watch(target: WatchTarget, h: EtcdWatchHandlers): EtcdWatch {
    this.targets.push(target);
    const w = this.inner.watch(target, h);
    this.opened++;
    this.max = Math.max(this.max, ++this.open);
    let closed = false;
    return {
      close: () => {
        if (!closed) this.open--;
        closed = true;
        w.close();
      },
      pause: () => w.pause(),
      resume: () => w.resume(),
    };
  }
}

async function serve(feedOptions: Partial<StateFeedOptions> = {}, config: GrpcServerConfigInput = {}, history?: HistoryStore, loading?: () => string | undefined, listSends?: BytesInFlight, listHoldCapMs?: number) {
  const keys = new KeyLayout(uniquePrefix());
  const client = etcd.client();
  const watchClient = etcd.watchClient();
  const source = new CountingSource(watchClient);
  const feed = new StateFeed({ source, markReplay: etcdReplayMarker(client, keys, 'test', 3000), keys, logger: silentLogger, idleStopMs: 300, ...feedOptions });
  cleanups.push(() => {
    feed.stop();
    watchClient.close();
  });
  const caches = new HandCaches();
  const reader = new StateReader(caches, history ?? new EtcdHistoryStore(client, keys, 3000));
  const s = await startTestServer(client, config, { keys, readApi: { reader, feed, ...(loading ? { loading } : {}), ...(listSends ? { listSends } : {}), ...(listHoldCapMs !== undefined ? { listHoldCapMs } : {}) } });
  const put = async (name: string, state: string): Promise<number> => Number((await client.put(keys.stateKey('scenario', name)).value(state).exec()).header.revision);
  return { s, feed, keys, client, caches, source, put, draft: (md?: () => grpc.Metadata) => new DraftClient(s.target, md) };
}

/** `n` new scenarios (each a change from nothing to Idle), 64 writes in flight; their revisions in order. */
async function createScenarios(put: (name: string, state: string) => Promise<number>, n: number, prefix = 's'): Promise<number[]> {
  const revs: number[] = [];
  for (let i = 0; i < n; i += 64) {
    const batch = Array.from({ length: Math.min(64, n - i) }, (_, j) => put(`${prefix}${i + j}`, 'Idle'));
    revs.push(...(await Promise.all(batch)));
  }
  return revs.sort((a, b) => a - b);
}

async function etcdWatchers(): Promise<number> {
  const body = await (await fetch(`${etcd.endpoint}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith('etcd_debugging_mvcc_watcher_total '));
  return Number(line?.split(' ')[1]);
}

/**
 * Changes a warm-up scenario until the subscription sees it (it attaches once etcd confirmed the
 * shared watch); the revisions written, the last one seen.
 */
async function subscribed(sub: Subscription, put: (name: string, state: string) => Promise<number>): Promise<number[]> {
  const written: number[] = [];
  for (let i = 0; ; i++) {
    const rev = await put('warmup', i % 2 ? 'Waiting' : 'Idle');
    written.push(rev);
    try {
      await eventually(async () => assert.ok(sub.revisions().includes(rev), 'the subscription is attached'), { timeoutMs: 500 });
      return written;
    } catch (err) {
      if (i > 20) throw err;
    }
  }
}

const bearerOf = (token: string) => () => {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
};

test.serial('a resume with a 3,000-change backlog in the buffer arrives whole, in order, without duplicates, then goes on live', async (t) => {
  const { draft, put } = await serve();
  const c = draft();
  // One subscriber open: the changes sit in the resume buffer.
  const live = c.subscribe('RESOURCE_TYPE_SCENARIO');
  const before = (await subscribed(live, put)).at(-1)!;
  const revs = await createScenarios(put, 3000);
  await eventually(async () => assert.strictEqual(live.revisions().at(-1), revs.at(-1)), { timeoutMs: 60_000 });

  const resumed = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(before) });
  await eventually(async () => assert.ok(resumed.events.length >= 3000, `${resumed.events.length} of 3000`), { timeoutMs: 60_000 });
  t.log(`backlog resume: ${resumed.events.length} of 3000 events delivered`);
  t.deepEqual(resumed.revisions(), revs);
  t.is(new Set(resumed.events.map((e) => e.event_id)).size, 3000, 'no duplicate');
  const next = await put('after', 'Idle');
  await eventually(async () => assert.strictEqual(resumed.events.length, 3001));
  t.is(resumed.revisions()[3000], next);
  for (const s of [live, resumed]) s.cancel();
  c.close();
});

test.serial('a resume that ends leaks nothing: the subscriber count returns to 0 and the shared etcd watch closes when idle', async (t) => {
  // The previous test's watches close asynchronously.
  await new Promise((r) => setTimeout(r, 1000));
  const idle = await etcdWatchers();
  const { draft, put, feed } = await serve({ idleStopMs: 300 });
  const c = draft();
  const live = c.subscribe('RESOURCE_TYPE_SCENARIO');
  const before = (await subscribed(live, put)).at(-1)!;
  t.is(await etcdWatchers(), idle + 1, 'the shared watch');
  // More than what one stream may hold unsent (maxPausedBehind 1000): the resume that used to throw.
  const revs = await createScenarios(put, 1500);
  await eventually(async () => assert.strictEqual(live.revisions().at(-1), revs.at(-1)), { timeoutMs: 60_000 });
  const resumed = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(before) });
  await eventually(async () => assert.strictEqual(resumed.events.length, 1500), { timeoutMs: 60_000 });
  t.is(feed.subscribers, 2);
  resumed.cancel();
  live.cancel();
  await eventually(async () => assert.strictEqual(feed.subscribers, 0));
  await eventually(async () => assert.strictEqual(feed.etcdWatches, 0, 'the shared watch closed'));
  await eventually(async () => assert.strictEqual(await etcdWatchers(), idle));
  c.close();
});

test.serial('a client that stops reading is cut with RESOURCE_EXHAUSTED naming the revision from which a resume gives exactly the rest', async (t) => {
  const { draft, put, feed } = await serve({ maxPausedBehind: 300 });
  const c = draft();
  const slow = c.subscribe('RESOURCE_TYPE_SCENARIO');
  const first = (await subscribed(slow, put)).at(-1)!;
  slow.stream.pause();
  const revs = await createScenarios(put, 3000);
  await eventually(async () => assert.strictEqual(feed.subscribers, 0, 'cut'), { timeoutMs: 60_000 });
  slow.stream.resume();
  const status = await slow.end;
  t.is(status.code, grpc.status.RESOURCE_EXHAUSTED, status.details);
  const m = /since_revision=(\d+)/.exec(status.details);
  t.truthy(m, status.details);
  const from = Number(m![1]);
  t.log(`cut after ${slow.events.length} events: ${status.details}`);
  t.true(slow.events.length < 3000);
  // Everything up to the named revision was sent, and it arrived before the status.
  t.is(slow.revisions().at(-1), from);

  const rest = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(from) });
  const expected = [...slow.revisions().filter((r) => r <= first), ...revs];
  try {
    await eventually(async () => assert.strictEqual(slow.events.length + rest.events.length, expected.length), { timeoutMs: 60_000 });
  } catch (e) {
    // Seen 3 times (once in CI, twice under CPU stress, in about 40 runs) while this test's feed
    // had no marker: its replay ended on etcd's progress answers, which came ahead of the last
    // changes (test/etcd/replay-paused.test.ts). What it got says where it stopped.
    const got = new Set(rest.revisions());
    const missing = expected.filter((r) => r > from && !got.has(r));
    t.log(`rest: ${rest.events.length} events, error ${rest.error?.code} ${rest.error?.details}; first ${rest.revisions()[0]} last ${rest.revisions().at(-1)}; missing ${missing.length}: ${missing.slice(0, 10).join(',')} … ${missing.slice(-5).join(',')}; from ${from}; revs first ${revs[0]} last ${revs.at(-1)}; feed subs ${feed.subscribers}`);
    throw e;
  }
  t.deepEqual([...slow.revisions(), ...rest.revisions()], expected, 'whole, in order, no duplicate at the cut');
  rest.cancel();
  c.close();
});

test.serial('subscriptions are bounded per identity and in total (RESOURCE_EXHAUSTED), below, at and past each bound', async (t) => {
  const alice = 'alice-'.padEnd(40, 'a');
  const bob = 'bob-'.padEnd(40, 'b');
  const { draft, feed } = await serve(
    {},
    {
      auth: {
        tokens: [
          { token: alice, identity: 'alice' },
          { token: bob, identity: 'bob' },
        ],
        rules: [{ identities: ['token:*'], allow: [{ method: 'read' }] }],
      },
      limits: { subscriptionsPerIdentity: 3, subscriptionsTotal: 5 },
    },
  );
  const a = draft(bearerOf(alice));
  const b = draft(bearerOf(bob));
  const all: Subscription[] = [];
  const open = async (c: DraftClient, expected: number): Promise<Subscription> => {
    const s = c.subscribe('RESOURCE_TYPE_SCENARIO');
    all.push(s);
    await eventually(async () => assert.strictEqual(feed.subscribers, expected));
    return s;
  };
  const refused = async (c: DraftClient): Promise<grpc.StatusObject> => c.subscribe('RESOURCE_TYPE_SCENARIO').end;

  const a1 = await open(a, 1);
  await open(a, 2); // below
  await open(a, 3); // at the per-identity bound
  const past = await refused(a);
  t.is(past.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(past.details, /token:alice has 3 subscriptions open.*subscriptionsPerIdentity/);
  await open(b, 4);
  const b5 = await open(b, 5); // at the total bound
  const total = await refused(b);
  t.is(total.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(total.details, /serves 5 subscriptions.*subscriptionsTotal/);
  t.is(feed.subscribers, 5);
  // Closing one gives its place back, to its identity and to the total.
  a1.cancel();
  await eventually(async () => assert.strictEqual(feed.subscribers, 4));
  await open(a, 5);
  b5.cancel();
  await eventually(async () => assert.strictEqual(feed.subscribers, 4));
  await open(b, 5);
  for (const s of all) s.cancel();
  await eventually(async () => assert.strictEqual(feed.subscribers, 0));
  a.close();
  b.close();
});

test.serial('with the default limits, one connection holding its identity\'s subscriptions hears RESOURCE_EXHAUSTED for one more, and its other calls are answered', async (t) => {
  // maxConcurrentStreams was 100, the subscriptions an identity may hold (on loopback, anonymous:
  // one connection) 100 too: the 101st waited in the client for a stream, silently, and every
  // unary call on the connection with it until its deadline (found by black-box probing).
  const { draft, feed } = await serve();
  const c = draft();
  const subs = Array.from({ length: 99 }, () => c.subscribe('RESOURCE_TYPE_SCENARIO'));
  await eventually(async () => assert.strictEqual(feed.subscribers, 99));
  subs.push(c.subscribe('RESOURCE_TYPE_SCENARIO')); // at the bound
  await eventually(async () => assert.strictEqual(feed.subscribers, 100));
  const past = await c.subscribe('RESOURCE_TYPE_SCENARIO').end;
  t.is(past.code, grpc.status.RESOURCE_EXHAUSTED, past.details);
  t.regex(past.details, /has 100 subscriptions open.*subscriptionsPerIdentity/);
  const answered = await Promise.all(Array.from({ length: 16 }, () => c.getState('RESOURCE_TYPE_SCENARIO', 'nothing', 3000).then(() => 'answered', (e: grpc.ServiceError) => grpc.status[e.code])));
  t.deepEqual(answered, Array.from({ length: 16 }, () => 'answered'), 'every unary call of the identity\'s budget answered, none waiting for a stream');
  for (const s of subs) s.cancel();
  await eventually(async () => assert.strictEqual(feed.subscribers, 0));
  c.close();
});

test.serial('a replica whose caches have not loaded answers the cached reads UNAVAILABLE, saying so; the history (from etcd) and subscriptions are served; once loaded, the reads are answered', async (t) => {
  // Found by black-box probing: a starting replica answered "not found" for existing resources
  // and lists of 5,000 of 50,000 with success, for 1.6 s on a quiet cluster and 5 s and more under load.
  let why: string | undefined = 'its caches have not loaded the states from etcd yet';
  const { draft, caches, feed } = await serve({}, {}, undefined, () => why);
  caches.states.set('p', { name: 'p', state: 'Running', version: 1 });
  const c = draft();
  const code = (p: Promise<unknown>) => p.then(() => 'OK', (e: grpc.ServiceError) => `${grpc.status[e.code]} ${e.details}`);
  t.is(await code(c.getState('RESOURCE_TYPE_PACKAGE', 'p')), 'UNAVAILABLE this replica is starting: its caches have not loaded the states from etcd yet; retry, or ask another replica');
  t.regex(await code(c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE' })), /^UNAVAILABLE this replica is starting/);
  t.is(await code(c.history({ resource_type: 'RESOURCE_TYPE_PACKAGE', resource_name: 'p' })), 'OK');
  // A request that is wrong anyway is told so first.
  t.like(await c.getState('RESOURCE_TYPE_VOLUME', 'p'), { success: false });
  const sub = c.subscribe('RESOURCE_TYPE_SCENARIO');
  await eventually(async () => assert.strictEqual(feed.subscribers, 1));
  why = undefined;
  t.like(await c.getState('RESOURCE_TYPE_PACKAGE', 'p'), { success: true, resource_state: { current_state: 'Running' } });
  t.like(await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE' }), { success: true, total_count: 1 });
  sub.cancel();
  c.close();
});

test.serial('each event says the revision to resume from should the stream break after it: the one before while its revision has more changes; a resume from it gets the rest of the revision', async (t) => {
  // Found by black-box probing: clients resuming from the last revision they had got, after a
  // replica was killed in the middle of a transaction's changes, missed the rest of it (3–46 each).
  const { draft, put, client, keys } = await serve();
  const c = draft();
  const live = c.subscribe('RESOURCE_TYPE_SCENARIO');
  await subscribed(live, put);
  const before = live.events.length;
  const txn = await client.kv.txn({ compare: [], failure: [], success: ['t1', 't2', 't3'].map((n) => ({ request_put: { key: Buffer.from(keys.stateKey('scenario', n)), value: Buffer.from('Idle') } })) });
  const R = Number(txn.header.revision);
  await eventually(async () => assert.strictEqual(live.events.length, before + 3));
  const three = live.events.slice(before);
  t.deepEqual(three.map((e) => [e.event_id, e.metadata.revision, e.metadata.resume_since_revision]), [
    [`${R}-0`, String(R), String(R - 1)],
    [`${R}-1`, String(R), String(R - 1)],
    [`${R}-2`, String(R), String(R)],
  ]);
  // Broken after the second: resumed as it says, the third comes (the first two again, by the same event_id).
  const resumed = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: three[1]!.metadata.resume_since_revision! });
  await eventually(async () => assert.strictEqual(resumed.events.length, 3));
  t.deepEqual(resumed.events.map((e) => e.event_id), three.map((e) => e.event_id));
  // From the revision itself, the rest of it never comes: why the events say where to resume.
  const literal = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(R) });
  const next = await put('after', 'Idle');
  await eventually(async () => assert.ok(literal.revisions().includes(next)));
  t.deepEqual(literal.revisions(), [next]);
  for (const sub of [live, resumed, literal]) sub.cancel();
  c.close();
});

test.serial('replays from before the buffer share a bounded number of etcd watches, however many resume at once', async (t) => {
  const { draft, put, feed, source } = await serve({ replayWatches: 2, bufferSize: 50 });
  const old = await createScenarios(put, 300, 'old');
  const c = draft();
  // The shared watch starts now: everything above is older than its buffer.
  const live = c.subscribe('RESOURCE_TYPE_SCENARIO');
  const warm = await subscribed(live, put);
  t.is(source.max, 1);

  // Below the bound: one replay, one more watch.
  const one = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(old[0]! - 1) });
  await eventually(async () => assert.strictEqual(one.events.length, 300 + warm.length));
  t.is(source.max, 2);
  one.cancel();

  // Twenty at once from twenty revisions: at the bound (1 + 2), never past it.
  const subs = Array.from({ length: 20 }, (_, i) => ({ since: old[i * 10]!, s: c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(old[i * 10]) }) }));
  const last = await put('later', 'Idle');
  await eventually(async () => assert.ok(subs.every(({ s }) => s.revisions().at(-1) === last), 'every replay reached the live stream'), { timeoutMs: 60_000 });
  for (const { since, s } of subs) t.deepEqual(s.revisions(), [...old.filter((r) => r > since), ...warm, last], `since ${since}`);
  t.log(`20 concurrent replays: at most ${source.max} etcd watches open (shared + replayWatches 2)`);
  t.is(source.max, 3);
  await eventually(async () => assert.strictEqual(feed.etcdWatches, 1, 'the replays closed their watches'));
  for (const { s } of subs) s.cancel();
  live.cancel();
  c.close();
});

test.serial('a resume far behind reads its whole backlog through one etcd watch, paused between chunks, in order', async (t) => {
  // Chunks of 50 over 2,000 changes: a watch per chunk made etcd read its history from each
  // chunk's start again (a resume 100,000 changes back: 53 s of etcd's CPU against 0.7 s).
  const { draft, put, source } = await serve({ replayChunk: 50, bufferSize: 50 });
  const old = await createScenarios(put, 2000, 'far');
  const c = draft();
  const live = c.subscribe('RESOURCE_TYPE_SCENARIO');
  const warm = await subscribed(live, put);
  const before = source.opened;
  const resumed = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(old[0]! - 1) });
  await eventually(async () => assert.strictEqual(resumed.events.length, 2000 + warm.length), { timeoutMs: 30_000 });
  t.deepEqual(resumed.revisions(), [...old, ...warm]);
  t.is(source.opened - before, 1, 'one etcd watch for 40 chunks');
  resumed.cancel();
  live.cancel();
  c.close();
});

test.serial('a replay that reads old states once per key (no prev_kv) gives every change its right old state: updates, deletes, values that are not states', async (t) => {
  const lookUps: number[] = [];
  const lookUp = etcdPreviousValues(etcd.client(), 3000);
  const { draft, put, keys, client, source } = await serve({
    replayChunk: 40,
    bufferSize: 50,
    lookUpPrevious: async (l) => {
      lookUps.push(l.length);
      return lookUp(l);
    },
  });
  const names = Array.from({ length: 20 }, (_, i) => `r${i}`);
  const states = ['Idle', 'Waiting', 'Satisfied', 'Allowed', 'Denied', 'Completed'];
  // Before the resume's revision: each key gets a state (some twice), so its first change in the
  // replay needs its old state from etcd.
  const now = new Map<string, string>();
  for (const [i, name] of names.entries()) {
    await put(name, states[i % 3]!);
    if (i % 2 === 0) await put(name, states[(i % 3) + 1]!);
    now.set(name, states[i % 2 === 0 ? (i % 3) + 1 : i % 3]!);
  }
  const since = await put('r0', now.get('r0')!); // a rewrite of the same state: no change
  // The replayed history: 300 writes of states, deletes and values that are not states (absent).
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const expected: string[] = [];
  let last = since;
  for (let i = 0; i < 300; i++) {
    const name = names[rand(names.length)]!;
    const op = rand(10);
    const key = keys.stateKey('scenario', name);
    let to: string;
    let rev: number;
    if (op === 0) {
      rev = Number((await client.delete().key(key).exec()).header.revision);
      to = '';
    } else if (op === 1) {
      rev = Number((await client.put(key).value('not-a-state').exec()).header.revision);
      to = '';
    } else {
      to = states[rand(states.length)]!;
      rev = await put(name, to);
    }
    const from = now.get(name) ?? '';
    now.set(name, to);
    last = rev;
    if (from !== to) expected.push(`${name}: ${from || '-'} -> ${to || '-'} @${rev}`);
  }

  const c = draft();
  const live = c.subscribe('RESOURCE_TYPE_SCENARIO');
  const warm = await subscribed(live, put);
  const targetsBefore = source.targets.length;
  const resumed = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(since) });
  await eventually(async () => assert.ok(resumed.revisions().includes(warm.at(-1)!), 'the replay reached the live stream'), { timeoutMs: 30_000 });
  const got = resumed.events
    .filter((e) => Number(e.metadata.revision) <= last)
    .map((e) => `${e.state_change!.resource_name}: ${e.state_change!.current_state || '-'} -> ${e.state_change!.target_state || '-'} @${e.metadata.revision}`);
  t.deepEqual(got, expected);
  t.true(expected.length > 200, `${expected.length} changes replayed`);
  const replays = source.targets.slice(targetsBefore);
  t.true(replays.length >= 1);
  t.true(replays.every((r) => r.prevKv === false), 'the replay watch does not ask etcd for previous values');
  // Once per key: at most the 20 keys were looked up (a key deleted then created again needs none).
  t.true(lookUps.reduce((a, b) => a + b, 0) <= names.length, `looked up ${lookUps.join('+')} keys`);
  resumed.cancel();
  live.cancel();
  c.close();
});

/**
 * A list cap of three resources, below, at and past it: two and three listed whole, four cut to the
 * first three by name with a message matching `capped` (for each of `pastLimits`); a limit of 3 is
 * the client's own. The client is handed back open.
 */
async function listCappedAtThree(t: ExecutionContext, config: GrpcServerConfigInput, name: (i: number) => string, capped: RegExp, pastLimits: number[]): Promise<DraftClient> {
  const { draft, caches } = await serve({}, config);
  const c = draft();
  const fill = (n: number) => {
    caches.states.clear();
    for (let i = 0; i < n; i++) caches.states.set(name(i), { name: name(i), state: 'Running', version: 1 });
  };
  const list = (limit: number) => c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit });
  fill(2); // below
  t.like(await list(0), { total_count: 2, message: 'revision 1' });
  fill(3); // at
  const at = await list(0);
  t.is(at.resources.length, 3);
  t.like(at, { total_count: 3, message: 'revision 1' });
  fill(4); // past
  for (const limit of pastLimits) {
    const past = await list(limit);
    t.deepEqual(past.resources.map((r) => r.resource_name), [name(0), name(1), name(2)], `limit ${limit}`);
    t.is(past.total_count, 4);
    t.regex(past.message, capped);
  }
  // A limit within the cap is the client's own: not "capped".
  t.like(await list(3), { total_count: 4, message: 'revision 1' });
  return c;
}

test.serial('one ListResourcesByState answer is capped at listMaxResults; total_count counts all; the message says it was capped', async (t) => {
  const c = await listCappedAtThree(t, { limits: { listMaxResults: 3 } }, (i) => `p${i}`, /capped at 3 of 4 \(grpc\.limits\.listMaxResults\): the first 3 by name \(no paging: a smaller limit gives fewer of the same; narrow the list by state\)/, [0, 4, 100]);
  t.is((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 2 })).resources.length, 2);
  c.close();
});

test.serial('long list answers are sent a few at a time: 12 callers at once all get the whole list, what is being sent stays within the budget, and every turn is given back when its call ends', async (t) => {
  // 50 callers listing 50,000 models together got a copy each from grpc-js at once (4 MiB each):
  // the kernel killed the process under the chart's 512Mi (black-box probing in a cgroup).
  // Each list is taken for 300 kB (3,000 resources of about 100 bytes): three fit the budget.
  const sends = new BytesInFlight({ capacity: 900_000, maxWaiting: 100 });
  const { draft, caches } = await serve({}, {}, undefined, undefined, sends);
  for (let i = 0; i < 3000; i++) caches.states.set(`package-with-a-longer-name-${String(i).padStart(5, '0')}`, { name: `package-with-a-longer-name-${String(i).padStart(5, '0')}`, state: 'Running', version: 1 });
  let most = 0;
  const sample = setInterval(() => (most = Math.max(most, sends.inFlight)), 1);
  const clients = Array.from({ length: 12 }, () => draft());
  const answers = await Promise.all(clients.map((c) => c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 0 })));
  clearInterval(sample);
  for (const a of answers) t.is(a.resources.length, 3000);
  t.true(most >= 300_000, 'the lists went through the gate');
  t.true(most <= 900_000, `at most the budget in flight (${most} bytes)`);
  await eventually(() => assert.strictEqual(sends.inFlight, 0), { timeoutMs: 2000 });
  t.is(sends.waiting, 0);
  for (const c of clients) c.close();
});

test.serial('a list answer waiting its turn past the caller\'s deadline is RESOURCE_EXHAUSTED, naming the setting', async (t) => {
  const sends = new BytesInFlight({ capacity: 1, maxWaiting: 100 });
  const { draft, caches } = await serve({}, {}, undefined, undefined, sends);
  for (let i = 0; i < 3000; i++) caches.states.set(`package-with-a-longer-name-${String(i).padStart(5, '0')}`, { name: `package-with-a-longer-name-${String(i).padStart(5, '0')}`, state: 'Running', version: 1 });
  const holder = await sends.acquire(1);
  const c = draft();
  // Less than the time a long answer needs left (2 s): refused at once, not left to run out.
  const asked = performance.now();
  const err = await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 0 }, 1500).then(() => undefined, (e: grpc.ServiceError) => e);
  t.is(err?.code, grpc.status.RESOURCE_EXHAUSTED);
  t.true(performance.now() - asked < 1000, `answered in ${Math.round(performance.now() - asked)} ms, well before the 1.5 s deadline`);
  // More than that left: it waits until 2 s before its deadline, then is refused in time.
  const asked3 = performance.now();
  const err3 = await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 0 }, 3000).then(() => undefined, (e: grpc.ServiceError) => e);
  t.is(err3?.code, grpc.status.RESOURCE_EXHAUSTED);
  const waited = performance.now() - asked3;
  t.true(waited >= 900 && waited < 2500, `waited ${Math.round(waited)} ms of its 3 s`);
  t.regex(err?.details ?? '', /grpc\.limits\.listBytesInFlight/);
  if (typeof holder === 'function') holder();
  t.is((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 0 })).resources.length, 3000, 'served once the budget is free');
  c.close();
});

test.serial('a list taken for under 64 KiB never waits for a turn; just past it, it does (each resource taken for 100 bytes: 655 and 656 resources)', async (t) => {
  const sends = new BytesInFlight({ capacity: 1, maxWaiting: 100 });
  const { draft, caches } = await serve({}, {}, undefined, undefined, sends);
  const holder = await sends.acquire(1);
  const c = draft();
  const fill = (n: number) => {
    caches.states.clear();
    for (let i = 0; i < n; i++) caches.states.set(`p${String(i).padStart(5, '0')}`, { name: `p${String(i).padStart(5, '0')}`, state: 'Running', version: 1 });
  };
  fill(655); // 65,500 bytes: below
  t.is((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 0 }, 800)).resources.length, 655);
  t.is((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 2000 }, 800)).resources.length, 655, 'a limit above the kind: the kind decides');
  fill(656); // 65,600 bytes: past
  const late = await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 0 }, 800).then(() => undefined, (e: grpc.ServiceError) => e.code);
  t.is(late, grpc.status.RESOURCE_EXHAUSTED, 'waited for the turn held elsewhere');
  t.is((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 655 }, 800)).resources.length, 655, 'a limit below the bound: no wait');
  if (typeof holder === 'function') holder();
  c.close();
});

test.serial('a long list\'s answer its client does not read is cut a second past the caller\'s deadline, or at the hold cap without one, and its turn given back', async (t) => {
  // grpc-js holds a unary call's status, its deadline's included, behind an answer its client
  // does not read, so the call never ends: a probe's client that never read held every turn.
  for (const [timeout, capMs, atLeast, atMost] of [['1S', 60_000, 1500, 4000], [undefined, 400, 300, 2500]] as const) {
    const sends = new BytesInFlight({ capacity: 100_000_000, maxWaiting: 100 });
    const { s, caches } = await serve({}, {}, undefined, undefined, sends, capMs);
    for (let i = 0; i < 3000; i++) caches.states.set(`package-with-a-longer-name-${String(i).padStart(5, '0')}`, { name: `package-with-a-longer-name-${String(i).padStart(5, '0')}`, state: 'Running', version: 1 });
    // A raw HTTP/2 client whose window is 0: it asks, and never reads.
    const session = http2.connect(`http://${s.target}`, { settings: { initialWindowSize: 0 } });
    t.teardown(() => session.destroy());
    const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': '/statemanager.StateManagerConnection/ListResourcesByState', 'content-type': 'application/grpc', te: 'trailers' };
    if (timeout) headers['grpc-timeout'] = timeout;
    const asked = performance.now();
    const req = session.request(headers);
    req.on('error', () => undefined);
    req.end(Buffer.from([0, 0, 0, 0, 2, 0x08, 2])); // ListResourcesByStateRequest{resource_type: PACKAGE}
    req.pause();
    const closed = new Promise<number>((resolve) => req.on('close', () => resolve(req.rstCode)));
    await eventually(() => assert.ok(sends.inFlight > 0), { timeoutMs: 3000 });
    t.is(await closed, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 'reset: gRPC clients read it as RESOURCE_EXHAUSTED');
    const after = performance.now() - asked;
    t.true(after >= atLeast && after < atMost, `${timeout ?? 'no deadline'}: cut after ${Math.round(after)} ms`);
    await eventually(() => assert.strictEqual(sends.inFlight, 0), { timeoutMs: 2000 });
    // An answer that ended past its caller's deadline is not counted OK: the caller timed out.
    const counted = s.metrics.calls.filter(([m]) => m === 'ListResourcesByState').map(([, code]) => code);
    if (timeout) t.deepEqual(counted, ['DEADLINE_EXCEEDED']);
  }
});

test.serial('limit 0 lists every resource under the default limits (5,000 packages)', async (t) => {
  const { draft, caches } = await serve();
  for (let i = 0; i < 5000; i++) caches.states.set(`pkg${String(i).padStart(5, '0')}`, { name: `pkg${String(i).padStart(5, '0')}`, state: 'Running', version: 1 });
  const c = draft();
  const all = await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', limit: 0 });
  t.is(all.resources.length, 5000);
  t.like(all, { total_count: 5000, message: 'revision 1' });
  c.close();
});

/** What the read API answers for a package named `name` in state Running at revision 1, as listed. */
const listedPackage = (name: string): ResourceState => ({
  resource_type: 'RESOURCE_TYPE_PACKAGE',
  resource_name: name,
  current_state: 'Running',
  desired_state: '',
  last_transition_time_ns: '0',
  state_generation: '1',
  asil_level: 'ASIL_LEVEL_UNSPECIFIED',
  metadata: { revision: '1' },
  history: [],
  health_status: { healthy: true, status_message: `package ${name} is Running`, last_health_check_ns: '1733400000000000000', checks: [] },
});

test.serial('one ListResourcesByState answer stays within listMaxBytes: below, at and past it', async (t) => {
  const name = (i: number) => `p${String(i).padStart(4, '0')}`;
  const each = listedResourceBytes(listedPackage(name(0)));
  const c = await listCappedAtThree(t, { limits: { listMaxBytes: 3 * each } }, name, /capped at 3 of 4 \(grpc\.limits\.listMaxBytes: \d+ bytes in one answer\): the first 3 by name \(no paging: a smaller limit gives fewer of the same; narrow the list by state\)/, [0, 4]);
  c.close();
});

test('the listed size of a resource bounds its encoded size from above, within a fifth', (t) => {
  const proto = loadStateManagerProto();
  const serialize = proto.statemanager.StateManagerConnection.service.ListResourcesByState.responseSerialize;
  for (const name of ['p', 'package-0001', 'x'.repeat(200), 'ナビ地図-パッケージ', 'edge/nav'.repeat(30)]) {
    const r = listedPackage(name);
    const one = serialize({ success: true, message: '', resources: [r], total_count: 1 }).length;
    const none = serialize({ success: true, message: '', resources: [], total_count: 1 }).length;
    const encoded = one - none;
    const bound = listedResourceBytes(r);
    t.true(bound >= encoded, `${name}: bound ${bound} B, encoded ${encoded} B`);
    t.true(bound <= encoded * 1.2 + 24, `${name}: bound ${bound} B, encoded ${encoded} B`);
  }
});

test.serial('the history answers carry the authenticated identity beside the source', async (t) => {
  const operator = 'operator-'.padEnd(40, 'o');
  const { draft, caches } = await serve(
    {},
    {
      auth: {
        tokens: [{ token: operator, identity: 'operator' }],
        rules: [{ identities: ['token:operator'], allow: [{ method: 'read' }, { method: 'SendStateChange', kind: 'scenario' }] }],
      },
    },
  );
  const c = draft(bearerOf(operator));
  t.is((await c.sendStateChange({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 'brake', target_state: 'Idle', source: 'dashboard' })).error_code, 'ERROR_CODE_SUCCESS');
  t.is((await c.sendStateChange({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 'brake', target_state: 'Waiting', source: 'token:operator' })).error_code, 'ERROR_CODE_SUCCESS');
  caches.states.set('brake', { name: 'brake', state: 'Waiting', version: 2 });
  const history = await c.history({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 'brake' });
  t.deepEqual(history.history.map((h) => h.source), ['dashboard (identity token:operator)', 'token:operator']);
  const state = await c.getState('RESOURCE_TYPE_SCENARIO', 'brake');
  t.deepEqual(state.resource_state?.history.map((h) => h.source), ['dashboard (identity token:operator)', 'token:operator']);
  c.close();
});

test.serial('GetResourceState while the history cannot be read: the cached state, no history, and metadata["history"] saying why', async (t) => {
  let failing = true;
  const { draft, caches, client, keys } = await serve({}, {}, {
    read: async (kind, name) => {
      if (failing) throw new Error('etcd is unavailable');
      return new EtcdHistoryStore(client, keys, 3000).read(kind, name);
    },
  });
  caches.states.set('brake', { name: 'brake', state: 'Waiting', version: 2 });
  const c = draft();
  const during = await c.getState('RESOURCE_TYPE_SCENARIO', 'brake');
  t.true(during.success);
  t.like(during.resource_state, { resource_name: 'brake', current_state: 'Waiting', state_generation: '2', last_transition_time_ns: '0', history: [] });
  t.is(during.resource_state?.metadata.history, 'unavailable: etcd is unavailable');
  t.regex(during.resource_state?.metadata.revision ?? '', /^\d+$/);
  // Unknown resources are still unknown, whatever etcd does.
  t.false((await c.getState('RESOURCE_TYPE_SCENARIO', 'nothing')).success);
  failing = false;
  const after = await c.getState('RESOURCE_TYPE_SCENARIO', 'brake');
  t.true(after.success);
  t.is(after.resource_state?.metadata.history, undefined);
  c.close();
});

test.serial('GetResourceState with etcd silent: the history read ends 250 ms before the caller\'s deadline, and the cached state arrives in time', async (t) => {
  const deadlines: (number | undefined)[] = [];
  const { draft, caches } = await serve({}, {}, {
    // etcd behind a black hole: no answer until the deadline (its own 3 s without one).
    read: (_kind, _name, deadline) => {
      deadlines.push(deadline);
      const ms = (deadline ?? Date.now() + 3000) - Date.now();
      return new Promise((_resolve, reject) => setTimeout(() => reject(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded')), Math.max(0, ms)));
    },
  });
  caches.states.set('brake', { name: 'brake', state: 'Waiting', version: 2 });
  const c = draft();
  // Below the margin (200 ms: the history's deadline has passed before it is read), at it, and past it.
  for (const timeoutMs of [200, 250, 400, 1000]) {
    const sent = Date.now();
    const got = await c.getState('RESOURCE_TYPE_SCENARIO', 'brake', timeoutMs);
    const tookMs = Date.now() - sent;
    t.true(got.success, `answered within a ${timeoutMs} ms deadline`);
    t.like(got.resource_state, { current_state: 'Waiting', history: [] });
    t.regex(got.resource_state?.metadata.history ?? '', /^unavailable: .*DEADLINE_EXCEEDED/);
    t.true(tookMs >= timeoutMs - 250 - 50 && tookMs < timeoutMs, `${tookMs} ms for a ${timeoutMs} ms deadline`);
    const d = deadlines.at(-1)!;
    t.true(d <= sent + timeoutMs - 250 + 20 && d >= sent + timeoutMs - 250 - 100, `history deadline ${d - sent} ms after sending`);
  }
  c.close();
});

test('EtcdHistoryStore: with etcd known unreachable a read fails at once, without a call to etcd', async (t) => {
  let calls = 0;
  const client = { kv: { range: () => (calls++, Promise.reject(new Error('called'))) } } as unknown as Etcd3;
  const store = new EtcdHistoryStore(client, new KeyLayout('/h'), 3000, () => false);
  await t.throwsAsync(store.read('scenario', 's'), { message: 'etcd is unreachable' });
  t.is(calls, 0);
  const reachable = new EtcdHistoryStore(client, new KeyLayout('/h'), 3000, () => true);
  await t.throwsAsync(reachable.read('scenario', 's'), { message: 'called' });
  t.is(calls, 1);
});

test("EtcdHistoryStore: a caller's deadline already passed (or reached) fails the read at once, without a call to etcd; a later one calls", async (t) => {
  let calls = 0;
  const client = { kv: { range: () => (calls++, Promise.reject(new Error('called'))) } } as unknown as Etcd3;
  const store = new EtcdHistoryStore(client, new KeyLayout('/h'), 3000, () => true);
  await t.throwsAsync(store.read('scenario', 's', Date.now() - 1), { message: /no time left/ });
  await t.throwsAsync(store.read('scenario', 's', Date.now()), { message: /no time left/ });
  t.is(calls, 0);
  await t.throwsAsync(store.read('scenario', 's', Date.now() + 50), { message: 'called' });
  t.is(calls, 1);
});

test('attributedSource: the identity is added when recorded and different from the source', (t) => {
  t.is(attributedSource('controller', undefined), 'controller');
  t.is(attributedSource('cli', 'cn:ops'), 'cli (identity cn:ops)');
  t.is(attributedSource('cn:ops', 'cn:ops'), 'cn:ops');
  t.is(attributedSource('', 'anonymous'), '(identity anonymous)');
});

test.serial('reads refuse names with invisible or separator characters, naming the field', async (t) => {
  const { draft, caches } = await serve();
  const c = draft();
  caches.states.set('ab', { name: 'ab', state: 'Running', version: 1 });
  t.like(await c.getState('RESOURCE_TYPE_PACKAGE', 'ab'), { success: true });
  for (const bad of ['a\u200bb', 'a\u2028b', '\ufeffab', 'a\u061cb']) {
    const a = await c.getState('RESOURCE_TYPE_PACKAGE', bad);
    t.false(a.success, JSON.stringify(bad));
    t.regex(a.message, /^resource_name /);
    const sub = c.subscribe('RESOURCE_TYPE_PACKAGE', { name: bad });
    const s = await sub.end;
    t.is(s.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(bad));
    t.regex(s.details, /filter\["name"\]/);
  }
  c.close();
});
