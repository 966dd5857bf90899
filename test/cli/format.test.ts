// The pure formatting of the command-line tool: tables, times, colours, counts, trees.
import test from 'ava';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { historyLines, requestLine } from '../../src/cli/describe.js';
import {
  alignRows,
  countBy,
  formatCounts,
  formatDuration,
  formatTable,
  formatTransition,
  paintState,
  parseDuration,
  printable,
  relativeTime,
  renderTree,
  shouldColour,
  stateColour,
  stripAnsi,
} from '../../src/cli/format.js';
import { historyTable } from '../../src/cli/history.js';
import { parseHistoryEntry } from '../../domain/history-entry.js';
import { parseKind } from '../../src/cli/kinds.js';
import { watchLine } from '../../src/cli/watch.js';

const NOW = Date.parse('2025-03-01T12:00:00.000Z');
const at = (msAgo: number): string => new Date(NOW - msAgo).toISOString();

test('formatTable aligns columns three spaces apart, upper-cases headers, trims trailing space', (t) => {
  const out = formatTable(['name', 'state', 'models'], [
    ['shop', 'Running', '2 Running'],
    ['a-much-longer-name', 'Idle', ''],
  ]);
  t.is(
    out,
    'NAME                 STATE     MODELS\n' + 'shop                 Running   2 Running\n' + 'a-much-longer-name   Idle\n',
  );
});

test('formatTable measures coloured cells by their visible width', (t) => {
  const plain = formatTable(['a', 'b'], [['Running', 'x'], ['Dead', 'y']]);
  const coloured = formatTable(['a', 'b'], [[paintState('Running', true), 'x'], [paintState('Dead', true), 'y']]);
  t.not(plain, coloured);
  t.is(stripAnsi(coloured), plain);
});

test('alignRows pads every column but the last', (t) => {
  t.deepEqual(alignRows([['a', 'bb', 'c'], ['ddd', 'e']]), ['a     bb   c', 'ddd   e']);
});

test('relativeTime: seconds, minutes, hours up to two days, then days; future and missing', (t) => {
  t.is(relativeTime(at(0), NOW), 'just now');
  t.is(relativeTime(at(999), NOW), 'just now');
  t.is(relativeTime(at(45_000), NOW), '45s ago');
  t.is(relativeTime(at(120_000), NOW), '2m ago');
  t.is(relativeTime(at(119_000), NOW), '1m ago');
  t.is(relativeTime(at(3 * 3_600_000), NOW), '3h ago');
  t.is(relativeTime(at(47 * 3_600_000), NOW), '47h ago');
  t.is(relativeTime(at(3 * 86_400_000), NOW), '3d ago');
  t.is(relativeTime(at(-5_000), NOW), 'in 5s');
  t.is(relativeTime(null, NOW), '<none>');
  t.is(relativeTime('not a time', NOW), 'not a time');
});

test('parseDuration reads ms, s, m, h and bare milliseconds (as the configuration does); rejects the rest', (t) => {
  t.is(parseDuration('500ms'), 500);
  t.is(parseDuration('3s'), 3000);
  t.is(parseDuration('1.5m'), 90_000);
  t.is(parseDuration('1h'), 3_600_000);
  t.is(parseDuration('2'), 2);
  t.is(parseDuration('250'), 250);
  t.is(parseDuration('abc'), undefined);
  t.is(parseDuration('-1s'), undefined);
  t.is(parseDuration('3 days'), undefined);
  t.is(formatDuration(250), '250ms');
  t.is(formatDuration(3000), '3s');
  t.is(formatDuration(1500), '1.5s');
  t.is(formatDuration(90_000), '1.5m');
});

test('formatCounts follows the state order, then the rest alphabetically, and skips zeros', (t) => {
  const order = ['Created', 'Running', 'Paused', 'Exited', 'Dead'];
  t.is(formatCounts(countBy(['Dead', 'Running', 'Running', 'zeta', 'alpha']), order), '2 Running, 1 Dead, 1 alpha, 1 zeta');
  t.is(formatCounts(new Map(), order), '0');
  t.is(formatCounts(new Map([['Running', 0]]), order), '0');
});

test('colours: green, yellow, red, grey by state, case-insensitive; none for other words', (t) => {
  for (const s of ['Running', 'Idle', 'Satisfied', 'Allowed', 'Completed', 'running']) t.is(stateColour(s), 'green', s);
  for (const s of ['Paused', 'Degraded', 'Waiting', 'paused']) t.is(stateColour(s), 'yellow', s);
  for (const s of ['Error', 'Dead', 'Denied', 'dead', 'unknown']) t.is(stateColour(s), 'red', s);
  for (const s of ['Exited', 'Created', 'exited', 'created']) t.is(stateColour(s), 'grey', s);
  t.is(stateColour('<none>'), undefined);
  t.is(paintState('Running', true), '\u001b[32mRunning\u001b[0m');
  t.is(paintState('Error', true), '\u001b[31mError\u001b[0m');
  t.is(paintState('Waiting', true), '\u001b[33mWaiting\u001b[0m');
  t.is(paintState('Exited', true), '\u001b[90mExited\u001b[0m');
  t.is(paintState('Running', false), 'Running');
  t.is(paintState('<none>', true), '<none>');
});

test('shouldColour: only a TTY, and never with NO_COLOR set', (t) => {
  t.true(shouldColour(true, {}));
  t.false(shouldColour(false, {}));
  t.false(shouldColour(undefined, {}));
  t.false(shouldColour(true, { NO_COLOR: '1' }));
  t.false(shouldColour(true, { NO_COLOR: '' }));
});

test('renderTree draws branches, continuation bars and detail lines', (t) => {
  const out = renderTree({
    label: 'package/p',
    lines: ['detail'],
    children: [
      { label: 'model/a', lines: ['a-detail'], children: [{ label: 'c1' }, { label: 'c2' }] },
      { label: 'model/b', lines: ['b-detail'] },
    ],
  });
  t.is(
    out,
    [
      'package/p',
      '│  detail',
      '├─ model/a',
      '│  │  a-detail',
      '│  ├─ c1',
      '│  └─ c2',
      '└─ model/b',
      '      b-detail',
      '',
    ].join('\n'),
  );
});

const entry = (over: Partial<HistoryEntry> = {}): HistoryEntry => ({
  kind: 'package',
  name: 'shop',
  from: 'Running',
  to: 'Degraded',
  at: at(120_000),
  reason: 'models: 1 Dead',
  source: 'controller',
  drawn: true,
  ...over,
});

test('watchLine: time kind/name from → to (reason), coloured only on request', (t) => {
  t.is(watchLine(entry(), false), `${at(120_000)}  package/shop  Running → Degraded (models: 1 Dead)`);
  t.is(watchLine(entry({ from: null, to: 'Idle', reason: '' }), false), `${at(120_000)}  package/shop  (none) → Idle`);
  t.is(
    watchLine(entry(), true),
    `${at(120_000)}  package/shop  \u001b[32mRunning\u001b[0m → \u001b[33mDegraded\u001b[0m (models: 1 Dead)`,
  );
  t.is(formatTransition(null, 'Created', false), '(none) → Created');
});

test('historyTable lists oldest first with ISO time and age, and marks undrawn edges', (t) => {
  const out = historyTable([entry({ from: null, to: 'Created', at: at(600_000), reason: 'new' }), entry({ drawn: false })], NOW, false);
  t.is(
    out,
    [
      'TIME                       AGE       TRANSITION           REASON                              SOURCE',
      `${at(600_000)}   10m ago   (none) → Created     new                                 controller`,
      `${at(120_000)}   2m ago    Running → Degraded   models: 1 Dead (not a drawn edge)   controller`,
      '',
    ].join('\n'),
  );
  t.is(historyTable([], NOW, false), '');
});

test('historyTable shows the authenticated identity of requested changes beside the claimed source', (t) => {
  const out = historyTable(
    [entry({ kind: 'scenario', from: null, to: 'Idle', at: at(600_000), reason: 'requested', source: 'policy-engine', identity: 'cn:policymanager' }), entry({})],
    NOW,
    false,
  );
  const [head, first, second] = out.split('\n');
  t.regex(head!, /SOURCE +IDENTITY$/);
  t.regex(first!, /policy-engine +cn:policymanager$/);
  t.regex(second!, /controller +-$/);
});

test('historyLines says how many of how many are shown', (t) => {
  t.deepEqual(historyLines([], 0, NOW, false), ['history: none recorded']);
  t.deepEqual(historyLines([], 4, NOW, false), []);
  const lines = historyLines([entry()], 4, NOW, false);
  t.is(lines[0], 'history (last 1 of 4):');
  t.is(lines[1], '  2m ago   Running → Degraded   models: 1 Dead   controller');
});

test('requestLine: none, pending, delivered with scenario, failures, unreadable', (t) => {
  t.is(requestLine(null, NOW), 'reconcile request: none');
  t.is(
    requestLine({ valid: true, status: 'pending', package: 'p', state: 'Error', requestedAt: at(60_000), deliveries: 0, failures: 2, lastError: 'UNAVAILABLE' }, NOW),
    'reconcile request: pending (state Error, requested 1m ago, not delivered yet, 2 failed calls, last error: UNAVAILABLE)',
  );
  t.is(
    requestLine(
      { valid: true, status: 'delivered', package: 'p', state: 'Error', requestedAt: at(300_000), deliveries: 1, lastDeliveredAt: at(30_000), scenario: 's' },
      NOW,
    ),
    'reconcile request: delivered (state Error, requested 5m ago, 1 delivery, last delivered 30s ago, scenario s)',
  );
  t.is(requestLine({ valid: false, status: 'unreadable', raw: 'oops' }, NOW), 'reconcile request: unreadable value "oops"');
});

test('parseHistoryEntry accepts what the controller writes and rejects the rest', (t) => {
  const e = entry();
  t.deepEqual(parseHistoryEntry(JSON.stringify(e)), e);
  t.is(parseHistoryEntry('nope'), undefined);
  t.is(parseHistoryEntry('{"kind":"model"}'), undefined);
  t.is(parseHistoryEntry('null'), undefined);
  const minimal = parseHistoryEntry('{"kind":"model","name":"m","to":"Dead","at":"2025-01-01T00:00:00Z"}');
  t.deepEqual(minimal, { kind: 'model', name: 'm', from: null, to: 'Dead', at: '2025-01-01T00:00:00Z', reason: '', source: '', drawn: true });
});

test('parseKind accepts singular, plural and short forms, within what a command allows', (t) => {
  t.is(parseKind('packages'), 'package');
  t.is(parseKind('pkg'), 'package');
  t.is(parseKind('Model'), 'model');
  t.is(parseKind('scenarios'), 'scenario');
  t.is(parseKind('scenario', ['model', 'package']), undefined);
  t.is(parseKind('nodes'), undefined);
});

test('printable escapes what a terminal would act on, keeps our colours and ordinary text', (t) => {
  t.is(printable('plain name é 漢 😀'), 'plain name é 漢 😀');
  t.is(printable('evil\u001b[2Jname'), 'evil\\u{1b}[2Jname');
  t.is(printable('a\nb\tc\u0007'), 'a\\u{a}b\\u{9}c\\u{7}');
  t.is(printable('x\u0085\u009b'), 'x\\u{85}\\u{9b}');
  t.is(printable('abc\u202edcba'), 'abc\\u{202e}dcba');
  t.is(printable('\u001b[32mRunning\u001b[0m'), '\u001b[32mRunning\u001b[0m');
  // A table never lets a value break its row or the screen.
  const table = formatTable(['name', 'state'], [['p\nfake-row', 'Running'], ['q\u001b[H', 'Dead']]);
  t.is(table.split('\n').length, 4);
  t.false(table.includes('\u001b[H'));
});

test('historyLines shows who was authenticated when it differs from the claimed source', (t) => {
  const lines = historyLines([entry({ reason: 'requested', source: 'policy-engine', identity: 'token:pm' }), entry({ source: 'cn:pm', identity: 'cn:pm' })], 2, NOW, false);
  t.regex(lines[1]!, /policy-engine \(as token:pm\)$/);
  t.regex(lines[2]!, / cn:pm$/);
});
