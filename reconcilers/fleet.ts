// The watched world: one informer per key prefix, decoded once per change into the small
// values the rules need, with the indexes that let a change find what it affects
// (container → model, node → containers, model → packages, package → scenarios), and the one
// piece of time-dependent bookkeeping the rules need: since when each node's lease key is absent.
import type { CacheEntry } from '../controller/indexed-cache.js';
import { Informer, type InformerMetrics } from '../controller/informer.js';
import { InformerSet } from '../controller/informer-set.js';
import type { ListerWatcher } from '../controller/lister-watcher.js';
import type { Logger } from '../controller/logger.js';
import {
  decodeContainer,
  decodeNode,
  decodePackageDefinition,
  decodeReconcileRequest,
  decodeResyncRequest,
  decodeScenarioDefinition,
  decodeState,
  type ContainerEntry,
  type Decoded,
  type Decoder,
  type NodeKey,
  type PackageDefinition,
  type StoredRequest,
  type StoredState,
} from '../domain/decoders.js';
import type { KeyLayout } from '../domain/keys.js';
import { LIVENESS_OFF, nodeReadiness, type NodeLivenessOptions, type NodeReadiness } from '../domain/node-liveness.js';
import { type DomainObserver, systemClock, type Clock } from './ports.js';
import type { ResyncRequest } from '../domain/resync-request-format.js';
import type { ModelState, PackageState, ResourceKind, ScenarioState } from '../domain/states.js';

export type { ContainerEntry, NodeKey, StoredRequest, StoredState };

export const INDEX_MODEL = 'model';
export const INDEX_NODE = 'node';
export const INDEX_TARGET = 'target';
export const INDEX_PLACEMENT = 'placement';

// NUL cannot occur in a model or node name read from YAML keys we accept as names.
const placementKey = (model: string, node: string): string => `${node}\u0000${model}`;

export interface FleetOptions {
  keys: KeyLayout;
  lw: ListerWatcher;
  observer: DomainObserver;
  logger?: Logger;
  metrics?: InformerMetrics;
  /** Node leases (contract §1); off by default. */
  liveness?: NodeLivenessOptions;
  /** Times when lease keys go absent; the reconcilers' clock. */
  clock?: Clock;
  /** Test-only bug shape for the informers (test/sim/mutations.ts). Never set otherwise. */
  plantedBugResumeFromListed?: boolean;
}

export class Fleet {
  readonly keys: KeyLayout;
  readonly containers: Informer<ContainerEntry>;
  /** `/node/{node}/status` and `/node/{node}/lease`. */
  readonly nodes: Informer<NodeKey>;
  readonly packageDefs: Informer<PackageDefinition>;
  readonly scenarioDefs: Informer<string>;
  readonly modelStates: Informer<StoredState<ModelState>>;
  readonly packageStates: Informer<StoredState<PackageState>>;
  /** Read by the state API only: scenario states are requested, never computed here. */
  readonly scenarioStates: Informer<StoredState<ScenarioState>>;
  readonly requests: Informer<StoredRequest>;
  readonly resyncRequests: Informer<ResyncRequest>;
  readonly liveness: NodeLivenessOptions;
  private readonly noModelReported = new Set<string>();
  private readonly observer: DomainObserver;
  private readonly clock: Clock;
  /** Nodes without a lease key: when it went, or when the node was first seen without one. */
  private readonly leaseAbsentSince = new Map<string, number>();
  /** For a node never seen at all: absent since the fleet was made. */
  private readonly createdAt: number;

  constructor(o: FleetOptions) {
    const keys = (this.keys = o.keys);
    this.observer = o.observer;
    this.liveness = o.liveness ?? LIVENESS_OFF;
    this.clock = o.clock ?? systemClock;
    this.createdAt = this.clock.now();
    const informer = <T>(name: string, prefix: string, decode: Decoder<T>): Informer<T> =>
      new Informer<T>({
        lw: o.lw,
        logger: o.logger,
        metrics: o.metrics,
        name,
        prefix,
        parse: (key, raw) => this.report(key, decode(keys, key, raw)),
        ...(o.plantedBugResumeFromListed ? { plantedBugResumeFromListed: true } : {}),
      });

    this.containers = informer('containers', keys.containers, decodeContainer);
    this.containers.cache.addIndex(INDEX_MODEL, (_k, c) => [c.model]);
    this.containers.cache.addIndex(INDEX_NODE, (_k, c) => [c.node]);
    this.nodes = informer('nodes', keys.nodes, decodeNode);
    if (this.liveness.enabled) this.trackLeases();
    this.packageDefs = informer('packages', keys.packageDefs, decodePackageDefinition);
    this.packageDefs.cache.addIndex(INDEX_MODEL, (_k, def) => def.models);
    this.packageDefs.cache.addIndex(INDEX_PLACEMENT, (_k, def) => def.placements.map(([model, node]) => placementKey(model, node)));
    this.scenarioDefs = informer('scenarios', keys.scenarioDefs, decodeScenarioDefinition);
    this.scenarioDefs.cache.addIndex(INDEX_TARGET, (_k, target) => [target]);
    this.modelStates = informer('model-states', keys.statePrefix('model'), decodeState('model'));
    this.packageStates = informer('package-states', keys.statePrefix('package'), decodeState('package'));
    this.scenarioStates = informer('scenario-states', keys.statePrefix('scenario'), decodeState('scenario'));
    this.requests = informer('reconcile-requests', keys.reconcileRequests, decodeReconcileRequest);
    this.resyncRequests = informer('resync-requests', keys.resyncRequests, decodeResyncRequest);
  }

  /** Record when each node's lease key goes absent (first seen without one counts as going). */
  private trackLeases(): void {
    const { keys } = this;
    this.containers.addHandler((e) => {
      if (e.type === 'added') this.nodeSeen(e.new.value.node);
    });
    this.nodes.addHandler((e) => {
      const lease = keys.parseNodeLeaseKey(e.key);
      if (lease === undefined) {
        const node = keys.parseNodeStatusKey(e.key);
        if (node !== undefined && e.type === 'added') this.nodeSeen(node);
        return;
      }
      if (e.type === 'deleted') this.leaseAbsentSince.set(lease, this.clock.now());
      else this.leaseAbsentSince.delete(lease);
    });
  }

  private nodeSeen(node: string): void {
    if (!this.leaseAbsentSince.has(node) && !this.leasePresent(node)) this.leaseAbsentSince.set(node, this.clock.now());
  }

  /** The one place bad input is reported. A container without a model is reported once per key: agents report such containers on every change. */
  private report<T>(key: string, d: Decoded<T>): T | undefined {
    if (d.problem?.reason === 'no_model') {
      if (!this.noModelReported.has(key)) {
        this.noModelReported.add(key);
        this.observer.invalidInput('no_model', key, d.problem.detail);
      }
      return d.value;
    }
    if (this.noModelReported.size > 0) this.noModelReported.delete(key);
    if (d.problem) this.observer.invalidInput(d.problem.reason, key, d.problem.detail);
    return d.value;
  }

  /** The informers as one cache set (start, sync, stop, own writes), for the Manager. */
  get caches(): InformerSet {
    this.set ??= new InformerSet([
      this.resyncRequests,
      this.containers,
      this.nodes,
      this.packageDefs,
      this.scenarioDefs,
      this.modelStates,
      this.packageStates,
      this.scenarioStates,
      this.requests,
    ] as Informer<unknown>[]);
    return this.set;
  }

  private set: InformerSet | undefined;

  start(): void {
    this.caches.start();
  }

  waitForSync(): Promise<void> {
    return this.caches.waitForSync();
  }

  hasSynced(): boolean {
    return this.caches.hasSynced();
  }

  stop(): Promise<void> {
    return this.caches.stop();
  }

  // --- reads the reconcilers need ---

  /** Whether the node's status key says Ready (absent or invalid: Ready), leases aside. */
  nodeStatusReady(node: string): boolean {
    const status = this.nodes.cache.get(this.keys.nodeStatusKey(node))?.value;
    return status?.kind !== 'status' || status.ready;
  }

  leasePresent(node: string): boolean {
    return this.nodes.cache.get(this.keys.nodeLeaseKey(node)) !== undefined;
  }

  /** Status, lease presence and time since the lease went, at `now` (the reconcilers' clock). */
  nodeReadiness(node: string, now: number): NodeReadiness {
    const statusReady = this.nodeStatusReady(node);
    // The lease is read only when it can matter (liveness on, status Ready).
    const leasePresent = !this.liveness.enabled || !statusReady || this.leasePresent(node);
    const leaseAbsentSince = leasePresent ? 0 : (this.leaseAbsentSince.get(node) ?? this.createdAt);
    return nodeReadiness({ statusReady, leasePresent, leaseAbsentSince }, now, this.liveness);
  }

  nodeReady(node: string, now: number = this.clock.now()): boolean {
    return this.nodeReadiness(node, now).ready;
  }

  containersOfModel(model: string): ContainerEntry[] {
    const out: ContainerEntry[] = [];
    for (const key of this.containers.cache.keysByIndex(INDEX_MODEL, model)) {
      const c = this.containers.cache.get(key);
      if (c) out.push(c.value);
    }
    return out;
  }

  reconcileRequest(pkg: string): CacheEntry<StoredRequest> | undefined {
    return this.requests.cache.get(this.keys.reconcileRequestKey(pkg));
  }

  resyncRequest(id: string): CacheEntry<ResyncRequest> | undefined {
    return this.resyncRequests.cache.get(this.keys.resyncRequestKey(id));
  }

  /** Whether some package definition lists the model (else it has no state). */
  isModelListed(model: string): boolean {
    return this.packageDefs.cache.keysByIndex(INDEX_MODEL, model).size > 0;
  }

  /** The models of the containers on a node, each once. */
  modelsOnNode(node: string): Set<string> {
    const models = new Set<string>();
    for (const key of this.containers.cache.keysByIndex(INDEX_NODE, node)) {
      const entry = this.containers.cache.get(key);
      if (entry) models.add(entry.value.model);
    }
    return models;
  }

  /**
   * Whether the package-state cache is at least as new as `revision` (for the package's own
   * key, or for the whole prefix): a decision about a request created at `revision` needs it.
   */
  packageStateSeenSince(pkg: string, revision: number): boolean {
    const own = this.storedPackageState(pkg)?.modRevision ?? 0;
    return Math.max(own, this.packageStates.lastRevision) >= revision;
  }

  packagesOfModel(model: string): string[] {
    const out: string[] = [];
    for (const key of this.packageDefs.cache.keysByIndex(INDEX_MODEL, model)) {
      const name = this.keys.parsePackageDefKey(key);
      if (name !== undefined) out.push(name);
    }
    return out;
  }

  modelsOfPackage(pkg: string): readonly string[] | undefined {
    return this.packageDefs.cache.get(this.keys.packageDefKey(pkg))?.value.models;
  }

  /** Whether some package definition places the model on the node (`spec.models[].node`). */
  isModelPlacedOn(model: string, node: string): boolean {
    return this.packageDefs.cache.keysByIndex(INDEX_PLACEMENT, placementKey(model, node)).size > 0;
  }

  storedModelState(name: string): CacheEntry<StoredState<ModelState>> | undefined {
    return this.modelStates.cache.get(this.keys.stateKey('model', name));
  }

  storedPackageState(name: string): CacheEntry<StoredState<PackageState>> | undefined {
    return this.packageStates.cache.get(this.keys.stateKey('package', name));
  }

  /** The first scenario by name whose spec.target is the package, or the package's own name. */
  scenarioFor(pkg: string): string {
    let first: string | undefined;
    for (const key of this.scenarioDefs.cache.keysByIndex(INDEX_TARGET, pkg)) {
      const name = this.keys.parseScenarioDefKey(key);
      if (name !== undefined && (first === undefined || name < first)) first = name;
    }
    return first ?? pkg;
  }

  /** Every name the reconcilers of a kind may have to act on (for resync). */
  allNames(kind: ResourceKind | 'request'): Set<string> {
    const names = new Set<string>();
    const add = (n: string | undefined): void => {
      if (n !== undefined) names.add(n);
    };
    if (kind === 'model') {
      for (const m of this.packageDefs.cache.indexValues(INDEX_MODEL)) names.add(m);
      for (const k of this.modelStates.cache.keys()) add(this.keys.parseStateKey('model', k));
    } else if (kind === 'package') {
      for (const k of this.packageDefs.cache.keys()) add(this.keys.parsePackageDefKey(k));
      for (const k of this.packageStates.cache.keys()) add(this.keys.parseStateKey('package', k));
    } else if (kind === 'request') {
      for (const k of this.requests.cache.keys()) add(this.keys.parseReconcileRequestKey(k));
    }
    return names;
  }
}
