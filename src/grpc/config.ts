// The `grpc` section of statemanager's configuration (embedded by the application's config
// module). Documented in docs/grpc.md.
import { z } from 'zod';
import { hostPortSchema as addr, isLoopback, splitHostPort } from '../config/address.js';
import { authConfigSchema } from '../auth/config.js';
import { durationSchema } from '../config/duration.js';
import type { AnonymousAccess } from '../auth/identity.js';

/**
 * The contract's `limit` 0 means no limit, so the defaults bound a list only where a client could
 * not take the answer anyway: 4 MiB is gRPC's default receive limit (grpc-js, grpc-go, tonic), and
 * the resources stop 64 KiB short of it to leave room for the rest of the answer (about 30,000
 * resources with 20-character names); 100,000 bounds what one answer makes statemanager hold.
 */
export const LIST_MAX_RESULTS_DEFAULT = 100_000;
export const LIST_MAX_BYTES_DEFAULT = 4 * 1024 * 1024 - 64 * 1024;
/** Eight full answers: 32 MiB outside the heap at most, whatever the number of callers. */
export const LIST_BYTES_IN_FLIGHT_DEFAULT = 32 * 1024 * 1024;

export const DEFAULT_GRPC_ADDR = '0.0.0.0:47006';

export const tlsConfigSchema = z
  .object({
    /** PEM server certificate (chain). */
    certFile: z.string().min(1),
    /** PEM private key of the server certificate. */
    keyFile: z.string().min(1),
    /** PEM CA bundle client certificates must chain to (mutual TLS). */
    caFile: z.string().min(1).optional(),
    /** Follows from caFile (a client CA means client certificates are required); may only restate it. */
    requireClientCert: z.boolean().optional(),
  })
  .strict()
  .refine((t) => !(t.requireClientCert === true && t.caFile === undefined), {
    message: 'requireClientCert needs caFile',
    path: ['caFile'],
  })
  .refine((t) => !(t.requireClientCert === false && t.caFile !== undefined), {
    message: 'a client CA (caFile) means client certificates are required: remove caFile to serve TLS without them',
    path: ['requireClientCert'],
  });
export type GrpcTlsConfig = z.output<typeof tlsConfigSchema>;

/** Bounds that hold before anything reaches etcd. Documented in docs/grpc.md. */
export const limitsSchema = z
  .object({
    /**
     * A container list's stored JSON in total (default 1 MiB, under etcd's default
     * --max-request-bytes of 1.5 MiB): larger answers INVALID_ARGUMENT, nothing is written.
     */
    listBytes: z.number().int().positive().default(1024 * 1024),
    /** Entries of one container's `names`. */
    namesPerContainer: z.number().int().positive().default(64),
    /** Entries of each of one container's `state`, `config` and `annotation` maps. */
    mapEntries: z.number().int().positive().default(256),
    /** Bytes of one string: a name, the image, a map key or value. */
    valueBytes: z.number().int().positive().default(16 * 1024),
    /**
     * HTTP/2 streams one connection may have open at once (grpc.max_concurrent_streams). A real
     * client uses a handful: one call at a time per agent, plus a few long-lived subscriptions.
     * More than subscriptionsPerIdentity + callsInFlightPerIdentity (100 + 16), so that the call
     * past an identity's budget reaches the server and is refused: at 100, the 101st subscription
     * of one connection waited in the client for a stream, silently, and every later call on that
     * connection with it (found by black-box probing). See streamsShortOfBudgets.
     */
    maxConcurrentStreams: z.number().int().positive().default(128),
    /**
     * Open connections from one peer address beyond this machine; one more is closed as it is
     * accepted, before TLS (each costs about 19 KB and a file descriptor before any call
     * authenticates it: 1,024 bound one address to about 19 MB). A gRPC client holds one
     * connection per server; the room is for hosts behind one address (NAT, a proxy). Loopback
     * peers count only towards maxConnections. 0 turns the bound off.
     */
    connectionsPerPeer: z.number().int().min(0).default(1024),
    /**
     * New connections per second from one peer address beyond this machine (a burst of twice
     * that): each costs a TLS handshake before anything is known of its caller, so one address
     * reconnecting in a loop could take the CPU. A node agent connects once and keeps its
     * connection. 0 turns the bound off.
     */
    connectionsPerSecondPerPeer: z.number().min(0).default(100),
    /**
     * Open connections in all (about 300 MB at 19 KB each): a fleet of many nodes, one connection
     * each, and its other components. 0 turns the bound off.
     */
    maxConnections: z.number().int().min(0).default(16_384),
    /**
     * The server pings every connection this often (HTTP/2 PING, grpc.keepalive_time_ms) and
     * closes one whose peer does not answer within keepaliveTimeoutMs: a subscriber whose host
     * vanished (no FIN, no RST) gives back its subscription slot, its identity's quota and its
     * stream instead of holding them until the next change reaches it. 0 turns it off (grpc-js
     * then pings after about 24.8 days).
     */
    keepaliveTimeMs: z.number().int().min(0).default(30_000),
    /** How long a keepalive ping may go unanswered before the connection is closed. */
    keepaliveTimeoutMs: z.number().int().positive().default(10_000),
    /** Calls per second per identity (anonymous callers: per peer address, on loopback per connection); 0 turns the limit off. */
    callsPerSecond: z.number().min(0).default(2000),
    /** Calls an identity may make at once above the rate before it is refused. */
    burst: z.number().int().positive().default(4000),
    /**
     * Unary calls one identity (anonymous: one peer address, on loopback one connection) may have unanswered at once, over all
     * its connections; a slot is held until the handler answers. 0 turns the limit off.
     */
    callsInFlightPerIdentity: z.number().int().min(0).default(16),
    /**
     * SendChangedContainerList calls written at once, server-wide; more wait their turn, in order,
     * until their deadline (30 s without one), then RESOURCE_EXHAUSTED. When every node sends its
     * list at the same moment, starting them all together made each miss etcd's deadline.
     * 0: every list starts at once.
     */
    containerListsAtOnce: z.number().int().min(0).default(64),
    /**
     * Bytes (the containers' JSON) of SendChangedContainerList calls waiting for their turn,
     * server-wide: one more that would wait past it is refused at once (RESOURCE_EXHAUSTED,
     * nothing written, "send the list again") instead of held. Loopback callers are budgeted per
     * connection, so one local process with many connections could otherwise make statemanager
     * hold every list it sends (60 connections × 16 lists of 600 KB: 1.08 GB). 0 turns it off.
     */
    containerListBytesWaiting: z.number().int().min(0).default(64 * 1024 * 1024),
    /**
     * SendChangedContainerList calls waiting for a turn, server-wide; one more is refused at once
     * (RESOURCE_EXHAUSTED). Thousands of agents sending faster than the turns write made the line
     * grow to 18,000 lists whose callers had given up (black-box probing). 0 turns it off.
     */
    containerListsWaiting: z.number().int().min(0).default(2000),
    /**
     * Bytes one identity may write into etcd per second (keys and stored values of changed
     * containers, deletions, state changes with their history entries); 0 turns it off. A node
     * agent sends its list at most once a second and only when it changed, and only changed
     * containers are written: a few KiB per second in practice. 64 KiB/s bounds what one identity
     * can add to etcd's history to ~19 MiB per 5-minute compaction window.
     */
    writeBytesPerSecond: z.number().min(0).default(64 * 1024),
    /**
     * Bytes one identity may write at once above the rate: two whole lists of the largest size
     * (limits.listBytes), so a node that restarts every container gets through at once.
     */
    writeBurstBytes: z.number().int().positive().default(2 * 1024 * 1024),
    /**
     * Failed authentications per peer address per minute; beyond, the peer's calls are refused
     * (RESOURCE_EXHAUSTED) before authentication until the count drains. 0 turns it off.
     */
    authFailuresPerMinute: z.number().min(0).default(20),
    /**
     * Changes that may arrive while a SubscribeToStateChanges stream does not read; beyond, it is
     * cut off (RESOURCE_EXHAUSTED, naming the revision to resume from). A backlog the client reads is never cut.
     */
    subscriberBufferEvents: z.number().int().positive().default(1000),
    /** Subscriptions one identity (anonymous callers: one peer address, on loopback one connection) may hold open; more are RESOURCE_EXHAUSTED. */
    subscriptionsPerIdentity: z.number().int().positive().default(100),
    /** Subscriptions one replica holds open in total; more are RESOURCE_EXHAUSTED. */
    subscriptionsTotal: z.number().int().positive().default(2000),
    /** etcd watches one replica opens at once to replay changes older than its resume buffer; more resumes wait their turn. */
    replayWatches: z.number().int().positive().max(64).default(4),
    /** Resources in one ListResourcesByState answer (limit 0 or above it gets this many; total_count counts all). */
    listMaxResults: z.number().int().positive().default(LIST_MAX_RESULTS_DEFAULT),
    /** Encoded bytes of the resources in one ListResourcesByState answer; the default is a gRPC client's default receive limit. */
    listMaxBytes: z.number().int().positive().default(LIST_MAX_BYTES_DEFAULT),
    /**
     * Bytes of ListResourcesByState answers being sent at once by one replica (grpc-js holds a
     * copy of each until it is sent); more wait their turn, in order, within their deadline.
     */
    listBytesInFlight: z.number().int().positive().default(LIST_BYTES_IN_FLIGHT_DEFAULT),
    /**
     * TriggerOffloading records kept per model under /statemanager/offloading/{model}/ (the
     * oldest go first); records are kept only for models some package lists, so what a caller
     * can make statemanager store is bounded by this × the listed models × one record's size.
     */
    offloadingRecordsPerModel: z.number().int().positive().max(1000).default(20),
    /**
     * Scenario states held without a definition (`Scenario/{name}` absent): a SendStateChange that
     * would create one more (absent → Idle) is refused with ERROR_CODE_RESOURCE_UNAVAILABLE once
     * this many exist. Scenarios with a definition are never refused by it. 0 turns it off.
     */
    undefinedScenarioStates: z.number().int().min(0).default(10_000),
    /** Bytes of an OffloadingRequest's `reason` (stored with the record and logged); longer is refused. */
    offloadingReasonBytes: z.number().int().positive().max(16 * 1024).default(1024),
  })
  .strict();
export type GrpcLimits = z.output<typeof limitsSchema>;

export const grpcServerConfigSchema = z
  .object({
    addr: addr.default(DEFAULT_GRPC_ADDR),
    /** SendChangedContainerList refuses longer lists (INVALID_ARGUMENT). */
    maxContainersPerList: z.number().int().positive().default(10_000),
    /** Largest request message accepted (grpc-js answers RESOURCE_EXHAUSTED above it, before decoding). */
    maxMessageBytes: z.number().int().positive().default(2 * 1024 * 1024),
    limits: limitsSchema.prefault({}),
    /**
     * etcd's --max-txn-ops (default 128). SendChangedContainerList guards each unchanged
     * container with its own compare only while they fit; the controller's grouped state writes
     * stay under it too (and get smaller by themselves when etcd refuses one as too large).
     */
    etcdMaxTxnOps: z.number().int().min(2).default(128),
    /** Attempts of an etcd compare-and-swap that keeps losing to concurrent writers. */
    conflictRetries: z.number().int().min(1).max(100).default(5),
    /** Plaintext when omitted. */
    tls: tlsConfigSchema.optional(),
    auth: authConfigSchema.default({ tokens: [] }),
    /**
     * How often the TLS certificate, key, client CA and token files are read again to pick up a
     * rotation (docs/grpc.md#rotating-credentials). At least 1 s: each poll reads every file.
     */
    credentialsReloadInterval: durationSchema.pipe(z.number().min(1000, 'at least 1s')).default(10_000),
  })
  .strict()
  .superRefine((c, ctx) => {
    const identities = c.auth.tokens.length > 0 || requiresClientCert(c);
    if (c.auth.rules !== undefined && !identities) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'rules'],
        message: 'authorization rules need caller identities: configure auth.tokens or tls.caFile (mutual TLS)',
      });
    }
    // Deny by default: an identity source without rules would let every identity do everything.
    if (identities && c.auth.rules === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'rules'],
        message:
          'callers have identities (auth.tokens or tls.caFile) but no authorization rules: add grpc.auth.rules: a list of {identities, allow} saying what each identity may do (an empty list denies everything; see docs/grpc.md#authorization)',
      });
    }
    // Bearer tokens in clear text can be read off the network and replayed.
    if (c.auth.tokens.length > 0 && c.tls === undefined && !isLoopback(splitHostPort(c.addr).host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'tokens'],
        message: `bearer tokens need TLS when the server listens beyond loopback (addr ${c.addr}): configure grpc.tls (certFile, keyFile), or listen on 127.0.0.1`,
      });
    }
    if (c.limits.writeBytesPerSecond > 0 && c.limits.writeBurstBytes < c.limits.listBytes) {
      ctx.addIssue({
        code: 'custom',
        path: ['limits', 'writeBurstBytes'],
        message: `writeBurstBytes (${c.limits.writeBurstBytes}) must be at least listBytes (${c.limits.listBytes}), or a whole list could never be written at once`,
      });
    }
  });

export type GrpcServerConfig = z.output<typeof grpcServerConfigSchema>;
export type GrpcServerConfigInput = z.input<typeof grpcServerConfigSchema>;

/** Whether clients must present a certificate signed by tls.caFile. */
export function requiresClientCert(c: Pick<GrpcServerConfig, 'tls'>): boolean {
  return c.tls !== undefined && (c.tls.requireClientCert ?? c.tls.caFile !== undefined);
}

/**
 * Who is served without certificate or token: `allowAnonymous: true` anyone, `false` nobody;
 * omitted, loopback peers only, and only while no identity source is configured.
 */
export function anonymousAccess(c: Pick<GrpcServerConfig, 'tls' | 'auth'>): AnonymousAccess {
  if (c.auth.allowAnonymous !== undefined) return c.auth.allowAnonymous ? 'anywhere' : 'never';
  return c.auth.tokens.length === 0 && !requiresClientCert(c) ? 'loopback' : 'never';
}

export function parseGrpcServerConfig(input: unknown): GrpcServerConfig {
  return grpcServerConfigSchema.parse(input ?? {});
}

/**
 * Why a connection holding its identity's whole budget (every subscription, every unary call in
 * flight) could not be told that one more call is over it, or undefined: the call past the budget
 * needs a stream, and with none free the client queues it, and every later call on the
 * connection, without a word. Told once at start.
 */
export function streamsShortOfBudgets(limits: Pick<GrpcServerConfig['limits'], 'maxConcurrentStreams' | 'subscriptionsPerIdentity' | 'callsInFlightPerIdentity'>): string | undefined {
  // callsInFlightPerIdentity 0: unary calls are unbounded, and waiting for a stream is then
  // HTTP/2's ordinary back-pressure; the subscriptions' bound must still be heard.
  const held = limits.subscriptionsPerIdentity + limits.callsInFlightPerIdentity;
  if (limits.maxConcurrentStreams > held) return undefined;
  return `grpc.limits.maxConcurrentStreams (${limits.maxConcurrentStreams}) is not above subscriptionsPerIdentity (${limits.subscriptionsPerIdentity}) + callsInFlightPerIdentity (${limits.callsInFlightPerIdentity}): a client that opens more on one connection waits for a stream, with every later call on it, instead of hearing RESOURCE_EXHAUSTED`;
}
