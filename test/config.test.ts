import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { heapFlags } from '../src/process/heap.js';
import { createTestPki } from './helpers/certs.js';

/** One directory for every config file of this test file, removed when it ends. */
const dir = mkdtempSync(join(tmpdir(), 'sm-config-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function file(text: string): string {
  const p = join(dir, `config-${files++}.yaml`);
  writeFileSync(p, text);
  return p;
}

test('defaults follow the contract', (t) => {
  const c = loadConfig(undefined, {});
  t.deepEqual(c.etcd.endpoints, ['http://127.0.0.1:2379']);
  t.is(c.grpc.addr, '0.0.0.0:47006');
  t.is(c.actionController.addr, '127.0.0.1:47001');
  t.is(c.http.addr, '0.0.0.0:47086');
  t.is(c.keyPrefix, '');
  t.deepEqual(c.reconcile.triggerStates, ['Error']);
  t.is(c.controller.resyncPeriod, 600_000);
});

test('environment variables win over the file', (t) => {
  const p = file('etcd:\n  endpoints: [http://10.0.0.1:2379]\nkeyPrefix: /a\ncontroller:\n  resyncPeriod: 5m\n');
  const c = loadConfig(p, {
    ETCD_ENDPOINTS: 'http://127.0.0.1:1,http://127.0.0.1:2',
    STATEMANAGER_KEY_PREFIX: '/b',
    STATEMANAGER_GRPC_ADDR: '127.0.0.1:9',
    ACTION_CONTROLLER_ADDR: 'ac:47001',
    STATEMANAGER_HTTP_ADDR: '[::1]:8080',
  });
  t.deepEqual(c.etcd.endpoints, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  t.is(c.keyPrefix, '/b');
  t.is(c.grpc.addr, '127.0.0.1:9');
  t.is(c.actionController.addr, 'ac:47001');
  t.is(c.http.addr, '[::1]:8080');
  t.is(c.controller.resyncPeriod, 300_000);
});

test('mistakes stop start-up with one readable line naming the setting', (t) => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['', { ETCD_ENDPOINTS: 'not a url' }, /^invalid configuration at etcd\.endpoints\.0 \(set by ETCD_ENDPOINTS\): expected an http/],
    ['controller:\n  workers: -1\n', {}, /^invalid configuration at controller\.workers: /],
    ['controller:\n  resyncPeriod: 10x\n', {}, /controller\.resyncPeriod: "10x" is not a duration/],
    ['', { STATEMANAGER_HTTP_ADDR: 'nohost' }, /^invalid configuration at http\.addr \(set by STATEMANAGER_HTTP_ADDR\): expected host:port/],
    ['reconcile:\n  triggerStates: [Broken]\n', {}, /reconcile\.triggerStates\.0/],
    ['unknownKey: 1\n', {}, /unknownKey|Unrecognized/],
    ['etcd: [1, 2\n', {}, /is not valid YAML/],
  ];
  for (const [text, env, message] of cases) {
    const err = t.throws(() => loadConfig(text ? file(text) : undefined, env), { instanceOf: ConfigError });
    t.regex(err!.message, message);
    t.false(err!.message.includes('\n'), 'one line');
  }
  t.throws(() => loadConfig('/nonexistent/config.yaml', {}), { instanceOf: ConfigError, message: /cannot read configuration file/ });
  // From the file, the setting alone: no variable set it.
  t.throws(() => loadConfig(file('http:\n  addr: nohost\n'), {}), { message: /^invalid configuration at http\.addr: expected host:port/ });
});

test('the ActionController address may be written as an http:// URL, as Pullpiri\'s components write it; https:// is refused, naming the TLS settings', (t) => {
  t.is(loadConfig(undefined, { ACTION_CONTROLLER_ADDR: 'http://10.0.0.5:47001' }).actionController.addr, '10.0.0.5:47001');
  t.is(loadConfig(undefined, { ACTION_CONTROLLER_ADDR: 'HTTP://ac.local:47001/' }).actionController.addr, 'ac.local:47001');
  t.is(loadConfig(undefined, { ACTION_CONTROLLER_ADDR: 'http://[::1]:47001' }).actionController.addr, '[::1]:47001');
  t.throws(() => loadConfig(undefined, { ACTION_CONTROLLER_ADDR: 'https://ac:47001' }), {
    message: /^invalid configuration at actionController\.addr \(set by ACTION_CONTROLLER_ADDR\): https:\/\/ is not taken here: write host:port and configure TLS with the tls settings beside it$/,
  });
  for (const bad of ['http://ac', 'http://ac:47001/path', 'grpc://ac:47001', 'ac']) t.throws(() => loadConfig(undefined, { ACTION_CONTROLLER_ADDR: bad }), { message: /actionController\.addr \(set by ACTION_CONTROLLER_ADDR\): expected host:port/ }, bad);
});

test('configuration fails closed: a TLS block that is not entirely empty must be complete and spelt right', (t) => {
  const fails = (text: string, message: RegExp, env: Record<string, string> = {}): void => {
    const err = t.throws(() => loadConfig(file(text), env), { instanceOf: ConfigError });
    t.regex(err!.message, message, text);
  };
  // A misspelt field is an error, not plaintext.
  fails('grpc:\n  tls:\n    certfile: /tls/tls.crt\n    keyFile: /tls/tls.key\n', /grpc\.tls/);
  // A key without a certificate is an error, not plaintext.
  fails('grpc:\n  tls:\n    keyFile: /tls/tls.key\n', /grpc\.tls\.certFile/);
  fails('grpc:\n  tls:\n    requireClientCert: true\n', /grpc\.tls/);
  // etcd: a client certificate needs its key.
  fails('etcd:\n  tls:\n    certFile: /etcd/client.crt\n', /certFile and keyFile/);
  // A password without a username.
  fails('etcd:\n  password: secret\n', /a password needs a username/);
  fails('', /a password needs a username/, { ETCD_PASSWORD: 'secret' });
  // What Helm renders for "off" stays off.
  const off = loadConfig(file('grpc:\n  tls:\n    certFile: ""\n    keyFile: ""\n    caFile: ""\n    requireClientCert: false\n'), {});
  t.is(off.grpc.tls, undefined);
  const on = loadConfig(file('grpc:\n  tls:\n    certFile: /tls/tls.crt\n    keyFile: /tls/tls.key\n    caFile: ""\n'), {});
  t.like(on.grpc.tls, { certFile: '/tls/tls.crt', keyFile: '/tls/tls.key' });
  t.is(on.grpc.tls?.caFile, undefined, 'an empty caFile means no client CA');
  t.like(loadConfig(file('etcd:\n  username: root\n  password: secret\n'), {}).etcd, { username: 'root', password: 'secret' });
});

test('memory.heapGrowthPercent becomes V8\'s fixed heap growth; 0 leaves V8 its own', (t) => {
  t.deepEqual(heapFlags(loadConfig(undefined, {}).memory), ['--heap-growing-percent=50']);
  t.deepEqual(heapFlags(loadConfig(file('memory:\n  heapGrowthPercent: 0\n'), {}).memory), []);
  t.deepEqual(heapFlags(loadConfig(undefined, { STATEMANAGER_HEAP_GROWTH_PERCENT: '100' }).memory), ['--heap-growing-percent=100']);
  t.throws(() => loadConfig(undefined, { STATEMANAGER_HEAP_GROWTH_PERCENT: 'lots' }), { instanceOf: ConfigError, message: /memory\.heapGrowthPercent/ });
  t.throws(() => loadConfig(file('memory:\n  heapGrowthPercent: 1000\n'), {}), { instanceOf: ConfigError, message: /memory\.heapGrowthPercent/ });
});

test('deny by default: identities without grpc.auth.rules stop start-up with one line naming the fix; tokens need TLS beyond loopback', (t) => {
  const token = 'tok-0123456789abcdef0123456789abcdef';
  const fails = (text: string, message: RegExp, env: Record<string, string> = {}): void => {
    const err = t.throws(() => loadConfig(file(text), env), { instanceOf: ConfigError });
    t.regex(err!.message, message, text);
    t.false(err!.message.includes('\n'), 'one line');
  };
  const fix = /^invalid configuration at grpc\.auth\.rules: .*add grpc\.auth\.rules: .*\(an empty list denies everything/;
  fails(`grpc:\n  addr: 127.0.0.1:47006\n  auth:\n    tokens:\n      - {identity: ops, token: ${token}}\n`, fix);
  fails('grpc:\n  tls:\n    certFile: /tls/tls.crt\n    keyFile: /tls/tls.key\n    caFile: /tls/ca.crt\n', fix);
  // The chart's old rendering of no rules.
  fails('grpc:\n  tls:\n    certFile: /tls/tls.crt\n    keyFile: /tls/tls.key\n    caFile: /tls/ca.crt\n  auth:\n    rules: null\n', fix);
  fails(`grpc:\n  auth:\n    tokens:\n      - {identity: ops, token: ${token}}\n    rules: []\n`, /grpc\.auth\.tokens: bearer tokens need TLS when the server listens beyond loopback \(addr 0\.0\.0\.0:47006\)/);
  // The environment's address counts.
  fails(`grpc:\n  addr: 127.0.0.1:47006\n  auth:\n    tokens:\n      - {identity: ops, token: ${token}}\n    rules: []\n`, /bearer tokens need TLS/, { STATEMANAGER_GRPC_ADDR: '0.0.0.0:47006' });
  fails(`grpc:\n  addr: 127.0.0.1:47006\n  auth:\n    tokens:\n      - {identity: ops, token: short}\n    rules: []\n`, /grpc\.auth\.tokens\.0\.token: a token must be at least 32 bytes long/);
  const ok = loadConfig(file(`grpc:\n  addr: 127.0.0.1:47006\n  auth:\n    tokens:\n      - {identity: ops, token: ${token}}\n    rules: []\n`), {});
  t.deepEqual(ok.grpc.auth.rules, []);
});

test('grpc.credentialsReloadInterval: 10 s by default, a duration of at least 1 s', (t) => {
  t.is(loadConfig(undefined, {}).grpc.credentialsReloadInterval, 10_000);
  t.is(loadConfig(file('grpc: {credentialsReloadInterval: 1s}'), {}).grpc.credentialsReloadInterval, 1000); // at
  t.is(loadConfig(file('grpc: {credentialsReloadInterval: 1001}'), {}).grpc.credentialsReloadInterval, 1001); // past
  t.is(loadConfig(file('grpc: {credentialsReloadInterval: 5m}'), {}).grpc.credentialsReloadInterval, 300_000);
  const below = t.throws(() => loadConfig(file('grpc: {credentialsReloadInterval: 999ms}'), {}), { instanceOf: ConfigError });
  t.regex(below.message, /grpc\.credentialsReloadInterval: at least 1s/);
  t.throws(() => loadConfig(file('grpc: {credentialsReloadInterval: soon}'), {}), { message: /"soon" is not a duration/ });
});

// Found by black-box probing of the configuration (each started, and did something else).
test('durations: at most 596h (2^31 - 1 ms, the longest timer), below, at and past it; etcd and ActionController timeouts above 0; a lease of at least 1 s', (t) => {
  const load = (yaml: string) => loadConfig(file(yaml), {});
  t.is(load(`leaderElection:\n  leaseDuration: ${2 ** 31 - 2}\n`).leaderElection.leaseDuration, 2 ** 31 - 2);
  t.is(load(`leaderElection:\n  leaseDuration: ${2 ** 31 - 1}\n`).leaderElection.leaseDuration, 2 ** 31 - 1);
  t.throws(() => load(`leaderElection:\n  leaseDuration: ${2 ** 31}\n`), { instanceOf: ConfigError, message: /^invalid configuration at leaderElection\.leaseDuration: 2147483648 ms is longer than 596h \(24\.8 days\), the longest a timer holds$/ });
  t.throws(() => load('leaderElection:\n  leaseDuration: 600h\n'), { message: /leaseDuration: "600h" is longer than 596h/ });
  t.is(load('controller:\n  resyncPeriod: 596h\n').controller.resyncPeriod, 596 * 3_600_000);
  // 1ms for 1m ran 800 resyncs a second: at least 1s, or 0 for none.
  t.throws(() => load('controller:\n  resyncPeriod: 999ms\n'), { message: /controller\.resyncPeriod: at least 1s, or 0 to turn the periodic resync off/ });
  t.is(load('controller:\n  resyncPeriod: 1s\n').controller.resyncPeriod, 1000);
  t.is(load('controller:\n  resyncPeriod: 0\n').controller.resyncPeriod, 0);
  t.throws(() => load('controller:\n  resyncPeriod: 597h\n'), { message: /controller\.resyncPeriod: "597h" is longer than 596h/ });
  t.throws(() => load('etcd:\n  requestTimeout: 0s\n'), { message: /^invalid configuration at etcd\.requestTimeout: must be longer than 0$/ });
  t.is(load('etcd:\n  requestTimeout: 1\n').etcd.requestTimeout, 1);
  // The connections' keepalive: defaults, below, at and past etcd's minimum ping interval (5 s).
  t.like(load('').etcd, { keepaliveTime: 10_000, keepaliveTimeout: 5_000 });
  t.throws(() => load('etcd:\n  keepaliveTime: 4999ms\n'), { message: /^invalid configuration at etcd\.keepaliveTime: at least 5s \(etcd's --grpc-keepalive-min-time/ });
  t.is(load('etcd:\n  keepaliveTime: 5s\n').etcd.keepaliveTime, 5000);
  t.is(load('etcd:\n  keepaliveTime: 1m\n  keepaliveTimeout: 30s\n').etcd.keepaliveTimeout, 30_000);
  t.throws(() => load('etcd:\n  keepaliveTimeout: 0\n'), { message: /^invalid configuration at etcd\.keepaliveTimeout: at least 1s/ });
  t.throws(() => load('etcd:\n  keepaliveTimeout: 999ms\n'), { message: /^invalid configuration at etcd\.keepaliveTimeout: at least 1s \(a ping is answered after a round trip/ });
  t.is(load('etcd:\n  keepaliveTimeout: 1s\n').etcd.keepaliveTimeout, 1000);
  t.throws(() => load('actionController:\n  timeout: 0\n'), { message: /actionController\.timeout: must be longer than 0/ });
  t.throws(() => load('leaderElection:\n  leaseDuration: 999ms\n'), { message: /leaderElection\.leaseDuration: at least 1s/ });
  t.is(load('leaderElection:\n  leaseDuration: 1s\n').leaderElection.leaseDuration, 1000);
});

test('an etcd URL with a user or password is refused, without repeating them (they were logged, and never used)', (t) => {
  const err = t.throws(() => loadConfig(undefined, { ETCD_ENDPOINTS: 'http://root:TopSecretPw1@127.0.0.1:2379' }), { instanceOf: ConfigError });
  t.regex(err!.message, /^invalid configuration at etcd\.endpoints\.0 \(set by ETCD_ENDPOINTS\): an etcd URL may not hold a user or password .*ETCD_USERNAME, ETCD_PASSWORD\)$/);
  t.false(err!.message.includes('TopSecretPw1'));
  t.throws(() => loadConfig(undefined, { ETCD_ENDPOINTS: 'http://root@127.0.0.1:2379' }), { message: /may not hold a user or password/ });
  t.deepEqual(loadConfig(undefined, { ETCD_ENDPOINTS: 'http://127.0.0.1:2379' }).etcd.endpoints, ['http://127.0.0.1:2379']);
});

test('an etcd URL: a trailing slash is dropped (as etcdctl takes it); a path, query or fragment is refused, naming the form', (t) => {
  t.deepEqual(loadConfig(undefined, { ETCD_ENDPOINTS: 'http://127.0.0.1:2379/,https://[::1]:2379/' }).etcd.endpoints, ['http://127.0.0.1:2379', 'https://[::1]:2379']);
  // The URL as parsed is what is used, written back (the text as given reached the client: black-box probing).
  for (const [given, used] of [
    ['http://h:2379?', 'http://h:2379'],
    ['http://h:2379/?', 'http://h:2379'],
    ['http://h:2379#', 'http://h:2379'],
    ['http://h:2379/.', 'http://h:2379'],
    ['http://h:2379\\', 'http://h:2379'],
    ['HTTP://H:2379/', 'http://h:2379'],
    ['http://h:80', 'http://h:80'],
    ['https://h:443', 'https://h:443'],
    ['http://h:02379', 'http://h:2379'],
  ]) t.deepEqual(loadConfig(undefined, { ETCD_ENDPOINTS: given! }).etcd.endpoints, [used], given);
  for (const url of ['http://127.0.0.1', 'http://h:', 'http://[::1]']) t.throws(() => loadConfig(undefined, { ETCD_ENDPOINTS: url }), { message: /an etcd URL needs its port/ }, url);
  for (const url of ['http://127.0.0.1:2379/v3', 'http://127.0.0.1:2379//', 'http://127.0.0.1:2379/?x=1', 'http://127.0.0.1:2379#a']) {
    const err = t.throws(() => loadConfig(undefined, { ETCD_ENDPOINTS: url }), { instanceOf: ConfigError }, url);
    t.regex(err!.message, /^invalid configuration at etcd\.endpoints\.0 \(set by ETCD_ENDPOINTS\): an etcd URL is scheme:\/\/host:port, with no path, query or fragment/, url);
  }
});

test('numbers from the environment are decimal integers: empty, blank, hex and exponents are refused, not read as 0, 16 or 100', (t) => {
  t.is(loadConfig(undefined, { STATEMANAGER_WORKERS: ' 16 ' }).controller.workers, 16);
  t.is(loadConfig(undefined, { STATEMANAGER_HEAP_GROWTH_PERCENT: '0' }).memory.heapGrowthPercent, 0);
  for (const v of ['', '  ', '0x10', '1e2', '16.0', 'ten']) {
    t.throws(() => loadConfig(undefined, { STATEMANAGER_WORKERS: v }), { instanceOf: ConfigError, message: /^invalid configuration at controller\.workers \(set by STATEMANAGER_WORKERS\): / }, JSON.stringify(v));
    t.throws(() => loadConfig(undefined, { STATEMANAGER_HEAP_GROWTH_PERCENT: v }), { instanceOf: ConfigError, message: /^invalid configuration at memory\.heapGrowthPercent \(set by STATEMANAGER_HEAP_GROWTH_PERCENT\): / }, JSON.stringify(v));
  }
});

test('a key prefix with surrounding spaces or control characters is refused (" " managed nothing, without a word)', (t) => {
  t.throws(() => loadConfig(undefined, { STATEMANAGER_KEY_PREFIX: ' ' }), { message: /^invalid configuration at keyPrefix \(set by STATEMANAGER_KEY_PREFIX\): may not start or end with whitespace$/ });
  t.throws(() => loadConfig(undefined, { STATEMANAGER_KEY_PREFIX: '/a\n' }), { message: /keyPrefix \(set by STATEMANAGER_KEY_PREFIX\): may not/ });
  t.is(loadConfig(undefined, { STATEMANAGER_KEY_PREFIX: '/site-1' }).keyPrefix, '/site-1');
});

test('POD_NAME wins over an identity in the file, as every environment variable does (replicas given one identity fought over the lease)', (t) => {
  const p = file('leaderElection:\n  identity: from-file\n');
  t.is(loadConfig(p, { POD_NAME: 'from-env' }).leaderElection.identity, 'from-env');
  t.is(loadConfig(p, {}).leaderElection.identity, 'from-file');
  t.is(loadConfig(p, { POD_NAME: '' }).leaderElection.identity, 'from-file');
});

test('client TLS files of etcd and the ActionController: checked at load, a missing or non-PEM one refused naming its setting', async (t) => {
  const pki = await createTestPki();
  t.teardown(() => pki.cleanup());
  const ca = await pki.createCa('etcd-ca');
  const client = await ca.issue('sm', { cn: 'sm', usage: 'client' });
  const other = await ca.issue('other', { cn: 'other', usage: 'client' });
  const garbage = file('not a certificate\n');
  const tls = (section: string, o: Record<string, string>) => file(`${section}:\n  tls:\n${Object.entries(o).map(([k, v]) => `    ${k}: ${v}\n`).join('')}`);
  const good = loadConfig(tls('etcd', { caFile: ca.certFile, certFile: client.certFile, keyFile: client.keyFile }), {});
  t.is(good.etcd.tls.caFile, ca.certFile);
  for (const section of ['etcd', 'actionController']) {
    for (const [setting, files, message] of [
      ['caFile', { caFile: join(dir, 'nope.crt') }, /^cannot read (etcd|actionController)\.tls\.caFile .*nope\.crt: ENOENT/],
      ['caFile', { caFile: garbage }, /^(etcd|actionController)\.tls\.caFile .* is not a PEM certificate/],
      ['certFile', { certFile: garbage, keyFile: client.keyFile }, /^(etcd|actionController)\.tls\.certFile .* is not a PEM certificate/],
      ['keyFile', { certFile: client.certFile, keyFile: client.certFile }, /^(etcd|actionController)\.tls\.keyFile .* is not a PEM private key/],
      // A key of another certificate (black-box probing: a bare "key values mismatch", exit 1).
      ['keyFile', { certFile: client.certFile, keyFile: other.keyFile }, /^(etcd|actionController)\.tls\.certFile .* and (etcd|actionController)\.tls\.keyFile .* cannot be used together/],
    ] as const) {
      const err = t.throws(() => loadConfig(tls(section, files), {}), { instanceOf: ConfigError }, `${section}.${setting}`);
      t.regex(err!.message, message);
      t.is(err!.path, `${section}.tls.${setting}`);
    }
  }
});
