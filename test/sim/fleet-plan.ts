// The small fleet a schedule draws from its seed, and how its keys are written: node agents,
// the API server and the gRPC receiver all write these shapes.
import type { KeyLayout } from '../../domain/keys.js';
import type { FakeEtcdServer } from './fake-etcd.js';
import type { Random } from './random.js';
import type { ReplicaSettings } from './replica.js';

export interface ContainerSpec {
  node: string;
  id: string;
  model: string;
}

export interface FleetPlan {
  liveness: boolean;
  settings: ReplicaSettings;
  nodes: string[];
  models: string[];
  packages: string[];
  /** package → the scenario targeting it (packages without one are named as themselves). */
  scenarioOf: Map<string, string>;
  containers: ContainerSpec[];
}

export type Ops = Parameters<FakeEtcdServer['write']>[1];

export const STATUSES = ['created', 'running', 'running', 'Running', 'paused', 'exited', 'dead', 'Restarting', 'bogus'];

export function drawFleet(random: Random): FleetPlan {
  const liveness = random.chance(0.5);
  const settings: ReplicaSettings = {
    leaseSeconds: 3,
    requestTimeoutMs: 1000,
    historyLength: random.pick([0, 3, 50]),
    liveness: { enabled: liveness, graceMs: 1500 },
    repeat: random.chance(0.3) ? { initialMs: 3000, capMs: 12_000 } : { initialMs: 0, capMs: 0 },
    pageSize: random.between(2, 50),
  };
  const nodes = ['n1', 'n2', 'n3'].slice(0, random.between(1, 3));
  const models = ['m1', 'm2', 'm3', 'm4', 'm5'].slice(0, random.between(2, 5));
  const packages = ['p1', 'p2', 'p3'].slice(0, random.between(1, 3));
  const scenarioOf = new Map<string, string>();
  for (const p of packages) if (random.chance(0.6)) scenarioOf.set(p, `s-${p}`);
  const containers: ContainerSpec[] = [];
  for (const m of models) for (let k = random.between(1, 2); k > 0; k--) containers.push({ node: random.pick(nodes), id: `${m}-c${k}`, model: m });
  return { liveness, settings, nodes, models, packages, scenarioOf, containers };
}

export function packageDefinition(models: string[]): string {
  return models.length === 0 ? 'spec:\n  models: []\n' : `spec:\n  models:\n${models.map((m) => `    - name: ${m}\n`).join('')}`;
}

/** Up to three of the models. */
export function someModels(random: Random, models: readonly string[]): string[] {
  return models.filter(() => random.chance(0.5)).slice(0, 3);
}

/** A container's JSON (3 % malformed), its model named by annotation, by config or only by its name `model-<name>`. */
export function containerValue(random: Random, c: ContainerSpec, status: string): string {
  if (random.chance(0.03)) return '{not json';
  const how = random.int(3);
  const named = how === 0 ? { config: { model: c.model } } : how === 1 ? { annotation: { 'io.pullpiri.annotations.model': c.model } } : {};
  return JSON.stringify({ id: c.id, names: [`/model-${c.model}`], image: 'img', state: { Status: status }, ...named });
}

export function packageOfScenario(plan: FleetPlan, scenario: string): string {
  return [...plan.scenarioOf].find(([, s]) => s === scenario)?.[0] ?? scenario;
}

/** Definitions, scenarios and containers as the schedule starts. */
export function writeFleet(write: (ops: Ops) => void, keys: KeyLayout, plan: FleetPlan, random: Random): void {
  const { models } = plan;
  for (const p of plan.packages) write([{ put: { key: keys.packageDefKey(p), value: packageDefinition(someModels(random, models).length > 0 ? someModels(random, models) : [models[0]!]) } }]);
  for (const [p, s] of plan.scenarioOf) write([{ put: { key: keys.scenarioDefKey(s), value: `spec:\n  target: ${p}\n` } }]);
  for (const c of plan.containers) write([{ put: { key: keys.containerKey(c.node, c.id), value: containerValue(random, c, random.pick(STATUSES)) } }]);
}
