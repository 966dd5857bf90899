// A step of the wall clock, as a vehicle's clock makes when it first syncs (hours or years at
// boot, either way): statemanager measures its own intervals on the monotonic clock, so the step
// costs it nothing. Its process runs with test/helpers/clock-step.mjs, which moves Date.now and
// `new Date()` by what the test writes to a file; timers and performance.now run on.
import test from 'ava';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedEnv } from '../helpers/shared-env.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';
import { startReplica, type Replica } from '../helpers/replica.js';

const replicas: Replica[] = [];
const dir = mkdtempSync(join(tmpdir(), 'sm-clock-'));
const env = sharedEnv(test, async () => {
  await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
  rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const GRACE_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('an hour forward, then two back: leadership held, /healthz 200 throughout, a node lease\'s grace neither cut nor stretched', async (t) => {
  const stepFile = join(dir, 'step');
  writeFileSync(stepFile, '0');
  const w = new FleetWriter(env.etcd.client(), '/clk');
  const leaseKey = w.keys.nodeLeaseKey('n1');
  await env.etcd.client().put(leaseKey).value('alive');
  await w.packageDef('p', ['m']);
  await w.container('n1', 'c1', 'm', 'running');
  const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} --import=${new URL('../helpers/clock-step.mjs', import.meta.url).href}`.trim();
  const r = await startReplica({
    identity: 'clk-a',
    etcdEndpoint: env.etcd.endpoint,
    acAddr: env.ac.addr,
    config: { keyPrefix: '/clk', leaderElection: { enabled: true, leaseDuration: '3s' }, nodeLiveness: { enabled: true, grace: `${GRACE_MS}ms` } },
    env: { NODE_OPTIONS: nodeOptions, CLOCK_STEP_FILE: stepFile },
  });
  replicas.push(r);
  await eventually(async () => assert.strictEqual(await w.state('package', 'p'), 'Running'), { timeoutMs: 20_000 });
  t.is(await r.metric('leader_election_master_status', 'name="statemanager"'), 1);

  // An hour forward: the lease's renewals and the event loop's ticks are not late for it.
  writeFileSync(stepFile, String(HOUR));
  const health: number[] = [];
  for (const until = performance.now() + 3000; performance.now() < until; ) {
    health.push((await r.get('/healthz')).status);
    await sleep(50);
  }
  t.true(health.length > 20);
  t.deepEqual([...new Set(health)], [200], '/healthz 200 after the step');
  t.is(await r.metric('leader_election_master_status', 'name="statemanager"'), 1, 'still leading 3 s later (the 3 s lease renews every second)');
  const lost = r.output.filter((l) => /lease not renewed|leadership lost/.test(l));
  t.deepEqual(lost, [], 'no lease taken for lost');

  // The node's lease goes, and the clock steps two hours back: NotReady when the grace ends,
  // not two hours later.
  const goneAt = performance.now();
  await env.etcd.client().delete().key(leaseKey);
  writeFileSync(stepFile, String(-HOUR));
  await sleep(500);
  t.is(await w.state('model', 'm'), 'Running', 'within the grace');
  await eventually(async () => assert.strictEqual(await w.state('model', 'm'), 'Dead'), { timeoutMs: GRACE_MS + 5000 });
  const after = performance.now() - goneAt;
  t.log(`Dead ${Math.round(after)} ms after the lease went (grace ${GRACE_MS} ms)`);
  t.true(after >= GRACE_MS - 100, `Dead after ${after} ms, before the grace ended`);
  await eventually(async () => assert.strictEqual(await w.state('package', 'p'), 'Error'));
  t.is(await r.metric('leader_election_master_status', 'name="statemanager"'), 1);
  t.deepEqual(r.output.filter((l) => /lease not renewed|leadership lost/.test(l)), []);
});
