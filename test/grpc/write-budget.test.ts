// Write budgets over real gRPC and a real etcd: the node flood of issue 18 (one node identity
// sending ~900 KiB lists, each different, as fast as it can), the byte budget's boundaries, and
// calls in flight held until the handler answers. Figures are printed, not asserted as speeds.
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import type { ContainerInfo } from '../../src/generated/monitoringserver/ContainerInfo.js';
import type { StateManagerConnectionClient } from '../../src/generated/statemanager/StateManagerConnection.js';
import { containerJson } from '../../src/grpc/container-record.js';
import type { KeyLayout } from '../../domain/keys.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { bearer, grpcError, sendContainerList, snapshot, startTestServer, stopAll, type TestServer } from './_support.js';

let etcd: EtcdServer;
let client: Etcd3;

test.before(async () => {
  etcd = await startEtcd();
  client = etcd.client();
});

test.after.always(async () => {
  await stopAll();
  await etcd?.stop();
});

const token = (name: string) => `${name}-token-0123456789abcdef0123456789`;
const NODE_RULES = [{ identities: ['token:node-*'], allow: [{ method: 'SendChangedContainerList' as const, nodeName: '${match}' }] }];
const ANY_NODE_RULES = [{ identities: ['token:*'], allow: [{ method: 'SendChangedContainerList' as const }] }];

/** What a container costs the budget: its key and its stored JSON. */
function cost(keys: KeyLayout, node: string, c: { id: string; annotation?: Record<string, string> }): number {
  const json = containerJson({ id: c.id, names: [], image: '', state: {}, config: {}, annotation: c.annotation ?? {} });
  return Buffer.byteLength(keys.containerKey(node, c.id)) + Buffer.byteLength(json);
}

/** One container of exactly `bytes` cost on `node` (padding its annotation). */
function containerOfCost(keys: KeyLayout, node: string, id: string, bytes: number): ContainerInfo {
  const base = cost(keys, node, { id, annotation: { pad: '' } });
  if (bytes < base) throw new Error(`a container costs at least ${base} bytes`);
  return { id, annotation: { pad: 'x'.repeat(bytes - base) } };
}

/** etcd's database size, from a client of its own (a flooded client's circuit breaker may be open). */
async function dbSize(server: EtcdServer): Promise<{ dbSize: number; inUse: number }> {
  const c = new Etcd3({ hosts: server.endpoint });
  try {
    const s = await c.maintenance.status();
    return { dbSize: Number(s.dbSize), inUse: Number(s.dbSizeInUse ?? s.dbSize) };
  } finally {
    c.close();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const MiB = 1024 * 1024;

/** Node nb's small changed list every 100 ms, for `ms`: its latencies and failures. */
async function otherNode(s: TestServer, ms: number) {
  const c = s.client();
  const latencies: number[] = [];
  let failures = 0;
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end; i++) {
    const started = performance.now();
    try {
      await sendContainerList(c, { node_name: 'nb', containers: [{ id: 'b1', image: 'img', state: { Status: i % 2 ? 'running' : 'paused' } }, { id: 'b2', image: 'img' }] }, bearer(token('node-nb')));
      latencies.push(performance.now() - started);
    } catch {
      failures++;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  latencies.sort((a, b) => a - b);
  return { calls: latencies.length, failures, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** The hostile agent (test/grpc/_flood-agent.ts) in a process of its own; resolves with its answers by status. */
function floodAgent(s: TestServer, ms: number, concurrency: number): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const script = fileURLToPath(new URL('./_flood-agent.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import=tsx', script, s.target, token('node-na'), 'na', String(ms), String(concurrency)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>) : reject(new Error(`flood agent exited ${code}`))));
  });
}

/**
 * The attack of issue 18 for `ms` from another process, while node nb sends its small list every
 * 100 ms; before it, nb alone for 3 s (its usual latency).
 */
async function flood(s: TestServer, db: EtcdServer, ms: number, attackers: number) {
  const quiet = await otherNode(s, 3000);
  const before = await dbSize(db);
  const [codes, busy] = await Promise.all([floodAgent(s, ms, attackers), otherNode(s, ms)]);
  const after = await dbSize(db);
  return { growthMiB: (after.dbSize - before.dbSize) / MiB, inUseGrowthMiB: (after.inUse - before.inUse) / MiB, codes, quiet, busy };
}

const describe = (label: string, r: Awaited<ReturnType<typeof flood>>) =>
  `node flood, 10 s, ${label}: etcd dbSize +${r.growthMiB.toFixed(1)} MiB (in use +${r.inUseGrowthMiB.toFixed(1)} MiB); attacker answers ${JSON.stringify(r.codes)}; ` +
  `node nb alone p50 ${r.quiet.p50.toFixed(1)} ms p99 ${r.quiet.p99.toFixed(1)} ms, during the flood ${r.busy.calls} calls p50 ${r.busy.p50.toFixed(1)} ms p99 ${r.busy.p99.toFixed(1)} ms, ${r.busy.failures} failed`;

test('the node flood of issue 18: etcd grows by a bounded amount over 10 s; another node is served meanwhile', async (t) => {
  // An etcd of its own, so its database size is this test's alone.
  const own = await startEtcd();
  t.teardown(() => own.stop());
  const auth = { tokens: [{ token: token('node-na'), identity: 'node-na' }, { token: token('node-nb'), identity: 'node-nb' }], rules: NODE_RULES };
  const etcdClient = own.client();
  const s = await startTestServer(etcdClient, { auth });
  // 32 callers at once by default; SM_FLOOD_CONCURRENCY=1 sends one list after another, as in the issue.
  const attackers = Number(process.env.SM_FLOOD_CONCURRENCY ?? 32);
  const r = await flood(s, own, 10_000, attackers);
  const line = describe(`${attackers} at once, defaults (64 KiB/s, burst 2 MiB, 16 in flight)`, r);
  t.log(line);
  console.log(line);
  // Burst + 10 s at the rate is 2.6 MiB of keys and values; etcd's pages and index add to it.
  t.true(r.growthMiB < 16, `etcd grew ${r.growthMiB} MiB`);
  t.true((r.codes.RESOURCE_EXHAUSTED ?? 0) > 0);
  t.is(r.busy.failures, 0);

  if (process.env.SM_FLOOD_BASELINE === '1') {
    // For comparison, by hand: the same flood with the budgets off (the behaviour before).
    const base = await startEtcd();
    t.teardown(() => base.stop());
    const open = await startTestServer(base.client(), { limits: { writeBytesPerSecond: 0, callsInFlightPerIdentity: 0, maxConcurrentStreams: 1000 }, auth });
    const baseline = describe(`${attackers} at once, budgets off`, await flood(open, base, 10_000, attackers));
    t.log(baseline);
    console.log(baseline);
  }
});

test('byte budget: below and at it a change is written; just past it RESOURCE_EXHAUSTED, nothing written; a max-size list fits the default burst', async (t) => {
  const burst = 20_000;
  const s = await startTestServer(client, {
    limits: { writeBytesPerSecond: 1, writeBurstBytes: burst, listBytes: burst },
    auth: { tokens: [{ token: token('a'), identity: 'a' }, { token: token('b'), identity: 'b' }], rules: ANY_NODE_RULES },
  });
  const c = s.client();
  const send = (who: string, node: string, containers: ContainerInfo[]) => sendContainerList(c, { node_name: node, containers }, bearer(token(who)));
  // Below: 12,000 of 20,000.
  t.is(await send('a', 'n1', [containerOfCost(s.keys, 'n1', 'x', 12_000)]), 'node n1: 1 put, 0 deleted, 0 unchanged');
  // Just past what is left (8,000 + 1): refused whole, nothing written.
  const before = await snapshot(client, s.keys.prefix);
  const err = await grpcError(send('a', 'n2', [containerOfCost(s.keys, 'n2', 'x', 4_000), containerOfCost(s.keys, 'n2', 'y', 4_001)]));
  t.is(err.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(err.details, /^node n2: token:a: the change writes 8001 bytes, more than the caller's write budget has left \(grpc.limits.writeBytesPerSecond\); nothing was written; retry in \d+ s$/);
  t.deepEqual((await snapshot(client, s.keys.prefix)).kvs, before.kvs);
  t.true(s.logger.lines.some((l) => l.message === 'gRPC call over its write budget' && l.meta.identity === 'token:a' && l.meta.bytes === 8001));
  // Exactly what is left: written.
  t.is(await send('a', 'n2', [containerOfCost(s.keys, 'n2', 'x', 4_000), containerOfCost(s.keys, 'n2', 'y', 4_000)]), 'node n2: 2 put, 0 deleted, 0 unchanged');
  // Empty now; unchanged lists cost nothing and still answer.
  t.is(await send('a', 'n2', [containerOfCost(s.keys, 'n2', 'x', 4_000), containerOfCost(s.keys, 'n2', 'y', 4_000)]), 'node n2: 0 put, 0 deleted, 2 unchanged');
  t.is((await grpcError(send('a', 'n3', [{ id: 'z' }]))).code, grpc.status.RESOURCE_EXHAUSTED);
  // Another identity has its own budget: all of it at once.
  t.is(await send('b', 'n4', [containerOfCost(s.keys, 'n4', 'x', 10_000), containerOfCost(s.keys, 'n4', 'y', 10_000)]), 'node n4: 2 put, 0 deleted, 0 unchanged');

  // With the defaults a node may send a whole list of the largest size (1 MiB) now and then.
  const d = await startTestServer(client, { auth: { tokens: [{ token: token('a'), identity: 'a' }], rules: ANY_NODE_RULES } });
  const big = Array.from({ length: 100 }, (_, i) => ({ id: `c${i}`, annotation: { blob: `${i}`.padEnd(10_200, 'x') } }));
  const dc = d.client();
  t.is(await sendContainerList(dc, { node_name: 'big', containers: big }, bearer(token('a'))), 'node big: 100 put, 0 deleted, 0 unchanged');
  const changed = big.map((c) => ({ ...c, annotation: { blob: c.annotation.blob.replace(/x$/, 'y') } }));
  t.is(await sendContainerList(dc, { node_name: 'big', containers: changed }, bearer(token('a'))), 'node big: 100 put, 0 deleted, 0 unchanged');
  t.is((await grpcError(sendContainerList(dc, { node_name: 'big', containers: big }, bearer(token('a'))))).code, grpc.status.RESOURCE_EXHAUSTED);
});

test('byte budget: deletions are charged their keys; a SendStateChange its state and history entry', async (t) => {
  const s = await startTestServer(client, {
    limits: { writeBytesPerSecond: 1, writeBurstBytes: 2_000, listBytes: 2_000 },
    auth: {
      tokens: [{ token: token('a'), identity: 'a' }, { token: token('pm'), identity: 'pm' }],
      rules: [...ANY_NODE_RULES, { identities: ['token:pm'], allow: [{ method: 'SendStateChange' }] }],
    },
  });
  const c = s.client();
  t.is(await sendContainerList(c, { node_name: 'n1', containers: [containerOfCost(s.keys, 'n1', 'x', 900)] }, bearer(token('a'))), 'node n1: 1 put, 0 deleted, 0 unchanged');
  t.is(await sendContainerList(c, { node_name: 'n1', containers: [containerOfCost(s.keys, 'n1', 'y', 900)] }, bearer(token('a'))), 'node n1: 1 put, 1 deleted, 0 unchanged');
  // 2,000 - 900 - (900 + the deleted key's bytes): under 200 left.
  const y = containerOfCost(s.keys, 'n1', 'y', 900);
  t.is((await grpcError(sendContainerList(c, { node_name: 'n1', containers: [y, containerOfCost(s.keys, 'n1', 'z', 200)] }, bearer(token('a'))))).code, grpc.status.RESOURCE_EXHAUSTED);
  // Deleting y costs only its key.
  t.is(await sendContainerList(c, { node_name: 'n1', containers: [] }, bearer(token('a'))), 'node n1: 0 put, 1 deleted, 0 unchanged');
  // State changes: a few hundred bytes each; the budget runs out after some, nothing written then.
  const answers: string[] = [];
  for (let i = 0; i < 10; i++) {
    const res = await new Promise<{ error_code: string; error_details: string }>((resolve, reject) =>
      c.SendStateChange({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: `s${i}`, target_state: 'Idle' }, bearer(token('pm')), (err, r) => (err ? reject(err) : resolve(r!))),
    );
    answers.push(res.error_code);
    if (res.error_code !== 'ERROR_CODE_SUCCESS') t.regex(res.error_details, /token:pm is over its write budget/);
  }
  const ok = answers.filter((a) => a === 'ERROR_CODE_SUCCESS').length;
  t.true(ok >= 2 && ok < 10, answers.join());
  t.is(answers[ok], 'ERROR_CODE_RESOURCE_UNAVAILABLE');
  t.is(await client.get(s.keys.stateKey('scenario', `s${ok}`)).string(), null);
});

test('byte budget: a list etcd never received (etcd down) is not charged; the budget is whole when etcd is back', async (t) => {
  // Found by black-box probing: with etcd refusing connections for 150 s a node agent resending
  // its changed list was refused for its write budget after 70 s, though nothing had been written.
  const own = await startEtcd();
  t.teardown(() => own.stop());
  const burst = 20_000;
  const etcdClient = own.client();
  const s = await startTestServer(etcdClient, {
    limits: { writeBytesPerSecond: 1, writeBurstBytes: burst, listBytes: burst },
    auth: { tokens: [{ token: token('a'), identity: 'a' }], rules: ANY_NODE_RULES },
  });
  const c = s.client();
  const send = (containers: ContainerInfo[]) => sendContainerList(c, { node_name: 'n1', containers }, bearer(token('a')));
  t.is(await send([containerOfCost(s.keys, 'n1', 'x', 12_000)]), 'node n1: 1 put, 0 deleted, 0 unchanged');
  await own.kill();
  // Until the client has seen its connection go: a call sent on it before then fails after it
  // left (a dropped connection), whose outcome is unknown, and keeps its charge.
  await eventually(async () => {
    const err = await etcdClient.get('probe').then(() => undefined, (e: Error) => e);
    assert.match(err?.message ?? '', /No connection established/);
  });
  // Each 6,000 bytes against the 8,000 left: charged and kept, the second would be over it.
  for (let i = 0; i < 3; i++) {
    const err = await grpcError(send([containerOfCost(s.keys, 'n1', 'x', 12_000), containerOfCost(s.keys, 'n1', `down${i}`, 6_000)]));
    t.is(err.code, grpc.status.UNAVAILABLE, err.details);
  }
  await own.restart();
  // Exactly what was left before the outage: written; and then the budget is spent.
  const y = containerOfCost(s.keys, 'n1', 'y', 8_000);
  await eventuallyAnswered(t, () => send([containerOfCost(s.keys, 'n1', 'x', 12_000), y]), 'node n1: 1 put, 0 deleted, 1 unchanged');
  t.is((await grpcError(send([y, containerOfCost(s.keys, 'n1', 'z', 200)]))).code, grpc.status.RESOURCE_EXHAUSTED);
});

/** Sends until the answer is not UNAVAILABLE (a client reconnecting to an etcd just restarted), then expects `answer`. */
async function eventuallyAnswered(t: ExecutionContext, send: () => Promise<string>, answer: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      t.is(await send(), answer);
      return;
    } catch (err) {
      if ((err as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A TCP port that accepts connections and never answers: every etcd call waits for its deadline. */
async function blackHole(): Promise<{ endpoint: string; close(): void }> {
  const sockets = new Set<Socket>();
  const srv = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close() {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

test('calls in flight: below and at the limit calls are taken, past it RESOURCE_EXHAUSTED; a cancelled call holds its slot until its handler answers', async (t) => {
  const hole = await blackHole();
  const stuck = new Etcd3({ hosts: hole.endpoint });
  t.teardown(() => {
    stuck.close();
    hole.close();
  });
  const s = await startTestServer(
    stuck,
    {
      limits: { callsInFlightPerIdentity: 2 },
      auth: { tokens: [{ token: token('a'), identity: 'a' }, { token: token('b'), identity: 'b' }], rules: ANY_NODE_RULES },
    },
    { requestTimeoutMs: 1500 },
  );
  const c: StateManagerConnectionClient = s.client();
  const list = { node_name: 'n1', containers: [{ id: 'c1' }] };
  // Below and at the limit: both taken (they wait for etcd).
  const cancelled = c.SendChangedContainerList(list, bearer(token('a')), () => undefined);
  const second = grpcError(sendContainerList(c, list, bearer(token('a'))));
  await new Promise((r) => setTimeout(r, 200));
  // Past it: refused at once, before decoding.
  const past = await grpcError(sendContainerList(c, list, bearer(token('a'))));
  t.is(past.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(past.details, /token:a has too many calls in flight \(grpc.limits.callsInFlightPerIdentity\)/);
  // Another identity has its own slots.
  const other = grpcError(sendContainerList(c, list, bearer(token('b'))));
  // Cancelling does not stop the etcd call behind it: the slot stays taken.
  cancelled.cancel();
  await new Promise((r) => setTimeout(r, 100));
  t.is((await grpcError(sendContainerList(c, list, bearer(token('a'))))).code, grpc.status.RESOURCE_EXHAUSTED);
  // Once the handlers answered (etcd's deadline), the slots are free again.
  t.not((await second).code, grpc.status.RESOURCE_EXHAUSTED);
  t.not((await other).code, grpc.status.RESOURCE_EXHAUSTED);
  await new Promise((r) => setTimeout(r, 300));
  const again = await grpcError(sendContainerList(c, list, bearer(token('a'))));
  t.not(again.code, grpc.status.RESOURCE_EXHAUSTED, again.details);
});
