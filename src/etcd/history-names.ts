// The names with history entries under one kind, for the history sweep (reconcilers/history-sweep.ts):
// keys only, a page at a time with a pause between pages, so a fleet's history (up to
// history.length entries per state) is read without holding etcd or the event loop.
import type { Etcd3 } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';
import type { ResourceKind } from '../../domain/states.js';
import type { HistoryName, HistoryNames } from '../../reconcilers/history-sweep.js';
import { prefixEnd } from './lister-watcher.js';

export interface EtcdHistoryNamesOptions {
  client: Etcd3;
  keys: KeyLayout;
  requestTimeoutMs: number;
  /** Keys per page. Default 5,000 (about 300 KB). */
  pageSize?: number;
  /** Pause between pages. Default 20 ms. */
  pauseMs?: number;
}

export class EtcdHistoryNames implements HistoryNames {
  constructor(private readonly o: EtcdHistoryNamesOptions) {}

  async list(kind: ResourceKind, page: (names: readonly HistoryName[]) => void, signal: AbortSignal): Promise<void> {
    const prefix = `${this.o.keys.history}${kind}/`;
    const end = prefixEnd(Buffer.from(prefix));
    let from = Buffer.from(prefix);
    // A name's entries may straddle two pages: it is given with the page where they end.
    let current: HistoryName | undefined;
    for (;;) {
      if (signal.aborted) return;
      const res = await this.o.client.kv.range({ key: from, range_end: end, limit: this.o.pageSize ?? 5000, keys_only: true }, { deadline: Date.now() + this.o.requestTimeoutMs });
      const out: HistoryName[] = [];
      for (const kv of res.kvs) {
        const rest = kv.key.toString('utf8').slice(prefix.length);
        const slash = rest.lastIndexOf('/');
        const version = Number(rest.slice(slash + 1));
        if (slash <= 0 || !Number.isInteger(version)) continue; // not an entry of ours
        const name = rest.slice(0, slash);
        if (current?.name === name) current.lastVersion = Math.max(current.lastVersion, version);
        else {
          if (current) out.push(current);
          current = { name, lastVersion: version };
        }
      }
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) {
        if (current) out.push(current);
        page(out);
        return;
      }
      page(out);
      from = Buffer.concat([last.key, Buffer.from([0])]);
      await new Promise((r) => setTimeout(r, this.o.pauseMs ?? 20));
    }
  }
}
