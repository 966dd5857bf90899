// Certificates, client CA and token files rotated under a running server, over real gRPC with
// real certificates and a real etcd: new connections see the new certificate and CA, the old
// token is refused and the new one accepted, and a broken file keeps the old credentials
// serving, logged and counted (statemanager_credentials_reloads_total{outcome="error"}).
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../domain/keys.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { parseGrpcServerConfig, type GrpcServerConfigInput } from '../../src/grpc/config.js';
import { createStateManagerServer, type StateManagerServer } from '../../src/grpc/server.js';
import { Metrics } from '../../src/observability/metrics.js';
import type { ReloadMetrics } from '../../src/process/file-reloader.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { createTestPki, type CertificateAuthority, type IssuedCert, type TestPki } from '../helpers/certs.js';
import { assert, eventually } from '../helpers/eventually.js';
import { bearer, captureLogger, grpcError, proto, sendContainerList, uniquePrefix } from './_support.js';

const RELOAD_MS = 100;
const EVERYONE = [{ identities: ['token:*', 'cn:*'], allow: [{ method: '*' as const }] }];

let etcd: EtcdServer;
let client: Etcd3;
let pki: TestPki;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let certA: IssuedCert;
let certB: IssuedCert;
let dir: string;
const stops: (() => Promise<void> | void)[] = [];

test.before(async () => {
  etcd = await startEtcd();
  client = etcd.client();
  pki = await createTestPki();
  [ca, otherCa] = await Promise.all([pki.createCa('ca'), pki.createCa('other-ca')]);
  const sans = ['DNS:localhost', 'IP:127.0.0.1'];
  [certA, certB] = await Promise.all([ca.issue('server-a', { cn: 'statemanager-a', sans, usage: 'server' }), ca.issue('server-b', { cn: 'statemanager-b', sans, usage: 'server' })]);
  dir = await mkdtemp(join(tmpdir(), 'sm-reload-'));
});

test.after.always(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  client?.close();
  await etcd?.stop();
  await pki?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * A directory laid out as Kubernetes mounts a Secret: `name -> ..data/name`, and `..data` a
 * symlink to a versioned directory, swapped in one rename. Every file changes at once.
 */
async function secretDir(name: string, files: Record<string, Buffer | string>): Promise<{ path(file: string): string; update(files: Record<string, Buffer | string>): Promise<void> }> {
  const root = join(dir, name);
  await mkdir(root);
  let version = 0;
  const update = async (next: Record<string, Buffer | string>): Promise<void> => {
    const v = join(root, `..v${++version}`);
    await mkdir(v);
    for (const [f, data] of Object.entries(next)) await writeFile(join(v, f), data);
    await symlink(`..v${version}`, join(root, '..data.tmp'));
    await rename(join(root, '..data.tmp'), join(root, '..data'));
  };
  await update(files);
  for (const f of Object.keys(files)) await symlink(join('..data', f), join(root, f));
  return { path: (f) => join(root, f), update };
}

interface RecordedReloads {
  /** `what:outcome` of every reload. */
  calls: string[];
  count(what: string, outcome: string): number;
  /** The real registry the reloads are counted in as well. */
  metrics: Metrics;
  reloadMetrics: ReloadMetrics;
}

function recordingReloads(): RecordedReloads {
  const calls: string[] = [];
  const metrics = new Metrics({ defaultMetrics: false });
  const real = metrics.credentials();
  return {
    calls,
    metrics,
    count: (what, outcome) => calls.filter((c) => c === `${what}:${outcome}`).length,
    reloadMetrics: {
      reloaded: (what, outcome) => {
        calls.push(`${what}:${outcome}`);
        real.reloaded(what, outcome);
      },
      loaded: (what, at) => real.loaded(what, at),
    },
  };
}

async function startServer(config: GrpcServerConfigInput) {
  const keys = new KeyLayout(uniquePrefix());
  const logger = captureLogger();
  const reloads = recordingReloads();
  const server: StateManagerServer = createStateManagerServer({
    client,
    keys,
    store: new EtcdStateStore({ client, keys, historyLength: 10, requestTimeoutMs: 3000 }),
    logger,
    config: parseGrpcServerConfig({ addr: '127.0.0.1:0', ...config }),
    metrics: { request: () => undefined, credentials: reloads.reloadMetrics },
    credentialsReloadMs: RELOAD_MS,
    shutdownTimeoutMs: 1000,
  });
  const { port } = await server.start();
  stops.push(() => server.stop());
  return { port, logger, reloads, server };
}

function grpcClient(port: number, creds: grpc.ChannelCredentials) {
  const c = new proto.statemanager.StateManagerConnection(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  stops.push(() => c.close());
  return c;
}

/** The CN of the certificate a new TLS connection is served (verified against `trust`). */
function servedCn(port: number, trust: Buffer, clientCert?: IssuedCert): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca: trust, servername: 'localhost', ALPNProtocols: ['h2'], ...(clientCert ? { cert: clientCert.cert, key: clientCert.key } : {}) }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(String(cn));
    });
    socket.on('error', reject);
  });
}

const list = (node: string) => ({ node_name: node, containers: [{ id: 'c1', image: 'img' }] });

async function metricValue(m: Metrics, series: string): Promise<number | undefined> {
  const line = (await m.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test.serial('a rotated server certificate is served to new connections; open connections go on', async (t) => {
  const files = await secretDir('tls-rotate', { 'tls.crt': certA.cert, 'tls.key': certA.key });
  const s = await startServer({ tls: { certFile: files.path('tls.crt'), keyFile: files.path('tls.key') } });
  t.is(await servedCn(s.port, ca.cert), 'statemanager-a');
  const open = grpcClient(s.port, grpc.credentials.createSsl(ca.cert));
  t.is(await sendContainerList(open, list('n1')), 'node n1: 1 put, 0 deleted, 0 unchanged');
  t.is(await metricValue(s.reloads.metrics, 'statemanager_credentials_reloads_total{what="grpc_tls",outcome="success"}'), 0);

  await files.update({ 'tls.crt': certB.cert, 'tls.key': certB.key });
  await eventually(async () => assert.strictEqual(await servedCn(s.port, ca.cert), 'statemanager-b'));
  t.is(s.reloads.count('grpc_tls', 'success'), 1);
  t.is(s.reloads.count('grpc_tls', 'error'), 0);
  t.is(await metricValue(s.reloads.metrics, 'statemanager_credentials_reloads_total{what="grpc_tls",outcome="success"}'), 1);
  t.true((await metricValue(s.reloads.metrics, 'statemanager_credentials_last_reload_timestamp_seconds{what="grpc_tls"}'))! > Date.now() / 1000 - 60);
  const line = s.logger.lines.find((l) => l.message === 'gRPC TLS certificate in service');
  t.regex(String(line?.meta.subject), /CN=statemanager-b/);
  // The connection opened before the rotation still works, and so does a new one.
  t.is(await sendContainerList(open, list('n1')), 'node n1: 0 put, 0 deleted, 1 unchanged');
  t.is(await sendContainerList(grpcClient(s.port, grpc.credentials.createSsl(ca.cert)), list('n2')), 'node n2: 1 put, 0 deleted, 0 unchanged');
});

test.serial('a broken certificate, key or pair keeps the old certificate serving, and is logged and counted once', async (t) => {
  const files = await secretDir('tls-broken', { 'tls.crt': certA.cert, 'tls.key': certA.key });
  const s = await startServer({ tls: { certFile: files.path('tls.crt'), keyFile: files.path('tls.key') } });
  const errors = (): number => s.reloads.count('grpc_tls', 'error');
  const breakages: [Record<string, Buffer | string>, RegExp][] = [
    [{ 'tls.crt': 'not a certificate', 'tls.key': certA.key }, /gRPC TLS certificate \S+tls\.crt cannot be used/],
    [{ 'tls.crt': certA.cert, 'tls.key': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }, /gRPC TLS key \S+tls\.key cannot be used/],
    // Half a rotation: B's certificate with A's key.
    [{ 'tls.crt': certB.cert, 'tls.key': certA.key }, /gRPC TLS certificate and key \S+tls\.crt, \S+tls\.key cannot be used/],
  ];
  for (const [broken, message] of breakages) {
    const before = errors();
    await files.update(broken);
    await eventually(() => assert.strictEqual(errors(), before + 1));
    t.regex(String(s.logger.lines.filter((l) => l.level === 'error').at(-1)?.meta.error), message);
    t.is(await servedCn(s.port, ca.cert), 'statemanager-a');
    t.regex(await sendContainerList(grpcClient(s.port, grpc.credentials.createSsl(ca.cert)), list('n3')), /^node n3: /);
  }
  // Still broken at the next polls: not counted again.
  await new Promise((r) => setTimeout(r, RELOAD_MS * 4));
  t.is(errors(), breakages.length);
  // Unreadable (the file vanished): counted, old certificate kept.
  await unlink(files.path('tls.key'));
  await eventually(() => assert.strictEqual(errors(), breakages.length + 1));
  t.regex(String(s.logger.lines.filter((l) => l.level === 'error').at(-1)?.meta.error), /cannot read gRPC TLS key \S+tls\.key/);
  t.is(await servedCn(s.port, ca.cert), 'statemanager-a');
  // Repaired: the new pair goes in service.
  await files.update({ 'tls.crt': certB.cert, 'tls.key': certB.key });
  await symlink(join('..data', 'tls.key'), files.path('tls.key'));
  await eventually(async () => assert.strictEqual(await servedCn(s.port, ca.cert), 'statemanager-b'));
  t.is(s.reloads.count('grpc_tls', 'success'), 1);
  t.is(await metricValue(s.reloads.metrics, 'statemanager_credentials_reloads_total{what="grpc_tls",outcome="error"}'), breakages.length + 1);
});

test.serial('a rotated client CA: new connections are verified against the new CA', async (t) => {
  const [fromCa, fromOther] = await Promise.all([ca.issue('client-ca', { cn: 'node:n1', usage: 'client' }), otherCa.issue('client-other', { cn: 'node:n1', usage: 'client' })]);
  const files = await secretDir('mtls', { 'tls.crt': certA.cert, 'tls.key': certA.key, 'ca.crt': ca.cert });
  const s = await startServer({ tls: { certFile: files.path('tls.crt'), keyFile: files.path('tls.key'), caFile: files.path('ca.crt') }, auth: { rules: EVERYONE } });
  const mtls = (c: IssuedCert) => grpcClient(s.port, grpc.credentials.createSsl(ca.cert, c.key, c.cert));
  t.is(await sendContainerList(mtls(fromCa), list('m1')), 'node m1: 1 put, 0 deleted, 0 unchanged');
  t.is((await grpcError(sendContainerList(mtls(fromOther), list('m1')))).code, grpc.status.UNAVAILABLE);

  await files.update({ 'tls.crt': certA.cert, 'tls.key': certA.key, 'ca.crt': otherCa.cert });
  await eventually(() => assert.strictEqual(s.reloads.count('grpc_tls', 'success'), 1));
  t.is(await sendContainerList(mtls(fromOther), list('m1')), 'node m1: 0 put, 0 deleted, 1 unchanged');
  t.is((await grpcError(sendContainerList(mtls(fromCa), list('m1')))).code, grpc.status.UNAVAILABLE);
  // A CA file that is not a certificate keeps the CA in service.
  await files.update({ 'tls.crt': certA.cert, 'tls.key': certA.key, 'ca.crt': 'garbage' });
  await eventually(() => assert.strictEqual(s.reloads.count('grpc_tls', 'error'), 1));
  t.regex(String(s.logger.lines.filter((l) => l.level === 'error').at(-1)?.meta.error), /gRPC TLS CA \S+ca\.crt cannot be used/);
  t.is(await sendContainerList(mtls(fromOther), list('m1')), 'node m1: 0 put, 0 deleted, 1 unchanged');
});

const TOKEN_1 = 'first-token-0123456789abcdef0123456789';
const TOKEN_2 = 'second-token-0123456789abcdef0123456789';

test.serial('a rotated token file: the old token is refused and the new one accepted, without a restart', async (t) => {
  const files = await secretDir('tokens', { n1: `${TOKEN_1}\n` });
  const s = await startServer({ auth: { tokens: [{ identity: 'node:n1', tokenFile: files.path('n1') }], rules: EVERYONE } });
  const c = grpcClient(s.port, grpc.credentials.createInsecure());
  t.is(await sendContainerList(c, list('t1'), bearer(TOKEN_1)), 'node t1: 1 put, 0 deleted, 0 unchanged');

  await files.update({ n1: `${TOKEN_2}\n` });
  await eventually(() => assert.strictEqual(s.reloads.count('grpc_tokens', 'success'), 1));
  const refused = await grpcError(sendContainerList(c, list('t1'), bearer(TOKEN_1)));
  t.is(refused.code, grpc.status.UNAUTHENTICATED);
  t.is(refused.details, 'unknown bearer token');
  t.is(await sendContainerList(c, list('t1'), bearer(TOKEN_2)), 'node t1: 0 put, 0 deleted, 1 unchanged');
  t.is(await metricValue(s.reloads.metrics, 'statemanager_credentials_reloads_total{what="grpc_tokens",outcome="success"}'), 1);

  // Broken files keep the table in service: too short, empty, unreadable.
  const broken: [() => Promise<void>, RegExp][] = [
    [() => files.update({ n1: 'short-token\n' }), /token file \S+n1 holds a token of 11 bytes: at least 32 are needed/],
    [() => files.update({ n1: '\n' }), /token file \S+n1 is empty/],
    [() => unlink(files.path('n1')), /cannot read token file \S+n1/],
  ];
  for (const [i, [breakIt, message]] of broken.entries()) {
    await breakIt();
    await eventually(() => assert.strictEqual(s.reloads.count('grpc_tokens', 'error'), i + 1));
    t.regex(String(s.logger.lines.filter((l) => l.level === 'error').at(-1)?.meta.error), message);
    t.is(await sendContainerList(c, list('t1'), bearer(TOKEN_2)), 'node t1: 0 put, 0 deleted, 1 unchanged');
    t.is((await grpcError(sendContainerList(c, list('t1'), bearer('short-token')))).code, grpc.status.UNAUTHENTICATED);
  }
  t.is(await metricValue(s.reloads.metrics, 'statemanager_credentials_reloads_total{what="grpc_tokens",outcome="error"}'), broken.length);
});

test.serial('start-up refuses a token file shorter than 32 bytes, naming it; 32 bytes are enough', async (t) => {
  const files = await secretDir('short', { t31: `${'x'.repeat(31)}\n`, t32: `${'y'.repeat(32)}\n` });
  const make = (file: string) =>
    createStateManagerServer({
      client,
      keys: new KeyLayout(uniquePrefix()),
      store: new EtcdStateStore({ client, keys: new KeyLayout('unused:'), historyLength: 1, requestTimeoutMs: 1000 }),
      logger: captureLogger(),
      config: parseGrpcServerConfig({ addr: '127.0.0.1:0', auth: { tokens: [{ identity: 'x', tokenFile: file }], rules: EVERYONE } }),
    });
  await t.throwsAsync(make(files.path('t31')).start(), { message: /^token file \S+t31 holds a token of 31 bytes: at least 32 are needed/ });
  const ok = make(files.path('t32'));
  await ok.start();
  stops.push(() => ok.stop());
  t.pass();
});
