// The gRPC listener: every address of the host name on one port, the gate consulted for each
// connection, a clear failure for a taken port.
import { connect, createServer, type Socket } from 'node:net';
import test from 'ava';
import { silentLogger } from '../../controller/logger.js';
import { ConnectionGate } from '../../src/grpc/connection-gate.js';
import { listenGated } from '../../src/grpc/listener.js';
import { assert, eventually } from '../helpers/eventually.js';

const tryConnect = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

test('localhost: listened on 127.0.0.1 (and ::1 where the host has it) on one port; admitted connections are handed on, others closed', async (t) => {
  const handed: Socket[] = [];
  const gate = new ConnectionGate({ total: 1, perPeer: 0 });
  const l = await listenGated('localhost:0', gate, (socket) => void handed.push(socket), silentLogger);
  t.teardown(() => {
    l.close();
    for (const s of handed) s.destroy();
  });
  t.true(l.port > 0);
  t.true(await tryConnect('127.0.0.1', l.port));
  await eventually(() => assert.strictEqual(handed.length, 1));
  // The gate is full (1 in all, and the handed-on socket is still open): the next is closed.
  const refused = connect(l.port, '127.0.0.1');
  const closed = await new Promise<boolean>((resolve) => {
    refused.once('close', () => resolve(true));
    refused.once('error', () => undefined);
  });
  t.true(closed);
  t.is(handed.length, 1);
});

test('a port already taken fails with the reason', async (t) => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const gate = new ConnectionGate({ total: 0, perPeer: 0 });
  await t.throwsAsync(listenGated(`127.0.0.1:${port}`, gate, () => undefined, silentLogger), { message: /EADDRINUSE/ });
});

// Found by black-box probing: 4,000–5,000 node agents connecting at once had 661–2,133
// connections reset by the kernel, whose queue of connections not yet accepted was Node's 511.
test("the queue of connections not yet accepted is 4,096 deep (or the kernel's net.core.somaxconn, if lower)", async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { readFileSync } = await import('node:fs');
  let ss: string;
  try {
    ss = execFileSync('ss', ['-ltnH'], { encoding: 'utf8' });
  } catch {
    t.log('no ss (iproute2) here: the backlog is not checked');
    t.pass();
    return;
  }
  const l = await listenGated('127.0.0.1:0', new ConnectionGate({ total: 0, perPeer: 0 }), () => undefined, silentLogger);
  t.teardown(() => l.close());
  ss = execFileSync('ss', ['-ltnH', `sport = :${l.port}`], { encoding: 'utf8' });
  // State, Recv-Q (waiting to be accepted), Send-Q (the backlog), local address, peer.
  const backlog = Number(ss.trim().split(/\s+/)[2]);
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  t.is(backlog, Math.min(4096, somaxconn), ss);
});
