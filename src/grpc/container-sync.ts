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
    if (success.length === 0) return { put, deleted, unchanged, attempts: attempt, revision };
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
