// A node agent's container lists over gRPC become model and package states: one path for state,
// through etcd and the controller's watch.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startApp } from '../helpers/app.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { sendContainerList, startTestServer, stopAll } from '../grpc/_support.js';

let etcd: EtcdServer;
let ac: FakeActionController;

test.before(async () => {
  etcd = await startEtcd();
  ac = await startActionController();
});

test.after.always(async () => {
  await stopAll();
  await ac?.stop();
  await etcd?.stop();
});

const container = (id: string, model: string, status: string) => ({
  id,
  names: [id],
  image: 'img:1',
  state: { Status: status },
  config: {},
  annotation: { 'io.pullpiri.annotations.model': model },
  stats: { cpu: '1%' },
});

test('container lists sent over gRPC turn into model and package states', async (t) => {
  const prefix = '/g2s';
  const w = new FleetWriter(etcd.client(), prefix);
  await w.packageDef('pkg', ['ma', 'mb']);
  const app = await startApp(etcd, ac.addr, { keyPrefix: prefix });
  t.teardown(() => app.stop());
  const server = await startTestServer(etcd.client(), {}, { keys: new KeyLayout(prefix) });
  const client = server.client();

  await sendContainerList(client, { node_name: 'edge-1', containers: [container('a1', 'ma', 'running'), container('b1', 'mb', 'running')] });
  await eventually(async () => assert.deepStrictEqual(await w.states('package'), { pkg: 'Running' }));

  // The agent's next list no longer holds b1: model mb lost its containers after running → Exited.
  await sendContainerList(client, { node_name: 'edge-1', containers: [container('a1', 'ma', 'paused')] });
  await eventually(async () => assert.deepStrictEqual(await w.states('model'), { ma: 'Paused', mb: 'Exited' }));
  t.deepEqual(await w.client.getAll().prefix(w.keys.containerPrefix('edge-1')).keys(), [w.keys.containerKey('edge-1', 'a1')]);
  await eventually(async () => assert.deepStrictEqual(await w.states('package'), { pkg: 'Running' }));
  await sendContainerList(client, { node_name: 'edge-1', containers: [container('a1', 'ma', 'dead')] });
  await eventually(async () => assert.deepStrictEqual(await w.states('package'), { pkg: 'Degraded' }));
});
