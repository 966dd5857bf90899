// An in-memory copy of the watched keys with secondary indexes, after client-go's
// cache.Indexer: an index function maps an entry to the values it is filed under, so a
// parent can find its children (or a child its parents) without scanning.
//
// Most index values hold one key (a model's package, a placement, a scenario's target): such a
// value holds the key itself. At fleet scale (100k containers) that was 125,000 one-element Sets,
// about 130 bytes each, allocated and collected on every cold start. A value with a few keys (a
// model's containers) holds them in an array, which a Set of the same keys outweighs several
// times and is slower to walk (every model reconcile walks its model's); only a value with more
// than SMALL_BUCKET keys (a node's containers) holds a Set.

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

/** The keys filed under one index value, in filing order: the key itself while there is only one, an array while there are few. */
type Bucket = string | string[] | Set<string>;

/** The most keys an index value holds in an array; one more turns it into a Set. */
export const SMALL_BUCKET = 8;
/** A Set shrinks back to an array at this many keys (not at SMALL_BUCKET: a value going back and forth would convert on every change). */
const SHRINK_TO_ARRAY = SMALL_BUCKET / 2;

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
    return typeof bucket === 'string' ? new KeyList([bucket]) : Array.isArray(bucket) ? new KeyList(bucket) : bucket;
  }

  /** How many keys are filed under `value` in index `name` (keysByIndex(...).size, without a set). */
  countByIndex(name: string, value: string): number {
    const bucket = this.index(name).get(value);
    return bucket === undefined ? 0 : typeof bucket === 'string' ? 1 : Array.isArray(bucket) ? bucket.length : bucket.size;
  }

  /** Call `fn` on each entry filed under `value` in index `name`, in keysByIndex's order, with no iterator or set made; `fn` must not change the cache. */
  forEachByIndex(name: string, value: string, fn: (entry: CacheEntry<T>) => void): void {
    const bucket = this.index(name).get(value);
    if (bucket === undefined) return;
    if (typeof bucket === 'string') {
      const e = this.entries.get(bucket);
      if (e !== undefined) fn(e);
      return;
    }
    if (Array.isArray(bucket)) {
      for (let i = 0; i < bucket.length; i++) {
        const e = this.entries.get(bucket[i]!);
        if (e !== undefined) fn(e);
      }
      return;
    }
    for (const key of bucket) {
      const e = this.entries.get(key);
      if (e !== undefined) fn(e);
    }
  }

  /** The values of the entries filed under `value` in index `name`, in keysByIndex's order, in an array of their number (no closure, no growth). */
  valuesByIndex(name: string, value: string): T[] {
    const bucket = this.index(name).get(value);
    if (bucket === undefined) return [];
    if (typeof bucket === 'string') {
      const e = this.entries.get(bucket);
      return e === undefined ? [] : [e.value];
    }
    const out = new Array<T>(Array.isArray(bucket) ? bucket.length : bucket.size);
    let n = 0;
    for (const key of bucket) {
      const e = this.entries.get(key);
      if (e !== undefined) out[n++] = e.value;
    }
    out.length = n;
    return out;
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
  else if (typeof bucket === 'string') {
    if (bucket !== key) index.set(v, [bucket, key]);
  } else if (!Array.isArray(bucket)) bucket.add(key);
  else if (!bucket.includes(key)) {
    // A copy one longer by concat, which sizes it exactly: push or a spread grow the array's
    // store by half again plus 16 slots, and four keys then took about 225 bytes against 120.
    if (bucket.length < SMALL_BUCKET) index.set(v, bucket.concat(key));
    else index.set(v, new Set(bucket).add(key));
  }
}

function unfileOne(index: Map<string, Bucket>, v: string, key: string): void {
  const bucket = index.get(v);
  if (bucket === undefined) return;
  if (typeof bucket === 'string') {
    if (bucket === key) index.delete(v);
    return;
  }
  if (Array.isArray(bucket)) {
    const at = bucket.indexOf(key);
    if (at < 0) return;
    bucket.splice(at, 1);
    // Back to the key itself when one is left (filing order is kept throughout).
    if (bucket.length === 1) index.set(v, bucket[0]!);
    return;
  }
  bucket.delete(key);
  if (bucket.size <= SHRINK_TO_ARRAY) index.set(v, bucket.size === 1 ? bucket.values().next().value! : [...bucket]);
}

/** A read-only set over an index value's few keys (the array itself: a view, as a Set bucket is). */
class KeyList implements ReadonlySet<string> {
  constructor(private readonly list: readonly string[]) {}

  get size(): number {
    return this.list.length;
  }

  has(value: string): boolean {
    return this.list.includes(value);
  }

  forEach(fn: (value: string, value2: string, set: ReadonlySet<string>) => void, thisArg?: unknown): void {
    for (const k of this.list) fn.call(thisArg, k, k, this);
  }

  *entries(): SetIterator<[string, string]> {
    for (const k of this.list) yield [k, k];
  }

  keys(): SetIterator<string> {
    return this.values();
  }

  *values(): SetIterator<string> {
    yield* this.list;
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
