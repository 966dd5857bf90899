// etcd's TxnRequest encoded by hand, for the state store's transactions (issue 22). Through etcd3
// every write was built as objects of Buffers, converted by protobufjs' fromObject, encoded, and
// its answer decoded and copied with toObject into int64 strings: about 1 s of a 60-second storm
// (docs/performance.md). Here keys and values are written straight from their strings into one
// buffer sized beforehand, and the answer is read by the hand-written decoder
// (decodeTxnResponse).
//
// The fields, from etcd's rpc.proto:
//   TxnRequest         { repeated Compare compare = 1; repeated RequestOp success = 2; repeated RequestOp failure = 3; }
//   Compare            { CompareResult result = 1; CompareTarget target = 2; bytes key = 3;
//                        oneof target_union { int64 version = 4; int64 create_revision = 5; int64 mod_revision = 6;
//                                             bytes value = 7; int64 lease = 8; }
//                        bytes range_end = 64; }
//   RequestOp          { oneof request { RangeRequest request_range = 1; PutRequest request_put = 2;
//                                        DeleteRangeRequest request_delete_range = 3; } }
//   RangeRequest       { bytes key = 1; bytes range_end = 2; int64 limit = 3; }
//   PutRequest         { bytes key = 1; bytes value = 2; int64 lease = 3; }
//   DeleteRangeRequest { bytes key = 1; bytes range_end = 2; }
// As protobufjs does, a scalar at its default (0, empty) is left out, except the one member of
// `target_union` that is set: etcd reads which member is present, so it is written even when 0.

/** Bytes on the wire: a string is written as UTF-8. */
export type Bytes = string | Uint8Array;

export const COMPARE_RESULTS = { Equal: 0, Greater: 1, Less: 2, NotEqual: 3 } as const;

/** One condition of a transaction, named as etcd3 names it; exactly one of the target fields is set. */
export interface TxnCompare {
  key: Bytes;
  range_end?: Bytes;
  result: keyof typeof COMPARE_RESULTS;
  target: 'Version' | 'Create' | 'Mod' | 'Value' | 'Lease';
  version?: number;
  create_revision?: number;
  mod_revision?: number;
  value?: Bytes;
  /** A lease ID as its exact decimal (IDs use 63 bits), or a number. */
  lease?: string | number;
}

export type TxnOp =
  | { request_put: { key: Bytes; value: Bytes; lease?: string | number } }
  | { request_delete_range: { key: Bytes; range_end?: Bytes } }
  | { request_range: { key: Bytes; range_end?: Bytes; limit?: number } };

export interface TxnRequest {
  compare: readonly TxnCompare[];
  success: readonly TxnOp[];
  failure?: readonly TxnOp[];
}

const TARGETS = { Version: 0, Create: 1, Mod: 2, Value: 3, Lease: 4 } as const;
const TARGET_FIELD = { Version: 4, Create: 5, Mod: 6, Value: 7, Lease: 8 } as const;

/** Encodes one TxnRequest. Throws on a field it cannot write (a negative or fractional revision, a lease that is no integer). */
export function encodeTxnRequest(req: TxnRequest): Buffer {
  // Two passes in the same order: the first measures (each message's size and each string's
  // UTF-8 length, once: measured again where each is written, a string's length was taken five
  // times), the second writes, reading the measures back in order.
  const plan = new Plan(scratchMeasures);
  let size = 0;
  for (const c of req.compare) size += 1 + lengthDelimited(compareSize(plan, c));
  for (const op of req.success) size += 1 + lengthDelimited(opSize(plan, op));
  for (const op of req.failure ?? []) size += 1 + lengthDelimited(opSize(plan, op));
  const w = new Writer(size, plan);
  for (const c of req.compare) {
    w.tag(1, 2);
    w.varint(plan.next());
    writeCompare(w, c);
  }
  for (const op of req.success) writeOp(w, 2, op);
  for (const op of req.failure ?? []) writeOp(w, 3, op);
  if (w.pos !== w.buf.length) throw new Error(`TxnRequest encoding wrote ${w.pos} of ${w.buf.length} bytes`);
  return w.buf;
}

/** The one array of measures, reused by every encoding (each runs start to end without yielding). */
const scratchMeasures: number[] = [];

/**
 * The measures of the first pass, in the order the second pass needs them: a message's size is
 * known after its fields' (it is their sum) but written before them, so each message reserves
 * its slot first and fills it once measured.
 */
class Plan {
  private read = 0;
  private count = 0;

  /**
   * `measures` is reused, written from its start: grown by push afresh for every transaction it
   * was 7 % of the write path's garbage (and `length = 0` would drop its storage).
   */
  constructor(private readonly measures: number[]) {}

  /** Reserve the slot of a message whose size is measured next. */
  reserve(): number {
    this.measures[this.count] = 0;
    return this.count++;
  }

  /** Record a message's size in the slot it reserved; returns the size. */
  fill(slot: number, size: number): number {
    this.measures[slot] = size;
    return size;
  }

  /** A string's UTF-8 length (a byte array's length is read as it is). */
  bytes(b: Bytes): number {
    if (typeof b !== 'string') return b.length;
    const n = Buffer.byteLength(b);
    this.measures[this.count++] = n;
    return n;
  }

  /** The next measure, in recording order. */
  next(): number {
    if (this.read >= this.count) throw new Error('TxnRequest encoding read past its measures');
    return this.measures[this.read++]!;
  }
}

function compareSize(plan: Plan, c: TxnCompare): number {
  const slot = plan.reserve();
  let n = 0;
  const result = COMPARE_RESULTS[c.result];
  if (result !== 0) n += 1 + varintSize(result);
  const target = TARGETS[c.target];
  if (target !== 0) n += 1 + varintSize(target);
  n += bytesField(plan, c.key);
  n += 1 + targetValueSize(plan, c);
  n += bytesField(plan, c.range_end, 2);
  return plan.fill(slot, n);
}

function targetValueSize(plan: Plan, c: TxnCompare): number {
  switch (c.target) {
    case 'Value':
      return lengthDelimited(plan.bytes(c.value ?? ''));
    case 'Lease':
      return varintSize(int64Of(c.lease ?? 0));
    default:
      return varintSize(int64Of(c.target === 'Version' ? c.version : c.target === 'Create' ? c.create_revision : c.mod_revision));
  }
}

function writeCompare(w: Writer, c: TxnCompare): void {
  const result = COMPARE_RESULTS[c.result];
  if (result !== 0) {
    w.tag(1, 0);
    w.varint(result);
  }
  const target = TARGETS[c.target];
  if (target !== 0) {
    w.tag(2, 0);
    w.varint(target);
  }
  w.bytesField(3, c.key);
  const field = TARGET_FIELD[c.target];
  switch (c.target) {
    case 'Value':
      w.tag(field, 2);
      w.bytes(c.value ?? '');
      break;
    case 'Lease':
      w.tag(field, 0);
      w.varint(int64Of(c.lease ?? 0));
      break;
    default:
      w.tag(field, 0);
      w.varint(int64Of(c.target === 'Version' ? c.version : c.target === 'Create' ? c.create_revision : c.mod_revision));
  }
  w.bytesField(64, c.range_end);
}

/** A RequestOp's size; its own slot and its inner request's are recorded (outer first). */
function opSize(plan: Plan, op: TxnOp): number {
  const slot = plan.reserve();
  return plan.fill(slot, 1 + lengthDelimited(opBodySize(plan, op)));
}

function opBodySize(plan: Plan, op: TxnOp): number {
  const slot = plan.reserve();
  let n: number;
  if ('request_put' in op) {
    const p = op.request_put;
    n = bytesField(plan, p.key) + bytesField(plan, p.value) + int64Field(p.lease);
  } else if ('request_delete_range' in op) {
    const d = op.request_delete_range;
    n = bytesField(plan, d.key) + bytesField(plan, d.range_end);
  } else {
    const r = op.request_range;
    n = bytesField(plan, r.key) + bytesField(plan, r.range_end) + int64Field(r.limit);
  }
  return plan.fill(slot, n);
}

function writeOp(w: Writer, field: number, op: TxnOp): void {
  w.tag(field, 2);
  w.varint(w.plan.next());
  w.tag('request_range' in op ? 1 : 'request_put' in op ? 2 : 3, 2);
  w.varint(w.plan.next());
  if ('request_put' in op) {
    const p = op.request_put;
    w.bytesField(1, p.key);
    w.bytesField(2, p.value);
    w.int64Field(3, p.lease);
  } else if ('request_delete_range' in op) {
    const d = op.request_delete_range;
    w.bytesField(1, d.key);
    w.bytesField(2, d.range_end);
  } else {
    const r = op.request_range;
    w.bytesField(1, r.key);
    w.bytesField(2, r.range_end);
    w.int64Field(3, r.limit);
  }
}

// --- sizes ---

/** A length-delimited payload of `n` bytes with its length prefix. */
function lengthDelimited(n: number): number {
  return varintSize(n) + n;
}

/** A bytes field (a tag of `tagSize` bytes) left out when empty; its length is recorded when it is a string. */
function bytesField(plan: Plan, b: Bytes | undefined, tagSize = 1): number {
  if (b === undefined) return 0;
  const n = plan.bytes(b);
  return n === 0 ? 0 : tagSize + lengthDelimited(n);
}

/** An int64 field (one-byte tag) left out at 0. */
function int64Field(v: string | number | undefined): number {
  if (v === undefined) return 0;
  const n = int64Of(v);
  return n === 0 || n === 0n ? 0 : 1 + varintSize(n);
}

/** A non-negative int64 as a number (exact below 2^53) or, for a lease's decimal, a bigint. */
function int64Of(v: string | number | undefined): number | bigint {
  if (v === undefined) return 0;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`cannot encode ${v} as an etcd revision or count`);
    return v;
  }
  if (!/^\d{1,19}$/.test(v)) throw new RangeError(`cannot encode ${JSON.stringify(v)} as an etcd int64`);
  const n = BigInt(v);
  if (n >= 1n << 63n) throw new RangeError(`${v} is past int64`);
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

function varintSize(v: number | bigint): number {
  if (typeof v === 'bigint') {
    let n = 1;
    while (v >= 0x80n) {
      v >>= 7n;
      n++;
    }
    return n;
  }
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

class Writer {
  readonly buf: Buffer;
  pos = 0;

  constructor(
    size: number,
    /** The first pass's measures, read in the order they were taken. */
    readonly plan: Plan,
  ) {
    this.buf = Buffer.allocUnsafe(size);
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  varint(v: number | bigint): void {
    const buf = this.buf;
    if (typeof v === 'bigint') {
      while (v >= 0x80n) {
        buf[this.pos++] = Number(v & 0x7fn) | 0x80;
        v >>= 7n;
      }
      buf[this.pos++] = Number(v);
      return;
    }
    while (v >= 0x80) {
      buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[this.pos++] = v;
  }

  /** A length-prefixed string (its length measured in the first pass) or byte array. */
  bytes(b: Bytes): void {
    if (typeof b === 'string') {
      const n = this.plan.next();
      this.varint(n);
      if (n > 0) this.pos += this.buf.write(b, this.pos, n, 'utf8');
    } else {
      this.varint(b.length);
      this.buf.set(b, this.pos);
      this.pos += b.length;
    }
  }

  /** A bytes field left out when empty (as bytesField measured it: a string's length is read back either way). */
  bytesField(field: number, b: Bytes | undefined): void {
    if (b === undefined) return;
    if (typeof b === 'string') {
      const n = this.plan.next();
      if (n === 0) return;
      this.tag(field, 2);
      this.varint(n);
      this.pos += this.buf.write(b, this.pos, n, 'utf8');
      return;
    }
    if (b.length === 0) return;
    this.tag(field, 2);
    this.bytes(b);
  }

  int64Field(field: number, v: string | number | undefined): void {
    if (v === undefined) return;
    const n = int64Of(v);
    if (n === 0 || n === 0n) return;
    this.tag(field, 0);
    this.varint(n);
  }
}
