import test from 'ava';
import { PassThrough } from 'node:stream';
import { createLogger, endLogger } from '../src/observability/logging.js';
import { Metrics } from '../src/observability/metrics.js';
import { LoggingObserver } from '../src/observability/observer.js';

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

test('JSON lines: nested fields as JSON; a cycle or a BigInt, which JSON.stringify refuses, still makes a line', async (t) => {
  const { logger, lines } = capture('info', 'json');
  logger.info('nested', { detail: { a: [1, 'x'], b: null }, n: 1.5 });
  const cyclic: Record<string, unknown> = { name: 'c' };
  cyclic.self = cyclic;
  logger.warn('cyclic', { cyclic });
  logger.error('big', { id: 12345678901234567890n });
  logger.info('after', { ok: true });
  await new Promise((r) => setImmediate(r));
  t.is(lines.length, 4);
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(parsed[0], { level: 'info', message: 'nested', detail: { a: [1, 'x'], b: null }, n: 1.5 });
  t.like(parsed[1], { level: 'warn', message: 'cyclic', cyclic: { name: 'c', self: '[Circular]' } });
  t.like(parsed[2], { level: 'error', message: 'big', id: '12345678901234567890' });
  t.like(parsed[3], { level: 'info', message: 'after', ok: true });
  for (const p of parsed) t.regex(String(p.timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('text lines are human-readable', async (t) => {
  const { logger, lines } = capture('debug', 'text');
  logger.debug('resync', { reason: 'start', models: 3 });
  await new Promise((r) => setImmediate(r));
  t.regex(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} debug resync reason=start models=3$/);
});

// The observer skips building a line winston would drop: what is written is the same at each level.
test('the domain observer writes state changes and requests at info, and only warnings at warn', async (t) => {
  for (const [level, want] of [
    ['info', ['state changed', 'reconcile request created', 'reconcile request not delivered, will retry']],
    ['warn', ['reconcile request not delivered, will retry']],
    ['error', []],
  ] as const) {
    const { logger, lines } = capture(level, 'json');
    const metrics = new Metrics({ defaultMetrics: false });
    const o = new LoggingObserver(logger, metrics);
    o.transition('model', 'm', 'Created', 'Running', 'containers: 1 running');
    o.reconcileRequest('created', 'p');
    o.reconcileRequest('failed', 'p', 'unavailable');
    await new Promise((r) => setImmediate(r));
    t.deepEqual(lines.map((l) => (JSON.parse(l) as { message: string }).message), [...want], level);
    if (level === 'info') t.like(JSON.parse(lines[0]!), { kind: 'model', name: 'm', from: 'Created', to: 'Running', reason: 'containers: 1 running' });
    const text = await metrics.registry.metrics();
    t.true(text.includes('statemanager_state_transitions_total{kind="model",from="Created",to="Running"} 1'), level);
    t.true(text.includes('statemanager_reconcile_requests_total{result="failed"} 1'), level);
  }
});

test('a requested change: who asked goes on the one state-changed line', async (t) => {
  const { logger, lines } = capture('info', 'json');
  new LoggingObserver(logger, new Metrics({ defaultMetrics: false })).transition('scenario', 's', null, 'Idle', 'requested by pm', { source: 'pm', transitionId: 'tx', identity: 'token:pm', revision: 7 });
  await new Promise((r) => setImmediate(r));
  t.is(lines.length, 1);
  t.like(JSON.parse(lines[0]!), { message: 'state changed', kind: 'scenario', name: 's', from: null, to: 'Idle', reason: 'requested by pm', source: 'pm', transitionId: 'tx', identity: 'token:pm', revision: 7 });
});

test('the domain observer follows a change of the logger level', async (t) => {
  const { logger, lines } = capture('warn', 'json');
  const o = new LoggingObserver(logger, new Metrics({ defaultMetrics: false }));
  o.transition('model', 'm', 'Created', 'Running', 'r');
  logger.level = 'info';
  o.transition('model', 'm', 'Running', 'Dead', 'r');
  logger.level = 'error';
  o.transition('model', 'm', 'Dead', 'Running', 'r');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(lines.map((l) => (JSON.parse(l) as { to: string }).to), ['Dead']);
});

// Bad values written to etcd and deliveries failing while the ActionController is away come in
// bulk (20,000 junk values were 17,000 lines in 8 s): every one is counted, 10 lines per reason per
// 10 s are written, and the first line of the next window says how many were left out.
test('invalid input and failed deliveries: counted every time, logged 10 per reason per 10 s', async (t) => {
  for (const n of [9, 10, 11, 25]) {
    const { logger, lines } = capture('info', 'json');
    const metrics = new Metrics({ defaultMetrics: false });
    let now = 1_000_000;
    const o = new LoggingObserver(logger, metrics, () => now);
    for (let i = 0; i < n; i++) {
      o.invalidInput('malformed_json', `/container/n/c${i}`, 'Unexpected token');
      o.reconcileRequest('failed', `p${i}`, 'ActionController unavailable');
    }
    o.invalidInput('unknown_status', '/container/n/x', 'status "zombie"');
    await new Promise((r) => setImmediate(r));
    const messages = lines.map((l) => JSON.parse(l) as { message: string; reason?: string; suppressedBefore?: number });
    const logged = Math.min(n, 10);
    t.is(messages.filter((m) => m.reason === 'malformed_json').length, logged, `${n} malformed`);
    t.is(messages.filter((m) => m.message === 'reconcile request not delivered, will retry').length, logged, `${n} failed`);
    t.is(messages.filter((m) => m.reason === 'unknown_status').length, 1, 'another reason has its own lines');
    const text = await metrics.registry.metrics();
    t.true(text.includes(`statemanager_invalid_input_total{reason="malformed_json"} ${n}`), `${n} counted`);
    t.true(text.includes(`statemanager_reconcile_requests_total{result="failed"} ${n}`), `${n} failures counted`);
    // The next window: a line again, with the count of those left out.
    now += 10_000;
    lines.length = 0;
    o.invalidInput('malformed_json', '/container/n/again', 'Unexpected token');
    await new Promise((r) => setImmediate(r));
    const next = JSON.parse(lines[0]!) as { suppressedBefore?: number };
    t.is(next.suppressedBefore, n > 10 ? n - 10 : undefined, `${n}: left out before`);
  }
});

test('a line logged after the log is ended is dropped, not thrown (winston throws "write after end")', async (t) => {
  const { logger, lines } = capture('info', 'json');
  logger.info('stopped');
  endLogger(logger);
  t.notThrows(() => logger.warn('leader election attempt failed', { error: 'client closed' }));
  t.notThrows(() => logger.log('error', 'late'));
  await new Promise((r) => setImmediate(r));
  t.deepEqual(lines.map((l) => (JSON.parse(l) as { message: string }).message), ['stopped']);
  // Without it: the throw that ended a process stopped right after start-up with exit 70.
  const plain = capture('info', 'json').logger;
  plain.end();
  t.throws(() => plain.warn('late'), { message: /write after end/ });
});
