// Contract section 2: the model and package tables row by row, rule order, every drawn edge of
// the design's state diagrams, idempotence and a spec-literal oracle over all small child
// multisets, and the scenario transition table.
import test from 'ava';
import {
  MODEL_DIAGRAM_EDGES,
  PACKAGE_DIAGRAM_EDGES,
  SCENARIO_TRANSITIONS,
  countValues,
  isDiagramEdge,
  nextModelState,
  nextPackageState,
  scenarioTransitionAllowed,
  summarizeCounts,
} from '../../domain/rules.js';
import {
  CONTAINER_STATUSES,
  MODEL_STATES,
  PACKAGE_STATES,
  SCENARIO_STATES,
  type ContainerStatus,
  type ModelState,
  type PackageState,
  type ScenarioState,
} from '../../domain/states.js';

const show = (v: string | undefined): string => v ?? 'absent';

// ---------------------------------------------------------------------------------------------
// Model table, every row (and each branch of the rows with a prev condition).
const MODEL_ROWS: [string, ModelState | undefined, ContainerStatus[], ModelState][] = [
  ['1 dead', 'Running', ['dead'], 'Dead'],
  ['1 unknown', 'Running', ['unknown'], 'Dead'],
  ['1 dead among running', 'Running', ['running', 'dead', 'running'], 'Dead'],
  ['1 unknown among exited', 'Exited', ['exited', 'unknown'], 'Dead'],
  ['1 dead and unknown', undefined, ['dead', 'unknown'], 'Dead'],
  ['1 unknown beats all-created on a new model', undefined, ['created', 'unknown'], 'Dead'],
  ['1 dead beats all-paused', 'Paused', ['paused', 'dead'], 'Dead'],
  ['2 none, prev absent', undefined, [], 'Created'],
  ['2 none, prev Created', 'Created', [], 'Created'],
  ['2 none, prev Running', 'Running', [], 'Exited'],
  ['2 none, prev Paused', 'Paused', [], 'Exited'],
  ['2 none, prev Exited', 'Exited', [], 'Exited'],
  ['2 none, prev Dead', 'Dead', [], 'Exited'],
  ['3 all created, prev absent', undefined, ['created', 'created'], 'Created'],
  ['3 all created, prev Created', 'Created', ['created'], 'Created'],
  ['3 all created, prev Running', 'Running', ['created', 'created'], 'Running'],
  ['3 all created, prev Exited', 'Exited', ['created'], 'Running'],
  ['3 all created, prev Dead', 'Dead', ['created'], 'Running'],
  ['4 all paused', 'Running', ['paused', 'paused'], 'Paused'],
  ['4 all paused, new model', undefined, ['paused'], 'Paused'],
  ['5 all exited', 'Running', ['exited', 'exited', 'exited'], 'Exited'],
  ['5 all exited, new model', undefined, ['exited'], 'Exited'],
  ['6 all running', 'Created', ['running'], 'Running'],
  ['6 mixed paused/exited', 'Paused', ['paused', 'exited'], 'Running'],
  ['6 mixed created/running', 'Created', ['created', 'running'], 'Running'],
  ['6 mixed created/exited on a new model', undefined, ['created', 'exited'], 'Running'],
];

for (const [title, prev, containers, want] of MODEL_ROWS) {
  test(`model rule ${title}: ${show(prev)} + [${containers.join(',')}] → ${want}`, (t) => {
    t.is(nextModelState(prev, containers), want);
  });
}

// Package table, every row.
const PACKAGE_ROWS: [string, PackageState | undefined, ModelState[], PackageState][] = [
  ['1 no models, prev absent', undefined, [], 'Idle'],
  ['1 no models, prev Running', 'Running', [], 'Idle'],
  ['1 no models, prev Error', 'Error', [], 'Idle'],
  ['1 all Created, prev absent', undefined, ['Created', 'Created'], 'Idle'],
  ['1 all Created, prev Idle', 'Idle', ['Created'], 'Idle'],
  ['1 all Created, prev Running → falls to 6', 'Running', ['Created', 'Created'], 'Running'],
  ['1 all Created, prev Exited → falls to 6', 'Exited', ['Created'], 'Running'],
  ['2 all Dead', 'Running', ['Dead', 'Dead'], 'Error'],
  ['2 all Dead, new package', undefined, ['Dead'], 'Error'],
  ['3 one Dead', 'Running', ['Dead', 'Running'], 'Degraded'],
  ['3 dead+exited+exited', 'Exited', ['Dead', 'Exited', 'Exited'], 'Degraded'],
  ['3 dead+created on a new package', undefined, ['Created', 'Dead'], 'Degraded'],
  ['3 dead+paused', 'Paused', ['Paused', 'Dead'], 'Degraded'],
  ['4 all Paused', 'Running', ['Paused', 'Paused'], 'Paused'],
  ['5 all Exited', 'Running', ['Exited', 'Exited'], 'Exited'],
  ['6 all Running', 'Idle', ['Running'], 'Running'],
  ['6 mixed Paused/Exited', 'Paused', ['Paused', 'Exited'], 'Running'],
  ['6 Created+Running, prev Idle', 'Idle', ['Created', 'Running'], 'Running'],
  ['6 Created+Exited', undefined, ['Created', 'Exited'], 'Running'],
];

for (const [title, prev, models, want] of PACKAGE_ROWS) {
  test(`package rule ${title}: ${show(prev)} + [${models.join(',')}] → ${want}`, (t) => {
    t.is(nextPackageState(prev, models), want);
  });
}

// ---------------------------------------------------------------------------------------------
// Every edge the design's diagrams draw, produced by some (prev, children).
const MODEL_EDGE_INPUTS: [ModelState, ModelState, ContainerStatus[]][] = [
  ['Created', 'Running', ['running']],
  ['Running', 'Paused', ['paused']],
  ['Paused', 'Running', ['running', 'paused']],
  ['Running', 'Exited', ['exited']],
  ['Exited', 'Running', ['running']],
  ['Running', 'Dead', ['running', 'dead']],
  ['Dead', 'Running', ['running']],
  ['Paused', 'Exited', ['exited']],
  ['Paused', 'Dead', ['paused', 'unknown']],
  ['Dead', 'Exited', ['exited']],
  ['Exited', 'Dead', ['unknown']],
];

const PACKAGE_EDGE_INPUTS: [PackageState, PackageState, ModelState[]][] = [
  ['Idle', 'Running', ['Running', 'Created']],
  ['Running', 'Paused', ['Paused']],
  ['Paused', 'Running', ['Paused', 'Running']],
  ['Running', 'Exited', ['Exited', 'Exited']],
  ['Exited', 'Running', ['Running']],
  ['Running', 'Degraded', ['Dead', 'Running']],
  ['Degraded', 'Running', ['Running', 'Running']],
  ['Running', 'Error', ['Dead']],
  ['Error', 'Running', ['Running']],
  ['Degraded', 'Exited', ['Exited']],
  ['Exited', 'Degraded', ['Exited', 'Dead']],
  ['Degraded', 'Error', ['Dead', 'Dead']],
  ['Error', 'Degraded', ['Dead', 'Paused']],
  ['Error', 'Exited', ['Exited']],
];

for (const [from, to, containers] of MODEL_EDGE_INPUTS) {
  test(`model diagram edge ${from}→${to} from [${containers.join(',')}]`, (t) => {
    t.true(isDiagramEdge('model', from, to));
    t.is(nextModelState(from, containers), to);
  });
}

for (const [from, to, models] of PACKAGE_EDGE_INPUTS) {
  test(`package diagram edge ${from}→${to} from [${models.join(',')}]`, (t) => {
    t.true(isDiagramEdge('package', from, to));
    t.is(nextPackageState(from, models), to);
  });
}

test('the edge-input tables cover exactly the drawn edges', (t) => {
  const key = (e: readonly [string, string, ...unknown[]]): string => `${e[0]}>${e[1]}`;
  t.deepEqual(MODEL_EDGE_INPUTS.map(key).sort(), MODEL_DIAGRAM_EDGES.map(key).sort());
  t.deepEqual(PACKAGE_EDGE_INPUTS.map(key).sort(), PACKAGE_DIAGRAM_EDGES.map(key).sort());
  t.is(new Set(MODEL_DIAGRAM_EDGES.map(key)).size, 11);
  t.is(new Set(PACKAGE_DIAGRAM_EDGES.map(key)).size, 14);
});

test('isDiagramEdge: exactly the listed edges, initial states from absent, no self-loops', (t) => {
  const modelEdges = new Set(MODEL_DIAGRAM_EDGES.map(([a, b]) => `${a}>${b}`));
  for (const from of MODEL_STATES) {
    for (const to of MODEL_STATES) {
      t.is(isDiagramEdge('model', from, to), modelEdges.has(`${from}>${to}`), `model ${from}→${to}`);
    }
  }
  const packageEdges = new Set(PACKAGE_DIAGRAM_EDGES.map(([a, b]) => `${a}>${b}`));
  for (const from of PACKAGE_STATES) {
    for (const to of PACKAGE_STATES) {
      t.is(isDiagramEdge('package', from, to), packageEdges.has(`${from}>${to}`), `package ${from}→${to}`);
    }
  }
  t.true(isDiagramEdge('model', undefined, 'Created'));
  t.false(isDiagramEdge('model', undefined, 'Running'));
  t.true(isDiagramEdge('package', undefined, 'Idle'));
  t.false(isDiagramEdge('package', undefined, 'Error'));
});

test('level-based jumps the diagrams do not draw are applied and flagged', (t) => {
  // A container that ran and stopped before it was first seen.
  t.is(nextModelState('Created', ['exited']), 'Exited');
  t.false(isDiagramEdge('model', 'Created', 'Exited'));
  t.is(nextModelState(undefined, ['running']), 'Running');
  t.false(isDiagramEdge('model', undefined, 'Running'));
  t.is(nextPackageState('Idle', ['Dead']), 'Error');
  t.false(isDiagramEdge('package', 'Idle', 'Error'));
  t.is(nextPackageState('Paused', ['Exited']), 'Exited');
  t.false(isDiagramEdge('package', 'Paused', 'Exited'));
});

// ---------------------------------------------------------------------------------------------
// Exhaustive checks over all multisets of up to MAX children.
const MAX = 5;

function* multisets<T>(alphabet: readonly T[], max: number): Generator<T[]> {
  function* rec(start: number, acc: T[]): Generator<T[]> {
    yield acc.slice();
    if (acc.length === max) return;
    for (let i = start; i < alphabet.length; i++) {
      acc.push(alphabet[i] as T);
      yield* rec(i, acc);
      acc.pop();
    }
  }
  yield* rec(0, []);
}

// The contract's wording, literally, as an oracle.
function modelOracle(prev: ModelState | undefined, c: readonly ContainerStatus[]): ModelState {
  if (c.some((s) => s === 'dead' || s === 'unknown')) return 'Dead';
  const fresh = prev === undefined || prev === 'Created';
  if (c.length === 0) return fresh ? 'Created' : 'Exited';
  if (c.every((s) => s === 'created')) return fresh ? 'Created' : 'Running';
  if (c.every((s) => s === 'paused')) return 'Paused';
  if (c.every((s) => s === 'exited')) return 'Exited';
  return 'Running';
}

function packageOracle(prev: PackageState | undefined, m: readonly ModelState[]): PackageState {
  if (m.length === 0) return 'Idle';
  if (m.every((s) => s === 'Created') && (prev === undefined || prev === 'Idle')) return 'Idle';
  if (m.every((s) => s === 'Dead')) return 'Error';
  if (m.some((s) => s === 'Dead')) return 'Degraded';
  if (m.every((s) => s === 'Paused')) return 'Paused';
  if (m.every((s) => s === 'Exited')) return 'Exited';
  return 'Running';
}

const MODEL_PREVS: (ModelState | undefined)[] = [undefined, ...MODEL_STATES];
const PACKAGE_PREVS: (PackageState | undefined)[] = [undefined, ...PACKAGE_STATES];

test('model rule: idempotent, order-independent and equal to the literal oracle on all small multisets', (t) => {
  let cases = 0;
  for (const c of multisets(CONTAINER_STATUSES, MAX)) {
    const reversed = c.slice().reverse();
    for (const prev of MODEL_PREVS) {
      const once = nextModelState(prev, c);
      const label = `${show(prev)} + [${c.join(',')}]`;
      t.is(nextModelState(once, c), once, `idempotent: ${label}`);
      t.is(nextModelState(prev, reversed), once, `order: ${label}`);
      t.is(once, modelOracle(prev, c), `oracle: ${label}`);
      cases++;
    }
  }
  t.is(cases, 462 * MODEL_PREVS.length); // C(6+5, 5) multisets of size ≤ 5 over 6 statuses
});

test('package rule: idempotent, order-independent and equal to the literal oracle on all small multisets', (t) => {
  let cases = 0;
  for (const m of multisets(MODEL_STATES, MAX)) {
    const reversed = m.slice().reverse();
    for (const prev of PACKAGE_PREVS) {
      const once = nextPackageState(prev, m);
      const label = `${show(prev)} + [${m.join(',')}]`;
      t.is(nextPackageState(once, m), once, `idempotent: ${label}`);
      t.is(nextPackageState(prev, reversed), once, `order: ${label}`);
      t.is(once, packageOracle(prev, m), `oracle: ${label}`);
      cases++;
    }
  }
  t.is(cases, 252 * PACKAGE_PREVS.length); // C(5+5, 5) multisets of size ≤ 5 over 5 states
});

test('every model state the rules can produce is reachable, and only those', (t) => {
  const seen = new Set<string>();
  for (const c of multisets(CONTAINER_STATUSES, 2)) for (const p of MODEL_PREVS) seen.add(nextModelState(p, c));
  t.deepEqual([...seen].sort(), [...MODEL_STATES].sort());
  const seenP = new Set<string>();
  for (const m of multisets(MODEL_STATES, 2)) for (const p of PACKAGE_PREVS) seenP.add(nextPackageState(p, m));
  t.deepEqual([...seenP].sort(), [...PACKAGE_STATES].sort());
});

// ---------------------------------------------------------------------------------------------
// Scenario transitions.
const ALLOWED: [ScenarioState | undefined, ScenarioState][] = [
  [undefined, 'Idle'],
  ['Idle', 'Waiting'],
  ['Waiting', 'Satisfied'],
  ['Satisfied', 'Allowed'],
  ['Satisfied', 'Denied'],
  ['Allowed', 'Completed'],
];

for (const [from, to] of ALLOWED) {
  test(`scenario transition ${show(from)} → ${to} is allowed`, (t) => {
    t.true(scenarioTransitionAllowed(from, to));
  });
}

const REFUSED: [ScenarioState | undefined, ScenarioState][] = [
  [undefined, 'Waiting'],
  [undefined, 'Completed'],
  ['Idle', 'Idle'],
  ['Waiting', 'Waiting'],
  ['Satisfied', 'Satisfied'],
  ['Denied', 'Denied'],
  ['Completed', 'Completed'],
  ['Idle', 'Satisfied'],
  ['Waiting', 'Idle'],
  ['Satisfied', 'Waiting'],
  ['Allowed', 'Denied'],
  ['Denied', 'Allowed'],
  ['Denied', 'Idle'],
  ['Completed', 'Idle'],
  ['Completed', 'Waiting'],
  ['Satisfied', 'Completed'],
];

for (const [from, to] of REFUSED) {
  test(`scenario transition ${show(from)} → ${to} is refused`, (t) => {
    t.false(scenarioTransitionAllowed(from, to));
  });
}

test('scenario transitions: exactly SCENARIO_TRANSITIONS over all pairs; Denied and Completed final', (t) => {
  t.deepEqual(
    SCENARIO_TRANSITIONS.map(([a, b]) => `${show(a)}>${b}`),
    ALLOWED.map(([a, b]) => `${show(a)}>${b}`),
  );
  const allowed = new Set(ALLOWED.map(([a, b]) => `${show(a)}>${b}`));
  for (const from of [undefined, ...SCENARIO_STATES]) {
    for (const to of SCENARIO_STATES) {
      t.is(scenarioTransitionAllowed(from, to), allowed.has(`${show(from)}>${to}`), `${show(from)}→${to}`);
      t.is(isDiagramEdge('scenario', from, to), scenarioTransitionAllowed(from, to));
      if (from === to || from === 'Denied' || from === 'Completed') t.false(scenarioTransitionAllowed(from, to));
    }
  }
});

// summarizeCounts without a Map or a sort callback: the same text as counting into a Map and
// sorting its entries with localeCompare, on generated inputs.
test('summarizeCounts gives the counted values sorted by localeCompare, as a Map and a sort would', (t) => {
  const reference = (values: readonly string[]): string =>
    values.length === 0
      ? 'none'
      : [...countValues(values)]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([v, n]) => `${n} ${v}`)
          .join(', ');
  const pool = ['running', 'dead', 'exited', 'paused', 'created', 'unknown', 'Running', 'Dead', 'Created', 'Paused', 'Exited', 'Idle', 'Error', 'Degraded', 'a', 'A', 'b', 'é', 'e', 'z10', 'z9', ''];
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  t.is(summarizeCounts([]), 'none');
  t.is(summarizeCounts(['running', 'dead', 'running']), '1 dead, 2 running');
  // Every child in one state (the path without arrays), and one child apart at either end.
  for (const values of [['running'], ['running', 'running', 'running'], ['running', 'running', 'dead'], ['dead', 'running', 'running'], ['', '']]) {
    t.is(summarizeCounts(values), reference(values), JSON.stringify(values));
  }
  for (let i = 0; i < 2000; i++) {
    const values = Array.from({ length: rand(12) }, () => pool[rand(pool.length)]!);
    t.is(summarizeCounts(values), reference(values), JSON.stringify(values));
  }
});
