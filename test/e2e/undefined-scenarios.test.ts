// A requested absent → Idle needs no scenario definition (the contract checks none), so one
// caller could make statemanager hold scenario states without end. The whole program, on a real
// etcd and gRPC: below the limit (grpc.limits.undefinedScenarioStates) such a state is created,
// at it the next one is refused with ERROR_CODE_RESOURCE_UNAVAILABLE and nothing written, while
// defined scenarios and existing states are never refused; a definition written, or a state
// deleted, frees a place. The gauge follows.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { StateManagerApp } from '../../src/app.js';
import type { StateManagerConnectionClient } from '../../src/generated/statemanager/StateManagerConnection.js';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startApp } from '../helpers/app.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { captureLogger, proto, scenarioChange as change, sendStateChange } from '../grpc/_support.js';

let etcd: EtcdServer;
let ac: FakeActionController;

test.before(async () => {
  etcd = await startEtcd();
  ac = await startActionController();
});

test.after.always(async () => {
  await ac?.stop();
  await etcd?.stop();
});


function gauge(text: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith('statemanager_scenario_states_without_definition '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

test('scenario states without a definition are bounded; defined scenarios and existing states are not', async (t) => {
  const w = new FleetWriter(etcd.client(), '/undef-scn');
  await w.scenarioDef('defined-0', 'p');
  await w.scenarioDef('defined-1', 'p');
  const logger = captureLogger();
  const app: StateManagerApp = await startApp(etcd, ac.addr, { keyPrefix: w.prefix, grpc: { addr: '127.0.0.1:0', limits: { undefinedScenarioStates: 3 } }, http: { addr: '127.0.0.1:0' } }, { logger });
  t.teardown(() => app.stop());
  const { grpc: port } = await app.serve();
  const c: StateManagerConnectionClient = new proto.statemanager.StateManagerConnection(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => c.close());
  const held = async () => gauge(await app.metrics.registry.metrics());
  const created = async (name: string) => (await sendStateChange(c, change(name, 'Idle'))).error_code;
  // The count is the caches': each creation is waited for, as a caller's next request would be.
  const seen = async (n: number) => eventually(async () => assert.strictEqual(await held(), n));

  t.is(await held(), 0);
  t.is(await created('u0'), 'ERROR_CODE_SUCCESS');
  await seen(1);
  t.is(await created('u1'), 'ERROR_CODE_SUCCESS');
  await seen(2);
  t.is(await created('u2'), 'ERROR_CODE_SUCCESS', 'below the limit (2 held, limit 3)');
  await seen(3);
  const refused = await sendStateChange(c, change('u3', 'Idle'));
  t.is(refused.error_code, 'ERROR_CODE_RESOURCE_UNAVAILABLE', 'at the limit');
  t.regex(refused.error_details, /scenario u3 has no definition \(Scenario\/u3\) and 3 scenario states without one are held, the limit \(grpc\.limits\.undefinedScenarioStates\); nothing was written/);
  t.is(await w.client.get(w.keys.stateKey('scenario', 'u3')).string(), null);
  t.is(await created('u4'), 'ERROR_CODE_RESOURCE_UNAVAILABLE', 'beyond it too');
  t.true(logger.lines.some((l) => l.message === 'scenario state refused: too many without a definition' && l.meta.name === 'u3'));

  t.is(await created('defined-0'), 'ERROR_CODE_SUCCESS', 'a defined scenario is never refused');
  t.is(await created('defined-1'), 'ERROR_CODE_SUCCESS');
  t.is((await sendStateChange(c, change('u0', 'Waiting', 'Idle'))).error_code, 'ERROR_CODE_SUCCESS', 'an existing state still moves');
  t.is(await held(), 3, 'defined scenarios are not counted');

  // A definition for one of them frees a place; so does a state deleted.
  await w.scenarioDef('u1', 'p');
  await seen(2);
  t.is(await created('u3'), 'ERROR_CODE_SUCCESS');
  await seen(3);
  t.is(await created('u5'), 'ERROR_CODE_RESOURCE_UNAVAILABLE');
  await w.client.delete().key(w.keys.stateKey('scenario', 'u2'));
  await seen(2);
  t.is(await created('u5'), 'ERROR_CODE_SUCCESS');
  // The definition deleted: its state counts again.
  await w.client.delete().key(w.keys.scenarioDefKey('u1'));
  await seen(4);
  t.is(await created('u6'), 'ERROR_CODE_RESOURCE_UNAVAILABLE');
});
