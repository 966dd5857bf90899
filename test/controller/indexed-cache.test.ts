import test, { type ExecutionContext } from 'ava';
import { IndexedCache, SMALL_BUCKET, type CacheEntry } from '../../controller/indexed-cache.js';

const entry = (key: string, value: string[], modRevision = 1): CacheEntry<string[]> => ({ key, value, modRevision, createRevision: 1, version: 1 });

/** A reference index: value → keys in filing order, as one Set per value would keep them. */
function reference(entries: Map<string, string[]>): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const [key, values] of entries) for (const v of values) index.set(v, [...(index.get(v) ?? []), key]);
  return index;
}

/** A seeded generator of integers below n, from an LCG's high bits (its low bits repeat with short periods). */
function seeded(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor(seed / 65536) % n;
  };
}

/** Every read of the keys filed under `value` (in index 'by') gives `keys`, in filing order; `has` answers for each of `candidates`. */
function assertKeys(t: ExecutionContext, c: IndexedCache<string[]>, value: string, keys: readonly string[], candidates: readonly string[], label: string): void {
  const set = c.keysByIndex('by', value);
  t.deepEqual([...set], keys, label);
  t.is(set.size, keys.length, label);
  t.is(c.countByIndex('by', value), keys.length, label);
  const walked: string[] = [];
  c.forEachByIndex('by', value, (e) => walked.push(e.key));
  t.deepEqual(walked, keys, label);
  const values = c.valuesByIndex('by', value);
  t.deepEqual(values, keys.map((k) => c.get(k)!.value), label);
  t.is(values.length, keys.length, label);
  for (const k of candidates) t.is(set.has(k), keys.includes(k), `${label}: has ${k}`);
}

test('an index value with one key answers like a set of one', (t) => {
  const c = new IndexedCache<string[]>();
  c.addIndex('by', (_k, v) => v);
  c.set(entry('/a', ['x']));
  const keys = c.keysByIndex('by', 'x');
  t.is(keys.size, 1);
  t.true(keys.has('/a'));
  t.false(keys.has('/b'));
  t.deepEqual([...keys], ['/a']);
  t.deepEqual([...keys.keys()], ['/a']);
  t.deepEqual([...keys.values()], ['/a']);
  t.deepEqual([...keys.entries()], [['/a', '/a']]);
  const seen: string[] = [];
  keys.forEach((k) => seen.push(k));
  t.deepEqual(seen, ['/a']);
  t.is(c.keysByIndex('by', 'nothing').size, 0);
  t.deepEqual([...c.indexValues('by')], ['x']);
});

test('keys grow from one to many and shrink back, in filing order', (t) => {
  const c = new IndexedCache<string[]>();
  c.addIndex('by', (_k, v) => v);
  c.set(entry('/a', ['x']));
  c.set(entry('/b', ['x']));
  c.set(entry('/c', ['x']));
  t.deepEqual([...c.keysByIndex('by', 'x')], ['/a', '/b', '/c']);
  c.delete('/a');
  t.deepEqual([...c.keysByIndex('by', 'x')], ['/b', '/c']);
  c.set(entry('/b', ['y'], 2));
  t.deepEqual([...c.keysByIndex('by', 'x')], ['/c']);
  t.deepEqual([...c.keysByIndex('by', 'y')], ['/b']);
  c.set(entry('/a', ['x'], 3));
  t.deepEqual([...c.keysByIndex('by', 'x')], ['/c', '/a']);
  c.delete('/c');
  c.delete('/a');
  t.is(c.keysByIndex('by', 'x').size, 0);
  t.deepEqual([...c.indexValues('by')], ['y']);
});

test('an entry filed twice under one value, then moved, leaves nothing behind', (t) => {
  const c = new IndexedCache<string[]>();
  c.addIndex('by', (_k, v) => v);
  c.set(entry('/a', ['x', 'x']));
  t.deepEqual([...c.keysByIndex('by', 'x')], ['/a']);
  c.set(entry('/a', ['z'], 2));
  t.is(c.keysByIndex('by', 'x').size, 0);
  t.deepEqual([...c.indexValues('by')], ['z']);
  // The same with keys already there (an array), and past SMALL_BUCKET (a Set).
  for (const before of [1, SMALL_BUCKET]) {
    const d = new IndexedCache<string[]>();
    d.addIndex('by', (_k, v) => v);
    const others = Array.from({ length: before }, (_, i) => `/o${i}`);
    for (const k of others) d.set(entry(k, ['x']));
    d.set(entry('/twice', ['x', 'x']));
    t.deepEqual([...d.keysByIndex('by', 'x')], [...others, '/twice'], `after ${before}`);
    d.set(entry('/twice', ['z'], 2));
    t.deepEqual([...d.keysByIndex('by', 'x')], others, `after ${before}, moved`);
  }
});

// Over 8 values an index value holds a few keys (the key itself, an array); over 2, up to 40
// (past SMALL_BUCKET: a Set, and back to an array as keys leave).
for (const valueCount of [8, 2]) {
  test(`random sets and deletes keep the index equal to a rebuilt one (keys, order, values), ${valueCount} values`, (t) => {
    const rnd = seeded(7);
    const c = new IndexedCache<string[]>();
    c.addIndex('by', (_k, v) => v);
    const live = new Map<string, string[]>();
    let largest = 0;
    for (let step = 0; step < 5000; step++) {
      const key = `/k${rnd(40)}`;
      if (rnd(4) === 0) {
        c.delete(key);
        live.delete(key);
      } else {
        const values = [...new Set(Array.from({ length: rnd(3) }, () => `v${rnd(valueCount)}`))];
        c.set(entry(key, values, step + 1));
        // A key keeps its filing position while its values stay; re-filing (values changed) moves it last.
        const before = live.get(key);
        if (before && before.join() === values.join()) continue;
        live.delete(key);
        live.set(key, values);
      }
      if (step % 50 === 0) {
        const want = reference(live);
        t.deepEqual([...c.indexValues('by')].sort(), [...want.keys()].sort(), `values at step ${step}`);
        for (const [v, keys] of want) {
          largest = Math.max(largest, keys.length);
          assertKeys(t, c, v, keys, [], `keys of ${v} at step ${step}`);
        }
      }
    }
    if (valueCount === 2) t.true(largest > SMALL_BUCKET, `some value held ${largest} keys`);
  });
}

test('an index value holds up to SMALL_BUCKET keys, one more, and back, in filing order', (t) => {
  const c = new IndexedCache<string[]>();
  c.addIndex('by', (_k, v) => v);
  const keys = Array.from({ length: SMALL_BUCKET + 2 }, (_, i) => `/k${String(i).padStart(2, '0')}`);
  const expectAt = (n: number, list: string[]): void => assertKeys(t, c, 'x', list, keys, `${n} keys`);
  for (let n = 1; n <= SMALL_BUCKET + 2; n++) {
    c.set(entry(keys[n - 1]!, ['x']));
    expectAt(n, keys.slice(0, n));
  }
  // Filing a key again changes nothing (below, at and past the bound).
  c.set(entry(keys[0]!, ['x'], 2));
  expectAt(SMALL_BUCKET + 2, keys);
  // Leaving from the front, one by one, down to none.
  for (let n = SMALL_BUCKET + 1; n >= 0; n--) {
    c.delete(keys[SMALL_BUCKET + 1 - n]!);
    expectAt(n, keys.slice(SMALL_BUCKET + 2 - n));
  }
  t.deepEqual([...c.indexValues('by')], []);
});

test('countByIndex and forEachByIndex answer as keysByIndex does', (t) => {
  const c = new IndexedCache<string[]>();
  c.addIndex('by', (_k, v) => v);
  c.set(entry('/a', ['x', 'y']));
  c.set(entry('/b', ['x']));
  for (const v of ['x', 'y', 'none']) {
    t.is(c.countByIndex('by', v), c.keysByIndex('by', v).size);
    const seen: string[] = [];
    c.forEachByIndex('by', v, (e) => seen.push(e.key));
    t.deepEqual(seen, [...c.keysByIndex('by', v)]);
  }
  t.throws(() => c.countByIndex('nope', 'x'), { message: 'no index nope' });
  t.throws(() => c.forEachByIndex('nope', 'x', () => undefined), { message: 'no index nope' });
});

// An index function may give one value as a string: filed exactly as the one-element list.
test('an index function returning a string files like one returning a one-element list', (t) => {
  const asString = new IndexedCache<string[]>();
  const asList = new IndexedCache<string[]>();
  // Values of one element come back as a string, others as the list.
  asString.addIndex('by', (_k, v) => (v.length === 1 ? v[0]! : v));
  asList.addIndex('by', (_k, v) => v);
  const rand = seeded(3);
  const pool = ['x', 'y', 'z'];
  for (let i = 0; i < 3000; i++) {
    const key = `/k${rand(8)}`;
    if (rand(5) === 0) {
      asString.delete(key);
      asList.delete(key);
    } else {
      const values = Array.from({ length: rand(3) }, () => pool[rand(pool.length)]!);
      asString.set(entry(key, values));
      asList.set(entry(key, values));
    }
    for (const v of pool) {
      t.deepEqual([...asString.keysByIndex('by', v)], [...asList.keysByIndex('by', v)]);
      t.is(asString.countByIndex('by', v), asList.countByIndex('by', v));
    }
    t.deepEqual([...asString.indexValues('by')].sort(), [...asList.indexValues('by')].sort());
  }
});
