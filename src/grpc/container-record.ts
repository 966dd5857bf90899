// The stored form of a container (contract section 1): ContainerInfo JSON without stats,
// fields in contract order, map keys sorted so equal containers serialize equally.
import type { ContainerInfo__Output } from '../generated/monitoringserver/ContainerInfo.js';

export interface StoredContainer {
  id: string;
  names: string[];
  image: string;
  state: Record<string, string>;
  config: Record<string, string>;
  annotation: Record<string, string>;
}

export function toStoredContainer(c: ContainerInfo__Output): StoredContainer {
  return {
    id: c.id,
    names: c.names,
    image: c.image,
    state: sortedMap(c.state),
    config: sortedMap(c.config),
    annotation: sortedMap(c.annotation),
  };
}

export function containerJson(c: StoredContainer): string {
  return storedContainerJson({
    id: c.id,
    names: c.names,
    image: c.image,
    state: sortedMap(c.state),
    config: sortedMap(c.config),
    annotation: sortedMap(c.annotation),
  });
}

/** The JSON of a container whose maps are sorted already (toStoredContainer's). */
export function storedContainerJson(c: StoredContainer): string {
  return JSON.stringify({ id: c.id, names: c.names, image: c.image, state: c.state, config: c.config, annotation: c.annotation });
}

/**
 * Whether a stored value already says what `json` (from containerJson) says: same fields, any
 * formatting, key order or unknown extra fields (other writers may store stats).
 */
export function sameContainer(stored: string, json: string): boolean {
  if (stored === json) return true;
  let v: unknown;
  try {
    v = JSON.parse(stored);
  } catch {
    return false;
  }
  const parsed = asStoredContainer(v);
  return parsed !== undefined && containerJson(parsed) === json;
}

function asStoredContainer(v: unknown): StoredContainer | undefined {
  if (!isObject(v)) return undefined;
  const { id, names, image, state, config, annotation } = v;
  if (typeof id !== 'string' || typeof image !== 'string') return undefined;
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) return undefined;
  if (!isStringMap(state) || !isStringMap(config) || !isStringMap(annotation)) return undefined;
  return { id, names: names as string[], image, state, config, annotation };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** `m` with its keys in order: `m` itself when they are (a copy is made only when needed). */
function sortedMap(m: Record<string, string>): Record<string, string> {
  const keys = Object.keys(m);
  let sorted = true;
  for (let i = 1; i < keys.length && sorted; i++) sorted = keys[i - 1]! < keys[i]!;
  // Already in order: the copy would enumerate exactly as `m` does (index-like keys first in both).
  if (sorted) return m;
  keys.sort();
  const out: Record<string, string> = {};
  for (const k of keys) setOwn(out, k, m[k]!);
  return out;
}

/**
 * `obj[key] = value` as an own property, also for the key "__proto__", which a plain assignment
 * would take as the object's prototype and drop (protobufjs keeps it as an entry too).
 */
export function setOwn(obj: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
  else obj[key] = value;
}
