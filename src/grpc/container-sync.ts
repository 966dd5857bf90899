// Makes `/container/{node}/` equal to a node's container list in one etcd transaction: puts for
// new or changed containers, deletes for missing ones, unchanged ones left alone. The
// transaction holds only if the prefix is as it was read: no key in it modified or created
// since (one range compare on the mod revision) and no container we leave alone deleted (a
// mod-revision compare per such key). On conflict it reads again, a bounded number of times.
//
// etcd bounds a transaction to --max-txn-ops compares and as many operations (default 128).
// When the per-key compares would not fit, the transaction instead counts the prefix after its
// own writes; a count short of the list means a rival deleted an unchanged container in between,
// and the next round puts it back. A list whose writes alone exceed the limit (or
// --max-request-bytes) fails as 'too-large'.
//
// The same list again (a node agent resending, or a flood of one list) does not read every value
// again: when this replica made the prefix equal to that very list at revision R, one transaction
// checks that nothing under the prefix changed since R (a range compare) and that it still holds as
// many keys (a count), and the answer is "nothing to change". Before, a 1 MiB list sent again and
// again read 1 MiB from etcd each time while the write budget, charged only for writes, saw nothing.
import { createHash } from 'node:crypto';
import type { Etcd3, ICompare, IKeyValue, IRequestOp } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';
import { prefixEnd } from '../etcd/lister-watcher.js';
import { sameContainer } from './container-record.js';
import { etcdDeadline } from '../etcd/errors.js';
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

/** Nodes whose last list a RecentLists remembers by default. */
export const RECENT_LIST_NODES = 10_000;

interface RecentList {
  digest: string;
  /** The revision at which the prefix was made equal to the list. */
  revision: number;
  /** Keys under the prefix then. */
  count: number;
}

/**
 * The last list each node's prefix was made equal to, as a digest: a few dozen bytes a node. Past
 * `max` nodes the table starts again (a node then costs one full read more).
 */
export class RecentLists {
  private readonly byNode = new Map<string, RecentList>();

  constructor(private readonly max = RECENT_LIST_NODES) {}

  get(node: string): RecentList | undefined {
    return this.byNode.get(node);
  }

  set(node: string, list: RecentList): void {
    if (!this.byNode.has(node) && this.byNode.size >= this.max) this.byNode.clear();
    this.byNode.set(node, list);
  }

  forget(node: string): void {
    this.byNode.delete(node);
  }

  get size(): number {
    return this.byNode.size;
  }
}

/** One digest of a list: ids and values in order (the same list sent again has the same one). */
export function listDigest(containers: readonly { id: string; json: string }[]): string {
  const h = createHash('sha256');
  for (const c of containers) h.update(c.id).update('\u0000').update(c.json).update('\u0001');
  return h.digest('base64');
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
  constructor(node: string, attempts: number) {
    super(`node ${node}: the container keys kept changing during ${attempts} attempts; send the list again`);
    this.name = 'ContainerSyncConflictError';
  }
}

export async function syncContainerList(
  o: ContainerSyncOptions,
  node: string,
  containers: readonly { id: string; json: string }[],
): Promise<SyncResult> {
  const prefix = Buffer.from(o.keys.containerPrefix(node));
  const end = prefixEnd(prefix);
  const digest = o.recent ? listDigest(containers) : '';
  const last = o.recent?.get(node);
  if (last !== undefined && last.digest === digest) {
    const res = await o.client.kv.txn(
      {
        compare: [{ key: prefix, range_end: end, target: 'Mod', result: 'Less', mod_revision: last.revision + 1 }],
        success: [{ request_range: { key: prefix, range_end: end, count_only: true } }],
        failure: [],
      },
      { deadline: etcdDeadline(o.requestTimeoutMs, o.callerDeadline) },
    );
    if (res.succeeded && Number(res.responses[0]?.response_range?.count) === last.count) {
      return { put: 0, deleted: 0, unchanged: last.count, attempts: 1, revision: Number(res.header.revision) };
    }
    o.recent!.forget(node); // changed since: read it whole below
  }
  const remember = (revision: number, count: number): void => o.recent?.set(node, { digest, revision, count });
  for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
    const { kvs, revision } = await readPrefix(o, prefix, end);
    const existing = new Map(kvs.map((kv) => [kv.key.toString(), kv] as const));
    const success: IRequestOp[] = [];
    // Nothing under the prefix modified or created after the read.
    const compare: ICompare[] = [
      { key: prefix, range_end: end, target: 'Mod', result: 'Less', mod_revision: revision + 1 },
    ];
    const kept: IKeyValue[] = [];
    const wanted = new Set<string>();
    for (const c of containers) {
      const key = o.keys.containerKey(node, c.id);
      wanted.add(key);
      const kv = existing.get(key);
      if (kv !== undefined && sameContainer(kv.value.toString(), c.json)) {
        kept.push(kv);
      } else {
        success.push({ request_put: { key: Buffer.from(key), value: Buffer.from(c.json) } });
      }
    }
    let deleted = 0;
    for (const [key, kv] of existing) {
      if (wanted.has(key)) continue;
      deleted++;
      success.push({ request_delete_range: { key: kv.key } });
    }
    const put = success.length - deleted;
    const unchanged = kept.length;
    if (success.length === 0) {
      remember(revision, kvs.length);
      return { put, deleted, unchanged, attempts: attempt, revision };
    }
    const bytes = writtenBytes(success);
    const budget = o.budget ?? UNLIMITED;
    if (!budget.take(bytes)) throw new WriteBudgetExceededError(bytes, budget.waitMs(bytes));
    // The kept keys must still be there, as read: the range compare cannot see a deletion.
    const guardEach = compare.length + kept.length <= (o.maxTxnOps ?? 128);
    if (guardEach) {
      for (const kv of kept) compare.push({ key: kv.key, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision });
    } else {
      success.push({ request_range: { key: prefix, range_end: end, count_only: true } });
    }
    // A transaction that failed to reach etcd keeps its charge: it may have been applied.
    const res = await o.client.kv.txn(
      { compare, success, failure: [] },
      { deadline: etcdDeadline(o.requestTimeoutMs, o.callerDeadline) },
    );
    if (!res.succeeded) {
      budget.refund(bytes); // lost a race: nothing was written
      continue;
    }
    if (!guardEach && Number(res.responses[res.responses.length - 1]?.response_range?.count) !== containers.length) {
      continue; // a kept container was deleted in between: the next round puts it back
    }
    remember(Number(res.header.revision), wanted.size);
    return { put, deleted, unchanged, attempts: attempt, revision: Number(res.header.revision) };
  }
  throw new ContainerSyncConflictError(node, o.maxAttempts);
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
