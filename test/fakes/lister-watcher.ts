// An in-memory ListerWatcher (client-go's fake controller source): a key-value map with etcd's
// revision semantics, whose watches deliver every change synchronously, in order. For unit tests
// of the machinery and the reconcilers that need no etcd.
import type { KeyValue, ListResult, ListerWatcher, WatchCallbacks, WatchHandle } from '../../controller/lister-watcher.js';

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
    const rev = ++this.revision;
    const old = this.data.get(key);
    const kv: KeyValue = { key, value, modRevision: rev, createRevision: old?.createRevision ?? rev, version: (old?.version ?? 0) + 1 };
    this.data.set(key, kv);
    this.emit({ type: 'put', kv }, rev);
    return kv;
  }

  delete(key: string): void {
    if (!this.data.delete(key)) return;
    const rev = ++this.revision;
    this.emit({ type: 'delete', kv: { key, value: '', modRevision: rev, createRevision: 0, version: 0 } }, rev);
  }

  get(key: string): KeyValue | undefined {
    return this.data.get(key);
  }

  private emit(ev: { type: 'put' | 'delete'; kv: KeyValue }, rev: number): void {
    for (const w of this.watchers) if (ev.kv.key.startsWith(w.prefix)) w.cb.onEvents([ev], rev);
  }
}
