// Request validation for both services: every refusal names the offending field. grpc-js
// decodes strings leniently (invalid UTF-8 becomes U+FFFD), so U+FFFD in a name is read as
// "not valid UTF-8" and refused. A container list's free text (its image, map keys and values)
// is checked on its bytes by its decoder (container-list-decoder.ts): there a U+FFFD is text.
import type { ContainerList__Output } from '../generated/monitoringserver/ContainerList.js';
import type { StateChange__Output } from '../generated/statemanager/StateChange.js';
import { MAX_NAME_BYTES, parseState, type ResourceKind } from '../../domain/states.js';
import { BIDI, CONTROL, INVISIBLE, NOT_PRINTABLE_ASCII } from '../../domain/names.js';
import { modelOfContainer } from '../../domain/container.js';
import { storedContainerJson, toStoredContainer } from './container-record.js';
import { kindOfResourceType, UNMANAGED_RESOURCE_TYPES } from './resource-types.js';
import { quote } from './quote.js';
import { INVALID_UTF8, OVER_BOUND, type DecodedContainerList } from './container-list-decoder.js';

export const LIMITS = {
  nodeNameBytes: 253,
  containerIdBytes: 512,
  /** The stored JSON of one container. */
  containerBytes: 64 * 1024,
  resourceNameBytes: MAX_NAME_BYTES,
  transitionIdBytes: 256,
  sourceBytes: 256,
} as const;

export type Validation<T> = { ok: true; value: T } | { ok: false; message: string };

const REPLACEMENT = '\uFFFD';
// CONTROL (domain/names.ts) without tab, line feed and carriage return, which free text holds (a
// Podman label's description, its error text in state["Error"]).
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LINE_BREAKS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

export interface TextRules {
  maxBytes?: number;
  required?: boolean;
  noSlash?: boolean;
  noControl?: boolean;
  /** Refuse invisible and separator characters (names: they would read as another name). */
  noInvisible?: boolean;
  /** With noControl: tab, line feed and carriage return are kept (free text, not names). */
  lineBreaks?: boolean;
  /**
   * Free text whose bytes the decoder checked (INVALID_UTF8): a U+FFFD is the character itself, not
   * a sign of bytes that were not UTF-8. In names it is still refused: two keys whose bytes differ
   * only where they are not UTF-8 would be one name.
   */
  replacementIsText?: boolean;
}

// A string of printable ASCII only (NOT_PRINTABLE_ASCII finds nothing) is valid UTF-8 with no
// control, bidirectional or invisible character, and its length is its size in bytes: one scan
// instead of five, for the tens of thousands of strings a node's list carries.

/** What is wrong with a string field, as a phrase completing "<field> ...", or undefined. */
export function textProblem(s: string, r: TextRules): string | undefined {
  if (r.required && s.length === 0) return 'is empty';
  if (!NOT_PRINTABLE_ASCII.test(s)) {
    if (r.maxBytes !== undefined && s.length > r.maxBytes) return `is ${s.length} bytes long, more than ${r.maxBytes}`;
    if (r.noSlash && s.includes('/')) return "contains '/'";
    return undefined;
  }
  if (!r.replacementIsText && s.includes(REPLACEMENT)) return 'is not valid UTF-8';
  if (r.maxBytes !== undefined) {
    const n = Buffer.byteLength(s, 'utf8');
    if (n > r.maxBytes) return `is ${n} bytes long, more than ${r.maxBytes}`;
  }
  if (r.noSlash && s.includes('/')) return "contains '/'";
  if (r.noControl && (r.lineBreaks ? CONTROL_BUT_LINE_BREAKS : CONTROL).test(s)) return 'contains control characters';
  if (r.noControl && BIDI.test(s)) return 'contains bidirectional override characters';
  if (r.noInvisible) {
    const m = INVISIBLE.exec(s);
    if (m) return `contains an invisible or separator character (U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`;
  }
  return undefined;
}

/** The rules of a resource or node name, for every service that takes one. */
export const nameRules = (maxBytes: number): TextRules => ({ required: true, maxBytes, noSlash: true, noControl: true, noInvisible: true });

export interface ValidContainerList {
  nodeName: string;
  containers: { id: string; json: string }[];
  /** The models the containers belong to (contract section 1), each once. */
  models: string[];
}

/** Bounds of one container list, checked before anything reaches etcd. */
export interface ContainerListLimits {
  maxContainers: number;
  /** The stored JSON of every container together. */
  listBytes: number;
  namesPerContainer: number;
  /** Entries of each of `state`, `config` and `annotation`. */
  mapEntries: number;
  /** One string: a name, the image, a map key or value. */
  valueBytes: number;
}

export function validateContainerList(list: ContainerList__Output | DecodedContainerList, limits: ContainerListLimits): Validation<ValidContainerList> {
  const fail = (message: string): Validation<ValidContainerList> => ({ ok: false, message });
  const nodeProblem = textProblem(list.node_name, nameRules(LIMITS.nodeNameBytes));
  if (nodeProblem) return fail(`node_name ${nodeProblem}`);
  // What the decoder found: a bound passed (what it bounds was counted, not decoded), bytes that are not UTF-8.
  const decoded = list as DecodedContainerList;
  if (decoded[OVER_BOUND] !== undefined) return fail(decoded[OVER_BOUND]);
  if (decoded[INVALID_UTF8] !== undefined) return fail(`${decoded[INVALID_UTF8]} is not valid UTF-8`);
  if (list.containers.length > limits.maxContainers) {
    return fail(`containers has ${list.containers.length} entries, more than the maximum of ${limits.maxContainers}`);
  }
  const firstIndex = new Map<string, number>();
  const containers: ValidContainerList['containers'] = [];
  const models = new Set<string>();
  let total = 0;
  const idRules: TextRules = { required: true, maxBytes: LIMITS.containerIdBytes, noControl: true, noInvisible: true };
  // The model a container names becomes a key: no control character, line breaks included.
  const modelRules: TextRules = { noInvisible: true, noControl: true };
  for (let i = 0; i < list.containers.length; i++) {
    const c = list.containers[i]!;
    const at = `containers[${i}]`;
    const idProblem = textProblem(c.id, idRules);
    if (idProblem) return fail(`${at}.id ${idProblem}`);
    const first = firstIndex.get(c.id);
    if (first !== undefined) return fail(`${at}.id repeats containers[${first}].id`);
    firstIndex.set(c.id, i);
    const text = firstBadField(c, at, limits);
    if (text) return fail(text);
    const stored = toStoredContainer(c);
    const json = storedContainerJson(stored);
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > LIMITS.containerBytes) return fail(`${at} is ${bytes} bytes as JSON, more than ${LIMITS.containerBytes}`);
    total += bytes;
    if (total > limits.listBytes) {
      return fail(`containers are more than ${limits.listBytes} bytes as JSON together (at ${at}); send fewer or smaller containers`);
    }
    const model = modelOfContainer(stored);
    const modelProblem = model === undefined ? undefined : textProblem(model, modelRules);
    if (modelProblem) return fail(`${at} names model ${quote(model!)}, which ${modelProblem}`);
    if (model !== undefined) models.add(model);
    containers.push({ id: c.id, json });
  }
  return { ok: true, value: { nodeName: list.node_name, containers, models: [...models] } };
}

/**
 * The first stored field over its bound (names count, map sizes, string lengths) or with text
 * that is not valid UTF-8 or holds control or bidirectional override characters, as
 * "<path> <problem>". Stats are not stored: not checked.
 */
function firstBadField(c: ContainerList__Output['containers'][number], at: string, limits: ContainerListLimits): string | undefined {
  const rules: TextRules = { noControl: true, maxBytes: limits.valueBytes, replacementIsText: true };
  const nameRules: TextRules = { ...rules, noInvisible: true, replacementIsText: false };
  // A map's values are free text (a label's description, Podman's error text): they may break
  // lines. Found by a Pullpiri compatibility probe: nodeagent copies every label and the error
  // text as they are, so one multi-line label refused the node's whole list, and nodeagent,
  // which sends a list again only when a container changes, left the node's states frozen.
  // A value that names the container's model is still checked as a name (modelOfContainer below).
  const valueRules: TextRules = { ...rules, lineBreaks: true };
  if (c.names.length > limits.namesPerContainer) return `${at}.names has ${c.names.length} entries, more than ${limits.namesPerContainer}`;
  for (let j = 0; j < c.names.length; j++) {
    const problem = textProblem(c.names[j]!, nameRules);
    if (problem) return `${at}.names[${j}] ${problem}`;
  }
  const image = textProblem(c.image, rules);
  if (image) return `${at}.image ${image}`;
  for (const field of ['state', 'config', 'annotation'] as const) {
    const map = c[field];
    const keys = Object.keys(map);
    if (keys.length > limits.mapEntries) return `${at}.${field} has ${keys.length} entries, more than ${limits.mapEntries}`;
    for (const k of keys) {
      // The path is built only for a refusal: most lists have none.
      // The status fields the rules read are checked as before: not free text.
      const p = textProblem(k, rules) ?? textProblem(map[k]!, field === 'state' && (k === 'Status' || k === 'Running') ? rules : valueRules);
      if (p) return `${at}.${field}[${quote(k)}] ${p}`;
    }
  }
  return undefined;
}

export interface ValidStateChange {
  kind: ResourceKind;
  name: string;
  /** Canonical state the caller expects to be stored; undefined: whatever is stored. */
  current: string | undefined;
  /** Canonical target state. */
  target: string;
  transitionId: string | undefined;
  source: string | undefined;
}

/** Required fields, in the order of contract section 3; every failure is ERROR_CODE_INVALID_REQUEST. */
export function validateStateChange(req: StateChange__Output): Validation<ValidStateChange> {
  const fail = (message: string): Validation<ValidStateChange> => ({ ok: false, message });
  // With enums=String an unknown enum number stays a number.
  const type: unknown = req.resource_type;
  if (type === 'RESOURCE_TYPE_UNSPECIFIED') return fail('resource_type is unspecified');
  const kind = kindOfResourceType(type) ?? (typeof type === 'string' && UNMANAGED_RESOURCE_TYPES.has(type) ? 'unmanaged' : undefined);
  if (kind === undefined) return fail(`resource_type ${String(type)} is not a known ResourceType`);
  const nameProblem = textProblem(req.resource_name, nameRules(LIMITS.resourceNameBytes));
  if (nameProblem) return fail(`resource_name ${nameProblem}`);
  if (req.resource_name.trim() !== req.resource_name) return fail('resource_name has leading or trailing spaces');
  if (req.target_state.trim().length === 0) return fail('target_state is empty');
  if (kind === 'unmanaged') return fail(`resource_type ${String(type)} is not managed by statemanager`);
  const target = parseState(kind, req.target_state);
  if (target === undefined) return fail(`target_state ${quote(req.target_state)} is not a ${kind} state`);
  let current: string | undefined;
  if (req.current_state.trim().length > 0) {
    current = parseState(kind, req.current_state);
    if (current === undefined) return fail(`current_state ${quote(req.current_state)} is not a ${kind} state`);
  }
  const idProblem = textProblem(req.transition_id, { maxBytes: LIMITS.transitionIdBytes, noControl: true, noInvisible: true });
  if (idProblem) return fail(`transition_id ${idProblem}`);
  // The history shows `source` as who asked: it must not read as someone else.
  const sourceProblem = textProblem(req.source, { maxBytes: LIMITS.sourceBytes, noControl: true, noInvisible: true });
  if (sourceProblem) return fail(`source ${sourceProblem}`);
  return {
    ok: true,
    value: {
      kind,
      name: req.resource_name,
      current,
      target,
      transitionId: req.transition_id.length > 0 ? req.transition_id : undefined,
      source: req.source.length > 0 ? req.source : undefined,
    },
  };
}

export { quote };
