// The names with history entries under one kind, for the history sweep (reconcilers/history-sweep.ts):
// keys only, a page at a time with a pause between pages, so a fleet's history (up to
// history.length entries per state) is read without holding etcd or the event loop.
import type { Etcd3 } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';
import type { ResourceKind } from '../../domain/states.js';
import type { HistoryName, HistoryNames } from '../../reconcilers/history-sweep.js';
import { prefixEnd } from './lister-watcher.js';
import { DEADLINE_RETRIES, pageTooSlow, PageCap } from './paged-range.js';

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
  /** Smaller pages after one ran out of its deadline (a slow link to etcd), as the informers' lists. */
  private readonly cap: PageCap;

  constructor(private readonly o: EtcdHistoryNamesOptions) {
    this.cap = new PageCap(o.pageSize ?? 5000, o.requestTimeoutMs);
  }

  async list(kind: ResourceKind, page: (names: readonly HistoryName[]) => void, signal: AbortSignal): Promise<void> {
    const prefix = `${this.o.keys.history}${kind}/`;
    const end = prefixEnd(Buffer.from(prefix));
    let from = Buffer.from(prefix);
    // A name's entries may straddle two pages: it is given with the page where they end.
    let current: HistoryName | undefined;
    let retries = 0;
    for (;;) {
      if (signal.aborted) return;
      const limit = this.cap.current;
      const askedAt = Date.now();
      let res: Awaited<ReturnType<Etcd3['kv']['range']>>;
      try {
        res = await this.o.client.kv.range({ key: from, range_end: end, limit, keys_only: true }, { deadline: askedAt + this.o.requestTimeoutMs });
      } catch (err) {
        // The same page again, smaller, a few times (as the informers' lists: to an etcd that is
        // gone each try waits the whole deadline); then the sweep fails and is tried again later.
        if (pageTooSlow(err, Date.now() - askedAt, this.o.requestTimeoutMs)) {
          this.cap.timedOut(limit);
          if (limit > 1 && retries < DEADLINE_RETRIES) {
            retries++;
            continue;
          }
        }
        throw err;
      }
      retries = 0;
      this.cap.answered(limit, res.kvs.length, Date.now() - askedAt);
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
