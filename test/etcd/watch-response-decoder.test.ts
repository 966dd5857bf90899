// The hand-written WatchResponse decoder against protobufjs, the decoder it replaced: etcd's
// rpc.proto (etcd3's copy) loaded with @grpc/proto-loader exactly as the watch client loaded it
// before (longs: String, enums: String, defaults), its serializer encoding generated messages and
// its deserializer decoding them, and a small wire writer of the test's own for what protobufjs
// cannot encode (unknown fields at every level, any field order, repeated scalars, non-minimal
// varints). Then, on a real etcd, the watch client delivers what the decoder makes.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import test from 'ava';
import fc from 'fast-check';
import { decodeListPage, decodeRangeResponse, decodeWatchResponse, type DecodedKeyValue, type DecodedListPage, type DecodedRangeResponse, type DecodedWatchResponse } from '../../src/etcd/watch-response-decoder.js';
import type { EtcdWatchEvent } from '../../src/etcd/watch-client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';

const protoDir = join(dirname(createRequire(import.meta.url).resolve('etcd3/package.json')), 'proto');
const loaded = protoLoader.loadSync(join(protoDir, 'rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const watchMethod = (loaded['etcdserverpb.Watch'] as protoLoader.ServiceDefinition)['Watch']!;
/** protobufjs's encoding of a WatchResponse (from a plain object: int64s as decimal strings). */
const pbEncode = (o: object): Buffer => watchMethod.responseSerialize(o);
/** protobufjs's decoding, as the watch client had it. */
const pbDecode = (b: Buffer): PbResponse => watchMethod.responseDeserialize(b) as PbResponse;

interface PbKeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  lease: string;
}
interface PbResponse {
  header: { revision: string } | null;
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
  events: { type: string | number; kv: PbKeyValue | null; prev_kv: PbKeyValue | null }[];
}

/** What the old decoding meant, in the new decoder's shape (numbers where the code used Number()). */
function fromProtobufjs(r: PbResponse): DecodedWatchResponse {
  const kv = (k: PbKeyValue): DecodedKeyValue => ({
    key: k.key,
    value: k.value,
    create_revision: Number(k.create_revision),
    mod_revision: Number(k.mod_revision),
    version: Number(k.version),
    lease: k.lease,
  });
  return {
    revision: Number(r.header?.revision ?? 0),
    watch_id: Number(r.watch_id),
    created: r.created,
    canceled: r.canceled,
    compact_revision: Number(r.compact_revision),
    cancel_reason: r.cancel_reason,
    fragment: r.fragment,
    events: r.events.map((e) => ({
      // The code only ever asked `type === 'Put'`; protobufjs gave an unknown enum value as a number.
      type: e.type === 'Put' ? 'Put' : 'Delete',
      kv: e.kv === null ? kv({ key: Buffer.alloc(0), value: Buffer.alloc(0), create_revision: '0', mod_revision: '0', version: '0', lease: '0' }) : kv(e.kv),
      prev_kv: e.prev_kv === null ? null : kv(e.prev_kv),
    })),
  };
}

/** Buffers as hex, so deepEqual compares contents and not Buffer internals. */
function plain(r: DecodedWatchResponse): unknown {
  const kv = (k: DecodedKeyValue) => ({ ...k, key: k.key.toString('hex'), value: k.value.toString('hex') });
  return { ...r, events: r.events.map((e) => ({ type: e.type, kv: kv(e.kv), prev_kv: e.prev_kv && kv(e.prev_kv) })) };
}

// ---- A model of the message and the test's own wire writer ----

interface KV {
  key: Buffer;
  value: Buffer;
  create_revision: bigint;
  mod_revision: bigint;
  version: bigint;
  lease: bigint;
}
interface Ev {
  type: number;
  kv: KV | null;
  prev_kv: KV | null;
}
interface Res {
  header: { cluster_id: bigint; member_id: bigint; revision: bigint; raft_term: bigint } | null;
  watch_id: bigint;
  created: boolean;
  canceled: boolean;
  compact_revision: bigint;
  cancel_reason: Buffer;
  fragment: boolean;
  events: Ev[];
}

/** What the new decoder must give for a key-value of the model (Number() of a bigint rounds to nearest, ties to even). */
const kvExpected = (k: KV): DecodedKeyValue => ({
  key: k.key,
  value: k.value,
  create_revision: Number(k.create_revision),
  mod_revision: Number(k.mod_revision),
  version: Number(k.version),
  lease: k.lease.toString(),
});

/** What the new decoder must give for a model. */
function expected(r: Res): DecodedWatchResponse {
  const kv = kvExpected;
  return {
    revision: Number(r.header?.revision ?? 0n),
    watch_id: Number(r.watch_id),
    created: r.created,
    canceled: r.canceled,
    compact_revision: Number(r.compact_revision),
    cancel_reason: r.cancel_reason.toString('utf8'),
    fragment: r.fragment,
    events: r.events.map((e) => ({
      type: (e.type | 0) === 0 ? 'Put' : 'Delete',
      kv: kv(e.kv ?? { key: Buffer.alloc(0), value: Buffer.alloc(0), create_revision: 0n, mod_revision: 0n, version: 0n, lease: 0n }),
      prev_kv: e.prev_kv && kv(e.prev_kv),
    })),
  };
}

/** The model as protobufjs's fromObject takes it. */
function pbObject(r: Res): object {
  const kv = (k: KV) => ({ ...k, create_revision: String(k.create_revision), mod_revision: String(k.mod_revision), version: String(k.version), lease: String(k.lease) });
  return {
    header: r.header && { cluster_id: String(r.header.cluster_id), member_id: String(r.header.member_id), revision: String(r.header.revision), raft_term: String(r.header.raft_term) },
    watch_id: String(r.watch_id),
    created: r.created,
    canceled: r.canceled,
    compact_revision: String(r.compact_revision),
    cancel_reason: r.cancel_reason.toString('utf8'),
    fragment: r.fragment,
    events: r.events.map((e) => ({ type: e.type, kv: e.kv && kv(e.kv), prev_kv: e.prev_kv && kv(e.prev_kv) })),
  };
}

/** A varint of a 64-bit value (negative: ten bytes, two's complement); `pad` adds redundant 0x80 bytes (up to 10 in all). */
function varint(v: bigint, pad = 0): Buffer {
  let u = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    out.push(Number(u & 0x7fn));
    u >>= 7n;
  } while (u > 0n);
  for (let i = 0; i < pad && out.length < 10; i++) out.push(0);
  for (let i = 0; i < out.length - 1; i++) out[i]! |= 0x80;
  return Buffer.from(out);
}
const tag = (field: number, wire: number): Buffer => varint(BigInt(field) * 8n + BigInt(wire));
const fVarint = (field: number, v: bigint, pad = 0): Buffer => Buffer.concat([tag(field, 0), varint(v, pad)]);
const fBytes = (field: number, b: Buffer): Buffer => Buffer.concat([tag(field, 2), varint(BigInt(b.length)), b]);

/** An unknown field of any wire type, as a writer from a newer etcd could add. */
type Unknown = { field: number; wire: 0; v: bigint } | { field: number; wire: 1 | 5 | 2; b: Buffer } | { field: number; wire: 3; inner: Unknown[] };
function unknownBytes(u: Unknown): Buffer {
  switch (u.wire) {
    case 0:
      return fVarint(u.field, u.v);
    case 2:
      return fBytes(u.field, u.b);
    case 1:
    case 5:
      return Buffer.concat([tag(u.field, u.wire), u.b]);
    case 3:
      return Buffer.concat([tag(u.field, 3), ...u.inner.map(unknownBytes), tag(u.field, 4)]);
  }
}

interface Style {
  /** Unknown fields to sprinkle, by position. */
  unknown: Unknown[];
  /** Scalars in reverse field order. */
  reverse: boolean;
  /** Emit zero values too (proto3 writers omit them). */
  zeros: boolean;
  /** Redundant varint bytes. */
  pad: number;
}

function writeMessage(fields: Buffer[], s: Style, salt: number): Buffer {
  const out = s.reverse ? [...fields].reverse() : [...fields];
  s.unknown.forEach((u, i) => {
    if ((i + salt) % 3 === 0) out.splice((i * 7 + salt) % (out.length + 1), 0, unknownBytes(u));
  });
  return Buffer.concat(out);
}

function writeKv(k: KV, s: Style, salt: number): Buffer {
  const f: Buffer[] = [];
  const int = (n: number, v: bigint) => (v !== 0n || s.zeros) && f.push(fVarint(n, v, s.pad));
  if (k.key.length > 0 || s.zeros) f.push(fBytes(1, k.key));
  int(2, k.create_revision);
  int(3, k.mod_revision);
  int(4, k.version);
  if (k.value.length > 0 || s.zeros) f.push(fBytes(5, k.value));
  int(6, k.lease);
  return writeMessage(f, s, salt);
}

function writeResponse(r: Res, s: Style): Buffer {
  const f: Buffer[] = [];
  if (r.header) {
    const h = r.header;
    f.push(fBytes(1, writeMessage([fVarint(1, h.cluster_id), fVarint(2, h.member_id), fVarint(3, h.revision, s.pad), fVarint(4, h.raft_term)], s, 1)));
  }
  const int = (n: number, v: bigint) => (v !== 0n || s.zeros) && f.push(fVarint(n, v, s.pad));
  int(2, r.watch_id);
  int(3, r.created ? 1n : 0n);
  int(4, r.canceled ? 1n : 0n);
  int(5, r.compact_revision);
  if (r.cancel_reason.length > 0 || s.zeros) f.push(fBytes(6, r.cancel_reason));
  int(7, r.fragment ? 1n : 0n);
  const scalars = writeMessage(f, s, 0);
  // Repeated: the events keep their order.
  const events = r.events.map((e, i) => {
    const ef: Buffer[] = [];
    if (e.type !== 0 || s.zeros) ef.push(fVarint(1, BigInt(e.type)));
    if (e.kv) ef.push(fBytes(2, writeKv(e.kv, s, i)));
    if (e.prev_kv) ef.push(fBytes(3, writeKv(e.prev_kv, s, i + 1)));
    return fBytes(11, writeMessage(ef, s, i + 2));
  });
  return Buffer.concat([scalars, ...events]);
}

// ---- Generators ----

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TWO_53 = 2n ** 53n;
/** Revisions as etcd hands them out, and the int64 edges: around 2^32, 2^53, 2^63 and negatives. */
const int64 = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt(0n, 1n << 31n) },
  { weight: 1, arbitrary: fc.constantFrom(0n, 1n, 127n, 128n, 2n ** 28n - 1n, 2n ** 28n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n, TWO_53 - 1n, TWO_53, TWO_53 + 1n, TWO_53 + 3n, 2n ** 62n, INT64_MAX, -1n, INT64_MIN, -TWO_53 - 1n) },
  { weight: 1, arbitrary: fc.bigInt({ min: TWO_53 - 1000n, max: TWO_53 + 1000n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: INT64_MIN, max: INT64_MAX }) },
);
const uint64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const bytes = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 5000 }).map((n) => Buffer.alloc(n, 0x61)) },
);
const kvArb: fc.Arbitrary<KV> = fc.record({ key: bytes, value: bytes, create_revision: int64, mod_revision: int64, version: int64, lease: int64 });
const evArb: fc.Arbitrary<Ev> = fc.record({
  type: fc.oneof({ weight: 10, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.constant(2) }),
  kv: fc.option(kvArb, { freq: 20 }),
  prev_kv: fc.option(kvArb, { freq: 2 }),
});
const utf8ish = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a)), // not always valid UTF-8
);
const resArb: fc.Arbitrary<Res> = fc.record({
  header: fc.option(fc.record({ cluster_id: uint64, member_id: uint64, revision: int64, raft_term: uint64 }), { freq: 10 }),
  watch_id: int64,
  created: fc.boolean(),
  canceled: fc.boolean(),
  compact_revision: int64,
  cancel_reason: utf8ish,
  fragment: fc.boolean(),
  events: fc.array(evArb, { maxLength: 12 }),
});
const unknownArb: fc.Arbitrary<Unknown> = fc.letrec<{ u: Unknown }>((tie) => ({
  u: fc.oneof(
    { depthSize: 'small' },
    fc.record({ field: fc.integer({ min: 12, max: 2 ** 29 - 1 }), wire: fc.constant(0 as const), v: uint64 }),
    fc.record({ field: fc.integer({ min: 12, max: 2 ** 29 - 1 }), wire: fc.constant(1 as const), b: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((a) => Buffer.from(a)) }),
    fc.record({ field: fc.integer({ min: 12, max: 2 ** 29 - 1 }), wire: fc.constant(5 as const), b: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((a) => Buffer.from(a)) }),
    fc.record({ field: fc.integer({ min: 12, max: 2 ** 29 - 1 }), wire: fc.constant(2 as const), b: fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)) }),
    fc.record({ field: fc.integer({ min: 12, max: 2 ** 29 - 1 }), wire: fc.constant(3 as const), inner: fc.array(tie('u'), { maxLength: 3 }) }),
  ),
})).u;
const styleArb: fc.Arbitrary<Style> = fc.record({ unknown: fc.array(unknownArb, { maxLength: 8 }), reverse: fc.boolean(), zeros: fc.boolean(), pad: fc.constantFrom(0, 0, 1, 3) });

// ---- Tests ----

test('protobufjs-encoded responses decode to what protobufjs decoded', (t) => {
  fc.assert(
    fc.property(resArb, (r) => {
      const wire = pbEncode(pbObject(r));
      const got = plain(decodeWatchResponse(wire));
      assert.deepStrictEqual(got, plain(fromProtobufjs(pbDecode(wire))));
      assert.deepStrictEqual(got, plain(expected(r)));
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('unknown fields of every wire type, any field order, zeros written and long varints are read as protobufjs reads them', (t) => {
  fc.assert(
    fc.property(resArb, styleArb, (r, s) => {
      const wire = writeResponse(r, s);
      const got = plain(decodeWatchResponse(wire));
      assert.deepStrictEqual(got, plain(fromProtobufjs(pbDecode(wire))));
      assert.deepStrictEqual(got, plain(expected(r)));
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('a cut message throws, or decodes as protobufjs decodes it', (t) => {
  fc.assert(
    fc.property(resArb, styleArb, fc.nat(), (r, s, at) => {
      const whole = writeResponse(r, s);
      const cut = whole.subarray(0, at % (whole.length + 1));
      let pb: PbResponse | Error;
      try {
        pb = pbDecode(cut);
      } catch (err) {
        pb = err as Error;
      }
      let got: DecodedWatchResponse | undefined;
      try {
        got = decodeWatchResponse(cut);
      } catch {
        // protobufjs is laxer (a cut string is clamped, not refused); never stricter.
        return;
      }
      assert.ok(!(pb instanceof Error), `protobufjs refused what the decoder accepted: ${String(pb)}`);
      assert.deepStrictEqual(plain(got), plain(fromProtobufjs(pb)));
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('examples: empty, created, canceled with a reason, compacted, progress, events with prev_kv, huge int64s', (t) => {
  const empty = decodeWatchResponse(Buffer.alloc(0));
  t.deepEqual(empty, { revision: 0, watch_id: 0, created: false, canceled: false, compact_revision: 0, cancel_reason: '', fragment: false, events: [] });

  const created = decodeWatchResponse(pbEncode({ header: { revision: '41' }, watch_id: '0', created: true }));
  t.is(created.revision, 41);
  t.true(created.created);

  const canceled = decodeWatchResponse(pbEncode({ header: { revision: '7' }, canceled: true, cancel_reason: 'etcdserver: permission denied' }));
  t.true(canceled.canceled);
  t.is(canceled.cancel_reason, 'etcdserver: permission denied');

  const compacted = decodeWatchResponse(pbEncode({ header: { revision: '900' }, canceled: true, compact_revision: '812' }));
  t.is(compacted.compact_revision, 812);

  const kv = { key: Buffer.from('/model/m/state'), value: Buffer.from('Running'), create_revision: '5', mod_revision: '9', version: '3', lease: '7587883004451651085' };
  const prev = { ...kv, value: Buffer.from('Created'), mod_revision: '6', version: '2' };
  const wire = pbEncode({
    header: { revision: '9007199254740993' },
    events: [
      { type: 'Put', kv, prev_kv: prev },
      { type: 'Delete', kv: { key: kv.key, mod_revision: '10' } },
    ],
  });
  const res = decodeWatchResponse(wire);
  t.is(res.revision, 9007199254740992, 'above 2^53: the nearest number, as Number() of the string');
  t.is(res.events.length, 2);
  const [put, del] = res.events as [EtcdWatchEvent, EtcdWatchEvent];
  t.is(put.type, 'Put');
  t.is(put.kv.key.toString(), '/model/m/state');
  t.is(put.kv.value.toString(), 'Running');
  t.deepEqual([put.kv.create_revision, put.kv.mod_revision, put.kv.version], [5, 9, 3]);
  t.is(put.kv.lease, '7587883004451651085', 'a lease ID stays exact');
  t.is(put.prev_kv!.value.toString(), 'Created');
  t.is(put.prev_kv!.mod_revision, 6);
  t.is(del.type, 'Delete');
  t.is(del.kv.mod_revision, 10);
  t.is(del.kv.value.length, 0);
  t.is(del.prev_kv, null);
  // Views, not copies: the key's bytes are the message's.
  t.is(put.kv.key.buffer, wire.buffer);
});

test('a repeated scalar keeps its last value, a repeated message is replaced (as protobufjs)', (t) => {
  const kv1 = fBytes(2, Buffer.concat([fBytes(1, Buffer.from('a')), fVarint(3, 5n)]));
  const kv2 = fBytes(2, Buffer.concat([fBytes(1, Buffer.from('b'))]));
  const wire = Buffer.concat([fVarint(5, 3n), fVarint(5, 0n), fVarint(2, 1n), fVarint(2, 8n), fBytes(11, Buffer.concat([kv1, kv2]))]);
  const got = decodeWatchResponse(wire);
  t.deepEqual(plain(got), plain(fromProtobufjs(pbDecode(wire))));
  t.is(got.compact_revision, 0);
  t.is(got.watch_id, 8);
  t.is(got.events[0]!.kv.key.toString(), 'b');
  t.is(got.events[0]!.kv.mod_revision, 0);
});

test('malformed input throws: a varint over ten bytes, a length past the end, wire types 6 and 7, an unmatched end group', (t) => {
  t.throws(() => decodeWatchResponse(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), { message: /varint/ });
  t.throws(() => decodeWatchResponse(Buffer.from([0x5a, 0x05, 0x12, 0x10])), { instanceOf: RangeError });
  t.throws(() => decodeWatchResponse(Buffer.from([0x5a, 0x02, 0x12, 0x10])), { instanceOf: RangeError }, 'a key-value longer than its event');
  t.throws(() => decodeWatchResponse(Buffer.from([(13 << 3) | 6, 0])), { message: /wire type 6/ });
  t.throws(() => decodeWatchResponse(Buffer.from([(13 << 3) | 7, 0])), { message: /wire type 7/ });
  t.throws(() => decodeWatchResponse(Buffer.from([(13 << 3) | 3, (14 << 3) | 4])), { message: /end group/ });
  t.throws(() => decodeWatchResponse(Buffer.from([(13 << 3) | 1, 1, 2, 3])), { instanceOf: RangeError });
  // The decoder keeps nothing from a failed message: the next one decodes normally.
  t.is(decodeWatchResponse(pbEncode({ header: { revision: '3' } })).revision, 3);
});

// ---- RangeResponse: the paged lists' pages ----

const rangeMethod = (loaded['etcdserverpb.KV'] as protoLoader.ServiceDefinition)['Range']!;

interface RangeRes {
  header: { cluster_id: bigint; member_id: bigint; revision: bigint; raft_term: bigint } | null;
  kvs: KV[];
  more: boolean;
  count: bigint;
}
const rangeArb: fc.Arbitrary<RangeRes> = fc.record({
  header: fc.option(fc.record({ cluster_id: uint64, member_id: uint64, revision: int64, raft_term: uint64 }), { freq: 10 }),
  kvs: fc.array(kvArb, { maxLength: 12 }),
  more: fc.boolean(),
  count: int64,
});

const expectedRange = (r: RangeRes): DecodedRangeResponse => ({ header: { revision: Number(r.header?.revision ?? 0n) }, kvs: r.kvs.map(kvExpected), more: r.more, count: Number(r.count) });

interface PbRange {
  header: { revision: string } | null;
  kvs: PbKeyValue[];
  more: boolean;
  count: string;
}
/** protobufjs's decoding as etcd3 gave it to the list code, in the decoder's shape. */
function fromProtobufjsRange(r: PbRange): DecodedRangeResponse {
  return {
    header: { revision: Number(r.header?.revision ?? 0) },
    kvs: r.kvs.map((k) => ({ key: k.key, value: k.value, create_revision: Number(k.create_revision), mod_revision: Number(k.mod_revision), version: Number(k.version), lease: k.lease })),
    more: r.more,
    count: Number(r.count),
  };
}
const plainRange = (r: DecodedRangeResponse): unknown => ({ ...r, kvs: r.kvs.map((k) => ({ ...k, key: k.key.toString('hex'), value: k.value.toString('hex') })) });

function writeRange(r: RangeRes, s: Style): Buffer {
  const f: Buffer[] = [];
  if (r.header) {
    const h = r.header;
    f.push(fBytes(1, writeMessage([fVarint(1, h.cluster_id), fVarint(2, h.member_id), fVarint(3, h.revision, s.pad), fVarint(4, h.raft_term)], s, 1)));
  }
  if (r.more || s.zeros) f.push(fVarint(3, r.more ? 1n : 0n));
  if (r.count !== 0n || s.zeros) f.push(fVarint(4, r.count, s.pad));
  const scalars = writeMessage(f, s, 0);
  return Buffer.concat([scalars, ...r.kvs.map((k, i) => fBytes(2, writeKv(k, s, i)))]);
}

test('RangeResponse: protobufjs-encoded pages and hand-written ones (unknown fields, any order, zeros, long varints) decode as protobufjs decodes them', (t) => {
  fc.assert(
    fc.property(rangeArb, styleArb, (r, st) => {
      const pb = rangeMethod.responseSerialize({
        header: r.header && { cluster_id: String(r.header.cluster_id), member_id: String(r.header.member_id), revision: String(r.header.revision), raft_term: String(r.header.raft_term) },
        kvs: r.kvs.map((k) => ({ ...k, create_revision: String(k.create_revision), mod_revision: String(k.mod_revision), version: String(k.version), lease: String(k.lease) })),
        more: r.more,
        count: String(r.count),
      });
      for (const wire of [pb, writeRange(r, st)]) {
        const got = plainRange(decodeRangeResponse(wire));
        assert.deepStrictEqual(got, plainRange(fromProtobufjsRange(rangeMethod.responseDeserialize(wire) as PbRange)));
        assert.deepStrictEqual(got, plainRange(expectedRange(r)));
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('RangeResponse: a cut page throws, or decodes as protobufjs decodes it', (t) => {
  fc.assert(
    fc.property(rangeArb, styleArb, fc.nat(), (r, st, at) => {
      const whole = writeRange(r, st);
      const cut = whole.subarray(0, at % (whole.length + 1));
      let got: DecodedRangeResponse;
      try {
        got = decodeRangeResponse(cut);
      } catch {
        return;
      }
      assert.deepStrictEqual(plainRange(got), plainRange(fromProtobufjsRange(rangeMethod.responseDeserialize(cut) as PbRange)));
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

// ---- The same RangeResponse as a list's page (decodeListPage: the informers' lists) ----

/** What a page is to the informers and to paging, from decodeRangeResponse's views. */
function pageFromRange(r: DecodedRangeResponse): unknown {
  const last = r.kvs[r.kvs.length - 1];
  return {
    revision: r.header.revision,
    more: r.more,
    kvs: r.kvs.map((k) => ({ key: k.key.toString(), value: k.value.toString(), modRevision: k.mod_revision, createRevision: k.create_revision, version: k.version })),
    lastKey: last === undefined ? undefined : last.key.toString('hex'),
    bytes: r.kvs.reduce((n, k) => n + k.key.length + k.value.length, 0),
  };
}

function plainPage(p: DecodedListPage): unknown {
  return {
    revision: p.header.revision,
    more: p.more,
    kvs: p.kvs.map((k) => ({ key: k.key, value: k.value, modRevision: k.modRevision, createRevision: k.createRevision, version: k.version })),
    lastKey: p.lastKey?.toString('hex'),
    bytes: p.bytes,
  };
}

test('a list page: every RangeResponse (protobufjs-encoded or hand-written, keys and values any bytes) reads as decodeRangeResponse reads it, with its last key and its bytes', (t) => {
  fc.assert(
    fc.property(rangeArb, styleArb, (r, st) => {
      for (const wire of [writeRange(r, st)]) {
        assert.deepStrictEqual(plainPage(decodeListPage(wire)), pageFromRange(decodeRangeResponse(wire)));
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('a list page: a cut page throws, or reads as decodeRangeResponse reads it', (t) => {
  fc.assert(
    fc.property(rangeArb, styleArb, fc.nat(), (r, st, at) => {
      const whole = writeRange(r, st);
      const cut = whole.subarray(0, at % (whole.length + 1));
      let expected: unknown;
      try {
        expected = pageFromRange(decodeRangeResponse(cut));
      } catch {
        assert.throws(() => decodeListPage(cut));
        return;
      }
      assert.deepStrictEqual(plainPage(decodeListPage(cut)), expected);
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

// ---- On a real etcd ----

let etcd: Promise<EtcdServer> | undefined;
/** One etcd for the tests below, started by the first that needs it (they run concurrently). */
const sharedEtcd = (): Promise<EtcdServer> => (etcd ??= startEtcd());
test.after.always(async () => {
  await (await etcd)?.stop();
});

test('the watch client delivers the decoder\'s events: numbers for revisions, the exact lease, prev_kv', async (t) => {
  const server = await sharedEtcd();
  const client = server.client();
  const lease = client.lease(30, { autoKeepAlive: false });
  const leaseId = await lease.grant();
  const first = Number((await client.put('/dec/a').value('1').exec()).header.revision);
  // Revisions read from each write: the other test on this etcd writes at the same time.
  const second = Number((await lease.put('/dec/a').value('2')).header.revision);
  const third = Number((await client.delete().key('/dec/a').exec()).header.revision);
  const events: EtcdWatchEvent[] = [];
  const w = server.watchClient().watch(
    { key: Buffer.from('/dec/'), rangeEnd: Buffer.from('/dec0'), startRevision: first, prevKv: true },
    { onEvents: (evs) => events.push(...evs), onCompacted: () => undefined, onCanceled: () => undefined },
  );
  try {
    await eventually(() => assert.strictEqual(events.length, 3));
  } finally {
    w.close();
    await lease.revoke();
  }
  t.deepEqual(
    events.map((e) => [e.type, e.kv.key.toString(), e.kv.value.toString(), e.kv.mod_revision, e.kv.version, e.kv.lease, e.prev_kv?.value.toString() ?? null]),
    [
      ['Put', '/dec/a', '1', first, 1, '0', null],
      ['Put', '/dec/a', '2', second, 2, leaseId, '1'],
      ['Delete', '/dec/a', '', third, 0, '0', '2'],
    ],
  );
  t.is(typeof events[0]!.kv.create_revision, 'number');
});

test('the watch client\'s range: a page of real etcd as etcd3 reads it, with limit, more, count and a past revision', async (t) => {
  const server = await sharedEtcd();
  const client = server.client();
  const lease = client.lease(30, { autoKeepAlive: false });
  const leaseId = await lease.grant();
  for (let i = 0; i < 7; i++) await client.put(`/rng/${i}`).value(`v${i}`);
  await lease.put('/rng/leased').value('x');
  const past = Number((await client.put('/rng/0').value('again').exec()).header.revision) - 1;
  await client.put('/rng/one-more').value('later');
  try {
    const wc = server.watchClient();
    for (const req of [
      { key: Buffer.from('/rng/'), range_end: Buffer.from('/rng0'), limit: 3 },
      { key: Buffer.from('/rng/'), range_end: Buffer.from('/rng0'), limit: 0 },
      { key: Buffer.from('/rng/'), range_end: Buffer.from('/rng0'), limit: 100, revision: past },
      { key: Buffer.from('/rng/none'), range_end: Buffer.from('/rng/nonf'), limit: 10 },
    ]) {
      const mine = await wc.range(req, Date.now() + 5000);
      const theirs = await client.kv.range(req);
      t.deepEqual(
        plainRange(mine),
        plainRange(fromProtobufjsRange(theirs as unknown as PbRange)),
        JSON.stringify({ ...req, key: req.key.toString(), range_end: req.range_end.toString() }),
      );
      t.is(typeof mine.header.revision, 'number');
    }
    for (const req of [
      { key: Buffer.from('/rng/'), range_end: Buffer.from('/rng0'), limit: 3 },
      { key: Buffer.from('/rng/'), range_end: Buffer.from('/rng0'), limit: 100, revision: past },
      { key: Buffer.from('/rng/none'), range_end: Buffer.from('/rng/nonf'), limit: 10 },
    ]) {
      t.deepEqual(plainPage(await wc.listPage(req, Date.now() + 5000)), pageFromRange(await wc.range(req, Date.now() + 5000)), 'listPage reads what range reads');
    }
    const leased = await wc.range({ key: Buffer.from('/rng/leased') }, Date.now() + 5000);
    t.is(leased.kvs[0]?.lease, leaseId);
    const older = await wc.range({ key: Buffer.from('/rng/0'), revision: past }, Date.now() + 5000);
    t.is(older.kvs[0]?.value.toString(), 'v0');
  } finally {
    await lease.revoke();
  }
});

