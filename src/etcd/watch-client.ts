// Watches over etcd's own Watch RPC, one gRPC stream per watch, instead of etcd3's WatchManager.
// etcd3 multiplexes every watcher of a client on one stream, matches `created` responses to
// pending watchers by order, and throws from the stream's `data` handler when a response names
// a watch id it no longer tracks: after a compaction cancels several watches and they are all
// recreated at once, that throw is an uncaught exception that ends the process (docs/reliability.md).
// With one stream per watch every response belongs to exactly one watch, nothing here throws
// from a stream handler, and a compaction arrives as etcd's real compact_revision.
// Responses are decoded by hand (watch-response-decoder.ts), not by protobufjs: revisions arrive
// as numbers, keys and values as views of the message. The informers' paged lists go through this
// client's `range` for the same reason (their pages were a tenth of a large cold start's listing),
// and the state store's transactions through `txn`, encoded by hand as well (txn-request-encoder.ts).
// Everything else (leases, single reads, the other components' writes) goes through etcd3.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { backoffDelay } from '../../controller/backoff.js';
import { asError } from '../../controller/errors.js';
import { closeWithAttempts, type ConnectDeadline } from '../grpc/connect-deadline.js';
import { AuthBackoff } from './auth-backoff.js';
import { encodeTxnRequest, type TxnRequest } from './txn-request-encoder.js';
import {
  decodeListPage,
  decodeRangeResponse,
  decodeTxnResponse,
  decodeWatchResponse,
  type DecodedListPage,
  type DecodedRangeResponse,
  type DecodedTxnResponse,
  type DecodedWatchResponse,
} from './watch-response-decoder.js';

/**
 * One of etcd's int64s: a number from this client's watches (exact within ±2^53, which every
 * revision and version is), a decimal string from etcd3's unary calls and the test fakes.
 * Read it with Number().
 */
export type EtcdInt64 = number | string;

export interface EtcdKeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: EtcdInt64;
  mod_revision: EtcdInt64;
  version: EtcdInt64;
  /** Always the exact decimal: lease IDs use all 63 bits. */
  lease: string;
}

export interface EtcdWatchEvent {
  // etcd3's copy of kv.proto spells the enum Put, Delete.
  type: 'Put' | 'Delete';
  kv: EtcdKeyValue;
  /** The key before the change, when the watch asked for it (`prevKv`) and there was one. */
  prev_kv?: EtcdKeyValue | null;
}

export interface WatchTarget {
  key: Buffer;
  /** Omitted: the single key. */
  rangeEnd?: Buffer;
  /** First revision to deliver; 0 or omitted: changes from now on. */
  startRevision?: number;
  /** Deliver each event's previous key-value (etcd's prev_kv). */
  prevKv?: boolean;
  /**
   * End with onCanceled when etcd is behind the revision the watch (re)starts from, instead of
   * waiting until it gets there: for a cache of etcd, whose owner then compares with the cluster
   * (etcd restored from an older backup, or on a new volume, comes back behind).
   */
  cancelIfBehind?: boolean;
}

export interface EtcdWatchHandlers {
  /** etcd confirmed the watch (again, after a reconnect); every change after `revision` will be delivered. */
  onCreated?(revision: number): void;
  /** One response's events, in revision order, and the response's header revision. */
  onEvents(events: EtcdWatchEvent[], headerRevision: number): void;
  /** A progress notification: every change up to `revision` has been delivered. */
  onProgress?(revision: number): void;
  /** The revision to resume from was compacted away: the watch has ended. */
  onCompacted(compactRevision: number): void;
  /** etcd canceled the watch for another reason: the watch has ended. */
  onCanceled(reason: string): void;
  /**
   * A response was larger than this client may receive (`grpc.max_receive_message_length`): a
   * catch-up of up to 1,000 revisions after a partition, whole. Resuming would ask for the same
   * response again, so the watch has ended; the owner lists again (paged) and watches from there.
   * Without this handler, onCanceled is called.
   */
  onTooLarge?(reason: string): void;
  /**
   * With cancelIfBehind: etcd is behind the revision the watch (re)starts from (its history was
   * replaced, or this member lags); the watch has ended. Without this handler, onCanceled is called.
   */
  onBehind?(reason: string): void;
  /** The stream broke; the watch resumes by itself from the next revision it has not seen. */
  onDisconnected?(err: Error): void;
}

export interface EtcdWatch {
  close(): void;
  /**
   * Stops reading the stream: once the client's buffers are full, HTTP/2 flow control holds etcd's
   * sends (etcd keeps the watch, and what it has read for it, until we read again). A few
   * responses already received may still be delivered.
   */
  pause(): void;
  resume(): void;
}

export interface EtcdWatchClientOptions {
  /** host:port of each member; a scheme prefix is ignored. */
  endpoints: readonly string[];
  credentials: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  auth?: { username: string; password: string };
  /** Deadline of an Authenticate call. */
  requestTimeoutMs?: number;
  /** Reconnect delay after a broken stream: base doubling to cap (with jitter). */
  retryBaseMs?: number;
  retryCapMs?: number;
}

type WatchCall = grpc.ClientDuplexStream<unknown, DecodedWatchResponse>;

/** A Range request as etcd's KV service takes it (protobufjs encodes requests). */
export interface RangeRequest {
  key: Buffer;
  range_end?: Buffer;
  limit?: number;
  revision?: number;
}

interface ServiceClient extends grpc.Client {
  Watch(metadata: grpc.Metadata): WatchCall;
  Range(req: RangeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: DecodedRangeResponse) => void): grpc.ClientUnaryCall;
  /** etcd's Range, its answer decoded as a list's page (decodeListPage). */
  ListPage(req: RangeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: DecodedListPage) => void): grpc.ClientUnaryCall;
  Txn(req: TxnRequest, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: DecodedTxnResponse) => void): grpc.ClientUnaryCall;
  Authenticate(
    req: { name: string; password: string },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: { token: string }) => void,
  ): grpc.ClientUnaryCall;
}

interface Member {
  address: string;
  watch: ServiceClient | undefined;
  kv: ServiceClient | undefined;
  auth: ServiceClient | undefined;
}

type ServiceConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => ServiceClient;

type Services = { Watch: ServiceConstructor; KV: ServiceConstructor; Auth: ServiceConstructor };

let services: Services | undefined;

/**
 * etcd's rpc.proto as etcd3 ships it, loaded once. Watch requests (a create and progress
 * requests, a few per stream) are still encoded by protobufjs; the responses are decoded by hand.
 */
function etcdServices(): Services {
  if (!services) {
    const protoDir = join(dirname(createRequire(import.meta.url).resolve('etcd3/package.json')), 'proto');
    const loaded = protoLoader.loadSync(join(protoDir, 'rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const watchService = loaded['etcdserverpb.Watch'] as protoLoader.ServiceDefinition;
    const kvService = loaded['etcdserverpb.KV'] as protoLoader.ServiceDefinition;
    const def: protoLoader.PackageDefinition = {
      ...loaded,
      'etcdserverpb.Watch': { ...watchService, Watch: { ...watchService['Watch']!, responseDeserialize: decodeWatchResponse } },
      'etcdserverpb.KV': {
        ...kvService,
        Range: { ...kvService['Range']!, responseDeserialize: decodeRangeResponse },
        // The same call (its path is etcd's Range), its answer decoded for the informers.
        ListPage: { ...kvService['Range']!, responseDeserialize: decodeListPage },
        Txn: { ...kvService['Txn']!, requestSerialize: encodeTxnRequest as (req: unknown) => Buffer, responseDeserialize: decodeTxnResponse },
      },
    };
    const pkg = (grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Services }).etcdserverpb;
    services = { Watch: pkg.Watch, KV: pkg.KV, Auth: pkg.Auth };
  }
  return services;
}

export class EtcdWatchClient {
  private readonly members: Member[];
  /** The member new streams go to; moves on when a stream on it breaks. */
  private current = 0;
  private token: Promise<string> | undefined;
  private closed = false;
  private readonly watches = new Set<StreamWatch>();
  /** Refused credentials are not tried again by every caller at once (auth-backoff.ts). */
  private readonly authBackoff = new AuthBackoff();

  constructor(private readonly o: EtcdWatchClientOptions) {
    if (o.endpoints.length === 0) throw new Error('EtcdWatchClient needs at least one endpoint');
    this.members = o.endpoints.map((e) => ({ address: e.replace(/^[a-z]+:\/\//i, ''), watch: undefined, kv: undefined, auth: undefined }));
  }

  watch(target: WatchTarget, handlers: EtcdWatchHandlers): EtcdWatch {
    if (this.closed) throw new Error('etcd watch client is closed');
    const w = new StreamWatch(this, target, handlers, this.o.retryBaseMs ?? 50, this.o.retryCapMs ?? 1000, () => this.watches.delete(w));
    this.watches.add(w);
    w.open();
    return w;
  }

  /**
   * One Range call (a page of a list), decoded by hand. On the member the watches use; a
   * failure that says the member is gone or the token is stale moves later calls and streams on
   * (the caller retries: the informer lists again).
   */
  range(req: RangeRequest, deadline: number): Promise<DecodedRangeResponse> {
    return this.rangeAs('Range', req, deadline);
  }

  /** One Range call as range() makes it, its answer decoded as a list's page (the informers' lists). */
  listPage(req: RangeRequest, deadline: number): Promise<DecodedListPage> {
    return this.rangeAs('ListPage', req, deadline);
  }

  private async rangeAs<M extends 'Range' | 'ListPage'>(method: M, req: RangeRequest, deadline: number): Promise<M extends 'Range' ? DecodedRangeResponse : DecodedListPage> {
    const { index, client, metadata } = await this.connection('kv');
    type Res = M extends 'Range' ? DecodedRangeResponse : DecodedListPage;
    return new Promise<Res>((resolve, reject) => {
      const call = client[method] as (req: RangeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;
      call.call(client, req, metadata, { deadline }, (err, res) => {
        if (!err) return resolve(res!);
        if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED || isAuthError(err)) this.memberFailed(index, err);
        reject(err);
      });
    });
  }

  /**
   * One Txn call, encoded and decoded by hand. As etcd3 does with its unary calls, a member that
   * is unreachable (or whose token went stale) is left for the next one and the call is made
   * again there, once per member and once more; a transaction sent twice is harmless, since every
   * one the store sends is guarded by the revisions it read. A deadline is not tried again: it
   * is the caller's.
   */
  async txn(req: TxnRequest, deadline: number): Promise<DecodedTxnResponse> {
    for (let attempt = 1; ; attempt++) {
      const { index, client, metadata } = await this.connection('kv');
      try {
        return await new Promise<DecodedTxnResponse>((resolve, reject) => {
          client.Txn(req, metadata, { deadline }, (err, res) => (err ? reject(err) : resolve(res!)));
        });
      } catch (err) {
        const e = err as grpc.ServiceError;
        const retry = e.code === grpc.status.UNAVAILABLE || isAuthError(e);
        if (retry || e.code === grpc.status.DEADLINE_EXCEEDED) this.memberFailed(index, e);
        if (!retry || attempt > this.members.length || Date.now() >= deadline) throw err;
      }
    }
  }

  get activeWatches(): number {
    return this.watches.size;
  }

  /**
   * Close the clients of every member with a channel connecting for longer than `deadline`
   * allows, so the next call or stream makes a new connection attempt (connect-deadline.ts); a
   * stream still waiting on the closed channel fails and reopens on the new one. Returns the
   * addresses whose clients were closed.
   */
  resetConnecting(deadline: ConnectDeadline): string[] {
    const reset: string[] = [];
    for (const [index, m] of this.members.entries()) {
      const clients = [m.watch, m.kv, m.auth].filter((c): c is ServiceClient => c !== undefined);
      // Every client is asked (each one's clock starts when it is first seen connecting).
      const overdue = clients.filter((c) => deadline.overdue(c));
      if (overdue.length === 0) continue;
      for (const c of clients) closeWithAttempts(c);
      m.watch = m.kv = m.auth = undefined;
      this.memberFailed(index, new Error(`no connection to ${m.address} within ${deadline.deadlineMs} ms`));
      reset.push(m.address);
    }
    return reset;
  }

  close(): void {
    this.closed = true;
    for (const w of [...this.watches]) w.close();
    for (const m of this.members) {
      m.watch?.close();
      m.kv?.close();
      m.auth?.close();
      m.watch = m.kv = m.auth = undefined;
    }
  }

  /** @internal The member to open the next stream (or call) on, and the call metadata for it. */
  async connection(service: 'watch' | 'kv' = 'watch'): Promise<{ index: number; client: ServiceClient; metadata: grpc.Metadata }> {
    if (this.closed) throw new Error('etcd watch client is closed');
    const index = this.current;
    const member = this.members[index]!;
    const metadata = new grpc.Metadata();
    // Without a leader a member's watch would silently stop: make etcd fail the stream instead.
    metadata.set('hasleader', 'true');
    if (this.o.auth) metadata.set('token', await this.authToken(member));
    if (service === 'kv') {
      member.kv ??= new (etcdServices().KV)(member.address, this.o.credentials, this.o.channelOptions);
      return { index, client: member.kv, metadata };
    }
    member.watch ??= new (etcdServices().Watch)(member.address, this.o.credentials, this.o.channelOptions);
    return { index, client: member.watch, metadata };
  }

  /** @internal A stream on member `index` broke: later streams go to the next member. */
  memberFailed(index: number, err: Error): void {
    if (isAuthError(err)) this.token = undefined;
    if (this.members.length > 1 && this.current === index) this.current = (index + 1) % this.members.length;
  }

  private authToken(member: Member): Promise<string> {
    if (!this.token) {
      const auth = this.o.auth!;
      member.auth ??= new (etcdServices().Auth)(member.address, this.o.credentials, this.o.channelOptions);
      const client = member.auth;
      const token = this.authBackoff.run(
        () =>
          new Promise<string>((resolve, reject) => {
            client.Authenticate(
              { name: auth.username, password: auth.password },
              new grpc.Metadata(),
              { deadline: Date.now() + (this.o.requestTimeoutMs ?? 5000) },
              (err, res) => (err ? reject(err) : resolve(res!.token)),
            );
          }),
      );
      this.token = token;
      token.catch(() => {
        if (this.token === token) this.token = undefined;
      });
    }
    return this.token;
  }
}

class StreamWatch implements EtcdWatch {
  private call: WatchCall | undefined;
  private closed = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The first revision not yet delivered (0: from now). */
  private nextRevision: number;
  /** Kept across reconnects: a new stream of a paused watch starts paused. */
  private paused = false;

  constructor(
    private readonly client: EtcdWatchClient,
    private readonly target: WatchTarget,
    private readonly h: EtcdWatchHandlers,
    private readonly retryBaseMs: number,
    private readonly retryCapMs: number,
    private readonly onClosed: () => void,
  ) {
    this.nextRevision = target.startRevision ?? 0;
  }

  open(): void {
    this.timer = undefined;
    if (this.closed) return;
    this.client.connection().then(
      ({ index, client, metadata }) => this.stream(index, client, metadata),
      (err: unknown) => this.broken(-1, asError(err)),
    );
  }

  pause(): void {
    this.paused = true;
    this.call?.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.call?.resume();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.onClosed();
  }

  private stream(index: number, client: ServiceClient, metadata: grpc.Metadata): void {
    if (this.closed) return;
    const call = client.Watch(metadata);
    this.call = call;
    let over = false;
    const fail = (err: Error): void => {
      if (over) return;
      over = true;
      if (this.call === call) this.call = undefined;
      call.cancel();
      if (!this.closed) this.broken(index, err);
    };
    call.on('data', (res: DecodedWatchResponse) => {
      if (over || this.call !== call) return;
      // A handler's exception must not escape into grpc-js's stream machinery.
      try {
        this.response(res);
      } catch (err) {
        fail(asError(err));
      }
    });
    call.on('error', (err: Error) => {
      if (over || !isTooLarge(err)) return fail(err);
      // Resuming would fetch the same catch-up and fail again, for ever (seen: 433 attempts in
      // 60 s, each reading 100 MB from etcd): end the watch and let its owner list again.
      over = true;
      if (this.call === call) this.call = undefined;
      this.close();
      const reason = `a watch response from revision ${this.nextRevision} was larger than the client receives: ${err.message}`;
      if (this.h.onTooLarge) this.h.onTooLarge(reason);
      else this.h.onCanceled(reason);
    });
    call.on('end', () => fail(new Error('etcd ended the watch stream')));
    if (this.paused) call.pause();
    call.write({
      create_request: {
        key: this.target.key,
        range_end: this.target.rangeEnd ?? Buffer.alloc(0),
        start_revision: String(this.nextRevision),
        progress_notify: true,
        prev_kv: this.target.prevKv === true,
        // No `fragment`: etcd sends every revision whole, however large (up to the message limit),
        // so a response never ends inside a revision.
      },
    });
  }

  private response(res: DecodedWatchResponse): void {
    const headerRevision = res.revision;
    if (res.compact_revision !== 0) {
      this.close(); // etcd ended the watch for good: never reconnect
      this.h.onCompacted(res.compact_revision);
      return;
    }
    if (res.canceled) {
      // An expired token cancels the watch: authenticate again and resume.
      if (isAuthError(new Error(res.cancel_reason))) throw new Error(`watch canceled: ${res.cancel_reason}`);
      this.close(); // etcd ended the watch for good: never reconnect
      this.h.onCanceled(res.cancel_reason || 'no reason given');
      return;
    }
    if (res.created) {
      this.failures = 0;
      if (this.target.cancelIfBehind === true && this.nextRevision > headerRevision + 1) {
        // etcd is behind the revision this watch starts from: it came back with an older or
        // empty history (restored from a backup, a new volume), or this member lags. etcd would
        // wait silently until its revision passed ours and then send changes of another
        // history; the owner must compare with the cluster and list again (informer.ts).
        this.close();
        const reason = `etcd's revision ${headerRevision} is behind ${this.nextRevision - 1}, where this watch resumes: its history was replaced, or this member lags`;
        if (this.h.onBehind) this.h.onBehind(reason);
        else this.h.onCanceled(reason);
        return;
      }
      // From now on: a resume must not skip what happens after this point.
      if (this.nextRevision === 0) this.nextRevision = headerRevision + 1;
      this.h.onCreated?.(this.nextRevision - 1);
      return;
    }
    if (res.events.length > 0) {
      this.nextRevision = res.events[res.events.length - 1]!.kv.mod_revision + 1;
      this.h.onEvents(res.events, headerRevision);
      return;
    }
    // A progress notification: synced up to the header revision (it may equal the last delivered one).
    if (headerRevision >= this.nextRevision - 1) {
      this.nextRevision = Math.max(this.nextRevision, headerRevision + 1);
      this.h.onProgress?.(headerRevision);
    }
  }

  private broken(index: number, err: Error): void {
    if (this.closed) return;
    if (index >= 0) this.client.memberFailed(index, err);
    this.failures++;
    this.h.onDisconnected?.(err);
    // The first retry goes straight to the next member; then back off.
    const delay = this.failures === 1 ? 0 : backoffDelay(this.failures - 1, this.retryBaseMs, this.retryCapMs, true);
    this.timer = setTimeout(() => this.open(), delay);
  }
}

/** grpc-js refused a message over `grpc.max_receive_message_length`. */
function isTooLarge(err: Error): boolean {
  return (err as Partial<grpc.ServiceError>).code === grpc.status.RESOURCE_EXHAUSTED && /larger than max/i.test(err.message);
}

function isAuthError(err: Error): boolean {
  return (err as Partial<grpc.ServiceError>).code === grpc.status.UNAUTHENTICATED || /invalid auth token|auth token is expired/i.test(err.message);
}
