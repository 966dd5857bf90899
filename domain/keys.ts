// The etcd key layout of contract section 1, under an optional global prefix, plus
// statemanager's own bookkeeping under /statemanager/. Parsing is done once per key here so
// the rest of the code deals in names, not strings with slashes.
import type { ResourceKind } from './states.js';
import { nameCharacterProblem } from './names.js';

export interface ContainerKey {
  node: string;
  id: string;
}

export class KeyLayout {
  readonly containers: string;
  readonly packageDefs: string;
  readonly scenarioDefs: string;
  readonly modelDefs: string;
  readonly nodes: string;
  readonly modelStates: string;
  readonly packageStates: string;
  readonly scenarioStates: string;
  readonly own: string;
  readonly history: string;
  readonly reconcileRequests: string;
  readonly resyncRequests: string;
  readonly offloading: string;
  readonly leader: string;
  /** Written by a replay to learn where etcd's history ends (src/state-api/replay-pool.ts). */
  readonly replayMarker: string;

  constructor(readonly prefix = '') {
    this.containers = `${prefix}/container/`;
    this.packageDefs = `${prefix}Package/`;
    this.scenarioDefs = `${prefix}Scenario/`;
    this.modelDefs = `${prefix}Model/`;
    this.nodes = `${prefix}/node/`;
    this.modelStates = `${prefix}/model/`;
    this.packageStates = `${prefix}/package/`;
    this.scenarioStates = `${prefix}/scenario/`;
    this.own = `${prefix}/statemanager/`;
    this.history = `${this.own}history/`;
    this.reconcileRequests = `${this.own}reconcile/`;
    this.resyncRequests = `${this.own}resync/`;
    this.offloading = `${this.own}offloading/`;
    this.leader = `${this.own}leader`;
    this.replayMarker = `${this.own}replay-marker`;
  }

  containerKey(node: string, id: string): string {
    return `${this.containers}${node}/${id}`;
  }

  containerPrefix(node: string): string {
    return `${this.containers}${node}/`;
  }

  /** `/container/{node}/{id}`; the id is everything after the node, so it may hold slashes. */
  parseContainerKey(key: string): ContainerKey | undefined {
    if (!key.startsWith(this.containers)) return undefined;
    const rest = key.slice(this.containers.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) return undefined;
    return { node: rest.slice(0, slash), id: rest.slice(slash + 1) };
  }

  nodeStatusKey(node: string): string {
    return `${this.nodes}${node}/status`;
  }

  parseNodeStatusKey(key: string): string | undefined {
    return middle(key, this.nodes, '/status');
  }

  /** `/node/{node}/lease`: attached to an etcd lease the node agent keeps alive (contract §1). */
  nodeLeaseKey(node: string): string {
    return `${this.nodes}${node}/lease`;
  }

  parseNodeLeaseKey(key: string): string | undefined {
    return middle(key, this.nodes, '/lease');
  }

  packageDefKey(name: string): string {
    return this.packageDefs + name;
  }

  scenarioDefKey(name: string): string {
    return this.scenarioDefs + name;
  }

  parsePackageDefKey(key: string): string | undefined {
    return tail(key, this.packageDefs);
  }

  parseScenarioDefKey(key: string): string | undefined {
    return tail(key, this.scenarioDefs);
  }

  statePrefix(kind: ResourceKind): string {
    return kind === 'model' ? this.modelStates : kind === 'package' ? this.packageStates : this.scenarioStates;
  }

  stateKey(kind: ResourceKind, name: string): string {
    return `${this.statePrefix(kind)}${name}/state`;
  }

  /**
   * The name of `/{kind}/{name}/state`, or undefined for any other key, and for a name no client
   * could read by name (not UTF-8 as itself, control or invisible characters: written by someone
   * else as raw bytes, say; deleting its U+FFFD spelling would never remove it).
   */
  parseStateKey(kind: ResourceKind, key: string): string | undefined {
    const name = middle(key, this.statePrefix(kind), '/state');
    return name !== undefined && nameCharacterProblem(name) === undefined ? name : undefined;
  }

  /** Whether `key` is shaped as a state key, whatever its name holds. */
  isStateKeyShape(kind: ResourceKind, key: string): boolean {
    return middle(key, this.statePrefix(kind), '/state') !== undefined;
  }

  /** History entries sort by key: the sequence is zero-padded. */
  historyPrefix(kind: ResourceKind, name: string): string {
    return `${this.history}${kind}/${name}/`;
  }

  historyKey(kind: ResourceKind, name: string, seq: number): string {
    return this.historyPrefix(kind, name) + String(seq).padStart(12, '0');
  }

  reconcileRequestKey(pkg: string): string {
    return this.reconcileRequests + pkg;
  }

  parseReconcileRequestKey(key: string): string | undefined {
    return tail(key, this.reconcileRequests);
  }

  /** TriggerOffloading records of one model; ids sort by time. */
  offloadingPrefix(model: string): string {
    return `${this.offloading}${model}/`;
  }

  resyncRequestKey(id: string): string {
    return this.resyncRequests + id;
  }

  parseResyncRequestKey(key: string): string | undefined {
    return tail(key, this.resyncRequests);
  }
}

function tail(key: string, prefix: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  return name.length > 0 && !name.includes('/') ? name : undefined;
}

function middle(key: string, prefix: string, suffix: string): string | undefined {
  if (!key.startsWith(prefix) || !key.endsWith(suffix)) return undefined;
  const name = key.slice(prefix.length, key.length - suffix.length);
  return name.length > 0 && !name.includes('/') ? name : undefined;
}
