// The watched world as a read model: one informer per key prefix (private: only this class
// builds and reads them), decoded once per change into the small values the rules need, with
// the indexes that let a change find what it affects (container → model, node → containers,
// model → packages, package → scenarios). Readers get named reads; the event mapping and the
// gauges subscribe with onChange; the Manager gets the informers as one cache set (`caches`).
// Lease time lives in NodeLeases, bad-input reporting in BadInputReport: each is state of its
// own, not a view of etcd.
import type { CacheEntry } from '../controller/indexed-cache.js';
import { Informer, type InformerHandler, type InformerMetrics } from '../controller/informer.js';
import { InformerSet } from '../controller/informer-set.js';
import type { ListerWatcher } from '../controller/lister-watcher.js';
import type { Logger } from '../controller/logger.js';
import {
  containerDecoder,
  decodeNode,
  decodePackageDefinition,
  decodeReconcileRequest,
  decodeResyncRequest,
  decodeScenarioDefinition,
  decodeState,
  type ContainerEntry,
  type Decoder,
  type NodeKey,
  type PackageDefinition,
  type StoredRequest,
  type StoredState,
} from '../domain/decoders.js';
import type { KeyLayout } from '../domain/keys.js';
import { placementKey } from '../domain/definitions.js';
import { LIVENESS_OFF, type NodeLivenessOptions, type NodeReadiness } from '../domain/node-liveness.js';
import { BadInputReport } from './bad-input.js';
import { NodeLeases } from './node-leases.js';
import { type DomainObserver, systemClock, type Clock } from './ports.js';
import type { ResyncRequest } from '../domain/resync-request-format.js';
import type { ModelState, PackageState, ResourceKind, ScenarioState } from '../domain/states.js';

export type { ContainerEntry, NodeKey, StoredRequest, StoredState };

const INDEX_MODEL = 'model';
const INDEX_NODE = 'node';
const INDEX_TARGET = 'target';
const INDEX_PLACEMENT = 'placement';


/** The decoded value of each watched prefix: what a change handler of that kind receives. */
export interface Watched {
  containers: ContainerEntry;
  /** `/node/{node}/status` and `/node/{node}/lease`. */
  nodes: NodeKey;
  packageDefs: PackageDefinition;
  scenarioDefs: string;
  modelStates: StoredState<ModelState>;
  packageStates: StoredState<PackageState>;
  /** Read by the state API only: scenario states are requested, never computed here. */
  scenarioStates: StoredState<ScenarioState>;
  requests: StoredRequest;
  resyncRequests: ResyncRequest;
}

export type WatchedKind = keyof Watched;

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
  /** The informers as one cache set (start, sync, stop, own writes), for the Manager and the store. */
  readonly caches: InformerSet;
  private readonly informers: { readonly [K in WatchedKind]: Informer<Watched[K]> };
  private readonly leases: NodeLeases;

  constructor(o: FleetOptions) {
    const keys = (this.keys = o.keys);
    const badInput = new BadInputReport(o.observer);
    const informer = <T>(name: string, prefix: string, decode: Decoder<T>): Informer<T> =>
      new Informer<T>({
        lw: o.lw,
        logger: o.logger,
        metrics: o.metrics,
        name,
        prefix,
        parse: (key, raw) => badInput.value(key, decode(keys, key, raw)),
        ...(o.plantedBugResumeFromListed ? { plantedBugResumeFromListed: true } : {}),
      });
    const i = (this.informers = {
      resyncRequests: informer('resync-requests', keys.resyncRequests, decodeResyncRequest),
      containers: informer('containers', keys.containers, containerDecoder()),
      nodes: informer('nodes', keys.nodes, decodeNode),
      packageDefs: informer('packages', keys.packageDefs, decodePackageDefinition),
      scenarioDefs: informer('scenarios', keys.scenarioDefs, decodeScenarioDefinition),
      modelStates: informer('model-states', keys.statePrefix('model'), decodeState('model')),
      packageStates: informer('package-states', keys.statePrefix('package'), decodeState('package')),
      scenarioStates: informer('scenario-states', keys.statePrefix('scenario'), decodeState('scenario')),
      requests: informer('reconcile-requests', keys.reconcileRequests, decodeReconcileRequest),
    });
    // One value each, as a string: no array per container write (two per index and write).
    i.containers.cache.addIndex(INDEX_MODEL, (_k, c) => c.model);
    i.containers.cache.addIndex(INDEX_NODE, (_k, c) => c.node);
    i.packageDefs.cache.addIndex(INDEX_MODEL, (_k, def) => def.models);
    // The decoder made the placement keys once: no array or string per index call.
    i.packageDefs.cache.addIndex(INDEX_PLACEMENT, (_k, def) => def.placements);
    i.scenarioDefs.cache.addIndex(INDEX_TARGET, (_k, target) => target);
    this.caches = new InformerSet(Object.values(i) as Informer<unknown>[]);
    this.leases = new NodeLeases(o.liveness ?? LIVENESS_OFF, o.clock ?? systemClock, this);
    // Before any other handler: the event mapping reads lease time when the same event reaches it.
    if (this.liveness.enabled) this.trackLeases();
  }

  /**
   * Whether every cache has listed etcd once: before that an absent key means nothing (a read,
   * e.g. TriggerOffloading's check of a package's models; starting and stopping are `caches`').
   */
  hasSynced(): boolean {
    return this.caches.hasSynced();
  }

  /** Node liveness as configured (whether leases count, and their grace). */
  get liveness(): NodeLivenessOptions {
    return this.leases.liveness;
  }

  /** Call `handler` on every change of one kind (after the cache has it): the event mapping's and the gauges' way in. */
  onChange<K extends WatchedKind>(kind: K, handler: InformerHandler<Watched[K]>): void {
    this.informers[kind].addHandler(handler);
  }

  /**
   * Feed the lease bookkeeping: a lease key going or coming, a node first seen (first seen without
   * a lease counts as going), a node's last key gone (forgotten: back later, it is first seen again,
   * as after a restart; and node names that churn do not pile up). Handlers run after the cache
   * has applied the event, so a deletion reads the level left.
   */
  private trackLeases(): void {
    const { keys, leases } = this;
    const forgetIfGone = (node: string): void => {
      if (!this.nodeHasKeys(node)) leases.forget(node);
    };
    this.onChange('containers', (e) => {
      if (e.type === 'added') leases.nodeSeen(e.new.value.node);
      else if (e.type === 'deleted') forgetIfGone(e.old.value.node);
    });
    this.onChange('nodes', (e) => {
      const lease = keys.parseNodeLeaseKey(e.key);
      if (lease === undefined) {
        const node = keys.parseNodeStatusKey(e.key);
        if (node === undefined) return;
        if (e.type === 'added') leases.nodeSeen(node);
        else if (e.type === 'deleted') forgetIfGone(node);
        return;
      }
      if (e.type !== 'deleted') leases.leaseBack(lease);
      else if (this.nodeHasKeys(lease)) leases.leaseGone(lease);
      else leases.forget(lease);
    });
  }

  /** How many nodes the lease bookkeeping holds (at most those with a container, status or lease key). */
  get leaseTrackedNodes(): number {
    return this.leases.trackedNodes;
  }

  /** Whether the caches hold a container, the status key or the lease key of the node. */
  nodeHasKeys(node: string): boolean {
    const nodes = this.informers.nodes.cache;
    return (
      this.informers.containers.cache.countByIndex(INDEX_NODE, node) > 0 ||
      nodes.get(this.keys.nodeStatusKey(node)) !== undefined ||
      nodes.get(this.keys.nodeLeaseKey(node)) !== undefined
    );
  }

  // --- reads ---

  /** Whether the node's status key says Ready (absent or invalid: Ready), leases aside. */
  statusReady(node: string): boolean {
    const status = this.informers.nodes.cache.get(this.keys.nodeStatusKey(node))?.value;
    return status?.kind !== 'status' || status.ready;
  }

  leasePresent(node: string): boolean {
    return this.informers.nodes.cache.get(this.keys.nodeLeaseKey(node)) !== undefined;
  }

  /** Status, lease presence and time since the lease went, at `now` (a reading of the clock's `elapsed()`, monotonic). */
  nodeReadiness(node: string, now: number): NodeReadiness {
    return this.leases.readiness(node, now);
  }

  containersOfModel(model: string): ContainerEntry[] {
    return this.informers.containers.cache.valuesByIndex(INDEX_MODEL, model);
  }

  reconcileRequest(pkg: string): CacheEntry<StoredRequest> | undefined {
    return this.informers.requests.cache.get(this.keys.reconcileRequestKey(pkg));
  }

  resyncRequest(id: string): CacheEntry<ResyncRequest> | undefined {
    return this.informers.resyncRequests.cache.get(this.keys.resyncRequestKey(id));
  }

  /** Whether some package definition lists the model (else it has no state). */
  isModelListed(model: string): boolean {
    return this.informers.packageDefs.cache.countByIndex(INDEX_MODEL, model) > 0;
  }

  /** The models of the containers on a node, each once. */
  modelsOnNode(node: string): Set<string> {
    const models = new Set<string>();
    this.informers.containers.cache.forEachByIndex(INDEX_NODE, node, (entry) => models.add(entry.value.model));
    return models;
  }

  /**
   * Whether the package-state cache is at least as new as `revision` (for the package's own
   * key, or for the whole prefix): a decision about a request created at `revision` needs it.
   */
  packageStateSeenSince(pkg: string, revision: number): boolean {
    const own = this.storedPackageState(pkg)?.modRevision ?? 0;
    return Math.max(own, this.informers.packageStates.lastRevision) >= revision;
  }

  packagesOfModel(model: string): string[] {
    const out: string[] = [];
    for (const key of this.informers.packageDefs.cache.keysByIndex(INDEX_MODEL, model)) {
      const name = this.keys.parsePackageDefKey(key);
      if (name !== undefined) out.push(name);
    }
    return out;
  }

  modelsOfPackage(pkg: string): readonly string[] | undefined {
    return this.informers.packageDefs.cache.get(this.keys.packageDefKey(pkg))?.value.models;
  }

  /** Whether some package definition places the model on the node (`spec.models[].node`). */
  isModelPlacedOn(model: string, node: string): boolean {
    return this.informers.packageDefs.cache.countByIndex(INDEX_PLACEMENT, placementKey(model, node)) > 0;
  }

  storedModelState(name: string): CacheEntry<StoredState<ModelState>> | undefined {
    return this.informers.modelStates.cache.get(this.keys.stateKey('model', name));
  }

  storedPackageState(name: string): CacheEntry<StoredState<PackageState>> | undefined {
    return this.informers.packageStates.cache.get(this.keys.stateKey('package', name));
  }

  /** Whether `Scenario/{name}` holds a valid definition. */
  isScenarioDefined(name: string): boolean {
    return this.informers.scenarioDefs.cache.get(this.keys.scenarioDefKey(name)) !== undefined;
  }

  /** The first scenario by name whose spec.target is the package, or the package's own name. */
  scenarioFor(pkg: string): string {
    let first: string | undefined;
    for (const key of this.informers.scenarioDefs.cache.keysByIndex(INDEX_TARGET, pkg)) {
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
      for (const m of this.informers.packageDefs.cache.indexValues(INDEX_MODEL)) names.add(m);
      for (const k of this.informers.modelStates.cache.keys()) add(this.keys.parseStateKey('model', k));
    } else if (kind === 'package') {
      for (const k of this.informers.packageDefs.cache.keys()) add(this.keys.parsePackageDefKey(k));
      for (const k of this.informers.packageStates.cache.keys()) add(this.keys.parseStateKey('package', k));
    } else if (kind === 'request') {
      for (const k of this.informers.requests.cache.keys()) add(this.keys.parseReconcileRequestKey(k));
    }
    return names;
  }

  // --- the state API's reads (contract section 5): any kind's stored state, by name ---

  storedState(kind: ResourceKind, name: string): CacheEntry<StoredState<string>> | undefined {
    return this.states(kind).cache.get(this.keys.stateKey(kind, name));
  }

  /** Every stored state of a kind, with its name. */
  *storedStates(kind: ResourceKind): Generator<[string, CacheEntry<StoredState<string>>]> {
    for (const e of this.states(kind).cache.values()) {
      const name = this.keys.parseStateKey(kind, e.key);
      if (name !== undefined) yield [name, e];
    }
  }

  /** The etcd revision the kind's state cache has caught up with. */
  stateRevision(kind: ResourceKind): number {
    return this.states(kind).lastRevision;
  }

  /** The newest revision of an own state write the kind's cache holds ahead of its watch, else stateRevision (Informer.aheadRevision). */
  stateAheadRevision(kind: ResourceKind): number {
    return this.states(kind).aheadRevision;
  }

  /** Resolves once the kind's state cache has reached `revision` through its watch. */
  stateReached(kind: ResourceKind, revision: number): Promise<void> {
    return this.states(kind).reached(revision);
  }

  /** Keys the kind's state cache holds (every state key under its prefix; other keys there are not held). */
  stateKeyCount(kind: ResourceKind): number {
    return this.states(kind).cache.size;
  }

  private states(kind: ResourceKind): Informer<StoredState<string>> {
    const i = this.informers;
    // Read-only here, so a cache of narrower state names may be read as one of strings.
    return (kind === 'model' ? i.modelStates : kind === 'package' ? i.packageStates : i.scenarioStates) as unknown as Informer<StoredState<string>>;
  }
}
