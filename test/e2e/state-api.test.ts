// Contract section 5 against real statemanager processes and a real etcd, through a client built
// from Pullpiri's draft messages (test/fixtures), not the project's protos: reads from a leader
// and a follower, subscriptions with filters, resume from a revision across a replica restart,
// compaction, 200 subscribers on one etcd watch, and a slow subscriber cut off.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { UNREAD_STATUS_GRACE_MS } from '../../src/grpc/handler.js';
import type { Etcd3 } from 'etcd3';
import { DraftClient, type DraftEvent, type DraftResourceState, type Subscription } from '../helpers/draft-client.js';
import { freePort, startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { sharedEnv } from '../helpers/shared-env.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { startReplica, type Replica } from '../helpers/replica.js';

const replicas: Replica[] = [];
const clients: DraftClient[] = [];
const env = sharedEnv(test, async () => {
  for (const c of clients) c.close();
  await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
});

async function replica(prefix: string, identity: string, config: Record<string, unknown> = {}): Promise<Replica> {
  const r = await startReplica({ identity, etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, config: { keyPrefix: prefix, ...config } });
  replicas.push(r);
  await eventually(async () => assert.strictEqual((await r.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  return r;
}

function client(r: Replica): DraftClient {
  const c = new DraftClient(`127.0.0.1:${r.grpcPort}`);
  clients.push(c);
  return c;
}

/** Puts a scenario state directly (the controller never writes scenario states) and returns the revision. */
async function putScenario(c: Etcd3, w: FleetWriter, name: string, state: string): Promise<number> {
  const res = await c.put(w.keys.stateKey('scenario', name)).value(state).exec();
  return Number(res.header.revision);
}

async function etcdWatchers(server: EtcdServer = env.etcd): Promise<number> {
  const body = await (await fetch(`${server.endpoint}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith('etcd_debugging_mvcc_watcher_total '));
  return Number(line?.split(' ')[1]);
}

/**
 * etcd's watcher count once it holds still: /readyz turns 200 after the informers' lists, and
 * their watches are created a moment later.
 */
async function settledWatchers(server: EtcdServer): Promise<number> {
  let last = await etcdWatchers(server);
  for (let same = 0; same < 3; ) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await etcdWatchers(server);
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

const events = (s: Subscription) => s.events.map((e) => `${e.state_change?.resource_name}:${e.state_change?.current_state}->${e.state_change?.target_state}@${e.metadata.revision}`);

test.serial('reads: state, history and lists from the caches, in the draft messages', async (t) => {
  const w = new FleetWriter(env.etcd.client(), '/api1');
  await w.packageDef('p1', ['m1', 'm2']);
  await w.packageDef('p2', ['m3']);
  await w.container('n1', 'c1', 'm1', 'running');
  await w.container('n1', 'c2', 'm2', 'running');
  await w.container('n2', 'c3', 'm3', 'dead');
  const r = await replica('/api1', 'api1');
  const c = client(r);
  await eventually(async () => {
    assert.strictEqual(await w.state('package', 'p1'), 'Running');
    assert.strictEqual(await w.state('package', 'p2'), 'Error');
  });
  t.is((await c.sendStateChange({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 's1', target_state: 'Idle', source: 'test' })).error_code, 'ERROR_CODE_SUCCESS');

  let p1!: DraftResourceState;
  await eventually(async () => {
    const a = await c.getState('RESOURCE_TYPE_PACKAGE', 'p1');
    assert.strictEqual(a.resource_state?.current_state, 'Running', JSON.stringify(a));
    p1 = a.resource_state!;
  });
  const kv = await w.client.get(w.keys.stateKey('package', 'p1')).exec();
  t.is(p1.state_generation, kv.kvs[0]!.version);
  t.true(Number(p1.metadata.revision) >= Number(kv.kvs[0]!.mod_revision));
  t.is(p1.resource_type, 'RESOURCE_TYPE_PACKAGE');
  const last = p1.history[p1.history.length - 1]!;
  t.is(last.to_state, 'Running');
  t.is(p1.last_transition_time_ns, last.timestamp_ns);
  t.true(p1.health_status?.healthy);
  t.is(p1.history.length, Number(p1.state_generation));

  const p2 = (await c.getState('RESOURCE_TYPE_PACKAGE', 'p2')).resource_state!;
  t.like(p2, { current_state: 'Error', health_status: { healthy: false } });
  t.is((await c.getState('RESOURCE_TYPE_MODEL', 'm3')).resource_state?.current_state, 'Dead');
  let s1!: DraftResourceState;
  await eventually(async () => {
    const a = await c.getState('RESOURCE_TYPE_SCENARIO', 's1');
    assert.ok(a.success, JSON.stringify(a));
    s1 = a.resource_state!;
  });
  t.like(s1, { current_state: 'Idle', state_generation: '1' });
  t.is(s1.history[0]?.source, 'test (identity anonymous)'); // the read API appends the authenticated identity

  // Not found and unmanaged types answer success: false, not a gRPC error.
  const missing = await c.getState('RESOURCE_TYPE_PACKAGE', 'nope');
  t.false(missing.success);
  t.regex(missing.message, /package "nope" not found/);
  t.false((await c.getState('RESOURCE_TYPE_VOLUME', 'v')).success);

  // Lists: sorted by name, state matched leniently, limit and total.
  const all = await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE' });
  t.deepEqual(all.resources.map((x) => [x.resource_name, x.current_state]), [['p1', 'Running'], ['p2', 'Error']]);
  // When the current state was entered, as GetResourceState says (it answered 0 in lists: a Pullpiri compatibility probe).
  t.is(all.resources[0]!.last_transition_time_ns, p1.last_transition_time_ns);
  t.not(all.resources[1]!.last_transition_time_ns, '0');
  t.is(all.total_count, 2);
  t.deepEqual((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', state: 'error' })).resources.map((x) => x.resource_name), ['p2']);
  t.deepEqual((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', state: 'PACKAGE_STATE_RUNNING' })).resources.map((x) => x.resource_name), ['p1']);
  const limited = await c.list({ resource_type: 'RESOURCE_TYPE_MODEL', limit: 2 });
  t.deepEqual([limited.resources.map((x) => x.resource_name), limited.total_count], [['m1', 'm2'], 3]);
  t.deepEqual(limited.resources[0]!.history, []);
  t.false((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', state: 'Sleeping' })).success);
  t.false((await c.list({ resource_type: 'RESOURCE_TYPE_PACKAGE', label_selector: { a: 'b' } })).success);

  // History: newest last, limit keeps the newest, a time window cuts.
  const h = await c.history({ resource_type: 'RESOURCE_TYPE_PACKAGE', resource_name: 'p1' });
  t.true(h.success);
  t.deepEqual(h.history.map((x) => x.to_state), p1.history.map((x) => x.to_state));
  const newest = await c.history({ resource_type: 'RESOURCE_TYPE_PACKAGE', resource_name: 'p1', limit: 1 });
  t.deepEqual(newest.history, [h.history[h.history.length - 1]]);
  const after = await c.history({ resource_type: 'RESOURCE_TYPE_PACKAGE', resource_name: 'p1', start_time_ns: String(BigInt(Date.now() + 60_000) * 1_000_000n) });
  t.deepEqual(after.history, []);
  t.false((await c.history({ resource_type: 'RESOURCE_TYPE_PACKAGE', resource_name: 'nope' })).success);
});

test.serial('subscribe: every committed change of the type, filters, then resume from a revision with no gap and no duplicate', async (t) => {
  const w = new FleetWriter(env.etcd.client(), '/api2');
  const r = await replica('/api2', 'api2');
  const c = client(r);
  const everything = c.subscribe('RESOURCE_TYPE_UNSPECIFIED');
  const scenarios = c.subscribe('RESOURCE_TYPE_SCENARIO');
  const onlyB = c.subscribe('RESOURCE_TYPE_SCENARIO', { name: 'b' });
  const packages = c.subscribe('RESOURCE_TYPE_PACKAGE');
  await new Promise((res) => setTimeout(res, 300));
  const revs: number[] = [];
  revs.push(await putScenario(w.client, w, 'a', 'Idle'));
  revs.push(await putScenario(w.client, w, 'b', 'Idle'));
  revs.push(await putScenario(w.client, w, 'a', 'SCENARIO_STATE_IDLE')); // same state, another spelling: no change
  revs.push(await putScenario(w.client, w, 'a', 'Waiting'));
  await w.client.delete().key(w.keys.stateKey('scenario', 'b')).exec();
  await eventually(async () => assert.strictEqual(scenarios.events.length, 4, JSON.stringify(events(scenarios))));
  t.deepEqual(events(scenarios), [`a:->Idle@${revs[0]}`, `b:->Idle@${revs[1]}`, `a:Idle->Waiting@${revs[3]}`, `b:Idle->@${scenarios.revisions()[3]}`]);
  t.deepEqual(events(onlyB).map((e) => e.replace(/@\d+$/, '')), ['b:->Idle', 'b:Idle->']);
  t.is(packages.events.length, 0);
  t.deepEqual(events(everything), events(scenarios));
  const e0 = scenarios.events[0]!;
  t.like(e0, { event_type: 'EVENT_TYPE_STATE_CHANGE', severity: 'SEVERITY_INFO', state_change: { resource_type: 'RESOURCE_TYPE_SCENARIO' } });
  t.is(new Set(scenarios.events.map((e) => e.event_id)).size, 4);

  // Resume from the second change: the rest again, then live.
  const seen = events(scenarios);
  const resumed = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(revs[1]) });
  await eventually(async () => assert.strictEqual(resumed.events.length, 2, JSON.stringify(events(resumed))));
  const more = await putScenario(w.client, w, 'a', 'Satisfied');
  await eventually(async () => assert.strictEqual(resumed.events.length, 3));
  t.deepEqual(events(resumed), [...seen.slice(2), `a:Waiting->Satisfied@${more}`]);

  // Bad requests are INVALID_ARGUMENT.
  for (const [type, filter] of [
    ['RESOURCE_TYPE_VOLUME', {}],
    ['RESOURCE_TYPE_SCENARIO', { since_revision: 'yesterday' }],
    ['RESOURCE_TYPE_SCENARIO', { colour: 'red' }],
  ] as const) {
    const bad = c.subscribe(type, filter);
    t.is((await bad.end).code, grpc.status.INVALID_ARGUMENT, `${type} ${JSON.stringify(filter)}`);
  }
  for (const s of [everything, scenarios, onlyB, packages, resumed]) s.cancel();
});

test.serial('resume from before the replica restarted: exactly the missed changes, in order; a compacted revision is OUT_OF_RANGE', async (t) => {
  const w = new FleetWriter(env.etcd.client(), '/api3');
  const first = await replica('/api3', 'api3-a');
  const sub = client(first).subscribe('RESOURCE_TYPE_SCENARIO');
  await new Promise((res) => setTimeout(res, 300));
  const states = ['Idle', 'Waiting', 'Satisfied', 'Allowed', 'Completed'];
  for (const s of states) await putScenario(w.client, w, 'r', s);
  await eventually(async () => assert.strictEqual(sub.events.length, 5));
  const lastSeen = sub.revisions().at(-1)!;
  await first.kill('SIGKILL');
  // Changes while nobody serves: the resume must bring every one of them.
  const missed: number[] = [];
  for (let i = 0; i < 30; i++) missed.push(await putScenario(w.client, w, `m${i % 3}`, i % 2 ? 'Waiting' : 'Idle'));
  const second = await replica('/api3', 'api3-b');
  const resumed = client(second).subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(lastSeen) });
  await eventually(async () => assert.strictEqual(resumed.events.length, 30, JSON.stringify(events(resumed))));
  t.deepEqual(resumed.revisions(), missed);
  const live = await putScenario(w.client, w, 'r', 'Idle');
  await eventually(async () => assert.strictEqual(resumed.events.length, 31));
  t.is(resumed.revisions()[30], live);

  // Compact past the subscriber's revision: resuming from it is OUT_OF_RANGE.
  await w.client.kv.compact({ revision: String(live), physical: true });
  const stale = client(second).subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(lastSeen) });
  const status = await stale.end;
  t.is(status.code, grpc.status.OUT_OF_RANGE, status.details);
  t.regex(status.details, /compacted/);
  t.is(await second.metric('statemanager_api_subscriptions_cut_total', 'reason="compacted"'), 1);

  // A revision etcd has not reached (one from another history, e.g. before a restore): refused,
  // not waited for in silence. At etcd's own revision the subscription goes on.
  const now = Number((await w.client.kv.range({ key: Buffer.from('/api3/none'), count_only: true })).header.revision);
  const ahead = client(second).subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(now + 1000) });
  const refused = await ahead.end;
  t.is(refused.code, grpc.status.OUT_OF_RANGE, refused.details);
  t.regex(refused.details, new RegExp(`since_revision ${now + 1000} is past etcd's revision ${now}`));
  // The /metrics page is rendered at most once a second: the count shows on a later one.
  await eventually(async () => assert.strictEqual(await second.metric('statemanager_api_subscriptions_cut_total', 'reason="future"'), 1));
  const atNow = client(second).subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(now) });
  const next = await putScenario(w.client, w, 'r', 'Waiting');
  await eventually(async () => assert.deepStrictEqual(atNow.revisions(), [next]));
  atNow.cancel();
  resumed.cancel();
});

test.serial("a quiet type after a compaction past its last change: a subscription from the revision of that change goes on, from the replica's resume buffer", async (t) => {
  // Found by black-box probing: a list says the revision of the type's last change; after a
  // compaction past it, every resume from there was OUT_OF_RANGE (the replica asked etcd, not its
  // resume buffer), and listing again gave the same revision for as long as the type stayed quiet.
  const w = new FleetWriter(env.etcd.client(), '/api7');
  const r = await replica('/api7', 'api7');
  const c = client(r);
  const follower = c.subscribe('RESOURCE_TYPE_SCENARIO'); // the replica's feed is live, as on a replica with readers
  await new Promise((res) => setTimeout(res, 300));
  const changed = await putScenario(w.client, w, 'q', 'Idle');
  await eventually(async () => assert.strictEqual((await c.getState('RESOURCE_TYPE_SCENARIO', 'q')).resource_state?.current_state, 'Idle'));
  // etcd's revision moves on other keys (in a fleet, containers), then a compaction at it.
  let now = 0;
  for (let i = 0; i < 5; i++) now = Number((await w.client.put(`/api7-elsewhere/${i}`).value('x').exec()).header.revision);
  await w.client.kv.compact({ revision: String(now), physical: true });
  // The revision of the type's last change (as a list says while the kind's check has not run),
  // compacted by etcd, held by the replica's resume buffer.
  const sub = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(changed) });
  await new Promise((res) => setTimeout(res, 300));
  const next = await putScenario(w.client, w, 'q', 'Waiting');
  await eventually(async () => assert.deepStrictEqual(sub.revisions(), [next], JSON.stringify(sub.error?.details)));
  t.deepEqual(follower.revisions(), [changed, next]);
  sub.cancel();
  follower.cancel();
});

test.serial("a quiet type after a compaction past its last change, on a replica with no subscriber: the list says etcd's revision (its cache found equal to etcd), and a subscription from it goes on", async (t) => {
  const w = new FleetWriter(env.etcd.client(), '/api8');
  const changed = await putScenario(w.client, w, 'q', 'Idle');
  const r = await replica('/api8', 'api8');
  const c = client(r);
  await eventually(async () => assert.strictEqual((await c.getState('RESOURCE_TYPE_SCENARIO', 'q')).resource_state?.current_state, 'Idle'));
  let now = 0;
  for (let i = 0; i < 5; i++) now = Number((await w.client.put(`/api8-elsewhere/${i}`).value('x').exec()).header.revision);
  await w.client.kv.compact({ revision: String(now), physical: true });
  let at = 0;
  // A check of a quiet kind runs at most once a second: the next list after it says etcd's revision.
  await eventually(async () => {
    at = Number((await c.list({ resource_type: 'RESOURCE_TYPE_SCENARIO' })).resources[0]!.metadata.revision);
    assert.ok(at >= now, `listed at ${at}; compacted at ${now}; the type's last change at ${changed}`);
  });
  t.true(Number((await c.getState('RESOURCE_TYPE_SCENARIO', 'q')).resource_state!.metadata.revision) >= now);
  const sub = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: String(at) });
  await new Promise((res) => setTimeout(res, 300));
  const next = await putScenario(w.client, w, 'q', 'Waiting');
  await eventually(async () => assert.deepStrictEqual(sub.revisions(), [next], JSON.stringify(sub.error?.details)));
  sub.cancel();
});

test.serial('a subscriber that never reads is cut and, past the grace, its HTTP/2 stream is reset (RESOURCE_EXHAUSTED to gRPC clients): the connection\'s stream slots come back', async (t) => {
  const own = await startEtcd();
  t.teardown(() => own.stop());
  const w = new FleetWriter(own.client(), '/api8');
  // Two streams per connection: two cut streams that kept their slots would block a third.
  const r = await startReplica({ identity: 'api8', etcdEndpoint: own.endpoint, acAddr: env.ac.addr, config: { keyPrefix: '/api8', log: { level: 'warn' }, grpc: { limits: { subscriberBufferEvents: 20, maxConcurrentStreams: 2 } } } });
  replicas.push(r);
  await eventually(async () => assert.strictEqual((await r.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  const session = http2.connect(`http://127.0.0.1:${r.grpcPort}`);
  t.teardown(() => session.close());
  session.on('error', () => {});
  const path = '/statemanager.StateManagerConnection/SubscribeToStateChanges';
  // A raw stream that never reads: its flow-control window fills and nothing more is taken.
  const open = () => {
    const st = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    const seen = { headers: false, status: undefined as string | undefined, rst: undefined as number | undefined, closedAt: 0 };
    st.on('response', () => void (seen.headers = true));
    st.on('trailers', (h) => void (seen.status = String(h['grpc-status'])));
    st.on('close', () => {
      seen.rst = st.rstCode;
      seen.closedAt = Date.now();
    });
    st.on('error', () => {});
    st.end(Buffer.alloc(5)); // an empty request: every kind
    st.pause();
    return seen;
  };
  const stuck = [open(), open()];
  await eventually(async () => assert.strictEqual(await r.metric('statemanager_api_subscriptions'), 2));
  // Large values fill the 64 KiB window fast; a thousand changes pass the 20 a stopped reader may fall behind.
  const long = 'x'.repeat(2000);
  for (let i = 0; i < 1000; i++) await putScenario(w.client, w, `s${i % 50}-${long.slice(0, 200)}`, i % 100 < 50 ? 'Idle' : 'Waiting');
  await eventually(async () => assert.strictEqual(await r.metric('statemanager_api_subscriptions_cut_total', 'reason="slow"'), 2), { timeoutMs: 20_000 });
  // When the server cut them: its own log lines' timestamps (the same clock as this process's).
  // The lines come over a pipe, the metric over HTTP: either may arrive first.
  const cutLines = () => r.output.filter((l) => l.includes('state subscriber cut off'));
  await eventually(() => assert.strictEqual(cutLines().length, 2));
  const cuts = cutLines().map((l) => Date.parse((JSON.parse(l) as { timestamp: string }).timestamp));
  t.true(stuck.every((s) => s.headers), 'each had changes before it stopped reading');
  await eventually(async () => assert.ok(stuck.every((s) => s.rst !== undefined)), { timeoutMs: 15_000 });
  t.deepEqual(stuck.map((s) => s.rst), [http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM]);
  // The first reset came no sooner than the grace after the first cut (a late timer only delays it).
  const afterCut = Math.min(...stuck.map((s) => s.closedAt)) - Math.min(...cuts);
  t.true(afterCut >= UNREAD_STATUS_GRACE_MS - 50, `reset ${afterCut} ms after the cut, grace ${UNREAD_STATUS_GRACE_MS} ms`);
  // Their slots came back: a third stream on the same connection is served.
  const third = open();
  await eventually(async () => assert.strictEqual(await r.metric('statemanager_api_subscriptions'), 1));
  // Its headers come with its first change.
  await putScenario(w.client, w, 'after', 'Idle');
  await eventually(async () => assert.ok(third.headers));
});

test.serial('a Node.js subscriber reading slowly is cut; resuming from the last event it read (resume_since_revision) ends exact', async (t) => {
  // grpc-js raises the cut's error status as soon as it arrives and drops the messages received
  // but not yet read, so the status's since_revision can be past what such a client read
  // (black-box probing: 30 of 1,500 followers that resumed from it ended with wrong states).
  const own = await startEtcd();
  t.teardown(() => own.stop());
  const w = new FleetWriter(own.client(), '/api9');
  const r = await startReplica({ identity: 'api9', etcdEndpoint: own.endpoint, acAddr: env.ac.addr, config: { keyPrefix: '/api9', log: { level: 'warn' }, grpc: { limits: { subscriberBufferEvents: 20 } } } });
  replicas.push(r);
  await eventually(async () => assert.strictEqual((await r.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  const c = client(r);
  const read: DraftEvent[] = [];
  const slow = (async () => {
    const stream = c.raw.SubscribeToStateChanges({ resource_type: 'RESOURCE_TYPE_SCENARIO', filter: {} }, new grpc.Metadata());
    try {
      for await (const ev of stream as AsyncIterable<DraftEvent>) {
        read.push(ev);
        await new Promise((res) => setTimeout(res, 5));
      }
      return undefined;
    } catch (err) {
      return err as grpc.ServiceError;
    }
  })();
  await eventually(async () => assert.strictEqual(await r.metric('statemanager_api_subscriptions'), 1));
  let last = 0;
  for (let i = 0; i < 1500; i++) last = await putScenario(w.client, w, `s${i % 25}`, i % 2 === 0 ? 'Idle' : 'Waiting');
  const cut = await slow;
  t.is(cut?.code, grpc.status.RESOURCE_EXHAUSTED, cut?.details);
  const named = Number(/since_revision=(\d+)/.exec(cut?.details ?? '')?.[1]);
  const lastRead = read.at(-1)!;
  t.log(`cut: ${cut?.details}; naming since_revision=${named}; the last event read was at revision ${lastRead.metadata.revision} (${read.length} read)`);
  const rest = c.subscribe('RESOURCE_TYPE_SCENARIO', { since_revision: lastRead.metadata.resume_since_revision! });
  await eventually(() => assert.ok(rest.revisions().includes(last)), { timeoutMs: 20_000 });
  rest.cancel();
  // Every change applied once, in order (a resume repeats its revision's earlier changes: same event_id).
  const seen = new Set<string>();
  const states = new Map<string, string>();
  for (const e of [...read, ...rest.events]) {
    if (seen.has(e.event_id)) continue;
    seen.add(e.event_id);
    states.set(e.state_change!.resource_name, e.state_change!.target_state);
  }
  const stored = new Map<string, string>();
  for (const [k, v] of Object.entries(await w.client.getAll().prefix(w.keys.statePrefix('scenario')).strings())) {
    const name = w.keys.parseStateKey('scenario', k);
    if (name !== undefined) stored.set(name, v);
  }
  t.deepEqual(new Map([...states].sort()), new Map([...stored].sort()));
});

test.serial('a follower answers reads and subscriptions from its own caches', async (t) => {
  const w = new FleetWriter(env.etcd.client(), '/api4');
  await w.packageDef('p', ['m']);
  await w.container('n1', 'c1', 'm', 'running');
  const config = { leaderElection: { enabled: true, leaseDuration: '4s' } };
  const [a, b] = [await replica('/api4', 'api4-a', config), await replica('/api4', 'api4-b', config)];
  await eventually(async () => assert.strictEqual(await w.state('package', 'p'), 'Running'));
  const leaderId = await w.client.get(w.keys.leader).string();
  const follower = leaderId === a.identity ? b : a;
  t.is(await follower.metric('leader_election_master_status', 'name="statemanager"'), 0);
  const c = client(follower);
  const sub = c.subscribe('RESOURCE_TYPE_PACKAGE', { name: 'p' });
  await eventually(async () => assert.strictEqual((await c.getState('RESOURCE_TYPE_PACKAGE', 'p')).resource_state?.current_state, 'Running'));
  await w.container('n1', 'c1', 'm', 'dead');
  await eventually(async () => assert.strictEqual((await c.getState('RESOURCE_TYPE_PACKAGE', 'p')).resource_state?.current_state, 'Error'));
  await eventually(async () => assert.deepStrictEqual(events(sub).map((e) => e.replace(/@\d+$/, '')), ['p:Running->Error']));
  t.is(sub.events[0]!.severity, 'SEVERITY_ERROR');
  sub.cancel();
});

test.serial('200 subscribers cost no etcd watch of their own; a slow subscriber is cut off with RESOURCE_EXHAUSTED and slows nobody', async (t) => {
  // An etcd of its own: the other tests' replicas re-watch the shared one at their own pace.
  const own = await startEtcd();
  t.teardown(() => own.stop());
  const w = new FleetWriter(own.client(), '/api5');
  const r = await startReplica({ identity: 'api5', etcdEndpoint: own.endpoint, acAddr: env.ac.addr, config: { keyPrefix: '/api5', grpc: { limits: { subscriberBufferEvents: 200, maxConcurrentStreams: 250, subscriptionsPerIdentity: 250 } } } });
  replicas.push(r);
  await eventually(async () => assert.strictEqual((await r.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  const c = client(r);
  // 200 streams on one connection, from one caller: above the defaults (100 streams per
  // connection, 100 subscriptions per identity), raised above for this test.
  // Nobody subscribed: the shared watch is not even open. The first subscriber opens it.
  const idle = await settledWatchers(own);
  const first = c.subscribe('RESOURCE_TYPE_SCENARIO');
  await eventually(async () => assert.strictEqual(await etcdWatchers(own), idle + 1));
  const subs = [first, ...Array.from({ length: 199 }, () => c.subscribe('RESOURCE_TYPE_SCENARIO'))];
  await eventually(async () => assert.strictEqual(await r.metric('statemanager_api_subscriptions'), 200));
  t.is(await etcdWatchers(own), idle + 1, 'one etcd watch for 200 subscribers');
  const rev = await putScenario(w.client, w, 'x', 'Idle');
  await eventually(async () => assert.ok(subs.every((s) => s.revisions()[0] === rev), 'every subscriber got the change'));
  for (const s of subs) s.cancel();
  await eventually(async () => assert.strictEqual(await r.metric('statemanager_api_subscriptions'), 0));

  // One subscriber stops reading; another keeps up.
  const slow = c.subscribe('RESOURCE_TYPE_SCENARIO');
  const fast = client(r).subscribe('RESOURCE_TYPE_SCENARIO');
  slow.stream.pause();
  await new Promise((res) => setTimeout(res, 300));
  const n = 1500;
  for (let i = 0; i < n; i++) await putScenario(w.client, w, 'flip', i % 2 ? 'Waiting' : 'Idle');
  await eventually(async () => assert.strictEqual(fast.events.length, n), { timeoutMs: 20_000 });
  await eventually(async () => assert.strictEqual(await r.metric('statemanager_api_subscriptions_cut_total', 'reason="slow"'), 1));
  slow.stream.resume();
  const status = await slow.end;
  t.is(status.code, grpc.status.RESOURCE_EXHAUSTED, status.details);
  t.regex(status.details, /since_revision=\d+/);
  t.true(slow.events.length < n);
  fast.cancel();
});

test.serial('a replica starting on 100,000 scenario states answers each read either UNAVAILABLE ("this replica is starting") or right, never "not found" or a short list', async (t) => {
  // Found by black-box probing at fleet scale: before its informers had loaded, a starting replica
  // answered "not found" for existing resources and lists of 5,000 of 50,000 with success.
  const own = await startEtcd();
  t.teardown(() => own.stop());
  const etcd = own.client();
  const N = 100_000;
  for (let i = 0; i < N; i += 100) {
    await etcd.kv.txn({ compare: [], failure: [], success: Array.from({ length: 100 }, (_, j) => ({ request_put: { key: Buffer.from(`/api9/scenario/s${i + j}/state`), value: Buffer.from('Idle') } })) });
  }
  const grpcPort = await freePort();
  const starting = startReplica({ identity: 'api9', etcdEndpoint: own.endpoint, acAddr: env.ac.addr, grpcPort, config: { keyPrefix: '/api9', log: { level: 'warn' } } });
  const seen = new Map<string, number>();
  const count = (what: string) => seen.set(what, (seen.get(what) ?? 0) + 1);
  for (let done = false, until = Date.now() + 60_000; !done && Date.now() < until; ) {
    // A channel of its own each time: one that was refused waits out grpc-js's reconnect backoff.
    const c = new DraftClient(`127.0.0.1:${grpcPort}`);
    const [one, all] = await Promise.all([
      c.getState('RESOURCE_TYPE_SCENARIO', `s${N - 1}`, 2000).then((a) => (a.success ? `state ${a.resource_state?.current_state}` : `refused ${a.message}`), (e: grpc.ServiceError) => grpc.status[e.code] ?? String(e.code)),
      c.list({ resource_type: 'RESOURCE_TYPE_SCENARIO', limit: 1 }).then((a) => (a.success ? `total ${a.total_count}` : `refused ${a.message}`), (e: grpc.ServiceError) => grpc.status[e.code] ?? String(e.code)),
    ]);
    c.close();
    count(one);
    count(all);
    done = one === 'state Idle' && all === `total ${N}`;
    await new Promise((r) => setTimeout(r, 5));
  }
  replicas.push(await starting);
  t.log([...seen].map(([k, n]) => `${n}× ${k}`).join('; '));
  t.deepEqual([...seen.keys()].filter((k) => k !== 'UNAVAILABLE' && k !== 'state Idle' && k !== `total ${N}`), [], 'nothing but "starting" or the right answer');
  t.true(seen.has('state Idle') && seen.has(`total ${N}`), 'answered once loaded');
});
