// Decimal strings of int64s without long.js's emulated division. etcd's protos carry every
// revision, version and lease as int64; etcd3 and our watch client decode them with
// @grpc/proto-loader's `longs: String`, which calls long.js's Long#toString for each one: about
// six Long allocations and two emulated divisions per revision, four per key-value and four per
// response header (one header per operation of a transaction). A fleet-100k cold start made
// about two million of them. Every value etcd hands out fits in 53 bits, where the number's own
// decimal string is exactly the same text; anything larger still takes long.js's path.
import { createRequire } from 'node:module';

interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
}

type ToString = (this: LongLike, radix?: number) => string;

/** 2^32 */
const TWO_32 = 4294967296;
/** |high| below this: |value| < 2^53, exactly representable. */
const SAFE_HIGH = 0x200000;

let installed = false;

/**
 * Give the `long` module that protobufjs uses (the CommonJS one; the ESM build is another copy)
 * a fast path for radix 10 within ±2^53. Idempotent; the output is unchanged for every value.
 */
export function installFastLongStrings(): void {
  if (installed) return;
  installed = true;
  const Long = createRequire(import.meta.url)('long') as { prototype: { toString: ToString } };
  Long.prototype.toString = fastToString(Long.prototype.toString);
}

/** @internal The fast path around long.js's own toString (exported for the property test). */
export function fastToString(original: ToString): ToString {
  return function toString(this: LongLike, radix?: number): string {
    if (radix === undefined || radix === 10) {
      const high = this.unsigned ? this.high >>> 0 : this.high;
      if (high < SAFE_HIGH && high >= -SAFE_HIGH) return String(high * TWO_32 + (this.low >>> 0));
    }
    return original.call(this, radix);
  };
}
