// etcd out of space (its NOSPACE alarm): every write is refused, reads and deletes still work,
// until an operator frees space and disarms it. statemanager must say so once, show it, keep its
// log bounded, refuse gRPC writes clearly, and write every state as soon as the alarm goes — not
// when each key's backoff ends. The alarm is raised and cleared through etcd's maintenance API
// (as `etcdctl alarm disarm` does), on an etcd of this file's own.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { StateManagerApp } from '../../src/app.js';
import { KeyLayout } from '../../domain/keys.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { classifyEtcdError, EtcdNoSpaceError } from '../../src/etcd/errors.js';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { startApp, testConfig } from '../helpers/app.js';
import { createEtcdClient } from '../../src/etcd/client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { captureLogger, grpcError, sendContainerList, sendStateChange, startTestServer, stopAll } from '../grpc/_support.js';

let etcd: EtcdServer;
let ac: FakeActionController;
const apps: StateManagerApp[] = [];

test.before(async () => {
  etcd = await startEtcd();
  ac = await startActionController();
});

/** A client as the program makes it (no circuit breaker: etcd3's default one stays open after a refused write). */
function programClient(): Etcd3 {
  const c = createEtcdClient(testConfig(etcd, ac.addr).etcd);
  clients.push(c);
  return c;
}
const clients: Etcd3[] = [];

test.after.always(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await stopAll();
  await ac?.stop();
  for (const c of clients) c.close();
  await etcd?.stop();
});

async function alarm(client: Etcd3, action: 'Activate' | 'Deactivate'): Promise<void> {
  const memberID = (await client.maintenance.status({})).header.member_id;
  await client.maintenance.alarm({ action, memberID, alarm: 'Nospace' });
}

function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

test.serial('a write refused for want of space is EtcdNoSpaceError, not "unavailable" (no fast retry); deletes still go through', async (t) => {
  const client = programClient();
  const keys = new KeyLayout('/nospace-store');
  const store = new EtcdStateStore({ client, keys, historyLength: 5, requestTimeoutMs: 3000 });
  await store.writeState({ kind: 'model', name: 'm', to: 'Running', expected: undefined, history: { kind: 'model', name: 'm', from: null, to: 'Running', at: 'now', reason: 'test', source: 'test', drawn: true } });
  await alarm(client, 'Activate');
  t.teardown(() => alarm(client, 'Deactivate'));
  const stored = { modRevision: Number((await client.get(keys.stateKey('model', 'm')).exec()).kvs[0]!.mod_revision), version: 1 };
  const err = await t.throwsAsync(
    store.writeState({ kind: 'model', name: 'm', to: 'Exited', expected: stored, history: { kind: 'model', name: 'm', from: 'Running', to: 'Exited', at: 'now', reason: 'test', source: 'test', drawn: true } }),
    { instanceOf: EtcdNoSpaceError },
  );
  t.regex(err!.message, /out of space \(NOSPACE alarm\), nothing was written/);
  t.is((err as unknown as { retryAfterMs?: number }).retryAfterMs, undefined, 'backs off like any failure');
  t.is(classifyEtcdError(err), 'no-space');
  t.is(await client.get(keys.stateKey('model', 'm')).string(), 'Running');
  t.true((await store.deleteState({ kind: 'model', name: 'm', expected: stored })).committed, 'a delete is not a write etcd refuses');
  await alarm(client, 'Deactivate');
});

test.serial('gRPC writes during the alarm are refused saying why, and nothing is written', async (t) => {
  const client = programClient();
  const server = await startTestServer(client);
  const c = server.client();
  await alarm(client, 'Activate');
  t.teardown(() => alarm(client, 'Deactivate'));
  const res = await sendStateChange(c, { resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 's', current_state: '', target_state: 'Idle', transition_id: 't1', timestamp_ns: 1, source: 'test' });
  t.is(res.error_code, 'ERROR_CODE_RESOURCE_UNAVAILABLE');
  t.regex(res.message, /out of space \(its NOSPACE alarm is raised\); nothing was written/);
  t.regex(res.error_details, /disarmed/);
  const err = await grpcError(
    sendContainerList(c, { node_name: 'n1', containers: [{ id: 'c1', names: ['c1'], image: 'i', state: { Status: 'running' }, config: {}, annotation: { model: 'm' }, stats: {} }] }),
  );
  t.is(err.code, grpc.status.UNAVAILABLE);
  t.regex(err.details, /out of space.*nothing was written; send the list again later/);
  t.is((await client.getAll().prefix(server.keys.containerPrefix('n1')).keys()).length, 0);
  t.is(await client.get(server.keys.stateKey('scenario', 's')).string(), null);
  await alarm(client, 'Deactivate');
  t.is((await sendStateChange(c, { resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 's', current_state: '', target_state: 'Idle', transition_id: 't2', timestamp_ns: 1, source: 'test' })).error_code, 'ERROR_CODE_SUCCESS');
});

test.serial('the controller during the alarm: logged once, shown as a gauge, failures bounded in the log; every state written within seconds of the disarm, long before the keys\' backoff', async (t) => {
  const models = 30;
  const w = new FleetWriter(programClient(), '/nospace-app');
  for (let i = 0; i < models; i++) {
    await w.packageDef(`p${i}`, [`m${i}`]);
    await w.container('n1', `c${i}`, `m${i}`, 'running');
  }
  const logger = captureLogger();
  // A failed key waits 10 s before its first retry: only the probe's resync can write it sooner.
  const app = await startApp(etcd, ac.addr, { keyPrefix: w.prefix, controller: { backoffBase: '10s', backoffCap: '60s' } }, { logger });
  apps.push(app);
  const running = Object.fromEntries(Array.from({ length: models }, (_, i) => [`m${i}`, 'Running']));
  await eventually(async () => assert.deepStrictEqual(await w.states('model'), running), { timeoutMs: 20_000 });

  await alarm(w.client, 'Activate');
  await eventually(async () => assert.ok(logger.lines.some((l) => l.message === 'etcd alarm raised')), { timeoutMs: 10_000 });
  const raised = logger.lines.filter((l) => l.message === 'etcd alarm raised');
  t.is(raised.length, 1);
  t.like(raised[0], { level: 'error', meta: { alarm: 'NOSPACE', members: 1 } });
  t.is(series(await app.metrics.registry.metrics(), 'statemanager_etcd_alarms{alarm="NOSPACE"}'), 1);
  t.true(app.ready().ok, 'reads still work: ready');

  // Deletes go through while writes do not: every model's containers go, no model state can follow.
  for (let i = 0; i < models; i++) await w.removeContainer('n1', `c${i}`);
  await eventually(async () => assert.ok((series(await app.metrics.registry.metrics(), 'controller_runtime_reconcile_errors_total{controller="model"}') ?? 0) >= models), { timeoutMs: 10_000 });
  t.deepEqual(await w.states('model'), running, 'nothing written during the alarm');
  const failedLines = logger.lines.filter((l) => l.message === 'reconcile failed');
  t.true(failedLines.length <= 10, `${failedLines.length} "reconcile failed" lines for ${models} failed keys`);
  t.true(failedLines.length >= 1);
  t.regex(String(failedLines[0]!.meta.error), /out of space \(NOSPACE alarm\)/);

  await alarm(w.client, 'Deactivate');
  const disarmedAt = Date.now();
  const exited = Object.fromEntries(Array.from({ length: models }, (_, i) => [`m${i}`, 'Exited']));
  await eventually(async () => assert.deepStrictEqual(await w.states('model'), exited), { timeoutMs: 20_000, intervalMs: 50 });
  const tookMs = Date.now() - disarmedAt;
  t.true(tookMs < 6_000, `every model written ${tookMs} ms after the disarm (a failed key's own retry comes 10 s after its failure)`);
  t.true(logger.lines.some((l) => l.message === 'etcd alarm cleared' && l.meta.alarm === 'NOSPACE'));
  t.true(logger.lines.some((l) => l.message === 'resync' && l.meta.reason === 'etcd alarm cleared'));
  t.is(series(await app.metrics.registry.metrics(), 'statemanager_etcd_alarms{alarm="NOSPACE"}'), 0);
  const exitedPackages = Object.fromEntries(Array.from({ length: models }, (_, i) => [`p${i}`, 'Exited']));
  await eventually(async () => assert.deepStrictEqual(await w.states('package'), exitedPackages), { timeoutMs: 20_000 });
});
