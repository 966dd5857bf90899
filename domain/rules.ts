// The state rules of contract section 2. Level-based: the new state depends only on the stored
// state (`prev`, undefined when absent) and the children as they are now, so applying a rule
// twice changes nothing. These run per event, thousands of times a second: one pass over the
// children, counting, with no intermediate arrays.
import type { ContainerStatus, ModelState, PackageState, ResourceKind, ScenarioState, StateOf } from './states.js';

/**
 * Model from its containers, first matching rule wins:
 * 1. any container dead or unknown → Dead
 * 2. no containers: prev absent or Created → Created; otherwise → Exited
 * 3. every container created: prev absent or Created → Created; otherwise → Running
 * 4. every container paused → Paused
 * 5. every container exited → Exited
 * 6. otherwise → Running
 */
export function nextModelState(prev: ModelState | undefined, containers: readonly ContainerStatus[]): ModelState {
  const n = containers.length;
  let created = 0;
  let paused = 0;
  let exited = 0;
  for (let i = 0; i < n; i++) {
    switch (containers[i]) {
      case 'dead':
      case 'unknown':
        return 'Dead'; // rule 1 precedes every other rule
      case 'created':
        created++;
        break;
      case 'paused':
        paused++;
        break;
      case 'exited':
        exited++;
        break;
      default:
        break;
    }
  }
  const fresh = prev === undefined || prev === 'Created';
  if (n === 0) return fresh ? 'Created' : 'Exited';
  if (created === n) return fresh ? 'Created' : 'Running';
  if (paused === n) return 'Paused';
  if (exited === n) return 'Exited';
  return 'Running';
}

/**
 * Package from its models (a model without a state yet is passed as Created), first matching
 * rule wins:
 * 1. no models → Idle; every model Created while prev is absent or Idle → Idle
 * 2. every model Dead → Error
 * 3. at least one model Dead → Degraded
 * 4. every model Paused → Paused
 * 5. every model Exited → Exited
 * 6. otherwise → Running
 */
export function nextPackageState(prev: PackageState | undefined, models: readonly ModelState[]): PackageState {
  const n = models.length;
  if (n === 0) return 'Idle';
  let created = 0;
  let dead = 0;
  let paused = 0;
  let exited = 0;
  for (let i = 0; i < n; i++) {
    switch (models[i]) {
      case 'Created':
        created++;
        break;
      case 'Dead':
        dead++;
        break;
      case 'Paused':
        paused++;
        break;
      case 'Exited':
        exited++;
        break;
      default:
        break;
    }
  }
  if (created === n && (prev === undefined || prev === 'Idle')) return 'Idle';
  if (dead === n) return 'Error';
  if (dead > 0) return 'Degraded';
  if (paused === n) return 'Paused';
  if (exited === n) return 'Exited';
  return 'Running';
}

/** Scenario transitions (contract section 2), changed only on request. `undefined` is "absent". */
export const SCENARIO_TRANSITIONS: readonly (readonly [ScenarioState | undefined, ScenarioState])[] = [
  [undefined, 'Idle'],
  ['Idle', 'Waiting'],
  ['Waiting', 'Satisfied'],
  ['Satisfied', 'Allowed'],
  ['Satisfied', 'Denied'],
  ['Allowed', 'Completed'],
];

/** States a scenario never leaves. */
export const SCENARIO_FINAL_STATES: readonly ScenarioState[] = ['Denied', 'Completed'];

/**
 * The transitions the design's state diagrams draw (design section 6.2, listed in contract
 * section 2), not counting the initial `[*] → Created` / `[*] → Idle` (see `MODEL_INITIAL_STATE`).
 */
export const MODEL_DIAGRAM_EDGES: readonly (readonly [ModelState, ModelState])[] = [
  ['Created', 'Running'],
  ['Running', 'Paused'],
  ['Paused', 'Running'],
  ['Running', 'Exited'],
  ['Exited', 'Running'],
  ['Running', 'Dead'],
  ['Dead', 'Running'],
  ['Paused', 'Exited'],
  ['Paused', 'Dead'],
  ['Dead', 'Exited'],
  ['Exited', 'Dead'],
];

export const PACKAGE_DIAGRAM_EDGES: readonly (readonly [PackageState, PackageState])[] = [
  ['Idle', 'Running'],
  ['Running', 'Paused'],
  ['Paused', 'Running'],
  ['Running', 'Exited'],
  ['Exited', 'Running'],
  ['Running', 'Degraded'],
  ['Degraded', 'Running'],
  ['Running', 'Error'],
  ['Error', 'Running'],
  ['Degraded', 'Exited'],
  ['Exited', 'Degraded'],
  ['Degraded', 'Error'],
  ['Error', 'Degraded'],
  ['Error', 'Exited'],
];

/** The state the diagrams draw a new resource entering (`[*] → …`). */
export const MODEL_INITIAL_STATE: ModelState = 'Created';
export const PACKAGE_INITIAL_STATE: PackageState = 'Idle';
export const SCENARIO_INITIAL_STATE: ScenarioState = 'Idle';

type EdgeIndex = ReadonlyMap<string, ReadonlySet<string>>;

function indexEdges(edges: readonly (readonly [string | undefined, string])[]): EdgeIndex {
  const m = new Map<string, Set<string>>();
  for (const [from, to] of edges) {
    if (from === undefined) continue;
    let s = m.get(from);
    if (s === undefined) m.set(from, (s = new Set()));
    s.add(to);
  }
  return m;
}

const EDGES: Record<ResourceKind, EdgeIndex> = {
  model: indexEdges(MODEL_DIAGRAM_EDGES),
  package: indexEdges(PACKAGE_DIAGRAM_EDGES),
  scenario: indexEdges(SCENARIO_TRANSITIONS),
};

const INITIAL: Record<ResourceKind, string> = {
  model: MODEL_INITIAL_STATE,
  package: PACKAGE_INITIAL_STATE,
  scenario: SCENARIO_INITIAL_STATE,
};

/**
 * Whether `from → to` is a transition the design draws: for models and packages the state
 * diagrams, for scenarios the transition table. `from` undefined (a new resource) is drawn only
 * into the initial state. `from === to` is no transition: false.
 */
export function isDiagramEdge<K extends ResourceKind>(kind: K, from: StateOf<K> | undefined, to: StateOf<K>): boolean {
  if (from === undefined) return to === INITIAL[kind];
  return EDGES[kind].get(from)?.has(to) ?? false;
}

/**
 * Whether a requested scenario transition is allowed (contract section 2/3). A target equal to
 * the current state is no transition (false); Denied and Completed are final.
 */
export function scenarioTransitionAllowed(from: ScenarioState | undefined, to: ScenarioState): boolean {
  return isDiagramEdge('scenario', from, to);
}

// Counting values: the map, and the short, stable reason for a transition built from it (the
// children's states by count, "2 running, 1 dead").

export function countValues(values: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

export function summarizeCounts(values: readonly string[]): string {
  if (values.length === 0) return 'none';
  // The usual case, every child in one state: no arrays (a cold start writes 75,000 reasons).
  const first = values[0]!;
  let same = 1;
  while (same < values.length && values[same] === first) same++;
  if (same === values.length) return `${same} ${first}`;
  // Once per written state: a handful of distinct values, so two short arrays and a linear
  // search rather than a Map, its entries spread into an array, a sort callback and a join.
  const distinct: string[] = [];
  const counts: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const at = distinct.indexOf(v);
    if (at < 0) {
      distinct.push(v);
      counts.push(1);
    } else counts[at]!++;
  }
  // Insertion sort by localeCompare: stable, so the order Array.prototype.sort gives the values
  // in first-seen order with the same comparison.
  for (let i = 1; i < distinct.length; i++) {
    const v = distinct[i]!;
    const n = counts[i]!;
    let j = i - 1;
    for (; j >= 0 && distinct[j]!.localeCompare(v) > 0; j--) {
      distinct[j + 1] = distinct[j]!;
      counts[j + 1] = counts[j]!;
    }
    distinct[j + 1] = v;
    counts[j + 1] = n;
  }
  let out = `${counts[0]} ${distinct[0]}`;
  for (let i = 1; i < distinct.length; i++) out += `, ${counts[i]} ${distinct[i]}`;
  return out;
}
