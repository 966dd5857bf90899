// The command line against the real controller: what it shows is what the controller wrote,
// `watch` sees its transitions, and `resync --wait` is taken by it.
import test from 'ava';
import type { StateManagerApp } from '../../src/app.js';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startApp } from '../helpers/app.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { cli } from './_harness.js';

let etcd: EtcdServer;
let ac: FakeActionController;
let app: StateManagerApp | undefined;

test.before(async () => {
  etcd = await startEtcd();
  ac = await startActionController();
});

test.after.always(async () => {
  await app?.stop();
  await ac?.stop();
  await etcd?.stop();
});

test.serial('get, describe, watch, history and resync --wait against a running statemanager', async (t) => {
  const prefix = '/cli-e2e';
  const w = new FleetWriter(etcd.client(), prefix);
  await w.packageDef('shop', ['web', 'db']);
  await w.scenarioDef('shop-scn', 'shop');
  await w.container('n1', 'c1', 'web', 'running');
  await w.container('n1', 'c2', 'db', 'running');
  app = await startApp(etcd, ac.addr, { keyPrefix: prefix });
  await eventually(async () => assert.strictEqual(await w.state('package', 'shop'), 'Running'));
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: prefix };

  const pkgs = await cli(['get', 'packages', '-o', 'json'], { env });
  t.is(pkgs.code, 0, pkgs.stderr);
  const [shop] = JSON.parse(pkgs.stdout);
  t.like(shop, { name: 'shop', state: 'Running', defined: true, models: { Running: 2 } });
  t.false(Number.isNaN(Date.parse(shop.since)));

  // A watch started now sees the controller's transitions when a container dies and a node fails.
  let ready!: () => void;
  const watching = new Promise<void>((r) => (ready = r));
  const watch = cli(['watch', 'model', '--count', '1', '-o', 'json', '--timeout', '20s'], {
    env,
    onStderr: (s) => s.includes('watching transitions') && ready(),
  });
  await watching;
  await w.nodeStatus('n1', 'NotReady');
  const watched = await watch;
  t.is(watched.code, 0, watched.stderr);
  const event = JSON.parse(watched.stdout);
  t.like(event, { kind: 'model', from: 'Running', to: 'Dead' });
  t.true(['web', 'db'].includes(event.name));

  await eventually(async () => assert.strictEqual(await w.state('package', 'shop'), 'Error'));
  const d = await cli(['describe', 'package', 'shop', '-o', 'json'], { env });
  t.is(d.code, 0, d.stderr);
  const desc = JSON.parse(d.stdout);
  t.is(desc.state, 'Error');
  t.deepEqual(
    desc.models.map((m: { name: string; state: string; containers: { status: string; reported: string }[] }) => [m.name, m.state, m.containers.map((c) => [c.status, c.reported])]),
    [
      ['web', 'Dead', [['unknown', 'running']]],
      ['db', 'Dead', [['unknown', 'running']]],
    ],
  );
  t.deepEqual(desc.history.map((h: { to: string }) => h.to).slice(-2), ['Running', 'Error']);
  // Entering Error raises a reconcile request, delivered to the ActionController for shop-scn.
  await eventually(async () => {
    const again = JSON.parse((await cli(['describe', 'package', 'shop', '-o', 'json'], { env })).stdout);
    assert.strictEqual(again.reconcileRequest?.status, 'delivered');
    assert.strictEqual(again.reconcileRequest?.scenario, 'shop-scn');
  });
  const table = await cli(['describe', 'package', 'shop'], { env });
  t.true(table.stdout.startsWith('package/shop   Error   since '), table.stdout);
  t.regex(table.stdout, /reconcile request: delivered \(state Error, .*scenario shop-scn\)/);
  t.true(table.stdout.includes('n1/c1   unknown   web-c1   (node n1 is NotReady; reported running)'), table.stdout);

  const hist = await cli(['history', 'package', 'shop', '-o', 'json'], { env });
  t.deepEqual(
    JSON.parse(hist.stdout).map((h: { from: string | null; to: string }) => `${h.from}→${h.to}`),
    desc.history.map((h: { from: string | null; to: string }) => `${h.from}→${h.to}`),
  );

  // Leader election is off in the test configuration: the controller itself takes the request.
  const resync = await cli(['resync', 'package', 'shop', '--wait', '--timeout', '10s'], { env });
  t.is(resync.code, 0, resync.stderr);
  t.regex(resync.stdout, /^resync of package shop requested \(\/cli-e2e\/statemanager\/resync\/\S+\)\ntaken by the controller after /);
  t.deepEqual(await w.client.getAll().prefix(w.keys.resyncRequests).keys(), []);
});
