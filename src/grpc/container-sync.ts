// Makes `/container/{node}/` equal to a node's container list in one etcd transaction: puts for
// new or changed containers, deletes for missing ones, unchanged ones left alone. The
// transaction holds only if the prefix is as it was read: no key in it modified or created
// since (one range compare on the mod revision) and no container we leave alone deleted (a
// mod-revision compare per such key). On conflict it reads again, a bounded number of times.
//
// etcd bounds a transaction to --max-txn-ops compares and as many operations (default 128).
// When the per-key compares would not fit, the transaction instead counts the prefix after its
// own writes; a count short of the list means a rival deleted an unchanged container in between,
// and the next round puts it back.
//
// A change with more writes than one transaction may hold (a node's first list of 2,000
// containers) goes in several, each guarded by "nothing under the prefix changed since the one
// before" (the first: since the read), the last counting the prefix. Refusing it instead, as the
// contract's "one transaction" would have it, left such a node without containers for good. A
// model's containers are kept in one transaction where they fit, so each model goes from its old
// containers to its new ones at once; readers may see other models of the list a few
// milliseconds apart. A transaction that fails part-way leaves the prefix part-changed, and the
// next round reads it and finishes the change.
//
// A node's next list does not read every value again: when this replica made the prefix equal
// to a list at revision R, it remembers a digest of each container it holds. The next list is
// compared with those digests, and one transaction writes only the difference, guarded by
// "nothing under the prefix modified or created since R" (a range compare) and counting the prefix
// after its writes (a rival's deletion of a container left alone shows as a short count). Any
// other outcome forgets the memory and reads the prefix whole, as above. A node agent resending
// its 2,000-container list each second with a few changes cost a read of about 1 MB and the
// decoding of 2,000 values each time (about 60 % of the call's CPU): now one transaction of the
// changes. The same list again is the case with no change: one transaction, no value read.
import { hash } from 'node:crypto';
import type { Etcd3, ICompare, IKeyValue, IRequestOp } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';
import { prefixEnd } from '../etcd/lister-watcher.js';
import { sameContainer } from './container-record.js';
import { parseContainer } from '../../domain/container.js';
import { etcdDeadline, notApplied } from '../etcd/errors.js';
import { rangePaged } from '../etcd/paged-range.js';
import { UNLIMITED, WriteBudgetExceededError, type WriteBudget } from './write-budget.js';

export interface ContainerSyncOptions {
  client: Etcd3;
  keys: KeyLayout;
  requestTimeoutMs: number;
  /** The client's own deadline (epoch ms), if any: no etcd call outlives it. */
  callerDeadline?: number;
  maxAttempts: number;
  /** etcd's --max-txn-ops. Default 128 (etcd's default). */
  maxTxnOps?: number;
  pageSize?: number;
  /** Charged the bytes each transaction writes before it is sent; short: WriteBudgetExceededError. */
  budget?: WriteBudget;
  /** The lists this replica last made each node's prefix equal to (one per server). */
  recent?: RecentLists;
}

/**
 * Containers whose digests a RecentLists remembers by default, over all nodes (about 120 B each:
 * 200,000 take about 23 MB). Twice the fleet target: at exactly the bound a fleet of 100,000
 * containers reporting in turn evicted each node just before its next list.
 */
export const RECENT_LIST_CONTAINERS = 200_000;
/**
 * Nodes a RecentLists remembers by default (about 330 B each without containers: 50,000 take
 * about 16 MB). Empty lists cost no container, and one caller sending them under ever-new node
 * names grew the heap by 60 MB a minute (black-box probing), hence a bound; at 10,000, 20,000
 * node agents reporting in turn each evicted the node whose list came next, so every list was
 * read from etcd whole (black-box probing).
 */
export const RECENT_LIST_NODES = 50_000;

export interface RecentList {
  /** The revision at which the prefix was made equal to the list. */
  revision: number;
  /** Each container's digest (containerDigest), by id: the prefix's content at `revision`. */
  digests: ReadonlyMap<string, string>;
}

/**
 * The last list each node's prefix was made equal to, as a digest per container. Bounded by
 * containers over all nodes and by nodes: past either the nodes remembered longest ago are forgotten
 * (such a node then costs one full read more); a single list above the bound is not remembered.
 */
export class RecentLists {
  private readonly byNode = new Map<string, RecentList>();
  private total = 0;
  private era = 0;

  constructor(
    private readonly maxContainers = RECENT_LIST_CONTAINERS,
    private readonly maxNodes = RECENT_LIST_NODES,
  ) {}

  get(node: string): RecentList | undefined {
    return this.byNode.get(node);
  }

  /** Changes at every clear(): a list made before one is not remembered after it (set's `since`). */
  get generation(): number {
    return this.era;
  }

  /**
   * Forgets every node: etcd's history was replaced (restored from a backup, a new volume), so
   * "nothing under the prefix modified since R" no longer means the prefix is as this replica
   * left it (black-box probing: after a restore, agents' unchanged lists were answered OK for a
   * minute while a third of their containers kept the backup's values).
   */
  clear(): void {
    this.byNode.clear();
    this.total = 0;
    this.era++;
  }

  /** Remembers `list` as `node`'s, unless clear() ran since `since` (a generation read when the list's call began). */
  set(node: string, list: RecentList, since = this.era): void {
    if (since !== this.era) return;
    this.forget(node);
    if (list.digests.size > this.maxContainers) return;
    for (const [oldest, l] of this.byNode) {
      if (this.total + list.digests.size <= this.maxContainers && this.byNode.size < this.maxNodes) break;
      this.byNode.delete(oldest);
      this.total -= l.digests.size;
    }
    this.byNode.set(node, list);
    this.total += list.digests.size;
  }

  forget(node: string): void {
    const l = this.byNode.get(node);
    if (l === undefined) return;
    this.byNode.delete(node);
    this.total -= l.digests.size;
  }

  /** Nodes remembered. */
  get size(): number {
    return this.byNode.size;
  }

  /** Containers remembered, over all nodes. */
  get containers(): number {
    return this.total;
  }
}

/**
 * A digest of a container's stored JSON (its id is the map's key): a change detector. Only the
 * node's own agent, allowed to write the node's containers anyway, chooses these values, so a
 * crafted collision could only hide that agent's own change; SHA-1 is the fastest hash here.
 */
export function containerDigest(json: string): string {
  return hash('sha1', json, 'base64');
}

export interface SyncResult {
  put: number;
  deleted: number;
  unchanged: number;
  attempts: number;
  /** etcd revision of the write, or of the read when nothing had to change. */
  revision: number;
}

export class ContainerSyncConflictError extends Error {
  constructor(
    node: string,
    attempts: number,
    /**
     * A round's writes were committed before a rival's change sent it round again (a container it
     * kept as it was, deleted in between; a later chunk of a large list losing its race): the
     * prefix holds part of the list. The caller is told so, not that nothing was written.
     */
    readonly partlyWritten = false,
  ) {
    super(
      `node ${node}: the container keys kept changing during ${attempts} attempts; ${partlyWritten ? 'part of the list was written, as another writer changed them at the same time' : 'nothing was written'}; send the list again`,
    );
    this.name = 'ContainerSyncConflictError';
  }
}

/**
 * etcd failed the call (a timeout, unreachable, out of space, …) after one of its transactions had
 * been written: a round later sent round again, or an earlier chunk of a large list. The prefix
 * holds part of the list, and the caller is told so, not that nothing was written (found by
 * black-box probing: a 6,000-container list cut by a frozen etcd left 360 and 3,000 of them, and
 * its answer said "send the list again" as for a call that wrote nothing). `cause` is etcd's error.
 */
export class PartlyWrittenError extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'PartlyWrittenError';
  }
}

export async function syncContainerList(
  o: ContainerSyncOptions,
  node: string,
  containers: readonly { id: string; json: string }[],
): Promise<SyncResult> {
  const progress = { partlyWritten: false };
  try {
    return await sync(o, node, containers, progress);
  } catch (err) {
    if (progress.partlyWritten && !(err instanceof ContainerSyncConflictError)) throw new PartlyWrittenError(err);
    throw err;
  }
}

async function sync(
  o: ContainerSyncOptions,
  node: string,
  containers: readonly { id: string; json: string }[],
  /** Whether one of this call's transactions was written (read when a later step fails). */
  progress: { partlyWritten: boolean },
): Promise<SyncResult> {
  const prefix = Buffer.from(o.keys.containerPrefix(node));
  const end = prefixEnd(prefix);
  const digests = o.recent ? digestsOf(containers) : undefined;
  const generation = o.recent?.generation;
  const remember = (revision: number): void => {
    if (digests !== undefined) o.recent?.set(node, { revision, digests }, generation);
  };
  const last = o.recent?.get(node);
  if (last !== undefined && digests !== undefined) {
    const r = await writeDifference(o, node, prefix, end, last, containers, digests);
    if (r.result !== undefined) {
      remember(r.result.revision);
      return r.result;
    }
    progress.partlyWritten = r.wrote;
    o.recent!.forget(node); // changed since, or too large a change: read it whole below
  }
  for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
    const { kvs, revision } = await readPrefix(o, prefix, end);
    // Keyed by the keys' bytes (latin1 maps each byte to one character): two keys whose bytes are
    // not UTF-8 decode to the same text, and one of them was never deleted (code review).
    const existing = new Map(kvs.map((kv) => [kv.key.toString('latin1'), kv] as const));
    const success: IRequestOp[] = [];
    // Nothing under the prefix modified or created after the read.
    const compare: ICompare[] = [
      { key: prefix, range_end: end, target: 'Mod', result: 'Less', mod_revision: revision + 1 },
    ];
    const kept: IKeyValue[] = [];
    const putJsons: string[] = [];
    const wanted = new Set<string>();
    for (const c of containers) {
      const key = o.keys.containerKey(node, c.id);
      const bytes = byteKey(key);
      wanted.add(bytes);
      const kv = existing.get(bytes);
      if (kv !== undefined && sameContainer(kv.value.toString(), c.json)) {
        kept.push(kv);
      } else {
        success.push({ request_put: { key: Buffer.from(key), value: Buffer.from(c.json) } });
        putJsons.push(c.json);
      }
    }
    let deleted = 0;
    const deletedValues: Buffer[] = [];
    for (const [key, kv] of existing) {
      if (wanted.has(key)) continue;
      deleted++;
      success.push({ request_delete_range: { key: kv.key } });
      deletedValues.push(kv.value);
    }
    const put = success.length - deleted;
    const unchanged = kept.length;
    if (success.length === 0) {
      remember(revision);
      return { put, deleted, unchanged, attempts: attempt, revision };
    }
    const bytes = writtenBytes(success);
    const budget = o.budget ?? UNLIMITED;
    if (!budget.take(bytes)) throw new WriteBudgetExceededError(bytes, budget.waitMs(bytes));
    const maxOps = o.maxTxnOps ?? 128;
    if (success.length >= maxOps) {
      // More writes than one transaction holds with its count: several, in model order.
      const models = [...putJsons.map(modelOf), ...deletedValues.map((v) => modelOf(v.toString()))];
      const chunks = chunkByModel(success, models, maxOps - 1);
      const done = await writeChunks(o, prefix, end, revision, chunks, budget, () => (progress.partlyWritten = true));
      if (done === undefined || done.count !== wanted.size) continue; // a rival in between: read and finish
      remember(done.revision);
      return { put, deleted, unchanged, attempts: attempt, revision: done.revision };
    }
    // The kept keys must still be there, as read: the range compare cannot see a deletion.
    const guardEach = compare.length + kept.length <= (o.maxTxnOps ?? 128);
    if (guardEach) {
      for (const kv of kept) compare.push({ key: kv.key, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision });
    } else {
      success.push({ request_range: { key: prefix, range_end: end, count_only: true } });
    }
    // A transaction whose outcome is unknown (a timeout) keeps its charge: it may have been applied.
    const res = await refundIfNotApplied(budget, bytes, () => o.client.kv.txn(
      { compare, success, failure: [] },
      { deadline: etcdDeadline(o.requestTimeoutMs, o.callerDeadline) },
    ));
    if (!res.succeeded) {
      budget.refund(bytes); // lost a race: nothing was written
      continue;
    }
    if (!guardEach && Number(res.responses[res.responses.length - 1]?.response_range?.count) !== containers.length) {
      progress.partlyWritten = true;
      continue; // a kept container was deleted in between: the next round puts it back
    }
    remember(Number(res.header.revision));
    return { put, deleted, unchanged, attempts: attempt, revision: Number(res.header.revision) };
  }
  throw new ContainerSyncConflictError(node, o.maxAttempts, progress.partlyWritten);
}

/** A key as its UTF-8 bytes, one character per byte (as `existing` holds them); ASCII is itself. */
function byteKey(key: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(key) ? key : Buffer.from(key, 'utf8').toString('latin1');
}

function digestsOf(containers: readonly { id: string; json: string }[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const c of containers) m.set(c.id, containerDigest(c.json));
  return m;
}

/**
 * Writes the difference between the list and what this replica left under the prefix at
 * `last.revision`, in one transaction that holds only if nothing under the prefix was modified
 * or created since and that counts the prefix after its writes. `result` when the prefix is now
 * the list; otherwise (a rival's change since, or more writes than one transaction holds) the
 * caller reads the prefix whole, told whether this transaction's writes landed.
 */
async function writeDifference(
  o: ContainerSyncOptions,
  nodeName: string,
  prefix: Buffer,
  end: Buffer,
  last: RecentList,
  containers: readonly { id: string; json: string }[],
  digests: ReadonlyMap<string, string>,
): Promise<{ result?: SyncResult; wrote: boolean }> {
  const success: IRequestOp[] = [];
  for (const c of containers) {
    if (last.digests.get(c.id) === digests.get(c.id)) continue;
    success.push({ request_put: { key: Buffer.from(o.keys.containerKey(nodeName, c.id)), value: Buffer.from(c.json) } });
  }
  const put = success.length;
  for (const id of last.digests.keys()) {
    if (!digests.has(id)) success.push({ request_delete_range: { key: Buffer.from(o.keys.containerKey(nodeName, id)) } });
  }
  const deleted = success.length - put;
  const bytes = writtenBytes(success);
  const budget = o.budget ?? UNLIMITED;
  if (success.length >= (o.maxTxnOps ?? 128)) {
    // Written in chunks after a read of every value. Against what this replica left under the
    // prefix the change costs `bytes`: a caller whose budget cannot cover that is refused here,
    // before the read, and the memory stays. Found by black-box probing: a flood of changed
    // 300-container lists of one node, each read whole (90 KB) and compared before its refusal,
    // with the memory forgotten at the first, took 40 % of a core and the other nodes' median from
    // 3.6 to 46 ms. Only a rival's write since (etcd holding part of the list already) could make
    // the real charge smaller; such a caller is told to retry when its budget has refilled.
    const wait = budget.waitMs(bytes);
    if (wait > 0) throw new WriteBudgetExceededError(bytes, wait);
    return { wrote: false };
  }
  if (!budget.take(bytes)) throw new WriteBudgetExceededError(bytes, budget.waitMs(bytes));
  success.push({ request_range: { key: prefix, range_end: end, count_only: true } });
  // A transaction whose outcome is unknown keeps its charge, and the memory stays: its compare
  // fails next time if it was applied after all.
  const res = await refundIfNotApplied(budget, bytes, () => o.client.kv.txn(
    { compare: [{ key: prefix, range_end: end, target: 'Mod', result: 'Less', mod_revision: last.revision + 1 }], success, failure: [] },
    { deadline: etcdDeadline(o.requestTimeoutMs, o.callerDeadline) },
  ));
  if (!res.succeeded) {
    budget.refund(bytes);
    return { wrote: false };
  }
  // Short: a rival deleted a container left alone; the read puts it back.
  if (Number(res.responses[res.responses.length - 1]?.response_range?.count) !== containers.length) return { wrote: put + deleted > 0 };
  const revision = Number(res.header.revision);
  return { result: { put, deleted, unchanged: containers.length - put, attempts: 1, revision }, wrote: true };
}

/** A container's model for grouping writes ('' when the value names none or is not a container). */
function modelOf(json: string): string {
  const r = parseContainer(json);
  return r.ok ? r.container.model : '';
}

/**
 * `ops` in transactions of at most `size`, each model's ops together (stable, in model order),
 * a model's group starting a new transaction when it does not fit in the current one but would
 * fit in an empty one (a model with more ops than `size` is split).
 */
export function chunkByModel<T>(ops: readonly T[], models: readonly string[], size: number): T[][] {
  const order = ops.map((_, i) => i).sort((a, b) => (models[a]! < models[b]! ? -1 : models[a]! > models[b]! ? 1 : a - b));
  const chunks: T[][] = [];
  let current: T[] = [];
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j < order.length && models[order[j]!] === models[order[i]!]) j++;
    const group = j - i;
    if (current.length > 0 && current.length + group > size && group <= size) {
      chunks.push(current);
      current = [];
    }
    for (let k = i; k < j; k++) {
      if (current.length === size) {
        chunks.push(current);
        current = [];
      }
      current.push(ops[order[k]!]!);
    }
    i = j;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Writes `chunks` in order, each only if nothing under the prefix changed since `since` (the
 * read, then the chunk before); the last also counts the prefix. Undefined when one lost a race
 * (its bytes and the rest's refunded: nothing of theirs was written).
 */
async function writeChunks(
  o: ContainerSyncOptions,
  prefix: Buffer,
  end: Buffer,
  since: number,
  chunks: readonly IRequestOp[][],
  budget: WriteBudget,
  /** Told when a chunk was committed. */
  onCommitted: () => void,
): Promise<{ revision: number; count: number } | undefined> {
  let revision = since;
  let count = -1;
  for (let i = 0; i < chunks.length; i++) {
    const last = i === chunks.length - 1;
    const success = last ? [...chunks[i]!, { request_range: { key: prefix, range_end: end, count_only: true } }] : chunks[i]!;
    let res: Awaited<ReturnType<typeof o.client.kv.txn>>;
    try {
      res = await o.client.kv.txn(
        { compare: [{ key: prefix, range_end: end, target: 'Mod', result: 'Less', mod_revision: revision + 1 }], success, failure: [] },
        { deadline: etcdDeadline(o.requestTimeoutMs, o.callerDeadline) },
      );
    } catch (err) {
      // The chunks after it were never sent; it, only when it certainly applied nothing.
      for (let k = notApplied(err) ? i : i + 1; k < chunks.length; k++) budget.refund(writtenBytes(chunks[k]!));
      throw err;
    }
    if (!res.succeeded) {
      for (let k = i; k < chunks.length; k++) budget.refund(writtenBytes(chunks[k]!));
      return undefined;
    }
    onCommitted();
    revision = Number(res.header.revision);
    if (last) count = Number(res.responses[res.responses.length - 1]?.response_range?.count);
  }
  return { revision, count };
}

/**
 * Runs a write charged `bytes` to `budget`, refunding them when it fails having certainly
 * applied nothing (etcd unreachable, or refusing it whole). Found by black-box probing: with etcd
 * unreachable for 150 s a node agent resending its lists was refused for its write budget after
 * 70 s, its lists charged though none had left the process.
 */
async function refundIfNotApplied<T>(budget: WriteBudget, bytes: number, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (notApplied(err)) budget.refund(bytes);
    throw err;
  }
}

/** What the writes store: each put's key and value, each deletion's key (its tombstone). */
export function writtenBytes(ops: readonly IRequestOp[]): number {
  let n = 0;
  for (const op of ops) {
    if (op.request_put) n += byteLength(op.request_put.key) + byteLength(op.request_put.value);
    else if (op.request_delete_range) n += byteLength(op.request_delete_range.key);
  }
  return n;
}

function byteLength(b: Buffer | string | undefined): number {
  return b === undefined ? 0 : typeof b === 'string' ? Buffer.byteLength(b) : b.length;
}

/** Every key under the prefix at one revision, in pages. */
async function readPrefix(o: ContainerSyncOptions, prefix: Buffer, end: Buffer): Promise<{ kvs: IKeyValue[]; revision: number }> {
  const kvs: IKeyValue[] = [];
  const revision = await rangePaged(
    (req) => o.client.kv.range(req, { deadline: etcdDeadline(o.requestTimeoutMs, o.callerDeadline) }),
    { key: prefix, rangeEnd: end, pageSize: o.pageSize ?? 1000 },
    (page) => kvs.push(...page),
  );
  return { kvs, revision };
}
