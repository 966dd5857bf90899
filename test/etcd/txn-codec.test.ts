// The hand-written TxnRequest encoder and TxnResponse decoder against protobufjs, which etcd3
// used: a request means to protobufjs what etcd3's request of the same fields means, an answer
// decodes to what protobufjs reads of it, and on a real etcd a transaction sent by hand does what
// the same one through etcd3 does.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import test from 'ava';
import fc from 'fast-check';
import { etcd3Txn } from '../../src/etcd/state-store.js';
import { EtcdWatchClient } from '../../src/etcd/watch-client.js';
import { encodeTxnRequest, type Bytes, type TxnCompare, type TxnOp, type TxnRequest } from '../../src/etcd/txn-request-encoder.js';
import { decodeTxnResponse } from '../../src/etcd/watch-response-decoder.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert } from '../helpers/eventually.js';

const protoDir = join(dirname(createRequire(import.meta.url).resolve('etcd3/package.json')), 'proto');
const loaded = protoLoader.loadSync(join(protoDir, 'rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const txnMethod = (loaded['etcdserverpb.KV'] as protoLoader.ServiceDefinition)['Txn']!;

const buf = (b: Bytes): Buffer => (typeof b === 'string' ? Buffer.from(b) : Buffer.from(b));
/** The request as etcd3 would have given it to protobufjs: Buffers, int64s as decimal strings. */
function asEtcd3(req: TxnRequest): object {
  const int = (v: number | string | undefined) => (v === undefined ? undefined : String(v));
  const compare = req.compare.map((c) => clean({ key: buf(c.key), range_end: c.range_end && buf(c.range_end), result: c.result, target: c.target, version: int(c.version), create_revision: int(c.create_revision), mod_revision: int(c.mod_revision), value: c.value && buf(c.value), lease: int(c.lease) }));
  const op = (o: TxnOp) =>
    'request_put' in o
      ? { request_put: clean({ key: buf(o.request_put.key), value: buf(o.request_put.value), lease: int(o.request_put.lease) }) }
      : 'request_delete_range' in o
        ? { request_delete_range: clean({ key: buf(o.request_delete_range.key), range_end: o.request_delete_range.range_end && buf(o.request_delete_range.range_end) }) }
        : { request_range: clean({ key: buf(o.request_range.key), range_end: o.request_range.range_end && buf(o.request_range.range_end), limit: int(o.request_range.limit) }) };
  return { compare, success: req.success.map(op), failure: (req.failure ?? []).map(op) };
}
function clean<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

const bytes: fc.Arbitrary<Bytes> = fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.uint8Array({ maxLength: 40 }));
const revision = fc.oneof(fc.constant(0), fc.nat(1000), fc.maxSafeNat());
const lease = fc.oneof(fc.constant('0'), fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }).map(String), fc.nat());
const compareArb: fc.Arbitrary<TxnCompare> = fc
  .record({
    key: bytes,
    range_end: fc.option(bytes, { nil: undefined }),
    result: fc.constantFrom('Equal', 'Greater', 'Less', 'NotEqual'),
    target: fc.constantFrom('Version', 'Create', 'Mod', 'Value', 'Lease'),
    n: revision,
    value: bytes,
    lease,
  })
  .map(({ key, range_end, result, target, n, value, lease }) => {
    const c: TxnCompare = { key, result, target };
    if (range_end !== undefined) c.range_end = range_end;
    if (target === 'Version') c.version = n;
    else if (target === 'Create') c.create_revision = n;
    else if (target === 'Mod') c.mod_revision = n;
    else if (target === 'Value') c.value = value;
    else c.lease = lease;
    return c;
  });
const opArb: fc.Arbitrary<TxnOp> = fc.oneof(
  fc.record({ key: bytes, value: bytes, lease: fc.option(lease, { nil: undefined }) }).map((p) => ({ request_put: clean(p) })),
  fc.record({ key: bytes, range_end: fc.option(bytes, { nil: undefined }) }).map((d) => ({ request_delete_range: clean(d) })),
  fc.record({ key: bytes, range_end: fc.option(bytes, { nil: undefined }), limit: fc.option(revision, { nil: undefined }) }).map((r) => ({ request_range: clean(r) })),
);
const requestArb: fc.Arbitrary<TxnRequest> = fc.record({ compare: fc.array(compareArb, { maxLength: 5 }), success: fc.array(opArb, { maxLength: 5 }), failure: fc.array(opArb, { maxLength: 3 }) });

/** Buffers as hex, for deepStrictEqual over protobufjs objects. */
function plain(v: unknown): unknown {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `hex:${Buffer.from(v).toString('hex')}`;
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

test('property: a request encoded by hand reads, to protobufjs, as etcd3\'s request of the same fields', (t) => {
  fc.assert(
    fc.property(requestArb, (req) => {
      const mine = txnMethod.requestDeserialize(encodeTxnRequest(req));
      const theirs = txnMethod.requestDeserialize(txnMethod.requestSerialize(asEtcd3(req)));
      assert.deepStrictEqual(plain(mine), plain(theirs));
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('the one target of a compare is written even at 0, as protobufjs writes a set oneof member', (t) => {
  const req: TxnRequest = { compare: [{ key: 'k', result: 'Equal', target: 'Create', create_revision: 0 }], success: [] };
  const decoded = txnMethod.requestDeserialize(encodeTxnRequest(req)) as { compare: { target_union?: string; create_revision?: string }[] };
  t.is(decoded.compare[0]!.target_union, 'create_revision');
  t.is(decoded.compare[0]!.create_revision, '0');
});

test('values it cannot write are refused, not written wrong', (t) => {
  const c = (mod_revision: number): TxnRequest => ({ compare: [{ key: 'k', result: 'Equal', target: 'Mod', mod_revision }], success: [] });
  t.throws(() => encodeTxnRequest(c(-1)), { instanceOf: RangeError });
  t.throws(() => encodeTxnRequest(c(1.5)), { instanceOf: RangeError });
  t.throws(() => encodeTxnRequest(c(2 ** 53)), { instanceOf: RangeError });
  t.notThrows(() => encodeTxnRequest(c(2 ** 53 - 1)));
  const l = (lease: string): TxnRequest => ({ compare: [], success: [{ request_put: { key: 'k', value: 'v', lease } }] });
  t.notThrows(() => encodeTxnRequest(l(String((1n << 63n) - 1n))));
  t.throws(() => encodeTxnRequest(l(String(1n << 63n))), { instanceOf: RangeError });
  t.throws(() => encodeTxnRequest(l('-5')), { instanceOf: RangeError });
  t.throws(() => encodeTxnRequest(l('12a')), { instanceOf: RangeError });
});

interface PbTxnResponse {
  header: { revision: string } | null;
  succeeded: boolean;
  responses: { response?: string; response_range?: { header: { revision: string } | null; kvs: { key: Buffer; value: Buffer; create_revision: string; mod_revision: string; version: string; lease: string }[]; more: boolean; count: string } }[];
}

const kvArb = fc.record({ key: fc.uint8Array({ maxLength: 20 }), value: fc.uint8Array({ maxLength: 60 }), create_revision: revision, mod_revision: revision, version: revision, lease }).map((k) => ({ ...k, create_revision: String(k.create_revision), mod_revision: String(k.mod_revision), version: String(k.version), lease: String(k.lease) }));
const headerArb = fc.option(fc.record({ cluster_id: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String), member_id: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String), revision: revision.map(String), raft_term: fc.nat().map(String) }), { nil: null });
const responseOpArb = fc.oneof(
  fc.record({ header: headerArb, kvs: fc.array(kvArb, { maxLength: 3 }), more: fc.boolean(), count: revision.map(String) }).map((r) => ({ response_range: r })),
  fc.record({ header: headerArb, prev_kv: fc.option(kvArb, { nil: null }) }).map((p) => ({ response_put: p })),
  fc.record({ header: headerArb, deleted: revision.map(String), prev_kvs: fc.array(kvArb, { maxLength: 2 }) }).map((d) => ({ response_delete_range: d })),
  fc.record({ header: headerArb, succeeded: fc.boolean() }).map((x) => ({ response_txn: { ...x, responses: [] } })),
);
const txnResponseArb = fc.record({ header: headerArb, succeeded: fc.boolean(), responses: fc.array(responseOpArb, { maxLength: 5 }) });

test('property: an answer decodes by hand to what protobufjs reads of it: the revision, succeeded, each range\'s key-values', (t) => {
  fc.assert(
    fc.property(txnResponseArb, (res) => {
      const wire = txnMethod.responseSerialize(res);
      const pb = txnMethod.responseDeserialize(wire) as PbTxnResponse;
      const mine = decodeTxnResponse(wire);
      t.is(mine.header.revision, Number(pb.header?.revision ?? 0));
      t.is(mine.succeeded, pb.succeeded);
      t.is(mine.responses.length, pb.responses.length);
      pb.responses.forEach((r, i) => {
        const got = mine.responses[i]!.response_range;
        if (r.response !== 'response_range') return assert.strictEqual(got, undefined);
        const range = r.response_range!;
        assert.deepStrictEqual(plain(got), plain({ header: { revision: Number(range.header?.revision ?? 0) }, kvs: range.kvs.map((k) => ({ key: k.key, value: k.value, create_revision: Number(k.create_revision), mod_revision: Number(k.mod_revision), version: Number(k.version), lease: k.lease })), more: range.more, count: Number(range.count) }));
      });
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('a cut answer throws, or decodes as protobufjs decodes it', (t) => {
  fc.assert(
    fc.property(txnResponseArb, fc.nat(), (res, at) => {
      const whole = txnMethod.responseSerialize(res);
      const cut = whole.subarray(0, whole.length === 0 ? 0 : at % whole.length);
      let pb: PbTxnResponse | undefined;
      try {
        pb = txnMethod.responseDeserialize(cut) as PbTxnResponse;
      } catch {
        pb = undefined;
      }
      let mine: ReturnType<typeof decodeTxnResponse> | undefined;
      try {
        mine = decodeTxnResponse(cut);
      } catch {
        mine = undefined;
      }
      if (mine === undefined) return;
      assert.ok(pb, 'decoded by hand what protobufjs rejects');
      assert.strictEqual(mine.succeeded, pb.succeeded);
      assert.strictEqual(mine.header.revision, Number(pb.header?.revision ?? 0));
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

let server: EtcdServer;
test.before(async () => {
  server = await startEtcd();
});
test.after.always(async () => {
  await server?.stop();
});

test('on a real etcd, a transaction sent by hand does what etcd3\'s does: each compare target, leases, ranges, the failure branch', async (t) => {
  const client = server.client();
  const wc = server.watchClient();
  const lease = client.lease(60, { autoKeepAlive: false });
  const leaseId = await lease.grant();
  const viaEtcd3 = etcd3Txn(client);
  const deadline = () => Date.now() + 5000;
  const results: { answers: unknown[]; stored: string[][] }[] = [];
  try {
    for (const [i, way] of [wc, viaEtcd3].entries()) {
      const p = `/txn${i}/`;
      await client.put(`${p}a`).value('1');
      await client.put(`${p}a`).value('2');
      await lease.put(`${p}leased`).value('x');
      const a = (await client.kv.range({ key: Buffer.from(`${p}a`) })).kvs[0]!;
      const answers = [];
      for (const req of [
        // Every target holding: the puts run, one with the lease, and a range reads two keys.
        {
          compare: [
            { key: `${p}a`, result: 'Equal', target: 'Mod', mod_revision: Number(a.mod_revision) },
            { key: `${p}a`, result: 'Equal', target: 'Version', version: 2 },
            { key: `${p}a`, result: 'Less', target: 'Create', create_revision: Number(a.create_revision) + 1 },
            { key: `${p}a`, result: 'Equal', target: 'Value', value: '2' },
            { key: `${p}leased`, result: 'Equal', target: 'Lease', lease: leaseId },
            { key: `${p}none`, result: 'Equal', target: 'Create', create_revision: 0 },
            { key: p, range_end: `${p.slice(0, -1)}0`, result: 'Greater', target: 'Mod', mod_revision: 0 },
          ],
          success: [{ request_put: { key: `${p}b`, value: 'é' } }, { request_put: { key: `${p}c`, value: 'y', lease: leaseId } }, { request_range: { key: `${p}a`, range_end: `${p}d`, limit: 2 } }],
          failure: [{ request_put: { key: `${p}failed`, value: '1' } }],
        },
        // One compare failing: the failure branch runs, deleting a range, and reads.
        {
          compare: [{ key: `${p}a`, result: 'NotEqual', target: 'Value', value: '2' }],
          success: [{ request_put: { key: `${p}wrong`, value: '1' } }],
          failure: [{ request_delete_range: { key: `${p}b`, range_end: `${p}c` } }, { request_range: { key: p, range_end: `${p.slice(0, -1)}0` } }],
        },
      ] satisfies TxnRequest[]) {
        const res = await way.txn(req, deadline());
        answers.push({ succeeded: res.succeeded, ranges: res.responses.map((r) => r.response_range?.kvs.map((kv) => [kv.key.toString().slice(p.length), kv.value.toString(), kv.lease === '0' ? '0' : kv.lease === leaseId ? 'lease' : kv.lease])) });
        t.is(typeof res.header.revision, 'number');
        t.true(res.header.revision > 0);
      }
      const stored = Object.entries(await client.getAll().prefix(p).strings()).map(([k, v]) => [k.slice(p.length), v]);
      results.push({ answers, stored });
    }
    const [mine, theirs] = results;
    t.deepEqual(mine, theirs);
    t.deepEqual(mine!.stored, [
      ['a', '2'],
      ['c', 'y'],
      ['leased', 'x'],
    ]);
  } finally {
    await lease.revoke();
  }
});

test('the watch client\'s txn: a member that refuses is left for the next one, within the same call; a spent deadline is not tried again', async (t) => {
  const live = server;
  const wc = new EtcdWatchClient({ endpoints: ['127.0.0.1:9', live.endpoint], credentials: grpc.credentials.createInsecure() });
  try {
    const req: TxnRequest = { compare: [], success: [{ request_put: { key: '/txn-retry/k', value: 'v' } }] };
    const res = await wc.txn(req, Date.now() + 5000);
    t.true(res.succeeded);
    t.is(await live.client().get('/txn-retry/k').string(), 'v');
    // The next call goes straight to the member that answered.
    const started = Date.now();
    t.true((await wc.txn(req, Date.now() + 5000)).succeeded);
    t.true(Date.now() - started < 1000);
    const err = await t.throwsAsync(wc.txn(req, Date.now() - 1));
    t.regex(err?.message ?? '', /deadline/i);
  } finally {
    wc.close();
  }
});

test('the watch client\'s txn tries each member once and once more, then fails: with one member two calls, with two three', async (t) => {
  const kv = loaded['etcdserverpb.KV'] as grpc.ServiceDefinition;
  let calls = 0;
  const fake = new grpc.Server();
  fake.addService(kv, { Txn: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
    calls++;
    cb({ code: grpc.status.UNAVAILABLE, details: 'etcdserver: not available (test)' });
  } });
  const port = await new Promise<number>((resolve, reject) => fake.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const req: TxnRequest = { compare: [], success: [{ request_put: { key: 'k', value: 'v' } }] };
  try {
    for (const [members, expected] of [[1, 2], [2, 3]] as const) {
      calls = 0;
      const wc = new EtcdWatchClient({ endpoints: Array.from({ length: members }, () => `127.0.0.1:${port}`), credentials: grpc.credentials.createInsecure() });
      try {
        const err = await t.throwsAsync(wc.txn(req, Date.now() + 5000));
        t.regex(err?.message ?? '', /UNAVAILABLE|not available/);
        t.is(calls, expected, `${members} member(s)`);
      } finally {
        wc.close();
      }
    }
  } finally {
    fake.forceShutdown();
  }
});
