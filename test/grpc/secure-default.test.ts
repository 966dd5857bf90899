// Secure by default, over real gRPC and a real etcd: anonymous callers beyond loopback, the gate
// before decoding, rate limits and bounded refusal logs, stream limits, list bounds, a node's
// reach, and identity kinds that cannot be confused. "Beyond loopback" is simulated by telling
// the server that no peer is local: every test connection stays on 127.0.0.1.
import { connect } from 'node:http2';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { KeyLayout } from '../../domain/keys.js';
import { silentLogger } from '../../controller/logger.js';
import { StateFeed } from '../../src/state-api/feed.js';
import { etcdReplayMarker } from '../../src/etcd/replay-marker.js';
import { StateReader, type StateCaches } from '../../src/state-api/reader.js';
import { DraftClient } from '../helpers/draft-client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { createTestPki, type CertificateAuthority, type IssuedCert, type TestPki } from '../helpers/certs.js';
import {
  bearer,
  getString,
  grpcError,
  sendContainerList,
  sendRaw,
  sendStateChange,
  snapshot,
  startTestServer,
  stopAll,
  uniquePrefix,
  type TestServer,
} from './_support.js';

let etcd: EtcdServer;
let client: Etcd3;
let pki: TestPki;
let ca: CertificateAuthority;
let serverCert: IssuedCert;

test.before(async () => {
  etcd = await startEtcd();
  client = etcd.client();
  pki = await createTestPki();
  ca = await pki.createCa('clients-ca');
  serverCert = await ca.issue('server', { cn: 'statemanager', sans: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'server' });
});

test.after.always(async () => {
  await stopAll();
  await etcd?.stop();
  await pki?.cleanup();
});

const REMOTE = { isLocalPeer: () => false };
/** Inline tokens need 32 bytes. */
const tok = (name: string) => `${name}-0123456789abcdef0123456789abcdef`;
const NODE_LISTS = [{ identities: ['token:node-*'], allow: [{ method: 'SendChangedContainerList' as const, nodeName: '${match}' }] }];
const list = (node: string, containers: { id: string; annotation?: Record<string, string> }[] = [{ id: 'c1' }]) => ({ node_name: node, containers });
const scenario = (name: string, target: string) => ({ resource_type: 'RESOURCE_TYPE_SCENARIO' as const, resource_name: name, target_state: target });
const keysOf = async (s: TestServer) => (await snapshot(client, s.keys.prefix)).kvs;

test('default configuration: anonymous callers beyond loopback are refused (UNAUTHENTICATED), nothing is written', async (t) => {
  const s = await startTestServer(client, {}, REMOTE);
  const c = s.client();
  const list1 = await grpcError(sendContainerList(c, list('n1')));
  t.is(list1.code, grpc.status.UNAUTHENTICATED);
  t.regex(list1.details, /anonymous calls are served only from loopback/);
  // The deletion attack of the issue: an empty list for n1.
  t.is((await grpcError(sendContainerList(c, list('n1', [])))).code, grpc.status.UNAUTHENTICATED);
  const change = await grpcError(sendStateChange(c, scenario('s1', 'Allowed')));
  t.is(change.code, grpc.status.UNAUTHENTICATED);
  t.is((await keysOf(s)).size, 0);
  t.deepEqual(s.metrics.calls, [
    ['SendChangedContainerList', 'UNAUTHENTICATED'],
    ['SendChangedContainerList', 'UNAUTHENTICATED'],
    ['SendStateChange', 'UNAUTHENTICATED'],
  ]);
  // The same configuration serves a loopback peer.
  const local = await startTestServer(client, {}, {});
  t.is(await sendContainerList(local.client(), list('n1')), 'node n1: 1 put, 0 deleted, 0 unchanged');
});

test('allowAnonymous: true serves anonymous callers from anywhere, loudly; false refuses them even on loopback', async (t) => {
  const open = await startTestServer(client, { auth: { allowAnonymous: true } }, REMOTE);
  t.is(await sendContainerList(open.client(), list('n1')), 'node n1: 1 put, 0 deleted, 0 unchanged');
  t.deepEqual(open.metrics.anonymousBeyondLoopbackSet, [true]);
  t.true(open.logger.lines.some((l) => l.level === 'warn' && /allowAnonymous is true/.test(l.message)));
  const closed = await startTestServer(client, { auth: { allowAnonymous: false } });
  t.is((await grpcError(sendContainerList(closed.client(), list('n1')))).code, grpc.status.UNAUTHENTICATED);
  t.deepEqual(closed.metrics.anonymousBeyondLoopbackSet, [false]);
});

test('authentication happens before the message is decoded: undecodable bytes without a token answer UNAUTHENTICATED', async (t) => {
  const s = await startTestServer(client, { auth: { tokens: [{ token: tok('tok'), identity: 'agent' }], rules: [] } });
  const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]); // a length far beyond the message
  const err = await grpcError(sendRaw(s.client(), 'SendChangedContainerList', garbage));
  t.is(err.code, grpc.status.UNAUTHENTICATED, err.details);
  // With no gate in front the same bytes would reach the decoder: show they are undecodable.
  const open = await startTestServer(client);
  t.not((await grpcError(sendRaw(open.client(), 'SendChangedContainerList', garbage))).code, grpc.status.OK);
  t.is((await keysOf(s)).size, 0);
});

test('rate limit per identity: over the burst answers RESOURCE_EXHAUSTED; another identity is still served; refusals are logged at a bounded rate', async (t) => {
  const s = await startTestServer(client, {
    limits: { callsPerSecond: 0.001, burst: 3 },
    auth: { tokens: [{ token: tok('noisy'), identity: 'node-a' }, { token: tok('quiet'), identity: 'node-b' }], rules: NODE_LISTS },
  });
  const c = s.client();
  for (let i = 0; i < 3; i++) await sendContainerList(c, list('a'), bearer(tok('noisy')));
  const over = await grpcError(sendContainerList(c, list('a'), bearer(tok('noisy'))));
  t.is(over.code, grpc.status.RESOURCE_EXHAUSTED);
  t.regex(over.details, /token:node-a is over its rate limit/);
  t.is(await sendContainerList(c, list('b'), bearer(tok('quiet'))), 'node b: 1 put, 0 deleted, 0 unchanged');
  // 50 more refusals: every one counted, at most 10 logged in the interval.
  for (let i = 0; i < 50; i++) await grpcError(sendContainerList(c, list('a'), bearer(tok('noisy'))));
  t.is(s.metrics.calls.filter(([, code]) => code === 'RESOURCE_EXHAUSTED').length, 51);
  const logged = s.logger.lines.filter((l) => l.message === 'gRPC call over its rate limit');
  t.is(logged.length, 10);
  t.like(logged[0]!.meta, { identity: 'token:node-a', method: 'SendChangedContainerList' });
  // Unauthenticated floods are bounded the same way.
  for (let i = 0; i < 30; i++) await grpcError(sendContainerList(c, list('a'), bearer('wrong')));
  t.is(s.logger.lines.filter((l) => l.message === 'gRPC call unauthenticated').length, 10);
});

test('failed authentications per peer: below and at the limit answered UNAUTHENTICATED; past it the peer is refused before authentication, a good token too', async (t) => {
  const s = await startTestServer(client, {
    limits: { authFailuresPerMinute: 3 },
    auth: { tokens: [{ token: tok('good'), identity: 'node-a' }], rules: NODE_LISTS },
  });
  const c = s.client();
  for (let i = 0; i < 2; i++) t.is((await grpcError(sendContainerList(c, list('a'), bearer(tok('guess'))))).code, grpc.status.UNAUTHENTICATED);
  // Below the limit a good token still passes; failures are not forgiven by a success.
  t.is(await sendContainerList(c, list('a'), bearer(tok('good'))), 'node a: 1 put, 0 deleted, 0 unchanged');
  t.is((await grpcError(sendContainerList(c, list('a'), bearer(tok('guess'))))).code, grpc.status.UNAUTHENTICATED); // the third: at the limit
  const before = await keysOf(s);
  for (const md of [bearer(tok('guess')), bearer(tok('good'))]) {
    const locked = await grpcError(sendContainerList(c, list('a', [{ id: 'c2' }]), md));
    t.is(locked.code, grpc.status.RESOURCE_EXHAUSTED);
    t.regex(locked.details, /^too many failed authentications from 127\.0\.0\.1 \(grpc.limits.authFailuresPerMinute\); retry later$/);
  }
  t.deepEqual(await keysOf(s), before);
  t.true(s.logger.lines.some((l) => l.message === 'gRPC call refused: too many failed authentications from its peer' && l.meta.peer === '127.0.0.1'));
  // 0 turns it off.
  const off = await startTestServer(client, { limits: { authFailuresPerMinute: 0 }, auth: { tokens: [{ token: tok('good'), identity: 'node-a' }], rules: NODE_LISTS } });
  for (let i = 0; i < 30; i++) t.is((await grpcError(sendContainerList(off.client(), list('a'), bearer(tok('guess'))))).code, grpc.status.UNAUTHENTICATED);
});

test('the server announces grpc.max_concurrent_streams in its HTTP/2 settings', async (t) => {
  const s = await startTestServer(client, { limits: { maxConcurrentStreams: 7 } });
  const session = connect(`http://127.0.0.1:${s.port}`);
  const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve, reject) => {
    session.once('remoteSettings', resolve);
    session.once('error', reject);
  });
  session.close();
  t.is(settings.maxConcurrentStreams, 7);
  // Fewer than one identity's subscriptions and calls in flight: said once at start.
  t.is(s.logger.lines.filter((l) => l.level === 'warn' && /maxConcurrentStreams \(7\) is not above/.test(l.message)).length, 1);
  const defaults = await startTestServer(client);
  t.false(defaults.logger.lines.some((l) => /maxConcurrentStreams/.test(l.message)), 'not with the defaults');
});

test('a list over limits.listBytes answers INVALID_ARGUMENT before etcd (200 containers of 8 KiB)', async (t) => {
  const s = await startTestServer(client);
  const many = Array.from({ length: 200 }, (_, i) => ({ id: `c${i}`, annotation: { blob: 'x'.repeat(8 * 1024) } }));
  const err = await grpcError(sendContainerList(s.client(), list('n1', many)));
  t.is(err.code, grpc.status.INVALID_ARGUMENT);
  t.regex(err.details, /^containers are more than 1048576 bytes as JSON together \(at containers\[12\d\]\)/);
  t.is((await keysOf(s)).size, 0);
  // Configurable: a smaller bound refuses a smaller list; the same list fits a larger bound.
  const tight = await startTestServer(client, { limits: { listBytes: 10_000 } });
  t.is((await grpcError(sendContainerList(tight.client(), list('n1', many.slice(0, 2))))).code, grpc.status.INVALID_ARGUMENT);
  const roomy = await startTestServer(client, { limits: { listBytes: 64 * 1024 } });
  t.is(await sendContainerList(roomy.client(), list('n1', many.slice(0, 2))), 'node n1: 2 put, 0 deleted, 0 unchanged');
});

test("placedModelsOnly: a node may report only containers of models some package places on it", async (t) => {
  const placed = new Set(['m1@n1', 'm2@n2']);
  const s = await startTestServer(
    client,
    {
      auth: {
        tokens: [{ token: tok('n1-token'), identity: 'node-n1' }],
        rules: [{ identities: ['token:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}', placedModelsOnly: true }] }],
      },
    },
    { placement: { isModelPlacedOn: (m, n) => placed.has(`${m}@${n}`) } },
  );
  const c = s.client();
  const own = [{ id: 'a', annotation: { model: 'm1' } }, { id: 'b' }];
  t.is(await sendContainerList(c, list('n1', own), bearer(tok('n1-token'))), 'node n1: 2 put, 0 deleted, 0 unchanged');
  const before = await keysOf(s);
  // n1 claims a container of m2, which lives on n2: it would mark m2 Dead.
  const err = await grpcError(sendContainerList(c, list('n1', [...own, { id: 'x', annotation: { model: 'm2' } }]), bearer(tok('n1-token'))));
  t.is(err.code, grpc.status.PERMISSION_DENIED);
  t.regex(err.details, /^token:node-n1 may not send the container list of node n1 \(no package places "m2" on it\)$/);
  t.deepEqual(await keysOf(s), before);
  t.true(s.logger.lines.some((l) => l.message === 'gRPC call denied' && (l.meta.unplacedModels as string[] | undefined)?.[0] === 'm2'));
});

test('identity kinds: a certificate CN spelled like a URI SAN does not pass for it; the history records the authenticated identity', async (t) => {
  const [lookalike, genuine, pm] = await Promise.all([
    // openssl's -subj needs its slashes escaped.
    ca.issue('lookalike', { cn: 'spiffe:\\/\\/edge\\/node\\/n3', sans: ['DNS:n3.edge'], usage: 'client' }),
    ca.issue('genuine', { sans: ['URI:spiffe://edge/node/n3'], usage: 'client' }),
    ca.issue('pm', { cn: 'policymanager', usage: 'client' }),
  ]);
  const s = await startTestServer(client, {
    tls: { certFile: serverCert.certFile, keyFile: serverCert.keyFile, caFile: ca.certFile },
    auth: {
      rules: [
        { identities: ['uri:spiffe://edge/node/*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
        { identities: ['cn:policymanager'], allow: [{ method: 'SendStateChange', kind: 'scenario' }] },
      ],
    },
  });
  const as = (cert: IssuedCert) => s.client(grpc.credentials.createSsl(ca.cert, cert.key, cert.cert));
  const denied = await grpcError(sendContainerList(as(lookalike), list('n3')));
  t.is(denied.code, grpc.status.PERMISSION_DENIED);
  t.regex(denied.details, /^cn:spiffe:\/\/edge\/node\/n3 may not/);
  t.is(await sendContainerList(as(genuine), list('n3')), 'node n3: 1 put, 0 deleted, 0 unchanged');

  const res = await sendStateChange(as(pm), { ...scenario('s1', 'Idle'), source: 'someone-else' });
  t.is(res.error_code, 'ERROR_CODE_SUCCESS', res.error_details);
  const entry = JSON.parse((await getString(client, s.keys.historyKey('scenario', 's1', 1)))!) as HistoryEntry;
  t.like(entry, { source: 'someone-else', identity: 'cn:policymanager' });
});

test('reads need the read permission: a node identity is denied, an operator served, an anonymous remote caller unauthenticated', async (t) => {
  const keys = new KeyLayout(uniquePrefix());
  const caches: StateCaches = {
    get: (kind, name) => (kind === 'package' && name === 'p' ? { name: 'p', state: 'Running', version: 3 } : undefined),
    list: () => [{ name: 'p', state: 'Running', version: 3 }],
    revision: () => 7,
  };
  const feed = new StateFeed({ source: etcd.watchClient(), markReplay: etcdReplayMarker(client, keys, 'test', 3000), keys, logger: silentLogger });
  await feed.start();
  const readApi = { reader: new StateReader(caches, { read: async () => [] }), feed };
  const s = await startTestServer(
    client,
    {
      auth: {
        tokens: [{ token: tok('ops'), identity: 'operator' }, { token: tok('n1'), identity: 'node-n1' }],
        rules: [
          { identities: ['token:operator'], allow: [{ method: 'read' }] },
          { identities: ['token:node-*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
        ],
      },
    },
    { keys, readApi },
  );
  const ops = new DraftClient(s.target, () => bearer(tok('ops')));
  const node = new DraftClient(s.target, () => bearer(tok('n1')));
  const nobody = new DraftClient(s.target);
  t.like(await ops.getState('RESOURCE_TYPE_PACKAGE', 'p'), { success: true, resource_state: { current_state: 'Running', state_generation: '3', metadata: { revision: '7' } } });
  t.is((await ops.list({ resource_type: 'RESOURCE_TYPE_PACKAGE' })).total_count, 1);
  for (const call of [() => node.getState('RESOURCE_TYPE_PACKAGE', 'p'), () => node.list({ resource_type: 'RESOURCE_TYPE_PACKAGE' }), () => node.history({ resource_type: 'RESOURCE_TYPE_PACKAGE', resource_name: 'p' })]) {
    t.is((await grpcError(call())).code, grpc.status.PERMISSION_DENIED);
  }
  t.is((await node.subscribe('RESOURCE_TYPE_UNSPECIFIED').end).code, grpc.status.PERMISSION_DENIED);
  t.is((await nobody.subscribe('RESOURCE_TYPE_UNSPECIFIED').end).code, grpc.status.UNAUTHENTICATED);
  const live = ops.subscribe('RESOURCE_TYPE_UNSPECIFIED');
  live.cancel();
  for (const c of [ops, node, nobody]) c.close();
  feed.stop();
});

/** Opens `n` calls of `method` on one HTTP/2 connection, sending headers and never a body or END_STREAM. */
function halfOpenCalls(port: number, method: string, n: number) {
  const session = connect(`http://127.0.0.1:${port}`);
  const calls = Array.from({ length: n }, () => {
    const stream = session.request({ ':method': 'POST', ':path': `/statemanager.StateManagerConnection/${method}`, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
    const call = { status: undefined as string | undefined, message: '', closed: false, rstCode: -1, at: 0 };
    const started = Date.now();
    const status = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) {
        call.status = String(h['grpc-status']);
        call.message = decodeURIComponent(String(h['grpc-message'] ?? ''));
      }
    };
    stream.on('response', status);
    stream.on('trailers', status);
    stream.on('data', () => undefined);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      call.closed = true;
      call.rstCode = stream.rstCode ?? -1;
      call.at = Date.now() - started;
    });
    return call;
  });
  return { session, calls };
}

test('a refused call whose client never finishes its request does not keep its stream: answered, then RST_STREAM(NO_ERROR) (30,000 such held 230 MB before)', async (t) => {
  const s = await startTestServer(client, {}, REMOTE);
  const { session, calls } = halfOpenCalls(s.port, 'SendStateChange', 20);
  t.teardown(() => session.destroy());
  await eventually(() => assert.ok(calls.every((c) => c.closed), `${calls.filter((c) => c.closed).length} of 20 closed`));
  t.true(calls.every((c) => c.status === String(grpc.status.UNAUTHENTICATED)), 'each got its answer first');
  t.true(calls.every((c) => c.rstCode === 0), 'closed with NO_ERROR, the client told to stop sending');
});

test('an admitted call whose request does not arrive whole within requestArrivalMs is answered DEADLINE_EXCEEDED and its stream released; one whose request arrives in time is served', async (t) => {
  const s = await startTestServer(client, {}, { requestArrivalMs: 300 });
  const { session, calls } = halfOpenCalls(s.port, 'SendStateChange', 3);
  t.teardown(() => session.destroy());
  await new Promise((r) => setTimeout(r, 200));
  t.true(calls.every((c) => !c.closed), 'below the bound: still waiting for its request');
  await eventually(() => assert.ok(calls.every((c) => c.closed)));
  for (const c of calls) {
    t.is(c.status, String(grpc.status.DEADLINE_EXCEEDED));
    t.regex(c.message, /did not arrive whole within 300 ms/);
    t.is(c.rstCode, 0);
    t.true(c.at >= 290 && c.at < 5000, `closed after ${c.at} ms`);
  }
  // Its in-flight slots were given back: a whole request right after is served.
  const res = await sendStateChange(s.client(), { ...scenario('arrived', 'Idle'), current_state: '', transition_id: 't', timestamp_ns: 1, source: 'test' });
  t.is(res.error_code, 'ERROR_CODE_SUCCESS');
});
