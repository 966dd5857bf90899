// The command line in-process against a real etcd holding a scripted tree, written as the
// controller, the API server and node agents would.
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { parse as parseYaml } from 'yaml';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { stripAnsi } from '../../src/cli/format.js';
import { freePort, startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { ago, cli, NOW, Script, scriptTree, type RunOptions } from './_harness.js';

let etcd: EtcdServer;
let tree: Script;
const TREE = '/cli-tree';

test.before(async () => {
  etcd = await startEtcd();
  tree = new Script(etcd.client(), TREE);
  await scriptTree(tree);
});

test.after.always(async () => {
  await etcd?.stop();
});

/** The CLI against the scripted tree, its clock at NOW. */
function sm(argv: string[], o: RunOptions = {}) {
  return cli(argv, { now: NOW, env: { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: TREE }, ...o });
}

// --- get --------------------------------------------------------------------------------------

test('get packages: name, state, since the last transition, models by state', async (t) => {
  const r = await sm(['get', 'packages']);
  t.is(r.stderr, '');
  t.is(r.code, 0);
  t.is(
    r.stdout,
    [
      'NAME     STATE      SINCE    MODELS',
      'idle     Idle       2h ago   0',
      'orphan   Exited     <none>   0',
      'shop     Degraded   2m ago   1 Running, 1 Dead, 1 <none>',
      '',
    ].join('\n'),
  );
});

test('get packages -o json: one object per package, models counted by stored state', async (t) => {
  const r = await sm(['get', 'packages', '-o', 'json']);
  t.is(r.code, 0);
  t.deepEqual(JSON.parse(r.stdout), [
    { name: 'idle', state: 'Idle', since: ago(7_200_000), defined: true, models: {} },
    { name: 'orphan', state: 'Exited', since: null, defined: false, models: {} },
    { name: 'shop', state: 'Degraded', since: ago(120_000), defined: true, models: { Running: 1, Dead: 1, '<none>': 1 } },
  ]);
});

test('get packages NAME -o yaml: the one package as a mapping', async (t) => {
  const r = await sm(['get', 'package', 'shop', '--output', 'yaml']);
  t.is(r.code, 0);
  t.deepEqual(parseYaml(r.stdout), {
    name: 'shop',
    state: 'Degraded',
    since: ago(120_000),
    defined: true,
    models: { Running: 1, Dead: 1, '<none>': 1 },
  });
});

test('get models: listed or stored models, containers by the status the controller counts', async (t) => {
  const r = await sm(['get', 'models']);
  t.is(r.code, 0);
  t.is(
    r.stdout,
    [
      'NAME    STATE     SINCE     CONTAINERS             PACKAGES',
      'cache   <none>    <none>    0                      shop',
      'db      Dead      2m ago    1 dead                 shop',
      // n2 is NotReady: its running container counts as unknown.
      'web     Running   10m ago   1 running, 1 unknown   shop',
      '',
    ].join('\n'),
  );
  const json = JSON.parse((await sm(['get', 'models', 'web', '-o', 'json'])).stdout);
  t.deepEqual(json, { name: 'web', state: 'Running', since: ago(600_000), packages: ['shop'], containers: { running: 1, unknown: 1 } });
});

test('get scenarios: state, since and target package', async (t) => {
  const r = await sm(['get', 'scenarios']);
  t.is(r.code, 0);
  t.is(
    r.stdout,
    ['NAME       STATE     SINCE     TARGET', 'shop-scn   Waiting   45s ago   shop', 'zz-later   <none>    <none>    shop', ''].join('\n'),
  );
});

test('get of a missing resource: one line on stderr, exit 1, nothing on stdout', async (t) => {
  for (const [kind, argv] of [
    ['package', ['get', 'packages', 'nope']],
    ['model', ['get', 'model', 'nope', '-o', 'json']],
    ['scenario', ['get', 'scenarios', 'nope']],
  ] as const) {
    const r = await sm([...argv]);
    t.is(r.code, 1, kind);
    t.is(r.stdout, '');
    t.is(r.stderr, `statemanager: ${kind} "nope" not found\n`);
  }
});

test('get with nothing there: an empty table says so on stderr; JSON is an empty list', async (t) => {
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-empty' };
  const r = await cli(['get', 'packages'], { env });
  t.is(r.code, 0);
  t.is(r.stdout, '');
  t.is(r.stderr, 'no packages found\n');
  t.deepEqual(JSON.parse((await cli(['get', 'packages', '-o', 'json'], { env })).stdout), []);
});

test('get with many resources reads the history in bulk and finds the same last transitions', async (t) => {
  const s = new Script(etcd.client(), '/cli-many');
  const names = Array.from({ length: 80 }, (_, i) => `p${String(i).padStart(2, '0')}`);
  await Promise.all(
    names.map(async (n, i) => {
      await s.w.packageDef(n, []);
      await s.state('package', n, 'Idle');
      if (i % 10 === 9) return; // no history for some
      await s.history('package', n, null, 'Idle', ago(3_600_000 + i), 'first');
      await s.history('package', n, 'Idle', 'Idle', ago(60_000 + i * 1000), 'last');
    }),
  );
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-many' };
  const rows = JSON.parse((await cli(['get', 'packages', '-o', 'json'], { env })).stdout) as { name: string; since: string | null }[];
  t.deepEqual(
    rows.map((r) => r.name),
    names,
  );
  rows.forEach((r, i) => t.is(r.since, i % 10 === 9 ? null : ago(60_000 + i * 1000), r.name));
  const one = JSON.parse((await cli(['get', 'packages', 'p05', '-o', 'json'], { env })).stdout);
  t.is(one.since, rows[5]!.since);
});

// --- describe -----------------------------------------------------------------------------------

test('describe package: the tree with states, effective container statuses, history and the request', async (t) => {
  const r = await sm(['describe', 'package', 'shop']);
  t.is(r.stderr, '');
  t.is(r.code, 0);
  t.is(
    r.stdout,
    [
      'package/shop   Degraded   since 2m ago (2025-03-01T11:58:00.000Z)',
      '│  definition: 3 models',
      '│  scenario: shop-scn (Waiting)',
      '│  reconcile request: delivered (state Error, requested 5m ago, 2 deliveries, last delivered 30s ago, scenario shop-scn)',
      '│  history:',
      '│    1h ago    (none) → Idle        new package, no model running   controller',
      '│    10m ago   Idle → Running       models: 3 Running               controller',
      '│    2m ago    Running → Degraded   models: 2 Running, 1 Dead       controller',
      '├─ model/web   Running   since 10m ago (2025-03-01T11:50:00.000Z)',
      '│  │  history:',
      '│  │    1h ago    (none) → Created    containers: none        controller',
      '│  │    10m ago   Created → Running   containers: 2 running   controller',
      '│  ├─ n1/c1   running   web-c1',
      '│  └─ n2/c2   unknown   web-c2   (node n2 is NotReady; reported running)',
      '├─ model/db   Dead   since 2m ago (2025-03-01T11:58:00.000Z)',
      '│  │  history:',
      '│  │    10m ago   (none) → Running   containers: 1 running   controller',
      '│  │    2m ago    Running → Dead     containers: 1 dead      replica-a',
      '│  └─ n1/c3   dead   db-c3',
      '└─ model/cache   <none>   no recorded transition',
      '      containers: none',
      '      history: none recorded',
      '',
    ].join('\n'),
  );
});

test('describe package -o json: the same tree as data', async (t) => {
  const r = await sm(['describe', 'package', 'shop', '-o', 'json', '--history', '1']);
  t.is(r.code, 0);
  const d = JSON.parse(r.stdout);
  t.is(d.kind, 'package');
  t.is(d.state, 'Degraded');
  t.is(d.since, ago(120_000));
  t.deepEqual(d.definition, { models: ['web', 'db', 'cache'] });
  // zz-later also targets shop; the controller names the first by name.
  t.deepEqual(d.scenario, { name: 'shop-scn', state: 'Waiting' });
  t.like(d.reconcileRequest, { status: 'delivered', deliveries: 2, lastDeliveredAt: ago(30_000), scenario: 'shop-scn', state: 'Error' });
  t.is(d.historyTotal, 3);
  t.deepEqual(
    d.history.map((h: HistoryEntry) => [h.from, h.to]),
    [['Running', 'Degraded']],
  );
  t.deepEqual(
    d.models.map((m: { name: string; state: string | null }) => [m.name, m.state]),
    [
      ['web', 'Running'],
      ['db', 'Dead'],
      ['cache', null],
    ],
  );
  t.deepEqual(
    d.models[0].containers.map((c: { node: string; id: string; status: string; reported: string; nodeStatus: string }) => [c.node, c.id, c.status, c.reported, c.nodeStatus]),
    [
      ['n1', 'c1', 'running', 'running', 'Ready'],
      ['n2', 'c2', 'unknown', 'running', 'NotReady'],
    ],
  );
  t.is(d.models[1].history[0].source, 'replica-a');
});

test('describe package: a pending request, a leftover state without definition', async (t) => {
  const s = new Script(etcd.client(), '/cli-pending');
  await s.w.packageDef('p', ['m']);
  await s.state('package', 'p', 'Error');
  await s.state('package', 'gone', 'Exited');
  await s.request({ package: 'p', state: 'Error', requestedAt: ago(60_000), deliveries: 0, failures: 3, lastError: 'UNAVAILABLE: connection refused' });
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-pending' };
  const r = await cli(['describe', 'pkg', 'p'], { env, now: NOW });
  t.is(r.code, 0);
  t.true(
    r.stdout.includes(
      '│  reconcile request: pending (state Error, requested 1m ago, not delivered yet, 3 failed calls, last error: UNAVAILABLE: connection refused)\n',
    ),
    r.stdout,
  );
  t.true(r.stdout.includes('│  scenario: none (reconcile requests name the package itself)\n'));
  t.true(r.stdout.includes('└─ model/m   <none>   no recorded transition\n'));
  const gone = await cli(['describe', 'package', 'gone'], { env, now: NOW });
  t.is(gone.code, 0);
  t.true(gone.stdout.startsWith('package/gone   Exited   no recorded transition\n   definition: missing'), gone.stdout);
});

test('describe model: packages, containers and the last transitions', async (t) => {
  const r = await sm(['describe', 'model', 'db', '--history', '1']);
  t.is(r.code, 0);
  t.is(
    r.stdout,
    [
      'model/db   Dead   since 2m ago (2025-03-01T11:58:00.000Z)',
      '│  packages: shop',
      '│  history (last 1 of 2):',
      '│    2m ago   Running → Dead   containers: 1 dead   replica-a',
      '└─ n1/c3   dead   db-c3',
      '',
    ].join('\n'),
  );
});

test('describe of a missing package or model: exit 1 with the message', async (t) => {
  const p = await sm(['describe', 'package', 'nope']);
  t.is(p.code, 1);
  t.is(p.stderr, 'statemanager: package "nope" not found\n');
  t.is(p.stdout, '');
  const m = await sm(['describe', 'model', 'nope', '-o', 'json']);
  t.is(m.code, 1);
  t.is(m.stderr, 'statemanager: model "nope" not found\n');
});

// --- history ------------------------------------------------------------------------------------

test('history: transitions oldest first, as a table and as JSON', async (t) => {
  const r = await sm(['history', 'package', 'shop']);
  t.is(r.code, 0);
  t.is(
    r.stdout,
    [
      'TIME                       AGE       TRANSITION           REASON                          SOURCE',
      '2025-03-01T11:00:00.000Z   1h ago    (none) → Idle        new package, no model running   controller',
      '2025-03-01T11:50:00.000Z   10m ago   Idle → Running       models: 3 Running               controller',
      '2025-03-01T11:58:00.000Z   2m ago    Running → Degraded   models: 2 Running, 1 Dead       controller',
      '',
    ].join('\n'),
  );
  const json = JSON.parse((await sm(['history', 'scenario', 'shop-scn', '-o', 'json'])).stdout) as HistoryEntry[];
  t.deepEqual(
    json.map((e) => [e.from, e.to, e.at, e.source]),
    [
      [null, 'Idle', ago(3 * 86_400_000), 'api-server'],
      ['Idle', 'Waiting', ago(45_000), 'api-server'],
    ],
  );
});

test('history: a resource without transitions is empty; an unknown one is not found', async (t) => {
  const none = await sm(['history', 'model', 'cache', '-o', 'json']);
  t.is(none.code, 0);
  t.deepEqual(JSON.parse(none.stdout), []);
  const table = await sm(['history', 'model', 'cache']);
  t.is(table.stdout, '');
  t.is(table.stderr, 'no recorded transitions for model/cache\n');
  const missing = await sm(['history', 'package', 'nope']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'statemanager: package "nope" not found\n');
});

// --- resync -------------------------------------------------------------------------------------

test('resync writes a request key the leader consumes, for one resource or everything', async (t) => {
  const s = new Script(etcd.client(), '/cli-resync');
  await s.w.packageDef('p', ['m']);
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-resync' };
  const r = await cli(['resync', 'package', 'p'], { env, now: NOW });
  t.is(r.code, 0, r.stderr);
  const m = /^resync of package p requested \((\/cli-resync\/statemanager\/resync\/[^)]+)\)\n$/.exec(r.stdout);
  t.truthy(m, r.stdout);
  t.deepEqual(JSON.parse((await s.client.get(m![1]!).string())!), { kind: 'package', name: 'p', requestedAt: new Date(NOW).toISOString() });

  const model = JSON.parse((await cli(['resync', 'model', 'm', '-o', 'json'], { env, now: NOW })).stdout);
  t.deepEqual(model.request, { kind: 'model', name: 'm', requestedAt: new Date(NOW).toISOString() });
  t.deepEqual(JSON.parse((await s.client.get(model.key).string())!), model.request);

  const all = JSON.parse((await cli(['resync', '-o', 'json'], { env, now: NOW })).stdout);
  t.like(JSON.parse((await s.client.get(all.key).string())!), { kind: 'all' });
  t.like(all, { waited: false, done: null });

  const keys = await s.client.getAll().prefix(s.keys.resyncRequests).keys();
  t.is(keys.length, 3);
  t.is(new Set(keys).size, 3);
});

test('resync of a missing resource writes nothing; a KIND without NAME is a usage error', async (t) => {
  const s = new Script(etcd.client(), '/cli-resync-bad');
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-resync-bad' };
  const r = await cli(['resync', 'package', 'nope'], { env });
  t.is(r.code, 1);
  t.is(r.stderr, 'statemanager: package "nope" not found\n');
  const u = await cli(['resync', 'model'], { env });
  t.is(u.code, 2);
  t.is(u.stderr, 'statemanager: resync model needs a NAME\n');
  t.deepEqual(await s.client.getAll().prefix(s.keys.resyncRequests).keys(), []);
});

test('resync --wait: no leader takes the request within the timeout → exit 1, the key stays', async (t) => {
  const s = new Script(etcd.client(), '/cli-resync-wait');
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-resync-wait' };
  const r = await cli(['resync', '--wait', '--timeout', '600ms'], { env });
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^statemanager: no leader picked up the resync request within 600ms \(no leader holds \/cli-resync-wait\/statemanager\/leader\); it stays at \/cli-resync-wait\/statemanager\/resync\/\S+ for the next leader\n$/,
  );
  t.regex(r.stdout, /^resync of everything requested/);
  t.true(r.ms >= 600 && r.ms < 5000, `${r.ms} ms`);
  t.is((await s.client.getAll().prefix(s.keys.resyncRequests).keys()).length, 1);
});

test('resync --wait: a leader that deletes the request → exit 0, says who took it', async (t) => {
  const s = new Script(etcd.client(), '/cli-resync-leader');
  await s.client.put(s.keys.leader).value('replica-7');
  // A stand-in leader: takes every request as the controller does, by deleting it. (An etcd3
  // builder runs only when awaited or exec()'d.)
  const watcher = await s.client.watch().prefix(s.keys.resyncRequests).create();
  watcher.on('put', (kv) => void s.client.delete().key(kv.key.toString()).exec());
  t.teardown(() => watcher.cancel());
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-resync-leader' };
  const r = await cli(['resync', '--wait'], { env });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^resync of everything requested \(\S+\)\ntaken by the leader \(replica-7\) after \d+(\.\d)?m?s\n$/);
  const j = await cli(['resync', '--wait', '-o', 'json'], { env });
  t.is(j.code, 0);
  t.like(JSON.parse(j.stdout), { waited: true, done: true, leader: 'replica-7' });
  t.deepEqual(await s.client.getAll().prefix(s.keys.resyncRequests).keys(), []);
});

// --- watch --------------------------------------------------------------------------------------

/** Start `watch` and resolve `ready` once it says it is watching. */
function startWatch(argv: string[], env: NodeJS.ProcessEnv, signal?: AbortSignal) {
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  const done = cli(['watch', ...argv], {
    env,
    ...(signal ? { signal } : {}),
    onStderr: (text) => {
      if (text.includes('watching transitions under')) ready();
    },
  });
  return { ready: Promise.race([isReady, done.then(() => undefined)]), done };
}

test('watch --count 2 --output json: the two transitions recorded after it started, one per line', async (t) => {
  const s = new Script(etcd.client(), '/cli-watch');
  await s.history('package', 'p', null, 'Idle', ago(60_000), 'before the watch');
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-watch' };
  const w = startWatch(['--count', '2', '--output', 'json'], env);
  await w.ready;
  const first = await s.history('package', 'p', 'Idle', 'Running', new Date().toISOString(), 'models: 1 Running');
  await s.client.put(s.keys.stateKey('model', 'm')).value('Running'); // not a history key: ignored
  const second = await s.history('model', 'm', 'Running', 'Dead', new Date().toISOString(), 'containers: 1 dead');
  await s.history('model', 'm', 'Dead', 'Exited', new Date().toISOString(), 'after the count');
  const r = await w.done;
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.is(lines.length, 3);
  t.is(lines[2], '');
  t.deepEqual(JSON.parse(lines[0]!), first);
  t.deepEqual(JSON.parse(lines[1]!), second);
});

test('watch KIND NAME shows only that resource, as table lines without colour off a TTY', async (t) => {
  const s = new Script(etcd.client(), '/cli-watch-one');
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-watch-one' };
  const w = startWatch(['model', 'm', '--count', '1'], env);
  await w.ready;
  await s.history('model', 'mm', null, 'Created', new Date().toISOString(), 'other model');
  await s.history('package', 'm', null, 'Idle', new Date().toISOString(), 'a package named m');
  const e = await s.history('model', 'm', 'Created', 'Running', '2025-03-01T12:00:00.000Z', 'containers: 1 running');
  const r = await w.done;
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `2025-03-01T12:00:00.000Z  model/m  Created → Running (containers: 1 running)\n`);
  t.is(e.name, 'm');
});

test('watch --timeout: stops after that long; short of --count it fails', async (t) => {
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-watch-quiet' };
  const quiet = await cli(['watch', '--timeout', '400ms'], { env });
  t.is(quiet.code, 0);
  t.is(quiet.stdout, '');
  const short = await cli(['watch', '--count', '3', '--timeout', '400ms'], { env });
  t.is(short.code, 1);
  t.true(short.stderr.endsWith('statemanager: watch ended after 400ms with 0 of 3 transitions\n'), short.stderr);
  t.true(short.ms < 5000, `${short.ms} ms`);
});

test('watch stops cleanly when interrupted (SIGINT/SIGTERM abort the signal)', async (t) => {
  const env = { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: '/cli-watch-int' };
  const ac = new AbortController();
  const w = startWatch([], env, ac.signal);
  await w.ready;
  ac.abort();
  const r = await w.done;
  t.is(r.code, 0);
  t.is(r.stdout, '');
});

// --- configuration, colour, usage ----------------------------------------------------------------

test('configuration: the controller file via --config or STATEMANAGER_CONFIG; --prefix and --endpoints win', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'statemanager.yaml');
  writeFileSync(file, `keyPrefix: ${TREE}\netcd:\n  endpoints: ["${etcd.endpoint}"]\n  requestTimeout: 2s\n`);
  const viaFlag = await cli(['--config', file, 'get', 'scenarios', 'shop-scn', '-o', 'json']);
  t.is(viaFlag.code, 0, viaFlag.stderr);
  t.is(JSON.parse(viaFlag.stdout).state, 'Waiting');
  const viaEnv = await cli(['get', 'scenario', 'shop-scn', '-o', 'json'], { env: { STATEMANAGER_CONFIG: file } });
  t.is(JSON.parse(viaEnv.stdout).target, 'shop');
  // The environment wins over the file, the flags over both.
  const envWins = await cli(['get', 'scenario', 'shop-scn'], { env: { STATEMANAGER_CONFIG: file, STATEMANAGER_KEY_PREFIX: '/elsewhere' } });
  t.is(envWins.code, 1);
  const flagWins = await cli(['--prefix', TREE, 'get', 'scenario', 'shop-scn'], { env: { STATEMANAGER_CONFIG: file, STATEMANAGER_KEY_PREFIX: '/elsewhere' } });
  t.is(flagWins.code, 0);
  const endpointFlag = await cli(['--endpoints', etcd.endpoint, '--prefix', TREE, 'get', 'scenario', 'shop-scn'], {
    env: { ETCD_ENDPOINTS: 'http://127.0.0.1:1' },
  });
  t.is(endpointFlag.code, 0, endpointFlag.stderr);
});

test('colour only on a TTY, never with NO_COLOR or for JSON', async (t) => {
  const tty = await sm(['get', 'packages'], { tty: true });
  t.true(tty.stdout.includes('\u001b[33mDegraded\u001b[0m'));
  t.true(tty.stdout.includes('1 \u001b[32mRunning\u001b[0m, 1 \u001b[31mDead\u001b[0m'));
  // Columns stay aligned: the visible text is the plain table.
  t.is(stripAnsi(tty.stdout), (await sm(['get', 'packages'])).stdout);
  const noColour = await sm(['get', 'packages'], { tty: true, env: { ETCD_ENDPOINTS: etcd.endpoint, STATEMANAGER_KEY_PREFIX: TREE, NO_COLOR: '1' } });
  t.false(noColour.stdout.includes('\u001b['));
  const json = await sm(['describe', 'package', 'shop', '-o', 'json'], { tty: true });
  t.false(json.stdout.includes('\u001b['));
});

test('usage errors exit 2 with one line; --help exits 0', async (t) => {
  const cases: [string[], RegExp][] = [
    [['frobnicate'], /^statemanager: unknown command 'frobnicate'/],
    [['get'], /^statemanager: missing required argument 'resource'/],
    [['get', 'nodes'], /^statemanager: command-argument value 'nodes' is invalid for argument 'resource'/],
    [['-o', 'xml', 'get', 'packages'], /^statemanager: option '-o, --output <format>' argument 'xml' is invalid/],
    [['--timeout', 'soon', 'get', 'packages'], /^statemanager: --timeout "soon" is not a duration/],
    [['--timeout', '0', 'get', 'packages'], /^statemanager: --timeout "0" must be longer than 0\n/],
    // Past the longest timer (596h): it fired at once, "no answer within 1000h" (black-box probe).
    [['--timeout', '597h', 'get', 'packages'], /^statemanager: --timeout "597h" is longer than 596h \(24\.8 days\), the longest a timer holds\n/],
    [['--timeout', '1000h', 'watch'], /^statemanager: --timeout "1000h" is longer than 596h/],
    [['describe', 'package', 'shop', '--history', 'x'], /^statemanager: --history "x" is not a whole number/],
    [['watch', '--count', '0'], /^statemanager: --count "0" is not a positive whole number/],
    [['--config', '/nonexistent/sm.yaml', 'get', 'packages'], /^statemanager: cannot read configuration file \/nonexistent\/sm.yaml/],
    [['--endpoints', 'not-a-url', 'get', 'packages'], /^statemanager: invalid configuration at etcd.endpoints.0 \(set by --endpoints\)/],
    // The flag that set it, not the variable it goes through (black-box probing).
    [['--prefix', ' x', 'get', 'packages'], /^statemanager: invalid configuration at keyPrefix \(set by --prefix\)/],
  ];
  for (const [argv, message] of cases) {
    const r = await sm(argv);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.stderr, message, argv.join(' '));
    t.is(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    t.is(r.stdout, '');
  }
  const bare = await sm([]);
  t.is(bare.code, 2);
  t.regex(bare.stderr, /^Usage: statemanager/);
  const help = await sm(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /Commands:[\s\S]*get[\s\S]*describe[\s\S]*history[\s\S]*watch[\s\S]*resync/);
  const subHelp = await sm(['resync', '--help']);
  t.is(subHelp.code, 0);
  t.regex(subHelp.stdout, /--wait/);
  t.regex(subHelp.stdout, /Global Options:[\s\S]*--timeout/);
});

// --- etcd unreachable ------------------------------------------------------------------------------

test('an unreachable etcd: every command exits 1 within seconds, with one clear line', async (t) => {
  const port = await freePort(); // nothing listens there
  const env = { ETCD_ENDPOINTS: `http://127.0.0.1:${port}` };
  for (const argv of [
    ['get', 'packages'],
    ['describe', 'package', 'shop'],
    ['history', 'model', 'web'],
    ['watch', '--count', '1'],
    ['resync', '--wait'],
    ['get', 'models', '-o', 'json'],
  ]) {
    const r = await cli(argv, { env });
    t.is(r.code, 1, argv.join(' '));
    t.is(r.stdout, '');
    t.is(r.stderr, `statemanager: cannot reach etcd at http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`, argv.join(' '));
    t.true(r.ms < 5000, `${argv.join(' ')} took ${r.ms} ms`);
  }
});
