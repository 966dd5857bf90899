// State writes as single etcd transactions: the state key guarded by the revision the writer
// saw (so two writers never lose an update), its history entry, its reconcile request, and the
// leader guard when one is configured — all or nothing.
import type { Etcd3, ICompare, IRequestOp, ITxnResponse } from 'etcd3';
import type { KeyValue } from '../../controller/lister-watcher.js';
import type { KeyLayout } from '../../reconcilers/keys.js';
import type {
  CommitOutcome,
  ReconcileRequestRecord,
  StateDeletion,
  StateStore,
  StateTransition,
  StoredRevision,
} from '../../reconcilers/ports.js';
import { prefixEnd } from './lister-watcher.js';

/** Extra conditions every write must meet (leadership); a write that fails them throws. */
export interface WriteGuard {
  compares(): ICompare[];
  /** Called after a failed transaction to tell a lost guard from a lost race; throws if lost. */
  verify(): Promise<void>;
}

export type CommittedChange = KeyValue | { key: string; deletedAt: number };

export interface EtcdStateStoreOptions {
  client: Etcd3;
  keys: KeyLayout;
  historyLength: number;
  requestTimeoutMs: number;
  guard?: WriteGuard;
  /** Told about every committed change so caches can read their own writes at once. */
  onCommit?: (changes: CommittedChange[]) => void;
}

export class EtcdStateStore implements StateStore {
  constructor(private readonly o: EtcdStateStoreOptions) {}

  async writeState(t: StateTransition): Promise<CommitOutcome> {
    const { keys, historyLength } = this.o;
    const stateKey = keys.stateKey(t.kind, t.name);
    const version = (t.expected?.version ?? 0) + 1;
    const historyKey = keys.historyKey(t.kind, t.name, version);
    const compare: ICompare[] = [guardOn(stateKey, t.expected)];
    const success: IRequestOp[] = [put(stateKey, t.to), put(historyKey, JSON.stringify(t.history))];
    if (historyLength > 0 && version > historyLength) {
      success.push(delRange(keys.historyKey(t.kind, t.name, 0), keys.historyKey(t.kind, t.name, version - historyLength + 1)));
    }
    const requestKey = keys.reconcileRequestKey(t.name);
    if (t.reconcileRequest && 'put' in t.reconcileRequest) {
      success.push(put(requestKey, JSON.stringify(t.reconcileRequest.put)));
    } else if (t.reconcileRequest) {
      success.push(delKey(requestKey));
    }
    const res = await this.commit(compare, success);
    if (!res.succeeded) return { committed: false };
    const revision = Number(res.header.revision);
    const changes: CommittedChange[] = [
      { key: stateKey, value: t.to, modRevision: revision, createRevision: t.expected ? 0 : revision, version },
    ];
    if (t.reconcileRequest && 'put' in t.reconcileRequest) {
      changes.push(kvAt(requestKey, JSON.stringify(t.reconcileRequest.put), revision));
    } else if (t.reconcileRequest) {
      changes.push({ key: requestKey, deletedAt: revision });
    }
    this.o.onCommit?.(changes);
    return { committed: true, revision };
  }

  async deleteState(d: StateDeletion): Promise<CommitOutcome> {
    const { keys } = this.o;
    const stateKey = keys.stateKey(d.kind, d.name);
    const historyPrefix = Buffer.from(keys.historyPrefix(d.kind, d.name));
    const success: IRequestOp[] = [
      delKey(stateKey),
      { request_delete_range: { key: historyPrefix, range_end: prefixEnd(historyPrefix) } },
    ];
    const requestKey = keys.reconcileRequestKey(d.name);
    if (d.deleteReconcileRequest) success.push(delKey(requestKey));
    const res = await this.commit([guardOn(stateKey, d.expected)], success);
    if (!res.succeeded) return { committed: false };
    const revision = Number(res.header.revision);
    const changes: CommittedChange[] = [{ key: stateKey, deletedAt: revision }];
    if (d.deleteReconcileRequest) changes.push({ key: requestKey, deletedAt: revision });
    this.o.onCommit?.(changes);
    return { committed: true, revision };
  }

  async updateReconcileRequest(record: ReconcileRequestRecord, expected: StoredRevision): Promise<CommitOutcome> {
    const key = this.o.keys.reconcileRequestKey(record.package);
    const value = JSON.stringify(record);
    const res = await this.commit([guardOn(key, expected)], [put(key, value)]);
    if (!res.succeeded) return { committed: false };
    const revision = Number(res.header.revision);
    this.o.onCommit?.([kvAt(key, value, revision, expected.version + 1)]);
    return { committed: true, revision };
  }

  async deleteReconcileRequest(pkg: string, expected: StoredRevision): Promise<CommitOutcome> {
    const key = this.o.keys.reconcileRequestKey(pkg);
    const res = await this.commit([guardOn(key, expected)], [delKey(key)]);
    if (!res.succeeded) return { committed: false };
    const revision = Number(res.header.revision);
    this.o.onCommit?.([{ key, deletedAt: revision }]);
    return { committed: true, revision };
  }

  private async commit(compare: ICompare[], success: IRequestOp[]): Promise<ITxnResponse> {
    const guard = this.o.guard;
    const res = await this.o.client.kv.txn(
      { compare: guard ? [...compare, ...guard.compares()] : compare, success, failure: [] },
      { deadline: Date.now() + this.o.requestTimeoutMs },
    );
    if (!res.succeeded && guard) await guard.verify();
    return res;
  }
}

/** The key must still be where the writer saw it: same mod revision, or still absent. */
export function guardOn(key: string, expected: StoredRevision | undefined): ICompare {
  return expected
    ? { key: Buffer.from(key), result: 'Equal', target: 'Mod', mod_revision: expected.modRevision }
    : { key: Buffer.from(key), result: 'Equal', target: 'Create', create_revision: 0 };
}

function put(key: string, value: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
}

function delKey(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

function delRange(from: string, to: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(from), range_end: Buffer.from(to) } };
}

function kvAt(key: string, value: string, revision: number, version = 1): KeyValue {
  return { key, value, modRevision: revision, createRevision: 0, version };
}
