// Issue 18's subscription flood against a real statemanager process and a real etcd: 1,000
// subscriptions resuming from revisions older than the replica's buffer, opened at once by one
// caller over 12 connections. etcd's own watcher count stays within the shared watch plus
// grpc.limits.replayWatches, every subscription gets exactly its backlog, and GetResourceState
// on the same replica keeps answering (its latency is printed, not asserted).
import { spawn } from 'node:child_process';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { StateChangeEvent__Output } from '../../src/generated/statemanager/StateChangeEvent.js';
import type { StateManagerConnectionClient } from '../../src/generated/statemanager/StateManagerConnection.js';
import { proto } from '../grpc/_support.js';
import { DraftClient } from '../helpers/draft-client.js';
import { sharedEnv } from '../helpers/shared-env.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { startReplica, type Replica } from '../helpers/replica.js';

const replicas: Replica[] = [];
const env = sharedEnv(test, async () => Promise.all(replicas.map((r) => r.kill('SIGKILL'))));

async function etcdWatchers(): Promise<number> {
  const body = await (await fetch(`${env.etcd.endpoint}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith('etcd_debugging_mvcc_watcher_total '));
  return Number(line?.split(' ')[1]);
}

/** GetResourceState latencies from a process of its own, until stop(). */
function readProbe(target: string): { stop(): Promise<[number, number][]> } {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./_read-probe.ts', import.meta.url).pathname, target, 'RESOURCE_TYPE_PACKAGE', 'p'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((res) => child.on('exit', res));
  return {
    async stop() {
      child.stdin.write('stop\n');
      await exited;
      return JSON.parse(out) as [number, number][];
    },
  };
}

const stats = (what: string, xs: number[]): string =>
  `${what}: ${xs.length} calls, p50 ${percentile(xs, 50).toFixed(1)} ms, p99 ${percentile(xs, 99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? NaN;

test('1,000 replaying subscriptions from one caller: etcd watches stay bounded, every backlog arrives, reads keep answering', async (t) => {
  const w = new FleetWriter(env.etcd.client(), '/flood');
  await w.packageDef('p', ['m']);
  await w.container('n1', 'c1', 'm', 'running');
  // 100 changes before the replica starts: older than its buffer, so every resume replays from etcd.
  const old: number[] = [];
  for (let i = 0; i < 100; i++) old.push(Number((await w.client.put(w.keys.stateKey('scenario', `old${i}`)).value('Idle').exec()).header.revision));
  const replayWatches = 4;
  const r = await startReplica({
    identity: 'flood',
    etcdEndpoint: env.etcd.endpoint,
    acAddr: env.ac.addr,
    config: { keyPrefix: '/flood', log: { level: 'info' }, grpc: { limits: { subscriptionsTotal: 1001, replayWatches } } },
  });
  replicas.push(r);
  await eventually(async () => assert.strictEqual((await r.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  const reader = new DraftClient(`127.0.0.1:${r.grpcPort}`);
  await eventually(async () => assert.strictEqual((await reader.getState('RESOURCE_TYPE_PACKAGE', 'p')).resource_state?.current_state, 'Running'));
  const idle = await etcdWatchers();

  // One live subscriber opens the shared watch; a change after it puts something in the buffer.
  const live = reader.subscribe('RESOURCE_TYPE_SCENARIO');
  const warm: number[] = [];
  await eventually(
    async () => {
      warm.push(Number((await w.client.put(w.keys.stateKey('scenario', 'warm')).value(warm.length % 2 ? 'Waiting' : 'Idle').exec()).header.revision));
      await new Promise((res) => setTimeout(res, 200));
      assert.ok(live.events.length > 0);
    },
    { timeoutMs: 20_000 },
  );
  const quiet = await etcdWatchers();

  // The flood: 1,000 resumes from 100 distinct old revisions, over 12 connections.
  const connections: StateManagerConnectionClient[] = Array.from(
    { length: 12 },
    () => new proto.statemanager.StateManagerConnection(`127.0.0.1:${r.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
  );
  const started = Date.now();
  const subs = Array.from({ length: 1000 }, (_, i) => {
    const since = old[i % 100]! - 1;
    const stream = connections[i % connections.length]!.SubscribeToStateChanges({ resource_type: 'RESOURCE_TYPE_SCENARIO', filter: { since_revision: String(since) } });
    const got: number[] = [];
    const sub = { since, got, status: undefined as grpc.StatusObject | undefined, stream };
    stream.on('data', (e: StateChangeEvent__Output) => got.push(Number(e.metadata.revision)));
    stream.on('status', (s: grpc.StatusObject) => (sub.status = s));
    stream.on('error', () => undefined);
    return sub;
  });
  const expectedOf = (since: number) => [...old.filter((x) => x > since), ...warm];
  const done = () => subs.every((s) => s.got.length >= expectedOf(s.since).length);

  const probe = readProbe(`127.0.0.1:${r.grpcPort}`);
  let maxWatchers = quiet;
  let maxHeld = 0;
  while (!done() && Date.now() - started < 180_000) {
    maxWatchers = Math.max(maxWatchers, await etcdWatchers());
    maxHeld = Math.max(maxHeld, (await r.metric('statemanager_api_etcd_watches')) ?? 0);
    await new Promise((res) => setTimeout(res, 20));
  }
  const tookMs = Date.now() - started;
  const latencies = await probe.stop();
  const delivered = subs.reduce((n, s) => n + s.got.length, 0);
  const complete = subs.filter((s) => s.got.length >= expectedOf(s.since).length).length;
  const line = [
    `1,000 replaying subscriptions (12 connections, one caller): ${complete} got their whole backlog, ${delivered} events, in ${tookMs} ms`,
    `etcd watches held by the replica for the read API: at most ${maxHeld} (bound 1 + replayWatches ${replayWatches})`,
    `etcd's watcher count: ${idle} before, ${quiet} with the shared watch, at most ${maxWatchers} during the flood (etcd drops a cancelled watch a little after the replica closed it)`,
    stats('GetResourceState on the same replica, from another process, while the flood was served', latencies.map(([, ms]) => ms)),
    stats('  of which the first 10 s', latencies.filter(([at]) => at < 10_000).map(([, ms]) => ms)),
  ];
  for (const l of line) {
    t.log(l);
    console.log(l);
  }
  const ended = subs.filter((s) => s.status !== undefined);
  t.deepEqual(ended.map((s) => s.status?.details), [], 'no subscription ended');
  for (const s of subs) t.deepEqual(s.got, expectedOf(s.since), `since ${s.since}`);
  t.true(maxHeld >= 2 && maxHeld <= 1 + replayWatches, `the replica held ${maxHeld} etcd watches`);
  // etcd's own count: within the bound but for cancels it has not processed yet, far below one per subscription.
  t.true(maxWatchers - quiet <= 2 * replayWatches, `etcd watchers ${maxWatchers}`);
  await eventually(async () => assert.strictEqual(await etcdWatchers(), quiet), { timeoutMs: 10_000 });
  t.is(await r.metric('statemanager_api_subscriptions'), 1001);

  // At the replica's bound (1,001 with the live one): one more is refused, not queued. (Anonymous
  // callers on loopback have budgets per connection: 84 on each of the 12, under the default 100.)
  const past = reader.subscribe('RESOURCE_TYPE_SCENARIO');
  t.is((await past.end).code, grpc.status.RESOURCE_EXHAUSTED);
  for (const s of subs) s.stream.cancel();
  live.cancel();
  for (const c of connections) c.close();
  reader.close();
});
