// An in-memory copy of the watched keys with secondary indexes, after client-go's
// cache.Indexer: an index function maps an entry to the values it is filed under, so a
// parent can find its children (or a child its parents) without scanning.

export interface CacheEntry<T> {
  readonly key: string;
  readonly value: T;
  readonly modRevision: number;
  readonly createRevision: number;
  readonly version: number;
}

export type IndexFunc<T> = (key: string, value: T) => readonly string[];

const NONE: readonly string[] = [];

export class IndexedCache<T> {
  private readonly entries = new Map<string, CacheEntry<T>>();
  private readonly indexFuncs = new Map<string, IndexFunc<T>>();
  private readonly indexes = new Map<string, Map<string, Set<string>>>();

  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.indexFuncs.has(name)) throw new Error(`index ${name} already exists`);
    this.indexFuncs.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indexes.set(name, index);
    for (const e of this.entries.values()) this.file(index, fn(e.key, e.value), e.key);
  }

  get(key: string): CacheEntry<T> | undefined {
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  get size(): number {
    return this.entries.size;
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  values(): IterableIterator<CacheEntry<T>> {
    return this.entries.values();
  }

  /** Keys filed under `value` in index `name`. */
  keysByIndex(name: string, value: string): ReadonlySet<string> {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index ${name}`);
    return index.get(value) ?? EMPTY_SET;
  }

  /** The values an index currently holds (for example every model that has containers). */
  indexValues(name: string): IterableIterator<string> {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index ${name}`);
    return index.keys();
  }

  set(entry: CacheEntry<T>): CacheEntry<T> | undefined {
    const old = this.entries.get(entry.key);
    this.entries.set(entry.key, entry);
    for (const [name, fn] of this.indexFuncs) {
      const index = this.indexes.get(name)!;
      const before = old ? fn(old.key, old.value) : NONE;
      const after = fn(entry.key, entry.value);
      if (sameValues(before, after)) continue;
      this.unfile(index, before, entry.key);
      this.file(index, after, entry.key);
    }
    return old;
  }

  delete(key: string): CacheEntry<T> | undefined {
    const old = this.entries.get(key);
    if (!old) return undefined;
    this.entries.delete(key);
    for (const [name, fn] of this.indexFuncs) {
      this.unfile(this.indexes.get(name)!, fn(old.key, old.value), key);
    }
    return old;
  }

  private file(index: Map<string, Set<string>>, values: readonly string[], key: string): void {
    for (const v of values) {
      let set = index.get(v);
      if (!set) {
        set = new Set();
        index.set(v, set);
      }
      set.add(key);
    }
  }

  private unfile(index: Map<string, Set<string>>, values: readonly string[], key: string): void {
    for (const v of values) {
      const set = index.get(v);
      if (!set) continue;
      set.delete(key);
      if (set.size === 0) index.delete(v);
    }
  }
}

const EMPTY_SET: ReadonlySet<string> = new Set();

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
