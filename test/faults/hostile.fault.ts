// Hostile input against a running statemanager: generated etcd values under every watched
// prefix (random bytes, truncated and deeply nested JSON, values near etcd's request limit,
// unicode and control characters in names, containers of unknown models, YAML of the wrong
// shape), and random and oversize gRPC messages. The process stays up, the well-formed fleet
// stays right, bad keys are counted, memory stays bounded, refused calls write nothing.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { Etcd3 } from 'etcd3';
import fc from 'fast-check';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { loadStateManagerProto } from '../../src/grpc/proto.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { FaultFleet, alive, faultConfig, waitConverged } from './_harness.js';

let etcd: EtcdServer | undefined;
let ac: FakeActionController | undefined;
const replicas: Replica[] = [];

test.afterEach.always(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.kill('SIGKILL')));
  await ac?.stop();
  await etcd?.stop();
  etcd = ac = undefined;
});

async function world(): Promise<{ etcd: EtcdServer; sm: Replica; fleet: FaultFleet }> {
  etcd = await startEtcd();
  ac = await startActionController();
  const fleet = new FaultFleet({ nodes: 4, packages: 60, modelsPerPackage: 2, containersPerModel: 2 });
  await fleet.seed(etcd.client());
  const sm = await startReplica({ identity: 'hostile', etcdEndpoint: etcd.endpoint, acAddr: ac.addr, config: faultConfig() });
  replicas.push(sm);
  return { etcd, sm, fleet };
}

async function invalidInputTotal(r: Replica): Promise<number> {
  const { body } = await r.get('/metrics');
  return body
    .split('\n')
    .filter((l) => l.startsWith('statemanager_invalid_input_total{'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function rssBytes(r: Replica): Promise<number> {
  const { body } = await r.get('/metrics');
  const line = body.split('\n').find((l) => l.startsWith('process_resident_memory_bytes '));
  return Number(line?.split(' ')[1] ?? NaN);
}

/** A value that is not a valid ContainerInfo / definition / state, by construction. */
const badValue = fc.oneof(
  // random bytes (decoded as UTF-8 by etcd's consumers; invalid sequences included)
  fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((b) => Buffer.from([0xff, ...b])),
  // truncated JSON of a real container
  fc.integer({ min: 1, max: 150 }).map((n) => Buffer.from(FaultFleet.containerValue({ node: 'x', id: 'x', model: 'p0-m0' }, 'running').slice(0, n))),
  // deeply nested JSON arrays and objects
  fc.integer({ min: 1_000, max: 200_000 }).map((d) => Buffer.from('['.repeat(d) + ']'.repeat(d))),
  fc.integer({ min: 1_000, max: 50_000 }).map((d) => Buffer.from('{"a":'.repeat(d) + '1' + '}'.repeat(d))),
  // JSON and YAML of the wrong shape
  fc.constantFrom('null', '[]', '42', '"str"', '{"state":7}', 'spec: [1, 2]', 'spec:\n  models: {a: 1}', '- a\n- b', 'a: &x [*x]', '{{{').map((s) => Buffer.from(s)),
);

/** Names with unicode, control characters and bidi overrides (no '/', which would change the key's shape). */
const hostileName = fc
  .string({ unit: fc.oneof(fc.constantFrom('\u0000', '\u0007', '\u001b', '\u007f', '\u0085', '\u202e', '\u2066', 'é', '漢', '😀', ' ', '\n'), fc.string({ minLength: 1, maxLength: 1, unit: 'binary' })), minLength: 1, maxLength: 24 })
  .map((s) => s.replace(/\//g, '_'));

test.serial('hostile etcd values: alive, the well-formed fleet right, each bad key counted, memory bounded', async (t) => {
  const { etcd, sm } = await world();
  // The huge values need more than grpc-js's default 4 MiB per response to read back.
  const c = new Etcd3({ hosts: etcd.endpoint, grpcOptions: { 'grpc.max_receive_message_length': 64 * 2 ** 20 } });
  t.teardown(() => c.close());
  t.true((await waitConverged(c, 30_000)).check.ok, 'converged before the hostile input');
  const countedBefore = await invalidInputTotal(sm);
  const rssBefore = await rssBytes(sm);

  const bad: [string, Buffer][] = [];
  const add = (key: string, value: Buffer): void => void bad.push([key, value]);
  const gen = <T>(arb: fc.Arbitrary<T>, n: number, seed: number): T[] => fc.sample(arb, { numRuns: n, seed });
  const names = gen(hostileName, 60, 1);
  const values = gen(badValue, 60, 2);
  for (let i = 0; i < 60; i++) {
    const name = `${names[i]}-${i}`;
    const value = values[i]!;
    // Each bad value under each watched prefix: containers, definitions, node status, states.
    add(`/container/node-${i % 4}/bad-${name}`, value);
    add(`Package/bad-${name}`, value);
    add(`Scenario/bad-${name}`, value);
    add(`/model/p${i}-m0/state`, value);
  }
  // Values near etcd's default request limit (1.5 MiB): padding inside otherwise bad documents.
  for (let i = 0; i < 3; i++) add(`/container/node-0/huge-${i}`, Buffer.from(`{"id":"huge","pad":"${'x'.repeat(1_400_000)}`));
  // Containers of models no package lists: valid, and ignored.
  const unknownModel = gen(hostileName, 20, 3).map((m, i) => [`/container/node-1/ghost-${i}`, Buffer.from(FaultFleet.containerValue({ node: 'node-1', id: `ghost-${i}`, model: `ghost-${m}` }, 'dead'))] as [string, Buffer]);

  for (const [key, value] of [...bad, ...unknownModel]) await c.put(key).value(value);
  // The overwritten model states are foreign values: repaired. Give the fleet time to settle.
  const converged = await waitConverged(c, 30_000);
  t.true(alive(sm), sm.output.slice(-10).join('\n'));
  t.true(converged.check.ok, converged.check.mismatches.join('\n'));

  // Every bad key was seen and counted at least once (a state key counts as "not a state").
  const counted = (await invalidInputTotal(sm)) - countedBefore;
  t.true(counted >= bad.length, `${counted} invalid-input counts for ${bad.length} bad keys`);
  // Nothing was derived from the bad definitions: no state for a bad package.
  const badStates = Object.keys(await c.getAll().prefix('/package/bad-').strings());
  t.deepEqual(badStates, []);

  // The harness's own oracle parses the deep YAML too (about a second per value): time one pass,
  // so the convergence figure can be read.
  const oracleStart = Date.now();
  await waitConverged(c, 30_000);
  const oracleMs = Date.now() - oracleStart;
  await new Promise((r) => setTimeout(r, 1000));
  const rssAfter = await rssBytes(sm);
  t.log(`hostile values: ${bad.length} bad keys (${counted} counted), ${unknownModel.length} containers of unknown models; converged ${converged.ms} ms (one oracle pass: ${oracleMs} ms); RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MB`);
  t.true(rssAfter - rssBefore < 200 * 2 ** 20, 'RSS grew by less than 200 MB');
});

interface RawCall {
  code: grpc.status;
  response?: Buffer;
}

/** Send raw bytes as the request of a unary method, bypassing any client-side encoding. */
function rawUnary(client: grpc.Client, method: string, body: Buffer): Promise<RawCall> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      `/statemanager.StateManagerConnection/${method}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      new grpc.Metadata(),
      { deadline: Date.now() + 10_000 },
      (err, res?: Buffer) => resolve(err ? { code: err.code } : { code: grpc.status.OK, ...(res ? { response: res } : {}) }),
    );
  });
}

test.serial('random and oversize gRPC messages: refused with the right code, nothing written', async (t) => {
  const { etcd, sm } = await world();
  const c = etcd.client();
  t.true((await waitConverged(c, 30_000)).check.ok);
  const before = await c.getAll().prefix('/container/').strings();
  const client = new grpc.Client(`127.0.0.1:${sm.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 * 2 ** 20 });

  // Random bytes: undecodable, or decoded (protobuf is lenient) into messages without the
  // required fields. SendStateChange answers refusals in its response's error_code.
  const decodeStateChange = loadStateManagerProto().statemanager.StateManagerConnection.service.SendStateChange.responseDeserialize;
  const randoms = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 4096 }), { numRuns: 150, seed: 5 });
  const codes = new Map<string, number>();
  for (const [i, bytes] of randoms.entries()) {
    const method = ['SendChangedContainerList', 'SendStateChange', 'SendAction'][i % 3]!;
    const { code, response } = await rawUnary(client, method, Buffer.from(bytes));
    let outcome = grpc.status[code]!;
    if (method === 'SendStateChange' && code === grpc.status.OK) {
      outcome = String((decodeStateChange(response!) as { error_code: string }).error_code);
      t.not(outcome, 'SUCCESS', 'SendStateChange accepted random bytes');
    } else {
      t.not(code, grpc.status.OK, `${method} accepted random bytes`);
    }
    codes.set(`${method}:${outcome}`, (codes.get(`${method}:${outcome}`) ?? 0) + 1);
  }
  // Oversize: 5 MiB, over the 4 MiB message limit, in a well-formed ContainerList for node-0.
  const huge = containerListBytes('node-0', 'x'.repeat(5 * 2 ** 20));
  const oversize = await rawUnary(client, 'SendChangedContainerList', huge);
  t.is(oversize.code, grpc.status.RESOURCE_EXHAUSTED);

  t.true(alive(sm));
  t.deepEqual(await c.getAll().prefix('/container/').strings(), before, 'nothing written');
  t.deepEqual(Object.keys(await c.getAll().prefix('/scenario/').strings()), []);
  t.log(`random gRPC messages: ${[...codes].map(([k, n]) => `${k}×${n}`).join(', ')}; 5 MiB list: ${grpc.status[oversize.code]}`);
  client.close();
});

/** ContainerList { node_name = 1; containers = 2 } encoded by hand: one container whose id is `id`. */
function containerListBytes(node: string, id: string): Buffer {
  const field = (no: number, payload: Buffer): Buffer => Buffer.concat([varint((no << 3) | 2), varint(payload.length), payload]);
  const container = field(1, Buffer.from(id)); // ContainerInfo.id = 1
  return Buffer.concat([field(1, Buffer.from(node)), field(2, container)]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Sockets in TIME_WAIT towards `port` on this machine: each one a connection closed from this side. */
function closedConnectionsTo(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[2]!.endsWith(`:${hex}`) && f[3] === '06') n++;
    }
  }
  return n;
}

test.serial("a flood of reads with deadlines of a few ms closes no connection to etcd, and the leader keeps its lease", async (t) => {
  // Found by black-box probing: a caller's deadline passed on to a history read, once it ran out,
  // made etcd3 close every client to the member (the leader's lease among them), 10,182 closed in
  // 10 s by one well-behaved client, and a flood lost the replica its leadership.
  etcd = await startEtcd();
  ac = await startActionController();
  const fleet = new FaultFleet({ nodes: 2, packages: 20, modelsPerPackage: 2, containersPerModel: 2 });
  await fleet.seed(etcd.client());
  const sm = await startReplica({ identity: 'deadlines', etcdEndpoint: etcd.endpoint, acAddr: ac.addr, config: faultConfig({ leaderElection: { enabled: true, leaseDuration: '3s' } }) });
  replicas.push(sm);
  const c = etcd.client();
  t.true((await waitConverged(c, 30_000)).check.ok, 'converged before the flood');
  const port = Number(new URL(etcd.endpoint).port);
  const closedBefore = closedConnectionsTo(port);

  const Client = loadStateManagerProto().statemanager.StateManagerConnection;
  const clients = Array.from({ length: 8 }, () => new Client(`127.0.0.1:${sm.grpcPort}`, grpc.credentials.createInsecure()));
  t.teardown(() => clients.forEach((x) => x.close()));
  const name = 'p0';
  let answered = 0;
  const until = Date.now() + 6_000; // twice the lease
  await Promise.all(
    clients.flatMap((client) =>
      Array.from({ length: 4 }, async (_, i) => {
        while (Date.now() < until) {
          // 1–300 ms: under the history read's 250 ms margin the read is skipped; just over it the read runs out.
          const ms = [1, 5, 251, 255, 300][i % 5]!;
          await new Promise<void>((resolve) =>
            client.GetResourceState({ resource_type: 'RESOURCE_TYPE_PACKAGE', resource_name: name }, new grpc.Metadata(), { deadline: Date.now() + ms }, (err) => {
              if (!err) answered++;
              resolve();
            }),
          );
        }
      }),
    ),
  );
  const closed = closedConnectionsTo(port) - closedBefore;
  t.log(`${answered} reads answered in the flood; ${closed} connections to etcd closed from this machine`);
  t.true(alive(sm));
  t.true(closed < 20, `${closed} connections to etcd closed`);
  t.false(sm.output.some((l) => l.includes('lost leadership')), 'leadership held');
  t.is(await sm.metric('leader_election_master_status', 'name="statemanager"'), 1);
});
