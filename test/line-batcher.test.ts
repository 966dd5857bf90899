// Log lines written in one turn leave in one write (src/observability/line-batcher.ts), in order,
// and none is lost when the process exits or crashes right after logging.
import { spawn, spawnSync } from 'node:child_process';
import test from 'ava';
import { flushHeldLines, LineBatcher, type CorkableStream } from '../src/observability/line-batcher.js';

/** A target that records what reaches it and when: a cork holds writes until the matching uncork. */
function recordingTarget() {
  const calls: string[] = [];
  let corked = 0;
  let held: string[] = [];
  const out: string[][] = [];
  const target: CorkableStream = {
    write: (chunk) => {
      const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      if (corked > 0) held.push(s);
      else out.push([s]);
    },
    cork: () => {
      calls.push('cork');
      corked++;
    },
    uncork: () => {
      calls.push('uncork');
      if (--corked === 0 && held.length > 0) {
        out.push(held);
        held = [];
      }
    },
  };
  return { target, calls, out };
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('lines of one turn leave together at the next turn, in order; a later turn makes a batch of its own', async (t) => {
  const { target, calls, out } = recordingTarget();
  const b = new LineBatcher(target);
  for (let i = 0; i < 5; i++) b.write(`line ${i}\n`);
  t.deepEqual(out, [], 'held during the turn');
  await nextTurn();
  t.deepEqual(out, [['line 0\n', 'line 1\n', 'line 2\n', 'line 3\n', 'line 4\n']]);
  t.deepEqual(calls, ['cork', 'uncork']);
  b.write('line 5\n');
  await nextTurn();
  t.deepEqual(out.at(-1), ['line 5\n']);
  t.deepEqual(calls, ['cork', 'uncork', 'cork', 'uncork']);
});

test('flushHeldLines lets held lines go at once; the scheduled release then finds nothing', async (t) => {
  const { target, calls, out } = recordingTarget();
  const b = new LineBatcher(target);
  b.write('a\n');
  b.write('b\n');
  flushHeldLines();
  t.deepEqual(out, [['a\n', 'b\n']]);
  await nextTurn();
  t.deepEqual(calls, ['cork', 'uncork'], 'uncorked once');
  b.write('c\n');
  b.end();
  await new Promise((r) => b.once('finish', r));
  t.deepEqual(out.at(-1), ['c\n'], 'end() lets the last lines go');
});

function child(body: string): { status: number | null; lines: string[] } {
  const script = `
    import { createLogger } from './src/observability/logging.ts';
    import { installCrashPolicy } from './src/process/crash.ts';
    installCrashPolicy();
    const log = createLogger('info', 'json');
    ${body}`;
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url).pathname,
    encoding: 'utf8',
  });
  return { status: res.status, lines: res.stderr.split('\n').filter((l) => l !== '') };
}

test('a process that exits in the same turn as it logged still writes every line, in order', (t) => {
  const { status, lines } = child(`for (let i = 0; i < 2000; i++) log.info('state changed', { i }); process.exit(3);`);
  t.is(status, 3);
  t.is(lines.length, 2000);
  t.deepEqual(
    lines.map((l) => (JSON.parse(l) as { i: number }).i),
    Array.from({ length: 2000 }, (_, i) => i),
  );
});

test('a process that exits in the same turn as it logged, its stderr a pipe read 1 s late: every line, in order (blocking writes)', async (t) => {
  const script = `
    import { createLogger } from './src/observability/logging.ts';
    const log = createLogger('info', 'json');
    for (let i = 0; i < 2000; i++) log.info('state changed', { i, pad: 'x'.repeat(60) });
    process.exit(3);`;
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.pause();
  let text = '';
  // More than a pipe holds (64 KiB) is written before anyone reads: without blocking writes the rest was dropped at exit.
  setTimeout(() => {
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
    proc.stderr.resume();
  }, 1000);
  const status = await new Promise<number | null>((resolve) => proc.on('close', resolve));
  const lines = text.split('\n').filter((l) => l !== '');
  t.is(status, 3);
  t.is(lines.length, 2000);
  t.deepEqual(
    lines.map((l) => (JSON.parse(l) as { i: number }).i),
    Array.from({ length: 2000 }, (_, i) => i),
  );
});

test('a crash right after logging: the lines before it, then the crash line', (t) => {
  const { status, lines } = child(`for (let i = 0; i < 50; i++) log.info('state changed', { i }); setImmediate(() => {}); queueMicrotask(() => { throw new Error('boom'); });`);
  t.is(status, 70);
  t.is(lines.length, 51);
  t.deepEqual(
    lines.slice(0, 50).map((l) => (JSON.parse(l) as { i: number }).i),
    Array.from({ length: 50 }, (_, i) => i),
  );
  t.like(JSON.parse(lines[50]!), { level: 'error', error: 'boom' });
});
