// Whether any key under a prefix was modified after a revision, and how many keys it holds, read
// at one etcd revision: the state API's check that a quiet kind's cache is etcd as it is now
// (src/state-api/fleet-caches.ts). etcd sends no key and no value.
import type { Etcd3 } from 'etcd3';
import { etcdDeadline } from './errors.js';
import { prefixEnd } from './lister-watcher.js';

export interface PrefixCounts {
  /** The etcd revision the counts were read at. */
  revision: number;
  /** No key under the prefix was modified or created after the revision asked about. */
  unchangedSince: boolean;
  /** Keys under the prefix. */
  total: number;
}

export async function countPrefix(client: Etcd3, prefix: string, sinceRevision: number, requestTimeoutMs: number): Promise<PrefixCounts> {
  const key = Buffer.from(prefix);
  const range_end = prefixEnd(key);
  // One transaction, so both answers are of one revision. "Modified since" is a compare on the
  // range (every key's mod revision at most sinceRevision): etcd 3.4 counts a count_only range
  // before its min_mod_revision filter, so a filtered count says the prefix's whole size.
  const count = { request_range: { key, range_end, count_only: true } };
  const res = await client.kv.txn(
    { compare: [{ key, range_end, target: 'Mod', result: 'Less', mod_revision: sinceRevision + 1 }], success: [count], failure: [count] },
    { deadline: etcdDeadline(requestTimeoutMs) },
  );
  return {
    revision: Number(res.header.revision),
    unchangedSince: res.succeeded,
    total: Number(res.responses[0]?.response_range?.count ?? Number.NaN),
  };
}
