// An in-memory ListerWatcher (client-go's fake controller source): a key-value map with etcd's
// revision semantics, whose watches deliver every change synchronously, in order. For unit tests
// of the machinery and the reconcilers that need no etcd.
import type { KeyValue, ListResult, ListerWatcher, WatchCallbacks, WatchEvent, WatchHandle } from '../../controller/lister-watcher.js';

export class FakeListerWatcher implements ListerWatcher {
  private readonly data = new Map<string, KeyValue>();
  private readonly watchers = new Set<{ prefix: string; cb: WatchCallbacks }>();
  revision = 1;

  async list(prefix: string): Promise<ListResult> {
    const items = [...this.data.values()].filter((kv) => kv.key.startsWith(prefix)).sort((a, b) => a.key.localeCompare(b.key));
    return { items, revision: this.revision };
  }

  watch(prefix: string, _fromRevision: number, cb: WatchCallbacks): WatchHandle {
    const w = { prefix, cb };
    this.watchers.add(w);
    return {
      close: async () => {
        this.watchers.delete(w);
      },
    };
  }

  async isCompacted(): Promise<boolean> {
    return false;
  }

  put(key: string, value: string): KeyValue {
    this.txn([{ put: key, value }]);
    return this.data.get(key)!;
  }

  delete(key: string): void {
    this.txn([{ delete: key }]);
  }

  /** Several puts and deletes at one revision, as one etcd transaction. */
  txn(ops: ({ put: string; value: string } | { delete: string })[]): number {
    const rev = this.revision + 1;
    const events: WatchEvent[] = [];
    for (const op of ops) {
      if ('put' in op) {
        const old = this.data.get(op.put);
        const kv: KeyValue = { key: op.put, value: op.value, modRevision: rev, createRevision: old?.createRevision ?? rev, version: (old?.version ?? 0) + 1 };
        this.data.set(op.put, kv);
        events.push({ type: 'put', kv });
      } else if (this.data.delete(op.delete)) {
        events.push({ type: 'delete', kv: { key: op.delete, value: '', modRevision: rev, createRevision: 0, version: 0 } });
      }
    }
    if (events.length === 0) return this.revision;
    this.revision = rev;
    for (const w of this.watchers) {
      const mine = events.filter((e) => e.kv.key.startsWith(w.prefix));
      if (mine.length > 0) w.cb.onEvents(mine, rev);
    }
    return rev;
  }

  /** A put no watch delivers (a change a cache missed, as after a restore no one saw); a list has it. */
  putUnseen(key: string, value: string): void {
    const old = this.data.get(key);
    this.revision++;
    this.data.set(key, { key, value, modRevision: this.revision, createRevision: old?.createRevision ?? this.revision, version: (old?.version ?? 0) + 1 });
  }

  get(key: string): KeyValue | undefined {
    return this.data.get(key);
  }
}
