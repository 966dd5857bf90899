// A deadline on a gRPC client's connection attempt, which grpc-js (1.14) does not have
// (grpc/grpc-node#2785; the gRPC connection-backoff spec gives each attempt at least 20 s, C-core
// and grpc-java enforce it). An attempt whose SYN went into a black hole waits for the kernel's
// retransmissions (1, 2, 4 … 64 s apart, up to 127 s), and one accepted by a peer that never
// answers (a broken middlebox, a stalled process) waits forever: the channel stays CONNECTING
// after the path is back. Measured with etcd blackholed for 30, 60 and 90 s: statemanager wrote
// again 4, 24 and 50–58 s after the path came back.
//
// `overdue` tells, each time it is asked, whether a client's channel has been CONNECTING for
// longer than the deadline since it was first seen so; the owner then closes that client and
// makes a new one. A new channel gets a new connection attempt only with its own subchannel pool
// (`grpc.use_local_subchannel_pool`): from the process-wide pool it would get the stuck one back.
import * as grpc from '@grpc/grpc-js';

/** Channel option every client watched by a ConnectDeadline needs (see above). */
export const OWN_SUBCHANNEL_POOL: grpc.ChannelOptions = { 'grpc.use_local_subchannel_pool': 1 };

export class ConnectDeadline {
  /** When each channel was first seen CONNECTING, in its current attempt as far as we can tell. */
  private readonly since = new WeakMap<object, number>();

  constructor(
    readonly deadlineMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether the client's channel has been CONNECTING for at least the deadline. Asked from time to
   * time, it cannot see every transition: two attempts in a row that it sees both CONNECTING count
   * as one, and closing a client that was about to connect costs one new attempt, nothing more.
   */
  overdue(client: grpc.Client): boolean {
    const channel = client.getChannel();
    if (channel.getConnectivityState(false) !== grpc.connectivityState.CONNECTING) {
      this.since.delete(channel);
      return false;
    }
    const now = this.now();
    const first = this.since.get(channel);
    if (first === undefined) {
      this.since.set(channel, now);
      return false;
    }
    return now - first >= this.deadlineMs;
  }
}

/** What grpc-js (1.14) keeps of a connection attempt: the HTTP/2 session waiting for the peer's SETTINGS. */
interface PooledSubchannel {
  subchannel?: { connector?: { session?: PendingSession | null } };
}
type PendingSession = { destroy(): void } & Record<symbol, unknown>;

/**
 * The session's own socket (Node keeps it under a symbol; `session.socket` is a proxy that may
 * not be destroyed): destroying the session before its SETTINGS came leaves that socket open.
 */
function socketOf(session: PendingSession): { destroy(): void } | undefined {
  const key = Object.getOwnPropertySymbols(session).find((s) => s.description === 'socket');
  const socket = key === undefined ? undefined : session[key];
  return typeof socket === 'object' && socket !== null && typeof (socket as { destroy?: unknown }).destroy === 'function' ? (socket as { destroy(): void }) : undefined;
}

/**
 * The connection attempts under way on a client's own subchannel pool, to end once the client is
 * closed. grpc-js leaves an attempt running when its channel closes: one accepted by a peer that
 * never answers (a frozen etcd) waits for the peer's HTTP/2 SETTINGS for good, its socket open,
 * so every replacement kept one more (black-box probing: 720 sockets after 8 minutes of a
 * SIGSTOPped etcd). Call the returned function after closing the client (its subchannel then
 * idle, ending the attempt starts no other). An attempt still in its TCP or TLS handshake is not
 * reachable here; the kernel ends one in the TCP handshake within about two minutes. Nothing is
 * found when grpc-js's internals are not as expected (another version).
 */
export function connectionAttempts(client: grpc.Client): { count: number; end(): void } {
  const channel = client.getChannel() as unknown as { internalChannel?: { subchannelPool?: { pool?: unknown } } };
  const pool = channel.internalChannel?.subchannelPool?.pool;
  const sessions: { session: PendingSession; socket: { destroy(): void } | undefined }[] = [];
  if (typeof pool === 'object' && pool !== null) {
    for (const entries of Object.values(pool as Record<string, unknown>)) {
      if (!Array.isArray(entries)) continue;
      for (const e of entries as PooledSubchannel[]) {
        const session = e.subchannel?.connector?.session;
        // The socket is taken now: closing the client may end the session and drop it from there.
        if (session && typeof session.destroy === 'function') sessions.push({ session, socket: socketOf(session) });
      }
    }
  }
  return {
    count: sessions.length,
    end() {
      for (const { session, socket } of sessions) {
        session.destroy();
        socket?.destroy();
      }
    },
  };
}

/**
 * Closes `client` and ends the connection attempts of its own subchannel pool (connectionAttempts),
 * after the close: its subchannel is then idle, so ending an attempt starts no other.
 */
export function closeWithAttempts(client: grpc.Client): void {
  const attempts = connectionAttempts(client);
  client.close();
  setImmediate(() => attempts.end());
}
