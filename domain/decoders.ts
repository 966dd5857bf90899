// One decoder per watched prefix: a stored key and value to the small value the rules need,
// and, when the input is bad, the problem to report. Pure; the fleet reports problems in one
// place (log line and metric) and treats an undefined value as an absent key.
import { parseContainer, parseNodeStatus, type ParsedContainer } from './container.js';
import { parsePackageDefinition, parseScenarioDefinition, placementKey } from './definitions.js';
import type { KeyLayout } from './keys.js';
import type { ReconcileRequestRecord } from './records.js';
import { parseResyncRequest, type ResyncRequest } from './resync-request-format.js';
import { MAX_NAME_BYTES, nameOverLimit, parseState, type ResourceKind, type StateOf } from './states.js';
import { nameCharacterProblem } from './names.js';

export interface Problem {
  reason: string;
  detail: string;
}

export interface Decoded<T> {
  /** undefined: the key counts as absent. */
  value: T | undefined;
  problem?: Problem;
}

export type Decoder<T> = (keys: KeyLayout, key: string, raw: string) => Decoded<T>;

export interface ContainerEntry extends ParsedContainer {
  node: string;
}

export interface StoredState<S> {
  /** undefined when the stored value is not a state name: it counts as absent and is repaired. */
  readonly state: S | undefined;
  /** The stored value as it is when it is not a state name; the state's own name when it is. */
  readonly raw: string;
}

export interface StoredRequest {
  /** undefined when the stored record cannot be read. */
  record: ReconcileRequestRecord | undefined;
}

const absent = <T>(problem?: Problem): Decoded<T> => (problem ? { value: undefined, problem } : { value: undefined });

/**
 * Node names a container decoder keeps one copy of: a fleet has far fewer nodes than containers
 * (100,000 containers on 50 nodes: 100,000 copies of 50 names, 2.3 MB, before). Past this many
 * distinct names the table starts again, so a flood of made-up node names costs no more than this.
 */
export const NODE_NAMES_KEPT = 4096;

/** One copy of each name seen, for values that repeat a few names many times; at most `max` names. */
export class SharedNames {
  private readonly names = new Map<string, string>();

  constructor(private readonly max: number) {}

  /** The copy of `name` kept first (equal to `name`; a different string only in memory). */
  shared(name: string): string {
    const kept = this.names.get(name);
    if (kept !== undefined) return kept;
    if (this.names.size >= this.max) this.names.clear();
    this.names.set(name, name);
    return name;
  }

  get size(): number {
    return this.names.size;
  }
}

/**
 * The decoder of `/container/{node}/{id}`, with its own table of node names (one per informer,
 * not a module global): every container on a node shares one string for the node's name.
 */
export function containerDecoder(nodeNames = new SharedNames(NODE_NAMES_KEPT)): Decoder<ContainerEntry> {
  return (keys, key, raw) => {
    const where = keys.parseContainerKey(key);
    if (!where) return absent({ reason: 'bad_key', detail: 'expected /container/{node}/{containerId}' });
    // Keys reach us as UTF-8 decoded with U+FFFD for what is not: two containers whose ids differ
    // only in invalid bytes would be one key here (one put over the other, one delete for both).
    if (key.includes('\uFFFD')) return absent({ reason: 'bad_key', detail: 'the node name or container id is not valid UTF-8 (or holds U+FFFD)' });
    const parsed = parseContainer(raw, where.id);
    if (!parsed.ok) return absent({ reason: parsed.reason, detail: parsed.detail });
    // Built field by field, not by spread: a spread copy plus one more property gives every
    // entry its own hidden class in V8 (about 200 bytes each, 20 MB at 100k containers).
    const c = parsed.container;
    const value: ContainerEntry = { id: c.id, model: c.model, status: c.status, node: nodeNames.shared(where.node) };
    if (c.rawStatus !== undefined) value.rawStatus = c.rawStatus;
    return parsed.unknownStatus ? { value, problem: { reason: 'unknown_status', detail: `status ${c.rawStatus ?? ''}` } } : { value };
  };
}

/** A key under `/node/{node}/`: its status (Ready or NotReady), or its lease (any value: only its presence counts). */
export type NodeKey = { kind: 'status'; ready: boolean } | { kind: 'lease' };

const STATUS_READY: NodeKey = Object.freeze({ kind: 'status', ready: true });
const STATUS_NOT_READY: NodeKey = Object.freeze({ kind: 'status', ready: false });
const LEASE: NodeKey = Object.freeze({ kind: 'lease' });

/**
 * `/node/{node}/status`: Ready or NotReady, an invalid status counting as Ready (reported);
 * `/node/{node}/lease`: present, whatever its value. Other keys under /node/ are not ours.
 */
export const decodeNode: Decoder<NodeKey> = (keys, key, raw) => {
  if (keys.parseNodeLeaseKey(key) !== undefined) return { value: LEASE };
  if (keys.parseNodeStatusKey(key) === undefined) return absent();
  const status = parseNodeStatus(raw);
  const value = status.ready ? STATUS_READY : STATUS_NOT_READY;
  return status.valid ? { value } : { value, problem: { reason: 'bad_node_status', detail: `value ${JSON.stringify(raw.slice(0, 64))} counts as Ready` } };
};

/** A definition's key and value, for the two kinds the API server writes. */
function definition<T>(kind: 'package' | 'scenario', nameOf: (keys: KeyLayout, key: string) => string | undefined, parse: (raw: string) => { ok: true; value: T; problem?: Problem } | { ok: false; reason: string; detail: string }): Decoder<T> {
  const expected = kind === 'package' ? 'expected Package/{name}' : 'expected Scenario/{name}';
  return (keys, key, raw) => {
    const name = nameOf(keys, key);
    if (name === undefined) return absent({ reason: 'bad_key', detail: expected });
    // As for containers: bytes that are not UTF-8 read as U+FFFD, so two keys could be one name;
    // and the reads refuse such a name, as one with control or invisible characters.
    const characters = nameCharacterProblem(name);
    if (characters !== undefined) return absent({ reason: 'bad_key', detail: `the name ${characters}` });
    const long = nameOverLimit(name);
    if (long !== undefined) return absent({ reason: `${kind}_name_too_long`, detail: `the name is ${long} bytes, more than ${MAX_NAME_BYTES}` });
    const def = parse(raw);
    if (!def.ok) return absent({ reason: `${kind}_${def.reason}`, detail: def.detail });
    return def.problem === undefined ? { value: def.value } : { value: def.value, problem: def.problem };
  };
}

/** What the controller keeps of a package definition. */
export interface PackageDefinition {
  models: readonly string[];
  /** `placementKey(model, node)` of each `spec.models[].node`: where the package places its models (one string each, not a pair). */
  placements: readonly string[];
}

export const decodePackageDefinition: Decoder<PackageDefinition> = definition(
  'package',
  (keys, key) => keys.parsePackageDefKey(key),
  (raw) => {
    const d = parsePackageDefinition(raw);
    if (!d.ok) return d;
    const value = { models: d.models, placements: d.placements.map(([model, node]) => placementKey(model, node)) };
    // The rest of the package is read; the entries that name no model are said, not dropped silently
    // (black-box probing: `name: 2024`, a number to YAML, left a dead container's package Running).
    if (d.skipped === 0) return { ok: true, value };
    return { ok: true, value, problem: { reason: 'package_model_entry_skipped', detail: `spec.models has ${d.skipped} ${d.skipped === 1 ? 'entry' : 'entries'} naming no model, first ${d.firstSkipped ?? 'unknown'}; ${d.models.length} listed` } };
  },
);

export const decodeScenarioDefinition: Decoder<string> = definition(
  'scenario',
  (keys, key) => keys.parseScenarioDefKey(key),
  (raw) => {
    const d = parseScenarioDefinition(raw);
    return d.ok ? { ok: true, value: d.target } : d;
  },
);

/**
 * The decoder of `/{kind}/{name}/state`. Every key holding the same valid state shares one frozen
 * value (one per state name, in this decoder): at 75,000 model and package states that saves an
 * object and a copy of the stored text each, 4 MB.
 */
export function decodeState<K extends ResourceKind>(kind: K): Decoder<StoredState<StateOf<K>>> {
  const shared = new Map<StateOf<K>, Decoded<StoredState<StateOf<K>>>>();
  return (keys, key, raw) => {
    if (keys.parseStateKey(kind, key) === undefined) {
      // Not a state key; one only its name keeps from being one was written by someone else
      // (statemanager writes no such name), as raw bytes that are not UTF-8, say: said, not kept.
      if (keys.isStateKeyShape(kind, key)) return absent({ reason: 'bad_key', detail: 'the name is not valid UTF-8, or holds control or invisible characters: no client could read it by name' });
      return absent();
    }
    const state = parseState(kind, raw);
    if (state === undefined) {
      return { value: { state, raw }, problem: { reason: 'bad_state_value', detail: `${JSON.stringify(raw.slice(0, 64))} is not a ${kind} state; recomputing` } };
    }
    let decoded = shared.get(state);
    if (decoded === undefined) shared.set(state, (decoded = Object.freeze({ value: Object.freeze({ state, raw: state }) })));
    return decoded;
  };
}

/** An unreadable record is kept (as undefined): the package is in a trigger state regardless. */
export const decodeReconcileRequest: Decoder<StoredRequest> = (keys, key, raw) => {
  if (keys.parseReconcileRequestKey(key) === undefined) return absent();
  try {
    const record = JSON.parse(raw) as ReconcileRequestRecord;
    if (typeof record !== 'object' || record === null || typeof record.package !== 'string') throw new Error('not a request record');
    return { value: { record } };
  } catch (err) {
    return { value: { record: undefined }, problem: { reason: 'bad_reconcile_request', detail: (err as Error).message } };
  }
};

/** An unreadable request still resyncs everything: the operator asked for something. */
export const decodeResyncRequest: Decoder<ResyncRequest> = (_keys, _key, raw) => {
  const req = parseResyncRequest(raw);
  return req ? { value: req } : { value: { kind: 'all' }, problem: { reason: 'bad_resync_request', detail: 'expected {"kind":"all"} or {"kind":"model"|"package","name":...}' } };
};
