// The states as etcd holds them, read as the controller reads them (the StateSource of the
// commands when there is no --server); `reader` has the rest of what etcd keeps.
import { parseHistoryEntry } from '../../domain/history-entry.js';
import type { ResourceKind } from '../../domain/states.js';
import type { Context } from './context.js';
import { EtcdReader } from './etcd-reader.js';
import { watchKeys } from './etcd-watch.js';
import type { ResourceDetail, ResourceSummary, StateSource, Transition, WatchHandlers, Watching } from './source.js';

export class EtcdSource implements StateSource {
  readonly reader: EtcdReader;

  constructor(readonly ctx: Context) {
    this.reader = new EtcdReader(ctx.snapshot, ctx.keys);
  }

  get where(): string {
    return this.ctx.etcd.where;
  }

  async list(kind: ResourceKind): Promise<ResourceSummary[]> {
    return this.summaries(kind, await this.reader.names(kind));
  }

  async get(kind: ResourceKind, name: string): Promise<ResourceSummary | undefined> {
    if (!(await this.reader.exists(kind, name))) return undefined;
    return (await this.summaries(kind, [name]))[0];
  }

  async detail(kind: ResourceKind, name: string): Promise<ResourceDetail | undefined> {
    if (!(await this.reader.exists(kind, name))) return undefined;
    const history = await this.reader.history(kind, name);
    const state = (await this.reader.states(kind)).get(name)?.state ?? null;
    return { name, state, since: history[history.length - 1]?.at ?? null, history };
  }

  async history(kind: ResourceKind, name: string): Promise<Transition[] | undefined> {
    const entries = await this.reader.history(kind, name);
    if (entries.length === 0 && !(await this.reader.exists(kind, name))) return undefined;
    return entries;
  }

  private async summaries(kind: ResourceKind, names: string[]): Promise<ResourceSummary[]> {
    const states = await this.reader.states(kind);
    const last = await this.reader.lastTransitions(kind, names);
    return names.map((n) => ({ name: n, state: states.get(n)?.state ?? null, since: last.get(n)?.at ?? null }));
  }

  /** The history keys the controller writes with every state change, from the current revision on. */
  async watch(filter: { kind?: ResourceKind; name?: string }, on: WatchHandlers): Promise<Watching> {
    const { etcd, keys } = this.ctx;
    const { stderr } = this.ctx.io;
    const { kind, name } = filter;
    const prefix = kind === undefined ? keys.history : name === undefined ? `${keys.history}${kind}/` : `${keys.history}${kind}/${name}/`;
    // Everything recorded after this revision is shown: nothing between "started" and the watch is lost.
    const revision = await etcd.currentRevision(keys.leader);
    const watch = await watchKeys(
      etcd,
      { key: prefix, prefix: true, startRevision: revision + 1 },
      {
        put: (kv) => {
          const entry = parseHistoryEntry(kv.value);
          if (!entry) {
            stderr.write(`statemanager: skipping unreadable history entry ${kv.key}\n`);
            return;
          }
          on.change(entry, entry);
        },
        disconnected: (err) => stderr.write(`statemanager: lost the watch on etcd (${err.message.split('\n')[0]}); reconnecting\n`),
        fail: (err) => on.fail(err),
      },
    );
    stderr.write(`watching transitions under ${prefix} (Ctrl-C to stop)\n`);
    return { stop: async () => watch.close() };
  }
}
