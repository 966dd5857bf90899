// The states as a statemanager serves them over gRPC (contract section 5), through the project's
// generated client: ListResourcesByState, GetResourceState, GetResourceStateHistory and
// SubscribeToStateChanges, with a bearer token and (mutual) TLS when asked. `watch` survives a
// dropped stream — the server restarted, another replica behind a Service, a subscriber cut off
// for falling behind — by subscribing again from the last revision it printed.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { ResourceKind } from '../../domain/states.js';
import { errorMessage } from '../../controller/errors.js';
import type { ListResourcesByStateResponse__Output } from '../generated/statemanager/ListResourcesByStateResponse.js';
import type { ResourceStateHistoryResponse__Output } from '../generated/statemanager/ResourceStateHistoryResponse.js';
import type { ResourceStateResponse__Output } from '../generated/statemanager/ResourceStateResponse.js';
import type { ResourceState__Output } from '../generated/statemanager/ResourceState.js';
import type { ResourceType } from '../generated/statemanager/ResourceType.js';
import type { StateChangeEvent__Output } from '../generated/statemanager/StateChangeEvent.js';
import type { StateManagerConnectionClient } from '../generated/statemanager/StateManagerConnection.js';
import type { StateTransitionHistory__Output } from '../generated/statemanager/StateTransitionHistory.js';
import { loadStateManagerProto } from '../grpc/proto.js';
import { isLoopback, splitHostPort } from '../config/address.js';
import type { Context } from './context.js';
import { CliError, INTERRUPTED, UsageError } from './errors.js';
import type { GlobalOptions, ServerTarget } from './options.js';
import { RESOURCE_TYPE_OF, kindOfResourceType, nsToMs } from '../grpc/resource-types.js';
import { formatDuration } from './format.js';
import type { ResourceDetail, ResourceSummary, StateSource, Transition, WatchHandlers, Watching } from './source.js';

const TYPE_OF = RESOURCE_TYPE_OF;

/** `get` asks for the last transition of this many resources at once. */
const PARALLEL = 16;

/** Reconnect delays of `watch`: doubling from the first, never above the last. */
export const RECONNECT_BACKOFF_MS = { first: 250, max: 5000 };

/** A stream that lived this long counts as having worked: the next outage starts the backoff again. */
const HEALTHY_STREAM_MS = 10_000;

export interface ChannelSetup {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
  /** Whether the channel uses TLS (for messages). */
  tls: boolean;
  token: string | undefined;
}

/**
 * The flags (and STATEMANAGER_TOKEN) as channel credentials, options and the bearer token for
 * the server at `addr`. A token never leaves in clear text for another machine unless asked.
 */
export function channelSetup(o: GlobalOptions, env: NodeJS.ProcessEnv, addr: string): ChannelSetup {
  if (o.token !== undefined && o.tokenFile !== undefined) throw new UsageError('give --token or --token-file, not both');
  if ((o.cert === undefined) !== (o.key === undefined)) throw new UsageError('--cert and --key go together (the client certificate of mutual TLS and its key)');
  let token: string | undefined;
  if (o.token !== undefined) token = o.token.trim();
  else if (o.tokenFile !== undefined) token = (readFlagFile('--token-file', o.tokenFile).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
  else if (env.STATEMANAGER_TOKEN) token = env.STATEMANAGER_TOKEN.trim();
  if (token !== undefined && token === '') throw new UsageError(o.tokenFile !== undefined ? `--token-file ${o.tokenFile} holds no token` : 'the token is empty');
  if (token !== undefined && /[^\x21-\x7e]/.test(token)) throw new UsageError('the token has characters a bearer token cannot have (spaces or control characters)');

  const tls = o.tls === true || o.ca !== undefined || o.cert !== undefined || o.serverName !== undefined;
  if (token !== undefined && !tls && o.insecureToken !== true && !isLoopback(splitHostPort(addr).host)) {
    throw new UsageError(
      `refusing to send the bearer token in clear text to ${addr}, which is not a loopback address: ` +
        'use TLS (--tls, or --ca with a private CA), or --insecure-token if a tunnel or service mesh encrypts the path',
    );
  }
  const options: grpc.ChannelOptions = {
    // Reconnect soon after a replica comes back, and notice a peer that vanished without a word.
    'grpc.initial_reconnect_backoff_ms': RECONNECT_BACKOFF_MS.first,
    'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF_MS.max,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  };
  if (o.serverName !== undefined) {
    options['grpc.ssl_target_name_override'] = o.serverName;
    options['grpc.default_authority'] = o.serverName;
  }
  const credentials = tls
    ? grpc.credentials.createSsl(
        o.ca !== undefined ? readFlagFile('--ca', o.ca) : null,
        o.key !== undefined ? readFlagFile('--key', o.key) : null,
        o.cert !== undefined ? readFlagFile('--cert', o.cert) : null,
      )
    : grpc.credentials.createInsecure();
  return { credentials, options, tls, token };
}

function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`cannot read ${flag} file ${file}: ${errorMessage(err).split('\n')[0]}`);
  }
}

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;

export class GrpcSource implements StateSource {
  readonly where: string;
  private readonly client: StateManagerConnectionClient;
  private readonly token: string | undefined;
  private readonly tls: boolean;

  constructor(
    readonly ctx: Context,
    readonly target: ServerTarget,
  ) {
    const setup = channelSetup(ctx.options, ctx.env, target.addr);
    this.where = `statemanager at ${target.addr}`;
    this.token = setup.token;
    this.tls = setup.tls;
    const proto = loadStateManagerProto();
    this.client = new proto.statemanager.StateManagerConnection(target.addr, setup.credentials, setup.options);
    ctx.onClose(() => this.client.close());
  }

  async list(kind: ResourceKind): Promise<ResourceSummary[]> {
    const res = await this.unary<ListResourcesByStateResponse__Output>((md, o, cb) =>
      this.client.ListResourcesByState({ resource_type: TYPE_OF[kind], state: '', limit: 0 }, md, o, cb),
    );
    if (!res.success) throw new CliError(`${this.where} could not list ${kind}s: ${res.message}`);
    // The server caps one answer (grpc.limits.listMaxResults) and the API cannot page: say so.
    if (res.total_count > res.resources.length) {
      this.ctx.io.stderr.write(`statemanager: showing ${res.resources.length} of ${res.total_count} ${kind}s, the most ${this.where} answers at once; read etcd (without --server) for all of them\n`);
    }
    const out: ResourceSummary[] = res.resources.map((r) => ({ name: r.resource_name, state: r.current_state, since: null, generation: Number(r.state_generation) }));
    // The list carries no history: the last transition of each, a few at a time.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < out.length) {
        const row = out[next++]!;
        const h = await this.historyCall(kind, row.name, 1);
        const last = h.success ? h.history[h.history.length - 1] : undefined;
        row.since = last ? nsToIso(last.timestamp_ns) : null;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, out.length) }, worker));
    return out;
  }

  async get(kind: ResourceKind, name: string): Promise<ResourceSummary | undefined> {
    const d = await this.detail(kind, name);
    if (d === undefined) return undefined;
    return { name: d.name, state: d.state, since: d.since, ...(d.generation !== undefined ? { generation: d.generation } : {}) };
  }

  async detail(kind: ResourceKind, name: string): Promise<ResourceDetail | undefined> {
    const res = await this.unary<ResourceStateResponse__Output>((md, o, cb) =>
      this.client.GetResourceState({ resource_type: TYPE_OF[kind], resource_name: name }, md, o, cb),
    );
    if (!res.success || !res.resource_state) {
      if (isNotFound(res.message)) return undefined;
      throw new CliError(`${this.where} could not read ${kind} "${name}": ${res.message}`);
    }
    return toDetail(kind, res.resource_state);
  }

  async history(kind: ResourceKind, name: string): Promise<Transition[] | undefined> {
    const res = await this.historyCall(kind, name, 0);
    if (!res.success) {
      if (isNotFound(res.message)) return undefined;
      throw new CliError(`${this.where} could not read the history of ${kind} "${name}": ${res.message}`);
    }
    return res.history.map((h) => toTransition(kind, name, h));
  }

  private historyCall(kind: ResourceKind, name: string, limit: number): Promise<ResourceStateHistoryResponse__Output> {
    return this.unary<ResourceStateHistoryResponse__Output>((md, o, cb) =>
      this.client.GetResourceStateHistory({ resource_type: TYPE_OF[kind], resource_name: name, limit }, md, o, cb),
    );
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token !== undefined) md.set('authorization', `Bearer ${this.token}`);
    return md;
  }

  /** One call with the command's deadline, cancelled when the command is interrupted. */
  private unary<T>(invoke: (md: grpc.Metadata, options: grpc.CallOptions, cb: Callback<T>) => grpc.ClientUnaryCall): Promise<T> {
    const signal = this.ctx.io.signal;
    if (signal?.aborted) return Promise.reject(new CliError('interrupted', INTERRUPTED));
    return new Promise<T>((resolve, reject) => {
      let call: grpc.ClientUnaryCall | undefined = undefined;
      const onAbort = (): void => {
        call?.cancel();
        reject(new CliError('interrupted', INTERRUPTED));
      };
      call = invoke(this.metadata(), { deadline: Date.now() + this.ctx.timeoutMs }, (err, value) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(this.translate(err));
        else if (value === undefined) reject(new CliError(`${this.where} sent an empty answer`));
        else resolve(value);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A gRPC failure as one line the operator can act on. */
  translate(err: unknown): CliError {
    if (err instanceof CliError) return err;
    const e = err as Partial<grpc.StatusObject>;
    const details = (e.details ?? errorMessage(err)).split('\n')[0] ?? '';
    switch (e.code) {
      case grpc.status.UNAUTHENTICATED:
        return new CliError(
          `${this.where} refused the credentials: ${details}${this.token === undefined ? ' (no token given: use --token, --token-file or STATEMANAGER_TOKEN, or a client certificate)' : ''}`,
        );
      case grpc.status.PERMISSION_DENIED:
        return new CliError(`${this.where} refused the request: ${details}`);
      case grpc.status.DEADLINE_EXCEEDED:
        return new CliError(`cannot reach ${this.where}: no answer within ${formatDuration(this.ctx.timeoutMs)}`);
      case grpc.status.UNAVAILABLE:
        return new CliError(`cannot reach ${this.where}: ${connectionCause(e.details ?? details, this.tls)}`);
      case grpc.status.UNIMPLEMENTED:
        return new CliError(`${this.where} does not serve this call (${details}); it may be older than this CLI`);
      case grpc.status.CANCELLED:
        if (this.ctx.io.signal?.aborted) return new CliError('interrupted', INTERRUPTED);
        break;
    }
    const name = e.code !== undefined ? (grpc.status[e.code] ?? String(e.code)) : 'error';
    return new CliError(`request to ${this.where} failed: ${name}: ${details}`);
  }

  /**
   * The etcd revision the server's states were at, from a one-item list of each kind watched:
   * the position a watch that has printed nothing yet resumes from.
   */
  private async listedRevision(kind: ResourceKind | undefined): Promise<number | undefined> {
    const kinds: ResourceKind[] = kind !== undefined ? [kind] : ['model', 'package', 'scenario'];
    let best: number | undefined;
    for (const k of kinds) {
      const res = await this.unary<ListResourcesByStateResponse__Output>((md, o, cb) =>
        this.client.ListResourcesByState({ resource_type: TYPE_OF[k], state: '', limit: 1 }, md, o, cb),
      );
      if (!res.success) throw new CliError(`${this.where} could not list ${k}s: ${res.message}`);
      const text = res.resources[0]?.metadata.revision ?? /^revision (\d+)$/.exec(res.message)?.[1];
      const rev = text === undefined ? NaN : Number(text);
      if (Number.isSafeInteger(rev) && (best === undefined || rev > best)) best = rev;
    }
    return best;
  }

  /**
   * SubscribeToStateChanges, subscribed again after every break from the last revision printed.
   * One etcd revision can hold several changes (a transaction), so a resume asks for everything
   * after the revision before it and skips the changes of that revision already printed.
   */
  async watch(filter: { kind?: ResourceKind; name?: string }, on: WatchHandlers): Promise<Watching> {
    const { stderr } = this.ctx.io;
    const resourceType: ResourceType = filter.kind !== undefined ? TYPE_OF[filter.kind] : 'RESOURCE_TYPE_UNSPECIFIED';
    /** The newest revision printed (or listed) and the changes of it already printed. */
    let position: { revision: number; printed: Set<string> } | undefined;
    const listed = await this.listedRevision(filter.kind);
    if (listed !== undefined) position = { revision: listed, printed: new Set() };

    let stopped = false;
    let stream: grpc.ClientReadableStream<StateChangeEvent__Output> | undefined;
    let timer: NodeJS.Timeout | undefined;
    let attempt = 0;
    let lost = false;

    const after = (): string => (position === undefined ? 'from now (no revision known yet)' : `after revision ${position.revision}`);

    const onEvent = (e: StateChangeEvent__Output): void => {
      const c = e.state_change;
      if (e.event_type !== 'EVENT_TYPE_STATE_CHANGE' || !c) return;
      const revision = Number(e.metadata.revision);
      if (Number.isSafeInteger(revision)) {
        if (position !== undefined && (revision < position.revision || (revision === position.revision && position.printed.has(e.event_id)))) return;
        if (position === undefined || revision > position.revision) position = { revision, printed: new Set() };
        position.printed.add(e.event_id);
      }
      const kind = kindOfResourceType(c.resource_type) ?? e.metadata.kind ?? String(c.resource_type);
      const view = {
        kind,
        name: c.resource_name,
        from: c.current_state === '' ? null : c.current_state,
        to: c.target_state === '' ? null : c.target_state,
        at: nsToIso(c.timestamp_ns) ?? new Date(this.ctx.now()).toISOString(),
      };
      on.change(view, { ...view, revision: Number.isSafeInteger(revision) ? revision : null, eventId: e.event_id });
    };

    const subscribe = (): void => {
      if (stopped) return;
      const since = position === undefined ? undefined : position.printed.size > 0 ? position.revision - 1 : position.revision;
      const req = {
        resource_type: resourceType,
        filter: { ...(filter.name !== undefined ? { name: filter.name } : {}), ...(since !== undefined ? { since_revision: String(since) } : {}) },
      };
      const s = this.client.SubscribeToStateChanges(req, this.metadata());
      const opened = Date.now();
      stream = s;
      s.on('data', (e: StateChangeEvent__Output) => {
        if (stream !== s || stopped) return;
        attempt = 0;
        onEvent(e);
      });
      // Every end comes as a status; 'error' only repeats it for non-OK ones.
      s.on('error', () => undefined);
      s.on('status', (st: grpc.StatusObject) => {
        if (stream !== s || stopped) return;
        stream = undefined;
        if (Date.now() - opened >= HEALTHY_STREAM_MS) attempt = 0;
        void ended(st);
      });
    };

    const ended = async (st: grpc.StatusObject): Promise<void> => {
      const summary = `${grpc.status[st.code] ?? st.code}: ${(st.details || 'stream ended').split('\n')[0]}`;
      switch (st.code) {
        case grpc.status.RESOURCE_EXHAUSTED:
          // Cut off for falling behind: the server keeps everything since, ask again at once.
          stderr.write(`statemanager: ${this.where} cut the watch off for falling behind (${summary}); resubscribing ${after()}\n`);
          return retry(attempt > 0);
        case grpc.status.OUT_OF_RANGE:
          if (position === undefined || position.printed.size === 0) {
            // A listed revision that is compacted is one after which no change of the kind
            // came (the server's caches had seen none): follow from now.
            position = undefined;
            return subscribe();
          }
          stderr.write(
            `statemanager: cannot resume after revision ${position.revision}: ${this.where} no longer has it (compacted); changes since then may be missing. Listing again and following from there\n`,
          );
          try {
            const listed = await this.listedRevision(filter.kind);
            position = listed === undefined ? undefined : { revision: listed, printed: new Set() };
          } catch (err) {
            if (stopped) return;
            stderr.write(`statemanager: ${errorMessage(err)}; following from now\n`);
            position = undefined;
            return retry(true);
          }
          return subscribe();
        case grpc.status.OK:
        case grpc.status.UNAVAILABLE:
        case grpc.status.CANCELLED:
        case grpc.status.UNKNOWN:
        case grpc.status.INTERNAL:
        case grpc.status.ABORTED:
        case grpc.status.DEADLINE_EXCEEDED:
          if (!lost) stderr.write(`statemanager: lost the watch on ${this.where} (${summary}); reconnecting\n`);
          lost = true;
          return retry(true);
        default:
          stopped = true;
          on.fail(this.translate(st));
      }
    };

    /** Subscribe again after a backoff, once the channel is connected. */
    const retry = (backoff: boolean): void => {
      if (stopped) return;
      const base = Math.min(RECONNECT_BACKOFF_MS.max, RECONNECT_BACKOFF_MS.first * 2 ** Math.min(attempt, 10));
      const delay = backoff ? base * (0.8 + Math.random() * 0.4) : 0;
      attempt++;
      timer = setTimeout(() => {
        if (stopped) return;
        this.client.waitForReady(Date.now() + RECONNECT_BACKOFF_MS.max, (err) => {
          if (stopped) return;
          if (err) return retry(true);
          if (lost) stderr.write(`statemanager: reconnected to ${this.where}; resuming ${after()}\n`);
          lost = false;
          subscribe();
        });
      }, delay);
    };

    subscribe();
    const what = filter.name !== undefined ? `${filter.kind}/${filter.name}` : filter.kind !== undefined ? `${filter.kind}s` : 'packages, models and scenarios';
    stderr.write(`watching state changes of ${what} on ${this.where} ${after()} (Ctrl-C to stop)\n`);
    return {
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        stream?.cancel();
        stream = undefined;
      },
    };
  }
}

/**
 * Why grpc-js could not connect, from its "No connection established. Last error: ..." text,
 * without timestamps and OpenSSL's source locations, with a hint at the flag that helps.
 */
export function connectionCause(details: string, tls: boolean): string {
  let cause = /Last error: ([\s\S]*?)(?:\.? Resolution note:[\s\S]*)?$/.exec(details)?.[1] ?? details;
  cause = cause
    .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/g, '')
    .replace(/^Error(?: \[[A-Z_]+\])?: /, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[.:]$/, '');
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(cause);
  if (ssl) cause = `TLS handshake failed: ${ssl[1]}`;
  const hint = /certificate required/.test(cause)
    ? 'the server wants a client certificate: --cert and --key'
    : /unknown ca|bad certificate|certificate unknown|certificate expired/i.test(cause) && ssl
      ? 'the server does not accept the client certificate'
      : /altnames|does not match certificate/i.test(cause)
        ? '--server-name NAME checks the certificate against another name'
        : /self-signed|local issuer|unable to verify|unable to get issuer/i.test(cause)
          ? 'give the CA that issued the server certificate with --ca'
          : /wrong version number|packet length too long/i.test(cause) && tls
            ? 'the server does not seem to serve TLS'
            : /^Failed to connect$/.test(cause) && !tls
              ? 'if the server serves TLS: --tls or --ca'
              : undefined;
  return hint === undefined ? cause : `${cause} (${hint})`;
}

/** The server's answer for an unknown resource: `package "nope" not found (...)`. */
function isNotFound(message: string): boolean {
  return / not found\b/.test(message);
}

function nsToIso(ns: string): string | null {
  const ms = nsToMs(ns);
  return ms === undefined ? null : new Date(ms).toISOString();
}

function toTransition(kind: ResourceKind, name: string, h: StateTransitionHistory__Output): Transition {
  return {
    kind,
    name,
    from: h.from_state === '' ? null : h.from_state,
    to: h.to_state,
    at: nsToIso(h.timestamp_ns) ?? '',
    reason: h.reason,
    ...splitSource(h.source),
    ...(h.transition_id !== '' ? { transitionId: h.transition_id } : {}),
  };
}

/**
 * The API has no identity field: the server appends the authenticated identity to the recorded
 * source as ` (identity X)` when it differs. Only the last such group is the server's (a caller
 * chooses its source, and may write anything in it).
 */
export function splitSource(text: string): { source: string; identity?: string } {
  const m = /^(.*?) ?\(identity ([^()]+)\)$/s.exec(text);
  return m ? { source: m[1]!, identity: m[2]! } : { source: text };
}

function toDetail(kind: ResourceKind, r: ResourceState__Output): ResourceDetail {
  const history = r.history.map((h) => toTransition(kind, r.resource_name, h));
  const revision = Number(r.metadata.revision);
  return {
    name: r.resource_name,
    state: r.current_state === '' ? null : r.current_state,
    since: history[history.length - 1]?.at ?? null,
    generation: Number(r.state_generation),
    history,
    ...(Number.isSafeInteger(revision) ? { revision } : {}),
    ...(r.health_status ? { health: { healthy: r.health_status.healthy, message: r.health_status.status_message } } : {}),
  };
}
