// Stop signals handled from the process's first moment (src/process/stop-signals.ts), in processes
// of their own: before the hand-over one ends the process at once with a line and exit 0 (it was
// killed by the signal with no line); after it, the signal calls the stop it was handed.
import { spawn } from 'node:child_process';
import test from 'ava';

function child(script: string): { ready: Promise<void>; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>; kill(s: NodeJS.Signals): void } {
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let armed!: () => void;
  const ready = new Promise<void>((r) => (armed = r));
  p.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes('armed')) armed();
  });
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>((r) => p.on('exit', (code, signal) => r({ code, signal, stderr, stdout })));
  return { ready, exit, kill: (s) => p.kill(s) };
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const) {
  test(`${signal} before the hand-over: exit 0 with one line`, async (t) => {
    const c = child(`import { handleStopSignals } from './src/process/stop-signals.ts'; handleStopSignals(); setTimeout(() => {}, 20000); console.log('armed');`);
    await c.ready;
    c.kill(signal);
    const r = await c.exit;
    t.is(r.code, 0);
    t.is(r.signal, null);
    t.is(r.stderr, `statemanager: ${signal} while starting, before anything was held: exiting\n`);
  });
}

test('after the hand-over a signal calls the stop it was given, every time', async (t) => {
  const c = child(`import { handleStopSignals } from './src/process/stop-signals.ts';
    const s = handleStopSignals(); let n = 0;
    s.handOver((sig) => { console.log('stop ' + sig); if (++n === 3) setTimeout(() => process.exit(0), 10); });
    setTimeout(() => {}, 20000); console.log('armed');`);
  await c.ready;
  for (const s of ['SIGHUP', 'SIGTERM', 'SIGQUIT'] as const) {
    c.kill(s);
    await new Promise((r) => setTimeout(r, 100));
  }
  const r = await c.exit;
  t.is(r.code, 0);
  t.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('stop')), ['stop SIGHUP', 'stop SIGTERM', 'stop SIGQUIT']);
  t.is(r.stderr, '');
});
