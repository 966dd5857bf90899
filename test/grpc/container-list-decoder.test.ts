// The hand decoder of SendChangedContainerList's request against protobufjs (what grpc-js used
// before, through proto-loader with the same options): the same value for every well-formed
// message, a MalformedMessageError and nothing else for a malformed one.
import test from 'ava';
import fc from 'fast-check';
import { decodeContainerList, INVALID_UTF8, MalformedMessageError, OVER_BOUND, type DecodedContainerList } from '../../src/grpc/container-list-decoder.js';
import { CONTAINER_LIST_PATH, isUndecodable, loadProto, loadStateManagerProto } from '../../src/grpc/proto.js';
import type { ContainerList__Output } from '../../src/generated/monitoringserver/ContainerList.js';
import { decodableVariant, requestFields, undecodableBytes } from '../fuzz/_arbitraries.js';
import * as w from '../fuzz/_wire.js';

interface Method {
  path: string;
  requestDeserialize: (b: Buffer) => ContainerList__Output;
  requestSerialize: (v: unknown) => Buffer;
}
type Services = { statemanager: { StateManagerConnection: { service: { SendChangedContainerList: Method } } } };

// protobufjs as proto-loader builds it, without the project's adjustments.
const protobufjs = loadProto<Services>('statemanager.proto').statemanager.StateManagerConnection.service.SendChangedContainerList;

/** protobufjs's value with stats left out: the hand decoder does not decode them (never stored). */
function withoutStats(v: ContainerList__Output): ContainerList__Output {
  return { ...v, containers: v.containers.map((c) => ({ ...c, stats: {} })) };
}

/** The decoded fields, without what the decoder marks beside them (INVALID_UTF8, OVER_BOUND). */
function plain(v: ContainerList__Output): ContainerList__Output {
  return { node_name: v.node_name, containers: v.containers };
}

function decodesAsProtobufjs(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, bytes: Buffer, message?: string): void {
  t.deepEqual(plain(decodeContainerList(bytes)), withoutStats(protobufjs.requestDeserialize(bytes)), message);
}

test('the service decodes SendChangedContainerList by hand, and still marks what it cannot decode', (t) => {
  const method = loadStateManagerProto().statemanager.StateManagerConnection.service.SendChangedContainerList as unknown as Method;
  t.is(method.path, CONTAINER_LIST_PATH);
  const bytes = w.encode(w.containerList({ node_name: 'n1', containers: [{ id: 'c1', stats: [['cpu', '1']] }] }));
  t.deepEqual(method.requestDeserialize(bytes), decodeContainerList(bytes));
  t.deepEqual(method.requestDeserialize(bytes).containers[0]!.stats, {}, 'stats not decoded');
  t.true(isUndecodable(method.requestDeserialize(Buffer.from([0x0a, 0x05, 0x61]))));
});

test('a message protobufjs encodes decodes to what protobufjs decodes', (t) => {
  const entry = fc.tuple(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }));
  const map = fc.array(entry, { maxLength: 5 }).map((es) => Object.fromEntries(es));
  const info = fc.record({
    id: fc.string({ unit: 'binary', maxLength: 20 }),
    names: fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
    image: fc.string({ maxLength: 30 }),
    state: map,
    config: map,
    annotation: map,
    stats: map,
  });
  fc.assert(
    fc.property(fc.record({ node_name: fc.string({ unit: 'binary', maxLength: 20 }), containers: fc.array(info, { maxLength: 6 }) }), (list) => {
      const bytes = protobufjs.requestSerialize(list);
      t.deepEqual(plain(decodeContainerList(bytes)), withoutStats(protobufjs.requestDeserialize(bytes)));
    }),
    { numRuns: 500 },
  );
});

test('well-formed wire variants (unknown fields of every wire type, groups, repeated and reordered fields, invalid UTF-8) decode as protobufjs decodes them', (t) => {
  fc.assert(
    fc.property(decodableVariant(requestFields('SendChangedContainerList')), (fields) => {
      decodesAsProtobufjs(t, w.encode(fields));
    }),
    { numRuns: 300 },
  );
});

test('inside a container and a map entry too: unknown fields and groups are stepped over; absent, repeated and odd keys as protobufjs has them', (t) => {
  const unknown: w.Field[] = [
    { no: 9, varint: 2n ** 63n },
    { no: 10, fixed64: 7n },
    { no: 11, fixed32: 7 },
    { no: 12, bytes: Buffer.from('x') },
    { no: 13, group: [{ no: 1, varint: 1n }, { no: 2, group: [{ no: 3, bytes: Buffer.from('deep') }] }] },
  ];
  const entry = (k: w.Text | undefined, v: w.Text | undefined, extra: w.Field[] = []): w.Field => ({ no: 4, msg: [...extra, ...w.str(1, k), ...w.str(2, v)] });
  const container: w.Field = {
    no: 2,
    msg: [
      ...unknown,
      { no: 1, bytes: Buffer.from('first') },
      { no: 1, bytes: Buffer.from('c1') }, // the last one wins
      entry('Status', 'running', unknown),
      entry(undefined, 'no key'),
      entry('no value', undefined),
      entry('Status', 'exited'), // a repeated key: the last one wins
      entry('__proto__', 'x'),
      entry('constructor', 'y'),
      entry(Buffer.from([0xff, 0xfe]), Buffer.from([0xc3])),
      { no: 2, bytes: Buffer.from('/a') },
      { no: 2, bytes: Buffer.from('/b') },
      { no: 7, msg: [{ no: 1, bytes: Buffer.from('cpu') }, { no: 2, bytes: Buffer.from('0.5') }] },
    ],
  };
  const bytes = w.encode([...unknown, { no: 1, bytes: Buffer.from('n1') }, container, { no: 2, msg: [] }]);
  decodesAsProtobufjs(t, bytes);
  const decoded = decodeContainerList(bytes);
  t.deepEqual(decoded.containers[0]!.names, ['/a', '/b']);
  t.is(decoded.containers[0]!.state.Status, 'exited');
  t.is(decoded.containers[0]!.state[''], 'no key');
  t.is(decoded.containers[0]!.state['\uFFFD\uFFFD'], '\uFFFD', 'invalid UTF-8 becomes U+FFFD, which validation refuses');
  t.deepEqual(decoded.containers[1], { id: '', names: [], image: '', state: {}, config: {}, annotation: {}, stats: {} });
});

test('malformed messages throw MalformedMessageError and nothing else', (t) => {
  const cases: [string, Buffer][] = [
    ['a varint cut short', Buffer.from([0x0a, 0x85])],
    ['a varint of 11 bytes', Buffer.from([(9 << 3) | 0, ...Array(10).fill(0xff), 0x01])],
    ['a length past the end', Buffer.from([0x0a, 0x05, 0x61])],
    ['a container past the end', Buffer.from([0x12, 0x03, 0x0a, 0x01])],
    ['a string past the end of its container', Buffer.from([0x12, 0x03, 0x0a, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65])],
    ['wire type 6', Buffer.from([(3 << 3) | 6, 0x01])],
    ['wire type 7', Buffer.from([(3 << 3) | 7, 0x01])],
    ['an end of group never started', Buffer.from([(3 << 3) | 4])],
    ['a group never ended', Buffer.from([(3 << 3) | 3, 0x08, 0x01])],
    ['20,000 nested groups never ended', Buffer.alloc(20_000, (9 << 3) | 3)],
    ['fixed64 cut short', Buffer.from([(9 << 3) | 1, 1, 2, 3])],
  ];
  for (const [what, bytes] of cases) {
    t.throws(() => decodeContainerList(bytes), { instanceOf: MalformedMessageError }, what);
    // protobufjs steps over an unknown varint of any length (a varint has at most 10 bytes) and
    // cuts a string running past the end of the whole message short.
    if (what !== 'a varint of 11 bytes' && what !== 'a length past the end') t.throws(() => protobufjs.requestDeserialize(bytes), undefined, `protobufjs refuses ${what} too`);
  }
});

test('random damage to well-formed messages: a value of the right shape or a MalformedMessageError, never another error', (t) => {
  fc.assert(
    fc.property(undecodableBytes(requestFields('SendChangedContainerList')), (bytes) => {
      let decoded: ContainerList__Output;
      try {
        decoded = decodeContainerList(bytes);
      } catch (err) {
        t.true(err instanceof MalformedMessageError, String(err));
        return;
      }
      t.is(typeof decoded.node_name, 'string');
      for (const c of decoded.containers) {
        t.true([c.id, c.image, ...c.names].every((s) => typeof s === 'string'));
        for (const m of [c.state, c.config, c.annotation]) t.true(Object.values(m).every((v) => typeof v === 'string'));
      }
    }),
    { numRuns: 300 },
  );
});

// Bounds kept while decoding: grpc-js decodes a request before any handler runs, so a 2 MiB list
// of a million empty containers built a million objects (about 360 MB of heap; two such calls held
// open ran a 512 MB heap out of memory) before validation counted them (code review).
const bounds = { maxContainers: 3, namesPerContainer: 2, mapEntries: 2 };
const over = (v: DecodedContainerList): string | undefined => v[OVER_BOUND];

test('containers past maxContainers are counted, not decoded: below, at and past the bound', (t) => {
  const list = (n: number) => w.encode(w.containerList({ node_name: 'n', containers: Array.from({ length: n }, (_, i) => ({ id: `c${i}` })) }));
  for (const n of [2, 3]) {
    const d = decodeContainerList(list(n), bounds);
    t.is(d.containers.length, n);
    t.is(over(d), undefined, `${n}`);
  }
  const past = decodeContainerList(list(4), bounds);
  t.is(past.containers.length, 3, 'the fourth is stepped over');
  t.is(over(past), 'containers has 4 entries, more than the maximum of 3');
  // A million empty containers (2 bytes each): three objects, and the count.
  const million = Buffer.concat([w.encode([{ no: 1, bytes: Buffer.from('n') }]), Buffer.alloc(2 * 1_000_000, Buffer.from([0x12, 0x00]))]);
  const big = decodeContainerList(million, { ...bounds, maxContainers: 10_000 });
  t.is(big.containers.length, 10_000);
  t.is(over(big), 'containers has 1000000 entries, more than the maximum of 10000');
  t.is(over(decodeContainerList(million)), undefined, 'unbounded by default (as protobufjs)');
});

test('names and map entries past their bounds are counted, not kept: below, at and past each', (t) => {
  const one = (c: w.ContainerMsg) => decodeContainerList(w.encode(w.containerList({ node_name: 'n', containers: [{ id: 'c', ...c }] })), bounds);
  t.is(over(one({ names: ['a', 'b'] })), undefined);
  const names = one({ names: ['a', 'b', 'c', 'd'] });
  t.deepEqual(names.containers[0]!.names, ['a', 'b']);
  t.is(over(names), 'containers[0].names has 4 entries, more than 2');
  for (const field of ['state', 'config', 'annotation'] as const) {
    t.is(over(one({ [field]: [['a', '1'], ['b', '2']] })), undefined, `${field}: at the bound`);
    // A key given again replaces its value and is not counted twice, also at the bound.
    const again = one({ [field]: [['a', '1'], ['b', '2'], ['a', '3']] });
    t.is(over(again), undefined, `${field}: a key given again`);
    t.deepEqual(again.containers[0]![field], { a: '3', b: '2' });
    const past = one({ [field]: [['a', '1'], ['b', '2'], ['c', '3'], ['b', '4']] });
    t.deepEqual(past.containers[0]![field], { a: '1', b: '4' }, `${field}: past the bound the keys held still take their values`);
    t.is(over(past), `containers[0].${field} has 3 entries, more than 2`);
  }
  // The first bound passed is the one said: the count of containers before anything inside one.
  const both = decodeContainerList(w.encode(w.containerList({ node_name: 'n', containers: [{ id: 'a', names: ['1', '2', '3'] }, { id: 'b' }, { id: 'c' }, { id: 'd' }] })), bounds);
  t.is(over(both), 'containers has 4 entries, more than the maximum of 3');
});

// A U+FFFD the bytes hold is a character (Podman writes it for bytes it could not read in a label
// or its error text); bytes that are not UTF-8 mark the list with the field's path. Refusing every
// U+FFFD refused a node's whole list for one label, and its states froze (code review).
test('text is checked for UTF-8 on its bytes: a U+FFFD they hold is text, bytes that are not UTF-8 are marked where they are', (t) => {
  const valid = decodeContainerList(w.encode(w.containerList({ node_name: 'n', containers: [{ id: 'c', image: 'img\uFFFD', state: [['Error', 'exec failed: \uFFFD\uFFFD']], annotation: [['description', 'caf\uFFFD']] }] })));
  t.is(valid[INVALID_UTF8], undefined);
  t.is(valid.containers[0]!.state.Error, 'exec failed: \uFFFD\uFFFD');
  const bad = Buffer.from([0xff, 0xfe]);
  for (const [c, path] of [
    [{ id: bad }, 'containers[0].id'],
    [{ id: 'c', names: ['ok', bad] }, 'containers[0].names[1]'],
    [{ id: 'c', image: bad }, 'containers[0].image'],
    [{ id: 'c', state: [['Error', bad]] }, 'containers[0].state["Error"]'],
    [{ id: 'c', config: [[bad, 'v']] }, 'containers[0].config["\uFFFD\uFFFD"]'],
    [{ id: 'c', annotation: [['k', 'v'], ['model', bad]] }, 'containers[0].annotation["model"]'],
  ] as [w.ContainerMsg, string][]) {
    const d = decodeContainerList(w.encode(w.containerList({ node_name: 'n', containers: [c] })));
    t.is(d[INVALID_UTF8], path);
  }
  t.is(decodeContainerList(w.encode(w.containerList({ node_name: bad, containers: [] })))[INVALID_UTF8], 'node_name');
  // The first one found is said.
  const two = decodeContainerList(w.encode(w.containerList({ node_name: 'n', containers: [{ id: 'a', image: bad }, { id: bad }] })));
  t.is(two[INVALID_UTF8], 'containers[0].image');
});
