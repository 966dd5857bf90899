// The watched world: one informer per key prefix, decoded once per change into the small
// values the rules need, with the indexes that let a change find what it affects
// (container → model, node → containers, model → packages, package → scenarios).
import type { CacheEntry } from '../controller/indexed-cache.js';
import { Informer, type InformerMetrics } from '../controller/informer.js';
import type { ListerWatcher } from '../controller/lister-watcher.js';
import type { Logger } from '../controller/logger.js';
import { parseContainer, parseNodeStatus, type ParsedContainer } from './container.js';
import { parsePackageDefinition, parseScenarioDefinition } from './definitions.js';
import type { KeyLayout } from './keys.js';
import type { DomainObserver } from './observer.js';
import type { ReconcileRequestRecord } from './ports.js';
import { parseResyncRequest, type ResyncRequest } from './resync-request-format.js';
import { parseState, type ModelState, type PackageState, type ResourceKind, type StateOf } from './states.js';

export interface ContainerEntry extends ParsedContainer {
  node: string;
}

export interface StoredState<S> {
  /** undefined when the stored value is not a state name: it counts as absent and is repaired. */
  state: S | undefined;
  raw: string;
}

export interface StoredRequest {
  /** undefined when the stored record cannot be read. */
  record: ReconcileRequestRecord | undefined;
}

export const INDEX_MODEL = 'model';
export const INDEX_NODE = 'node';
export const INDEX_TARGET = 'target';

export interface FleetOptions {
  keys: KeyLayout;
  lw: ListerWatcher;
  observer: DomainObserver;
  logger?: Logger;
  metrics?: InformerMetrics;
}

export class Fleet {
  readonly keys: KeyLayout;
  readonly containers: Informer<ContainerEntry>;
  readonly nodes: Informer<boolean>;
  readonly packageDefs: Informer<readonly string[]>;
  readonly scenarioDefs: Informer<string>;
  readonly modelStates: Informer<StoredState<ModelState>>;
  readonly packageStates: Informer<StoredState<PackageState>>;
  readonly requests: Informer<StoredRequest>;
  readonly resyncRequests: Informer<ResyncRequest>;
  private readonly noModelReported = new Set<string>();

  constructor(o: FleetOptions) {
    const keys = (this.keys = o.keys);
    const obs = o.observer;
    const common = { lw: o.lw, logger: o.logger, metrics: o.metrics };

    this.containers = new Informer<ContainerEntry>({
      ...common,
      name: 'containers',
      prefix: keys.containers,
      parse: (key, value) => {
        const where = keys.parseContainerKey(key);
        if (!where) {
          obs.invalidInput('bad_key', key, 'expected /container/{node}/{containerId}');
          return undefined;
        }
        const parsed = parseContainer(value, where.id);
        if (!parsed.ok) {
          if (parsed.reason !== 'no_model') {
            this.noModelReported.delete(key);
            obs.invalidInput(parsed.reason, key, parsed.detail);
          } else if (!this.noModelReported.has(key)) {
            // Logged once per key: agents report such containers on every change.
            this.noModelReported.add(key);
            obs.invalidInput('no_model', key, parsed.detail);
          }
          return undefined;
        }
        this.noModelReported.delete(key);
        if (parsed.unknownStatus) obs.invalidInput('unknown_status', key, `status ${parsed.container.rawStatus ?? ''}`);
        // Built field by field, not by spread: a spread copy plus one more property gives every
        // entry its own hidden class in V8 (about 200 bytes each, 20 MB at 100k containers).
        const c = parsed.container;
        const entry: ContainerEntry = { id: c.id, model: c.model, status: c.status, node: where.node };
        if (c.rawStatus !== undefined) entry.rawStatus = c.rawStatus;
        return entry;
      },
    });
    this.containers.cache.addIndex(INDEX_MODEL, (_k, c) => [c.model]);
    this.containers.cache.addIndex(INDEX_NODE, (_k, c) => [c.node]);

    this.nodes = new Informer<boolean>({
      ...common,
      name: 'nodes',
      prefix: keys.nodes,
      parse: (key, value) => {
        if (keys.parseNodeStatusKey(key) === undefined) return undefined; // other node keys are not ours
        const status = parseNodeStatus(value);
        if (!status.valid) obs.invalidInput('bad_node_status', key, `value ${JSON.stringify(value.slice(0, 64))} counts as Ready`);
        return status.ready;
      },
    });

    this.packageDefs = new Informer<readonly string[]>({
      ...common,
      name: 'packages',
      prefix: keys.packageDefs,
      parse: (key, value) => {
        if (keys.parsePackageDefKey(key) === undefined) {
          obs.invalidInput('bad_key', key, 'expected Package/{name}');
          return undefined;
        }
        const def = parsePackageDefinition(value);
        if (!def.ok) {
          obs.invalidInput(`package_${def.reason}`, key, def.detail);
          return undefined;
        }
        return def.models;
      },
    });
    this.packageDefs.cache.addIndex(INDEX_MODEL, (_k, models) => models);

    this.scenarioDefs = new Informer<string>({
      ...common,
      name: 'scenarios',
      prefix: keys.scenarioDefs,
      parse: (key, value) => {
        if (keys.parseScenarioDefKey(key) === undefined) {
          obs.invalidInput('bad_key', key, 'expected Scenario/{name}');
          return undefined;
        }
        const def = parseScenarioDefinition(value);
        if (!def.ok) {
          obs.invalidInput(`scenario_${def.reason}`, key, def.detail);
          return undefined;
        }
        return def.target;
      },
    });
    this.scenarioDefs.cache.addIndex(INDEX_TARGET, (_k, target) => [target]);

    const stateInformer = <K extends 'model' | 'package'>(kind: K): Informer<StoredState<StateOf<K>>> =>
      new Informer<StoredState<StateOf<K>>>({
        ...common,
        name: `${kind}-states`,
        prefix: keys.statePrefix(kind),
        parse: (key, raw) => {
          if (keys.parseStateKey(kind, key) === undefined) return undefined; // not a state key
          const state = parseState(kind, raw);
          if (state === undefined) obs.invalidInput('bad_state_value', key, `${JSON.stringify(raw.slice(0, 64))} is not a ${kind} state; recomputing`);
          return { state, raw };
        },
      });
    this.modelStates = stateInformer('model');
    this.packageStates = stateInformer('package');

    this.requests = new Informer<StoredRequest>({
      ...common,
      name: 'reconcile-requests',
      prefix: keys.reconcileRequests,
      parse: (key, value) => {
        if (keys.parseReconcileRequestKey(key) === undefined) return undefined;
        try {
          const record = JSON.parse(value) as ReconcileRequestRecord;
          if (typeof record !== 'object' || record === null || typeof record.package !== 'string') throw new Error('not a request record');
          return { record };
        } catch (err) {
          obs.invalidInput('bad_reconcile_request', key, (err as Error).message);
          return { record: undefined };
        }
      },
    });

    this.resyncRequests = new Informer<ResyncRequest>({
      ...common,
      name: 'resync-requests',
      prefix: keys.resyncRequests,
      parse: (key, value) => {
        const req = parseResyncRequest(value);
        if (!req) obs.invalidInput('bad_resync_request', key, 'expected {"kind":"all"} or {"kind":"model"|"package","name":...}');
        // An unreadable request still resyncs everything: the operator asked for something.
        return req ?? { kind: 'all' };
      },
    });
  }

  private all: readonly Informer<unknown>[] | undefined;

  /** This process's own committed writes, into the informers that watch them (client-go's MutationCache). */
  assume(changes: readonly Parameters<Informer<unknown>['assume']>[0][]): void {
    for (const change of changes) this.informers().find((i) => change.key.startsWith(i.prefix))?.assume(change);
  }

  informers(): readonly Informer<unknown>[] {
    this.all ??= [
      this.resyncRequests,
      this.containers,
      this.nodes,
      this.packageDefs,
      this.scenarioDefs,
      this.modelStates,
      this.packageStates,
      this.requests,
    ] as Informer<unknown>[];
    return this.all;
  }

  start(): void {
    for (const i of this.informers()) i.start();
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.waitForSync()));
  }

  hasSynced(): boolean {
    return this.informers().every((i) => i.hasSynced());
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  // --- reads the reconcilers need ---

  nodeReady(node: string): boolean {
    return this.nodes.cache.get(this.keys.nodeStatusKey(node))?.value ?? true;
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
    return this.packageDefs.cache.get(this.keys.packageDefKey(pkg))?.value;
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
