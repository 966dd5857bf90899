// Replaces etcd connections stuck connecting (src/grpc/connect-deadline.ts): etcd3's service
// clients and the watch client's. Looked at every second; while every connection is up or failing
// fast this only reads each channel's state.
import type * as grpc from '@grpc/grpc-js';
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../../controller/logger.js';
import type { Runnable } from '../../controller/manager.js';
import { ThrottledLog } from '../../controller/throttled-log.js';
import { closeWithAttempts, type ConnectDeadline } from '../grpc/connect-deadline.js';
import type { EtcdWatchClient } from './watch-client.js';

/** What etcd3 (1.1.2) keeps per member: its service clients, made on first use, and a way to close them. */
interface Etcd3Host {
  readonly host: string;
  cachedServices: Record<string, grpc.Client | undefined>;
  resetAllServices: () => void;
}

/** etcd3's members, or undefined when its internals are not as expected (another version). */
function etcd3Hosts(client: Etcd3): Etcd3Host[] | undefined {
  const hosts = (client as unknown as { pool?: { hosts?: unknown } }).pool?.hosts;
  if (!Array.isArray(hosts)) return undefined;
  const ok = hosts.every((h: Partial<Etcd3Host>) => typeof h.cachedServices === 'object' && typeof h.resetAllServices === 'function');
  return ok ? (hosts as Etcd3Host[]) : undefined;
}

const ENDS_ATTEMPTS = Symbol('ends connection attempts on reset');

/**
 * Makes every reset of the member's clients (ours, and etcd3's own after a failed call) close
 * them at once and end their connection attempts (connectionAttempts). etcd3 closes a client
 * still connecting only after waiting a second for it to connect (a workaround for a grpc-js bug
 * of 2020, grpc/grpc-node#1487), and an attempt ended meanwhile was started again by the channel
 * still open: to a member that accepts connections and never answers, one more socket stayed open
 * with every reset (720 after 8 minutes of a SIGSTOPped etcd, found by black-box probing).
 */
function endAttemptsOnReset(h: Etcd3Host & { [ENDS_ATTEMPTS]?: true }): void {
  if (h[ENDS_ATTEMPTS]) return;
  h.resetAllServices = () => {
    const clients = Object.values(h.cachedServices).filter((c): c is grpc.Client => c !== undefined);
    h.cachedServices = Object.create(null) as Record<string, grpc.Client | undefined>;
    for (const c of clients) closeWithAttempts(c);
  };
  h[ENDS_ATTEMPTS] = true;
}

export interface StuckConnectionsOptions {
  etcd: Etcd3;
  watchClient: EtcdWatchClient;
  deadline: ConnectDeadline;
  logger: Logger;
  /** Told of every connection replaced. */
  onReset?: () => void;
  periodMs?: number;
}

export class EtcdStuckConnections implements Runnable {
  readonly name = 'etcd-stuck-connections';
  readonly needLeaderElection = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: ThrottledLog;
  private warnedUnknown = false;

  constructor(private readonly o: StuckConnectionsOptions) {
    // One line a minute at most: during a long outage every member is replaced every few seconds.
    this.log = new ThrottledLog({ logger: o.logger, perInterval: 1, intervalMs: 60_000 });
  }

  start(): void {
    for (const h of etcd3Hosts(this.o.etcd) ?? []) endAttemptsOnReset(h);
    this.timer = setInterval(() => this.check(), this.o.periodMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
  }

  /** One look at every connection; returns the members whose clients were replaced. */
  check(): string[] {
    const { deadline } = this.o;
    const reset = this.o.watchClient.resetConnecting(deadline);
    const hosts = etcd3Hosts(this.o.etcd);
    if (!hosts) {
      if (!this.warnedUnknown) this.o.logger.warn('cannot look at etcd3 connections (unexpected etcd3 internals): a connection stuck connecting is not replaced');
      this.warnedUnknown = true;
    }
    for (const h of hosts ?? []) {
      // Every client is asked (each one's clock starts when it is first seen connecting).
      const overdue = Object.values(h.cachedServices).filter((c): c is grpc.Client => c !== undefined && deadline.overdue(c));
      if (overdue.length === 0) continue;
      h.resetAllServices();
      reset.push(h.host);
    }
    for (const member of reset) {
      this.o.onReset?.();
      this.log.warn('etcd-connect-deadline', 'etcd connection attempt took too long: starting a new one', { member, deadlineMs: deadline.deadlineMs });
    }
    return reset;
  }
}
