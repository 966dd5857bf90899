// What the controller keeps in etcd, read through the controller's own parsers: definitions,
// stored states, containers with the status the controller computes, history, offloading records
// and reconcile requests; each kind of key read once per command, at the command's snapshot.
import { parseHistoryEntry } from '../../domain/history-entry.js';
import { parseOffloadingRecord, type OffloadingRecord } from '../offloading/record.js';
import { effectiveStatus, parseContainer, parseNodeStatus } from '../../domain/container.js';
import { parsePackageDefinition, parseScenarioDefinition } from '../../domain/definitions.js';
import type { HistoryEntry, ReconcileRequestRecord } from '../../reconcilers/ports.js';
import { parseState, type ContainerStatus, type ResourceKind } from '../../domain/states.js';
import type { KeyLayout } from '../../domain/keys.js';
import { compare, notFound } from './kinds.js';
import type { Snapshot } from './snapshot.js';

/** Above this many resources, `get` reads a kind's whole history at once instead of one key each. */
export const BULK_HISTORY = 64;

export type PackageDef = { ok: true; models: string[] } | { ok: false; error: string };
export type ScenarioDef = { ok: true; target: string } | { ok: false; error: string };

export interface StoredState {
  /** The canonical name, or the stored text when it is not a valid state. */
  state: string;
  valid: boolean;
}

export interface ContainerView {
  node: string;
  id: string;
  names: string[];
  image: string | undefined;
  model: string;
  /** The status as the controller counts it: `unknown` on a NotReady node. */
  status: ContainerStatus;
  /** The container's own status, from its node agent. */
  reported: ContainerStatus;
  /** The `/node/{node}/status` value, or "Ready" when absent. */
  nodeStatus: string;
}

export type RequestView = ({ valid: true } & ReconcileRequestRecord) | { valid: false; raw: string };

/** Reads etcd once per kind of key and keeps the result for the rest of the command. */
export class EtcdReader {
  private memo = new Map<string, Promise<unknown>>();

  constructor(
    private readonly snapshot: Snapshot,
    private readonly keys: KeyLayout,
  ) {}

  private once<T>(key: string, load: () => Promise<T>): Promise<T> {
    let p = this.memo.get(key) as Promise<T> | undefined;
    if (!p) {
      p = load();
      this.memo.set(key, p);
    }
    return p;
  }

  packageDefs(): Promise<Map<string, PackageDef>> {
    return this.once('packages', async () => {
      const out = new Map<string, PackageDef>();
      for (const kv of await this.snapshot.range(this.keys.packageDefs)) {
        const name = this.keys.parsePackageDefKey(kv.key);
        if (name === undefined) continue;
        const def = parsePackageDefinition(kv.value);
        out.set(name, def.ok ? { ok: true, models: def.models } : { ok: false, error: def.detail });
      }
      return out;
    });
  }

  scenarioDefs(): Promise<Map<string, ScenarioDef>> {
    return this.once('scenarios', async () => {
      const out = new Map<string, ScenarioDef>();
      for (const kv of await this.snapshot.range(this.keys.scenarioDefs)) {
        const name = this.keys.parseScenarioDefKey(kv.key);
        if (name === undefined) continue;
        const def = parseScenarioDefinition(kv.value);
        out.set(name, def.ok ? { ok: true, target: def.target } : { ok: false, error: def.detail });
      }
      return out;
    });
  }

  states(kind: ResourceKind): Promise<Map<string, StoredState>> {
    return this.once(`states/${kind}`, async () => {
      const out = new Map<string, StoredState>();
      for (const kv of await this.snapshot.range(this.keys.statePrefix(kind))) {
        const name = this.keys.parseStateKey(kind, kv.key);
        if (name === undefined) continue;
        const state = parseState(kind, kv.value);
        out.set(name, state === undefined ? { state: kv.value, valid: false } : { state, valid: true });
      }
      return out;
    });
  }

  /** Model name → the packages listing it, in name order. */
  async modelPackages(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const defs = [...(await this.packageDefs())].sort(([a], [b]) => compare(a, b));
    for (const [pkg, def] of defs) {
      if (!def.ok) continue;
      for (const m of def.models) {
        const list = out.get(m);
        if (list) list.push(pkg);
        else out.set(m, [pkg]);
      }
    }
    return out;
  }

  /** Every container that belongs to a model, with the status the controller counts. */
  containers(): Promise<ContainerView[]> {
    return this.once('containers', async () => {
      const nodes = new Map<string, string>();
      for (const kv of await this.snapshot.range(this.keys.nodes)) {
        const node = this.keys.parseNodeStatusKey(kv.key);
        if (node !== undefined) nodes.set(node, kv.value);
      }
      const out: ContainerView[] = [];
      for (const kv of await this.snapshot.range(this.keys.containers)) {
        const key = this.keys.parseContainerKey(kv.key);
        if (!key) continue;
        const parsed = parseContainer(kv.value, key.id);
        if (!parsed.ok) continue;
        const info = JSON.parse(kv.value) as { names?: unknown; image?: unknown };
        const nodeValue = nodes.get(key.node);
        const ready = parseNodeStatus(nodeValue).ready;
        out.push({
          node: key.node,
          id: key.id,
          names: Array.isArray(info.names) ? info.names.filter((n): n is string => typeof n === 'string') : [],
          image: typeof info.image === 'string' ? info.image : undefined,
          model: parsed.container.model,
          status: effectiveStatus(parsed.container.status, ready),
          reported: parsed.container.status,
          nodeStatus: nodeValue ?? 'Ready',
        });
      }
      return out;
    });
  }

  async containersByModel(): Promise<Map<string, ContainerView[]>> {
    const out = new Map<string, ContainerView[]>();
    for (const c of await this.containers()) {
      const list = out.get(c.model);
      if (list) list.push(c);
      else out.set(c.model, [c]);
    }
    return out;
  }

  /** The recorded transitions of one resource, oldest first; unreadable entries are skipped. */
  async history(kind: ResourceKind, name: string): Promise<HistoryEntry[]> {
    const out: HistoryEntry[] = [];
    for (const kv of await this.snapshot.range(this.keys.historyPrefix(kind, name))) {
      const entry = parseHistoryEntry(kv.value);
      if (entry) out.push(entry);
    }
    return out;
  }

  /**
   * The last recorded transition of each named resource: one newest-key lookup per resource for
   * a few, one paged read of the kind's whole history for many.
   */
  async lastTransitions(kind: ResourceKind, names: readonly string[]): Promise<Map<string, HistoryEntry>> {
    const out = new Map<string, HistoryEntry>();
    if (names.length > BULK_HISTORY) {
      const wanted = new Set(names);
      const base = `${this.keys.history}${kind}/`;
      const newest = new Map<string, string>();
      // Keys come in order, so the last one seen per resource is its newest entry.
      for (const kv of await this.snapshot.range(base)) {
        const rest = kv.key.slice(base.length);
        const slash = rest.lastIndexOf('/');
        const name = slash > 0 ? rest.slice(0, slash) : undefined;
        if (name !== undefined && wanted.has(name)) newest.set(name, kv.value);
      }
      for (const [name, value] of newest) {
        const entry = parseHistoryEntry(value);
        if (entry) out.set(name, entry);
      }
      return out;
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const name = names[next++]!;
        const kv = await this.snapshot.last(this.keys.historyPrefix(kind, name));
        const entry = kv ? parseHistoryEntry(kv.value) : undefined;
        if (entry) out.set(name, entry);
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, names.length) }, worker));
    return out;
  }

  /** The model's TriggerOffloading records, oldest first; unreadable ones are skipped. */
  async offloading(model: string): Promise<OffloadingRecord[]> {
    const prefix = this.keys.offloadingPrefix(model);
    const out: OffloadingRecord[] = [];
    for (const kv of await this.snapshot.range(prefix)) {
      if (kv.key.slice(prefix.length).includes('/')) continue; // another model's (`a/` is not `a/b/`)
      const r = parseOffloadingRecord(kv.value);
      if (r) out.push(r);
    }
    return out;
  }

  async reconcileRequest(pkg: string): Promise<RequestView | undefined> {
    const kv = await this.snapshot.get(this.keys.reconcileRequestKey(pkg));
    if (!kv) return undefined;
    try {
      const rec = JSON.parse(kv.value) as ReconcileRequestRecord;
      if (typeof rec === 'object' && rec !== null && typeof rec.deliveries === 'number') return { valid: true, ...rec };
    } catch {
      // fall through
    }
    return { valid: false, raw: kv.value };
  }

  /** The scenario whose spec.target is the package: the first by name, as the controller picks. */
  async scenarioFor(pkg: string): Promise<string | undefined> {
    let first: string | undefined;
    for (const [name, def] of await this.scenarioDefs()) {
      if (def.ok && def.target === pkg && (first === undefined || compare(name, first) < 0)) first = name;
    }
    return first;
  }

  /** The names `get KIND` lists: definitions (or references) and stored states, sorted. */
  async names(kind: ResourceKind): Promise<string[]> {
    const names = new Set((await this.states(kind)).keys());
    if (kind === 'package') for (const n of (await this.packageDefs()).keys()) names.add(n);
    if (kind === 'scenario') for (const n of (await this.scenarioDefs()).keys()) names.add(n);
    if (kind === 'model') for (const n of (await this.modelPackages()).keys()) names.add(n);
    return [...names].sort(compare);
  }

  async exists(kind: ResourceKind, name: string): Promise<boolean> {
    if ((await this.states(kind)).has(name)) return true;
    if (kind === 'package') return (await this.packageDefs()).has(name);
    if (kind === 'scenario') return (await this.scenarioDefs()).has(name);
    return (await this.modelPackages()).has(name);
  }

  async mustExist(kind: ResourceKind, name: string): Promise<void> {
    if (!(await this.exists(kind, name))) throw notFound(kind, name);
  }
}
