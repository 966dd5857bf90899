// Protobuf on the wire, written by hand so that the fuzzer can send what no well-behaved client
// can: invalid UTF-8, unknown enum numbers, negative or huge int64, unknown and duplicated
// fields, wrong wire types, truncated or nested-group messages. And a gRPC client whose
// serializer is the identity, so those bytes reach the server unchanged.
import * as grpc from '@grpc/grpc-js';
import { loadStateManagerProto } from '../../src/grpc/proto.js';

/** One encoded field; `msg` is a nested message (length-delimited), `raw` bytes are appended as they are. */
export type Field =
  | { no: number; varint: bigint }
  | { no: number; bytes: Buffer }
  | { no: number; msg: Field[] }
  | { no: number; fixed64: bigint }
  | { no: number; fixed32: number }
  | { no: number; group: Field[] }
  | { raw: Buffer };

export function varint(n: bigint): Buffer {
  let v = BigInt.asUintN(64, n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

const tag = (no: number, wire: number): Buffer => varint((BigInt(no) << 3n) | BigInt(wire));

export function encode(fields: readonly Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if ('raw' in f) parts.push(f.raw);
    else if ('varint' in f) parts.push(tag(f.no, 0), varint(f.varint));
    else if ('fixed64' in f) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt.asUintN(64, f.fixed64));
      parts.push(tag(f.no, 1), b);
    } else if ('fixed32' in f) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(f.fixed32 >>> 0);
      parts.push(tag(f.no, 5), b);
    } else if ('group' in f) parts.push(tag(f.no, 3), encode(f.group), tag(f.no, 4));
    else {
      const body = 'msg' in f ? encode(f.msg) : f.bytes;
      parts.push(tag(f.no, 2), varint(BigInt(body.length)), body);
    }
  }
  return Buffer.concat(parts);
}

/** Text as UTF-8, or bytes as they are (which need not be UTF-8). */
export type Text = string | Buffer;
export const bytesOf = (t: Text): Buffer => (Buffer.isBuffer(t) ? t : Buffer.from(t, 'utf8'));

export const str = (no: number, t: Text | undefined): Field[] => (t === undefined ? [] : [{ no, bytes: bytesOf(t) }]);
export const num = (no: number, n: bigint | number | undefined): Field[] => (n === undefined ? [] : [{ no, varint: BigInt(n) }]);
export const map = (no: number, entries: readonly (readonly [Text, Text])[] | undefined): Field[] =>
  (entries ?? []).map(([k, v]) => ({ no, msg: [...str(1, k), ...str(2, v)] }));

// ---- the requests of every RPC (field numbers of src/proto/*.proto and contract sections 3, 5)

export interface StateChangeMsg {
  resource_type?: bigint;
  resource_name?: Text;
  current_state?: Text;
  target_state?: Text;
  transition_id?: Text;
  timestamp_ns?: bigint;
  source?: Text;
}
export const stateChange = (m: StateChangeMsg): Field[] => [
  ...num(1, m.resource_type),
  ...str(2, m.resource_name),
  ...str(3, m.current_state),
  ...str(4, m.target_state),
  ...str(5, m.transition_id),
  ...num(6, m.timestamp_ns),
  ...str(7, m.source),
];

export interface ContainerMsg {
  id?: Text;
  names?: Text[];
  image?: Text;
  state?: [Text, Text][];
  config?: [Text, Text][];
  annotation?: [Text, Text][];
  stats?: [Text, Text][];
}
export interface ContainerListMsg {
  node_name?: Text;
  containers: ContainerMsg[];
}
export const containerList = (m: ContainerListMsg): Field[] => [
  ...str(1, m.node_name),
  ...m.containers.map(
    (c): Field => ({
      no: 2,
      msg: [
        ...str(1, c.id),
        ...(c.names ?? []).flatMap((n) => str(2, n)),
        ...str(3, c.image),
        ...map(4, c.state),
        ...map(5, c.config),
        ...map(6, c.annotation),
        ...map(7, c.stats),
      ],
    }),
  ),
];

export const action = (m: { action?: Text }): Field[] => str(1, m.action);

export const resourceStateRequest = (m: { resource_type?: bigint; resource_name?: Text }): Field[] => [...num(1, m.resource_type), ...str(2, m.resource_name)];

export interface HistoryRequestMsg {
  resource_type?: bigint;
  resource_name?: Text;
  start_time_ns?: bigint;
  end_time_ns?: bigint;
  limit?: bigint;
}
export const historyRequest = (m: HistoryRequestMsg): Field[] => [
  ...num(1, m.resource_type),
  ...str(2, m.resource_name),
  ...num(3, m.start_time_ns),
  ...num(4, m.end_time_ns),
  ...num(5, m.limit),
];

export interface ListRequestMsg {
  resource_type?: bigint;
  state?: Text;
  label_selector?: [Text, Text][];
  limit?: bigint;
}
export const listRequest = (m: ListRequestMsg): Field[] => [...num(1, m.resource_type), ...str(2, m.state), ...map(3, m.label_selector), ...num(4, m.limit)];

export interface SubscriptionMsg {
  resource_type?: bigint;
  filter?: [Text, Text][];
  include_health_events?: bigint;
  include_recovery_events?: bigint;
}
export const subscriptionRequest = (m: SubscriptionMsg): Field[] => [
  ...num(1, m.resource_type),
  ...map(2, m.filter),
  ...num(3, m.include_health_events),
  ...num(4, m.include_recovery_events),
];

/** TriggerOffloading's request (contract section 3, "Offloading"): seven strings. */
export const offloadingRequest = (m: Text[]): Field[] => m.flatMap((t, i) => str(i + 1, t));

// ---- a client that sends bytes as they are

export const UNARY_METHODS = [
  'SendAction',
  'SendChangedContainerList',
  'SendStateChange',
  'GetResourceState',
  'GetResourceStateHistory',
  'ListResourcesByState',
  'TriggerOffloading',
] as const;
export type UnaryMethod = (typeof UNARY_METHODS)[number];
export type Method = UnaryMethod | 'SubscribeToStateChanges';

const SERVICE = '/statemanager.StateManagerConnection/';
const identity = (b: Buffer): Buffer => b;

/** Every method of the service with identity (de)serializers; TriggerOffloading too, which the project's proto may not have yet. */
const rawDefinition: grpc.ServiceDefinition = Object.fromEntries(
  [...UNARY_METHODS, 'SubscribeToStateChanges'].map((m) => [
    m,
    {
      path: SERVICE + m,
      requestStream: false,
      responseStream: m === 'SubscribeToStateChanges',
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  ]),
);

export const RawClient = grpc.makeGenericClientConstructor(rawDefinition, 'StateManagerConnection');
export type RawClient = InstanceType<typeof RawClient>;

const service = loadStateManagerProto().statemanager.StateManagerConnection.service as unknown as Record<string, grpc.MethodDefinition<unknown, unknown>>;

/** Decodes a response with the project's protos (the same options as the server's). */
export function decodeResponse(method: Method, b: Buffer): Record<string, unknown> {
  const def = service[method];
  if (!def) return { raw: b.toString('hex') };
  return def.responseDeserialize(b) as Record<string, unknown>;
}

/** Decodes a request as the server does (the project's protos, the server's options); throws where it would. */
export function decodeRequest(method: Method, b: Buffer): Record<string, unknown> {
  const def = service[method];
  if (!def) throw new Error(`${method} is not in the project's protos`);
  return def.requestDeserialize(b) as Record<string, unknown>;
}
