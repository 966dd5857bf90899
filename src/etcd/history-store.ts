// A resource's recorded transitions, read fresh from etcd (a replica's caches do not hold
// history): at most the configured history length, so one range call.
import type { Etcd3 } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { parseHistoryEntry } from '../../domain/history-entry.js';
import type { ResourceKind } from '../../domain/states.js';
import { etcdDeadline } from './errors.js';
import { prefixEnd } from './lister-watcher.js';

export class EtcdHistoryStore {
  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly requestTimeoutMs: number,
    /**
     * Whether etcd answered lately (the etcd probe). When it did not, a read fails at once instead
     * of waiting out its deadline: etcd behind a black hole made every GetResourceState wait 5 s
     * for the cached state it could have answered at once.
     */
    private readonly reachable: () => boolean = () => true,
  ) {}

  async read(kind: ResourceKind, name: string, deadline?: number): Promise<HistoryEntry[]> {
    if (!this.reachable()) throw new Error('etcd is unreachable');
    // A caller whose deadline leaves no time for the read gets the answer without it, at once:
    // a call bound to fail costs etcd and this process for nothing (a flood of 5 ms deadlines).
    if (deadline !== undefined && deadline <= Date.now()) throw new Error("no time left for the history before the caller's deadline");
    const prefix = Buffer.from(this.keys.historyPrefix(kind, name));
    const res = await this.client.kv.range({ key: prefix, range_end: prefixEnd(prefix) }, { deadline: etcdDeadline(this.requestTimeoutMs, deadline) });
    const out: HistoryEntry[] = [];
    for (const kv of res.kvs) {
      // Only this resource's own entries: `a/` must not take in `a/b/`'s.
      if (kv.key.toString('utf8').slice(prefix.length).includes('/')) continue;
      const e = parseHistoryEntry(kv.value.toString('utf8'));
      if (e) out.push(e);
    }
    return out;
  }
}
