import test from 'ava';
import { PassThrough } from 'node:stream';
import { createLogger } from '../src/observability/logging.js';

function capture(level: string, format: 'json' | 'text') {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter((l) => l !== '')));
  return { logger: createLogger(level, format, stream), lines };
}

test('JSON lines carry the message, level, time and fields; lines below the level are dropped', async (t) => {
  const { logger, lines } = capture('info', 'json');
  logger.debug('hidden', { a: 1 });
  logger.info('state changed', { kind: 'model', name: 'm', from: 'Created', to: 'Running' });
  await new Promise((r) => setImmediate(r));
  t.is(lines.length, 1);
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.like(line, { level: 'info', message: 'state changed', kind: 'model', name: 'm', from: 'Created', to: 'Running' });
  t.regex(String(line.timestamp), /^\d{4}-\d\d-\d\dT/);
});

test('text lines are human-readable', async (t) => {
  const { logger, lines } = capture('debug', 'text');
  logger.debug('resync', { reason: 'start', models: 3 });
  await new Promise((r) => setImmediate(r));
  t.regex(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} debug resync reason=start models=3$/);
});
