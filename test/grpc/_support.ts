// Shared pieces of the gRPC tests: a server per test on 127.0.0.1:0 with its own key prefix,
// clients built from the project's protos, raw protobuf encoding for malformed messages, etcd
// snapshots and a logger that keeps what it is told.
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { ContainerList } from '../../src/generated/monitoringserver/ContainerList.js';
import type { StateChange } from '../../src/generated/statemanager/StateChange.js';
import type { StateChangeResponse__Output } from '../../src/generated/statemanager/StateChangeResponse.js';
import type { StateManagerConnectionClient } from '../../src/generated/statemanager/StateManagerConnection.js';
import { KeyLayout } from '../../domain/keys.js';
import type { Logger } from '../../controller/logger.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { prefixEnd } from '../../src/etcd/lister-watcher.js';
import { parseGrpcServerConfig, type GrpcServerConfigInput } from '../../src/grpc/config.js';
import { loadStateManagerProto } from '../../src/grpc/proto.js';
import { createStateManagerServer, type GrpcMetrics, type StateManagerServer, type StateManagerServerOptions } from '../../src/grpc/server.js';
import type { ModelPlacement } from '../../src/auth/policy.js';

export const proto = loadStateManagerProto();
const service = proto.statemanager.StateManagerConnection.service;

export interface LogLine {
  level: 'error' | 'warn' | 'info' | 'debug';
  message: string;
  meta: Record<string, unknown>;
}

export function captureLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (message: string, meta: Record<string, unknown> = {}): void => {
      lines.push({ level, message, meta });
    };
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

export function recordingMetrics(): GrpcMetrics & { calls: [string, string][]; anonymousBeyondLoopbackSet: boolean[]; openConnections: number[]; refusedConnections: string[] } {
  const calls: [string, string][] = [];
  const anonymousBeyondLoopbackSet: boolean[] = [];
  const openConnections: number[] = [];
  const refusedConnections: string[] = [];
  return {
    calls,
    anonymousBeyondLoopbackSet,
    openConnections,
    refusedConnections,
    request: (m, c) => void calls.push([m, c]),
    anonymousBeyondLoopback: (on) => void anonymousBeyondLoopbackSet.push(on),
    connections: { open: (n) => void openConnections.push(n), refused: (r) => void refusedConnections.push(r) },
  };
}

/** A key prefix no other test uses. */
export function uniquePrefix(): string {
  return `t${randomBytes(5).toString('hex')}:`;
}

export interface TestServer {
  port: number;
  target: string;
  keys: KeyLayout;
  logger: ReturnType<typeof captureLogger>;
  metrics: ReturnType<typeof recordingMetrics>;
  server: StateManagerServer;
  /** A client on the project's protos; plaintext unless credentials are given. */
  client(creds?: grpc.ChannelCredentials): StateManagerConnectionClient;
}

const servers: StateManagerServer[] = [];
const clients: grpc.Client[] = [];

export async function startTestServer(
  etcd: Etcd3,
  config: GrpcServerConfigInput = {},
  o: {
    requestTimeoutMs?: number;
    keys?: KeyLayout;
    isLocalPeer?: (address: string) => boolean;
    placement?: ModelPlacement;
    readApi?: StateManagerServerOptions['readApi'];
    offloading?: StateManagerServerOptions['offloading'];
    requestArrivalMs?: number;
  } = {},
): Promise<TestServer> {
  const keys = o.keys ?? new KeyLayout(uniquePrefix());
  const logger = captureLogger();
  const metrics = recordingMetrics();
  const requestTimeoutMs = o.requestTimeoutMs ?? 3000;
  const store = new EtcdStateStore({ client: etcd, keys, historyLength: 50, requestTimeoutMs });
  const server = createStateManagerServer({
    client: etcd,
    keys,
    store,
    logger,
    // The production observer's line for a requested change (state changed, with who asked).
    observer: { invalidInput: () => undefined, reconcileRequest: () => undefined, transition: (kind, name, from, to, reason, details) => logger.info('state changed', { kind, name, from, to, reason, ...details }) },
    metrics,
    requestTimeoutMs,
    config: parseGrpcServerConfig({ addr: '127.0.0.1:0', ...config }),
    shutdownTimeoutMs: 1000,
    ...(o.isLocalPeer ? { isLocalPeer: o.isLocalPeer } : {}),
    ...(o.placement ? { placement: o.placement } : {}),
    ...(o.readApi ? { readApi: o.readApi } : {}),
    ...(o.offloading ? { offloading: o.offloading } : {}),
    ...(o.requestArrivalMs !== undefined ? { requestArrivalMs: o.requestArrivalMs } : {}),
  });
  const { port } = await server.start();
  servers.push(server);
  const target = `127.0.0.1:${port}`;
  return {
    port,
    target,
    keys,
    logger,
    metrics,
    server,
    client(creds = grpc.credentials.createInsecure()) {
      const c = new proto.statemanager.StateManagerConnection(target, creds, {
        'grpc.ssl_target_name_override': 'localhost',
      });
      clients.push(c);
      return c;
    },
  };
}

export async function stopAll(): Promise<void> {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
}

const deadline = (): grpc.CallOptions => ({ deadline: Date.now() + 10_000 });

export function sendContainerList(
  c: StateManagerConnectionClient,
  list: ContainerList,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = deadline(),
): Promise<string> {
  return new Promise((resolve, reject) => {
    c.SendChangedContainerList(list, metadata, options, (err, res) => (err ? reject(err) : resolve(res!.resp)));
  });
}

/** A scenario state change as a caller sends it, with a transition id made of name and target. */
export function scenarioChange(name: string, target: string, current = ''): StateChange {
  return { resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: name, current_state: current, target_state: target, transition_id: `${name}-${target}`, timestamp_ns: 1, source: 'test' };
}

export function sendStateChange(
  c: StateManagerConnectionClient,
  change: StateChange,
  metadata = new grpc.Metadata(),
): Promise<StateChangeResponse__Output> {
  return new Promise((resolve, reject) => {
    c.SendStateChange(change, metadata, deadline(), (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

export function sendAction(c: StateManagerConnectionClient, action: string): Promise<string> {
  return new Promise((resolve, reject) => {
    c.SendAction({ action }, deadline(), (err, res) => (err ? reject(err) : resolve(res!.resp)));
  });
}

/** The gRPC error of a call expected to fail (rejects if it succeeded). */
export async function grpcError(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error('the call succeeded');
}

export function bearer(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

// ---- raw protobuf, for what a well-behaved client cannot send (invalid UTF-8, unknown enums)

type Bytes = string | Buffer;

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function lenField(no: number, value: Bytes): Buffer {
  const b = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  return Buffer.concat([varint((no << 3) | 2), varint(b.length), b]);
}

function varintField(no: number, value: number): Buffer {
  return Buffer.concat([varint(no << 3), varint(value)]);
}

export interface RawStateChange {
  resource_type?: number;
  resource_name?: Bytes;
  current_state?: Bytes;
  target_state?: Bytes;
  transition_id?: Bytes;
  source?: Bytes;
}

export function encodeStateChange(m: RawStateChange): Buffer {
  const parts: Buffer[] = [];
  if (m.resource_type !== undefined) parts.push(varintField(1, m.resource_type));
  if (m.resource_name !== undefined) parts.push(lenField(2, m.resource_name));
  if (m.current_state !== undefined) parts.push(lenField(3, m.current_state));
  if (m.target_state !== undefined) parts.push(lenField(4, m.target_state));
  if (m.transition_id !== undefined) parts.push(lenField(5, m.transition_id));
  if (m.source !== undefined) parts.push(lenField(7, m.source));
  return Buffer.concat(parts);
}

export interface RawContainer {
  id: Bytes;
  names?: Bytes[];
  image?: Bytes;
  annotation?: [Bytes, Bytes][];
}

export function encodeContainerList(nodeName: Bytes, containers: RawContainer[]): Buffer {
  const parts: Buffer[] = [lenField(1, nodeName)];
  for (const c of containers) {
    const inner: Buffer[] = [lenField(1, c.id)];
    for (const n of c.names ?? []) inner.push(lenField(2, n));
    if (c.image !== undefined) inner.push(lenField(3, c.image));
    for (const [k, v] of c.annotation ?? []) inner.push(lenField(6, Buffer.concat([lenField(1, k), lenField(2, v)])));
    parts.push(lenField(2, Buffer.concat(inner)));
  }
  return Buffer.concat(parts);
}

/** Sends pre-encoded request bytes; the answer is decoded with the project's protos. */
export function sendRaw<T>(
  c: grpc.Client,
  method: 'SendStateChange' | 'SendChangedContainerList',
  body: Buffer,
): Promise<T> {
  const def = service[method];
  return new Promise((resolve, reject) => {
    c.makeUnaryRequest(
      def.path,
      (b: Buffer) => b,
      (b: Buffer) => def.responseDeserialize(b) as T,
      body,
      new grpc.Metadata(),
      deadline(),
      (err, res) => (err ? reject(err) : resolve(res!)),
    );
  });
}

// ---- etcd

export interface EtcdSnapshot {
  revision: number;
  kvs: Map<string, { value: string; modRevision: string }>;
}

/** Every key (under a prefix, or all) with value and mod revision, and the store revision. */
export async function snapshot(client: Etcd3, prefix = ''): Promise<EtcdSnapshot> {
  const key = prefix === '' ? Buffer.from([0]) : Buffer.from(prefix);
  const rangeEnd = prefix === '' ? Buffer.from([0]) : prefixEnd(Buffer.from(prefix));
  const res = await client.kv.range({ key, range_end: rangeEnd });
  return {
    revision: Number(res.header.revision),
    kvs: new Map(res.kvs.map((kv) => [kv.key.toString(), { value: kv.value.toString(), modRevision: kv.mod_revision }])),
  };
}


export async function getString(client: Etcd3, key: string): Promise<string | null> {
  return client.get(key).string();
}

export async function modRevision(client: Etcd3, key: string): Promise<string | undefined> {
  const res = await client.kv.range({ key: Buffer.from(key) });
  return res.kvs[0]?.mod_revision;
}
