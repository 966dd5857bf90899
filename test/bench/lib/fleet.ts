// The benchmark fleet: N nodes, C containers, M models, P packages (one scenario each), laid
// out deterministically from its shape so the harness, the load generator and the baseline all
// derive the same keys without sharing state.
//
// Layout: model m belongs to package floor(m·P/M) (contiguous blocks of M/P models); container c
// belongs to model floor(c·M/C), its id is `{model}-c{k}`; every model of a package runs on one
// node (a model is a pod, its containers share a node): node = package mod N. The last
// `notReadyNodes` nodes are NotReady, so their packages are in Error.

export interface FleetShape {
  nodes: number;
  containers: number;
  models: number;
  packages: number;
  notReadyNodes: number;
  seed: number;
}

export const LARGE_FLEET: FleetShape = { nodes: 50, containers: 100_000, models: 20_000, packages: 2_000, notReadyNodes: 1, seed: 1 };
export const QUICK_FLEET: FleetShape = { nodes: 10, containers: 6_000, models: 1_500, packages: 750, notReadyNodes: 1, seed: 1 };

/** Raw `state["Status"]` values the fleet uses; their index is what the generator records. */
export const STATUSES = ['created', 'running', 'restarting', 'paused', 'exited', 'dead'] as const;
export type RawStatus = (typeof STATUSES)[number];
export const STATUS_INDEX: Record<RawStatus, number> = Object.fromEntries(STATUSES.map((s, i) => [s, i])) as Record<RawStatus, number>;

/** Initial profile of a package by p mod 20, so every state appears at cold start. */
export type Profile = 'idle' | 'paused' | 'exited' | 'degraded' | 'mixed' | 'running';
export function profileOf(p: number): Profile {
  switch (p % 20) {
    case 0:
      return 'idle';
    case 1:
      return 'paused';
    case 2:
      return 'exited';
    case 3:
      return 'degraded';
    case 4:
      return 'mixed';
    default:
      return 'running';
  }
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

export class Fleet {
  readonly shape: FleetShape;
  readonly prefix: string;
  private readonly mw: number;
  private readonly pw: number;
  private readonly nw: number;
  /** First container index of each model (length models + 1). */
  readonly modelStart: Int32Array;
  /** First model index of each package (length packages + 1). */
  readonly packageStart: Int32Array;
  /** Initial raw status index per container. */
  readonly initial: Uint8Array;

  constructor(shape: FleetShape, prefix = '') {
    const { containers: C, models: M, packages: P, nodes: N } = shape;
    if (!(C >= M && M >= P && P >= 1 && N >= 1)) throw new Error('fleet shape needs containers >= models >= packages >= 1, nodes >= 1');
    if (shape.notReadyNodes >= N) throw new Error('fleet shape: at least one node must be Ready');
    this.shape = shape;
    this.prefix = prefix;
    this.mw = String(M - 1).length;
    this.pw = String(P - 1).length;
    this.nw = String(N - 1).length;
    this.modelStart = new Int32Array(M + 1);
    for (let m = 0; m <= M; m++) this.modelStart[m] = Math.ceil((m * C) / M);
    this.packageStart = new Int32Array(P + 1);
    for (let p = 0; p <= P; p++) this.packageStart[p] = Math.ceil((p * M) / P);
    this.initial = new Uint8Array(C);
    for (let p = 0; p < P; p++) {
      const profile = profileOf(p);
      for (let m = this.packageStart[p]!; m < this.packageStart[p + 1]!; m++) {
        const first = m === this.packageStart[p]!;
        for (let c = this.modelStart[m]!; c < this.modelStart[m + 1]!; c++) {
          const k = c - this.modelStart[m]!;
          let s: RawStatus;
          switch (profile) {
            case 'idle':
              s = 'created';
              break;
            case 'paused':
              s = 'paused';
              break;
            case 'exited':
              s = 'exited';
              break;
            case 'degraded':
              s = first && k === 0 ? 'dead' : 'running';
              break;
            case 'mixed':
              s = k % 2 === 1 ? 'exited' : k === 0 ? 'restarting' : 'running';
              break;
            default:
              s = 'running';
          }
          this.initial[c] = STATUS_INDEX[s];
        }
      }
    }
  }

  get containers(): number {
    return this.shape.containers;
  }
  get models(): number {
    return this.shape.models;
  }
  get packages(): number {
    return this.shape.packages;
  }

  modelName(m: number): string {
    return `m${pad(m, this.mw)}`;
  }
  packageName(p: number): string {
    return `pkg${pad(p, this.pw)}`;
  }
  scenarioName(p: number): string {
    return `sc${pad(p, this.pw)}`;
  }
  nodeName(n: number): string {
    return `node${pad(n, this.nw)}`;
  }

  /** Binary search: the model a container belongs to. */
  modelOf(c: number): number {
    let lo = 0;
    let hi = this.shape.models - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.modelStart[mid]! <= c) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  packageOf(m: number): number {
    let lo = 0;
    let hi = this.shape.packages - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.packageStart[mid]! <= m) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  nodeOfPackage(p: number): number {
    return p % this.shape.nodes;
  }

  nodeReady(n: number): boolean {
    return n < this.shape.nodes - this.shape.notReadyNodes;
  }

  containerId(c: number): string {
    const m = this.modelOf(c);
    return `${this.modelName(m)}-c${c - this.modelStart[m]!}`;
  }

  containerKey(c: number): string {
    const m = this.modelOf(c);
    const node = this.nodeName(this.nodeOfPackage(this.packageOf(m)));
    return `${this.prefix}/container/${node}/${this.modelName(m)}-c${c - this.modelStart[m]!}`;
  }

  /** The node agent's ContainerInfo JSON (about 400 bytes, like a real one). */
  containerValue(c: number, status: number, generation = 0): string {
    const m = this.modelOf(c);
    const model = this.modelName(m);
    const id = `${model}-c${c - this.modelStart[m]!}`;
    const raw = STATUSES[status]!;
    const running = raw === 'running' || raw === 'restarting';
    return JSON.stringify({
      id,
      names: [`/${id}`],
      image: `registry.local/bench/${model}:1.0`,
      state: {
        Status: raw,
        Running: running ? 'true' : 'false',
        Paused: raw === 'paused' ? 'true' : 'false',
        Pid: running ? String(1000 + (c % 50_000)) : '0',
        ExitCode: raw === 'dead' ? '137' : '0',
        StartedAt: '2025-01-01T00:00:00Z',
        Generation: String(generation),
      },
      config: { Hostname: id, Image: `registry.local/bench/${model}:1.0` },
      annotation: { 'io.pullpiri.annotations.model': model, 'io.pullpiri.annotations.package': this.packageName(this.packageOf(m)) },
    });
  }

  packageKey(p: number): string {
    return `${this.prefix}Package/${this.packageName(p)}`;
  }

  packageValue(p: number): string {
    const lines = ['apiVersion: v1', 'kind: Package', 'metadata:', `  name: ${this.packageName(p)}`, 'spec:', '  pattern:', '    - type: plain', '  models:'];
    const node = this.nodeName(this.nodeOfPackage(p));
    for (let m = this.packageStart[p]!; m < this.packageStart[p + 1]!; m++) {
      lines.push(`    - name: ${this.modelName(m)}`, `      node: ${node}`, '      resources:', `        volume: ${this.modelName(m)}-vol`);
    }
    return lines.join('\n') + '\n';
  }

  scenarioKey(p: number): string {
    return `${this.prefix}Scenario/${this.scenarioName(p)}`;
  }

  scenarioValue(p: number): string {
    return `apiVersion: v1\nkind: Scenario\nmetadata:\n  name: ${this.scenarioName(p)}\nspec:\n  condition:\n  action: update\n  target: ${this.packageName(p)}\n`;
  }

  modelDefKey(m: number): string {
    return `${this.prefix}Model/${this.modelName(m)}`;
  }

  modelDefValue(m: number): string {
    const name = this.modelName(m);
    return `apiVersion: v1\nkind: Model\nmetadata:\n  name: ${name}\n  annotations:\n    io.piccolo.annotations.package-type: bench\nspec:\n  hostNetwork: true\n  containers:\n    - name: ${name}\n      image: registry.local/bench/${name}:1.0\n  terminationGracePeriodSeconds: 0\n`;
  }

  nodeStatusKey(n: number): string {
    return `${this.prefix}/node/${this.nodeName(n)}/status`;
  }

  modelStateKey(m: number): string {
    return `${this.prefix}/model/${this.modelName(m)}/state`;
  }

  packageStateKey(p: number): string {
    return `${this.prefix}/package/${this.packageName(p)}/state`;
  }

  /**
   * Containers whose flips change their package's state one for one (for the latency scenario):
   * the first container of the first model of every 'running' package on a Ready node. Setting it
   * dead makes the package Degraded; setting it running again makes it Running.
   */
  latencyTargets(): { container: number; pkg: number }[] {
    const out: { container: number; pkg: number }[] = [];
    for (let p = 0; p < this.shape.packages; p++) {
      if (profileOf(p) !== 'running' || !this.nodeReady(this.nodeOfPackage(p))) continue;
      out.push({ container: this.modelStart[this.packageStart[p]!]!, pkg: p });
    }
    return out;
  }
}
