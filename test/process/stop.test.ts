// The process stops on SIGTERM with exit 0 and its last log line, also while etcd does not
// answer: connection attempts grpc-js still has under way do not keep it alive (found by
// black-box probing: with etcd black-holed, SIGTERM ended 25 s later as "stop took too long",
// exit 70, after a write to the ended log).
import { createServer, type Socket } from 'node:net';
import test from 'ava';
import { startReplica } from '../helpers/replica.js';

test('SIGTERM while etcd accepts connections and never answers: exit 0 within seconds, "stopped" the last line', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  // A blackholed address too (no answer to the SYN where a route exists): its attempts are still connecting at the stop.
  const r = await startReplica({ identity: 'stop-test', etcdEndpoint: `http://127.0.0.1:${port},http://10.255.255.1:2379`, acAddr: '127.0.0.1:1', config: { etcd: { requestTimeout: '1s' } } });
  await new Promise((res) => setTimeout(res, 1500)); // connection attempts under way
  const started = Date.now();
  const code = await r.kill('SIGTERM');
  const took = Date.now() - started;
  t.is(code, 0, r.output.slice(-10).join('\n'));
  t.true(took < 10_000, `exited after ${took} ms`);
  t.false(r.output.some((l) => /unexpected exception|stop took too long|write after end/.test(l)), r.output.slice(-10).join('\n'));
  t.regex(r.output.filter((l) => l.startsWith('{')).pop() ?? '', /"stopped"/);
});
