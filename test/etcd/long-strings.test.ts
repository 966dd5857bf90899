import { createRequire } from 'node:module';
import test from 'ava';
import { fastToString } from '../../src/etcd/long-strings.js';

interface LongValue {
  low: number;
  high: number;
  unsigned: boolean;
  toString(radix?: number): string;
}
interface LongModule {
  fromBits(low: number, high: number, unsigned?: boolean): LongValue;
  fromString(s: string, unsigned?: boolean): LongValue;
  prototype: { toString(this: LongValue, radix?: number): string };
  MIN_VALUE: LongValue;
  MAX_VALUE: LongValue;
  MAX_UNSIGNED_VALUE: LongValue;
}

const Long = createRequire(import.meta.url)('long') as LongModule;
// The module's own toString, whether or not another test in this process installed the fast path.
const original = Long.prototype.toString;
const fast = fastToString(original);

test('the fast decimal strings equal long.js’s for edge values, signed and unsigned', (t) => {
  const edges = ['0', '1', '-1', '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740991', '-9007199254740992', '-9007199254740993', '4294967295', '4294967296', '-4294967296', '7587862068226563594'];
  const values = [...edges.map((s) => Long.fromString(s)), Long.MIN_VALUE, Long.MAX_VALUE, Long.MAX_UNSIGNED_VALUE, Long.fromString('18446744073709551615', true), Long.fromString('9007199254740991', true)];
  for (const v of values) {
    t.is(fast.call(v), original.call(v), `${original.call(v)} (unsigned ${v.unsigned})`);
    t.is(fast.call(v, 10), original.call(v, 10));
    t.is(fast.call(v, 16), original.call(v, 16));
  }
});

test('the fast decimal strings equal long.js’s for random bit patterns', (t) => {
  let seed = 12345;
  const next32 = (): number => {
    seed = (Math.imul(seed, 1664525) + 1013904223) | 0;
    return seed;
  };
  for (let i = 0; i < 20_000; i++) {
    // Mostly small highs (etcd's revisions), some anywhere.
    const high = i % 3 === 0 ? next32() : next32() % 0x400000;
    const v = Long.fromBits(next32(), high, i % 2 === 0);
    const want = original.call(v);
    if (fast.call(v) !== want) t.fail(`${want}: got ${fast.call(v)}`);
  }
  t.pass();
});
