// The states as a statemanager serves them over gRPC (contract section 5), through the project's
// generated client: ListResourcesByState, GetResourceState, GetResourceStateHistory and
// SubscribeToStateChanges (the StateSource of the commands with --server). The channel and its
// calls are in grpc-connection.ts, the resuming watch in grpc-watch.ts.
import PQueue from 'p-queue';
import type { ResourceKind } from '../../domain/states.js';
import type { ListResourcesByStateResponse__Output } from '../generated/statemanager/ListResourcesByStateResponse.js';
import type { ResourceStateHistoryResponse__Output } from '../generated/statemanager/ResourceStateHistoryResponse.js';
import type { ResourceStateResponse__Output } from '../generated/statemanager/ResourceStateResponse.js';
import { RESOURCE_TYPE_OF } from '../grpc/resource-types.js';
import type { Context } from './context.js';
import { CliError } from './errors.js';
import { errorMessage } from '../../controller/errors.js';
import { isNotFound, nsToIso, toDetail, toTransition } from './grpc-answers.js';
import { GrpcConnection } from './grpc-connection.js';
import { subscribeResuming } from './grpc-watch.js';
import type { ServerTarget } from './options.js';
import type { ResourceDetail, ResourceSummary, StateSource, Transition, WatchHandlers, Watching } from './source.js';

const TYPE_OF = RESOURCE_TYPE_OF;

/** `get` asks for the last transition of this many resources at once. */
const PARALLEL = 16;

export class GrpcSource implements StateSource {
  private readonly conn: GrpcConnection;

  constructor(
    readonly ctx: Context,
    target: ServerTarget,
  ) {
    this.conn = new GrpcConnection(ctx, target);
  }

  get where(): string {
    return this.conn.where;
  }

  async list(kind: ResourceKind): Promise<ResourceSummary[]> {
    const res = await this.conn.unary<ListResourcesByStateResponse__Output>((md, o, cb) =>
      this.conn.client.ListResourcesByState({ resource_type: TYPE_OF[kind], state: '', limit: 0 }, md, o, cb),
    );
    if (!res.success) throw new CliError(`${this.where} could not list ${kind}s: ${res.message}`);
    // The server caps one answer (grpc.limits.listMaxResults, listMaxBytes) and the API cannot page: say so.
    if (res.total_count > res.resources.length) {
      this.ctx.io.stderr.write(`statemanager: showing ${res.resources.length} of ${res.total_count} ${kind}s, the most ${this.where} answers at once; read etcd (without --server) for all of them\n`);
    }
    const out: ResourceSummary[] = res.resources.map((r) => ({ name: r.resource_name, state: r.current_state, since: null, generation: Number(r.state_generation) }));
    // The list carries no history: the last transition of each, a few at a time. A history the
    // server cannot read (etcd away: it still answers the list from its caches) leaves SINCE
    // empty, said once; it failed the whole list before (black-box probing).
    const calls = new PQueue({ concurrency: PARALLEL });
    let unread = 0;
    let why = '';
    await calls.addAll(
      out.map((row) => async () => {
        const h = await this.historyCall(kind, row.name, 1).catch((err: unknown) => ({ success: false, message: errorMessage(err), history: [] }));
        if (!h.success) {
          unread++;
          why ||= h.message;
        }
        const last = h.success ? h.history[h.history.length - 1] : undefined;
        row.since = last ? nsToIso(last.timestamp_ns) : null;
      }),
    );
    if (unread > 0) this.historyNotShown(`${unread} of ${out.length} ${kind}s`, why);
    return out;
  }

  async get(kind: ResourceKind, name: string): Promise<ResourceSummary | undefined> {
    const d = await this.detail(kind, name);
    if (d === undefined) return undefined;
    if (d.historyUnavailable !== undefined) this.historyNotShown(`${kind} "${name}"`, d.historyUnavailable);
    return { name: d.name, state: d.state, since: d.since, ...(d.generation !== undefined ? { generation: d.generation } : {}) };
  }

  /** SINCE is empty because the server could not read the history, not because none is recorded. */
  private historyNotShown(what: string, why: string): void {
    this.ctx.io.stderr.write(`statemanager: SINCE not shown for ${what}: ${this.where} could not read the history (${why})\n`);
  }

  async detail(kind: ResourceKind, name: string): Promise<ResourceDetail | undefined> {
    const res = await this.conn.unary<ResourceStateResponse__Output>((md, o, cb) =>
      this.conn.client.GetResourceState({ resource_type: TYPE_OF[kind], resource_name: name }, md, o, cb),
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
    return this.conn.unary<ResourceStateHistoryResponse__Output>((md, o, cb) =>
      this.conn.client.GetResourceStateHistory({ resource_type: TYPE_OF[kind], resource_name: name, limit }, md, o, cb),
    );
  }

  /**
   * The etcd revision the server's states were at, from a one-item list of each kind watched:
   * the position a watch that has printed nothing yet resumes from.
   */
  private async listedRevision(kind: ResourceKind | undefined): Promise<number | undefined> {
    const kinds: ResourceKind[] = kind !== undefined ? [kind] : ['model', 'package', 'scenario'];
    let best: number | undefined;
    for (const k of kinds) {
      const res = await this.conn.unary<ListResourcesByStateResponse__Output>((md, o, cb) =>
        this.conn.client.ListResourcesByState({ resource_type: TYPE_OF[k], state: '', limit: 1 }, md, o, cb),
      );
      if (!res.success) throw new CliError(`${this.where} could not list ${k}s: ${res.message}`);
      const text = res.resources[0]?.metadata.revision ?? /^revision (\d+)$/.exec(res.message)?.[1];
      const rev = text === undefined ? NaN : Number(text);
      if (Number.isSafeInteger(rev) && (best === undefined || rev > best)) best = rev;
    }
    return best;
  }

  /** The server's stream of state changes, resumed after every break (see grpc-watch.ts). */
  watch(filter: { kind?: ResourceKind; name?: string }, on: WatchHandlers): Promise<Watching> {
    return subscribeResuming(this.conn, this.ctx, filter, (kind) => this.listedRevision(kind), on);
  }
}
