// TLS, mutual TLS, bearer tokens and authorization rules over real gRPC and a real etcd, with
// certificates made by openssl at run time.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { ConfigError } from '../../src/config/config.js';
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { AuthRule } from '../../src/auth/config.js';
import { KeyLayout } from '../../domain/keys.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { parseGrpcServerConfig } from '../../src/grpc/config.js';
import { createStateManagerServer } from '../../src/grpc/server.js';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { createTestPki, type CertificateAuthority, type IssuedCert, type TestPki } from '../helpers/certs.js';
import {
  bearer,
  captureLogger,
  getString,
  grpcError,
  sendContainerList,
  sendStateChange,
  snapshot,
  startTestServer,
  stopAll,
  type TestServer,
} from './_support.js';

let etcd: EtcdServer;
let client: Etcd3;
let pki: TestPki;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let serverCert: IssuedCert;
const certs: Record<string, IssuedCert> = {};
/** Inline tokens need 32 bytes. */
const tok = (name: string) => `${name}-0123456789abcdef0123456789abcdef`;

const RULES: AuthRule[] = [
  { identities: ['cn:node:*', 'token:node:*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
  { identities: ['uri:spiffe://edge/node/*'], allow: [{ method: 'SendChangedContainerList', nodeName: '${match}' }] },
  {
    identities: ['cn:policymanager', 'token:policymanager'],
    allow: [{ method: 'SendStateChange', kind: 'scenario', from: ['Satisfied'], to: ['Allowed', 'Denied'] }],
  },
  { identities: ['cn:apiserver'], allow: [{ method: 'SendStateChange', kind: 'scenario', from: ['absent'], to: ['Idle'] }] },
  { identities: ['cn:admin'], allow: [{ method: '*' }] },
];

test.before(async () => {
  etcd = await startEtcd();
  client = etcd.client();
  pki = await createTestPki();
  [ca, otherCa] = await Promise.all([pki.createCa('ca'), pki.createCa('other-ca')]);
  serverCert = await ca.issue('server', { cn: 'statemanager', sans: ['DNS:localhost', 'IP:127.0.0.1'], usage: 'server' });
  const issued = await Promise.all([
    ca.issue('node-n1', { cn: 'node:n1', usage: 'client' }),
    ca.issue('node-n2', { cn: 'node:n2', usage: 'client' }),
    ca.issue('policymanager', { cn: 'policymanager', usage: 'client' }),
    ca.issue('admin', { cn: 'admin', usage: 'client' }),
    ca.issue('spiffe-n3', { sans: ['URI:spiffe://edge/node/n3'], usage: 'client' }),
    otherCa.issue('foreign-n1', { cn: 'node:n1', usage: 'client' }),
  ]);
  for (const [name, cert] of ['node-n1', 'node-n2', 'policymanager', 'admin', 'spiffe-n3', 'foreign-n1'].map((n, i) => [n, issued[i]!] as const)) {
    certs[name] = cert;
  }
});

test.after.always(async () => {
  await stopAll();
  await etcd?.stop();
  await pki?.cleanup();
});

const tls = (o: { caFile?: boolean; requireClientCert?: boolean } = {}) => ({
  certFile: serverCert.certFile,
  keyFile: serverCert.keyFile,
  ...(o.caFile === false ? {} : { caFile: ca.certFile }),
  ...(o.requireClientCert === undefined ? {} : { requireClientCert: o.requireClientCert }),
});

function mtlsClient(s: TestServer, who?: string) {
  const cert = who === undefined ? undefined : certs[who]!;
  return s.client(grpc.credentials.createSsl(ca.cert, cert?.key ?? null, cert?.cert ?? null));
}

const list = (node: string) => ({ node_name: node, containers: [{ id: 'c1', image: 'img' }] });
const scenario = (name: string, target: string, current = '') => ({
  resource_type: 'RESOURCE_TYPE_SCENARIO' as const,
  resource_name: name,
  target_state: target,
  current_state: current,
});

async function allKeys(s: TestServer) {
  return (await snapshot(client, s.keys.prefix)).kvs;
}

test('mTLS: a client without a certificate is refused at the TLS layer', async (t) => {
  const s = await startTestServer(client, { tls: tls(), auth: { rules: RULES } });
  const err = await grpcError(sendContainerList(mtlsClient(s), list('n1')));
  t.is(err.code, grpc.status.UNAVAILABLE, err.details);
  t.is((await allKeys(s)).size, 0);
});

test('mTLS: a certificate from another CA is refused', async (t) => {
  const s = await startTestServer(client, { tls: tls(), auth: { rules: RULES } });
  const foreign = certs['foreign-n1']!;
  const c = s.client(grpc.credentials.createSsl(ca.cert, foreign.key, foreign.cert));
  const err = await grpcError(sendContainerList(c, list('n1')));
  t.is(err.code, grpc.status.UNAVAILABLE, err.details);
  t.is((await allKeys(s)).size, 0);
});

test('mTLS: a node agent may write its own node, not another node; the denial is logged with the identity', async (t) => {
  const s = await startTestServer(client, { tls: tls(), auth: { rules: RULES } });
  const c = mtlsClient(s, 'node-n1');
  t.is(await sendContainerList(c, list('n1')), 'node n1: 1 put, 0 deleted, 0 unchanged');
  const before = await allKeys(s);
  const err = await grpcError(sendContainerList(c, list('n2')));
  t.is(err.code, grpc.status.PERMISSION_DENIED);
  t.regex(err.details, /^cn:node:n1 may not send the container list of node n2$/);
  t.deepEqual(await allKeys(s), before);
  t.true(
    s.logger.lines.some(
      (l) => l.level === 'warn' && l.message === 'gRPC call denied' && l.meta.identity === 'cn:node:n1' && l.meta.nodeName === 'n2',
    ),
  );
  t.deepEqual(s.metrics.calls, [
    ['SendChangedContainerList', 'OK'],
    ['SendChangedContainerList', 'PERMISSION_DENIED'],
  ]);
  // A node agent may not change scenario states.
  const res = await sendStateChange(c, scenario('s1', 'Idle'));
  t.is(res.error_code, 'ERROR_CODE_PERMISSION_DENIED');
  t.deepEqual(await allKeys(s), before);
});

test('mTLS: a URI SAN is an identity too', async (t) => {
  const s = await startTestServer(client, { tls: tls(), auth: { rules: RULES } });
  const c = mtlsClient(s, 'spiffe-n3');
  t.is(await sendContainerList(c, list('n3')), 'node n3: 1 put, 0 deleted, 0 unchanged');
  t.is((await grpcError(sendContainerList(c, list('n1')))).code, grpc.status.PERMISSION_DENIED);
});

test('mTLS: the policy manager may only move scenarios Satisfied -> Allowed|Denied', async (t) => {
  const s = await startTestServer(client, { tls: tls(), auth: { rules: RULES } });
  const pm = mtlsClient(s, 'policymanager');
  await client.put(s.keys.stateKey('scenario', 'sat')).value('Satisfied');
  await client.put(s.keys.stateKey('scenario', 'wait')).value('Waiting');
  const before = await allKeys(s);

  // Waiting -> Satisfied is not the policy manager's to make.
  const denied = await sendStateChange(pm, scenario('wait', 'Satisfied'));
  t.is(denied.error_code, 'ERROR_CODE_PERMISSION_DENIED');
  // No rule lets it move anything to Satisfied: refused before the state is read, and not told it.
  t.regex(denied.error_details, /^cn:policymanager may not move scenario wait to Satisfied$/);
  t.deepEqual(await allKeys(s), before);
  t.true(s.logger.lines.some((l) => l.message === 'gRPC call denied' && l.meta.identity === 'cn:policymanager' && l.meta.name === 'wait'));
  // A claimed current state is what is authorized; the precondition then refuses the mismatch.
  t.is((await sendStateChange(pm, scenario('wait', 'Allowed', 'Satisfied'))).error_code, 'ERROR_CODE_PRECONDITION_FAILED');
  // Container lists are not the policy manager's either.
  t.is((await grpcError(sendContainerList(pm, list('n1')))).code, grpc.status.PERMISSION_DENIED);
  t.deepEqual(await allKeys(s), before);

  const ok = await sendStateChange(pm, scenario('sat', 'Allowed'));
  t.is(ok.error_code, 'ERROR_CODE_SUCCESS', ok.error_details);
  const entry = JSON.parse((await getString(client, s.keys.historyKey('scenario', 'sat', 2)))!) as HistoryEntry;
  t.like(entry, { from: 'Satisfied', to: 'Allowed', source: 'cn:policymanager', identity: 'cn:policymanager', reason: 'requested' });
  // Allowed -> Completed is not among its permissions.
  t.is((await sendStateChange(pm, scenario('sat', 'Completed'))).error_code, 'ERROR_CODE_PERMISSION_DENIED');
  // Waiting -> Allowed: a target it may set, from a stored state it may not; read, then denied
  // without telling it the stored state (it has no read permission).
  const fromStored = await sendStateChange(pm, scenario('wait', 'Allowed'));
  t.is(fromStored.error_code, 'ERROR_CODE_PERMISSION_DENIED');
  t.is(fromStored.error_details, 'cn:policymanager may not move scenario wait from its stored state to Allowed');
});

test('SendStateChange: authorized before any read; a caller without the read permission is never told the stored state', async (t) => {
  let reads = 0;
  const counting = new Proxy(client, {
    get(target, p, receiver) {
      if (p !== 'kv') return Reflect.get(target, p, receiver) as unknown;
      return new Proxy(target.kv, {
        get(kv, q) {
          const v = Reflect.get(kv, q) as unknown;
          if (q === 'range') return (...args: Parameters<typeof kv.range>) => (reads++, kv.range(...args));
          // The stored state is read with its definition in one transaction of reads only.
          if (q === 'txn')
            return (...args: Parameters<typeof kv.txn>) => {
              if (args[0].success?.every((op) => op.request_range !== undefined)) reads++;
              return kv.txn(...args);
            };
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(kv) : v;
        },
      });
    },
  });
  const reader = await ca.issue('pm-reader', { cn: 'pm-reader', usage: 'client' });
  const s = await startTestServer(counting, {
    tls: tls(),
    auth: {
      rules: [
        ...RULES,
        { identities: ['cn:pm-reader'], allow: [{ method: 'SendStateChange', kind: 'scenario', from: ['Satisfied'], to: ['Allowed'] }, { method: 'read' }] },
      ],
    },
  });
  await client.put(s.keys.stateKey('scenario', 'brake')).value('Waiting');
  const pm = mtlsClient(s, 'policymanager');
  const node = mtlsClient(s, 'node-n1');
  const before = await allKeys(s);
  // The issue's case: a caller no rule allows to change scenarios at all, and one that may not set this target.
  for (const [c, change, details] of [
    [node, scenario('brake', 'Idle'), 'cn:node:n1 may not move scenario brake to Idle'],
    [pm, scenario('brake', 'Idle'), 'cn:policymanager may not move scenario brake to Idle'],
    [pm, scenario('brake', 'Idle', 'Satisfied'), 'cn:policymanager may not move scenario brake from Satisfied to Idle'],
  ] as const) {
    const res = await sendStateChange(c, change);
    t.is(res.error_code, 'ERROR_CODE_PERMISSION_DENIED');
    t.is(res.error_details, details);
  }
  t.is(reads, 0, 'nothing read before authorization');
  // An allowed target from a disallowed stored state: read, then denied, the state unsaid.
  const res = await sendStateChange(pm, scenario('brake', 'Allowed'));
  t.is(res.error_code, 'ERROR_CODE_PERMISSION_DENIED');
  t.false(res.error_details.includes('Waiting'), res.error_details);
  t.is(reads, 1);
  // Claiming Satisfied is authorized; the precondition fails without naming the stored state.
  const claimed = await sendStateChange(pm, scenario('brake', 'Allowed', 'Satisfied'));
  t.is(claimed.error_code, 'ERROR_CODE_PRECONDITION_FAILED');
  t.is(claimed.error_details, 'current_state is Satisfied but scenario brake is not in it');
  // A caller that may read is told.
  const r = s.client(grpc.credentials.createSsl(ca.cert, reader.key, reader.cert));
  t.regex((await sendStateChange(r, scenario('brake', 'Allowed'))).error_details, /^cn:pm-reader may not move scenario brake from Waiting to Allowed$/);
  t.regex((await sendStateChange(r, scenario('brake', 'Allowed', 'Satisfied'))).error_details, /current_state is Satisfied but scenario brake is Waiting/);
  t.deepEqual(await allKeys(s), before);
});

test('mTLS: "absent" in from, and "*" allowing everything', async (t) => {
  const s = await startTestServer(client, { tls: tls(), auth: { rules: RULES } });
  // The API server identity only creates: absent -> Idle.
  const apiCert = await ca.issue('apiserver', { cn: 'apiserver', usage: 'client' });
  const api = s.client(grpc.credentials.createSsl(ca.cert, apiCert.key, apiCert.cert));
  t.is((await sendStateChange(api, scenario('new', 'Idle'))).error_code, 'ERROR_CODE_SUCCESS');
  t.is((await sendStateChange(api, scenario('new', 'Waiting'))).error_code, 'ERROR_CODE_PERMISSION_DENIED');
  const admin = mtlsClient(s, 'admin');
  t.is((await sendStateChange(admin, scenario('new', 'Waiting'))).error_code, 'ERROR_CODE_SUCCESS');
  t.is(await sendContainerList(admin, list('any')), 'node any: 1 put, 0 deleted, 0 unchanged');
});

test('deny by default: identities without rules do not start; an empty list denies everything', async (t) => {
  // The issue's case: a client CA, or tokens, and no rules let a node move scenario brake to Idle.
  t.throws(() => parseGrpcServerConfig({ tls: tls() }), { message: /add grpc.auth.rules: .*\(an empty list denies everything/ });
  t.throws(() => parseGrpcServerConfig({ addr: '127.0.0.1:0', auth: { tokens: [{ token: tok('n1'), identity: 'node:n1' }] } }), { message: /add grpc.auth.rules/ });
  const s = await startTestServer(client, { tls: tls(), auth: { rules: [] } });
  const c = mtlsClient(s, 'node-n1');
  t.is((await grpcError(sendContainerList(c, list('n1')))).code, grpc.status.PERMISSION_DENIED);
  const res = await sendStateChange(c, scenario('brake', 'Idle'));
  t.is(res.error_code, 'ERROR_CODE_PERMISSION_DENIED');
  t.is((await allKeys(s)).size, 0);
  t.is(s.logger.lines.find((l) => l.message === 'gRPC server listening')?.meta.authorizationRules, 0);
});

test('with rules, the history records the certificate identity as source when the request names none', async (t) => {
  const s = await startTestServer(client, { tls: tls(), auth: { rules: RULES } });
  const c = mtlsClient(s, 'admin');
  const res = await sendStateChange(c, scenario('s1', 'Idle'));
  t.is(res.error_code, 'ERROR_CODE_SUCCESS');
  const entry = JSON.parse((await getString(client, s.keys.historyKey('scenario', 's1', 1)))!) as HistoryEntry;
  t.is(entry.source, 'cn:admin'); // no source in the request: the certificate identity
  t.is(entry.identity, 'cn:admin');
});

test('TLS without client certificates: plain TLS clients are served', async (t) => {
  const s = await startTestServer(client, { tls: tls({ caFile: false }) });
  t.is(await sendContainerList(mtlsClient(s), list('n1')), 'node n1: 1 put, 0 deleted, 0 unchanged');
  // A plaintext client cannot talk to a TLS server.
  t.is((await grpcError(sendContainerList(s.client(), list('n1')))).code, grpc.status.UNAVAILABLE);
});

test('bearer tokens map to identities (inline and from a file); unknown, malformed or missing tokens are refused', async (t) => {
  const tokenFile = join(pki.dir, 'n5.token');
  await writeFile(tokenFile, 'file-token-n5-0123456789abcdef0123456789\n');
  const s = await startTestServer(client, {
    auth: {
      tokens: [
        { token: tok('inline-token-pm'), identity: 'policymanager' },
        { tokenFile, identity: 'node:n5' },
      ],
      rules: RULES,
    },
  });
  const c = s.client();
  t.is(await sendContainerList(c, list('n5'), bearer('file-token-n5-0123456789abcdef0123456789')), 'node n5: 1 put, 0 deleted, 0 unchanged');
  const before = await allKeys(s);
  t.is((await grpcError(sendContainerList(c, list('n6'), bearer('file-token-n5-0123456789abcdef0123456789')))).code, grpc.status.PERMISSION_DENIED);
  t.true(s.logger.lines.some((l) => l.message === 'gRPC call denied' && l.meta.identity === 'token:node:n5' && l.meta.via === 'token'));

  for (const md of [bearer('wrong-token'), new grpc.Metadata()]) {
    const err = await grpcError(sendContainerList(c, list('n5'), md));
    t.is(err.code, grpc.status.UNAUTHENTICATED, err.details);
  }
  const basic = new grpc.Metadata();
  basic.set('authorization', 'Basic dXNlcjpwYXNz');
  t.is((await grpcError(sendContainerList(c, list('n5'), basic))).code, grpc.status.UNAUTHENTICATED);
  t.is((await grpcError(sendStateChange(c, scenario('s1', 'Idle'), bearer('wrong-token')))).code, grpc.status.UNAUTHENTICATED);
  t.deepEqual(await allKeys(s), before);
  t.true(s.logger.lines.some((l) => l.message === 'gRPC call unauthenticated' && l.meta.reason === 'unknown bearer token'));

  await client.put(s.keys.stateKey('scenario', 's1')).value('Satisfied');
  const res = await sendStateChange(c, { ...scenario('s1', 'Denied'), source: 'policy-engine' }, bearer(tok('inline-token-pm')));
  t.is(res.error_code, 'ERROR_CODE_SUCCESS', res.error_details);
  const entry = JSON.parse((await getString(client, s.keys.historyKey('scenario', 's1', 2)))!) as HistoryEntry;
  t.is(entry.source, 'policy-engine');
  // The caller chose its source; the history also records who it was authenticated as.
  t.is(entry.identity, 'token:policymanager');
  t.true(s.logger.lines.some((l) => l.message === 'state changed' && l.meta.identity === 'token:policymanager'));
});

test('bearer tokens over TLS', async (t) => {
  const s = await startTestServer(client, {
    tls: tls({ caFile: false }),
    auth: { tokens: [{ token: tok('tls-token'), identity: 'node:n7' }], rules: RULES },
  });
  const c = mtlsClient(s);
  t.is(await sendContainerList(c, list('n7'), bearer(tok('tls-token'))), 'node n7: 1 put, 0 deleted, 0 unchanged');
  t.is((await grpcError(sendContainerList(c, list('n7')))).code, grpc.status.UNAUTHENTICATED);
});

test('with a client certificate the certificate is the identity; a token alongside is not consulted', async (t) => {
  const s = await startTestServer(client, {
    tls: tls(),
    auth: { tokens: [{ token: tok('admin-token'), identity: 'admin' }], rules: RULES },
  });
  const c = mtlsClient(s, 'node-n1');
  t.is((await grpcError(sendContainerList(c, list('n2'), bearer(tok('admin-token'))))).code, grpc.status.PERMISSION_DENIED);
});

test('start fails clearly on unreadable certificate or token files and on a taken port', async (t) => {
  const keys = new KeyLayout('unused:');
  const make = (config: unknown) =>
    createStateManagerServer({
      client,
      keys,
      store: new EtcdStateStore({ client, keys, historyLength: 1, requestTimeoutMs: 1000 }),
      logger: captureLogger(),
      config: parseGrpcServerConfig({ addr: '127.0.0.1:0', ...(config as object) }),
    });
  // Files that cannot be used are a refused configuration (exit 2 in src/statemanager.ts); a taken port is not.
  await t.throwsAsync(make({ tls: { ...tls(), keyFile: join(pki.dir, 'missing.key') }, auth: { rules: [] } }).start(), {
    message: /cannot read gRPC TLS key .*missing\.key/,
    instanceOf: ConfigError,
  });
  await t.throwsAsync(make({ auth: { tokens: [{ tokenFile: join(pki.dir, 'missing.token'), identity: 'x' }], rules: [] } }).start(), {
    message: /cannot read token file .*missing\.token/,
    instanceOf: ConfigError,
  });
  const first = await startTestServer(client);
  const taken = await t.throwsAsync(make({ addr: `127.0.0.1:${first.port}` }).start(), { message: /cannot listen for gRPC on 127\.0\.0\.1:\d+/ });
  t.false(taken instanceof ConfigError);
  const twice = make({});
  await twice.start();
  await t.throwsAsync(twice.start(), { message: /already started/ });
  await twice.stop();
});
