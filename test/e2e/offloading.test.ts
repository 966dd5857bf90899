// Issue 20 end to end, against statemanager as its own process (src/main.ts), a real etcd and
// an ActionController built from Pullpiri's 2026 proto: a container named `/model-nav` with no
// annotation drives model `nav` (through the gRPC receiver, whose placement check reads the name
// too); the policy manager moves the model, a node agent may not; the request is logged with
// the caller, counted, and recorded so that `statemanager describe model nav` shows it after a restart.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { KeyLayout } from '../../domain/keys.js';
import { loadStateManagerProto } from '../../src/grpc/proto.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { PolicyManagerClient, startPullpiriActionController, type PullpiriActionController } from '../helpers/pullpiri-2026.js';
import { cli } from '../cli/_harness.js';

let etcd: EtcdServer;
let ac: PullpiriActionController;
const replicas: Replica[] = [];
const closers: (() => void)[] = [];

test.before(async () => {
  etcd = await startEtcd();
  ac = await startPullpiriActionController();
});

test.after.always(async () => {
  for (const c of closers) c();
  await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
  await ac?.stop();
  await etcd?.stop();
});

const PREFIX = '/e2e-offload';
const token = (name: string): string => `${name}-token-`.padEnd(40, 'x');
const CONFIG = {
  keyPrefix: PREFIX,
  leaderElection: { enabled: false },
  grpc: {
    auth: {
      tokens: [
        { identity: 'node-edge-1', token: token('node') },
        { identity: 'policymanager', token: token('pm') },
      ],
      rules: [
        { identities: ['token:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}', placedModelsOnly: true }] },
        { identities: ['token:policymanager'], allow: [{ method: 'TriggerOffloading' }] },
      ],
    },
  },
};

function bearer(t: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${t}`);
  return md;
}

async function sendList(addr: string, list: unknown, t: string): Promise<string> {
  const proto = loadStateManagerProto();
  const c = new proto.statemanager.StateManagerConnection(addr, grpc.credentials.createInsecure());
  closers.push(() => c.close());
  return new Promise((resolve, reject) =>
    c.SendChangedContainerList(list as never, bearer(t), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res!.resp))),
  );
}

const NAV = {
  scenario_name: 'navigation-scenario',
  package_name: 'navigation',
  model_name: 'nav',
  source_node: 'edge-1',
  target_node: 'edge-2',
  policy_name: 'cpu-threshold',
  reason: 'CPU threshold exceeded: 75% > 50%',
};

test.serial('a container named /model-nav drives model nav; the policy manager moves it; describe shows the request after a restart', async (t) => {
  const keys = new KeyLayout(PREFIX);
  const client = etcd.client();
  const pkg = (name: string, models: [string, string][]) =>
    `apiVersion: v1\nkind: Package\nmetadata:\n  name: ${name}\nspec:\n  models:\n${models.map(([m, n]) => `    - name: ${m}\n      node: ${n}`).join('\n')}\n`;
  await client.put(keys.packageDefKey('navigation')).value(pkg('navigation', [['nav', 'edge-1']]));
  await client.put(keys.packageDefKey('media')).value(pkg('media', [['player', 'edge-2']]));

  const first = await startReplica({ identity: 'off-a', etcdEndpoint: etcd.endpoint, acAddr: ac.addr, config: CONFIG });
  replicas.push(first);
  const addr = `127.0.0.1:${first.grpcPort}`;
  await eventually(async () => assert.strictEqual((await first.get('/readyz')).status, 200), { timeoutMs: 20_000 });

  // No annotation, no config["model"]: the name says the model.
  const container = (id: string, name: string, status: string) => ({ id, names: [name], image: 'img:1', state: { Status: status }, config: {}, annotation: {} });
  t.is(await sendList(addr, { node_name: 'edge-1', containers: [container('c1', '/model-nav', 'running')] }, token('node')), 'node edge-1: 1 put, 0 deleted, 0 unchanged');
  await eventually(async () => assert.strictEqual(await client.get(keys.stateKey('model', 'nav')).string(), 'Running'), { timeoutMs: 10_000 });
  await eventually(async () => assert.strictEqual(await client.get(keys.stateKey('package', 'navigation')).string(), 'Running'), { timeoutMs: 10_000 });
  // The receiver's placement check reads the name too: model player is not placed on edge-1.
  const denied = (await sendList(addr, { node_name: 'edge-1', containers: [container('c2', '/model-player', 'dead')] }, token('node')).catch((e: unknown) => e)) as grpc.ServiceError;
  t.is(denied.code, grpc.status.PERMISSION_DENIED);
  t.regex(denied.details, /no package places "player" on it/);
  t.is(await client.get(keys.stateKey('model', 'player')).string(), 'Created');

  // The node agent may not move models; the policy manager may.
  const nodeClient = new PolicyManagerClient(addr, () => bearer(token('node')));
  const pmClient = new PolicyManagerClient(addr, () => bearer(token('pm')));
  closers.push(() => nodeClient.close(), () => pmClient.close());
  t.deepEqual(await nodeClient.trigger(NAV).then((r) => [r.accepted, r.message]), [false, 'permission denied: token:node-edge-1 may not offload model "nav"']);
  const before = ac.offloads.length;
  const res = await pmClient.trigger(NAV);
  t.true(res.accepted);
  t.is(res.message, "Model 'nav' successfully migrated from 'edge-1' to 'edge-2'");
  t.is(res.transition_id, 'offload-nav-1767225600000');
  t.deepEqual(ac.offloads.slice(before), [NAV]);

  // Logged at info with the authenticated identity, and counted.
  await eventually(async () => assert.ok(first.output.some((l) => l.includes('offloading request') && l.includes('"identity":"token:policymanager"') && l.includes('"outcome":"accepted"'))));
  t.is(await first.metric('statemanager_offloading_requests_total', 'outcome="accepted"'), 1);
  t.is(await first.metric('statemanager_offloading_requests_total', 'outcome="denied"'), 1);
  await eventually(async () => assert.strictEqual((await client.getAll().prefix(keys.offloadingPrefix('nav')).keys()).length, 1));

  // A restart: the record is in etcd, and describe shows it with outcome and caller.
  t.is(await first.kill('SIGTERM'), 0);
  const second = await startReplica({ identity: 'off-b', etcdEndpoint: etcd.endpoint, acAddr: ac.addr, config: CONFIG });
  replicas.push(second);
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: PREFIX };
  const d = await cli(['describe', 'model', 'nav'], { env });
  t.is(d.code, 0, d.stderr);
  t.regex(d.stdout, /offloading requests:\n.*edge-1 -> edge-2 +accepted +by token:policymanager +policy cpu-threshold +offload-nav-1767225600000 +Model 'nav' successfully migrated/);
  const json = JSON.parse((await cli(['describe', 'model', 'nav', '-o', 'json'], { env })).stdout) as { offloading: { identity: string; outcome: string; reason: string }[] };
  t.deepEqual(json.offloading.map((o) => [o.identity, o.outcome, o.reason]), [['token:policymanager', 'accepted', NAV.reason]]);
  // The new replica serves it too.
  const again = new PolicyManagerClient(`127.0.0.1:${second.grpcPort}`, () => bearer(token('pm')));
  closers.push(() => again.close());
  await eventually(async () => assert.strictEqual((await second.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  t.true((await again.trigger({ ...NAV, source_node: 'edge-2', target_node: 'edge-1' })).accepted);
  await eventually(async () => assert.strictEqual((await client.getAll().prefix(keys.offloadingPrefix('nav')).keys()).length, 2));
});
