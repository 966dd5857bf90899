// What a peer can make the gRPC server hold before it makes a call: every accepted TCP
// connection (TLS and an HTTP/2 session on top) costs about 19 KB and a file descriptor, and
// nothing is authenticated until a call arrives — 3,000 idle connections from one address took
// 58 MB and were held forever. So connections are counted per peer address and in total, and one
// past either bound is closed as it is accepted, before TLS or HTTP/2 spend anything on it.
// This machine's own peers (loopback) count only towards the total: the components of one
// vehicle, or a test harness with a client per simulated node, all share 127.0.0.1. New
// connections from one address are also bounded per second: each costs a TLS handshake (a
// millisecond or more of CPU) before anything else is known of it.
import { RateLimiter } from './rate-limit.js';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  /** Open connections in all; 0 turns the bound off. */
  total: number;
  /** Open connections from one peer address that is not local; 0 turns the bound off. */
  perPeer: number;
  /** New connections per second from one peer address that is not local (burst: twice that); 0 turns the bound off. */
  perPeerPerSecond?: number;
  /** Whether an address is this machine's (default: none is). */
  isLocal?: (address: string) => boolean;
  /** The clock of the per-second bound (tests). */
  now?: () => number;
}

export type ConnectionRefusal = 'total' | 'peer' | 'rate';

export interface ConnectionEvents {
  /** The number of open connections, after each change. */
  open?(count: number): void;
  refused?(reason: ConnectionRefusal, peer: string, limit: number): void;
}

export class ConnectionGate {
  private open = 0;
  private readonly byPeer = new Map<string, number>();
  private readonly newPerPeer: RateLimiter;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly events: ConnectionEvents = {},
  ) {
    const perSecond = limits.perPeerPerSecond ?? 0;
    this.newPerPeer = new RateLimiter({ perSecond, burst: Math.max(1, Math.ceil(2 * perSecond)), ...(limits.now ? { now: limits.now } : {}) });
  }

  /** Whether to serve `socket`; an admitted one gives its slot back when it closes. */
  admit(socket: Socket): boolean {
    if (socket.remoteAddress === undefined) return false; // already gone
    const peer = peerAddress(socket.remoteAddress);
    const fromPeer = this.byPeer.get(peer) ?? 0;
    const { total, perPeer } = this.limits;
    if (total > 0 && this.open >= total) return this.refuse('total', peer, total);
    const local = this.limits.isLocal?.(peer) ?? false;
    if (perPeer > 0 && fromPeer >= perPeer && !local) return this.refuse('peer', peer, perPeer);
    if (!local && !this.newPerPeer.take(peer)) return this.refuse('rate', peer, this.limits.perPeerPerSecond ?? 0);
    this.open++;
    this.byPeer.set(peer, fromPeer + 1);
    this.events.open?.(this.open);
    socket.once('close', () => {
      this.open--;
      const left = (this.byPeer.get(peer) ?? 1) - 1;
      if (left === 0) this.byPeer.delete(peer);
      else this.byPeer.set(peer, left);
      this.events.open?.(this.open);
    });
    return true;
  }

  /** Open connections now, in all and from `peer`. */
  count(peer?: string): number {
    return peer === undefined ? this.open : (this.byPeer.get(peerAddress(peer)) ?? 0);
  }

  private refuse(reason: ConnectionRefusal, peer: string, limit: number): false {
    this.events.refused?.(reason, peer, limit);
    return false;
  }
}

/** One spelling per address: a dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d. */
export function peerAddress(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}
