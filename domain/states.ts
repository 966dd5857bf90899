// State names of contract section 1/2, and the lenient reading of stored or requested values:
// case-insensitive, and Pullpiri's enum spellings (MODEL_STATE_RUNNING, PACKAGE_STATE_ERROR, ...).

export const MODEL_STATES = ['Created', 'Running', 'Paused', 'Exited', 'Dead'] as const;
export type ModelState = (typeof MODEL_STATES)[number];

export const PACKAGE_STATES = ['Idle', 'Running', 'Paused', 'Exited', 'Degraded', 'Error'] as const;
export type PackageState = (typeof PACKAGE_STATES)[number];

export const SCENARIO_STATES = ['Idle', 'Waiting', 'Satisfied', 'Allowed', 'Denied', 'Completed'] as const;
export type ScenarioState = (typeof SCENARIO_STATES)[number];

export const CONTAINER_STATUSES = ['created', 'running', 'paused', 'exited', 'dead', 'unknown'] as const;
export type ContainerStatus = (typeof CONTAINER_STATUSES)[number];

export type ResourceKind = 'model' | 'package' | 'scenario';

export type StateOf<K extends ResourceKind> = K extends 'model'
  ? ModelState
  : K extends 'package'
    ? PackageState
    : ScenarioState;

const NAMES: Record<ResourceKind, readonly string[]> = {
  model: MODEL_STATES,
  package: PACKAGE_STATES,
  scenario: SCENARIO_STATES,
};

const ENUM_PREFIX: Record<ResourceKind, string> = {
  model: 'model_state_',
  package: 'package_state_',
  scenario: 'scenario_state_',
};

function buildLookup(kind: ResourceKind): Map<string, string> {
  const m = new Map<string, string>();
  for (const name of NAMES[kind]) {
    m.set(name.toLowerCase(), name);
    m.set(ENUM_PREFIX[kind] + name.toLowerCase(), name);
  }
  return m;
}

const LOOKUP: Record<ResourceKind, Map<string, string>> = {
  model: buildLookup('model'),
  package: buildLookup('package'),
  scenario: buildLookup('scenario'),
};

/** The canonical name of a stored or requested state, or undefined when it is not one. */
export function parseState<K extends ResourceKind>(kind: K, raw: string | undefined | null): StateOf<K> | undefined {
  if (raw === undefined || raw === null) return undefined;
  return LOOKUP[kind].get(raw.trim().toLowerCase()) as StateOf<K> | undefined;
}

export function isState<K extends ResourceKind>(kind: K, raw: string): raw is StateOf<K> {
  return NAMES[kind].includes(raw);
}
