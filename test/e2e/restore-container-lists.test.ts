// A node agent's unchanged container list after etcd is restored from an older backup: the
// replica remembered the list it last wrote ("nothing under the prefix modified since R"), and
// after a restore every revision is older than R, so that check passed while etcd held the
// backup's values (black-box probing: 600 identical lists answered OK in 60 s while 121 of 400
// containers kept the backup's status). Once the replica finds the history replaced, it forgets
// what it wrote, and the next list is compared with what etcd holds.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { KeyLayout } from '../../domain/keys.js';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { proto, sendContainerList } from '../grpc/_support.js';

let etcd: EtcdServer;
let ac: FakeActionController;
let replica: Replica | undefined;

test.before(async () => {
  etcd = await startEtcd();
  ac = await startActionController();
});

test.after.always(async () => {
  await replica?.kill('SIGKILL');
  await ac?.stop();
  await etcd?.stop();
});

const container = (id: string, status: string) => ({
  id,
  names: [id],
  image: 'img:1',
  state: { Status: status },
  config: {},
  annotation: { 'io.pullpiri.annotations.model': `m-${id}` },
});

test('after a restore behind what the replica saw, the same list again rewrites the containers the backup holds otherwise', async (t) => {
  const keys = new KeyLayout('');
  const list = { node_name: 'edge-1', containers: ['c1', 'c2', 'c3', 'c4'].map((id) => container(id, 'running')) };
  replica = await startReplica({ identity: 'restore', etcdEndpoint: etcd.endpoint, acAddr: ac.addr, config: { leaderElection: { enabled: false } } });
  await eventually(async () => assert.strictEqual((await replica!.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  const client = new proto.statemanager.StateManagerConnection(`127.0.0.1:${replica.grpcPort}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());

  // The backup: the same containers, two of them exited, written before the list was.
  const backup = (c: ReturnType<typeof container>) => (c.id === 'c1' || c.id === 'c2' ? container(c.id, 'exited') : c);
  for (const c of list.containers) await etcd.client().put(keys.containerKey('edge-1', c.id)).value(JSON.stringify(backup(c)));
  t.regex(await sendContainerList(client, list), /2 put, 0 deleted, 2 unchanged/);
  // The revision the restored etcd will be behind: the replica's container informer has seen it.
  const seen = Number((await etcd.client().get(keys.containerKey('edge-1', 'c1')).exec()).header.revision);
  await eventually(async () => assert.strictEqual(await replica!.metric('statemanager_informer_last_revision', 'informer="containers"'), seen));

  await etcd.restart({
    wipe: true,
    prefill: async (c) => {
      for (const x of list.containers) await c.put(keys.containerKey('edge-1', x.id)).value(JSON.stringify(backup(x)));
    },
  });
  await eventually(async () => assert.ok(((await replica!.metric('statemanager_watch_restarts_total', 'informer="containers",reason="history_replaced"')) ?? 0) >= 1), { timeoutMs: 20_000 });

  // The same list: the two containers the backup holds as exited are written again.
  await eventually(async () => assert.match(await sendContainerList(client, list), /2 put, 0 deleted, 2 unchanged/), { timeoutMs: 10_000 });
  for (const c of list.containers) t.deepEqual(JSON.parse((await etcd.client().get(keys.containerKey('edge-1', c.id)).string())!).state, { Status: 'running' }, c.id);
  t.regex(await sendContainerList(client, list), /0 put, 0 deleted, 4 unchanged/, 'and remembered again');
});
