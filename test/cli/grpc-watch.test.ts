// `watch --server` against real statemanager processes: a replica killed while the CLI follows
// it, changes while nobody serves, a new replica on the same address — every change printed
// exactly once, in order; and a resume point compacted away meanwhile, said on stderr.
import test from 'ava';
import type { Etcd3 } from 'etcd3';
import { sharedEnv } from '../helpers/shared-env.js';
import { assert, eventually } from '../helpers/eventually.js';
import { KeyLayout } from '../../domain/keys.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { run } from '../../src/cli/main.js';
import { cli } from './_harness.js';

const replicas: Replica[] = [];
const env = sharedEnv(test, () => Promise.all(replicas.map((r) => r.kill('SIGKILL'))));

async function replica(prefix: string, identity: string, grpcPort?: number): Promise<Replica> {
  const r = await startReplica({ identity, etcdEndpoint: env.etcd.endpoint, acAddr: env.ac.addr, grpcPort, config: { keyPrefix: prefix } });
  replicas.push(r);
  await eventually(async () => assert.strictEqual((await r.get('/readyz')).status, 200), { timeoutMs: 20_000 });
  return r;
}

interface Change {
  name: string;
  from: string | null;
  to: string | null;
  revision: number;
}

/** Writes scenario states directly (the controller never writes them) and remembers each change. */
class Scenarios {
  readonly keys: KeyLayout;
  readonly expected: Change[] = [];
  private readonly states = new Map<string, string>();

  constructor(
    readonly client: Etcd3,
    prefix: string,
  ) {
    this.keys = new KeyLayout(prefix);
  }

  async put(name: string, to: string): Promise<number> {
    const res = await this.client.put(this.keys.stateKey('scenario', name)).value(to).exec();
    const revision = Number(res.header.revision);
    this.record(name, to, revision);
    return revision;
  }

  /** Several changes in one transaction: one etcd revision. */
  async together(changes: [string, string][]): Promise<number> {
    const res = await this.client.kv.txn({
      compare: [],
      success: changes.map(([name, to]) => ({ request_put: { key: Buffer.from(this.keys.stateKey('scenario', name)), value: Buffer.from(to) } })),
      failure: [],
    });
    const revision = Number(res.header.revision);
    for (const [name, to] of changes) this.record(name, to, revision);
    return revision;
  }

  private record(name: string, to: string, revision: number): void {
    const from = this.states.get(name) ?? null;
    this.states.set(name, to);
    this.expected.push({ name, from, to, revision });
  }
}

const lines = (stdout: string): Change[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const e = JSON.parse(l) as Change & { kind: string };
      return { name: e.name, from: e.from, to: e.to, revision: e.revision };
    });

/** Runs `watch` in-process with a live view of stdout. */
function watchLive(argv: string[]) {
  const ac = new AbortController();
  const out = { stdout: '', stderr: '' };
  const done = run(['watch', ...argv], {
    stdout: { write: (s: string) => (out.stdout += s) },
    stderr: { write: (s: string) => (out.stderr += s) },
    env: {},
    signal: ac.signal,
  });
  return {
    out,
    done,
    stop: async (): Promise<number> => {
      ac.abort();
      return done;
    },
  };
}

test.serial('watch --server: the replica is killed and replaced on the same address; every change printed once, in order', async (t) => {
  const s = new Scenarios(env.etcd.client(), '/cli-watch-resume');
  const port = (await replica('/cli-watch-resume', 'resume-a')).grpcPort;
  await s.put('before', 'Idle'); // before the watch: not printed
  await eventually(async () => assert.strictEqual((await cli(['--server', `127.0.0.1:${port}`, 'get', 'scenario', 'before'], { env: {} })).code, 0));
  const w = watchLive(['--server', `127.0.0.1:${port}`, 'scenarios', '-o', 'json']);
  t.teardown(() => void w.stop());
  await eventually(() => assert.match(w.out.stderr, /watching state changes of scenarios on statemanager at 127\.0\.0\.1:\d+ after revision \d+ \(Ctrl-C to stop\)\n/));
  const start = s.expected.length;

  await s.put('a', 'Idle');
  await s.put('b', 'Idle');
  await s.together([
    ['a', 'Waiting'],
    ['c', 'Idle'],
  ]);
  await eventually(() => assert.strictEqual(lines(w.out.stdout).length, 4, w.out.stdout));

  await replicas.find((r) => r.identity === 'resume-a')!.kill('SIGKILL');
  await eventually(() => assert.match(w.out.stderr, /statemanager: lost the watch on statemanager at 127\.0\.0\.1:\d+ \([A-Z_]+: [^)]*\); reconnecting\n/));
  // While nobody serves: the resume must bring each of these, and nothing twice.
  for (let i = 0; i < 12; i++) await s.put(`m${i % 3}`, i % 2 ? 'Waiting' : 'Idle');
  await s.together([
    ['a', 'Satisfied'],
    ['b', 'Waiting'],
    ['c', 'Waiting'],
  ]);
  t.is(lines(w.out.stdout).length, 4, 'nothing printed while no replica serves');

  await replica('/cli-watch-resume', 'resume-b', port);
  await eventually(() => assert.strictEqual(lines(w.out.stdout).length, 4 + 15, w.out.stdout), { timeoutMs: 20_000 });
  t.regex(w.out.stderr, /statemanager: reconnected to statemanager at 127\.0\.0\.1:\d+; resuming after revision \d+\n/);
  // And live again.
  await s.put('a', 'Allowed');
  await eventually(() => assert.strictEqual(lines(w.out.stdout).length, 4 + 15 + 1, w.out.stdout));

  t.is(await w.stop(), 0);
  t.deepEqual(lines(w.out.stdout), s.expected.slice(start));
  const ids = w.out.stdout.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { eventId: string }).eventId);
  t.is(new Set(ids).size, ids.length);
  t.is(w.out.stderr.match(/lost the watch/g)?.length, 1, w.out.stderr);
});

test.serial('watch --server: the resume revision was compacted meanwhile; it says so on stderr and goes on from a fresh list', async (t) => {
  const s = new Scenarios(env.etcd.client(), '/cli-watch-compact');
  const first = await replica('/cli-watch-compact', 'compact-a');
  const port = first.grpcPort;
  const w = watchLive(['--server', `127.0.0.1:${port}`, 'scenario', 'x']);
  t.teardown(() => void w.stop());
  await eventually(() => assert.match(w.out.stderr, /watching state changes of scenario\/x on/));
  await s.put('x', 'Idle');
  await s.put('y', 'Idle'); // another scenario: not shown
  await eventually(() => assert.match(w.out.stdout, /scenario\/x {2}\(none\) → Idle\n/));
  const printed = s.expected[0]!.revision;

  await first.kill('SIGKILL');
  await eventually(() => assert.match(w.out.stderr, /lost the watch/));
  await s.put('x', 'Waiting'); // lost with the compaction below
  const latest = await s.put('y', 'Waiting');
  await env.etcd.client().kv.compact({ revision: String(latest), physical: true });
  await replica('/cli-watch-compact', 'compact-b', port);
  await eventually(() =>
    assert.match(
      w.out.stderr,
      new RegExp(`statemanager: cannot resume after revision ${printed}: statemanager at 127\\.0\\.0\\.1:${port} no longer has it \\(compacted\\); changes since then may be missing\\. Listed again; following after revision \\d+\\n`),
    ),
  { timeoutMs: 20_000 });
  // It follows on: a change now is printed.
  await eventually(async () => {
    if (!/Satisfied/.test(w.out.stdout)) await s.put('x', 'Satisfied');
    await new Promise((r) => setTimeout(r, 300));
    assert.match(w.out.stdout, /scenario\/x {2}Waiting → Satisfied\n/);
  });
  t.is(await w.stop(), 0);
  const shown = w.out.stdout.split('\n').filter((l) => l !== '');
  t.is(shown.length, 2, w.out.stdout);
  t.notRegex(w.out.stdout, /Idle → Waiting/);
});

test('watch --server --count N and --timeout: stop as the etcd watch does; table lines without a reason', async (t) => {
  const s = new Scenarios(env.etcd.client(), '/cli-watch-count');
  const port = (await replica('/cli-watch-count', 'count-a')).grpcPort;
  const quiet = await cli(['--server', `127.0.0.1:${port}`, 'watch', '--count', '2', '--timeout', '500ms'], { env: {} });
  t.is(quiet.code, 1);
  t.true(quiet.stderr.endsWith('statemanager: watch ended after 500ms with 0 of 2 transitions\n'), quiet.stderr);

  const w = watchLive(['--server', `127.0.0.1:${port}`, '--count', '2']);
  await eventually(() => assert.match(w.out.stderr, /watching state changes of packages, models and scenarios/));
  await s.put('p', 'Idle');
  await s.put('p', 'Waiting');
  await s.put('p', 'Satisfied');
  t.is(await w.done, 0);
  t.regex(w.out.stdout, /^\S+ {2}scenario\/p {2}\(none\) → Idle\n\S+ {2}scenario\/p {2}Idle → Waiting\n$/);
});
