// Contract section 1: container status mapping, model annotation precedence, ContainerInfo
// parsing, node status, and a NotReady node making a model Dead.
import test from 'ava';
import {
  containerStatus,
  effectiveStatus,
  modelOfContainer,
  parseContainer,
  parseNodeStatus,
  type ContainerInfo,
} from '../../domain/container.js';
import { nextModelState, nextPackageState } from '../../domain/rules.js';
import type { ContainerStatus } from '../../domain/states.js';

// state["Status"] → status; the boolean says whether parseContainer flags it as unrecognised.
const STATUS_ROWS: [string, ContainerStatus, boolean][] = [
  ['created', 'created', false],
  ['initialized', 'created', false],
  ['running', 'running', false],
  ['restarting', 'running', false],
  ['stopping', 'running', false],
  ['paused', 'paused', false],
  ['exited', 'exited', false],
  ['stopped', 'exited', false],
  ['removing', 'exited', false],
  ['dead', 'dead', false],
  // case-insensitive, trimmed
  ['Created', 'created', false],
  ['RUNNING', 'running', false],
  ['Restarting', 'running', false],
  ['Paused', 'paused', false],
  ['EXITED', 'exited', false],
  // Not trimmed: a padded spelling is none of the contract's (anything else → unknown).
  [' exited ', 'unknown', true],
  ['running\n', 'unknown', true],
  ['Stopped', 'exited', false],
  ['Dead', 'dead', false],
  ['Initialized', 'created', false],
  // anything else
  ['configured', 'unknown', true],
  ['unknown', 'unknown', true],
  ['up 3 hours', 'unknown', true],
  ['run', 'unknown', true],
  ['CONTAINER_STATE_RUNNING', 'unknown', true],
];

for (const [raw, want, flagged] of STATUS_ROWS) {
  test(`container Status ${JSON.stringify(raw)} → ${want}`, (t) => {
    const info = { state: { Status: raw } };
    t.is(containerStatus(info), want);
    const r = parseContainer(JSON.stringify({ id: 'c1', annotation: { model: 'm' }, state: { Status: raw } }));
    if (!r.ok) return t.fail(r.detail);
    t.is(r.container.status, want);
    t.is(r.unknownStatus, flagged);
    t.is(r.container.rawStatus, flagged ? raw : undefined);
  });
}

// No Status: the Running flag, exactly "true" (contract: `state["Running"] == "true"`).
const FALLBACK_ROWS: [string, Record<string, unknown> | undefined, ContainerStatus][] = [
  ['Running "true"', { Running: 'true' }, 'running'],
  ['Running "True"', { Running: 'True' }, 'unknown'],
  ['Running "TRUE"', { Running: 'TRUE' }, 'unknown'],
  ['Running " true "', { Running: ' true ' }, 'unknown'],
  ['Running "false"', { Running: 'false' }, 'unknown'],
  ['Running "yes"', { Running: 'yes' }, 'unknown'],
  ['Running "1"', { Running: '1' }, 'unknown'],
  ['Running true (boolean, ignored)', { Running: true }, 'unknown'],
  ['empty state', {}, 'unknown'],
  ['no state', undefined, 'unknown'],
  ['empty Status counts as none', { Status: '', Running: 'true' }, 'running'],
  ['unrecognised blank Status (not trimmed)', { Status: '  ', Running: 'true' }, 'unknown'],
  ['non-string Status ignored', { Status: 3, Running: 'true' }, 'running'],
  ['Status wins over Running', { Status: 'exited', Running: 'true' }, 'exited'],
  ['unrecognised Status wins over Running', { Status: 'bogus', Running: 'true' }, 'unknown'],
];

for (const [title, state, want] of FALLBACK_ROWS) {
  test(`container status fallback: ${title} → ${want}`, (t) => {
    const info: Record<string, unknown> = state === undefined ? {} : { state };
    t.is(containerStatus(info), want);
    const r = parseContainer(JSON.stringify({ ...info, annotation: { model: 'm' } }));
    if (!r.ok) return t.fail(r.detail);
    t.is(r.container.status, want);
    t.is(r.unknownStatus, title.startsWith('unrecognised'));
  });
}

test('container status: state not an object → unknown, not flagged', (t) => {
  t.is(containerStatus({ state: ['running'] }), 'unknown');
  t.is(containerStatus({ state: 'running' }), 'unknown');
  t.is(containerStatus({ state: null }), 'unknown');
  const r = parseContainer('{"annotation":{"model":"m"},"state":"running"}');
  t.true(r.ok && r.container.status === 'unknown' && !r.unknownStatus);
});

// Model annotation precedence.
const MODEL_ROWS: [string, Record<string, unknown>, string | undefined][] = [
  [
    'io.pullpiri.annotations.model first',
    {
      annotation: { 'io.pullpiri.annotations.model': 'a', 'pullpiri.model': 'b', model: 'c' },
      config: { model: 'd' },
    },
    'a',
  ],
  ['pullpiri.model second', { annotation: { 'pullpiri.model': 'b', model: 'c' }, config: { model: 'd' } }, 'b'],
  ['model third', { annotation: { model: 'c' }, config: { model: 'd' } }, 'c'],
  ['config.model last', { annotation: { other: 'x' }, config: { model: 'd' } }, 'd'],
  ['config.model without annotations', { config: { model: 'd' } }, 'd'],
  ['empty annotation skipped', { annotation: { 'io.pullpiri.annotations.model': '', model: 'c' } }, 'c'],
  ['non-string annotation skipped', { annotation: { 'io.pullpiri.annotations.model': 7, 'pullpiri.model': 'b' } }, 'b'],
  ['null annotation value skipped', { annotation: { 'pullpiri.model': null }, config: { model: 'd' } }, 'd'],
  ['annotation as array ignored', { annotation: ['a'], config: { model: 'd' } }, 'd'],
  ['annotation null ignored', { annotation: null, config: { model: 'd' } }, 'd'],
  ['model name kept as is', { annotation: { model: ' spaced ' } }, ' spaced '],
  ['labels are not annotations', { labels: { model: 'x' }, state: { model: 'y' } }, undefined],
  ['nothing', {}, undefined],
  ['config.model not a string', { config: { model: ['d'] } }, undefined],
  ['only empty strings', { annotation: { model: '' }, config: { model: '' } }, undefined],
  // Last: a name `model-<name>`, after an optional leading `/` (Pullpiri's own StateManager).
  ['name /model-nav', { names: ['/model-nav'] }, 'nav'],
  ['name model-nav without /', { names: ['model-nav'] }, 'nav'],
  ['first model- name wins', { names: ['/web', '/model-a', '/model-b'] }, 'a'],
  ['rest of the name kept as is', { names: ['/model-nav-map.v2'] }, 'nav-map.v2'],
  ['annotation before name', { annotation: { model: 'c' }, names: ['/model-nav'] }, 'c'],
  ['io.pullpiri annotation before name', { annotation: { 'io.pullpiri.annotations.model': 'a' }, names: ['model-nav'] }, 'a'],
  ['config.model before name', { config: { model: 'd' }, names: ['/model-nav'] }, 'd'],
  ['empty annotation falls through to name', { annotation: { model: '' }, config: { model: '' }, names: ['/model-nav'] }, 'nav'],
  ['bare model- names nothing, next entry', { names: ['/model-', 'model-b'] }, 'b'],
  ['bare model- only', { names: ['model-', '/model-'] }, undefined],
  ['prefix is case-sensitive', { names: ['/Model-nav', 'MODEL-x'] }, undefined],
  ['model- inside a name does not count', { names: ['/no-model-here', 'xmodel-a'] }, undefined],
  ['only one leading / is skipped', { names: ['//model-nav'] }, undefined],
  ['non-string names skipped', { names: [7, null, { n: 'model-x' }, '/model-ok'] }, 'ok'],
  ['names not an array ignored', { names: '/model-nav' }, undefined],
  ['no names', { names: [] }, undefined],
];

for (const [title, info, want] of MODEL_ROWS) {
  test(`model of container: ${title}`, (t) => {
    t.is(modelOfContainer(info), want);
  });
}

test('modelOfContainer accepts the typed ContainerInfo', (t) => {
  const info: ContainerInfo = { id: 'c', names: ['n'], image: 'i', state: {}, config: {}, annotation: { 'pullpiri.model': 'm' } };
  t.is(modelOfContainer(info), 'm');
});

test('parseContainer keeps only id, model and status', (t) => {
  const value = JSON.stringify({
    id: 'abc123',
    names: ['/helloworld'],
    image: 'quay.io/podman/hello:latest',
    state: { Status: 'running', Running: 'true', Pid: '42', ExitCode: '0' },
    config: { Hostname: 'x', model: 'ignored' },
    annotation: { 'io.pullpiri.annotations.model': 'helloworld' },
    stats: { cpu: '1' },
    extra: { nested: [1, 2, 3] },
  });
  const r = parseContainer(value);
  t.deepEqual(r, { ok: true, container: { id: 'abc123', model: 'helloworld', status: 'running' }, unknownStatus: false });
  if (r.ok) t.deepEqual(Object.keys(r.container).sort(), ['id', 'model', 'status']);
});

test('parseContainer: a container named /model-nav with no annotation belongs to model nav', (t) => {
  const r = parseContainer(JSON.stringify({ id: 'c9', names: ['/model-nav'], state: { Status: 'running' }, annotation: {}, config: {} }));
  t.deepEqual(r, { ok: true, container: { id: 'c9', model: 'nav', status: 'running' }, unknownStatus: false });
});

test('parseContainer: the no-model detail names every source', (t) => {
  const r = parseContainer('{"id":"a","names":["/web"]}');
  t.false(r.ok);
  if (!r.ok) t.regex(r.detail, /io\.pullpiri\.annotations\.model.*config\["model"\] or name model-<model>/);
});

test('parseContainer: id falls back to the key id', (t) => {
  const noId = '{"annotation":{"model":"m"},"state":{"Status":"exited"}}';
  const a = parseContainer(noId, 'from-key');
  t.true(a.ok && a.container.id === 'from-key');
  const b = parseContainer(noId);
  t.true(b.ok && b.container.id === '');
  const c = parseContainer('{"id":5,"annotation":{"model":"m"}}', 'k');
  t.true(c.ok && c.container.id === 'k');
  const d = parseContainer('{"id":"j","annotation":{"model":"m"}}', 'k');
  t.true(d.ok && d.container.id === 'j');
});

const BAD_ROWS: [string, string, 'malformed_json' | 'not_an_object' | 'no_model'][] = [
  ['empty', '', 'malformed_json'],
  ['truncated', '{"id":"a","annotation":{"model":"m"}', 'malformed_json'],
  ['yaml', 'id: a\nannotation:\n  model: m\n', 'malformed_json'],
  ['null', 'null', 'not_an_object'],
  ['array', '[{"annotation":{"model":"m"}}]', 'not_an_object'],
  ['number', '42', 'not_an_object'],
  ['string', '"running"', 'not_an_object'],
  ['no model', '{"id":"a","state":{"Status":"running"}}', 'no_model'],
  ['empty maps', '{"id":"a","annotation":{},"config":{}}', 'no_model'],
  ['names without model-', '{"id":"a","names":["/web"],"annotation":{}}', 'no_model'],
];

for (const [title, value, reason] of BAD_ROWS) {
  test(`parseContainer rejects ${title} as ${reason}`, (t) => {
    const r = parseContainer(value);
    t.false(r.ok);
    if (!r.ok) {
      t.is(r.reason, reason);
      t.true(r.detail.length > 0);
    }
  });
}

// Node status.
const NODE_ROWS: [string | undefined, boolean, boolean][] = [
  ['Ready', true, true],
  ['ready', true, false],
  [' READY\n', true, false],
  ['NODE_ALIVE', true, true],
  ['node_alive', true, false],
  ['NotReady', false, true],
  ['notready', true, false],
  ['NOTREADY ', true, false],
  ['NotReady\n', true, false],
  ['NODE_DISCONNECTED', false, true],
  ['node_disconnected', true, false],
  [undefined, true, true],
  ['', true, false],
  ['Not Ready', true, false],
  ['offline', true, false],
  ['NODE_STATUS_READY', true, false],
];

for (const [value, ready, valid] of NODE_ROWS) {
  test(`node status ${JSON.stringify(value) ?? 'absent'} → ready=${ready} valid=${valid}`, (t) => {
    t.deepEqual({ ...parseNodeStatus(value) }, { ready, valid });
  });
}

test('effectiveStatus: a NotReady node makes every container unknown', (t) => {
  for (const s of ['created', 'running', 'paused', 'exited', 'dead', 'unknown'] as const) {
    t.is(effectiveStatus(s, true), s);
    t.is(effectiveStatus(s, false), 'unknown');
  }
});

test('a model whose containers sit on a NotReady node is Dead, and its package Error', (t) => {
  const node = parseNodeStatus('NotReady');
  const raw: ContainerStatus[] = ['running', 'running', 'exited'];
  const eff = raw.map((s) => effectiveStatus(s, node.ready));
  t.is(nextModelState('Running', raw), 'Running');
  t.is(nextModelState('Running', eff), 'Dead');
  t.is(nextPackageState('Running', [nextModelState('Running', eff)]), 'Error');
  // Only one of two containers on the NotReady node still makes the model Dead.
  const mixed = [effectiveStatus('running', true), effectiveStatus('running', node.ready)];
  t.is(nextModelState('Running', mixed), 'Dead');
  // The node comes back: level-based recomputation returns to Running.
  t.is(nextModelState('Dead', raw.map((s) => effectiveStatus(s, parseNodeStatus('Ready').ready))), 'Running');
});
