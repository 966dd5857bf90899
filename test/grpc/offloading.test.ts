// TriggerOffloading (contract section 3) over real gRPC against a real etcd: a policy manager's
// client and an ActionController both built from Pullpiri's 2026 protos (test/fixtures), the
// package definitions read by a real statemanager's caches (the Fleet of an in-process app).
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { KeyLayout } from '../../domain/keys.js';
import { GrpcActionControllerClient } from '../../src/action-controller/client.js';
import { EtcdOffloadingStore } from '../../src/etcd/offloading-store.js';
import { type OffloadingOutcome, type PackageModels } from '../../src/grpc/offloading.js';
import { notSent } from '../../src/grpc/not-sent.js';
import { parseGrpcServerConfig, type GrpcServerConfigInput } from '../../src/grpc/config.js';
import { authRuleSchema } from '../../src/auth/config.js';
import { Authorizer } from '../../src/auth/policy.js';
import type { StateManagerApp } from '../../src/app.js';
import { startApp } from '../helpers/app.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { startStallProxy } from '../helpers/stall-proxy.js';
import { PolicyManagerClient, pullpiriSuccess, startPullpiriActionController, type OffloadingRequest, type PullpiriActionController } from '../helpers/pullpiri-2026.js';
import { bearer, startTestServer, stopAll, uniquePrefix, type TestServer } from './_support.js';

let etcd: EtcdServer;
let ac: PullpiriActionController;
const apps: StateManagerApp[] = [];
const closers: (() => void)[] = [];

test.before(async () => {
  etcd = await startEtcd();
  ac = await startPullpiriActionController();
});

test.after.always(async () => {
  for (const c of closers) c();
  await stopAll();
  await Promise.all(apps.map((a) => a.stop()));
  await ac?.stop();
  await etcd?.stop();
});

const NAV: Required<OffloadingRequest> = {
  scenario_name: 'navigation-scenario',
  package_name: 'navigation',
  model_name: 'nav',
  source_node: 'edge-1',
  target_node: 'edge-2',
  policy_name: 'cpu-threshold',
  reason: 'CPU threshold exceeded: 75% > 50%',
};

interface Setup {
  server: TestServer;
  keys: KeyLayout;
  client(token?: string): PolicyManagerClient;
  outcomes: OffloadingOutcome[];
  store: EtcdOffloadingStore;
}

/**
 * A server with offloading against `acAddr` (this file's ActionController by default), the
 * package definitions `navigation: [nav, nav-route]` and `media: [media-player]` in a real app's caches.
 */
async function setup(o: { config?: GrpcServerConfigInput; acAddr?: string; acTimeoutMs?: number; acOffloadTimeoutMs?: number; perModel?: number; definitions?: PackageModels } = {}): Promise<Setup> {
  const prefix = uniquePrefix();
  const keys = new KeyLayout(prefix);
  const w = new FleetWriter(etcd.client(), prefix);
  await w.packageDef('navigation', ['nav', 'nav-route']);
  await w.packageDef('media', ['media-player']);
  const app = await startApp(etcd, ac.addr, { keyPrefix: prefix });
  apps.push(app);
  await eventually(async () => assert.ok(app.fleet.modelsOfPackage('media')));
  const acClient = new GrpcActionControllerClient({ addr: o.acAddr ?? ac.addr, timeoutMs: o.acTimeoutMs ?? 5000, ...(o.acOffloadTimeoutMs !== undefined ? { offloadTimeoutMs: o.acOffloadTimeoutMs } : {}) });
  closers.push(() => acClient.close());
  const store = new EtcdOffloadingStore({ client: etcd.client(), keys, requestTimeoutMs: 3000, perModel: o.perModel ?? 20 });
  const outcomes: OffloadingOutcome[] = [];
  const server = await startTestServer(etcd.client(), o.config ?? {}, {
    keys,
    offloading: { actionController: acClient, records: store, definitions: o.definitions ?? app.fleet, counted: (x) => void outcomes.push(x) },
  });
  return {
    server,
    keys,
    outcomes,
    store,
    client(token) {
      const c = new PolicyManagerClient(server.target, () => (token ? bearer(token) : new grpc.Metadata()));
      closers.push(() => c.close());
      return c;
    },
  };
}

// Each test changes the ActionController's behaviour; they run one at a time.
test.beforeEach(() => {
  ac.behaviour = pullpiriSuccess;
});

test.serial('accepted: the request reaches OffloadModel with its seven fields; the answer is the ActionController\'s, recorded, logged and counted', async (t) => {
  const s = await setup();
  const before = ac.offloads.length;
  const res = await s.client().trigger(NAV);
  t.deepEqual(res, {
    accepted: true,
    message: "Model 'nav' successfully migrated from 'edge-1' to 'edge-2'",
    transition_id: 'offload-nav-1767225600000',
  });
  t.deepEqual(ac.offloads.slice(before), [NAV]);
  t.deepEqual(s.outcomes, ['accepted']);
  const line = s.server.logger.lines.find((l) => l.message === 'offloading request');
  t.is(line?.level, 'info');
  t.like(line?.meta, { identity: 'anonymous', outcome: 'accepted', model: '"nav"', source: '"edge-1"', target: '"edge-2"', transitionId: 'offload-nav-1767225600000', shared: false, answer: "Model 'nav' successfully migrated from 'edge-1' to 'edge-2'" });
  await eventually(async () => assert.strictEqual((await s.store.list('nav')).length, 1));
  t.like((await s.store.list('nav'))[0], {
    model: 'nav',
    package: 'navigation',
    scenario: 'navigation-scenario',
    source: 'edge-1',
    target: 'edge-2',
    policy: 'cpu-threshold',
    reason: NAV.reason,
    identity: 'anonymous',
    callers: 1,
    outcome: 'accepted',
    transitionId: 'offload-nav-1767225600000',
  });
  t.deepEqual(s.server.metrics.calls, [['TriggerOffloading', 'OK']]);
});

test.serial('rejected by the ActionController: accepted false with its message; an empty transition id is minted as Pullpiri does', async (t) => {
  const s = await setup();
  ac.behaviour = () => ({ answer: { success: false, message: 'Failed to offload: node edge-2 is full', transition_id: '' } });
  const before = Date.now();
  const res = await s.client().trigger(NAV);
  t.false(res.accepted);
  t.is(res.message, 'Failed to offload: node edge-2 is full');
  t.regex(res.transition_id, /^offload-nav-edge-1-\d{13}$/);
  t.true(Number(res.transition_id.split('-').pop()) >= before);
  t.deepEqual(s.outcomes, ['rejected']);
  // An id unfit to show (control characters) is replaced the same way.
  ac.behaviour = () => ({ answer: { success: true, message: 'ok', transition_id: 'id\u001b[2J' } });
  t.regex((await s.client().trigger(NAV)).transition_id, /^offload-nav-edge-1-\d{13}$/);
});

// Every refusal before the ActionController, with its exact answer; nothing is sent or stored.
const LONG = 'x'.repeat(254);
const REFUSALS: [string, OffloadingRequest, string, OffloadingOutcome][] = [
  ['model_name empty', { ...NAV, model_name: '' }, 'model_name is empty', 'invalid'],
  ['model_name with /', { ...NAV, model_name: 'a/b' }, "model_name contains '/'", 'invalid'],
  ['model_name with a control character', { ...NAV, model_name: 'nav\u001b[2J' }, 'model_name contains control characters', 'invalid'],
  ['model_name with a bidi override', { ...NAV, model_name: 'nav\u202e' }, 'model_name contains bidirectional override characters', 'invalid'],
  ['model_name with an invisible character', { ...NAV, model_name: 'na\u200bv' }, 'model_name contains an invisible or separator character (U+200B)', 'invalid'],
  ['model_name with surrounding spaces', { ...NAV, model_name: ' nav' }, 'model_name has leading or trailing spaces', 'invalid'],
  ['model_name over 253 bytes', { ...NAV, model_name: LONG }, 'model_name is 254 bytes long, more than 253', 'invalid'],
  ['package_name empty', { ...NAV, package_name: '' }, 'package_name is empty', 'invalid'],
  ['package_name with /', { ...NAV, package_name: 'nav/igation' }, "package_name contains '/'", 'invalid'],
  ['source_node empty', { ...NAV, source_node: '' }, 'source_node is empty', 'invalid'],
  ['source_node with a control character', { ...NAV, source_node: 'edge-1\n' }, 'source_node contains control characters', 'invalid'],
  ['target_node empty', { ...NAV, target_node: '' }, 'target_node is empty', 'invalid'],
  ['target_node with an invisible character', { ...NAV, target_node: 'edge-2\u2060' }, 'target_node contains an invisible or separator character (U+2060)', 'invalid'],
  ['target_node over 253 bytes', { ...NAV, target_node: LONG }, 'target_node is 254 bytes long, more than 253', 'invalid'],
  ['scenario_name with /', { ...NAV, scenario_name: 'a/b' }, "scenario_name contains '/'", 'invalid'],
  ['policy_name over 253 bytes', { ...NAV, policy_name: LONG }, 'policy_name is 254 bytes long, more than 253', 'invalid'],
  ['policy_name with a control character', { ...NAV, policy_name: 'cpu\u0007' }, 'policy_name contains control characters', 'invalid'],
  ['reason over 1024 bytes', { ...NAV, reason: 'r'.repeat(1025) }, 'reason is 1025 bytes long, more than 1024', 'invalid'],
  ['reason with a newline', { ...NAV, reason: 'CPU high\n[fake] log line' }, 'reason contains control characters', 'invalid'],
  ['source equal to target', { ...NAV, target_node: 'edge-1' }, 'source_node and target_node are both "edge-1": nothing to move', 'invalid'],
  ['unknown package', { ...NAV, package_name: 'radio' }, 'package_name "radio": no such package (no valid definition Package/radio)', 'not_found'],
  ['package not listing the model', { ...NAV, package_name: 'media' }, 'model_name "nav": package "media" does not list this model', 'not_found'],
];

test.serial('every refusal names its field, answers accepted false, and neither calls the ActionController nor stores anything', async (t) => {
  const s = await setup();
  const client = s.client();
  const before = ac.offloads.length;
  for (const [title, req, message, outcome] of REFUSALS) {
    const res = await client.trigger(req);
    t.false(res.accepted, title);
    t.is(res.message, message, title);
    t.regex(res.transition_id, /^offload-[0-9a-f-]{36}$/, title);
    t.is(s.outcomes.at(-1), outcome, title);
  }
  t.is(ac.offloads.length, before);
  t.deepEqual(await etcd.client().getAll().prefix(s.keys.offloading).keys(), []);
  // Refusals of authorized requests are logged at warn with the caller, at most 10 of a kind per 10 s.
  const byOutcome = new Map<string, number>();
  for (const [, , , o] of REFUSALS) byOutcome.set(o, (byOutcome.get(o) ?? 0) + 1);
  const expected = [...byOutcome.values()].reduce((sum, n) => sum + Math.min(n, 10), 0);
  t.true(byOutcome.get('invalid')! > 10, 'more invalid ones than one interval logs');
  t.is(s.server.logger.lines.filter((l) => l.message === 'offloading request' && l.level === 'warn' && l.meta.identity === 'anonymous').length, expected);
  for (let i = 0; i < 30; i++) await client.trigger(REFUSALS.find(([, , , o]) => o === 'not_found')![1]);
  const notFound = s.server.logger.lines.filter((l) => l.message === 'offloading request' && l.meta.outcome === 'not_found');
  t.is(notFound.length, 10, `${REFUSALS.filter(([, , , o]) => o === 'not_found').length} + 30 refused as not found: 10 lines`);
});

test.serial('bounds: reason and policy_name below, at and just past their limits (and the configured reason limit)', async (t) => {
  const s = await setup({ config: { limits: { offloadingReasonBytes: 16 } } });
  const client = s.client();
  t.true((await client.trigger({ ...NAV, reason: 'r'.repeat(15) })).accepted);
  t.true((await client.trigger({ ...NAV, reason: 'r'.repeat(16) })).accepted);
  t.is((await client.trigger({ ...NAV, reason: 'r'.repeat(17) })).message, 'reason is 17 bytes long, more than 16');
  // Bytes, not characters: 5 × 3-byte characters are 15 bytes, 6 are 18.
  t.true((await client.trigger({ ...NAV, reason: '€'.repeat(5) })).accepted);
  t.is((await client.trigger({ ...NAV, reason: '€'.repeat(6) })).message, 'reason is 18 bytes long, more than 16');
  t.true((await client.trigger({ ...NAV, reason: '', policy_name: 'p'.repeat(252) })).accepted);
  t.true((await client.trigger({ ...NAV, reason: '', policy_name: 'p'.repeat(253) })).accepted);
  t.is((await client.trigger({ ...NAV, reason: '', policy_name: 'p'.repeat(254) })).message, 'policy_name is 254 bytes long, more than 253');
  t.true((await client.trigger({ ...NAV, reason: '', target_node: 'n'.repeat(253) })).accepted);
  t.true((await client.trigger({ ...NAV, reason: '', model_name: 'nav-route', package_name: 'navigation' })).accepted);
});

test.serial('bounds: the default reason limit, 1023 and 1024 bytes accepted (1025 is refused above); the answer means recorded', async (t) => {
  const s = await setup();
  const client = s.client();
  t.true((await client.trigger({ ...NAV, reason: 'r'.repeat(1023) })).accepted);
  t.true((await client.trigger({ ...NAV, reason: 'r'.repeat(1024) })).accepted);
  // Without a slow etcd the record is stored before the answer.
  t.deepEqual((await s.store.list('nav')).map((r) => r.reason.length), [1023, 1024]);
});

test('the TriggerOffloading permission: only it or * allows offloading; models patterns; unknown fields refused', (t) => {
  const rules = [
    { identities: ['cn:pm'], allow: [{ method: 'TriggerOffloading' }] },
    { identities: ['cn:nav'], allow: [{ method: 'TriggerOffloading', models: ['nav-*', 'radar'] }] },
    { identities: ['cn:all'], allow: [{ method: '*' }] },
    { identities: ['cn:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }, { method: 'read' }, { method: 'SendStateChange' }] },
  ].map((r) => authRuleSchema.parse(r));
  const authz = new Authorizer(rules);
  const may = (name: string, model: string) => authz.authorize({ identity: name, names: [name], via: 'certificate' }, { method: 'TriggerOffloading', model }).allowed;
  t.true(may('cn:pm', 'anything'));
  t.true(may('cn:all', 'anything'));
  t.true(may('cn:nav', 'nav-map'));
  t.true(may('cn:nav', 'radar'));
  t.false(may('cn:nav', 'nav'));
  t.false(may('cn:nav', 'radar2'));
  t.false(may('cn:node-edge-1', 'nav-map'));
  t.false(may('cn:stranger', 'nav-map'));
  t.throws(() => authRuleSchema.parse({ identities: ['cn:pm'], allow: [{ method: 'TriggerOffloading', nodeName: 'x' }] }));
  t.throws(() => authRuleSchema.parse({ identities: ['cn:pm'], allow: [{ method: 'TriggerOffloading', models: [] }] }));
  t.throws(() => authRuleSchema.parse({ identities: ['cn:pm'], allow: [{ method: 'TriggerOffloading', models: ['a*b*'] }] }));
});

test('configuration bounds: offloadingRecordsPerModel 1..1000, offloadingReasonBytes 1..16384', (t) => {
  const limits = (l: Record<string, number>) => () => parseGrpcServerConfig({ limits: l });
  t.is(parseGrpcServerConfig({}).limits.offloadingRecordsPerModel, 20);
  t.is(parseGrpcServerConfig({}).limits.offloadingReasonBytes, 1024);
  t.notThrows(limits({ offloadingRecordsPerModel: 1 }));
  t.notThrows(limits({ offloadingRecordsPerModel: 1000 }));
  t.throws(limits({ offloadingRecordsPerModel: 0 }));
  t.throws(limits({ offloadingRecordsPerModel: 1001 }));
  t.notThrows(limits({ offloadingReasonBytes: 16384 }));
  t.throws(limits({ offloadingReasonBytes: 16385 }));
  t.throws(limits({ offloadingReasonBytes: 0 }));
});

test.serial('records per model: below, at and past the bound, the oldest go first; other models keep theirs', async (t) => {
  const s = await setup({ perModel: 3 });
  const client = s.client();
  const reasons = async (model: string) => (await s.store.list(model)).map((r) => r.reason);
  for (let i = 1; i <= 2; i++) await client.trigger({ ...NAV, reason: `r${i}` });
  await eventually(async () => assert.deepStrictEqual(await reasons('nav'), ['r1', 'r2']));
  await client.trigger({ ...NAV, reason: 'r3' });
  await eventually(async () => assert.deepStrictEqual(await reasons('nav'), ['r1', 'r2', 'r3']));
  await client.trigger({ ...NAV, reason: 'r4' });
  await eventually(async () => assert.deepStrictEqual(await reasons('nav'), ['r2', 'r3', 'r4']));
  for (let i = 5; i <= 8; i++) await client.trigger({ ...NAV, reason: `r${i}` });
  await client.trigger({ ...NAV, model_name: 'nav-route', reason: 'other' });
  await eventually(async () => assert.deepStrictEqual(await reasons('nav'), ['r6', 'r7', 'r8']));
  await eventually(async () => assert.deepStrictEqual(await reasons('nav-route'), ['other']));
  t.is((await etcd.client().getAll().prefix(s.keys.offloadingPrefix('nav')).keys()).length, 3);
});

test.serial('records per model: 60 added at once for one model keep exactly the bound, the newest; 19, 20 and 21 at once', async (t) => {
  // Found by black-box probing: 200 different requests at once left 90 records against a bound of
  // 20 (each add lost the others' guard until its last attempt, which writes unguarded).
  const s = await setup({ perModel: 20 });
  const record = (model: string, i: number) => ({
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    model, package: 'p', scenario: 's', source: 'n1', target: 'n2', policy: 'pol', reason: `r${i}`,
    identity: 'anonymous', callers: 1, outcome: 'accepted' as const, message: '', transitionId: `t${i}`, durationMs: 1,
  });
  // Records are kept for models with a state: a package lists them, and the leader gives them one.
  await etcd.client().put(s.keys.packageDefKey('bulk')).value('spec:\n  models:\n    - name: m60\n    - name: m19\n    - name: m20\n    - name: m21\n');
  for (const m of ['m60', 'm19', 'm20', 'm21']) await eventually(async () => assert.notStrictEqual(await etcd.client().get(s.keys.stateKey('model', m)).string(), null));
  for (const [model, n] of [['m60', 60], ['m19', 19], ['m20', 20], ['m21', 21]] as const) {
    await Promise.all(Array.from({ length: n }, (_, i) => s.store.add(record(model, i))));
    const kept = (await s.store.list(model)).map((r) => r.reason);
    t.deepEqual(kept, Array.from({ length: Math.min(n, 20) }, (_, i) => `r${n - Math.min(n, 20) + i}`), `${n} at once`);
  }
  t.is(s.store.modelsAdding, 0, 'nothing left waiting');
});

test.serial('the ActionController down: accepted false saying so, well within the deadline; recorded as unavailable', async (t) => {
  const down = await startPullpiriActionController();
  await down.stop(); // a port nobody listens on any more
  const s = await setup({ acAddr: down.addr });
  const started = Date.now();
  const res = await s.client().trigger(NAV, 3000);
  t.false(res.accepted);
  t.regex(res.message, new RegExp(`^the ActionController at ${down.addr} cannot be reached \\(.+\\); the model was not moved$`));
  t.true(Date.now() - started < 3000);
  t.deepEqual(s.outcomes, ['unavailable']);
  await eventually(async () => assert.strictEqual((await s.store.list('nav'))[0]?.outcome, 'unavailable'));
});

test.serial('the ActionController slower than the caller: accepted false before the caller\'s deadline, not DEADLINE_EXCEEDED', async (t) => {
  const s = await setup();
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 3000 });
  const started = Date.now();
  const res = await s.client().trigger(NAV, 1000);
  const took = Date.now() - started;
  t.false(res.accepted);
  t.is(res.message, `the ActionController at ${ac.addr} did not answer within the caller's deadline; the outcome is unknown`);
  t.true(took < 1000, `answered after ${took} ms`);
  t.true(took > 700, `answered after ${took} ms`);
  t.deepEqual(s.outcomes, ['timeout']);
  // And the configured ActionController timeout holds when the caller sets no deadline.
  const short = await setup({ acTimeoutMs: 300 });
  const res2 = await new Promise<{ accepted: boolean; message: string }>((resolve, reject) =>
    short.client().raw.TriggerOffloading(NAV, new grpc.Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r as { accepted: boolean; message: string }))),
  );
  t.false(res2.accepted);
  t.regex(res2.message, /did not answer in time/);
});

test.serial('an ActionController without OffloadModel (before 2026): accepted false saying so', async (t) => {
  const old = await startPullpiriActionController({ withoutOffload: true });
  t.teardown(() => old.stop());
  const s = await setup({ acAddr: old.addr });
  const res = await s.client().trigger(NAV);
  t.false(res.accepted);
  t.is(res.message, `the ActionController at ${old.addr} does not implement OffloadModel; the model was not moved`);
});

test.serial('single flight: N identical requests in flight reach the ActionController once and every caller gets its answer', async (t) => {
  const s = await setup();
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 400 });
  const before = ac.offloads.length;
  const N = 12;
  const clients = Array.from({ length: 3 }, () => s.client());
  const answers = await Promise.all(Array.from({ length: N }, (_, i) => clients[i % 3]!.trigger(NAV)));
  t.is(ac.offloads.length - before, 1);
  t.is(answers.length, N);
  for (const a of answers) t.deepEqual(a, answers[0]);
  t.true(answers[0]!.accepted);
  t.deepEqual(s.outcomes, Array.from({ length: N }, () => 'accepted'));
  t.is(s.server.logger.lines.filter((l) => l.message === 'offloading request' && l.meta.shared === true).length, N - 1);
  await eventually(async () => assert.strictEqual((await s.store.list('nav')).length, 1));
  t.is((await s.store.list('nav'))[0]!.callers, N);
  // Requests that differ (another target) are not identical: each has its call.
  const mixed = await Promise.all([clients[0]!.trigger(NAV), clients[1]!.trigger({ ...NAV, target_node: 'edge-3' })]);
  t.is(ac.offloads.length - before, 3);
  t.true(mixed.every((a) => a.accepted));
  // Once answered, the same request is sent again.
  await clients[0]!.trigger(NAV);
  t.is(ac.offloads.length - before, 4);
});

test.serial('single flight: a joiner with a shorter deadline gets its own timely answer, the others the ActionController\'s', async (t) => {
  const s = await setup();
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 1200 });
  const before = ac.offloads.length;
  const c = s.client();
  const long = c.trigger(NAV, 5000);
  await new Promise((r) => setTimeout(r, 50));
  const started = Date.now();
  const short = await c.trigger(NAV, 500);
  t.true(Date.now() - started < 500);
  t.false(short.accepted);
  t.regex(short.message, /did not answer within the caller's deadline; the outcome is unknown$/);
  t.true((await long).accepted);
  t.is(ac.offloads.length - before, 1);
});

test.serial('single flight: a first caller with a short deadline gets its own timely answer and does not cut the call for joiners with longer ones', async (t) => {
  // Found by black-box probing: the shared call took the first caller's deadline, so a first
  // caller with 1.5 s cut it for 49 joiners with up to 10 s.
  const s = await setup();
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 1200 });
  const before = ac.offloads.length;
  const c = s.client();
  const started = Date.now();
  const short = c.trigger(NAV, 500);
  await new Promise((r) => setTimeout(r, 50));
  const long = c.trigger(NAV, 5000);
  const first = await short;
  t.true(Date.now() - started < 500);
  t.false(first.accepted);
  t.regex(first.message, /did not answer within the caller's deadline; the outcome is unknown$/);
  t.true((await long).accepted, 'the joiner got the ActionController\'s answer');
  t.is(ac.offloads.length - before, 1);
  await eventually(async () => assert.strictEqual((await s.store.list('nav')).at(-1)?.outcome, 'accepted'));
});

test.serial('single flight: a request that comes once every caller of a hung call has stopped waiting is sent again, not joined to it', async (t) => {
  // Found by black-box probing: a call hung at the ActionController for the whole 60 s
  // offloading timeout, and identical retries with 2 s deadlines, sent after the ActionController
  // had recovered, joined it and were never sent.
  const s = await setup();
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 4000 });
  const before = ac.offloads.length;
  const c = s.client();
  const first = await c.trigger(NAV, 500);
  t.regex(first.message, /did not answer within the caller's deadline; the outcome is unknown$/);
  ac.behaviour = pullpiriSuccess; // the ActionController recovered; the first call still hangs there
  // Deadlines with room for a loaded machine (a CI run beside the whole suite missed 2 s): what
  // is tested is whether the request is sent again or joined, not how fast.
  const retry = await c.trigger(NAV, 6000);
  t.true(retry.accepted, retry.message);
  t.is(ac.offloads.length - before, 2, 'sent again');
  // While a caller still waits, an identical request joins (below its deadline).
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 600 });
  const waiting = c.trigger(NAV, 6000);
  await new Promise((r) => setTimeout(r, 100));
  const joined = await c.trigger(NAV, 6000);
  t.true(joined.accepted);
  t.true((await waiting).accepted);
  t.is(ac.offloads.length - before, 3, 'joined, not sent');
});

test.serial('a connection lost after the call reached the ActionController: the outcome is unknown (lost), not "not moved"; one never made: not moved', async (t) => {
  // Found by black-box probing: "cannot be reached (Connection dropped); the model was not moved",
  // recorded as unavailable, though the ActionController had the request.
  const proxy = await startStallProxy({ host: '127.0.0.1', port: ac.port });
  t.teardown(() => proxy.stop());
  const s = await setup({ acAddr: `127.0.0.1:${proxy.port}` });
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 1000 });
  const before = ac.offloads.length;
  const answer = s.client().trigger(NAV, 5000);
  await eventually(async () => assert.strictEqual(ac.offloads.length - before, 1));
  proxy.cutAll();
  const res = await answer;
  t.false(res.accepted);
  t.regex(res.message, /^the connection to the ActionController at 127\.0\.0\.1:\d+ was lost during the call \(.+\); the outcome is unknown$/);
  t.is(s.outcomes.at(-1), 'lost');
  await eventually(async () => assert.strictEqual((await s.store.list('nav')).at(-1)?.outcome, 'lost'));
  await proxy.stop();
  const refused = await s.client().trigger({ ...NAV, target_node: 'edge-3' }, 5000);
  t.regex(refused.message, /cannot be reached \(No connection established.*\); the model was not moved$/);
  t.is(s.outcomes.at(-1), 'unavailable');
});

test('notSent: only the UNAVAILABLE of a call that never left this process', (t) => {
  for (const d of ['No connection established. Last error: connect ECONNREFUSED 127.0.0.1:47301', 'Name resolution failed for target dns:ac:47301', 'Channel closed before call started']) t.true(notSent(d), d);
  for (const d of ['Connection dropped', 'Received RST_STREAM with code 2 (Call ended without gRPC status)', 'the ActionController is restarting']) t.false(notSent(d), d);
});

test.serial('authorization: a node identity may not move models; the policy manager may; a models pattern limits which', async (t) => {
  const token = (name: string) => `${name}-token-`.padEnd(40, 'x');
  const s = await setup({
    config: {
      auth: {
        tokens: [
          { identity: 'node-edge-1', token: token('node') },
          { identity: 'policymanager', token: token('pm') },
          { identity: 'nav-policy', token: token('nav') },
          { identity: 'operator', token: token('op') },
        ],
        rules: [
          { identities: ['token:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }, { method: 'read' }] },
          { identities: ['token:policymanager'], allow: [{ method: 'TriggerOffloading' }] },
          { identities: ['token:nav-policy'], allow: [{ method: 'TriggerOffloading', models: ['nav*'] }] },
          { identities: ['token:operator'], allow: [{ method: 'read' }, { method: 'SendStateChange', kind: 'scenario' }] },
        ],
      },
    },
  });
  const before = ac.offloads.length;
  const denied = await s.client(token('node')).trigger(NAV);
  t.deepEqual({ accepted: denied.accepted, message: denied.message }, { accepted: false, message: 'permission denied: token:node-edge-1 may not offload model "nav"' });
  t.is((await s.client(token('op')).trigger(NAV)).message, 'permission denied: token:operator may not offload model "nav"');
  t.is(ac.offloads.length, before);
  t.true(s.server.logger.lines.some((l) => l.message === 'gRPC call denied' && l.meta.identity === 'token:node-edge-1' && l.meta.method === 'TriggerOffloading'));
  // Not logged as an offloading request: the caller may not make one.
  t.false(s.server.logger.lines.some((l) => l.message === 'offloading request' && l.meta.identity === 'token:node-edge-1'));

  const pm = await s.client(token('pm')).trigger(NAV);
  t.true(pm.accepted);
  t.true((await s.client(token('nav')).trigger({ ...NAV, model_name: 'nav-route' })).accepted);
  t.is((await s.client(token('nav')).trigger({ ...NAV, package_name: 'media', model_name: 'media-player' })).message, 'permission denied: token:nav-policy may not offload model "media-player"');
  // `*` stands for one or more characters: `nav*` does not allow `nav` itself.
  t.is((await s.client(token('nav')).trigger(NAV)).message, 'permission denied: token:nav-policy may not offload model "nav"');
  t.is(ac.offloads.length, before + 2);
  t.deepEqual(s.outcomes, ['denied', 'denied', 'accepted', 'accepted', 'denied', 'denied']);
  await eventually(async () => assert.deepStrictEqual((await s.store.list('nav')).map((r) => r.identity), ['token:policymanager']));
  // Unauthenticated callers never reach the handler.
  const err = await s.client('wrong-token-'.padEnd(40, 'x')).trigger(NAV).catch((e: grpc.ServiceError) => e);
  t.is((err as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
});

test.serial('the write budget covers the record: a caller over it is refused before the ActionController', async (t) => {
  const s = await setup({ config: { limits: { writeBytesPerSecond: 1, writeBurstBytes: 5000, listBytes: 4096 } } });
  const before = ac.offloads.length;
  const c = s.client();
  let refused: string | undefined;
  for (let i = 0; i < 10 && refused === undefined; i++) {
    const r = await c.trigger({ ...NAV, reason: `r${i}` });
    if (!r.accepted) refused = r.message;
  }
  t.regex(refused ?? '', /^anonymous is over its write budget \(grpc\.limits\.writeBytesPerSecond\); nothing was sent; retry in \d+ s$/);
  t.is(s.outcomes.at(-1), 'over_budget');
  t.is(ac.offloads.length - before, s.outcomes.filter((o) => o === 'accepted').length);
});

test.serial('calls in flight: the gate\'s per-identity limit holds for TriggerOffloading too', async (t) => {
  const s = await setup({ config: { limits: { callsInFlightPerIdentity: 2 } } });
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 500 });
  const c = s.client();
  const results = await Promise.allSettled([c.trigger(NAV), c.trigger({ ...NAV, reason: 'b' }), c.trigger({ ...NAV, reason: 'c' })]);
  const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  t.is(rejected.length, 1);
  t.is((rejected[0]!.reason as grpc.ServiceError).code, grpc.status.RESOURCE_EXHAUSTED);
});

test.serial('before the caches have read the definitions, a request is refused as not ready', async (t) => {
  const s = await setup({ definitions: { modelsOfPackage: () => undefined, hasSynced: () => false } });
  const res = await s.client().trigger(NAV);
  t.deepEqual({ accepted: res.accepted, message: res.message }, { accepted: false, message: 'statemanager has not read the package definitions yet (starting up); retry shortly' });
  t.deepEqual(s.outcomes, ['not_ready']);
});

test.serial('a server without offloading configured answers UNIMPLEMENTED', async (t) => {
  const server = await startTestServer(etcd.client());
  const c = new PolicyManagerClient(server.target);
  closers.push(() => c.close());
  const err = (await c.trigger(NAV).catch((e: unknown) => e)) as grpc.ServiceError;
  t.is(err.code, grpc.status.UNIMPLEMENTED);
});

// Found by a Pullpiri compatibility probe: Pullpiri's ActionController moves the model before it
// answers; a 7 s move was answered "did not answer in time" at the 5 s Reconcile timeout.
test.serial('OffloadModel has its own timeout (actionController.offloadTimeout), longer than a Reconcile\'s: a move answered within it is accepted, one past it is not', async (t) => {
  const s = await setup({ acTimeoutMs: 300, acOffloadTimeoutMs: 1500 });
  const noDeadline = () =>
    new Promise<{ accepted: boolean; message: string }>((resolve, reject) =>
      s.client().raw.TriggerOffloading(NAV, new grpc.Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r as { accepted: boolean; message: string }))),
    );
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 1000 });
  const moved = await noDeadline();
  t.true(moved.accepted, `past the 300 ms Reconcile timeout, within the 1.5 s one: ${moved.message}`);
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 2500 });
  const started = Date.now();
  const late = await noDeadline();
  t.false(late.accepted);
  t.regex(late.message, /did not answer in time; the outcome is unknown/);
  const took = Date.now() - started;
  t.true(took >= 1400 && took < 2400, `answered after ${took} ms`);
});

test.serial('a record is kept only while its model has a state: one whose package went while the ActionController answered is not written, and says so', async (t) => {
  // Found by a black-box soak: the last package listing the model was deleted during the call; the
  // leader deleted the model's state and records, then the answer's record was written, for good.
  const s = await setup();
  const record = { at: new Date().toISOString(), model: 'gone', package: 'p', scenario: 's', source: 'n1', target: 'n2', policy: 'pol', reason: 'r', identity: 'anonymous', callers: 1, outcome: 'accepted' as const, message: '', transitionId: 't', durationMs: 1 };
  t.false(await s.store.add(record), 'no state: nothing stored');
  // A model a package lists: the running leader deletes the state of one no package lists (a
  // state put for 'gone' raced that deletion on a loaded CI machine).
  await etcd.client().put(s.keys.stateKey('model', 'nav')).value('Created');
  t.true(await s.store.add({ ...record, model: 'nav' }), 'with a state: stored');
  t.is((await s.store.list('nav')).length, 1);

  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 1500 });
  const answer = s.client().trigger({ ...NAV, model_name: 'media-player', source_node: 'edge-2', target_node: 'edge-1', package_name: 'media' });
  await new Promise((r) => setTimeout(r, 300));
  await etcd.client().delete().key(s.keys.packageDefKey('media'));
  // The leader deletes the model's state (and its records) once no package lists it.
  await eventually(async () => assert.strictEqual(await etcd.client().get(s.keys.stateKey('model', 'media-player')).string(), null));
  t.true((await answer).accepted, 'the ActionController still answered');
  await eventually(() => assert.ok(s.server.logger.lines.some((l) => l.message.startsWith('offloading request not recorded: the model has no state') && l.meta.model === 'media-player')));
  t.deepEqual(await etcd.client().getAll().prefix(s.keys.offloadingPrefix('media-player')).keys(), [], 'no record left behind');
});
