// The ActionController's Reconcile and OffloadModel over gRPC, on one connection, with a
// deadline on every call so a hung peer cannot hold a worker or a caller.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { ProtoGrpcType } from '../generated/actioncontroller.js';
import type { ActionControllerConnectionClient } from '../generated/actioncontroller/ActionControllerConnection.js';
import type { PodStatus } from '../generated/actioncontroller/PodStatus.js';
import type { OffloadModelRequest } from '../generated/actioncontroller/OffloadModelRequest.js';
import type { OffloadModelResponse__Output } from '../generated/actioncontroller/OffloadModelResponse.js';
import type { ActionControllerClient, ReconcileCall } from '../../reconcilers/ports.js';
import { ConnectDeadline, connectionAttempts, OWN_SUBCHANNEL_POOL } from '../grpc/connect-deadline.js';
import { loadProto } from '../grpc/proto.js';

const POD_STATUS_NAMES = ['NONE', 'INIT', 'READY', 'RUNNING', 'DONE', 'FAILED', 'UNKNOWN'] as const;

export interface GrpcActionControllerOptions {
  addr: string;
  timeoutMs: number;
  /**
   * The deadline of an OffloadModel call (default timeoutMs): Pullpiri's ActionController stops the
   * model on one node and starts it on the other before it answers, which takes longer than a
   * Reconcile's answer (a Pullpiri compatibility probe: a 7 s move was answered "did not answer in
   * time" at 5 s, and policymanager, with no cooldown set, may ask again).
   */
  offloadTimeoutMs?: number;
  tls?: { caFile: string; certFile: string; keyFile: string };
  /** A connection attempt outlasted `timeoutMs` and was started again. */
  onConnectTimeout?: () => void;
}

/** An ActionController call that failed: its gRPC status (DEADLINE_EXCEEDED when it was late). */
export class ActionControllerCallError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    addr: string,
  ) {
    super(`ActionController ${addr}: ${grpc.status[code] ?? code}: ${details}`);
    this.name = 'ActionControllerCallError';
  }
}

/** The ActionController's OffloadModel (TriggerOffloading forwards to it). */
export interface OffloadModelClient {
  /** Rejects with ActionControllerCallError; `deadline` is epoch ms. */
  offloadModel(request: OffloadModelRequest, deadline: number): Promise<OffloadModelResponse__Output>;
  /** Where it calls, for messages. */
  readonly addr: string;
}

export class GrpcActionControllerClient implements ActionControllerClient, OffloadModelClient {
  private client: ActionControllerConnectionClient;
  private readonly connectDeadline: ConnectDeadline;
  private readonly makeClient: () => ActionControllerConnectionClient;

  constructor(private readonly o: GrpcActionControllerOptions) {
    const proto = loadProto<ProtoGrpcType>('actioncontroller.proto');
    const tls = o.tls;
    const credentials =
      tls && (tls.caFile || tls.certFile)
        ? grpc.credentials.createSsl(
            tls.caFile ? readFileSync(tls.caFile) : null,
            tls.keyFile ? readFileSync(tls.keyFile) : null,
            tls.certFile ? readFileSync(tls.certFile) : null,
          )
        : grpc.credentials.createInsecure();
    // grpc-js's reconnect backoff grows to 120 s by default: after an ActionController outage of
    // minutes, requests would wait that long after it returned. Our own retry loop paces calls.
    this.makeClient = () =>
      new proto.actioncontroller.ActionControllerConnection(o.addr, credentials, {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
        // and its DNS resolver would not resolve again for 30 s after a failure.
        'grpc.dns_min_time_between_resolutions_ms': 100,
        ...OWN_SUBCHANNEL_POOL,
      });
    this.client = this.makeClient();
    this.connectDeadline = new ConnectDeadline(o.timeoutMs);
  }

  /**
   * The client to call on: a new one when the connection attempt has lasted longer than a call
   * may (grpc-js would wait for the kernel, or forever: connect-deadline.ts). Looked at on every
   * call, which the request controller's retries make at least every `reconcile.retryCap`.
   */
  private connection(): ActionControllerConnectionClient {
    if (this.connectDeadline.overdue(this.client)) {
      this.replace();
      this.o.onConnectTimeout?.();
    }
    return this.client;
  }

  /**
   * A call that ran out of the whole timeout on an open connection says the connection may be
   * dead (a black hole: the kernel keeps the calls written into it and delivers them all when the
   * path is back). Further calls go on a new connection, which queues them unsent while it
   * connects. Found by black-box probing: after a 90 s black hole the ActionController got 69
   * calls within 100 ms, 49 of them for packages no longer in Error, one from a deposed leader.
   */
  private retire(client: ActionControllerConnectionClient): void {
    if (this.client !== client) return;
    this.replace();
  }

  /**
   * Closes the client and ends its connection attempts (grpc-js leaves an attempt of a closed
   * channel running, and one accepted by a peer that never answers waits for good): found by
   * black-box probing, an ActionController that accepted connections and answered nothing kept
   * one more socket open every 5 s, about 720 an hour, until descriptors ran out.
   */
  private replace(): void {
    const old = this.client;
    this.client = this.makeClient();
    closeWithAttempts(old);
  }

  reconcile(call: ReconcileCall): Promise<{ status: number; desc: string }> {
    return new Promise((resolve, reject) => {
      const client = this.connection();
      client.Reconcile(
        {
          scenario_name: call.scenarioName,
          current: POD_STATUS_NAMES[call.current] as PodStatus,
          desired: POD_STATUS_NAMES[call.desired] as PodStatus,
        },
        { deadline: Date.now() + this.o.timeoutMs },
        (err, res) => {
          if (err?.code === grpc.status.DEADLINE_EXCEEDED) this.retire(client);
          if (err) reject(new ActionControllerCallError(err.code, err.details || err.message, this.o.addr));
          else resolve({ status: res?.status ?? 0, desc: res?.desc ?? '' });
        },
      );
    });
  }

  get addr(): string {
    return this.o.addr;
  }

  /**
   * The same connection, TLS and deadline policy as Reconcile: the configured offloading timeout,
   * or the given deadline when it comes sooner (the caller's own).
   */
  offloadModel(request: OffloadModelRequest, deadline: number): Promise<OffloadModelResponse__Output> {
    return new Promise((resolve, reject) => {
      const client = this.connection();
      const own = Date.now() + (this.o.offloadTimeoutMs ?? this.o.timeoutMs);
      client.OffloadModel(request, { deadline: Math.min(deadline, own) }, (err, res) => {
        // Only the whole timeout says something of the connection; a caller's short deadline does not.
        if (err?.code === grpc.status.DEADLINE_EXCEEDED && own <= deadline) this.retire(client);
        if (err) reject(new ActionControllerCallError(err.code, err.details || err.message, this.o.addr));
        else resolve(res ?? { success: false, message: '', transition_id: '' });
      });
    });
  }

  close(): void {
    closeWithAttempts(this.client);
  }
}

function closeWithAttempts(client: grpc.Client): void {
  const attempts = connectionAttempts(client);
  client.close();
  // After the close: the subchannel is then idle, so ending its attempt starts no other.
  setImmediate(() => attempts.end());
}
