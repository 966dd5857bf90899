// State writes as single etcd transactions: the state key guarded by the revision the writer
// saw (so two writers never lose an update), its history entry, its reconcile request, and the
// leader guard when one is configured — all or nothing.
//
// Group commit: while `maxInFlight` transactions are outstanding, further writes wait and then
// go to etcd together, as one transaction holding every waiting write's compares and operations
// (never two writes touching the same key). When that transaction's compares do not all hold,
// each write is sent again on its own, so each still commits or fails exactly as it would have
// alone. Under light load every write goes out at once, alone; under heavy load etcd sees a
// few large transactions instead of many small ones, which is what it handles well.
//
// A batch that is already as large as a transaction may be does not wait: up to
// `maxFullInFlight` full transactions go out at once. With only `maxInFlight` the store carried at
// most two transactions' worth of writes per round trip, and at 3,000 package flips/s (6,000 state
// writes/s) the writes fell seconds behind (docs/performance.md); waiting for a slot only pays
// while it lets a batch grow.
//
// Transactions are written and read by hand (txn-request-encoder.ts, decodeTxnResponse) when
// the program gives the store its watch client's `txn`; otherwise, and in the simulation, they
// go through etcd3 in the same shapes (etcd3Txn).
import type { Etcd3, ICompare, IRequestOp } from 'etcd3';
import { asStoreError } from './errors.js';
import type { Logger } from '../../controller/logger.js';
import { isTooLarge } from '../../reconcilers/ports.js';
import type { Bytes, TxnCompare, TxnOp, TxnRequest } from './txn-request-encoder.js';
import type { DecodedTxnResponse } from './watch-response-decoder.js';
import type { OwnPut } from '../../controller/informer-set.js';
import type { KeyValue } from '../../controller/lister-watcher.js';
import type { KeyLayout } from '../../domain/keys.js';
import type {
  CommitOutcome,
  ReadGuard,
  ReconcileRequestRecord,
  StateDeletion,
  StateStore,
  StateTransition,
  StoredRevision,
} from '../../reconcilers/ports.js';
import { prefixEnd } from './lister-watcher.js';
import type { ResourceKind } from '../../domain/states.js';

/** Extra conditions every write must meet (leadership); a write that fails them throws. */
export interface WriteGuard {
  compares(): TxnCompare[];
  /** Called after a failed transaction to tell a lost guard from a lost race; throws if lost. */
  verify(): Promise<void>;
}

export type CommittedChange = KeyValue | { key: string; deletedAt: number };

/** Sends one transaction: EtcdWatchClient's hand-encoded `txn`, or etcd3's (etcd3Txn). */
export interface TxnSender {
  txn(req: TxnRequest, deadline: number): Promise<DecodedTxnResponse>;
}

export interface EtcdStateStoreOptions {
  client: Etcd3;
  /** How transactions go to etcd; default: through `client` (etcd3). */
  txn?: TxnSender;
  keys: KeyLayout;
  historyLength: number;
  requestTimeoutMs: number;
  guard?: WriteGuard;
  /** Told about every committed change so caches can read their own writes at once. */
  onCommit?: (changes: CommittedChange[]) => void;
  /**
   * Told about the watched puts of a write before it is sent and once it is answered (committed
   * or not), so a watch event that comes before the answer is known as this process's own.
   */
  ownPuts?: { sending(puts: readonly OwnPut[]): void; answered(puts: readonly OwnPut[]): void };
  /**
   * etcd's --max-txn-ops (default 128): grouped transactions stay under it. A group etcd refuses as
   * too large all the same (a lower limit, or its --max-request-bytes) is sent write by write, and
   * later groups are cut to half its size.
   */
  maxTxnOps?: number;
  /** Says when etcd's limits made the groups smaller. */
  logger?: Logger;
  /** Transactions outstanding at once before writes are grouped (default 2). */
  maxInFlight?: number;
  /** Transactions outstanding at once when the waiting writes fill whole transactions (default 8). */
  maxFullInFlight?: number;
  /** Test-only bug shapes the simulation must catch (test/sim/mutations.ts); never set otherwise. */
  plantedBugs?: { stateWriteWithoutCompare?: boolean; requestAfterState?: boolean };
}

/** The arrays one transaction is built into, sized beforehand, with how far each is filled; `puts` only when own puts are told (ownPuts). */
interface TxnParts {
  compare: TxnCompare[];
  success: TxnOp[];
  keys: string[];
  puts: OwnPut[] | undefined;
  compares: number;
  ops: number;
  keyCount: number;
  putCount: number;
}

/** What one transition wrote, for the caches once it commits. */
interface Written {
  stateKey: string;
  to: string;
  version: number;
  created: boolean;
  /** The reconcile request key when the transition puts (requestValue set) or removes it. */
  requestKey: string | undefined;
  requestValue: string | undefined;
}

/** The changes committed transitions made, at `revision`. */
function changesOf(written: readonly Written[], revision: number): CommittedChange[] {
  let n = 0;
  for (const w of written) n += w.requestKey === undefined ? 1 : 2;
  const changes = new Array<CommittedChange>(n);
  n = 0;
  for (const w of written) n = committedChanges(w, revision, changes, n);
  return changes;
}

/** The changes a committed transition made, at `revision`, written into `out` from `at`; returns where the next goes. */
function committedChanges(w: Written, revision: number, out: CommittedChange[], at: number): number {
  out[at++] = { key: w.stateKey, value: w.to, modRevision: revision, createRevision: w.created ? revision : 0, version: w.version };
  if (w.requestKey === undefined) return at;
  out[at++] = w.requestValue !== undefined ? kvAt(w.requestKey, w.requestValue, revision) : { key: w.requestKey, deletedAt: revision };
  return at;
}

interface TxnOutcome {
  succeeded: boolean;
  revision: number;
}

interface PendingWrite {
  compare: TxnCompare[];
  success: TxnOp[];
  /** Keys this write touches; two writes touching one key never share a transaction. */
  keys: string[];
  resolve(outcome: TxnOutcome): void;
  reject(err: unknown): void;
}

// etcd's default --max-txn-ops is 128 (per list); stay below it, guard compares included.
const MAX_BATCH_COMPARES = 100;
const MAX_BATCH_OPS = 120;
/** Compares a group leaves for the write guard's (the leader lock: one). */
const GUARD_COMPARES = 2;

export class EtcdStateStore implements StateStore {
  private readonly pending: PendingWrite[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private readonly maxInFlight: number;
  private readonly maxFullInFlight: number;
  private readonly sender: TxnSender;
  /** The most compares and operations of writes grouped into one transaction. */
  private batchCompares: number;
  private batchOps: number;

  constructor(private readonly o: EtcdStateStoreOptions) {
    this.sender = o.txn ?? etcd3Txn(o.client);
    const maxTxnOps = o.maxTxnOps ?? 128;
    this.batchCompares = Math.max(1, Math.min(MAX_BATCH_COMPARES, maxTxnOps - GUARD_COMPARES));
    this.batchOps = Math.max(1, Math.min(MAX_BATCH_OPS, maxTxnOps));
    this.maxInFlight = Math.max(1, o.maxInFlight ?? 2);
    this.maxFullInFlight = Math.max(this.maxInFlight, o.maxFullInFlight ?? 8);
  }

  writesWaiting(): number {
    return this.pending.length;
  }

  writeState(t: StateTransition): Promise<CommitOutcome> {
    return this.writeStates([t], []);
  }

  writeStates(transitions: readonly StateTransition[], unchanged: readonly ReadGuard[]): Promise<CommitOutcome> {
    if (this.o.plantedBugs?.requestAfterState && transitions.some((t) => t.reconcileRequest && 'put' in t.reconcileRequest)) {
      return this.writeRequestsAfterStates(transitions, unchanged);
    }
    // One pass into arrays of the exact size the transaction needs (this runs once per state
    // written: at a cold start of 100,000 containers the per-transition objects, closures and
    // flatMaps were a third of the write path's garbage, and arrays grown by push a quarter of
    // what was left: each first push reserves 16 slots).
    const txn = this.partsFor(transitions, unchanged.length);
    const written = new Array<Written>(transitions.length);
    for (let i = 0; i < transitions.length; i++) written[i] = this.addTransition(transitions[i]!, txn);
    for (const g of unchanged) {
      // The decision read these keys; a write to one of them must not share this transaction.
      const key = this.o.keys.stateKey(g.kind, g.name);
      txn.compare[txn.compares++] = guardOn(key, g.expected);
      txn.keys[txn.keyCount++] = key;
    }
    // Exact unless a count above and addTransition disagree: then no hole reaches the encoder.
    txn.compare.length = txn.compares;
    txn.success.length = txn.ops;
    txn.keys.length = txn.keyCount;
    if (txn.puts) txn.puts.length = txn.putCount;
    return this.committed(txn, written);
  }

  /**
   * Sends the write, the watched puts announced while it is under way, and tells the caches what
   * it changed. Its own async frame, holding only what the answer needs: a write's objects live
   * until etcd answers (20–50 ms at a cold start), and each one a scavenge finds is copied.
   */
  private async committed(txn: TxnParts, written: Written[]): Promise<CommitOutcome> {
    const own = this.o.ownPuts;
    if (own) own.sending(txn.puts!);
    let res: TxnOutcome;
    try {
      res = await this.commit(txn.compare, txn.success, txn.keys);
    } finally {
      if (own) own.answered(txn.puts!);
    }
    if (!res.succeeded) return { committed: false };
    if (this.o.onCommit) this.o.onCommit(changesOf(written, res.revision));
    return { committed: true, revision: res.revision };
  }

  /** Arrays sized for `transitions` and `guards` read guards (filled by addTransition, then the guards). */
  private partsFor(transitions: readonly StateTransition[], guards: number): TxnParts {
    const history = this.o.historyLength > 0;
    let compares = guards;
    let ops = 0;
    let keys = guards;
    let puts = 0;
    for (const t of transitions) {
      compares++;
      keys++;
      puts++;
      ops += 1 + (history ? ((t.expected?.version ?? 0) + 1 > this.o.historyLength ? 2 : 1) : 0);
      const request = t.reconcileRequest;
      if (request) {
        ops++;
        keys++;
        if ('put' in request) puts++;
      }
    }
    if (this.o.plantedBugs?.stateWriteWithoutCompare) compares -= transitions.length;
    return {
      compare: new Array<TxnCompare>(compares),
      success: new Array<TxnOp>(ops),
      keys: new Array<string>(keys),
      puts: this.o.ownPuts ? new Array<OwnPut>(puts) : undefined,
      compares: 0,
      ops: 0,
      keyCount: 0,
      putCount: 0,
    };
  }

  /** `commit`, with `puts` (when own puts are told) announced while it is under way. */
  private async announced(puts: OwnPut[] | undefined, compare: TxnCompare[], success: TxnOp[], keys: string[]): Promise<TxnOutcome> {
    const own = this.o.ownPuts;
    if (!own || !puts) return this.commit(compare, success, keys);
    own.sending(puts);
    try {
      return await this.commit(compare, success, keys);
    } finally {
      own.answered(puts);
    }
  }

  /** One transition's compares and operations into `txn`: the guarded state, its history, its request. */
  private addTransition(t: StateTransition, txn: TxnParts): Written {
    const { keys, historyLength } = this.o;
    const stateKey = keys.stateKey(t.kind, t.name);
    const version = (t.expected?.version ?? 0) + 1;
    if (!this.o.plantedBugs?.stateWriteWithoutCompare) txn.compare[txn.compares++] = guardOn(stateKey, t.expected);
    txn.success[txn.ops++] = put(stateKey, t.to);
    txn.keys[txn.keyCount++] = stateKey;
    if (txn.puts) txn.puts[txn.putCount++] = { key: stateKey, value: t.to };
    if (historyLength > 0) {
      txn.success[txn.ops++] = put(keys.historyKey(t.kind, t.name, version), JSON.stringify(t.history));
      if (version > historyLength) txn.success[txn.ops++] = delRange(keys.historyKey(t.kind, t.name, 0), keys.historyKey(t.kind, t.name, version - historyLength + 1));
    }
    const request = t.reconcileRequest;
    if (!request) return { stateKey, to: t.to, version, created: !t.expected, requestKey: undefined, requestValue: undefined };
    const requestKey = keys.reconcileRequestKey(t.name);
    txn.keys[txn.keyCount++] = requestKey;
    if ('put' in request) {
      const requestValue = JSON.stringify(request.put);
      txn.success[txn.ops++] = put(requestKey, requestValue);
      if (txn.puts) txn.puts[txn.putCount++] = { key: requestKey, value: requestValue };
      return { stateKey, to: t.to, version, created: !t.expected, requestKey, requestValue };
    }
    txn.success[txn.ops++] = delKey(requestKey);
    return { stateKey, to: t.to, version, created: !t.expected, requestKey, requestValue: undefined };
  }

  /** The planted bug: the states first, their reconcile requests in a second transaction. */
  private async writeRequestsAfterStates(transitions: readonly StateTransition[], unchanged: readonly ReadGuard[]): Promise<CommitOutcome> {
    const withoutRequests = transitions.map((t) => ({ ...t, reconcileRequest: t.reconcileRequest && 'put' in t.reconcileRequest ? undefined : t.reconcileRequest }));
    const res = await this.writeStates(withoutRequests, unchanged);
    if (!res.committed) return res;
    for (const t of transitions) {
      if (!t.reconcileRequest || !('put' in t.reconcileRequest)) continue;
      const key = this.o.keys.reconcileRequestKey(t.name);
      const value = JSON.stringify(t.reconcileRequest.put);
      const req = await this.commit([], [put(key, value)], [key]);
      if (req.succeeded) this.o.onCommit?.([kvAt(key, value, req.revision)]);
    }
    return res;
  }

  async deleteState(d: StateDeletion): Promise<CommitOutcome> {
    const { keys } = this.o;
    const stateKey = keys.stateKey(d.kind, d.name);
    const historyPrefix = Buffer.from(keys.historyPrefix(d.kind, d.name));
    const success: TxnOp[] = [
      delKey(stateKey),
      { request_delete_range: { key: historyPrefix, range_end: prefixEnd(historyPrefix) } },
    ];
    // A model no package lists any more takes its offloading records along: kept, they grew
    // with every model name ever offloaded (black-box probing: 10,786 records of 5,782 models).
    if (d.kind === 'model') {
      const offloading = Buffer.from(keys.offloadingPrefix(d.name));
      success.push({ request_delete_range: { key: offloading, range_end: prefixEnd(offloading) } });
    }
    const requestKey = keys.reconcileRequestKey(d.name);
    if (d.deleteReconcileRequest) success.push(delKey(requestKey));
    const res = await this.commit([guardOn(stateKey, d.expected)], success, d.deleteReconcileRequest ? [stateKey, requestKey] : [stateKey]);
    if (!res.succeeded) return { committed: false };
    const revision = res.revision;
    const changes: CommittedChange[] = [{ key: stateKey, deletedAt: revision }];
    if (d.deleteReconcileRequest) changes.push({ key: requestKey, deletedAt: revision });
    this.o.onCommit?.(changes);
    return { committed: true, revision };
  }

  async trimHistory(kind: ResourceKind, name: string, state: StoredRevision | undefined): Promise<CommitOutcome> {
    const { keys } = this.o;
    const stateKey = keys.stateKey(kind, name);
    const prefix = keys.historyPrefix(kind, name);
    // Entries are numbered by the state's version: those past it belong to an earlier key.
    const from = state === undefined ? prefix : keys.historyKey(kind, name, state.version + 1);
    const res = await this.commit([guardOn(stateKey, state)], [delRange(from, stringPrefixEnd(prefix))], [stateKey]);
    return res.succeeded ? { committed: true, revision: res.revision } : { committed: false };
  }

  async updateReconcileRequest(record: ReconcileRequestRecord, expected: StoredRevision): Promise<CommitOutcome> {
    const key = this.o.keys.reconcileRequestKey(record.package);
    const value = JSON.stringify(record);
    const res = await this.announced(this.o.ownPuts ? [{ key, value }] : undefined, [guardOn(key, expected)], [put(key, value)], [key]);
    if (!res.succeeded) return { committed: false };
    const revision = res.revision;
    this.o.onCommit?.([kvAt(key, value, revision, expected.version + 1)]);
    return { committed: true, revision };
  }

  async createReconcileRequest(record: ReconcileRequestRecord, packageState: StoredRevision): Promise<CommitOutcome> {
    const { keys } = this.o;
    const key = keys.reconcileRequestKey(record.package);
    const stateKey = keys.stateKey('package', record.package);
    const value = JSON.stringify(record);
    const res = await this.announced(this.o.ownPuts ? [{ key, value }] : undefined, [guardOn(stateKey, packageState), guardOn(key, undefined)], [put(key, value)], [stateKey, key]);
    if (!res.succeeded) return { committed: false };
    const revision = res.revision;
    this.o.onCommit?.([kvAt(key, value, revision)]);
    return { committed: true, revision };
  }

  deleteReconcileRequest(pkg: string, expected: StoredRevision): Promise<CommitOutcome> {
    return this.deleteIfAt(this.o.keys.reconcileRequestKey(pkg), expected);
  }

  deleteResyncRequest(id: string, expected: StoredRevision): Promise<CommitOutcome> {
    return this.deleteIfAt(this.o.keys.resyncRequestKey(id), expected);
  }

  async confirmReconcileRequest(pkg: string, expected: StoredRevision): Promise<{ packageState: string | undefined } | undefined> {
    const { keys, guard } = this.o;
    const stateRange: TxnOp = { request_range: { key: keys.stateKey('package', pkg) } };
    const res = await this.txn([guardOn(keys.reconcileRequestKey(pkg), expected)], [stateRange]);
    if (!res.succeeded) {
      if (guard) await guard.verify();
      return undefined;
    }
    return { packageState: res.responses[0]?.response_range?.kvs[0]?.value.toString() };
  }

  private async deleteIfAt(key: string, expected: StoredRevision): Promise<CommitOutcome> {
    const res = await this.commit([guardOn(key, expected)], [delKey(key)], [key]);
    if (!res.succeeded) return { committed: false };
    const revision = res.revision;
    this.o.onCommit?.([{ key, deletedAt: revision }]);
    return { committed: true, revision };
  }

  /** Queue one write; it goes to etcd alone or grouped with others waiting at the same time. */
  private commit(compare: TxnCompare[], success: TxnOp[], keys: string[]): Promise<TxnOutcome> {
    return new Promise<TxnOutcome>((resolve, reject) => {
      this.pending.push({ compare, success, keys, resolve, reject });
      if (!this.flushScheduled) {
        // Writes made in the same tick (several workers finishing together) share a flush.
        this.flushScheduled = true;
        queueMicrotask(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && (this.inFlight < this.maxInFlight || (this.inFlight < this.maxFullInFlight && this.fillsTransaction()))) {
      const batch = this.takeBatch();
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.flush();
      });
    }
  }

  /** Whether the waiting writes are more than one transaction can hold. */
  private fillsTransaction(): boolean {
    let compares = 0;
    let ops = 0;
    for (const w of this.pending) {
      compares += w.compare.length;
      ops += w.success.length;
      if (compares > this.batchCompares || ops > this.batchOps) return true;
    }
    return false;
  }

  /** The oldest waiting writes that fit in one transaction without touching a key twice. */
  private takeBatch(): PendingWrite[] {
    const batch: PendingWrite[] = [];
    const rest: PendingWrite[] = [];
    const keys = new Set<string>();
    let compares = 0;
    let ops = 0;
    for (const w of this.pending) {
      const fits = compares + w.compare.length <= this.batchCompares && ops + w.success.length <= this.batchOps;
      if (batch.length === 0 || (fits && !w.keys.some((k) => keys.has(k)))) {
        batch.push(w);
        for (const k of w.keys) keys.add(k);
        compares += w.compare.length;
        ops += w.success.length;
      } else {
        rest.push(w);
      }
    }
    this.pending.length = 0;
    this.pending.push(...rest);
    return batch;
  }

  private async send(batch: PendingWrite[]): Promise<void> {
    if (batch.length === 1) {
      const w = batch[0]!;
      await this.sendAlone(w.compare, w.success).then(w.resolve, w.reject);
      return;
    }
    let res: DecodedTxnResponse;
    try {
      res = await this.txn(
        batch.flatMap((w) => w.compare),
        batch.flatMap((w) => w.success),
      );
    } catch (err) {
      if (!isTooLarge(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      // Over etcd's limits after all (set lower than maxTxnOps, or its request bytes): smaller
      // groups from now on, and these writes one by one. Sent again as they were, they failed
      // every time, and a cold start never converged (black-box probing: --max-txn-ops 64).
      this.shrinkBatches(batch, err);
      await Promise.all(batch.map((w) => this.sendAlone(w.compare, w.success).then(w.resolve, w.reject)));
      return;
    }
    if (res.succeeded) {
      const outcome = { succeeded: true, revision: res.header.revision };
      for (const w of batch) w.resolve(outcome);
      return;
    }
    // Some compare failed (a lost race, or the leader guard): every write on its own, so each
    // gets the outcome it would have had alone.
    await Promise.all(batch.map((w) => this.sendAlone(w.compare, w.success).then(w.resolve, w.reject)));
  }

  /** Groups at most half the size of `refused` from now on (never below one write). */
  private shrinkBatches(refused: readonly PendingWrite[], err: unknown): void {
    let compares = 0;
    let ops = 0;
    for (const w of refused) {
      compares += w.compare.length;
      ops += w.success.length;
    }
    const nextCompares = Math.max(1, Math.min(this.batchCompares, Math.floor(compares / 2)));
    const nextOps = Math.max(1, Math.min(this.batchOps, Math.floor(ops / 2)));
    if (nextCompares === this.batchCompares && nextOps === this.batchOps) return;
    this.batchCompares = nextCompares;
    this.batchOps = nextOps;
    this.o.logger?.warn('etcd refused a group of state writes as too large: smaller groups from now on (set grpc.etcdMaxTxnOps to etcd\'s --max-txn-ops)', {
      writes: refused.length,
      compares,
      operations: ops,
      maxCompares: nextCompares,
      maxOperations: nextOps,
      error: err instanceof Error ? err.message : String(err),
    });
  }

  /** The most compares and operations one group of writes holds now (tests). */
  batchLimits(): { compares: number; operations: number } {
    return { compares: this.batchCompares, operations: this.batchOps };
  }

  private async sendAlone(compare: TxnCompare[], success: TxnOp[]): Promise<TxnOutcome> {
    const res = await this.txn(compare, success);
    if (!res.succeeded && this.o.guard) await this.o.guard.verify();
    return { succeeded: res.succeeded, revision: res.header.revision };
  }

  private txn(compare: TxnCompare[], success: TxnOp[]): Promise<DecodedTxnResponse> {
    const guard = this.o.guard;
    return this.sender.txn({ compare: guard ? [...compare, ...guard.compares()] : compare, success }, Date.now() + this.o.requestTimeoutMs).catch((err: unknown) => {
      throw asStoreError(err);
    });
  }
}

/** Transactions through etcd3: the same request and answer, converted to and from its shapes. */
export function etcd3Txn(client: Etcd3): TxnSender {
  return {
    async txn(req, deadline) {
      const res = await client.kv.txn({ compare: req.compare.map(toICompare), success: req.success.map(toIRequestOp), failure: (req.failure ?? []).map(toIRequestOp) }, { deadline });
      return {
        header: { revision: Number(res.header.revision) },
        succeeded: res.succeeded,
        responses: res.responses.map((r) => {
          const range = r.response_range;
          if (!range) return {};
          const kvs = range.kvs.map((kv) => ({ key: kv.key, value: kv.value, create_revision: Number(kv.create_revision), mod_revision: Number(kv.mod_revision), version: Number(kv.version), lease: String(kv.lease) }));
          return { response_range: { header: { revision: Number(range.header.revision) }, kvs, more: range.more, count: Number(range.count) } };
        }),
      };
    },
  };
}

function buffer(b: Bytes): Buffer {
  return typeof b === 'string' ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function toICompare(c: TxnCompare): ICompare {
  const out: ICompare = { key: buffer(c.key), result: c.result, target: c.target };
  if (c.range_end !== undefined) out.range_end = buffer(c.range_end);
  if (c.version !== undefined) out.version = c.version;
  if (c.create_revision !== undefined) out.create_revision = c.create_revision;
  if (c.mod_revision !== undefined) out.mod_revision = c.mod_revision;
  if (c.value !== undefined) out.value = buffer(c.value);
  if (c.lease !== undefined) out.lease = c.lease;
  return out;
}

function toIRequestOp(op: TxnOp): IRequestOp {
  if ('request_put' in op) {
    const p = op.request_put;
    return { request_put: { key: buffer(p.key), value: buffer(p.value), ...(p.lease !== undefined ? { lease: p.lease } : {}) } };
  }
  if ('request_delete_range' in op) {
    const d = op.request_delete_range;
    return { request_delete_range: { key: buffer(d.key), ...(d.range_end !== undefined ? { range_end: buffer(d.range_end) } : {}) } };
  }
  const r = op.request_range;
  return { request_range: { key: buffer(r.key), ...(r.range_end !== undefined ? { range_end: buffer(r.range_end) } : {}), ...(r.limit !== undefined ? { limit: r.limit } : {}) } };
}

/** The key must still be where the writer saw it: same mod revision, or still absent. */
export function guardOn(key: string, expected: StoredRevision | undefined): TxnCompare {
  return expected ? { key, result: 'Equal', target: 'Mod', mod_revision: expected.modRevision } : { key, result: 'Equal', target: 'Create', create_revision: 0 };
}

function put(key: string, value: string): TxnOp {
  return { request_put: { key, value } };
}

function delKey(key: string): TxnOp {
  return { request_delete_range: { key } };
}

/** The end of the range of keys under `prefix` (which ends in '/'): the prefix with its last character's successor. */
function stringPrefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

function delRange(from: string, to: string): TxnOp {
  return { request_delete_range: { key: from, range_end: to } };
}

function kvAt(key: string, value: string, revision: number, version = 1): KeyValue {
  return { key, value, modRevision: revision, createRevision: 0, version };
}
