// The gate every call passes before its message is read: authentication from the TLS peer
// certificate, the metadata and the peer address, then the caller's rate limit. A refused call
// never has its message read or decoded. The handler finds the caller by its metadata object,
// which grpc-js hands on unchanged; a client cannot forge that entry (it is not metadata).
import * as grpc from '@grpc/grpc-js';
import type { Authenticator, Caller, PeerAuthContext } from '../auth/identity.js';
import type { RateLimiter } from './rate-limit.js';
import type { ThrottledLog } from '../throttled-log.js';

export interface CallGateOptions {
  authenticator: Authenticator;
  rateLimiter: RateLimiter;
  refusals: ThrottledLog;
  /** Counts a refused call by method name and status name. */
  refused(method: string, code: string): void;
}

export class CallGate {
  private readonly callers = new WeakMap<grpc.Metadata, Caller>();

  constructor(private readonly o: CallGateOptions) {}

  /** The authenticated caller of a call the interceptor let through. */
  callerOf(metadata: grpc.Metadata): Caller | undefined {
    return this.callers.get(metadata);
  }

  readonly interceptor: grpc.ServerInterceptor = (method, call) => {
    const name = method.path.slice(method.path.lastIndexOf('/') + 1);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, pass) => {
            const remoteAddress = call.getConnectionInfo().remoteAddress;
            const refusal = this.admit(name, metadata, call.getAuthContext() as PeerAuthContext | null, remoteAddress);
            if (refusal) {
              this.o.refused(name, grpc.status[refusal.code]);
              call.sendStatus({ code: refusal.code, details: refusal.details });
              return;
            }
            pass(metadata);
          },
        });
      },
    });
  };

  private admit(method: string, metadata: grpc.Metadata, authContext: PeerAuthContext | null, remoteAddress: string | undefined): { code: grpc.status; details: string } | undefined {
    const a = this.o.authenticator.authenticate({ authContext, metadata, remoteAddress });
    if (!a.ok) {
      this.o.refusals.warn('unauthenticated', 'gRPC call unauthenticated', { method, peer: remoteAddress, reason: a.reason });
      return { code: grpc.status.UNAUTHENTICATED, details: a.reason };
    }
    // Anonymous callers share no identity: each peer address gets its own bucket.
    const bucket = a.caller.via === 'anonymous' ? `anonymous@${remoteAddress ?? 'unknown'}` : a.caller.identity;
    if (!this.o.rateLimiter.take(bucket)) {
      this.o.refusals.warn('rate-limited', 'gRPC call over its rate limit', { method, identity: a.caller.identity, peer: remoteAddress });
      return { code: grpc.status.RESOURCE_EXHAUSTED, details: `${a.caller.identity} is over its rate limit (grpc.limits.callsPerSecond); retry with backoff` };
    }
    this.callers.set(metadata, a.caller);
    return undefined;
  }
}
