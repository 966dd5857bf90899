import test from 'ava';
import { IndexedCache, type CacheEntry } from '../../controller/indexed-cache.js';

const entry = (key: string, value: string[], modRevision = 1): CacheEntry<string[]> => ({ key, value, modRevision, createRevision: 1, version: 1 });

/** A reference index: value → keys in filing order, as one Set per value would keep them. */
function reference(entries: Map<string, string[]>): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const [key, values] of entries) for (const v of values) index.set(v, [...(index.get(v) ?? []), key]);
  return index;
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
});

test('random sets and deletes keep the index equal to a rebuilt one (keys, order, values)', (t) => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const c = new IndexedCache<string[]>();
  c.addIndex('by', (_k, v) => v);
  const live = new Map<string, string[]>();
  for (let step = 0; step < 5000; step++) {
    const key = `/k${rnd(40)}`;
    if (rnd(4) === 0) {
      c.delete(key);
      live.delete(key);
    } else {
      const values = [...new Set(Array.from({ length: rnd(3) }, () => `v${rnd(8)}`))];
      c.set(entry(key, values, step + 1));
      // A Set keeps a key's first filing position while it stays; re-filing (values changed) moves it last.
      const before = live.get(key);
      if (before && before.join() === values.join()) continue;
      live.delete(key);
      live.set(key, values);
    }
    if (step % 50 === 0) {
      const want = reference(live);
      t.deepEqual(new Set(c.indexValues('by')), new Set(want.keys()), `values at step ${step}`);
      for (const [v, keys] of want) t.deepEqual(new Set(c.keysByIndex('by', v)), new Set(keys), `keys of ${v} at step ${step}`);
    }
  }
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
  let seed = 3;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
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
