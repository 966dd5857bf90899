// /healthz and /readyz read the check registry: 503 naming what fails, 200 otherwise.
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import test from 'ava';
import { Registry } from 'prom-client';
import { Manager } from '../controller/manager.js';
import { HttpServer } from '../src/http/server.js';
import { assert, eventually } from './helpers/eventually.js';

test('/healthz and /readyz answer from the manager\'s named checks', async (t) => {
  let synced = false;
  const m = new Manager({ caches: { start: () => undefined, waitForSync: async () => undefined, hasSynced: () => synced, stop: async () => undefined } });
  let stuck = true;
  m.addHealthCheck('watch-loop', () => (stuck ? 'stuck' : undefined));
  const http = new HttpServer({ addr: '127.0.0.1:0', registry: new Registry(), probes: { ready: () => m.ready(), healthy: () => m.healthy() } });
  const port = await http.start();
  t.teardown(() => http.stop());
  const get = async (path: string): Promise<[number, string]> => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return [res.status, await res.text()];
  };
  t.deepEqual(await get('/healthz'), [503, 'unhealthy: watch-loop\n']);
  t.deepEqual(await get('/readyz'), [503, 'not ready: informers-synced, workers\n']);
  stuck = false;
  synced = true;
  await m.start();
  t.deepEqual(await get('/healthz'), [200, 'ok\n']);
  t.deepEqual(await get('/readyz'), [200, 'ok\n']);
});

/** A raw connection to the port that sends nothing: when, if ever, the server closes it. */
async function silentConnection(port: number, from?: string): Promise<{ closedAt: () => number | undefined; socket: Socket }> {
  const socket = connect({ port, host: '127.0.0.1', ...(from ? { localAddress: from } : {}) });
  let closedAt: number | undefined;
  socket.on('close', () => void (closedAt = Date.now()));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve).once('close', resolve));
  return { closedAt: () => closedAt, socket };
}

test('a connection that sends nothing is closed once idle for idleTimeoutMs, not before', async (t) => {
  const http = new HttpServer({ addr: '127.0.0.1:0', registry: new Registry(), probes: { ready: () => ({ ok: true, failing: [] }) }, idleTimeoutMs: 400 });
  const port = await http.start();
  t.teardown(() => http.stop());
  const opened = Date.now();
  const c = await silentConnection(port);
  await new Promise((r) => setTimeout(r, 250));
  t.is(c.closedAt(), undefined, 'below the idle timeout: open');
  await eventually(() => assert.notStrictEqual(c.closedAt(), undefined), { timeoutMs: 5000 });
  t.true(c.closedAt()! - opened >= 400 - 20, `closed ${c.closedAt()! - opened} ms after it opened`);
});

test('past maxConnections a connection is closed as it comes and counted; below and at it they are served', async (t) => {
  let refused = 0;
  const http = new HttpServer({ addr: '127.0.0.1:0', registry: new Registry(), probes: { ready: () => ({ ok: true, failing: [] }) }, maxConnections: 3, connectionRefused: () => refused++ });
  const port = await http.start();
  t.teardown(() => http.stop());
  const held = [await silentConnection(port), await silentConnection(port)];
  t.is((await fetch(`http://127.0.0.1:${port}/readyz`, { headers: { connection: 'close' } })).status, 200, 'below: the third connection is served');
  held.push(await silentConnection(port)); // at the bound
  const past = await silentConnection(port);
  await eventually(() => assert.notStrictEqual(past.closedAt(), undefined));
  t.is(refused, 1);
  t.true(held.every((c) => c.closedAt() === undefined));
  held[0]!.socket.destroy();
  await eventually(async () => assert.strictEqual((await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { connection: 'close' } })).status, 200));
});

/** GET `path` from the local address `from` (127.0.0.0/8 is all loopback): status, or 'closed'. */
function getFrom(port: number, path: string, from: string): Promise<number | 'closed'> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: from, headers: { connection: 'close' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve('closed'));
    req.end();
  });
}

test('past connectionsPerPeer one address is closed as it comes and counted, below and at it served; another address is served all along', async (t) => {
  // Found by black-box probing: one local client holding 256 idle connections failed 18 of 19 /healthz probes.
  let refused = 0;
  const http = new HttpServer({ addr: '127.0.0.1:0', registry: new Registry(), probes: { ready: () => ({ ok: true, failing: [] }) }, connectionsPerPeer: 3, connectionRefused: () => refused++ });
  const port = await http.start();
  t.teardown(() => http.stop());
  const held = [await silentConnection(port, '127.0.0.1'), await silentConnection(port, '127.0.0.1')];
  t.is(await getFrom(port, '/healthz', '127.0.0.1'), 200, 'below: the third from the address is served');
  held.push(await silentConnection(port, '127.0.0.1')); // at the bound
  const past = await silentConnection(port, '127.0.0.1');
  await eventually(() => assert.notStrictEqual(past.closedAt(), undefined));
  t.is(refused, 1);
  t.is(await getFrom(port, '/healthz', '127.0.0.2'), 200, 'another address (the kubelet) is served');
  t.true(held.every((c) => c.closedAt() === undefined));
  held[0]!.socket.destroy();
  await eventually(async () => assert.strictEqual(await getFrom(port, '/healthz', '127.0.0.1'), 200));
});

test('a method other than GET or HEAD is 405 with Allow', async (t) => {
  const http = new HttpServer({ addr: '127.0.0.1:0', registry: new Registry(), probes: { ready: () => ({ ok: true, failing: [] }) } });
  const port = await http.start();
  t.teardown(() => http.stop());
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { method: 'POST' });
  t.is(res.status, 405);
  t.is(res.headers.get('allow'), 'GET, HEAD');
});

test('a port that cannot be bound is refused naming the setting and the address', async (t) => {
  const first = new HttpServer({ addr: '127.0.0.1:0', registry: new Registry(), probes: { ready: () => ({ ok: true, failing: [] }) } });
  const port = await first.start();
  t.teardown(() => first.stop());
  const second = new HttpServer({ addr: `127.0.0.1:${port}`, registry: new Registry(), probes: { ready: () => ({ ok: true, failing: [] }) } });
  await t.throwsAsync(second.start(), { message: new RegExp(`^cannot listen for HTTP \\(http\\.addr\\) on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`) });
});
