// Node's warnings as log lines (src/process/warnings.ts): one line each, no plain text on stderr.
import { spawnSync } from 'node:child_process';
import test from 'ava';
import { logProcessWarnings, MAX_DISTINCT } from '../../src/process/warnings.js';
import { captureLogger } from '../grpc/_support.js';

test.serial('a Node warning is one log line at warn, a repeat none', async (t) => {
  const logger = captureLogger();
  t.teardown(logProcessWarnings(logger));
  for (let i = 0; i < 3; i++) process.emitWarning('Setting the TLS ServerName to an IP address is not permitted by RFC 6066.', { type: 'DeprecationWarning', code: 'DEP0123' });
  process.emitWarning('another one', { type: 'ExperimentalWarning' });
  await new Promise((r) => setImmediate(r));
  t.deepEqual(
    logger.lines.map((l) => [l.level, l.message, l.meta.warning, l.meta.code]),
    [
      ['warn', 'Node.js warning', 'DeprecationWarning', 'DEP0123'],
      ['warn', 'Node.js warning', 'ExperimentalWarning', undefined],
    ],
  );
});

test.serial(`at most MAX_DISTINCT (${MAX_DISTINCT}) distinct warnings are logged: below and at it each once, past it none`, async (t) => {
  const logger = captureLogger();
  t.teardown(logProcessWarnings(logger));
  for (let i = 0; i < MAX_DISTINCT + 5; i++) process.emitWarning(`warning ${i}`);
  await new Promise((r) => setImmediate(r));
  t.is(logger.lines.length, MAX_DISTINCT);
  t.is(logger.lines.at(-1)!.meta.detail, `warning ${MAX_DISTINCT - 1}`);
});

test('nothing of it reaches stderr as plain text (a process of its own)', (t) => {
  const script = `
    import { logProcessWarnings } from './src/process/warnings.ts';
    logProcessWarnings({ warn: (m, meta) => process.stdout.write(JSON.stringify({ m, ...meta }) + '\\n'), info() {}, error() {}, debug() {} });
    process.emitWarning('Setting the TLS ServerName to an IP address is not permitted', { type: 'DeprecationWarning', code: 'DEP0123' });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  t.like(JSON.parse(r.stdout.trim()), { m: 'Node.js warning', code: 'DEP0123' });
});
