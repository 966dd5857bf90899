// The command line over gRPC (--server) against real statemanager processes and a real etcd:
// the same fleet read both ways prints the same where the API serves the same data; bearer
// tokens, TLS and mutual TLS; one-line errors; what stays etcd-only.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startActionController, type FakeActionController } from '../helpers/action-controller.js';
import { createTestPki, type CertificateAuthority, type IssuedCert, type TestPki } from '../helpers/certs.js';
import { DraftClient } from '../helpers/draft-client.js';
import { freePort, startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { cli, type RunOptions } from './_harness.js';

let etcd: EtcdServer;
let ac: FakeActionController;
let pki: TestPki;
let dir: string;
const replicas: Replica[] = [];
const PREFIX = '/cli-grpc';
let fleet: Replica;

/** The "now" both ways read at: 5 s after the fleet settled (set then), so every SINCE is "…s ago". */
let NOW = 0;

test.before(async () => {
  etcd = await startEtcd();
  ac = await startActionController();
  pki = await createTestPki();
  dir = mkdtempSync(join(tmpdir(), 'sm-cli-grpc-'));
  const w = new FleetWriter(etcd.client(), PREFIX);
  await w.packageDef('shop', ['web', 'db', 'cache']);
  await w.packageDef('idle', []);
  await w.scenarioDef('shop-scn', 'shop');
  await w.container('n1', 'c1', 'web', 'running');
  await w.container('n2', 'c2', 'web', 'running');
  await w.container('n1', 'c3', 'db', 'dead');
  fleet = await replica(PREFIX, 'cli-grpc-fleet');
  const api = new DraftClient(`127.0.0.1:${fleet.grpcPort}`);
  try {
    for (const target of ['Idle', 'Waiting']) {
      const r = await api.sendStateChange({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: 'shop-scn', target_state: target, source: 'api-server' });
      if (r.error_code !== 'ERROR_CODE_SUCCESS') throw new Error(JSON.stringify(r));
    }
  } finally {
    api.close();
  }
  // Settled: every package and model has its state, and nothing changes any more.
  let last = '';
  await eventually(
    async () => {
      const now = JSON.stringify([await w.states('package'), await w.states('model'), await w.state('scenario', 'shop-scn')]);
      const settled = now === last && now.includes('Degraded') && now.includes('Waiting') && now.includes('"cache"');
      last = now;
      assert.ok(settled, now);
    },
    { intervalMs: 300, timeoutMs: 20_000 },
  );
  // Fixed at module load it was reached before the fleet settled on a loaded machine ("just now").
  NOW = Date.now() + 5_000;
});

test.after.always(async () => {
  await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
  await ac?.stop();
  await etcd?.stop();
  await pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function replica(prefix: string, identity: string, config: Record<string, unknown> = {}): Promise<Replica> {
  const r = await startReplica({ identity, etcdEndpoint: etcd.endpoint, acAddr: ac.addr, config: { keyPrefix: prefix, ...config } });
  replicas.push(r);
  await eventually(async () => assert.strictEqual((await r.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  return r;
}


/** The same command from etcd and over gRPC, at the same "now". */
async function both(argv: string[], o: RunOptions = {}) {
  const viaEtcd = await cli(argv, { now: NOW, env: { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: PREFIX }, ...o });
  const viaGrpc = await cli(['--server', `127.0.0.1:${fleet.grpcPort}`, ...argv], { now: NOW, env: {}, ...o });
  return { viaEtcd, viaGrpc };
}

/** The table cut before the column `header` (and everything after it). */
function cutBefore(table: string, header: string): string {
  const at = table.indexOf(header);
  if (at < 0) throw new Error(`no column ${header} in ${table}`);
  return table
    .split('\n')
    .map((l) => l.slice(0, at).trimEnd())
    .join('\n');
}

const pick = <T extends object, K extends keyof T>(o: T, keys: readonly K[]): Pick<T, K> =>
  Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]])) as Pick<T, K>;

// The API does not say whether an edge is drawn, nor who was authenticated: from etcd those show
// as "(not a drawn edge)" and an IDENTITY column; otherwise the histories are the same.
const UNDRAWN = / \(not a drawn edge\)/g;

/** A table's cells (columns are three or more spaces apart). */
const cells = (table: string): string[][] =>
  table
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/ {3,}/));

// --- get ---------------------------------------------------------------------------------------

test('get over gRPC: the etcd table without its etcd-only column; JSON rows agree on name, state and since', async (t) => {
  for (const [kind, etcdOnly] of [
    ['packages', 'MODELS'],
    ['models', 'CONTAINERS'],
    ['scenarios', 'TARGET'],
  ] as const) {
    const { viaEtcd, viaGrpc } = await both(['get', kind]);
    t.is(viaGrpc.code, 0, viaGrpc.stderr);
    t.is(viaGrpc.stderr, '');
    t.is(viaGrpc.stdout, cutBefore(viaEtcd.stdout, etcdOnly), kind);
    t.regex(viaGrpc.stdout, /^NAME +STATE +SINCE\n/);

    const j = await both(['get', kind, '-o', 'json']);
    const fromEtcd = JSON.parse(j.viaEtcd.stdout) as { name: string; state: string | null; since: string | null }[];
    const fromGrpc = JSON.parse(j.viaGrpc.stdout) as { name: string; state: string | null; since: string | null; generation: number }[];
    t.deepEqual(
      fromGrpc.map((r) => pick(r, ['name', 'state', 'since'])),
      fromEtcd.map((r) => pick(r, ['name', 'state', 'since'])),
    );
    t.true(fromGrpc.length >= 1);
  }
  const packages = (await both(['get', 'packages'])).viaGrpc.stdout;
  t.regex(packages, /\nshop +Degraded +\S+ ago\n/);
});

test('get NAME over gRPC: one object with the generation (the state key version); a missing one exits 1', async (t) => {
  const { viaEtcd, viaGrpc } = await both(['get', 'package', 'shop', '-o', 'yaml']);
  t.is(viaGrpc.code, 0, viaGrpc.stderr);
  const kv = await etcd.client().get(`${PREFIX}/package/shop/state`).exec();
  t.true(viaGrpc.stdout.includes(`generation: ${kv.kvs[0]!.version}\n`), viaGrpc.stdout);
  t.true(viaGrpc.stdout.startsWith(viaEtcd.stdout.split('defined:')[0]!), `${viaGrpc.stdout}\n${viaEtcd.stdout}`);
  for (const argv of [
    ['get', 'package', 'nope'],
    ['get', 'models', 'nope', '-o', 'json'],
    ['history', 'scenario', 'nope'],
    ['describe', 'model', 'nope'],
  ]) {
    const r = await both(argv);
    t.is(r.viaGrpc.code, 1, argv.join(' '));
    t.is(r.viaGrpc.stdout, '');
    t.is(r.viaGrpc.stderr, r.viaEtcd.stderr, argv.join(' '));
    t.regex(r.viaGrpc.stderr, /^statemanager: (package|model|scenario) "nope" not found\n$/);
  }
});

// --- history -------------------------------------------------------------------------------------

test('history over gRPC: the same table and entries as from etcd', async (t) => {
  for (const [kind, name] of [
    ['package', 'shop'],
    ['model', 'web'],
  ] as const) {
    const { viaEtcd, viaGrpc } = await both(['history', kind, name]);
    t.is(viaGrpc.code, 0, viaGrpc.stderr);
    t.deepEqual(cells(viaGrpc.stdout), cells(viaEtcd.stdout.replace(UNDRAWN, '')), `${kind}/${name}`);
    t.regex(viaGrpc.stdout, /^TIME +AGE +TRANSITION +REASON +SOURCE\n/);
  }
  const { viaEtcd, viaGrpc } = await both(['history', 'scenario', 'shop-scn', '-o', 'json']);
  const fromEtcd = JSON.parse(viaEtcd.stdout) as Record<string, unknown>[];
  const fromGrpc = JSON.parse(viaGrpc.stdout) as Record<string, unknown>[];
  t.is(fromGrpc.length, 2);
  t.deepEqual(
    fromGrpc,
    fromEtcd.map(({ drawn: _drawn, ...rest }) => rest),
  );
  t.like(fromGrpc[1], { kind: 'scenario', name: 'shop-scn', from: 'Idle', to: 'Waiting', reason: 'requested', source: 'api-server', identity: 'anonymous' });
  // Both show who was authenticated as asking for the requested changes.
  const tables = await both(['history', 'scenario', 'shop-scn']);
  t.regex(tables.viaEtcd.stdout, /IDENTITY/);
  t.deepEqual(cells(tables.viaGrpc.stdout), cells(tables.viaEtcd.stdout.replace(UNDRAWN, '')));
});

// --- describe ------------------------------------------------------------------------------------

test('describe over gRPC: the heading and history as from etcd, the generation and health, and what needs etcd', async (t) => {
  for (const [kind, name] of [
    ['package', 'shop'],
    ['model', 'web'],
  ] as const) {
    const { viaEtcd, viaGrpc } = await both(['describe', kind, name]);
    t.is(viaGrpc.code, 0, viaGrpc.stderr);
    const e = viaEtcd.stdout.split('\n');
    const g = viaGrpc.stdout.split('\n');
    t.is(g[0], e[0], 'the heading');
    // The resource's own history rows: under "│  " from etcd (it has children), "   " over gRPC.
    const rows = (lines: string[], lead: string) => lines.filter((l) => l.startsWith(lead + '  ')).map((l) => l.slice(lead.length + 2).replace(UNDRAWN, '').split(/ {3,}/));
    t.deepEqual(rows(g, '   '), rows(e, '│  '));
    t.true(rows(g, '   ').length >= 1);
    t.regex(viaGrpc.stdout, /\n {3}generation: \d+ \(read at revision \d+\)\n {3}health: (un)?healthy \([a-z]+ \S+ is \w+\)\n {3}history/);
    t.regex(viaGrpc.stdout, /\n {3}not served over gRPC: .*containers.* \(read etcd, without --server, for those\)\n$/);
  }
  const { viaEtcd, viaGrpc } = await both(['describe', 'package', 'shop', '-o', 'json', '--history', '1']);
  const d = JSON.parse(viaGrpc.stdout);
  const fromEtcd = JSON.parse(viaEtcd.stdout);
  t.like(d, pick(fromEtcd, ['kind', 'name', 'state', 'since', 'historyTotal']));
  t.deepEqual(
    d.history,
    fromEtcd.history.map(({ drawn: _drawn, ...rest }: Record<string, unknown>) => rest),
  );
  t.like(d, { health: { healthy: false, message: 'package shop is Degraded' }, notServed: ['definition', 'models', 'containers', 'scenario', 'reconcile request'] });
  t.true(Number.isInteger(d.generation) && Number.isInteger(d.revision));
  t.false('models' in d || 'definition' in d);
});

// --- credentials -------------------------------------------------------------------------------

test('bearer tokens: --token, --token-file and STATEMANAGER_TOKEN are sent; a wrong, missing or unauthorized one is one line, exit 1', async (t) => {
  const r = await replica('/cli-grpc-auth', 'cli-grpc-auth', {
    grpc: {
      auth: {
        tokens: [
          { identity: 'ops', token: 'ops-s3cret-0123456789abcdef0123456789' },
          { identity: 'node-n1', token: 'node-s3cret-0123456789abcdef0123456789' },
        ],
        rules: [{ identities: ['token:ops'], allow: [{ method: 'read' }] }],
      },
    },
  });
  const addr = `127.0.0.1:${r.grpcPort}`;
  const file = join(dir, 'token');
  writeFileSync(file, 'ops-s3cret-0123456789abcdef0123456789\n');
  for (const [argv, env] of [
    [['--token', 'ops-s3cret-0123456789abcdef0123456789'], {}],
    [['--token-file', file], {}],
    [[], { STATEMANAGER_TOKEN: 'ops-s3cret-0123456789abcdef0123456789' }],
    [[], { STATEMANAGER_TOKEN: 'ops-s3cret-0123456789abcdef0123456789', STATEMANAGER_SERVER: addr }],
  ] as const) {
    const server = 'STATEMANAGER_SERVER' in env ? [] : ['--server', addr];
    const ok = await cli([...server, ...argv, 'get', 'packages', '-o', 'json'], { env });
    t.is(ok.code, 0, `${argv.join(' ')}: ${ok.stderr}`);
    t.deepEqual(JSON.parse(ok.stdout), []);
  }

  const wrong = await cli(['--server', addr, '--token', 'guess', 'get', 'packages'], { env: {} });
  t.is(wrong.code, 1);
  t.is(wrong.stdout, '');
  t.is(wrong.stderr, `statemanager: statemanager at ${addr} refused the credentials: unknown bearer token\n`);
  const none = await cli(['--server', addr, 'history', 'package', 'p'], { env: {} });
  t.is(none.code, 1);
  t.is(
    none.stderr,
    `statemanager: statemanager at ${addr} refused the credentials: no client certificate and no bearer token (no token given: use --token, --token-file or STATEMANAGER_TOKEN, or a client certificate)\n`,
  );
  const denied = await cli(['--server', addr, '--token', 'node-s3cret-0123456789abcdef0123456789', 'describe', 'package', 'p'], { env: {} });
  t.is(denied.code, 1);
  t.is(denied.stderr, `statemanager: statemanager at ${addr} refused the request: token:node-n1 may not read states\n`);
  const watch = await cli(['--server', addr, '--token', 'guess', 'watch'], { env: {} });
  t.is(watch.code, 1);
  t.is(watch.stderr, wrong.stderr);
});

test('TLS: --ca verifies the server, --cert/--key make it mutual, --server-name overrides the name checked', async (t) => {
  const ca: CertificateAuthority = await pki.createCa('cli-ca');
  // The certificate names only statemanager.test: dialling 127.0.0.1 needs --server-name.
  const server: IssuedCert = await ca.issue('cli-server', { cn: 'statemanager', sans: ['DNS:statemanager.test'], usage: 'server' });
  const operator: IssuedCert = await ca.issue('cli-operator', { cn: 'operator', usage: 'client' });
  const r = await replica('/cli-grpc-tls', 'cli-grpc-tls', {
    grpc: { tls: { certFile: server.certFile, keyFile: server.keyFile, caFile: ca.certFile }, auth: { rules: [{ identities: ['cn:operator'], allow: [{ method: 'read' }] }] } },
  });
  const addr = `127.0.0.1:${r.grpcPort}`;
  const mutual = ['--ca', ca.certFile, '--cert', operator.certFile, '--key', operator.keyFile];

  const ok = await cli(['--server', addr, ...mutual, '--server-name', 'statemanager.test', 'get', 'scenarios', '-o', 'json'], { env: {} });
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(JSON.parse(ok.stdout), []);

  for (const [argv, why] of [
    [['--ca', ca.certFile, '--server-name', 'statemanager.test'], 'TLS handshake failed: tlsv13 alert certificate required \\(the server wants a client certificate: --cert and --key\\)'],
    [mutual, "Hostname/IP does not match certificate's altnames: .* \\(--server-name NAME checks the certificate against another name\\)"],
    [['--tls', '--cert', operator.certFile, '--key', operator.keyFile, '--server-name', 'statemanager.test'], 'self-signed certificate in certificate chain \\(give the CA that issued the server certificate with --ca\\)'],
    [[], 'Failed to connect \\(if the server serves TLS: --tls or --ca\\)'],
  ] as const) {
    const bad = await cli(['--server', addr, ...argv, '--timeout', '2s', 'get', 'packages'], { env: {} });
    t.is(bad.code, 1, why);
    t.is(bad.stdout, '');
    t.regex(bad.stderr, new RegExp(`^statemanager: cannot reach statemanager at ${addr}: ${why}\\n$`));
  }
});

// --- usage and reachability --------------------------------------------------------------------

test('usage: gRPC flags need --server, etcd flags do not mix with it, resync is etcd-only; each one line, exit 2', async (t) => {
  const cases: [string[], NodeJS.ProcessEnv, string][] = [
    [['--token', 't', 'get', 'packages'], {}, '--token needs --server (or STATEMANAGER_SERVER)'],
    [['--tls', '--ca', '/x', 'get', 'packages'], {}, '--tls, --ca need --server (or STATEMANAGER_SERVER)'],
    [['--server', '127.0.0.1:1', '--endpoints', 'http://127.0.0.1:2379', 'get', 'packages'], {}, '--endpoints is for reading etcd directly and cannot be combined with --server'],
    [['--server', '127.0.0.1:1', '--prefix', '/x', '--config', '/y', 'get', 'packages'], {}, '--config, --prefix are for reading etcd directly and cannot be combined with --server'],
    [['--server', 'nohost', 'get', 'packages'], {}, '--server "nohost" is not host:port (e.g. 127.0.0.1:47006 or statemanager.edge.svc:47006)'],
    [['get', 'packages'], { STATEMANAGER_SERVER: 'a b:1' }, 'STATEMANAGER_SERVER "a b:1" is not host:port (e.g. 127.0.0.1:47006 or statemanager.edge.svc:47006)'],
    [['--server', '127.0.0.1:1', '--token', 'a', '--token-file', '/x', 'get', 'packages'], {}, 'give --token or --token-file, not both'],
    [['--server', '127.0.0.1:1', '--cert', '/x', 'get', 'packages'], {}, '--cert and --key go together (the client certificate of mutual TLS and its key)'],
    [['--server', '127.0.0.1:1', '--ca', '/nonexistent/ca.pem', 'get', 'packages'], {}, "cannot read --ca file /nonexistent/ca.pem: ENOENT: no such file or directory, open '/nonexistent/ca.pem'"],
    [['--server', '127.0.0.1:1', 'resync'], {}, 'resync writes a request into etcd and is not served over gRPC: drop --server and run it with etcd access'],
    [['resync', 'package', 'p'], { STATEMANAGER_SERVER: '127.0.0.1:1' }, 'resync writes a request into etcd and is not served over gRPC: unset STATEMANAGER_SERVER or give --endpoints and run it with etcd access'],
  ];
  for (const [argv, env, message] of cases) {
    const r = await cli(argv, { env });
    t.is(r.code, 2, argv.join(' '));
    t.is(r.stderr, `statemanager: ${message}\n`, argv.join(' '));
    t.is(r.stdout, '');
  }
  // An etcd flag wins over STATEMANAGER_SERVER from the environment: etcd is read.
  const viaEtcd = await cli(['--endpoints', etcd.endpoint, '--prefix', PREFIX, 'get', 'scenario', 'shop-scn', '-o', 'json'], { env: { STATEMANAGER_SERVER: '127.0.0.1:1' } });
  t.is(viaEtcd.code, 0, viaEtcd.stderr);
  t.is(JSON.parse(viaEtcd.stdout).target, 'shop');
  const help = await cli(['--help'], { env: {} });
  t.regex(help.stdout, /--server <host:port>[\s\S]*--token <token>[\s\S]*--token-file <file>[\s\S]*--tls[\s\S]*--ca <file>[\s\S]*--cert <file>[\s\S]*--key <file>[\s\S]*--server-name <name>/);
});

test('TLS files that are not what their flag says, or a key of another certificate: one line naming the flag, exit 2', async (t) => {
  // Found by black-box probing: "unexpected error" (exit 1), a bare OpenSSL line, a non-PEM --ca taken.
  const ca = await pki.createCa('cli-flags');
  const a = await ca.issue('a', { cn: 'a', usage: 'client' });
  const b = await ca.issue('b', { cn: 'b', usage: 'client' });
  const garbage = join(dir, 'garbage.pem');
  writeFileSync(garbage, 'not pem\n');
  for (const [flags, message] of [
    [['--ca', garbage], /^statemanager: --ca \S+garbage\.pem is not a PEM certificate: /],
    [['--cert', garbage, '--key', a.keyFile], /^statemanager: --cert \S+garbage\.pem is not a PEM certificate: /],
    [['--cert', a.certFile, '--key', garbage], /^statemanager: --key \S+garbage\.pem is not a PEM private key: /],
    [['--cert', a.certFile, '--key', b.keyFile], /^statemanager: --cert \S+ and --key \S+ cannot be used together: /],
  ] as const) {
    const r = await cli(['--server', '127.0.0.1:1', ...flags, 'get', 'packages'], { env: {} });
    t.is(r.code, 2, flags.join(' '));
    t.regex(r.stderr, message, flags.join(' '));
    t.is(r.stderr.trimEnd().split('\n').length, 1);
  }
});

test('an unreachable server: every command exits 1 within seconds, with one clear line', async (t) => {
  const port = await freePort(); // nothing listens there
  for (const argv of [
    ['get', 'packages'],
    ['get', 'model', 'web'],
    ['describe', 'package', 'shop'],
    ['history', 'model', 'web'],
    ['watch', '--count', '1'],
  ]) {
    const r = await cli(['--server', `127.0.0.1:${port}`, ...argv], { env: {} });
    t.is(r.code, 1, argv.join(' '));
    t.is(r.stdout, '');
    t.is(r.stderr, `statemanager: cannot reach statemanager at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`, argv.join(' '));
    t.true(r.ms < 5000, `${argv.join(' ')} took ${r.ms} ms`);
  }
});

test('a server whose etcd is away: describe says the history is unavailable, get lists without SINCE and says why, history names etcd', async (t) => {
  // Found by black-box probing: describe said "no recorded transition … none recorded" (exit 0),
  // and the list failed whole as "cannot reach statemanager", statemanager being up.
  const own = await startEtcd();
  t.teardown(() => own.stop());
  const w = new FleetWriter(own.client(), '/cli-away');
  await w.packageDef('shop', ['web']);
  await w.container('n1', 'c1', 'web', 'running');
  const r = await startReplica({ identity: 'cli-away', etcdEndpoint: own.endpoint, acAddr: ac.addr, config: { keyPrefix: '/cli-away' } });
  replicas.push(r);
  await eventually(async () => assert.strictEqual(await w.state('package', 'shop'), 'Running'), { timeoutMs: 20_000 });
  const server = ['--server', `127.0.0.1:${r.grpcPort}`];
  t.regex((await cli([...server, 'describe', 'package', 'shop'], { env: {} })).stdout, /^package\/shop {3}Running {3}since .*\n[\s\S]*history/);
  await own.kill();

  const described = await cli([...server, 'describe', 'package', 'shop'], { env: {} });
  t.is(described.code, 0, described.stderr);
  t.regex(described.stdout, /^package\/shop {3}Running {3}since unknown \(history unavailable\)\n/);
  t.regex(described.stdout, /\n {3}history: unavailable \(.+\)\n/);
  t.notRegex(described.stdout, /none recorded|no recorded transition/);
  const json = JSON.parse((await cli([...server, 'describe', 'package', 'shop', '-o', 'json'], { env: {} })).stdout);
  t.like(json, { state: 'Running', since: null, history: [] });
  t.true(typeof json.historyUnavailable === 'string' && json.historyUnavailable !== '');

  const listed = await cli([...server, 'get', 'packages'], { env: {} });
  t.is(listed.code, 0, listed.stderr);
  t.regex(listed.stdout, /shop +Running/);
  t.regex(listed.stderr, new RegExp(`^statemanager: SINCE not shown for 1 of 1 packages: statemanager at 127\\.0\\.0\\.1:${r.grpcPort} could not read the history \\(.*etcd.*\\)\\n$`));
  const one = await cli([...server, 'get', 'package', 'shop'], { env: {} });
  t.is(one.code, 0, one.stderr);
  t.regex(one.stderr, /SINCE not shown for package "shop": .* could not read the history \(.+\)/);

  const history = await cli([...server, 'history', 'package', 'shop'], { env: {} });
  t.is(history.code, 1);
  t.notRegex(history.stderr, /cannot reach statemanager/);
  t.regex(history.stderr, /etcd/);
});
