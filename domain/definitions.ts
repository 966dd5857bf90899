// Reading the API server's definitions (contract section 1): `Package/{name}` lists its models in
// `spec.models[].name`; `Scenario/{name}` names its package in `spec.target`. YAML, of which JSON
// is a subset; JSON-looking values take a JSON.parse fast path. Pure: problems are returned.
import { isScalar, parseDocument, visit } from 'yaml';
import { parsePlainYaml, isRecord } from './plain-yaml.js';
import { MAX_NAME_BYTES, nameOverLimit } from './states.js';
import { nameCharacterProblem } from './names.js';

export type DefinitionFailure = 'malformed' | 'too_large' | 'not_an_object' | 'no_spec' | 'no_models' | 'no_target' | 'bad_model_name' | 'bad_target';

export interface DefinitionError {
  ok: false;
  reason: DefinitionFailure;
  detail: string;
}

export type PackageDefinitionResult =
  | {
      ok: true;
      /** Model names in order of first appearance, without duplicates. */
      models: string[];
      /** `spec.models` entries skipped because they had no non-empty string `name`. */
      skipped: number;
      /** What the first skipped entry was, for the log line. */
      firstSkipped?: string;
      /** Names listed more than once (each counted once here), for the caller to report. */
      duplicates: string[];
      /** `[model, node]` for every entry with a non-empty string `node` (`spec.models[].node`). */
      placements: [string, string][];
    }
  | DefinitionError;

export type ScenarioDefinitionResult = { ok: true; target: string } | DefinitionError;

/**
 * One string for "the package places `model` on `node`"; NUL cannot occur in a model or node name
 * read from YAML keys we accept as names. Joined, not concatenated: V8 keeps a concatenation of 13
 * characters or more as a pair of strings (56 bytes more per key, 2.8 MB at 50,000 placements).
 */
export const placementKey = (model: string, node: string): string => [node, model].join('\u0000');


type Parsed = { ok: true; value: unknown } | DefinitionError;

/** A definition lists models by name: far below this. Larger is an attack or a mistake. */
export const MAX_DEFINITION_LENGTH = 1024 * 1024;
/** The YAML parser recurses per flow level: 200,000 nested `[` cost it a second and 230 MB. */
export const MAX_FLOW_DEPTH = 64;

/**
 * Block nesting has no brackets: each level is a column more of indentation, or a compact `- `,
 * `? ` or `: ` on the line (`x: - - - …`). 400,000 levels of that in one 800 KB line held the
 * event loop 2.1 s and took RSS from 93 to 317 MB (found by black-box probing). A definition's
 * lines stay well within this many.
 */
export const MAX_INDENT_COLUMNS = 256;

/**
 * Whether a line's indentation plus its indicators (`-`, `?`, `:` standing alone before a space
 * or the line's end) run past `limit`; counting stops at a quote or `#` on the line (a bound,
 * not a parse). A line of spaces alone nests nothing, and a `:` inside `{}` or `[]` separates a
 * flow mapping's key from its value: neither counts (black-box probing: a one-line flow list of
 * 130 placed models, 3 KB, and a line of 300 spaces were refused as too large). `-` and `?` count
 * wherever they stand, so a `{` that is only text (`x{`) cannot hide a block nesting after it.
 */
function indentExceeds(value: string, limit: number): boolean {
  let count = 0;
  let leading = true;
  let quoted = false;
  let flow = 0;
  let prev = 0x0a;
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    if (ch === 0x0a) {
      count = 0;
      leading = true;
      quoted = false;
      prev = ch;
      continue;
    }
    if (!quoted) {
      if (ch === 0x22 || ch === 0x27 || ch === 0x23) quoted = true;
      else if (ch === 0x20) {
        if (leading) count++;
      } else {
        if (leading) {
          leading = false;
          if (count > limit) return true;
        }
        if (ch === 0x5b || ch === 0x7b) flow++;
        else if ((ch === 0x5d || ch === 0x7d) && flow > 0) flow--;
        else if (ch === 0x2d || ch === 0x3f || (ch === 0x3a && flow === 0)) {
          const next = i + 1 < value.length ? value.charCodeAt(i + 1) : 0x0a;
          const standsAlone = (ch === 0x3a || prev === 0x20 || prev === 0x0a) && (next === 0x20 || next === 0x0a);
          if (standsAlone && ++count > limit) return true;
        }
      }
    }
    prev = ch;
  }
  return false;
}

/** The deepest nesting of `[` / `{`, stopping early past `limit` (quotes are not special: a bound, not a parse). */
function flowDepthExceeds(value: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    if (ch === 0x5b || ch === 0x7b) {
      if (++depth > limit) return true;
    } else if ((ch === 0x5d || ch === 0x7d) && depth > 0) {
      depth--;
    }
  }
  return false;
}

/**
 * YAML (or JSON) text to plain data. A value starting with `{` is tried as JSON first; if that
 * fails it is read as YAML (a flow mapping such as `{spec: {target: x}}` is YAML, not JSON).
 * Several YAML documents in one value, duplicate keys or alias bombs make it malformed.
 * YAML warnings are ignored (nothing is logged or emitted).
 */
function parseText(value: string): Parsed {
  if (value.length > MAX_DEFINITION_LENGTH) {
    return { ok: false, reason: 'too_large', detail: `definition of ${value.length} characters, over the limit of ${MAX_DEFINITION_LENGTH}` };
  }
  if (flowDepthExceeds(value, MAX_FLOW_DEPTH)) {
    return { ok: false, reason: 'too_large', detail: `definition nested deeper than ${MAX_FLOW_DEPTH} levels` };
  }
  if (indentExceeds(value, MAX_INDENT_COLUMNS)) {
    return { ok: false, reason: 'too_large', detail: `definition indented (or nested by - ? :) past ${MAX_INDENT_COLUMNS} columns` };
  }
  if (value.trimStart().startsWith('{')) {
    try {
      return { ok: true, value: JSON.parse(value) };
    } catch {
      // not JSON: fall through to YAML
    }
  }
  const plain = parsePlainYaml(value);
  if (plain !== undefined) return { ok: true, value: plain };
  try {
    // 'error', not 'silent': 'silent' would also drop the "several documents" error. Nothing
    // below 'warn' is ever printed or emitted.
    // Duplicate keys are found below in one pass: the parser's own check compares every key of a
    // mapping with every other, and one definition of 40,000 keys (600 KB) held the event loop
    // for 10.5 s (found by black-box probing).
    const doc = parseDocument(value, { logLevel: 'error', uniqueKeys: false });
    const err = doc.errors[0];
    if (err !== undefined) return { ok: false, reason: 'malformed', detail: err.message };
    const duplicate = duplicateKey(doc);
    if (duplicate !== undefined) return { ok: false, reason: 'malformed', detail: `Map keys must be unique: ${JSON.stringify(duplicate).slice(0, 80)} appears twice` };
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (e) {
    return { ok: false, reason: 'malformed', detail: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * The first key that a mapping of `doc` has twice, by the parser's own rule (the same node, or two
 * scalars of the same value: `1` and `"1"` differ), or undefined. Linear: one Set per mapping.
 */
function duplicateKey(doc: ReturnType<typeof parseDocument>): unknown {
  let found: { key: unknown } | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key: unknown = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(key)) {
          found = { key };
          return visit.BREAK;
        }
        seen.add(key);
      }
      return undefined;
    },
  });
  return found?.key;
}

/** The definition's `spec` mapping, or why there is none. */
function specOf(value: string, what: string): { ok: true; spec: Record<string, unknown> } | DefinitionError {
  const parsed = parseText(value);
  if (!parsed.ok) return parsed;
  if (!isRecord(parsed.value)) {
    const v = parsed.value;
    const kind = v === null || v === undefined ? 'empty' : Array.isArray(v) ? 'a list' : `a ${typeof v}`;
    return { ok: false, reason: 'not_an_object', detail: `${what} definition is ${kind}, not a mapping` };
  }
  const spec = parsed.value.spec;
  if (!isRecord(spec)) {
    return { ok: false, reason: 'no_spec', detail: `${what} definition has no spec mapping` };
  }
  return { ok: true, spec };
}

/**
 * A package definition's models: `spec.models[].name`, deduplicated, in order. Invalid when the
 * text does not parse, is not a mapping, or `spec` / `spec.models` is missing or not a mapping /
 * list, or a model name contains `/`. An empty list is valid, and so is `models:` with no
 * entries (null). Entries without a non-empty string `name` are skipped and counted in `skipped`.
 */
export function parsePackageDefinition(value: string): PackageDefinitionResult {
  const s = specOf(value, 'package');
  if (!s.ok) return s;
  // `models:` with no entries is YAML's null: an empty list, as Kubernetes reads a null list
  // (the package is Idle, contract rule 1), not an invalid definition that drops its state.
  const list = s.spec.models === null ? [] : s.spec.models;
  if (!Array.isArray(list)) {
    return {
      ok: false,
      reason: 'no_models',
      detail: list === undefined ? 'package spec has no models list' : 'package spec.models is not a list',
    };
  }
  const models: string[] = [];
  const duplicates: string[] = [];
  const placements: [string, string][] = [];
  // Sets, not scans of the lists so far: a list of 36,000 placed models (1 MiB) took 5 s to read
  // that way, and held the event loop long enough to lose leadership (black-box probing).
  const seen = new Set<string>();
  const duplicated = new Set<string>();
  const placed = new Set<string>();
  let skipped = 0;
  let firstSkipped: string | undefined;
  for (const item of list as unknown[]) {
    const name = isRecord(item) ? item.name : undefined;
    if (typeof name !== 'string' || name.length === 0) {
      skipped++;
      firstSkipped ??= skippedEntry(item);
      continue;
    }
    // `/model/{name}/state` could never be read back as that model's key.
    if (name.includes('/')) {
      return { ok: false, reason: 'bad_model_name', detail: `package spec.models lists ${JSON.stringify(name.slice(0, 64))}: a model name cannot contain '/'` };
    }
    // A name the gRPC services refuse could be stored but never read back by name.
    const characters = nameCharacterProblem(name);
    if (characters !== undefined) {
      return { ok: false, reason: 'bad_model_name', detail: `package spec.models lists ${JSON.stringify(name.slice(0, 64))}, which ${characters}: no client could read it by name` };
    }
    const long = nameOverLimit(name);
    if (long !== undefined) {
      return { ok: false, reason: 'bad_model_name', detail: `package spec.models lists a model name of ${long} bytes (${JSON.stringify(name.slice(0, 64))}…): at most ${MAX_NAME_BYTES}` };
    }
    const node = isRecord(item) ? item.node : undefined;
    if (typeof node === 'string' && node.length > 0) {
      // A model name holds no '/', so "name/node" names one pair.
      const pair = `${name}/${node}`;
      if (!placed.has(pair)) {
        placed.add(pair);
        placements.push([name, node]);
      }
    }
    if (seen.has(name)) {
      if (!duplicated.has(name)) {
        duplicated.add(name);
        duplicates.push(name);
      }
      continue;
    }
    seen.add(name);
    models.push(name);
  }
  return { ok: true, models, skipped, ...(firstSkipped !== undefined ? { firstSkipped } : {}), duplicates, placements };
}

/** Why a `spec.models` entry lists no model, for the log line (YAML reads `name: 2024` as a number). */
function skippedEntry(item: unknown): string {
  if (!isRecord(item)) return `an entry that is ${item === null ? 'null' : Array.isArray(item) ? 'a list' : `a ${typeof item}`}, not a mapping with a name${typeof item === 'string' ? ` (${JSON.stringify(item.slice(0, 64))}: write "- name: ..." instead)` : ''}`;
  const name = item.name;
  if (name === undefined) return 'an entry without a name';
  if (typeof name === 'string') return 'an entry with an empty name';
  return `an entry whose name is a ${name === null ? 'null' : typeof name} (${String(name).slice(0, 64)}), not a string: quote it`;
}

/** A scenario definition's package: `spec.target`, a non-empty string; otherwise invalid. */
export function parseScenarioDefinition(value: string): ScenarioDefinitionResult {
  const s = specOf(value, 'scenario');
  if (!s.ok) return s;
  const target = s.spec.target;
  if (typeof target !== 'string' || target.length === 0) {
    return {
      ok: false,
      reason: 'no_target',
      detail: target === undefined ? 'scenario spec has no target' : 'scenario spec.target is not a non-empty string',
    };
  }
  const characters = nameCharacterProblem(target);
  if (characters !== undefined) {
    return { ok: false, reason: 'bad_target', detail: `scenario spec.target ${JSON.stringify(target.slice(0, 64))} ${characters}: no package can be named so` };
  }
  return { ok: true, target };
}
