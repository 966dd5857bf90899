// The benchmark's own reading of the contract (shared/contract.md sections 1 and 2), written
// from the text and deliberately separate from reconcilers/: the harness checks statemanager
// (and the baseline) against it after every scenario. It reads etcd directly.
import type { Etcd3 } from 'etcd3';
import { parse as parseYaml } from 'yaml';
import { readPrefix } from './etcdio.js';

type CStatus = 'created' | 'running' | 'paused' | 'exited' | 'dead' | 'unknown';

const STATUS_WORDS: Record<string, CStatus> = {
  created: 'created',
  initialized: 'created',
  running: 'running',
  restarting: 'running',
  stopping: 'running',
  paused: 'paused',
  exited: 'exited',
  stopped: 'exited',
  removing: 'exited',
  dead: 'dead',
};

const MODEL_NAMES = ['Created', 'Running', 'Paused', 'Exited', 'Dead'];
const PACKAGE_NAMES = ['Idle', 'Running', 'Paused', 'Exited', 'Degraded', 'Error'];

/** A stored state value, read leniently (case, Pullpiri enum spelling); undefined if not a state. */
export function canonicalState(kind: 'model' | 'package', raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let v = raw.trim().toLowerCase();
  const enumPrefix = `${kind}_state_`;
  if (v.startsWith(enumPrefix)) v = v.slice(enumPrefix.length);
  return (kind === 'model' ? MODEL_NAMES : PACKAGE_NAMES).find((n) => n.toLowerCase() === v);
}

function str(map: unknown, key: string): string | undefined {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) return undefined;
  if (!Object.prototype.hasOwnProperty.call(map, key)) return undefined;
  const v = (map as Record<string, unknown>)[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** model and status of a ContainerInfo JSON; undefined when it is not a valid container of a model. */
export function readContainer(value: string): { model: string; status: CStatus } | undefined {
  let j: unknown;
  try {
    j = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) return undefined;
  const o = j as Record<string, unknown>;
  const model =
    str(o.annotation, 'io.pullpiri.annotations.model') ?? str(o.annotation, 'pullpiri.model') ?? str(o.annotation, 'model') ?? str(o.config, 'model');
  if (model === undefined) return undefined;
  let status: CStatus;
  const s = str(o.state, 'Status');
  if (s !== undefined && s.trim() !== '') {
    const word = s.trim().toLowerCase();
    status = Object.prototype.hasOwnProperty.call(STATUS_WORDS, word) ? STATUS_WORDS[word]! : 'unknown';
  }
  else status = str(o.state, 'Running') === 'true' ? 'running' : 'unknown';
  return { model, status };
}

/** Model state from its containers' effective statuses and the stored state (contract §2). */
export function modelRule(prev: string | undefined, statuses: readonly CStatus[]): string {
  if (statuses.some((s) => s === 'dead' || s === 'unknown')) return 'Dead';
  const fresh = prev === undefined || prev === 'Created';
  if (statuses.length === 0) return fresh ? 'Created' : 'Exited';
  if (statuses.every((s) => s === 'created')) return fresh ? 'Created' : 'Running';
  if (statuses.every((s) => s === 'paused')) return 'Paused';
  if (statuses.every((s) => s === 'exited')) return 'Exited';
  return 'Running';
}

/** Package state from its models' states (a model without state counts as Created). */
export function packageRule(prev: string | undefined, models: readonly string[]): string {
  if (models.length === 0) return 'Idle';
  if (models.every((m) => m === 'Created') && (prev === undefined || prev === 'Idle')) return 'Idle';
  if (models.every((m) => m === 'Dead')) return 'Error';
  if (models.some((m) => m === 'Dead')) return 'Degraded';
  if (models.every((m) => m === 'Paused')) return 'Paused';
  if (models.every((m) => m === 'Exited')) return 'Exited';
  return 'Running';
}

export interface World {
  revision: number;
  /** model → effective statuses of its containers. */
  containersByModel: Map<string, CStatus[]>;
  /** package → its models (valid definitions only). */
  packages: Map<string, string[]>;
  /** every model some package lists. */
  listedModels: Set<string>;
  /** stored states (canonical, or the raw value when it is not a state name). */
  modelStates: Map<string, string>;
  packageStates: Map<string, string>;
}

function modelsOfPackage(value: string): string[] | undefined {
  let doc: unknown;
  try {
    doc = parseYaml(value);
  } catch {
    return undefined;
  }
  const models = (doc as { spec?: { models?: unknown } } | null)?.spec?.models;
  if (!Array.isArray(models)) return undefined;
  const out: string[] = [];
  for (const m of models) {
    const n = (m as { name?: unknown } | null)?.name;
    // A model name with '/' makes the whole definition invalid (contract: its key could not be read back).
    if (typeof n === 'string' && n.includes('/')) return undefined;
    if (typeof n === 'string' && n !== '' && !out.includes(n)) out.push(n);
  }
  return out;
}

/** Everything the rules need, read from etcd at one revision. */
export async function readWorld(c: Etcd3, prefix = ''): Promise<World> {
  const containers = await readPrefix(c, `${prefix}/container/`);
  const rev = containers.revision;
  const [nodes, pkgs, mstates, pstates] = await Promise.all([
    readPrefix(c, `${prefix}/node/`, rev),
    readPrefix(c, `${prefix}Package/`, rev),
    readPrefix(c, `${prefix}/model/`, rev),
    readPrefix(c, `${prefix}/package/`, rev),
  ]);
  const notReady = new Set<string>();
  for (const [k, v] of nodes.kvs) {
    const m = /^\/node\/([^/]+)\/status$/.exec(k.slice(prefix.length));
    const s = v.value;
    if (m && (s === 'NotReady' || s === 'NODE_DISCONNECTED')) notReady.add(m[1]!);
  }
  const containersByModel = new Map<string, CStatus[]>();
  for (const [k, v] of containers.kvs) {
    const rest = k.slice(prefix.length + '/container/'.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) continue;
    const node = rest.slice(0, slash);
    const info = readContainer(v.value);
    if (!info) continue;
    const list = containersByModel.get(info.model) ?? [];
    list.push(notReady.has(node) ? 'unknown' : info.status);
    containersByModel.set(info.model, list);
  }
  const packages = new Map<string, string[]>();
  const listedModels = new Set<string>();
  for (const [k, v] of pkgs.kvs) {
    const name = k.slice(prefix.length + 'Package/'.length);
    if (name === '' || name.includes('/')) continue;
    const models = modelsOfPackage(v.value);
    if (!models) continue;
    packages.set(name, models);
    for (const m of models) listedModels.add(m);
  }
  const states = (snap: typeof mstates, kind: 'model' | 'package'): Map<string, string> => {
    const out = new Map<string, string>();
    const head = `${prefix}/${kind}/`;
    for (const [k, v] of snap.kvs) {
      if (!k.endsWith('/state')) continue;
      const name = k.slice(head.length, k.length - '/state'.length);
      if (name === '' || name.includes('/')) continue;
      out.set(name, canonicalState(kind, v.value) ?? `<invalid:${v.value}>`);
    }
    return out;
  };
  return {
    revision: rev,
    containersByModel,
    packages,
    listedModels,
    modelStates: states(mstates, 'model'),
    packageStates: states(pstates, 'package'),
  };
}

export interface Expected {
  models: Map<string, string>;
  packages: Map<string, string>;
}

/**
 * The states the rules give for the world's inputs, taking `prev` from `prevOf` (absent for a
 * cold start, the states before a change otherwise). Models are computed first; a package
 * reads its models' new states.
 */
export function expectedStates(
  w: World,
  prevOf: { model(name: string): string | undefined; package(name: string): string | undefined },
): Expected {
  const models = new Map<string, string>();
  for (const m of w.listedModels) models.set(m, modelRule(prevOf.model(m), w.containersByModel.get(m) ?? []));
  const packages = new Map<string, string>();
  for (const [p, ms] of w.packages) packages.set(p, packageRule(prevOf.package(p), ms.map((m) => models.get(m) ?? 'Created')));
  return { models, packages };
}

export const ABSENT = { model: () => undefined, package: () => undefined };

export interface CheckResult {
  ok: boolean;
  checked: { models: number; packages: number };
  mismatches: string[];
  mismatchCount: number;
}

/**
 * Is every stored state what the rules give for the inputs as they are? A state is correct
 * when recomputing it from the stored value as `prev` yields it again (the contract's level-based
 * fixed point), when it exists exactly for listed models and defined packages, and — if
 * `expected` is given — equals it.
 */
export function checkWorld(w: World, expected?: Expected): CheckResult {
  const mismatches: string[] = [];
  let count = 0;
  const bad = (msg: string): void => {
    count++;
    if (mismatches.length < 20) mismatches.push(msg);
  };
  for (const m of w.listedModels) {
    const stored = w.modelStates.get(m);
    if (stored === undefined) {
      bad(`model ${m}: no state`);
      continue;
    }
    const again = modelRule(stored, w.containersByModel.get(m) ?? []);
    if (again !== stored) bad(`model ${m}: stored ${stored}, rules give ${again} (containers ${(w.containersByModel.get(m) ?? []).join(',')})`);
    else if (expected && expected.models.get(m) !== stored) bad(`model ${m}: stored ${stored}, expected ${expected.models.get(m)}`);
  }
  for (const m of w.modelStates.keys()) if (!w.listedModels.has(m)) bad(`model ${m}: state ${w.modelStates.get(m)} but no package lists it`);
  for (const [p, ms] of w.packages) {
    const stored = w.packageStates.get(p);
    if (stored === undefined) {
      bad(`package ${p}: no state`);
      continue;
    }
    const children = ms.map((m) => w.modelStates.get(m) ?? 'Created');
    const again = packageRule(stored, children);
    if (again !== stored) bad(`package ${p}: stored ${stored}, rules give ${again} (models ${children.join(',')})`);
    else if (expected && expected.packages.get(p) !== stored) bad(`package ${p}: stored ${stored}, expected ${expected.packages.get(p)}`);
  }
  for (const p of w.packageStates.keys()) if (!w.packages.has(p)) bad(`package ${p}: state ${w.packageStates.get(p)} but no definition`);
  return { ok: count === 0, checked: { models: w.listedModels.size, packages: w.packages.size }, mismatches, mismatchCount: count };
}

/** Read, check, and report. */
export async function verify(c: Etcd3, expected?: Expected, prefix = ''): Promise<CheckResult & { world: World }> {
  const world = await readWorld(c, prefix);
  if (process.env.BENCH_INJECT_FAULT === '1') {
    // --inject-fault: pretend one stored state is wrong, to prove a failure fails the run.
    const [m, s] = world.modelStates.entries().next().value ?? ['?', 'Running'];
    world.modelStates.set(m, s === 'Paused' ? 'Running' : 'Paused');
  }
  return { ...checkWorld(world, expected), world };
}
