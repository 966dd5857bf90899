// The fault suite's world: a fleet written straight into etcd, storms of container updates,
// and the checks every scenario ends with — an independent recomputation of every state from
// etcd's final contents (test/bench/lib/oracle.ts: the contract read from its text, not the
// project's rules), no write of a value a key already had, and reconcile accounting.
import type { Etcd3 } from 'etcd3';
import { rng } from '../bench/lib/common.js';
import { checkWorld, readWorld, type CheckResult } from '../bench/lib/oracle.js';
import type { Replica } from '../helpers/replica.js';

export interface FleetShape {
  nodes: number;
  packages: number;
  modelsPerPackage: number;
  containersPerModel: number;
}

export const SMALL_FLEET: FleetShape = { nodes: 8, packages: 250, modelsPerPackage: 2, containersPerModel: 2 };

export const STATUSES = ['running', 'running', 'running', 'exited', 'paused', 'dead', 'created'] as const;

export interface ContainerRef {
  node: string;
  id: string;
  model: string;
}

export class FaultFleet {
  readonly containers: ContainerRef[] = [];
  readonly packages: { name: string; node: string; models: string[] }[] = [];

  constructor(readonly shape: FleetShape = SMALL_FLEET) {
    for (let p = 0; p < shape.packages; p++) {
      const node = `node-${p % shape.nodes}`;
      const models: string[] = [];
      for (let m = 0; m < shape.modelsPerPackage; m++) {
        const model = `p${p}-m${m}`;
        models.push(model);
        for (let c = 0; c < shape.containersPerModel; c++) this.containers.push({ node, id: `${model}-c${c}`, model });
      }
      this.packages.push({ name: `p${p}`, node, models });
    }
  }

  static containerValue(ref: ContainerRef, status: string, padBytes = 0): string {
    return JSON.stringify({
      id: ref.id,
      names: [ref.id],
      image: 'registry.local/app:1',
      state: { Status: status },
      config: padBytes > 0 ? { pad: 'x'.repeat(padBytes) } : {},
      annotation: { 'io.pullpiri.annotations.model': ref.model },
    });
  }

  static packageYaml(name: string, node: string, models: readonly string[]): string {
    return ['apiVersion: v1', 'kind: Package', 'metadata:', `  name: ${name}`, 'spec:', '  models:', ...models.flatMap((m) => [`    - name: ${m}`, `      node: ${node}`])].join('\n');
  }

  /** Every package definition and container (all running), in transactions of 100 puts. */
  async seed(c: Etcd3): Promise<number> {
    const puts: [string, string][] = [
      ...this.packages.map((p) => [`Package/${p.name}`, FaultFleet.packageYaml(p.name, p.node, p.models)] as [string, string]),
      ...this.containers.map((r) => [`/container/${r.node}/${r.id}`, FaultFleet.containerValue(r, 'running')] as [string, string]),
    ];
    let revision = 0;
    for (let i = 0; i < puts.length; i += 100) {
      const ops = puts.slice(i, i + 100).map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } }));
      const res = await c.kv.txn({ compare: [], success: ops, failure: [] });
      revision = Number(res.header.revision);
    }
    return revision;
  }
}

export interface StormOptions {
  /** Stop after this many updates... */
  updates?: number;
  /** ...or after this long. */
  durationMs?: number;
  /** Updates per second (0: as fast as etcd takes them). */
  rate?: number;
  inFlight?: number;
  padBytes?: number;
  seed?: number;
  /** Share of updates that delete the container instead (0..1). */
  deleteShare?: number;
  /** Keep going through etcd errors (an etcd restart under load) instead of failing. */
  tolerateErrors?: boolean;
  stop?: () => boolean;
}

export interface StormResult {
  written: number;
  failed: number;
  lastRevision: number;
  /** When the last successful write was acknowledged (Date.now()). */
  lastWriteAt: number;
}

/** Random container status changes (and deletions) across the fleet. */
export async function storm(c: Etcd3, fleet: FaultFleet, o: StormOptions): Promise<StormResult> {
  const random = rng(o.seed ?? 1);
  const started = Date.now();
  const result: StormResult = { written: 0, failed: 0, lastRevision: 0, lastWriteAt: 0 };
  let issued = 0;
  const done = (): boolean =>
    (o.updates !== undefined && issued >= o.updates) || (o.durationMs !== undefined && Date.now() - started >= o.durationMs) || (o.stop?.() ?? false);
  const worker = async (): Promise<void> => {
    while (!done()) {
      const n = issued++;
      if (o.rate) {
        const due = started + (n * 1000) / o.rate;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const ref = fleet.containers[Math.floor(random() * fleet.containers.length)]!;
      const key = `/container/${ref.node}/${ref.id}`;
      try {
        const res =
          random() < (o.deleteShare ?? 0)
            ? await c.delete().key(key).exec()
            : await c.put(key).value(FaultFleet.containerValue(ref, STATUSES[Math.floor(random() * STATUSES.length)]!, o.padBytes ?? 0)).exec();
        result.written++;
        result.lastRevision = Math.max(result.lastRevision, Number(res.header.revision));
        result.lastWriteAt = Date.now();
      } catch (err) {
        result.failed++;
        if (!o.tolerateErrors) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: o.inFlight ?? 32 }, worker));
  return result;
}

/** Poll the oracle until every model and package state is right; ms from `since` until then. */
export async function waitConverged(c: Etcd3, timeoutMs: number, since = Date.now()): Promise<{ ms: number; check: CheckResult }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let check: CheckResult;
    try {
      check = checkWorld(await readWorld(c));
    } catch (err) {
      check = { ok: false, checked: { models: 0, packages: 0 }, mismatches: [`cannot read etcd: ${(err as Error).message}`], mismatchCount: 1 };
    }
    if (check.ok) return { ms: Date.now() - since, check };
    if (Date.now() > deadline) return { ms: -1, check };
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface HistoryEntry {
  kind: string;
  name: string;
  from: string | null;
  to: string;
  /** ISO time of the decision. */
  at: string;
  source: string;
}

/** Every history entry statemanager keeps (the last `history.length` per key). */
export async function history(c: Etcd3): Promise<HistoryEntry[]> {
  const all = await c.getAll().prefix('/statemanager/history/').strings();
  return Object.values(all).map((v) => JSON.parse(v) as HistoryEntry);
}

/** History entries that record a write of the value the key already had. */
export function redundantWrites(entries: readonly HistoryEntry[]): HistoryEntry[] {
  return entries.filter((e) => e.from !== null && e.from !== undefined && e.from.toLowerCase() === e.to.toLowerCase());
}

/** How many times each package entered Error, from the history. */
export function errorEntries(entries: readonly HistoryEntry[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of entries) if (e.kind === 'package' && e.to === 'Error') out.set(e.name, (out.get(e.name) ?? 0) + 1);
  return out;
}

export function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const i of items) out.set(key(i), (out.get(key(i)) ?? 0) + 1);
  return out;
}

/** Fault-suite statemanager settings: no repeats (reconcile counts stay exact), fast retries. */
export function faultConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log: { level: process.env.FAULT_LOGS ? 'debug' : 'info' },
    leaderElection: { enabled: false },
    reconcile: { repeatInitial: 0, retryBase: '100ms', retryCap: '1s' },
    etcd: { requestTimeout: '2s' },
    ...extra,
  };
}

/** The replica's process has neither exited nor been killed. */
export function alive(r: Replica): boolean {
  return r.process.exitCode === null && r.process.signalCode === null;
}
