// An in-memory StateStore over a FakeListerWatcher: the same guarded writes as the etcd store
// (a write commits only if the key is still where the writer saw it), landing in the fake's map
// so the fleet's informers see them at once. `failNext` makes the next writes lose their race.
import type { KeyLayout } from '../../domain/keys.js';
import type {
  CommitOutcome,
  HistoryEntry,
  ReadGuard,
  ReconcileRequestRecord,
  StateDeletion,
  StateStore,
  StateTransition,
  StoredRevision,
} from '../../reconcilers/ports.js';
import type { FakeListerWatcher } from './lister-watcher.js';
import type { ResourceKind } from '../../domain/states.js';

export class FakeStateStore implements StateStore {
  readonly history: HistoryEntry[] = [];
  readonly writes: string[] = [];
  /** How many of the next writes fail as if another writer got there first. */
  failNext = 0;
  /** Writes of more transitions than this are refused as too large for one transaction (etcd's limits). */
  maxTransitions = Infinity;

  constructor(
    private readonly lw: FakeListerWatcher,
    private readonly keys: KeyLayout,
  ) {}

  /** What writesWaiting() answers (the fake commits at once; a test sets a backlog). */
  waiting = 0;

  writesWaiting(): number {
    return this.waiting;
  }

  writeState(t: StateTransition): Promise<CommitOutcome> {
    return this.writeStates([t], []);
  }

  async writeStates(transitions: readonly StateTransition[], unchanged: readonly ReadGuard[]): Promise<CommitOutcome> {
    if (transitions.length > this.maxTransitions) throw Object.assign(new Error('etcdserver: too many operations in txn request'), { tooLarge: true as const });
    const guards = [...transitions, ...unchanged].map((g) => [this.keys.stateKey(g.kind, g.name), g.expected] as const);
    if (!guards.every(([key, expected]) => this.at(key, expected))) return { committed: false };
    // One transaction, as in etcd: the requests carry the states' revision.
    const revision = this.lw.txn(
      transitions.flatMap((t) => {
        const requestKey = this.keys.reconcileRequestKey(t.name);
        const r = t.reconcileRequest;
        return [
          { put: this.keys.stateKey(t.kind, t.name), value: t.to },
          ...(r && 'put' in r ? [{ put: requestKey, value: JSON.stringify(r.put) }] : []),
          ...(r && 'delete' in r ? [{ delete: requestKey }] : []),
        ];
      }),
    );
    for (const t of transitions) {
      this.history.push(t.history);
      this.writes.push(`${t.kind}/${t.name}=${t.to}`);
    }
    return { committed: true, revision };
  }

  async deleteState(d: StateDeletion): Promise<CommitOutcome> {
    const key = this.keys.stateKey(d.kind, d.name);
    if (!this.at(key, d.expected)) return { committed: false };
    const revision = this.lw.txn([{ delete: key }, ...(d.deleteReconcileRequest ? [{ delete: this.keys.reconcileRequestKey(d.name) }] : [])]);
    this.writes.push(`${d.kind}/${d.name} deleted`);
    return { committed: true, revision };
  }

  /** The fake keeps history in `history`, not under keys: a trim only checks its guard and is recorded. */
  readonly trims: string[] = [];

  async trimHistory(kind: ResourceKind, name: string, state: StoredRevision | undefined): Promise<CommitOutcome> {
    if (!this.at(this.keys.stateKey(kind, name), state)) return { committed: false };
    this.trims.push(`${kind}/${name}${state ? ` past ${state.version}` : ''}`);
    return { committed: true, revision: this.lw.revision };
  }

  async updateReconcileRequest(record: ReconcileRequestRecord, expected: StoredRevision): Promise<CommitOutcome> {
    const key = this.keys.reconcileRequestKey(record.package);
    if (!this.at(key, expected)) return { committed: false };
    this.lw.put(key, JSON.stringify(record));
    return { committed: true, revision: this.lw.revision };
  }

  async createReconcileRequest(record: ReconcileRequestRecord, packageState: StoredRevision): Promise<CommitOutcome> {
    const key = this.keys.reconcileRequestKey(record.package);
    if (!this.at(this.keys.stateKey('package', record.package), packageState) || this.lw.get(key) !== undefined) return { committed: false };
    this.lw.put(key, JSON.stringify(record));
    return { committed: true, revision: this.lw.revision };
  }

  async deleteReconcileRequest(pkg: string, expected: StoredRevision): Promise<CommitOutcome> {
    return this.deleteIfAt(this.keys.reconcileRequestKey(pkg), expected);
  }

  async deleteResyncRequest(id: string, expected: StoredRevision): Promise<CommitOutcome> {
    return this.deleteIfAt(this.keys.resyncRequestKey(id), expected);
  }

  async confirmReconcileRequest(pkg: string, expected: StoredRevision): Promise<{ packageState: string | undefined } | undefined> {
    const kv = this.lw.get(this.keys.reconcileRequestKey(pkg));
    if (kv?.modRevision !== expected.modRevision) return undefined;
    return { packageState: this.lw.get(this.keys.stateKey('package', pkg))?.value };
  }

  private deleteIfAt(key: string, expected: StoredRevision): CommitOutcome {
    if (!this.at(key, expected)) return { committed: false };
    this.lw.delete(key);
    return { committed: true, revision: this.lw.revision };
  }

  /** The guard: the key is at `expected` (or absent when expected is undefined). */
  private at(key: string, expected: StoredRevision | undefined): boolean {
    if (this.failNext > 0) {
      this.failNext--;
      return false;
    }
    const kv = this.lw.get(key);
    return expected === undefined ? kv === undefined : kv?.modRevision === expected.modRevision;
  }
}
