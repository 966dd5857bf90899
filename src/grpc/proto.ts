// Loads the project's .proto files at run time with the same options the generated types in
// src/generated were made with (npm run gen:proto), so values have the generated shapes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/statemanager.js';
import { decodeContainerList, type ContainerListBounds } from './container-list-decoder.js';

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
};

/**
 * src/proto next to this module when run from sources (src/grpc/), or the checkout's / image's
 * src/proto when run compiled (dist/src/grpc/).
 */
export function findProtoDir(): string {
  const candidates = ['../proto/', '../../../src/proto/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  for (const dir of candidates) if (existsSync(`${dir}statemanager.proto`)) return dir;
  throw new Error(`statemanager.proto not found in ${candidates.join(' or ')}`);
}

/**
 * Marks a request message protobufjs could not decode. grpc-js answers such a request INTERNAL
 * ("Error deserializing request") before any of our code runs; with this mark instead, the call
 * gate answers INVALID_ARGUMENT, which is what it is: the caller's fault, not the server's.
 */
export const UNDECODABLE = Symbol('undecodable request');
export interface Undecodable {
  [UNDECODABLE]: string;
}

export function isUndecodable(message: unknown): message is Undecodable {
  return typeof message === 'object' && message !== null && UNDECODABLE in message;
}

type MethodCodec = { path: string; requestDeserialize: (b: Buffer) => unknown; responseSerialize: (v: unknown) => Buffer };

/** Every service method's codec, for adjusting in place. */
function eachMethod(def: protoLoader.PackageDefinition, adjust: (method: MethodCodec) => void): protoLoader.PackageDefinition {
  for (const service of Object.values(def)) {
    for (const method of Object.values(service as Record<string, unknown>)) {
      if (typeof method === 'object' && method !== null && 'requestDeserialize' in method && 'responseSerialize' in method) adjust(method as MethodCodec);
    }
  }
  return def;
}

/** The path of the one method whose request is decoded by hand (container-list-decoder.ts). */
export const CONTAINER_LIST_PATH = '/statemanager.StateManagerConnection/SendChangedContainerList';

/** A node's container list is decoded by hand: the largest message, sent by every node. */
function handDecodedContainerLists(m: MethodCodec): void {
  if (m.path === CONTAINER_LIST_PATH) m.requestDeserialize = decodeContainerList;
}

/** Every service method's request decoder made total: a message it cannot decode becomes an Undecodable. */
function tolerantRequests(m: MethodCodec): void {
  m.requestDeserialize = tolerant(m.requestDeserialize);
}

function tolerant(decode: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  return (bytes: Buffer) => {
    try {
      return decode(bytes);
    } catch (err) {
      return { [UNDECODABLE]: err instanceof Error ? err.message : String(err) } satisfies Undecodable;
    }
  };
}

/**
 * The service with its container lists decoded within `bounds` (one server's limits; the loaded
 * service is shared): grpc-js decodes a request before any handler sees it, so only its decoder
 * can keep a list past its bounds from being built.
 */
export function withContainerListBounds<S extends object>(service: S, bounds: ContainerListBounds): S {
  const name = Object.keys(service).find((k) => (service as Record<string, MethodCodec>)[k]!.path === CONTAINER_LIST_PATH);
  if (name === undefined) return service;
  const method = (service as Record<string, MethodCodec>)[name]!;
  return { ...service, [name]: { ...method, requestDeserialize: tolerant((bytes) => decodeContainerList(bytes, bounds)) } };
}

/**
 * A response message encoded once and written as is, to many streams: a subscription's event goes
 * to every subscriber as the same bytes. Every method's response encoder passes one through.
 */
export type PreEncoded = Buffer & { readonly preEncoded: unique symbol };

/** Every service method's response encoder passes a PreEncoded message through unchanged. */
function preEncodedResponses(m: MethodCodec): void {
  const encode = m.responseSerialize;
  m.responseSerialize = (value: unknown) => (Buffer.isBuffer(value) ? value : encode(value));
}

/**
 * Encodes `method`'s response once, for writing as is (see PreEncoded), in memory of its own: the
 * bytes are kept (a subscription's event lives with its change in the resume buffer), and
 * protobufjs encodes into Node's shared pool, so a 110-byte event kept a whole 64 KiB slab alive
 * (found by black-box probing: 185 MB of slabs held by the 10,000 buffered events of a leader
 * after 30 minutes of ordinary traffic; up to 655 MB when other allocations come between events).
 */
export function preEncoder<T>(method: { responseSerialize: (value: T) => Buffer }): (value: T) => PreEncoded {
  return (value) => ownMemory(method.responseSerialize(value)) as PreEncoded;
}

/** `bytes`, or a copy of them in an ArrayBuffer of their own when they are a slice of a larger one. */
export function ownMemory(bytes: Buffer): Buffer {
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength) return bytes;
  const own = Buffer.allocUnsafeSlow(bytes.byteLength);
  bytes.copy(own);
  return own;
}

const cache = new Map<string, ProtoGrpcType>();

export function loadStateManagerProto(protoDir = findProtoDir()): ProtoGrpcType {
  let proto = cache.get(protoDir);
  if (proto === undefined) {
    const def = eachMethod(protoLoader.loadSync('statemanager.proto', { ...PROTO_LOADER_OPTIONS, includeDirs: [protoDir] }), (m) => {
      handDecodedContainerLists(m);
      tolerantRequests(m);
      preEncodedResponses(m);
    });
    proto = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
    cache.set(protoDir, proto);
  }
  return proto;
}

/** Any of the project's protos (the ActionController's, for its client and stand-in). */
export function loadProto<T>(file: string, protoDir = findProtoDir()): T {
  const def = protoLoader.loadSync(file, { ...PROTO_LOADER_OPTIONS, includeDirs: [protoDir] });
  return grpc.loadPackageDefinition(def) as unknown as T;
}
