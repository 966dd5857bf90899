// The connection bounds (grpc.limits.connectionsPerPeer, maxConnections): below and at each a
// connection is served, one past it is closed as it is accepted; a closed one gives its slot
// back; a real client is served or refused accordingly — over real TCP against the real server.
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { ConnectionGate, peerAddress } from '../../src/grpc/connection-gate.js';
import { parseGrpcServerConfig } from '../../src/grpc/config.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { proto, startTestServer, stopAll, type TestServer } from './_support.js';

let etcd: EtcdServer;
const sockets: Socket[] = [];
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  for (const s of sockets) s.destroy();
  await stopAll();
  await etcd?.stop();
});

/** Just what the gate reads of a socket: its peer address and its 'close'. */
function fakeSocket(remoteAddress: string | undefined): Socket & { close(): void } {
  const s = new EventEmitter() as EventEmitter & { remoteAddress?: string; close(): void };
  s.remoteAddress = remoteAddress;
  s.close = () => void s.emit('close', false);
  return s as unknown as Socket & { close(): void };
}

test('per peer: below and at the bound admitted, past it refused; a closed connection gives its slot back', (t) => {
  const refused: string[] = [];
  const open: number[] = [];
  const gate = new ConnectionGate({ total: 0, perPeer: 2 }, { refused: (r, peer, limit) => void refused.push(`${r} ${peer} ${limit}`), open: (n) => void open.push(n) });
  const a1 = fakeSocket('10.0.0.1');
  t.true(gate.admit(a1), 'below');
  t.true(gate.admit(fakeSocket('10.0.0.1')), 'at');
  t.false(gate.admit(fakeSocket('10.0.0.1')), 'past');
  t.deepEqual(refused, ['peer 10.0.0.1 2']);
  t.true(gate.admit(fakeSocket('10.0.0.2')), 'another address has its own count');
  t.is(gate.count('10.0.0.1'), 2);
  a1.close();
  t.is(gate.count('10.0.0.1'), 1);
  t.true(gate.admit(fakeSocket('10.0.0.1')), 'the slot came back');
  t.deepEqual(open, [1, 2, 3, 2, 3]);
});

test('in all: below and at the bound admitted across addresses, past it refused; 0 turns a bound off', (t) => {
  const refused: string[] = [];
  const gate = new ConnectionGate({ total: 3, perPeer: 0 }, { refused: (r) => void refused.push(r) });
  t.true(gate.admit(fakeSocket('10.0.0.1')));
  t.true(gate.admit(fakeSocket('10.0.0.2')), 'below');
  const third = fakeSocket('10.0.0.3');
  t.true(gate.admit(third), 'at');
  t.false(gate.admit(fakeSocket('10.0.0.4')), 'past');
  t.deepEqual(refused, ['total']);
  third.close();
  t.true(gate.admit(fakeSocket('10.0.0.4')));
  t.is(gate.count(), 3);

  const unbounded = new ConnectionGate({ total: 0, perPeer: 0 });
  for (let i = 0; i < 1000; i++) t.true(unbounded.admit(fakeSocket('10.0.0.9')));
});

test('new connections per second from one address: a burst of twice the rate, then the rate; local peers and 0 unbounded', (t) => {
  let now = 0;
  const refused: string[] = [];
  const gate = new ConnectionGate({ total: 0, perPeer: 0, perPeerPerSecond: 2, isLocal: (a) => a === '127.0.0.1', now: () => now }, { refused: (r, peer, limit) => void refused.push(`${r} ${peer} ${limit}`) });
  for (let i = 0; i < 3; i++) t.true(gate.admit(fakeSocket('10.0.0.1')), `below the burst (${i + 1})`);
  t.true(gate.admit(fakeSocket('10.0.0.1')), 'at the burst (4)');
  t.false(gate.admit(fakeSocket('10.0.0.1')), 'past it');
  t.deepEqual(refused, ['rate 10.0.0.1 2']);
  t.true(gate.admit(fakeSocket('10.0.0.2')), 'another address has its own');
  now += 500; // one connection's worth at 2 per second
  t.true(gate.admit(fakeSocket('10.0.0.1')));
  t.false(gate.admit(fakeSocket('10.0.0.1')));
  for (let i = 0; i < 50; i++) t.true(gate.admit(fakeSocket('127.0.0.1')), 'local: unbounded');
  const off = new ConnectionGate({ total: 0, perPeer: 0, perPeerPerSecond: 0, now: () => 0 });
  for (let i = 0; i < 50; i++) t.true(off.admit(fakeSocket('10.0.0.9')));
});

test('local peers count only towards the total', (t) => {
  const gate = new ConnectionGate({ total: 4, perPeer: 1, isLocal: (a) => a === '127.0.0.1' });
  t.true(gate.admit(fakeSocket('127.0.0.1')));
  t.true(gate.admit(fakeSocket('127.0.0.1')), 'past the per-peer bound, but local');
  t.true(gate.admit(fakeSocket('::ffff:127.0.0.1')), 'the same local address on a dual-stack socket');
  t.true(gate.admit(fakeSocket('10.0.0.1')));
  t.false(gate.admit(fakeSocket('127.0.0.1')), 'the total still holds');
  t.is(gate.count('127.0.0.1'), 3);
});

test('an IPv4 peer seen on a dual-stack socket (::ffff:a.b.c.d) counts as the same address; a socket already gone is not served', (t) => {
  t.is(peerAddress('::ffff:10.1.2.3'), '10.1.2.3');
  t.is(peerAddress('::ffff:abcd'), '::ffff:abcd', 'not an IPv4 address');
  t.is(peerAddress('fe80::1'), 'fe80::1');
  const gate = new ConnectionGate({ total: 0, perPeer: 1 });
  t.true(gate.admit(fakeSocket('10.1.2.3')));
  t.false(gate.admit(fakeSocket('::FFFF:10.1.2.3')));
  t.false(gate.admit(fakeSocket(undefined)));
  t.is(gate.count(), 1);
});

test('the bounds are configured with defaults and refuse negative values', (t) => {
  const c = parseGrpcServerConfig({});
  t.is(c.limits.connectionsPerPeer, 1024);
  t.is(c.limits.maxConnections, 16_384);
  t.is(c.limits.connectionsPerSecondPerPeer, 100);
  t.is(parseGrpcServerConfig({ limits: { connectionsPerPeer: 0, maxConnections: 0 } }).limits.maxConnections, 0);
  t.throws(() => parseGrpcServerConfig({ limits: { connectionsPerPeer: -1 } }));
  t.throws(() => parseGrpcServerConfig({ limits: { maxConnections: 1.5 } }));
});

const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);

/** A raw connection that speaks the HTTP/2 preface and then nothing: held, or closed by the server. */
async function rawConnection(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let closed = false;
  socket.on('close', () => void (closed = true));
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve).once('close', resolve));
  if (!closed) socket.write(PREFACE);
  return { socket, closed: () => closed };
}

/** One call on a connection of its own (no shared subchannel), closed afterwards. */
async function getState(server: TestServer): Promise<grpc.status> {
  const client = new proto.statemanager.StateManagerConnection(server.target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  try {
    return await new Promise<grpc.status>((resolve) =>
      client.GetResourceState({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 'x' }, { deadline: Date.now() + 3000 }, (err) => resolve(err ? (err.code as grpc.status) : grpc.status.OK)),
    );
  } finally {
    client.close();
  }
}

test.serial('the real server: connections from one address past connectionsPerPeer are closed at once, before any call; the others stay served', async (t) => {
  // 127.0.0.1 taken for a peer beyond this machine (local peers are not bounded per address).
  const server = await startTestServer(etcd.client(), { limits: { connectionsPerPeer: 3 }, auth: { allowAnonymous: true } }, { isLocalPeer: () => false });
  const held = [await rawConnection(server.port), await rawConnection(server.port)];
  t.is(await getState(server), grpc.status.UNIMPLEMENTED, 'below the bound a client is served (reads are not wired in this server)');
  await eventually(() => assert.strictEqual(server.metrics.openConnections.at(-1), 2, 'the client closed its connection'));
  held.push(await rawConnection(server.port)); // at the bound
  const past = await rawConnection(server.port);
  await eventually(() => assert.ok(past.closed(), 'the connection past the bound is closed'));
  t.deepEqual(server.metrics.refusedConnections, ['peer']);
  t.is(await getState(server), grpc.status.UNAVAILABLE, 'a client past the bound cannot connect');
  await new Promise((r) => setTimeout(r, 300));
  t.true(held.every((c) => !c.closed()), 'the connections within the bound stay open');
  const line = server.logger.lines.find((l) => l.message === 'gRPC connection refused: too many open');
  t.like(line?.meta, { peer: '127.0.0.1', limit: '3 from one address (grpc.limits.connectionsPerPeer)' });

  held[0]!.socket.destroy();
  await eventually(() => assert.strictEqual(server.metrics.openConnections.at(-1), 2));
  t.is(await getState(server), grpc.status.UNIMPLEMENTED, 'a closed connection gave its slot back');
});

test.serial('the real server: past maxConnections in all, closed at once; the gauge follows the open connections', async (t) => {
  const server = await startTestServer(etcd.client(), { limits: { maxConnections: 2, connectionsPerPeer: 0 } });
  const a = await rawConnection(server.port);
  const b = await rawConnection(server.port);
  await eventually(() => assert.strictEqual(server.metrics.openConnections.at(-1), 2));
  const c = await rawConnection(server.port);
  await eventually(() => assert.ok(c.closed()));
  t.deepEqual(server.metrics.refusedConnections, ['total']);
  t.false(a.closed() || b.closed());
  a.socket.destroy();
  b.socket.destroy();
  await eventually(() => assert.strictEqual(server.metrics.openConnections.at(-1), 0));
  t.is(await getState(server), grpc.status.UNIMPLEMENTED);
});

test.serial('the real server: loopback peers are not bounded per address, only in all', async (t) => {
  const server = await startTestServer(etcd.client(), { limits: { connectionsPerPeer: 2, maxConnections: 5 } });
  const held = [];
  for (let i = 0; i < 5; i++) held.push(await rawConnection(server.port));
  await eventually(() => assert.strictEqual(server.metrics.openConnections.at(-1), 5));
  const past = await rawConnection(server.port);
  await eventually(() => assert.ok(past.closed()));
  t.deepEqual(server.metrics.refusedConnections, ['total']);
  await new Promise((r) => setTimeout(r, 200));
  t.true(held.every((c) => !c.closed()));
});

/** `n` GetResourceState calls on one connection of its own: each call's status. */
async function callsOnOwnConnection(server: TestServer, n: number): Promise<string[]> {
  const client = new proto.statemanager.StateManagerConnection(server.target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  try {
    const codes: string[] = [];
    for (let i = 0; i < n; i++) {
      codes.push(
        await new Promise<string>((resolve) =>
          client.GetResourceState({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 'x' }, { deadline: Date.now() + 3000 }, (err) => resolve(grpc.status[err ? (err.code as grpc.status) : grpc.status.OK])),
        ),
      );
    }
    return codes;
  } finally {
    client.close();
  }
}

test.serial('anonymous callers on loopback: each connection has its own budgets, so one that spends all of its own leaves the next served', async (t) => {
  // A burst of 2 and (practically) no refill: the third call of a budget is refused.
  const server = await startTestServer(etcd.client(), { limits: { callsPerSecond: 0.001, burst: 2 } });
  // The reads are not wired in this test server: a call past the gate answers UNIMPLEMENTED.
  t.deepEqual(await callsOnOwnConnection(server, 3), ['UNIMPLEMENTED', 'UNIMPLEMENTED', 'RESOURCE_EXHAUSTED']);
  t.deepEqual(await callsOnOwnConnection(server, 3), ['UNIMPLEMENTED', 'UNIMPLEMENTED', 'RESOURCE_EXHAUSTED']);
});

test.serial('anonymous callers beyond this machine: one budget per address, whatever the connection', async (t) => {
  const server = await startTestServer(etcd.client(), { limits: { callsPerSecond: 0.001, burst: 2 }, auth: { allowAnonymous: true } }, { isLocalPeer: () => false });
  t.deepEqual(await callsOnOwnConnection(server, 1), ['UNIMPLEMENTED']);
  t.deepEqual(await callsOnOwnConnection(server, 2), ['UNIMPLEMENTED', 'RESOURCE_EXHAUSTED'], 'a second connection from the same address shares the budget');
});
