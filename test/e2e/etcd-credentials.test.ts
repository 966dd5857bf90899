// etcd refusing statemanager's own credentials (a wrong or changed password, a user without the
// role): nothing is written, and nothing will be until an operator acts. statemanager must say
// that — not "etcd unreachable", not "internal error, outcome unknown" — in its log, its
// readiness reason and its gRPC answers. On an etcd of this file's own with authentication on.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../domain/keys.js';
import { parseConfig } from '../../src/config/config.js';
import { createEtcdClient } from '../../src/etcd/client.js';
import { asStoreError, classifyEtcdError, EtcdRefusedError } from '../../src/etcd/errors.js';
import { EtcdProbe } from '../../src/etcd/probe.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { captureLogger, grpcError, sendContainerList, sendStateChange, startTestServer, stopAll } from '../grpc/_support.js';

let etcd: EtcdServer;
let admin: Etcd3;
const clients: Etcd3[] = [];

test.before(async () => {
  etcd = await startEtcd();
  const bootstrap = etcd.client();
  await bootstrap.role('root').create();
  await bootstrap.user('root').create('right');
  await bootstrap.user('root').addRole('root');
  await bootstrap.auth.authEnable({});
  admin = client('root', 'right');
});

test.after.always(async () => {
  await stopAll();
  for (const c of clients) c.close();
  await etcd?.stop();
});

function client(username: string, password: string): Etcd3 {
  const c = createEtcdClient(parseConfig({ etcd: { endpoints: [etcd.endpoint], requestTimeout: 2000, username, password } }).etcd);
  clients.push(c);
  return c;
}

test('etcd\'s refusals of credentials and permissions are "refused"; a stale token and an unreachable etcd are not', (t) => {
  for (const m of ['etcdserver: authentication failed, invalid user ID or password', 'etcdserver: permission denied', 'etcdserver: user name is empty', 'etcdserver: user name not found']) {
    const err = new Error(`3 INVALID_ARGUMENT: ${m}`);
    t.is(classifyEtcdError(err), 'refused', m);
    t.true(asStoreError(err) instanceof EtcdRefusedError, m);
  }
  t.not(classifyEtcdError(new Error('3 INVALID_ARGUMENT: etcdserver: invalid auth token')), 'refused', 'the clients authenticate again and resend');
  t.is(classifyEtcdError(new Error('14 UNAVAILABLE: No connection established')), 'unavailable');
});

test.serial('a state write with a wrong password is EtcdRefusedError (backs off like any failure), and nothing is written', async (t) => {
  const keys = new KeyLayout('/refused-store');
  const store = new EtcdStateStore({ client: client('root', 'wrong'), keys, historyLength: 5, requestTimeoutMs: 2000 });
  const err = await t.throwsAsync(
    store.writeState({ kind: 'model', name: 'm', to: 'Running', expected: undefined, history: { kind: 'model', name: 'm', from: null, to: 'Running', at: 'now', reason: 'test', source: 'test', drawn: true } }),
    { instanceOf: EtcdRefusedError },
  );
  t.regex(err!.message, /refused statemanager's credentials or permissions .*nothing was written/);
  t.is((err as unknown as { retryAfterMs?: number }).retryAfterMs, undefined, 'no fast retry: only an operator heals it');
  t.is(await admin.get(keys.stateKey('model', 'm')).string(), null);
});

test.serial('the probe names the refusal (once, as an error; /readyz gives it as the reason), and a fixed password is seen at the next look', async (t) => {
  await admin.user('prober').create('old');
  await admin.user('prober').addRole('root');
  const logger = captureLogger();
  const probe = new EtcdProbe({ client: client('prober', 'new'), key: '/probe', logger, intervalMs: 30 });
  probe.start();
  t.teardown(() => probe.stop());
  await eventually(() => assert.strictEqual(probe.credentialsRefused(), true));
  // Several more looks, each refused again.
  await new Promise((r) => setTimeout(r, 1500));
  t.false(probe.reachable());
  t.true(probe.knownUnreachable(), 'cached reads do not wait on etcd meanwhile');
  const refused = logger.lines.filter((l) => l.message === "etcd refused statemanager's credentials or permissions");
  t.is(refused.length, 1, 'one line, not one per look');
  t.is(refused[0]!.level, 'error');
  t.regex(String(refused[0]!.meta.fix), /ETCD_PASSWORD/);
  t.is(logger.lines.filter((l) => l.message === 'etcd unreachable').length, 0);
  // An operator sets the password the process was given.
  await admin.user('prober').setPassword('new');
  await eventually(() => assert.strictEqual(probe.reachable(), true), { timeoutMs: 70_000 });
  t.false(probe.credentialsRefused());
  t.is(logger.lines.filter((l) => l.message === 'etcd reachable').length, 1);
});

test.serial('gRPC writes with statemanager\'s etcd password wrong are refused saying why, not "internal error, outcome unknown"', async (t) => {
  const server = await startTestServer(client('root', 'wrong'));
  const c = server.client();
  const res = await sendStateChange(c, { resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 's', current_state: '', target_state: 'Idle', transition_id: 't1', timestamp_ns: 1, source: 'test' });
  t.is(res.error_code, 'ERROR_CODE_RESOURCE_UNAVAILABLE');
  t.regex(res.message, /etcd refused statemanager's credentials or permissions; nothing was written/);
  t.regex(res.error_details, /user, password and role/);
  const err = await grpcError(
    sendContainerList(c, { node_name: 'n1', containers: [{ id: 'c1', names: ['c1'], image: 'i', state: { Status: 'running' }, config: {}, annotation: { model: 'm' }, stats: {} }] }),
  );
  t.is(err.code, grpc.status.UNAVAILABLE);
  t.regex(err.details, /refused statemanager's credentials.*nothing was written; send the list again later/);
  t.is((await admin.getAll().prefix(server.keys.containerPrefix('n1')).keys()).length, 0);
  t.is(await admin.get(server.keys.stateKey('scenario', 's')).string(), null);
  t.true(server.logger.lines.some((l) => l.level === 'error' && l.message === 'SendChangedContainerList failed'), 'a configuration fault is an error, not a caller\'s warning');
});
