// etcd's WatchResponse decoded by hand, straight from the protobuf wire format, for the watch
// client's Watch method (issue 22). @grpc/proto-loader decoded each response with protobufjs
// into message objects, then copied them with toObject into plain objects, turning every int64
// (four per key-value, one per header) into a long.js Long and then a decimal string that the
// informer turned back into a number. Most events a leader receives are the echo of its own
// writes, dropped by revision at once. Here one pass reads what the program uses: revisions are
// numbers, keys and values are views of the message (no copy), nothing else is allocated.
//
// The fields, from etcd's rpc.proto and kv.proto (etcd3 ships the copy the client loads):
//   WatchResponse  { ResponseHeader header = 1; int64 watch_id = 2; bool created = 3;
//                    bool canceled = 4; int64 compact_revision = 5; string cancel_reason = 6;
//                    bool fragment = 7; repeated mvccpb.Event events = 11; }
//   ResponseHeader { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
//   Event          { EventType type = 1 (Put = 0, Delete = 1); KeyValue kv = 2; KeyValue prev_kv = 3; }
//   KeyValue       { bytes key = 1; int64 create_revision = 2; int64 mod_revision = 3;
//                    int64 version = 4; bytes value = 5; int64 lease = 6; }
//   RangeResponse  { ResponseHeader header = 1; repeated mvccpb.KeyValue kvs = 2; bool more = 3; int64 count = 4; }
//                  (the paged lists' pages: decodeListPage, straight to the informers' key-values)
//   TxnResponse    { ResponseHeader header = 1; bool succeeded = 2; repeated ResponseOp responses = 3; }
//   ResponseOp     { oneof { RangeResponse response_range = 1; PutResponse response_put = 2;
//                    DeleteRangeResponse response_delete_range = 3; TxnResponse response_txn = 4; } }
//                  (the state store's transactions: decodeTxnResponse; only a range's answer is read)
// Everything else (cluster_id, member_id, raft_term, fields a newer etcd adds) is skipped by wire
// type. As protobufjs does, a field that appears twice keeps its last value (a message is
// replaced, not merged). A malformed message throws, which grpc-js turns into a failed stream.
//
// int64s become numbers: exact within ±2^53 (every revision and version etcd hands out), above it
// the nearest number, as Number() of the decimal string gave before. A lease ID is random over 63
// bits, so it stays an exact decimal string.
//
// Keys and values are views of the buffer grpc-js assembled for this one message (Buffer.concat of
// its frames): holding one keeps that message's bytes alive, nothing more. Every consumer turns
// them into strings while handling the response; whoever keeps one longer must copy it.

/** A key-value as decoded: revisions as numbers, key and value as views of the message. */
export interface DecodedKeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: number;
  mod_revision: number;
  version: number;
  /** Exact decimal (lease IDs use all 63 bits); '0': no lease. */
  lease: string;
}

export interface DecodedWatchEvent {
  type: 'Put' | 'Delete';
  /** An empty key-value (revisions 0) if etcd sent none; it always does. */
  kv: DecodedKeyValue;
  /** The key before the change, when the watch asked for it (`prevKv`) and there was one. */
  prev_kv: DecodedKeyValue | null;
}

export interface DecodedWatchResponse {
  /** header.revision; 0 without a header. */
  revision: number;
  watch_id: number;
  created: boolean;
  canceled: boolean;
  /** 0: not compacted. */
  compact_revision: number;
  cancel_reason: string;
  /** More responses of the same revision follow (only when the create request asked for fragments). */
  fragment: boolean;
  events: DecodedWatchEvent[];
}

/** A RangeResponse as decoded; `header.revision` as etcd3's shape has it, but a number. */
export interface DecodedRangeResponse {
  /** revision: 0 without a header. */
  header: { revision: number };
  kvs: DecodedKeyValue[];
  more: boolean;
  count: number;
}

/**
 * A listed key-value as the informers take it (controller/lister-watcher.ts's KeyValue): its key a
 * string, its value read from the page's message when asked (the informer asks once, to parse it,
 * and keeps what it parsed). One object per key: a key-value with two views of the message, then
 * an object of the informer's shape around them, were three, alive together for the whole page
 * (5,000 keys, more than a young generation of 1 MB holds at a cold start's listing), so a page's
 * worth was promoted and collected with the old generation: about 50 MB at fleet 100k
 * (docs/performance.md, "Pages decoded straight to key-values").
 */
export class PageKeyValue {
  constructor(
    readonly key: string,
    private readonly message: Buffer,
    private readonly valueStart: number,
    private readonly valueEnd: number,
    readonly modRevision: number,
    readonly createRevision: number,
    readonly version: number,
  ) {}

  get value(): string {
    return this.message.toString('utf8', this.valueStart, this.valueEnd);
  }
}

/** A RangeResponse as a list's page: its key-values, with what paging needs of them. */
export interface DecodedListPage {
  /** revision: 0 without a header. */
  header: { revision: number };
  kvs: PageKeyValue[];
  more: boolean;
  /** The last key's bytes (a view of the message), where the next page starts; undefined on an empty page. */
  lastKey: Buffer | undefined;
  /** The keys' and values' bytes, which size the next page. */
  bytes: number;
}

/** A TxnResponse as decoded: the header's revision, whether the compares held, each range's answer. */
export interface DecodedTxnResponse {
  /** revision: 0 without a header. */
  header: { revision: number };
  succeeded: boolean;
  /** One per operation etcd ran, in order; only a range's answer is decoded. */
  responses: { response_range?: DecodedRangeResponse }[];
}

const TWO_32 = 4294967296;
const EMPTY = Buffer.alloc(0);

// The message being decoded. Decoding is synchronous and never re-entered.
let buf: Buffer = EMPTY;
let pos = 0;
/** The high 32 bits of the last varint read by varint64 (as a signed int32). */
let hi = 0;

/** Decodes one WatchResponse message. Throws on a malformed one. */
export function decodeWatchResponse(message: Buffer): DecodedWatchResponse {
  return decodeWhole(message, watchResponse);
}

/** Decodes one RangeResponse message. Throws on a malformed one. */
export function decodeRangeResponse(message: Buffer): DecodedRangeResponse {
  return decodeWhole(message, rangeResponse);
}

/** Decodes one RangeResponse message as a list's page. Throws on a malformed one. */
export function decodeListPage(message: Buffer): DecodedListPage {
  return decodeWhole(message, listPage);
}

/** Decodes one TxnResponse message. Throws on a malformed one. */
export function decodeTxnResponse(message: Buffer): DecodedTxnResponse {
  return decodeWhole(message, txnResponse);
}

/** `message` read whole by `read`, the reader's state reset before and after. */
function decodeWhole<T>(message: Buffer, read: (end: number) => T): T {
  buf = message;
  pos = 0;
  try {
    return read(message.length);
  } finally {
    buf = EMPTY; // keep no reference to the message between calls
  }
}

function txnResponse(end: number): DecodedTxnResponse {
  const res: DecodedTxnResponse = { header: { revision: 0 }, succeeded: false, responses: [] };
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case (1 << 3) | 2:
        res.header = { revision: header(lengthEnd(end)) };
        break;
      case (2 << 3) | 0:
        res.succeeded = bool(end);
        break;
      case (3 << 3) | 2:
        res.responses.push(responseOp(lengthEnd(end)));
        break;
      default:
        skip(tag, end);
    }
  }
  return res;
}

/** The answer of an operation that is not a range: nothing is read of it, so one object serves all. */
const NOT_A_RANGE: { response_range?: DecodedRangeResponse } = Object.freeze({});

function responseOp(end: number): { response_range?: DecodedRangeResponse } {
  let op = NOT_A_RANGE;
  while (pos < end) {
    const tag = varint32(end);
    // A oneof: the last member present is the answer.
    if (tag === ((1 << 3) | 2)) op = { response_range: rangeResponse(lengthEnd(end)) };
    else {
      if ((tag & 7) === 2 && tag >>> 3 >= 2 && tag >>> 3 <= 4) op = NOT_A_RANGE;
      skip(tag, end);
    }
  }
  return op;
}

function rangeResponse(end: number): DecodedRangeResponse {
  const res: DecodedRangeResponse = { header: { revision: 0 }, kvs: [], more: false, count: 0 };
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case (1 << 3) | 2:
        res.header = { revision: header(lengthEnd(end)) };
        break;
      case (2 << 3) | 2:
        res.kvs.push(keyValue(lengthEnd(end)));
        break;
      case (3 << 3) | 0:
        res.more = bool(end);
        break;
      case (4 << 3) | 0:
        res.count = int64(end);
        break;
      default:
        skip(tag, end);
    }
  }
  return res;
}

function listPage(end: number): DecodedListPage {
  const res: DecodedListPage = { header: { revision: 0 }, kvs: [], more: false, lastKey: undefined, bytes: 0 };
  let lastStart = 0;
  let lastEnd = 0;
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case (1 << 3) | 2:
        res.header = { revision: header(lengthEnd(end)) };
        break;
      case (2 << 3) | 2: {
        const kv = pageKeyValue(lengthEnd(end));
        res.kvs.push(kv);
        lastStart = keyStart;
        lastEnd = keyEnd;
        res.bytes += keyEnd - keyStart + valueBytes;
        break;
      }
      case (3 << 3) | 0:
        res.more = bool(end);
        break;
      default:
        skip(tag, end);
    }
  }
  if (res.kvs.length > 0) res.lastKey = lastStart === lastEnd ? EMPTY : buf.subarray(lastStart, lastEnd);
  return res;
}

// Where the last key read by pageKeyValue lies in the message, and its value's length.
let keyStart = 0;
let keyEnd = 0;
let valueBytes = 0;

/** A key-value read as keyValue() reads it (the last of a field given twice wins), made a PageKeyValue. */
function pageKeyValue(end: number): PageKeyValue {
  keyStart = keyEnd = 0;
  let valueStart = 0;
  let valueEnd = 0;
  let createRevision = 0;
  let modRevision = 0;
  let version = 0;
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case (1 << 3) | 2:
        keyEnd = lengthEnd(end);
        keyStart = pos;
        pos = keyEnd;
        break;
      case (2 << 3) | 0:
        createRevision = int64(end);
        break;
      case (3 << 3) | 0:
        modRevision = int64(end);
        break;
      case (4 << 3) | 0:
        version = int64(end);
        break;
      case (5 << 3) | 2:
        valueEnd = lengthEnd(end);
        valueStart = pos;
        pos = valueEnd;
        break;
      default:
        skip(tag, end);
    }
  }
  valueBytes = valueEnd - valueStart;
  const key = keyStart === keyEnd ? '' : buf.toString('utf8', keyStart, keyEnd);
  return new PageKeyValue(key, valueStart === valueEnd ? EMPTY : buf, valueStart, valueEnd, modRevision, createRevision, version);
}

function watchResponse(end: number): DecodedWatchResponse {
  const res: DecodedWatchResponse = {
    revision: 0,
    watch_id: 0,
    created: false,
    canceled: false,
    compact_revision: 0,
    cancel_reason: '',
    fragment: false,
    events: [],
  };
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case (1 << 3) | 2:
        res.revision = header(lengthEnd(end));
        break;
      case (2 << 3) | 0:
        res.watch_id = int64(end);
        break;
      case (3 << 3) | 0:
        res.created = bool(end);
        break;
      case (4 << 3) | 0:
        res.canceled = bool(end);
        break;
      case (5 << 3) | 0:
        res.compact_revision = int64(end);
        break;
      case (6 << 3) | 2: {
        const e = lengthEnd(end);
        res.cancel_reason = buf.toString('utf8', pos, e);
        pos = e;
        break;
      }
      case (7 << 3) | 0:
        res.fragment = bool(end);
        break;
      case (11 << 3) | 2:
        res.events.push(event(lengthEnd(end)));
        break;
      default:
        skip(tag, end);
    }
  }
  return res;
}

/** A ResponseHeader: only its revision. */
function header(end: number): number {
  let revision = 0;
  while (pos < end) {
    const tag = varint32(end);
    if (tag === ((3 << 3) | 0)) revision = int64(end);
    else skip(tag, end);
  }
  return revision;
}

function event(end: number): DecodedWatchEvent {
  let type: 'Put' | 'Delete' = 'Put';
  let kv: DecodedKeyValue | null = null;
  let prev: DecodedKeyValue | null = null;
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case (1 << 3) | 0:
        // An enum is an int32: the low 32 bits. etcd has no other type; like the code before,
        // anything but Put is not a Put.
        type = varint32(end) === 0 ? 'Put' : 'Delete';
        break;
      case (2 << 3) | 2:
        kv = keyValue(lengthEnd(end));
        break;
      case (3 << 3) | 2:
        prev = keyValue(lengthEnd(end));
        break;
      default:
        skip(tag, end);
    }
  }
  return { type, kv: kv ?? emptyKeyValue(), prev_kv: prev };
}

function emptyKeyValue(): DecodedKeyValue {
  return { key: EMPTY, value: EMPTY, create_revision: 0, mod_revision: 0, version: 0, lease: '0' };
}

function keyValue(end: number): DecodedKeyValue {
  const kv = emptyKeyValue();
  while (pos < end) {
    const tag = varint32(end);
    switch (tag) {
      case (1 << 3) | 2:
        kv.key = bytes(end);
        break;
      case (2 << 3) | 0:
        kv.create_revision = int64(end);
        break;
      case (3 << 3) | 0:
        kv.mod_revision = int64(end);
        break;
      case (4 << 3) | 0:
        kv.version = int64(end);
        break;
      case (5 << 3) | 2:
        kv.value = bytes(end);
        break;
      case (6 << 3) | 0:
        kv.lease = int64String(end);
        break;
      default:
        skip(tag, end);
    }
  }
  return kv;
}

/** A length-delimited field's bytes as a view of the message. */
function bytes(limit: number): Buffer {
  const e = lengthEnd(limit);
  const start = pos;
  pos = e;
  return start === e ? EMPTY : buf.subarray(start, e);
}

/** Reads a length prefix; returns where the field ends (checked against `limit`). */
function lengthEnd(limit: number): number {
  const len = varint32(limit);
  const e = pos + len;
  if (len < 0 || e > limit) throw truncated();
  return e;
}

function bool(limit: number): boolean {
  // As protobufjs: the varint's low 32 bits, not zero.
  return varint32(limit) !== 0;
}

/** A varint as a uint32 (its low 32 bits; the rest is read and dropped, as protobufjs does). */
function varint32(limit: number): number {
  let b = buf[pos++]!;
  if (b < 0x80) {
    if (pos > limit) throw truncated();
    return b;
  }
  let v = b & 0x7f;
  b = buf[pos++]!;
  v |= (b & 0x7f) << 7;
  if (b < 0x80) return checked(v >>> 0, limit);
  b = buf[pos++]!;
  v |= (b & 0x7f) << 14;
  if (b < 0x80) return checked(v >>> 0, limit);
  b = buf[pos++]!;
  v |= (b & 0x7f) << 21;
  if (b < 0x80) return checked(v >>> 0, limit);
  b = buf[pos++]!;
  v |= (b & 0x0f) << 28;
  if (b < 0x80) return checked(v >>> 0, limit);
  // Bits 35 and up: up to five more bytes.
  for (let i = 0; i < 5; i++) if (buf[pos++]! < 0x80) return checked(v >>> 0, limit);
  throw new Error('invalid varint encoding');
}

function checked(v: number, limit: number): number {
  if (pos > limit) throw truncated();
  return v;
}

/**
 * A varint of up to 64 bits: returns its low 32 bits (unsigned) and leaves the high 32 bits in
 * `hi` (signed).
 */
function varint64(limit: number): number {
  let b = buf[pos++]!;
  if (b < 0x80) {
    hi = 0;
    if (pos > limit) throw truncated();
    return b;
  }
  let lo = b & 0x7f;
  let shift = 7;
  // Bytes 2 to 4: bits 7 to 27.
  for (; shift < 28; shift += 7) {
    b = buf[pos++]!;
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      hi = 0;
      return checked(lo >>> 0, limit);
    }
  }
  // Byte 5: bits 28 to 34, across the two halves.
  b = buf[pos++]!;
  lo |= (b & 0x7f) << 28;
  let h = (b & 0x7f) >> 4;
  if (b >= 0x80) {
    // Bytes 6 to 10: bits 35 to 63 (the tenth byte's lowest bit is bit 63).
    for (shift = 3; ; shift += 7) {
      if (shift > 31) throw new Error('invalid varint encoding');
      b = buf[pos++]!;
      h |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
  }
  hi = h | 0;
  return checked(lo >>> 0, limit);
}

/** An int64 as the nearest number (exact within ±2^53; one rounding, as Number(decimal) does). */
function int64(limit: number): number {
  const lo = varint64(limit);
  return hi === 0 ? lo : hi * TWO_32 + lo;
}

/** An int64 as its exact decimal string. */
function int64String(limit: number): string {
  const lo = varint64(limit);
  if (hi === 0) return lo === 0 ? '0' : String(lo);
  const n = hi * TWO_32 + lo;
  if (Number.isSafeInteger(n)) return String(n);
  return BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo)).toString();
}

/** Skips a field the program does not read, by its wire type. */
function skip(tag: number, limit: number): void {
  switch (tag & 7) {
    case 0:
      varint64(limit);
      return;
    case 1:
      pos += 8;
      break;
    case 2:
      pos = lengthEnd(limit);
      return;
    case 3: {
      // A group (deprecated, still valid): fields up to its end-group tag.
      const field = tag >>> 3;
      for (;;) {
        if (pos >= limit) throw truncated();
        const t = varint32(limit);
        if ((t & 7) === 4) {
          if (t >>> 3 !== field) throw new Error('mismatched end group');
          return;
        }
        skip(t, limit);
      }
    }
    case 5:
      pos += 4;
      break;
    default:
      throw new Error(`invalid wire type ${tag & 7} at offset ${pos}`);
  }
  if (pos > limit) throw truncated();
}

function truncated(): RangeError {
  return new RangeError('watch response truncated: a field runs past its message');
}
