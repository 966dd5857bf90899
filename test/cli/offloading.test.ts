// `statemanager describe model` shows the model's last TriggerOffloading requests (from etcd,
// where statemanager records them), with outcome and caller; over gRPC it says it cannot.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import { EtcdOffloadingStore } from '../../src/etcd/offloading-store.js';
import type { OffloadingRecord } from '../../src/offloading/record.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { ago, cli, NOW } from './_harness.js';

let etcd: EtcdServer;
const PREFIX = '/cli-offload';

test.before(async () => {
  etcd = await startEtcd();
  const w = new FleetWriter(etcd.client(), PREFIX);
  await w.packageDef('navigation', ['nav']);
  await w.packageDef('media', ['player']);
  const store = new EtcdOffloadingStore({ client: etcd.client(), keys: new KeyLayout(PREFIX), requestTimeoutMs: 3000, perModel: 20 });
  const base: OffloadingRecord = {
    at: ago(600_000),
    model: 'nav',
    package: 'navigation',
    scenario: 'navigation-scenario',
    source: 'edge-1',
    target: 'edge-2',
    policy: 'cpu-threshold',
    reason: 'CPU 75% > 50%',
    identity: 'cn:policymanager',
    callers: 1,
    outcome: 'accepted',
    message: "Model 'nav' successfully migrated from 'edge-1' to 'edge-2'",
    transitionId: 'offload-nav-1',
    durationMs: 12,
  };
  // Records are written while the model has a state; the state is removed after, so that describe
  // shows the records of a model with none (as after statemanager's history was cleared).
  const stateKey = new KeyLayout(PREFIX).stateKey('model', 'nav');
  await etcd.client().put(stateKey).value('Running');
  await store.add(base);
  await store.add({ ...base, at: ago(300_000), source: 'edge-2', target: 'edge-3', outcome: 'unavailable', callers: 3, message: 'the ActionController at 127.0.0.1:47001 cannot be reached (No connection established); the model was not moved', transitionId: 'offload-nav-edge-2-2' });
  await store.add({ ...base, at: ago(60_000), source: 'edge-2', target: 'edge-1', outcome: 'rejected', identity: 'token:pm\u001b[2J', policy: '', message: 'Failed to offload: full', transitionId: 'offload-nav-3' });
  await etcd.client().delete().key(stateKey);
});

test.after.always(async () => {
  await etcd?.stop();
});

const sm = (argv: string[]) => cli(argv, { now: NOW, env: { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: PREFIX } });

test('describe model: the last offloading requests with outcome and caller, the caller text escaped', async (t) => {
  const r = await sm(['describe', 'model', 'nav', '--history', '2']);
  t.is(r.stderr, '');
  t.is(r.code, 0);
  t.is(
    r.stdout,
    [
      'model/nav   <none>   no recorded transition',
      '   packages: navigation',
      '   containers: none',
      '   history: none recorded',
      '   offloading requests (last 2 of 3):',
      '     5m ago   edge-2 -> edge-3   unavailable   by cn:policymanager (+2 identical)   policy cpu-threshold   offload-nav-edge-2-2   the ActionController at 127.0.0.1:47001 cannot be reached (No connection established); the model was not moved',
      '     1m ago   edge-2 -> edge-1   rejected      by token:pm\\u{1b}[2J                                        offload-nav-3          Failed to offload: full',
      '',
    ].join('\n'),
  );
});

test('describe model -o json: the records as data; a model without any has none', async (t) => {
  const r = await sm(['describe', 'model', 'nav', '-o', 'json']);
  const d = JSON.parse(r.stdout) as { offloading: OffloadingRecord[]; offloadingTotal: number };
  t.is(d.offloadingTotal, 3);
  t.deepEqual(d.offloading.map((o) => [o.outcome, o.identity, o.transitionId]), [
    ['accepted', 'cn:policymanager', 'offload-nav-1'],
    ['unavailable', 'cn:policymanager', 'offload-nav-edge-2-2'],
    ['rejected', 'token:pm\u001b[2J', 'offload-nav-3'],
  ]);
  const other = JSON.parse((await sm(['describe', 'model', 'player', '-o', 'json'])).stdout) as { offloading: unknown[]; offloadingTotal: number };
  t.deepEqual([other.offloading, other.offloadingTotal], [[], 0]);
  t.false((await sm(['describe', 'model', 'player'])).stdout.includes('offloading'));
});

test('describe package: each model shows its offloading requests', async (t) => {
  const r = await sm(['describe', 'package', 'navigation', '--history', '1']);
  t.regex(r.stdout, /offloading requests \(last 1 of 3\):\n.*1m ago {3}edge-2 -> edge-1 {3}rejected/);
});
