// What the fuzzing suite calls and watches: a statemanager (a real process, or an in-process
// gRPC server on the application's own caches), raw calls of every RPC, a health probe, and a
// detector of etcd writes between two revisions.
import * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';
import { decodeResponse, RawClient, type Method } from './_wire.js';

export interface Outcome {
  method: Method;
  code: grpc.status;
  details: string;
  /** The decoded answer (unary), or the last decoded event (stream). */
  response?: Record<string, unknown>;
  /** Stream only: events received before it ended or was cancelled. */
  events?: number;
  /** Stream only: the first events, decoded. */
  received?: Record<string, unknown>[];
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
  if (o.method === 'TriggerOffloading') return r.accepted !== true;
  if ('success' in r && o.method !== 'SubscribeToStateChanges') return r.success !== true;
  return false;
}

/**
 * Whether it is a success that granted something (a write done, a read answered). A
 * subscription the client cancelled before anything came is neither: a slow refusal looks the
 * same as an accepted subscription with nothing to send yet.
 */
export const succeeded = (o: Outcome): boolean => !refused(o) && !(o.open === true && (o.events ?? 0) === 0);

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
    const received: Record<string, unknown>[] = [];
    let undecodable: string | undefined;
    let cancelled = false;
    stream.on('data', (b: Buffer) => {
      events++;
      try {
        last = decodeResponse(method, b);
        if (received.length < 500) received.push(last);
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
      const base = { method, events, received, ...(last ? { response: last } : {}), ...(undecodable ? { undecodable } : {}) } as const;
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

/**
 * Keys written in the background, on their own schedule: by the controller (derived model and
 * package states, their history, reconcile requests) and the TriggerOffloading records (written
 * after the answer; the suite checks them on their own, by the identity each one records).
 */
export function controllerOwned(layouts: readonly KeyLayout[]): (key: string) => boolean {
  const prefixes = layouts.flatMap((k) => [k.modelStates, k.packageStates, `${k.history}model/`, `${k.history}package/`, k.reconcileRequests, k.leader, `${k.own}offloading/`]);
  return (key) => prefixes.some((p) => key.startsWith(p));
}

// ---- raw HTTP/2: headers grpc-js will not send (bytes that are not ASCII)

export interface RawHttp2Outcome {
  /** grpc-status, or undefined when the server sent none (stream reset, connection closed). */
  code: grpc.status | undefined;
  details: string;
  httpStatus: number | undefined;
  /** How the stream ended without a gRPC status (RST_STREAM code, or an error). */
  reset?: string;
  /** The first response message, gRPC framing removed. */
  message?: Buffer;
}

/** One gRPC call over a fresh HTTP/2 session, with headers as given (values: strings, or several for one name). */
export async function rawHttp2Call(target: string, method: string, headers: Record<string, string | string[]>, body: Buffer, timeoutMs = 5000): Promise<RawHttp2Outcome> {
  const http2 = await import('node:http2');
  return new Promise((resolve) => {
    const session = http2.connect(`http://${target}`);
    let done = false;
    const chunks: Buffer[] = [];
    const finish = (o: RawHttp2Outcome): void => {
      if (done) return;
      done = true;
      const data = Buffer.concat(chunks);
      if (data.length >= 5) o.message = data.subarray(5, 5 + data.readUInt32BE(1));
      clearTimeout(timer);
      session.close();
      session.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ code: undefined, details: '', httpStatus: undefined, reset: 'timeout' }), timeoutMs);
    session.on('error', (e) => finish({ code: undefined, details: '', httpStatus: undefined, reset: `session error: ${String(e)}` }));
    let req: import('node:http2').ClientHttp2Stream;
    try {
      req = session.request({ ':method': 'POST', ':path': `/statemanager.StateManagerConnection/${method}`, 'content-type': 'application/grpc', te: 'trailers', ...headers });
    } catch (e) {
      return finish({ code: undefined, details: '', httpStatus: undefined, reset: `client refused to send: ${String(e)}` });
    }
    let httpStatus: number | undefined;
    let fromHeaders: { code?: number; details: string } = { details: '' };
    const statusOf = (h: Record<string, unknown>): { code?: number; details: string } => ({
      ...(h['grpc-status'] !== undefined ? { code: Number(h['grpc-status']) } : {}),
      details: decodeURIComponent(String(h['grpc-message'] ?? '')),
    });
    req.on('response', (h) => {
      httpStatus = Number(h[':status']);
      fromHeaders = statusOf(h);
    });
    req.on('trailers', (h) => {
      const s = statusOf(h);
      finish({ code: s.code, details: s.details, httpStatus });
    });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('error', (e) => finish({ code: fromHeaders.code, details: fromHeaders.details, httpStatus, reset: `stream error: ${String(e)}` }));
    req.on('close', () => finish({ code: fromHeaders.code, details: fromHeaders.details, httpStatus, ...(fromHeaders.code === undefined ? { reset: `closed, RST_STREAM code ${req.rstCode}` } : {}) }));
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(body.length, 1);
    req.end(Buffer.concat([frame, body]));
  });
}
