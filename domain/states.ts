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

export function isResourceKind(s: string): s is ResourceKind {
  return s === 'model' || s === 'package' || s === 'scenario';
}

/**
 * The most UTF-8 bytes a model, package or scenario name may have (Kubernetes' 253): the gRPC
 * reads refuse longer names, so a definition naming one is invalid input rather than a state
 * that can be written but never read back by name.
 */
export const MAX_NAME_BYTES = 253;

/**
 * Whether `name` would not come back from etcd as itself: a lone UTF-16 surrogate (JSON and YAML
 * escapes can make one; etcd's keys hold U+FFFD in its place, so the state would be written under
 * another name, and found unlisted and deleted) or U+FFFD itself (what bytes that are not UTF-8
 * read as: the gRPC reads refuse it, and two different keys would read as one name).
 */
export function nameNotUtf8(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0xd800) continue;
    if (c === 0xfffd) return true;
    if (c >= 0xe000) continue;
    // A high surrogate followed by a low one is one character; anything else is a lone half.
    if (c <= 0xdbff && i + 1 < name.length && (name.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
    else return true;
  }
  return false;
}

/** The UTF-8 length of `name` when it is over MAX_NAME_BYTES; undefined when it fits. */
export function nameOverLimit(name: string): number | undefined {
  if (name.length * 3 <= MAX_NAME_BYTES) return undefined; // at most 3 bytes per UTF-16 unit
  let bytes = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < name.length && (name.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes > MAX_NAME_BYTES ? bytes : undefined;
}

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

/**
 * The canonical name of a stored or requested state, or undefined when it is not one. Matched
 * case-insensitively but not trimmed (contract section 1: anything else is absent and repaired;
 * a stored " Running" stayed in etcd for good while it was trimmed).
 */
export function parseState<K extends ResourceKind>(kind: K, raw: string | undefined | null): StateOf<K> | undefined {
  if (raw === undefined || raw === null) return undefined;
  return LOOKUP[kind].get(raw.toLowerCase()) as StateOf<K> | undefined;
}

export function isState<K extends ResourceKind>(kind: K, raw: string): raw is StateOf<K> {
  return NAMES[kind].includes(raw);
}
