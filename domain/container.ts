// Reading the inputs of contract section 1 that describe containers and nodes: the node agent's
// ContainerInfo JSON under /container/{node}/{id}, and /node/{node}/status. Pure functions: no
// I/O, no logging. Whatever was wrong with an input is returned so the caller can log and count.
import type { ContainerStatus } from './states.js';
import { scanContainer, type ContainerFields, type ContainerFieldNames } from './container-scan.js';
import { isRecord } from './plain-yaml.js';

/** The node agent's container JSON, as written to `/container/{node}/{id}`. Every field may be missing. */
export interface ContainerInfo {
  id?: string;
  names?: string[];
  image?: string;
  state?: Record<string, string>;
  config?: Record<string, string>;
  annotation?: Record<string, string>;
}

/**
 * What the controller keeps of a container (it may hold 100,000 of them): its id, its model and
 * its own status (the node's readiness is applied later, by `effectiveStatus`).
 */
export interface ParsedContainer {
  id: string;
  model: string;
  status: ContainerStatus;
  /** The `state["Status"]` string, kept only when it was not recognised (so it can be logged). */
  rawStatus?: string;
}

export type ContainerParseFailure = 'malformed_json' | 'not_an_object' | 'no_model';

export type ContainerParseResult =
  | {
      ok: true;
      container: ParsedContainer;
      /**
       * `state["Status"]` was present but not one of the contract's spellings. The container is
       * still valid (its status is `unknown`, a rule input); the caller counts it as invalid input.
       */
      unknownStatus: boolean;
    }
  | { ok: false; reason: ContainerParseFailure; detail: string };

/**
 * Annotation keys naming the model, in precedence order; `config["model"]` comes after all of
 * them, and a container name `model-<name>` last.
 */
export const MODEL_ANNOTATIONS = ['io.pullpiri.annotations.model', 'pullpiri.model', 'model'] as const;
export const MODEL_CONFIG_KEY = 'model';
/** A container named `model-<name>` (after an optional leading `/`) belongs to model `<name>`. */
export const MODEL_NAME_PREFIX = 'model-';

const FIELD_NAMES: ContainerFieldNames = { annotations: MODEL_ANNOTATIONS, config: [MODEL_CONFIG_KEY], namePrefix: MODEL_NAME_PREFIX };

// Lower-cased `state["Status"]` → status (contract section 1).
const STATUS_MAP: ReadonlyMap<string, ContainerStatus> = new Map<string, ContainerStatus>([
  ['created', 'created'],
  ['initialized', 'created'],
  ['running', 'running'],
  ['restarting', 'running'],
  ['stopping', 'running'],
  ['paused', 'paused'],
  ['exited', 'exited'],
  ['stopped', 'exited'],
  ['removing', 'exited'],
  ['dead', 'dead'],
]);


/** `map[key]` when `map` is an object and the entry is an own, non-empty string; otherwise undefined. */
function entry(map: unknown, key: string): string | undefined {
  if (!isRecord(map) || !Object.hasOwn(map, key)) return undefined;
  const v = map[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/**
 * The model a container belongs to (contract section 1): the first non-empty string among
 * annotation["io.pullpiri.annotations.model"], annotation["pullpiri.model"], annotation["model"],
 * config["model"], and last, as Pullpiri's own StateManager does, the first entry of `names`
 * that reads `model-<name>` after an optional leading `/` (`/model-nav` → `nav`). Non-string
 * entries (and non-object maps, a non-array `names`) are ignored, and so is a bare `model-`
 * (it names no model). The name is taken as is (not trimmed): it must match the name in the
 * package definition exactly.
 */
export function modelOfContainer(info: ContainerInfo | Record<string, unknown>): string | undefined {
  const annotation: unknown = info.annotation;
  for (const key of MODEL_ANNOTATIONS) {
    const v = entry(annotation, key);
    if (v !== undefined) return v;
  }
  return entry(info.config, MODEL_CONFIG_KEY) ?? modelOfNames(info.names);
}

/** The first `names` entry of the form `[/]model-<name>`, as `<name>`; undefined when none. */
export function modelOfNames(names: unknown): string | undefined {
  if (!Array.isArray(names)) return undefined;
  for (const n of names as unknown[]) {
    if (typeof n !== 'string') continue;
    const name = n.startsWith('/') ? n.slice(1) : n;
    if (name.startsWith(MODEL_NAME_PREFIX) && name.length > MODEL_NAME_PREFIX.length) return name.slice(MODEL_NAME_PREFIX.length);
  }
  return undefined;
}

/**
 * The status of a container from its `state` map; `raw` is set only when a `Status` string was
 * present (non-empty) but is not one the contract lists.
 */
function classify(state: unknown): { status: ContainerStatus; raw: string | undefined } {
  return classifyFields(entry(state, 'Status'), entry(state, 'Running'));
}

/** classify, from `state["Status"]` and `state["Running"]` when each is a non-empty string. */
function classifyFields(raw: string | undefined, running: string | undefined): { status: ContainerStatus; raw: string | undefined } {
  if (raw !== undefined) {
    // Not trimmed: " running" is none of the contract's spellings (anything else → unknown).
    const s = STATUS_MAP.get(raw.toLowerCase());
    return s !== undefined ? { status: s, raw: undefined } : { status: 'unknown', raw };
  }
  // No Status (absent, not a string, or empty): the Running flag, exactly "true" (contract:
  // `state["Running"] == "true"`; only Status is read case-insensitively).
  return { status: running === 'true' ? 'running' : 'unknown', raw: undefined };
}

/**
 * Contract section 1, "Container status": `state["Status"]`, case-insensitive, not trimmed
 * (created/initialized → created; running/restarting/stopping → running; paused → paused;
 * exited/stopped/removing → exited; dead → dead; anything else, " running" too → unknown).
 * With no Status (absent, not a string or empty): `state["Running"]` exactly "true" →
 * running; else ("True", " true", "1", a boolean) unknown.
 */
export function containerStatus(info: ContainerInfo | Record<string, unknown>): ContainerStatus {
  return classify(info.state).status;
}

/**
 * Parse the value of `/container/{node}/{id}`. Only the id, model and status are kept. `id` is
 * the JSON's `id` when it is a non-empty string, else `fallbackId` (the id from the key).
 */
export function parseContainer(value: string, fallbackId = ''): ContainerParseResult {
  // The common case read without building the document; JSON.parse for anything else.
  const fields = scanContainer(value, FIELD_NAMES);
  return fields ? fromFields(fields, fallbackId) : parseWhole(value, fallbackId);
}

/** parseContainer through JSON.parse: every case, with the parser's own message for bad JSON. */
export function parseWhole(value: string, fallbackId = ''): ContainerParseResult {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (e) {
    return { ok: false, reason: 'malformed_json', detail: e instanceof Error ? e.message : String(e) };
  }
  if (!isRecord(json)) {
    const what = json === null ? 'null' : Array.isArray(json) ? 'an array' : `a ${typeof json}`;
    return { ok: false, reason: 'not_an_object', detail: `container value is ${what}, not a JSON object` };
  }
  const state = json.state;
  return result(typeof json.id === 'string' ? json.id : undefined, modelOfContainer(json), entry(state, 'Status'), entry(state, 'Running'), fallbackId);
}

/** parseContainer from the scanned fields: the same precedence as modelOfContainer and `entry`. */
function fromFields(f: ContainerFields, fallbackId: string): ContainerParseResult {
  const model = nonEmpty(f.annotations[0]) ?? nonEmpty(f.annotations[1]) ?? nonEmpty(f.annotations[2]) ?? nonEmpty(f.configModel) ?? f.nameModel;
  return result(f.id, model, nonEmpty(f.status), nonEmpty(f.running), fallbackId);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.length > 0 ? v : undefined;
}

function result(jsonId: string | undefined, model: string | undefined, statusField: string | undefined, runningField: string | undefined, fallbackId: string): ContainerParseResult {
  const id = jsonId !== undefined && jsonId.length > 0 ? jsonId : fallbackId;
  if (model === undefined) {
    return {
      ok: false,
      reason: 'no_model',
      detail: `container ${id === '' ? '(no id)' : id} has no model annotation (${MODEL_ANNOTATIONS.join(', ')}), config["model"] or name ${MODEL_NAME_PREFIX}<model>`,
    };
  }
  const { status, raw } = classifyFields(statusField, runningField);
  const container: ParsedContainer = raw === undefined ? { id, model, status } : { id, model, status, rawStatus: raw };
  return { ok: true, container, unknownStatus: raw !== undefined };
}

/** Contract section 1: every container on a NotReady node counts as `unknown`. */
export function effectiveStatus(status: ContainerStatus, nodeReady: boolean): ContainerStatus {
  return nodeReady ? status : 'unknown';
}

export interface NodeStatus {
  readonly ready: boolean;
  /** False when the value is none of the contract's spellings (it then counts as Ready). */
  readonly valid: boolean;
}

const READY: NodeStatus = Object.freeze({ ready: true, valid: true });
const NOT_READY: NodeStatus = Object.freeze({ ready: false, valid: true });
const INVALID: NodeStatus = Object.freeze({ ready: true, valid: false });

/**
 * The value of `/node/{node}/status`, exactly as the contract spells it: `Ready`/`NODE_ALIVE` →
 * ready; `NotReady`/`NODE_DISCONNECTED` → not ready; anything else (`notready`, ` NotReady`) →
 * ready, invalid ("any other node status value counts as Ready and as invalid input"). An absent
 * key (`undefined`) means Ready and is valid. The returned objects are shared and frozen.
 */
export function parseNodeStatus(value: string | undefined): NodeStatus {
  if (value === undefined) return READY;
  switch (value) {
    case 'Ready':
    case 'NODE_ALIVE':
      return READY;
    case 'NotReady':
    case 'NODE_DISCONNECTED':
      return NOT_READY;
    default:
      return INVALID;
  }
}
