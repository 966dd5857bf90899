// An in-memory copy of the watched keys with secondary indexes, after client-go's
// cache.Indexer: an index function maps an entry to the values it is filed under, so a
// parent can find its children (or a child its parents) without scanning.
//
// Most index values hold one key (a model's package, a placement, a scenario's target): such a
// value holds the key itself, and only a value with two or more keys holds a Set. At fleet scale
// (100k containers) that was 125,000 one-element Sets, about 130 bytes each, allocated and
// collected on every cold start.

export interface CacheEntry<T> {
  readonly key: string;
  readonly value: T;
  readonly modRevision: number;
  readonly createRevision: number;
  readonly version: number;
}

/** The value an entry is filed under, or its values: a string for one saves an array per call. */
export type IndexFunc<T> = (key: string, value: T) => string | readonly string[];

type IndexValues = string | readonly string[];

const NONE: readonly string[] = [];

/** The keys filed under one index value: the key itself while there is only one. */
type Bucket = string | Set<string>;

export class IndexedCache<T> {
  private readonly entries = new Map<string, CacheEntry<T>>();
  private readonly indexes = new Map<string, Map<string, Bucket>>();
  /** Every index with its function, in the order added: what set() and delete() walk (no Map iterator per write). */
  private readonly indexList: { readonly fn: IndexFunc<T>; readonly index: Map<string, Bucket> }[] = [];

  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.indexes.has(name)) throw new Error(`index ${name} already exists`);
    const index = new Map<string, Bucket>();
    this.indexes.set(name, index);
    this.indexList.push({ fn, index });
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
    const bucket = index.get(value);
    if (bucket === undefined) return EMPTY_SET;
    return typeof bucket === 'string' ? new OneKey(bucket) : bucket;
  }

  /** How many keys are filed under `value` in index `name` (keysByIndex(...).size, without a set). */
  countByIndex(name: string, value: string): number {
    const bucket = this.index(name).get(value);
    return bucket === undefined ? 0 : typeof bucket === 'string' ? 1 : bucket.size;
  }

  /** Call `fn` on each entry filed under `value` in index `name`, in keysByIndex's order, with no iterator or set made. */
  forEachByIndex(name: string, value: string, fn: (entry: CacheEntry<T>) => void): void {
    const bucket = this.index(name).get(value);
    if (bucket === undefined) return;
    if (typeof bucket === 'string') {
      const e = this.entries.get(bucket);
      if (e !== undefined) fn(e);
      return;
    }
    for (const key of bucket) {
      const e = this.entries.get(key);
      if (e !== undefined) fn(e);
    }
  }

  private index(name: string): Map<string, Bucket> {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index ${name}`);
    return index;
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
    const list = this.indexList;
    for (let i = 0; i < list.length; i++) {
      const { fn, index } = list[i]!;
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
    const list = this.indexList;
    for (let i = 0; i < list.length; i++) this.unfile(list[i]!.index, list[i]!.fn(old.key, old.value), key);
    return old;
  }

  private file(index: Map<string, Bucket>, values: IndexValues, key: string): void {
    if (typeof values === 'string') fileOne(index, values, key);
    else for (const v of values) fileOne(index, v, key);
  }

  private unfile(index: Map<string, Bucket>, values: IndexValues, key: string): void {
    if (typeof values === 'string') unfileOne(index, values, key);
    else for (const v of values) unfileOne(index, v, key);
  }
}

function fileOne(index: Map<string, Bucket>, v: string, key: string): void {
  const bucket = index.get(v);
  if (bucket === undefined) index.set(v, key);
  else if (typeof bucket !== 'string') bucket.add(key);
  else if (bucket !== key) index.set(v, new Set([bucket, key]));
}

function unfileOne(index: Map<string, Bucket>, v: string, key: string): void {
  const bucket = index.get(v);
  if (bucket === undefined) return;
  if (typeof bucket === 'string') {
    if (bucket === key) index.delete(v);
    return;
  }
  bucket.delete(key);
  // Back to the key itself when one is left (a Set keeps insertion order: so does this).
  if (bucket.size <= 1) {
    const [last] = bucket;
    if (last === undefined) index.delete(v);
    else index.set(v, last);
  }
}

/** A read-only set of one key, for an index value that holds one. */
class OneKey implements ReadonlySet<string> {
  constructor(private readonly key: string) {}

  get size(): number {
    return 1;
  }

  has(value: string): boolean {
    return value === this.key;
  }

  forEach(fn: (value: string, value2: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    fn.call(thisArg, this.key, this.key, this);
  }

  *entries(): SetIterator<[string, string]> {
    yield [this.key, this.key];
  }

  keys(): SetIterator<string> {
    return this.values();
  }

  *values(): SetIterator<string> {
    yield this.key;
  }

  [Symbol.iterator](): SetIterator<string> {
    return this.values();
  }
}

const EMPTY_SET: ReadonlySet<string> = new Set();

function sameValues(a: IndexValues, b: IndexValues): boolean {
  // A string is the one-element list of itself.
  if (typeof a === 'string') return typeof b === 'string' ? a === b : b.length === 1 && b[0] === a;
  if (typeof b === 'string') return a.length === 1 && a[0] === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
