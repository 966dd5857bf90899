// What the fuzzing suite calls and watches: a statemanager (a real process, or an in-process
// gRPC server on the application's own caches), raw calls of every RPC, a health probe, and a
// detector of etcd writes between two revisions.
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { KeyLayout } from '../../reconcilers/keys.js';
import { decodeResponse, RawClient, type Method } from './_wire.js';

export interface Outcome {
  method: Method;
  code: grpc.status;
  details: string;
  /** The decoded answer (unary), or the last decoded event (stream). */
  response?: Record<string, unknown>;
  /** Stream only: events received before it ended or was cancelled. */
  events?: number;
  /** Stream only: still open when the client cancelled it (no status from the server). */
  open?: boolean;
  /** A response the client could not decode, with the reason. */
  undecodable?: string;
}

const SERVER_FAULTS = new Set([grpc.status.UNKNOWN, grpc.status.INTERNAL]);
export const isServerFault = (o: Outcome): boolean => SERVER_FAULTS.has(o.code) || o.undecodable !== undefined;

/** Whether the server refused the call: a non-OK status, or an answer saying it did nothing. */
export function refused(o: Outcome): boolean {
  if (o.code !== grpc.status.OK) return true;
  const r = o.response ?? {};
  if (o.method === 'SendStateChange') return r.error_code !== 'ERROR_CODE_SUCCESS';
  if ('success' in r && o.method !== 'SubscribeToStateChanges') return r.success !== true;
  return false;
}

/** Whether it is a success that granted something (a write done, a read answered). */
export const succeeded = (o: Outcome): boolean => !refused(o);

export function describe(o: Outcome): string {
  const r = o.response;
  const brief = r ? JSON.stringify(r, (_k, v: unknown) => (typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…(${v.length})` : v)).slice(0, 600) : '';
  return `${o.method} → ${grpc.status[o.code]} ${JSON.stringify(o.details.slice(0, 300))}${o.events !== undefined ? ` events=${o.events}${o.open ? ' (open)' : ''}` : ''} ${brief}${o.undecodable ? ` UNDECODABLE: ${o.undecodable}` : ''}`;
}

export function rawClient(target: string): RawClient {
  return new RawClient(target, grpc.credentials.createInsecure(), {
    // Answers may be large (a list of everything); the suite's own limits are not under test.
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc.max_metadata_size': 1024 * 1024,
  });
}

export function call(client: RawClient, method: Method, body: Buffer, metadata: grpc.Metadata, o: { timeoutMs?: number; streamMs?: number } = {}): Promise<Outcome> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  if (method === 'SubscribeToStateChanges') return subscribe(client, body, metadata, o.streamMs ?? 50, timeoutMs);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      `/statemanager.StateManagerConnection/${method}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      metadata,
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        if (err) return resolve({ method, code: err.code, details: err.details ?? '' });
        try {
          resolve({ method, code: grpc.status.OK, details: '', response: decodeResponse(method, res!) });
        } catch (e) {
          resolve({ method, code: grpc.status.OK, details: '', undecodable: String(e) });
        }
      },
    );
  });
}

function subscribe(client: RawClient, body: Buffer, metadata: grpc.Metadata, streamMs: number, timeoutMs: number): Promise<Outcome> {
  const method = 'SubscribeToStateChanges';
  return new Promise((resolve) => {
    const stream = client.makeServerStreamRequest(`/statemanager.StateManagerConnection/${method}`, (b: Buffer) => b, (b: Buffer) => b, body, metadata, {
      deadline: Date.now() + timeoutMs,
    });
    let events = 0;
    let last: Record<string, unknown> | undefined;
    let undecodable: string | undefined;
    let cancelled = false;
    stream.on('data', (b: Buffer) => {
      events++;
      try {
        last = decodeResponse(method, b);
      } catch (e) {
        undecodable ??= String(e);
      }
    });
    stream.on('error', () => undefined); // the status below says it all
    const timer = setTimeout(() => {
      cancelled = true;
      stream.cancel();
    }, streamMs);
    stream.on('status', (s: grpc.StatusObject) => {
      clearTimeout(timer);
      const base = { method, events, ...(last ? { response: last } : {}), ...(undecodable ? { undecodable } : {}) } as const;
      if (cancelled && s.code === grpc.status.CANCELLED) resolve({ ...base, code: grpc.status.OK, details: '', open: true });
      else resolve({ ...base, code: s.code, details: s.details });
    });
  });
}

// ---- etcd writes

/**
 * The keys written in etcd between two revisions, read back from etcd's history (a watch from
 * the first revision), so that even a key written and deleted again in between is seen. Keys
 * `ignore` accepts (the controller's own writes, which it makes on its own schedule) are left out.
 */
export class WriteDetector {
  constructor(
    private readonly etcd: Etcd3,
    private readonly ignore: (key: string) => boolean,
  ) {}

  async revision(): Promise<number> {
    const res = await this.etcd.kv.range({ key: Buffer.from('/'), count_only: true });
    return Number(res.header.revision);
  }

  /** Keys written after `from`, up to the current revision (which it returns too). */
  async writesSince(from: number): Promise<{ to: number; keys: string[] }> {
    const to = await this.revision();
    if (to === from) return { to, keys: [] };
    const seen: string[] = [];
    let upTo = from;
    const watcher = await this.etcd
      .watch()
      .prefix('')
      .startRevision(String(from + 1))
      .create();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`etcd history from ${from + 1} to ${to}: only reached ${upTo}`)), 5000);
        watcher.on('data', (res) => {
          for (const e of res.events) {
            const rev = Number(e.kv.mod_revision);
            if (rev > to) continue;
            upTo = Math.max(upTo, rev);
            const key = e.kv.key.toString();
            if (!this.ignore(key)) seen.push(`${e.type}:${key}@${rev}`);
          }
          if (upTo >= to) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    } finally {
      await watcher.cancel();
    }
    return { to, keys: seen };
  }
}

/** Keys the controller writes by itself (derived model and package states, their history, reconcile requests). */
export function controllerOwned(layouts: readonly KeyLayout[]): (key: string) => boolean {
  const prefixes = layouts.flatMap((k) => [k.modelStates, k.packageStates, `${k.history}model/`, `${k.history}package/`, k.reconcileRequests, k.leader]);
  return (key) => prefixes.some((p) => key.startsWith(p));
}
