import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import test from 'ava';
import { OPTIMIZE_BUSY_CHECKS, OPTIMIZE_BUSY_UTILIZATION, OPTIMIZE_HEAP_BYTES, operatorChoseCompilers, splitNodeOptions, v8FlagName } from '../../src/process/optimizers.js';
import { outgrown } from '../../src/process/outgrown.js';

const run = promisify(execFile);

test('the operator chose how V8 compiles with --jitless, --lite-mode, --[no-]opt, --[no-]maglev or --[no-]turbofan, on the command line or in NODE_OPTIONS', (t) => {
  for (const flag of ['--jitless', '--lite-mode', '--no-opt', '--opt', '--no-maglev', '--maglev', '--no-turbofan', '--turbofan']) {
    t.true(operatorChoseCompilers([flag], undefined), `${flag} on the command line`);
    t.true(operatorChoseCompilers([], `--max-old-space-size=200 ${flag}`), `${flag} in NODE_OPTIONS`);
  }
  t.false(operatorChoseCompilers([], undefined), 'nothing');
  t.false(operatorChoseCompilers(['--max-old-space-size=200', '--import', 'tsx'], '--enable-source-maps'), 'other flags');
  t.false(operatorChoseCompilers(['--maglev-inlining'], '--turbofan-foo'), 'flags that only begin the same');
  t.false(operatorChoseCompilers(['--no-maglev-inlining', '--nomaglev-inlining', '--import', 'tsx'], undefined), 'negated flags that only begin the same');
});

// Found by black-box probing: V8 reads `--no_turbofan`, `--noturbofan` and `--noopt` as `--no-turbofan`
// and `--no-opt`, and node honours `"--jitless"` quoted in NODE_OPTIONS; a pattern over the raw text
// missed them (the compilers held and turned on against the operator's flag, and under the quoted
// --jitless the process died with SIGSEGV when they were turned on).
test('every spelling V8 reads names the same flag, also quoted in NODE_OPTIONS', (t) => {
  for (const arg of ['--no-turbofan', '--no_turbofan', '--noturbofan', '--turbofan', '-turbofan']) t.is(v8FlagName(arg), 'turbofan', arg);
  for (const arg of ['--max-opt=0', '--max_opt=2']) t.is(v8FlagName(arg), 'max-opt', arg);
  t.is(v8FlagName('--noopt'), 'opt');
  t.is(v8FlagName('--lite_mode'), 'lite-mode');
  t.is(v8FlagName('tsx'), undefined);
  for (const spelling of ['--no_turbofan', '--noturbofan', '--noopt', '--no_maglev', '--nomaglev', '--max-opt=1', '--max_opt=0', '--lite_mode']) {
    t.true(operatorChoseCompilers([spelling], undefined), `${spelling} on the command line`);
    t.true(operatorChoseCompilers([], `--enable-source-maps ${spelling}`), `${spelling} in NODE_OPTIONS`);
  }
  t.true(operatorChoseCompilers([], '"--jitless"'), 'quoted');
  t.true(operatorChoseCompilers([], '--require "./a b.js" "--no_turbofan"'), 'quoted after a quoted path with a space');
  t.deepEqual(splitNodeOptions('--a  "--b c" "x\\"y" ""'), ['--a', '--b c', 'x"y', '']);
});

test('the heap used outgrows a vehicle at the threshold, not below it', (t) => {
  const limits = { heapBytes: OPTIMIZE_HEAP_BYTES, busyChecks: OPTIMIZE_BUSY_CHECKS, utilization: OPTIMIZE_BUSY_UTILIZATION };
  t.is(outgrown(0, 0, OPTIMIZE_HEAP_BYTES - 1, limits).reason, undefined, 'below');
  t.is(outgrown(0, 0, OPTIMIZE_HEAP_BYTES, limits).reason, 'heap', 'at');
  t.is(outgrown(0, 0, OPTIMIZE_HEAP_BYTES + 1, limits).reason, 'heap', 'past');
});

test('the event loop outgrows a vehicle after enough busy checks in a row; an idle check starts the count again', (t) => {
  const limits = { heapBytes: OPTIMIZE_HEAP_BYTES, busyChecks: OPTIMIZE_BUSY_CHECKS, utilization: OPTIMIZE_BUSY_UTILIZATION };
  const busy = OPTIMIZE_BUSY_UTILIZATION;
  const idle = OPTIMIZE_BUSY_UTILIZATION - 0.01;
  t.deepEqual(outgrown(OPTIMIZE_BUSY_CHECKS - 2, busy, 0, limits), { busy: OPTIMIZE_BUSY_CHECKS - 1 }, 'one check short');
  t.deepEqual(outgrown(OPTIMIZE_BUSY_CHECKS - 1, busy, 0, limits), { busy: OPTIMIZE_BUSY_CHECKS, reason: 'busy' }, 'at');
  t.deepEqual(outgrown(OPTIMIZE_BUSY_CHECKS, busy, 0, limits), { busy: OPTIMIZE_BUSY_CHECKS + 1, reason: 'busy' }, 'past');
  t.deepEqual(outgrown(OPTIMIZE_BUSY_CHECKS - 1, idle, 0, limits), { busy: 0 }, 'just under the utilization: the count starts again');
});

// A real process: `%GetOptimizationStatus` (V8's natives syntax) says whether a hot function was
// optimized (bit 16). Held, it is not; released, it is; with the operator's --jitless nothing is held
// and release does nothing (turning a compiler on under --jitless would have no code space).
const script = (url: string) => `
  import { holdOptimizingCompilers } from '${url}';
  const [how] = process.argv.slice(1);
  const hold = process.env.FLAGS_SILENT === '1' ? holdOptimizingCompilers(false) : holdOptimizingCompilers();
  let reason = 'none';
  hold.onRelease((r) => (reason = r));
  const hot = new Function('a', 'let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 2; return s;');
  const arr = Array.from({ length: 100 }, (_, i) => i);
  const status = new Function('f', 'return %GetOptimizationStatus(f)');
  const spin = (n) => { let z = 0; for (let k = 0; k < n; k++) z += hot(arr); return z; };
  const tiered = async () => { for (let r = 0; r < 40; r++) { spin(20000); await new Promise((res) => setTimeout(res, 5)); } return (status(hot) & 16) !== 0; };
  const heldBefore = hold.held;
  const whileHeld = await tiered();
  if (how === 'outgrow' || how === 'starting') {
    // Busy 19 ms in every 20 for up to 1.5 s: started, the compilers are turned on; starting, not.
    if (how === 'outgrow') hold.markStartedUp();
    hold.releaseWhenOutgrown({ heapBytes: Number.MAX_SAFE_INTEGER, periodMs: 20, busyChecks: 3 });
    const end = Date.now() + 1500;
    while (hold.held && Date.now() < end) { const until = Date.now() + 19; while (Date.now() < until); await new Promise((res) => setImmediate(res)); }
    hold.stop();
  } else if (how === 'idle') {
    hold.markStartedUp();
    hold.releaseWhenOutgrown({ heapBytes: Number.MAX_SAFE_INTEGER, periodMs: 20, busyChecks: 3 });
    await new Promise((res) => setTimeout(res, 400));
    hold.stop();
  } else hold.release('heap');
  const afterRelease = await tiered();
  console.log(JSON.stringify({ heldBefore, whileHeld, held: hold.held, reason, afterRelease }));
`;

async function compilers(how: 'release' | 'outgrow' | 'starting' | 'idle', nodeArgs: string[] = [], nodeOptions = '', flagsSilent = false) {
  const url = pathToFileURL(resolve('src/process/optimizers.ts')).href;
  const { stdout } = await run(process.execPath, ['--allow-natives-syntax', ...nodeArgs, '--import', 'tsx', '--input-type=module', '-e', script(url), how], {
    env: { ...process.env, NODE_OPTIONS: nodeOptions, FLAGS_SILENT: flagsSilent ? '1' : '0' },
  });
  return JSON.parse(stdout.trim()) as { heldBefore: boolean; whileHeld: boolean; held: boolean; reason: string; afterRelease: boolean };
}

test('held, a hot function is not optimized; released, it is', async (t) => {
  t.deepEqual(await compilers('release'), { heldBefore: true, whileHeld: false, held: false, reason: 'heap', afterRelease: true });
});

test('a started process whose event loop is busy turns the compilers on; an idle one, or a busy start-up, keeps them held', async (t) => {
  t.deepEqual(await compilers('outgrow'), { heldBefore: true, whileHeld: false, held: false, reason: 'busy', afterRelease: true });
  for (const how of ['idle', 'starting'] as const) {
    const r = await compilers(how);
    t.is(r.held, true, how);
    t.is(r.afterRelease, false, `${how}: still not optimized`);
  }
});

test("with the operator's --jitless nothing is held and nothing is turned on", async (t) => {
  const r = await compilers('release', ['--jitless']);
  t.is(r.heldBefore, false);
  t.is(r.reason, 'none');
  t.false(r.afterRelease);
});

// Jitless is also found from V8 itself (no WebAssembly), whatever the flags' text says: turning a
// compiler on under it crashed the process. Quoted in NODE_OPTIONS the rule above finds it; with the
// flags' reading overruled (as if the rule had missed a spelling) the process still holds nothing
// and survives a release.
test('a process that runs jitless is never held, so a release cannot crash it', async (t) => {
  const quoted = await compilers('release', [], '"--jitless"');
  t.is(quoted.heldBefore, false);
  t.false(quoted.afterRelease);
  const overruled = await compilers('release', ['--jitless'], '', true);
  t.is(overruled.heldBefore, false, 'held under --jitless with the flags read as silent');
  t.is(overruled.reason, 'none');
  t.false(overruled.afterRelease);
});
