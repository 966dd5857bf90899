// The gate every call passes before its message is read: a peer with too many failed
// authentications is turned away first, then the caller is authenticated from the TLS peer
// certificate, the metadata and the peer address, then its call rate and its calls in flight
// are checked. A refused call never has its message read or decoded. The handler skeleton
// (handler.ts) finds the caller by the call's metadata object, which grpc-js hands on
// unchanged; a client cannot forge that entry (it is not metadata).
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { Authenticator, Caller, PeerAuthContext } from '../auth/identity.js';
import type { RateLimiter } from './rate-limit.js';
import type { InFlightLimiter, Slot } from './in-flight.js';
import type { ThrottledLog } from '../../controller/throttled-log.js';
import { UNDECODABLE, isUndecodable } from './proto.js';

export interface CallGateOptions {
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  /** Unary calls not yet answered, per identity; streams are bounded by the read API. */
  inFlight?: InFlightLimiter;
  /** Failed authentications per peer address: once empty, the peer is refused before authentication. */
  authFailures?: RateLimiter;
  /**
   * Whether a peer address is this machine's: anonymous callers there get budgets per
   * connection, elsewhere per address (default: no address is local).
   */
  isLocalPeer?: (address: string) => boolean;
  refusals: ThrottledLog;
  /** Counts a refused call by method name and status name. */
  refused(method: string, code: string): void;
  /**
   * Once its call has ended, a slot whose handler has not answered is released after this long
   * anyway (a safety net: handlers answer within their etcd deadlines). Default 120 s.
   */
  maxHoldMs?: number;
  /**
   * An admitted call's request must have arrived whole (the client half-closed) this soon after
   * its headers; else it is answered DEADLINE_EXCEEDED and its stream released. Every method
   * takes one message. Default 60 s (a 2 MiB request at 35 KB/s).
   */
  requestArrivalMs?: number;
}

export interface Admitted {
  caller: Caller;
  /** Whose budgets the call spends: the identity, or `anonymous@<peer address>`. */
  budgetKey: string;
  slot?: Slot;
}

type Refusal = { code: grpc.status; details: string };

export class CallGate {
  private readonly admitted = new WeakMap<grpc.Metadata, Admitted>();

  private readonly arrivalMs: number;

  constructor(private readonly o: CallGateOptions) {
    this.arrivalMs = o.requestArrivalMs ?? 60_000;
  }

  /** What the interceptor admitted for this call (its caller, budgets and slot), by its metadata. */
  admittedOf(metadata: grpc.Metadata): Admitted | undefined {
    return this.admitted.get(metadata);
  }

  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    const name = method.path.slice(method.path.lastIndexOf('/') + 1);
    const unary = !method.requestStream && !method.responseStream;
    let slot: Slot | undefined;
    let arrival: NodeJS.Timeout | undefined;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, pass) => {
            const { remoteAddress, remotePort } = call.getConnectionInfo();
            const r = this.admit(name, unary, metadata, call.getAuthContext() as PeerAuthContext | null, remoteAddress, remotePort);
            if ('code' in r) {
              this.o.refused(name, grpc.status[r.code]);
              call.sendStatus({ code: r.code, details: r.details });
              releaseStream(call);
              return;
            }
            slot = r.slot;
            // A stream whose request never finishes arriving would be held for ever, with its
            // grpc-js call (about 8 KB): 30,000 of them took 230 MB (found by black-box probing).
            arrival = setTimeout(() => {
              this.o.refusals.warn('request-arrival', 'gRPC request did not arrive whole in time', { method: name, peer: remoteAddress, afterMs: this.arrivalMs });
              this.o.refused(name, 'DEADLINE_EXCEEDED');
              call.sendStatus({ code: grpc.status.DEADLINE_EXCEEDED, details: `the request did not arrive whole within ${this.arrivalMs} ms of its headers` });
              releaseStream(call);
            }, this.arrivalMs);
            arrival.unref();
            pass(metadata);
          },
          onReceiveHalfClose: (pass) => {
            clearTimeout(arrival);
            pass();
          },
          // A message the server's decoder could not read (src/grpc/proto.ts): the caller's fault.
          onReceiveMessage: (message, pass) => {
            if (!isUndecodable(message)) return pass(message);
            if (slot && !slot.owned) slot.release();
            this.o.refusals.warn('undecodable', 'gRPC request not decodable', { method: name, error: message[UNDECODABLE] });
            this.o.refused(name, 'INVALID_ARGUMENT');
            clearTimeout(arrival);
            call.sendStatus({ code: grpc.status.INVALID_ARGUMENT, details: `the request is not a valid ${name} message (protobuf decoding failed: ${message[UNDECODABLE]})` });
            releaseStream(call);
          },
          // The call ended (answered, cut, or cancelled by the client). A slot the handler owns
          // is released by its answer instead: the work behind a cancelled call goes on.
          onCancel: () => {
            clearTimeout(arrival);
            if (slot && !slot.owned) slot.release();
            else slot?.releaseAfter(this.o.maxHoldMs ?? 120_000);
          },
        });
      },
    });
  };

  private admit(
    method: string,
    unary: boolean,
    metadata: grpc.Metadata,
    authContext: PeerAuthContext | null,
    remoteAddress: string | undefined,
    remotePort: number | undefined,
  ): Admitted | Refusal {
    const peer = remoteAddress ?? 'unknown';
    // A verified client certificate cannot be guessed: only the other ways in are locked.
    const guessable = !authContext?.sslPeerCertificate;
    if (guessable && this.o.authFailures?.exhausted(peer)) {
      this.o.refusals.warn('auth-locked', 'gRPC call refused: too many failed authentications from its peer', { method, peer });
      return { code: grpc.status.RESOURCE_EXHAUSTED, details: `too many failed authentications from ${peer} (grpc.limits.authFailuresPerMinute); retry later` };
    }
    const a = this.o.authenticator.authenticate({ authContext, metadata, remoteAddress });
    if (!a.ok) {
      this.o.authFailures?.take(peer);
      this.o.refusals.warn('unauthenticated', 'gRPC call unauthenticated', { method, peer: remoteAddress, reason: a.reason });
      return { code: grpc.status.UNAUTHENTICATED, details: a.reason };
    }
    const budgetKey = a.caller.via === 'anonymous' ? this.anonymousBudgetKey(peer, remotePort) : a.caller.identity;
    if (!this.o.rateLimiter.take(budgetKey)) {
      this.o.refusals.warn('rate-limited', 'gRPC call over its rate limit', { method, identity: a.caller.identity, peer: remoteAddress });
      return { code: grpc.status.RESOURCE_EXHAUSTED, details: `${a.caller.identity} is over its rate limit (grpc.limits.callsPerSecond); retry with backoff` };
    }
    let slot: Slot | undefined;
    if (unary && this.o.inFlight) {
      slot = this.o.inFlight.acquire(budgetKey);
      if (!slot) {
        this.o.refusals.warn('in-flight', 'gRPC call over its calls in flight', { method, identity: a.caller.identity, peer: remoteAddress });
        return { code: grpc.status.RESOURCE_EXHAUSTED, details: `${a.caller.identity} has too many calls in flight (grpc.limits.callsInFlightPerIdentity); wait for answers before sending more` };
      }
    }
    const admitted: Admitted = { caller: a.caller, budgetKey, ...(slot ? { slot } : {}) };
    this.admitted.set(metadata, admitted);
    return admitted;
  }

  /**
   * Anonymous callers share no identity. Beyond this machine each peer address gets its own
   * budgets. On this machine every component shares 127.0.0.1 (one vehicle's components, or a
   * harness with a client per simulated node), and one that floods would starve the others: there
   * each connection gets its own (the connection bounds, connection-gate.ts, bound how many).
   */
  private anonymousBudgetKey(peer: string, port: number | undefined): string {
    return port !== undefined && this.o.isLocalPeer?.(peer) ? `anonymous@${peer}:${port}` : `anonymous@${peer}`;
  }
}

/**
 * The HTTP/2 stream under a call grpc-js has answered, ended with RST_STREAM(NO_ERROR): a server
 * that has sent a complete response may so tell the client to stop sending (RFC 9113, 8.1).
 * grpc-js leaves the stream open until the client ends it, so a refused call whose client never
 * finished its request (never half-closed) kept its stream and call for ever: refused before
 * authentication, 30,000 of them from one peer held 230 MB. grpc-js does not expose the stream;
 * its server call keeps it as `stream` (tested, so an upgrade that moves it fails a test).
 */
function releaseStream(call: unknown): void {
  const stream = (call as { stream?: { closed?: boolean; destroyed?: boolean; close?: (code: number) => void } }).stream;
  if (!stream || typeof stream.close !== 'function' || stream.closed || stream.destroyed) return;
  stream.close(http2.constants.NGHTTP2_NO_ERROR);
}
