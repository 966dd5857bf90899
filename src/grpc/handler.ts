// One skeleton for every gRPC method, unary or server-streaming: admit (the caller the call gate
// let through, then the method's permission) → run → respond → record (one metric per answer)
// → fail (what run did not expect, logged and mapped to a status). A method only says what it
// runs; each outcome is answered and counted in one place, once.
import * as grpc from '@grpc/grpc-js';
import { constants as http2Constants, type Http2Stream } from 'node:http2';
import type { Logger } from '../../controller/logger.js';
import type { Caller } from '../auth/identity.js';
import type { Authorizer } from '../auth/policy.js';
import type { ThrottledLog } from '../../controller/throttled-log.js';
import { callerDeadlineMs } from './answer-deadline.js';
import type { Admitted as GateAdmitted } from './call-gate.js';

export interface Refusal {
  code: grpc.status;
  details: string;
}

/** What a unary method answers: a response, counted under `label` ('OK' unless said), or a status. */
export type Outcome<Res> = { response: Res; label?: string } | { refusal: Refusal };

export function answer<Res>(response: Res, label?: string): Outcome<Res> {
  return label === undefined ? { response } : { response, label };
}

export function refuse(code: grpc.status, details: string): { refusal: Refusal } {
  return { refusal: { code, details } };
}

/** A call past admission: who sent what, and the limits it runs under. */
export interface Call<Req> {
  caller: Caller;
  request: Req;
  /** Whose budgets the call spends: the identity, or `anonymous@<peer address>` (`…:<port>`, one connection, on loopback). */
  budgetKey: string;
  /** The client's deadline (epoch ms), if any. */
  callerDeadline?: number;
  /** grpc-js's peer string ("127.0.0.1:5000"). */
  peer: string;
  /** Runs `fn` once the call is over: its answer sent, or the call cancelled (at once if it already is). */
  onEnd(fn: () => void): void;
  /**
   * Resets the call's HTTP/2 stream if it has not ended `ms` from now: a unary answer its client
   * does not read keeps its status, and so its end, from ever coming (grpc-js sends neither the
   * status nor its deadline's until the answer is written), holding what the call holds.
   */
  cutAfter(ms: number): void;
}

/**
 * `read`: the skeleton authorizes the call as a read. `per-request`: run authorizes it, on what
 * the request says (a node, a model, a transition), which only run has validated.
 */
export type Permission = 'read' | 'per-request';

interface Spec {
  method: string;
  permission: Permission;
  /** What an unexpected error answers, after logging it. Default: INTERNAL, the stack at error. */
  fail?: (method: string, err: unknown) => Refusal;
}

export interface UnarySpec<Req, Res> extends Spec {
  run(call: Call<Req>): Outcome<Res> | Promise<Outcome<Res>>;
}

/** The open end of a server stream, as its method sees it. */
export interface Stream<Ev> {
  write(event: Ev): boolean;
  /** Ends the stream with `code` (OK: cleanly), once; false when it was already over. */
  end(code: grpc.status, details: string): boolean;
  /** Answered or cancelled: nothing more is written. */
  readonly over: boolean;
  /** Runs once when the stream is over, however it ended, before the end is counted. */
  onClose(f: () => void): void;
  onDrain(f: () => void): void;
}

export interface StreamSpec<Req, Ev> extends Spec {
  /** Opens the stream; a refusal answers at once (nothing was opened). */
  run(call: Call<Req>, stream: Stream<Ev>): Refusal | undefined;
}

export interface SkeletonDeps {
  /** What the call gate admitted, by the call's metadata (src/grpc/call-gate.ts). */
  admitted(metadata: grpc.Metadata): GateAdmitted | undefined;
  authorizer: Authorizer;
  logger: Logger;
  refusals: ThrottledLog;
  /** Counts an answer by method and status name (or the response's label). */
  record(method: string, code: string): void;
}

export interface Skeleton {
  unary<Req, Res>(spec: UnarySpec<Req, Res>): grpc.handleUnaryCall<Req, Res>;
  serverStream<Req, Ev>(spec: StreamSpec<Req, Ev>): grpc.handleServerStreamingCall<Req, Ev>;
}

type AnyCall<Req> = grpc.ServerUnaryCall<Req, unknown> | grpc.ServerWritableStream<Req, unknown>;

export function skeleton(deps: SkeletonDeps): Skeleton {
  const { logger, record } = deps;

  const internal = (method: string, err: unknown): Refusal => {
    deps.refusals.error(`handler-failed-${method}`, 'gRPC handler failed', { method, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    return { code: grpc.status.INTERNAL, details: 'internal error' };
  };

  const admit = <Req>(spec: Spec, call: AnyCall<Req>): Call<Req> | Refusal => {
    const gated = deps.admitted(call.metadata);
    // Every call passes the gate first; a call without a caller is a wiring bug, refused.
    if (!gated) {
      logger.error('gRPC call reached its handler without passing the gate', { method: spec.method });
      return { code: grpc.status.UNAUTHENTICATED, details: 'not authenticated' };
    }
    const { caller } = gated;
    if (spec.permission === 'read' && !deps.authorizer.authorize(caller, { method: 'read', call: spec.method }).allowed) {
      deps.refusals.warn('denied', 'gRPC call denied', { method: spec.method, identity: caller.identity, via: caller.via });
      return { code: grpc.status.PERMISSION_DENIED, details: `${caller.identity} may not read states` };
    }
    const deadline = callerDeadlineMs(call.getDeadline());
    // grpc-js emits 'cancelled' when a call ends either way: after its status is sent (for an
    // answer, once its last byte has gone to the connection) or when it is cancelled.
    const onEnd = (fn: () => void): void => void (call.cancelled ? fn() : call.once('cancelled', fn));
    const cutAfter = (ms: number): void => {
      const timer = setTimeout(() => resetStream(call), ms);
      timer.unref();
      onEnd(() => clearTimeout(timer));
    };
    return { caller, request: call.request, budgetKey: gated.budgetKey, peer: call.getPeer(), onEnd, cutAfter, ...(deadline === undefined ? {} : { callerDeadline: deadline }) };
  };

  const unary = <Req, Res>(spec: UnarySpec<Req, Res>): grpc.handleUnaryCall<Req, Res> => {
    const fail = spec.fail ?? internal;
    return (call, callback) => {
      // The caller's in-flight slot is held until this answer, not until the client gives up.
      const slot = deps.admitted(call.metadata)?.slot;
      slot?.own();
      const admitted = admit(spec, call);
      const respond = (o: Outcome<Res>): void => {
        slot?.release();
        if ('refusal' in o) {
          record(spec.method, grpc.status[o.refusal.code]);
          callback(o.refusal);
        } else {
          // Counted once the answer is out: one that ended past the caller's deadline (a large
          // list over a slow link) never reached it as OK (black-box probing at 64 kbit/s: 4 of 4
          // lists timed out at the caller and were counted OK).
          const label = o.label ?? 'OK';
          if ('caller' in admitted) {
            const { onEnd, callerDeadline } = admitted;
            // A caller gone before the answer (cancelled) did not get it either.
            const goneBefore = call.cancelled;
            onEnd(() => record(spec.method, callerDeadline !== undefined && Date.now() >= callerDeadline ? 'DEADLINE_EXCEEDED' : goneBefore ? 'CANCELLED' : label));
          } else record(spec.method, label);
          callback(null, o.response);
        }
      };
      if (!('caller' in admitted)) return respond({ refusal: admitted });
      let ran: Outcome<Res> | Promise<Outcome<Res>>;
      try {
        ran = spec.run(admitted);
      } catch (err) {
        return respond({ refusal: fail(spec.method, err) });
      }
      if (ran instanceof Promise) ran.then(respond, (err: unknown) => respond({ refusal: fail(spec.method, err) }));
      else respond(ran);
    };
  };

  const serverStream = <Req, Ev>(spec: StreamSpec<Req, Ev>): grpc.handleServerStreamingCall<Req, Ev> => {
    const fail = spec.fail ?? internal;
    return (call) => {
      const refused = (r: Refusal): void => {
        record(spec.method, grpc.status[r.code]);
        call.emit('error', r);
      };
      const admitted = admit(spec, call);
      if (!('caller' in admitted)) return refused(admitted);
      const { stream, close } = openStream(call, (code) => record(spec.method, code));
      let refusal: Refusal | undefined;
      try {
        refusal = spec.run(admitted, stream);
      } catch (err) {
        const r = fail(spec.method, err);
        stream.end(r.code, r.details);
        return;
      }
      if (refusal && close()) refused(refusal);
    };
  };

  return { unary, serverStream };
}

/** How long a cut stream's status may wait behind data its client does not read before the stream is reset. */
export const UNREAD_STATUS_GRACE_MS = 5000;

/**
 * The HTTP/2 stream under a grpc-js server call: the handler's call → its intercepting calls
 * (`call`, then `nextCall`) → the base call's `stream` (grpc-js 1.14's layout, which exposes no
 * way to reset a stream). Undefined if grpc-js is laid out otherwise; the test that cuts a
 * client that does not read then fails.
 */
export function http2StreamOf(call: unknown): Http2Stream | undefined {
  let at = (call as { call?: unknown }).call;
  for (let depth = 0; at !== null && typeof at === 'object' && depth < 16; depth++) {
    const s = (at as { stream?: unknown }).stream;
    if (s !== null && typeof s === 'object' && typeof (s as Http2Stream).close === 'function' && 'rstCode' in s) return s as Http2Stream;
    at = (at as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/** Resets a call's HTTP/2 stream that has not closed (RST_STREAM ENHANCE_YOUR_CALM); false when grpc-js shows none. */
function resetStream(call: unknown): boolean {
  const h2 = http2StreamOf(call);
  if (h2 === undefined) return false;
  if (!h2.closed && !h2.destroyed) h2.close(http2Constants.NGHTTP2_ENHANCE_YOUR_CALM);
  return true;
}

/** Resets a call's HTTP/2 stream that has not closed (its status never went); without one, destroys the call. */
function resetUnfinished(call: grpc.ServerWritableStream<unknown, unknown>): void {
  if (!resetStream(call)) call.destroy();
}

/** A server stream that ends once: closers run, the end is counted, then answered. */
function openStream<Ev>(call: grpc.ServerWritableStream<unknown, Ev>, counted: (code: string) => void): { stream: Stream<Ev>; close: () => boolean } {
  let over = false;
  const closers: (() => void)[] = [];
  const close = (): boolean => {
    if (over) return false;
    over = true;
    for (const f of closers) f();
    return true;
  };
  call.on('cancelled', () => {
    if (close()) counted('CANCELLED');
  });
  const stream: Stream<Ev> = {
    write: (event) => call.write(event),
    end(code, details) {
      if (!close()) return false;
      counted(grpc.status[code]);
      if (code === grpc.status.OK) {
        call.end();
        return true;
      }
      call.emit('error', { code, details });
      // The status goes after the data already written; a client that does not read never
      // receives either. After a grace the HTTP/2 stream is reset (RST_STREAM
      // ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED): that frees its
      // slot among the connection's concurrent streams, which a destroyed call alone kept.
      if (code === grpc.status.RESOURCE_EXHAUSTED) setTimeout(() => resetUnfinished(call), UNREAD_STATUS_GRACE_MS).unref();
      return true;
    },
    get over() {
      return over;
    },
    onClose: (f) => void closers.push(f),
    onDrain: (f) => void call.on('drain', f),
  };
  return { stream, close };
}
