// The replica helper against a port taken between choosing and binding it (the race that failed
// a CI run: another process took a port freePort() had found free): a fixed port still held
// after its last attempt fails with the address line; one released meanwhile is bound.
import test from 'ava';
import { createServer, type Server } from 'node:net';
import { freePort } from '../helpers/etcd.js';
import { sharedEnv } from '../helpers/shared-env.js';
import { startReplica, type Replica } from '../helpers/replica.js';

const replicas: Replica[] = [];
const env = sharedEnv(test, () => Promise.all(replicas.map((r) => r.kill('SIGKILL'))));

async function hold(port: number): Promise<Server> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve());
  });
  return srv;
}

test.serial('a fixed gRPC port held by another process throughout: the start fails naming EADDRINUSE', async (t) => {
  const port = await freePort();
  const holder = await hold(port);
  t.teardown(() => void holder.close());
  const err = await t.throwsAsync(startReplica({ identity: 'held', etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, grpcPort: port }));
  t.regex(err?.message ?? '', /replica held exited: .*EADDRINUSE/s);
});

test.serial('a fixed gRPC port released while the helper retries: the replica binds it and serves', async (t) => {
  const port = await freePort();
  const holder = await hold(port);
  // Released after the first attempt has failed (each start takes about a second) and before the last.
  setTimeout(() => holder.close(), 1_500);
  const r = await startReplica({ identity: 'released', etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, grpcPort: port });
  replicas.push(r);
  t.is(r.grpcPort, port);
  t.is((await r.get('/healthz')).status, 200);
  t.regex(r.output.join('\n'), new RegExp(`127\\.0\\.0\\.1:${port}`));
});
