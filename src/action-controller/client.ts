// The ActionController's Reconcile and OffloadModel over gRPC, each on a connection of its own,
// with a deadline on every call so a hung peer cannot hold a worker or a caller, and a bound on
// the OffloadModel calls in flight.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { ProtoGrpcType } from '../generated/actioncontroller.js';
import type { ActionControllerConnectionClient } from '../generated/actioncontroller/ActionControllerConnection.js';
import type { PodStatus } from '../generated/actioncontroller/PodStatus.js';
import type { OffloadModelRequest } from '../generated/actioncontroller/OffloadModelRequest.js';
import type { OffloadModelResponse__Output } from '../generated/actioncontroller/OffloadModelResponse.js';
import type { ActionControllerClient, ReconcileCall } from '../../reconcilers/ports.js';
import { closeWithAttempts, ConnectDeadline, OWN_SUBCHANNEL_POOL } from '../grpc/connect-deadline.js';
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
  /** OffloadModel calls in flight at most (default MAX_OFFLOADS_IN_FLIGHT); one more is not sent. */
  maxOffloadsInFlight?: number;
}

/**
 * OffloadModel calls in flight at once, by default. A move takes seconds (Pullpiri's stops the
 * model on one node and starts it on the other) and a policy manager asks for a few at a time;
 * without a bound, one caller at 200 requests/s with the ActionController hung left 3,006 calls
 * pending there (black-box probing), each to be acted on whenever the ActionController got to it.
 */
export const MAX_OFFLOADS_IN_FLIGHT = 32;

/** An OffloadModel call not sent: MAX_OFFLOADS_IN_FLIGHT are in flight already. */
export class OffloadsInFlightError extends Error {
  constructor(readonly inFlight: number) {
    super(`${inFlight} OffloadModel calls are in flight to the ActionController already`);
    this.name = 'OffloadsInFlightError';
  }
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
  /**
   * Reconcile and OffloadModel on connections of their own: an ActionController bounds the
   * streams of one connection (hyper and tonic: 200 by default), and a flood of moves held every
   * stream of the shared one, so repairs of failed packages waited 10 s (black-box probing).
   */
  private readonly reconciles: Connection;
  private readonly offloads: Connection;
  private offloadsInFlight = 0;
  private readonly maxOffloadsInFlight: number;

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
    const makeClient = (): ActionControllerConnectionClient =>
      new proto.actioncontroller.ActionControllerConnection(o.addr, credentials, {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
        // and its DNS resolver would not resolve again for 30 s after a failure.
        'grpc.dns_min_time_between_resolutions_ms': 100,
        ...OWN_SUBCHANNEL_POOL,
      });
    this.reconciles = new Connection(makeClient, o.timeoutMs, o.onConnectTimeout);
    this.offloads = new Connection(makeClient, o.timeoutMs, o.onConnectTimeout);
    this.maxOffloadsInFlight = Math.max(1, o.maxOffloadsInFlight ?? MAX_OFFLOADS_IN_FLIGHT);
  }

  reconcile(call: ReconcileCall): Promise<{ status: number; desc: string }> {
    return new Promise((resolve, reject) => {
      const client = this.reconciles.client();
      client.Reconcile(
        {
          scenario_name: call.scenarioName,
          current: POD_STATUS_NAMES[call.current] as PodStatus,
          desired: POD_STATUS_NAMES[call.desired] as PodStatus,
        },
        { deadline: Date.now() + this.o.timeoutMs },
        (err, res) => {
          if (err?.code === grpc.status.DEADLINE_EXCEEDED) this.reconciles.retire(client);
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
   * The same TLS and deadline policy as Reconcile, on its own connection: the configured
   * offloading timeout, or the given deadline when it comes sooner (the caller's own). Not sent
   * (OffloadsInFlightError) while maxOffloadsInFlight calls are in flight.
   */
  offloadModel(request: OffloadModelRequest, deadline: number): Promise<OffloadModelResponse__Output> {
    if (this.offloadsInFlight >= this.maxOffloadsInFlight) return Promise.reject(new OffloadsInFlightError(this.offloadsInFlight));
    this.offloadsInFlight++;
    return new Promise<OffloadModelResponse__Output>((resolve, reject) => {
      const client = this.offloads.client();
      const own = Date.now() + (this.o.offloadTimeoutMs ?? this.o.timeoutMs);
      client.OffloadModel(request, { deadline: Math.min(deadline, own) }, (err, res) => {
        // Only the whole timeout says something of the connection; a caller's short deadline does not.
        if (err?.code === grpc.status.DEADLINE_EXCEEDED && own <= deadline) this.offloads.retire(client);
        if (err) reject(new ActionControllerCallError(err.code, err.details || err.message, this.o.addr));
        else resolve(res ?? { success: false, message: '', transition_id: '' });
      });
    }).finally(() => this.offloadsInFlight--);
  }

  close(): void {
    this.reconciles.close();
    this.offloads.close();
  }
}

/** One connection to the ActionController, replaced when its attempt or a call says it is stuck. */
class Connection {
  private current: ActionControllerConnectionClient;
  private readonly connectDeadline: ConnectDeadline;

  constructor(
    private readonly make: () => ActionControllerConnectionClient,
    timeoutMs: number,
    private readonly onConnectTimeout: (() => void) | undefined,
  ) {
    this.current = make();
    this.connectDeadline = new ConnectDeadline(timeoutMs);
  }

  /**
   * The client to call on: a new one when the connection attempt has lasted longer than a call
   * may (grpc-js would wait for the kernel, or forever: connect-deadline.ts). Looked at on every
   * call, which the request controller's retries make at least every `reconcile.retryCap`.
   */
  client(): ActionControllerConnectionClient {
    if (this.connectDeadline.overdue(this.current)) {
      this.replace();
      this.onConnectTimeout?.();
    }
    return this.current;
  }

  /**
   * A call that ran out of the whole timeout on an open connection says the connection may be
   * dead (a black hole: the kernel keeps the calls written into it and delivers them all when the
   * path is back). Further calls go on a new connection, which queues them unsent while it
   * connects. Found by black-box probing: after a 90 s black hole the ActionController got 69
   * calls within 100 ms, 49 of them for packages no longer in Error, one from a deposed leader.
   */
  retire(client: ActionControllerConnectionClient): void {
    if (this.current === client) this.replace();
  }

  close(): void {
    closeWithAttempts(this.current);
  }

  /**
   * Closes the client and ends its connection attempts (grpc-js leaves an attempt of a closed
   * channel running, and one accepted by a peer that never answers waits for good): found by
   * black-box probing, an ActionController that accepted connections and answered nothing kept
   * one more socket open every 5 s, about 720 an hour, until descriptors ran out.
   */
  private replace(): void {
    const old = this.current;
    this.current = this.make();
    closeWithAttempts(old);
  }
}
