// The process-level policy for an unexpected exception: one JSON line with context on stderr,
// exit code 70, for the supervisor to restart a clean process.
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { CRASH_EXIT_CODE } from '../src/process/crash.js';

function run(body: string): { status: number | null; line: Record<string, unknown> } {
  const script = `
    import { installCrashPolicy } from './src/process/crash.ts';
    installCrashPolicy({ context: () => ({ identity: 'r1' }) });
    ${body}
    setTimeout(() => process.exit(0), 2000);`;
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url).pathname,
    encoding: 'utf8',
  });
  const last = res.stderr.trim().split('\n').pop() ?? '';
  return { status: res.status, line: JSON.parse(last) as Record<string, unknown> };
}

test('an exception thrown from a callback ends the process with 70 and one line of context', (t) => {
  const { status, line } = run(`setTimeout(() => { throw new Error('boom in a stream handler'); }, 10);`);
  t.is(status, CRASH_EXIT_CODE);
  t.is(line.level, 'error');
  t.is(line.error, 'boom in a stream handler');
  t.is(line.origin, 'uncaughtException');
  t.is(line.identity, 'r1');
  t.regex(String(line.stack), /boom in a stream handler/);
});

test('an unhandled rejection is treated the same way', (t) => {
  const { status, line } = run(`Promise.reject(new Error('nobody awaited me'));`);
  t.is(status, CRASH_EXIT_CODE);
  t.is(line.origin, 'unhandledRejection');
  t.is(line.error, 'nobody awaited me');
});
