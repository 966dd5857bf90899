// A resource's recorded transitions, read fresh from etcd (a replica's caches do not hold
// history): at most the configured history length, so one range call.
import type { Etcd3 } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { parseHistoryEntry } from '../../domain/history-entry.js';
import type { ResourceKind } from '../../domain/states.js';
import type { StoredStateView } from '../state-api/reader.js';
import { etcdDeadline } from './errors.js';
import { prefixEnd } from './lister-watcher.js';

export class EtcdHistoryStore {
  /** Per state (kind and name): when the change it is now entered it, as read (undefined: no entry says). */
  private readonly entered = new Map<string, { version: number; modRevision: number; state: string; at: number | undefined }>();

  constructor(
    private readonly client: Etcd3,
    private readonly keys: KeyLayout,
    private readonly requestTimeoutMs: number,
    /**
     * Whether etcd answered lately (the etcd probe). When it did not, a read fails at once instead
     * of waiting out its deadline: etcd behind a black hole made every GetResourceState wait 5 s
     * for the cached state it could have answered at once.
     */
    private readonly reachable: () => boolean = () => true,
    /** States whose entered time is kept (ENTERED_KEPT). */
    private readonly enteredKept: number = ENTERED_KEPT,
  ) {}

  async read(kind: ResourceKind, name: string, deadline?: number): Promise<HistoryEntry[]> {
    if (!this.reachable()) throw new Error('etcd is unreachable');
    // A caller whose deadline leaves no time for the read gets the answer without it, at once:
    // a call bound to fail costs etcd and this process for nothing (a flood of 5 ms deadlines).
    if (deadline !== undefined && deadline <= Date.now()) throw new Error("no time left for the history before the caller's deadline");
    const prefix = Buffer.from(this.keys.historyPrefix(kind, name));
    const res = await this.client.kv.range({ key: prefix, range_end: prefixEnd(prefix) }, { deadline: etcdDeadline(this.requestTimeoutMs, deadline) });
    const out: HistoryEntry[] = [];
    for (const kv of res.kvs) {
      // Only this resource's own entries: `a/` must not take in `a/b/`'s.
      if (kv.key.toString('utf8').slice(prefix.length).includes('/')) continue;
      const e = parseHistoryEntry(kv.value.toString('utf8'));
      if (e) out.push(e);
    }
    return out;
  }

  /**
   * When each stored state was entered (epoch ms), from the history entry its own write added (the
   * entry at the state key's version, if it records that state); undefined where there is none (a
   * state written by another program, or an old entry trimmed). One etcd transaction of single-key
   * reads per LOOKUPS_PER_TXN states, LOOKUP_TXNS_AT_ONCE at a time: ListResourcesByState answered
   * 0 for every resource (contract section 5: when the current state was entered; found by a
   * Pullpiri compatibility probe), where reading each resource's whole history would cost a range
   * per resource.
   */
  async enteredAt(kind: ResourceKind, states: readonly StoredStateView[], deadline?: number): Promise<(number | undefined)[]> {
    const out = new Array<number | undefined>(states.length).fill(undefined);
    if (states.length === 0) return out;
    // A state's entry, once read, is known for as long as the state is the same change (its
    // version and revision): found by black-box probing, one client listing 20,000 quiet models
    // again and again read their 20,000 entries each time, half of etcd's CPU.
    const missing: number[] = [];
    for (let i = 0; i < states.length; i++) {
      const s = states[i]!;
      const known = s.modRevision === undefined ? undefined : this.entered.get(memoKey(kind, s.name));
      if (known !== undefined && known.version === s.version && known.modRevision === s.modRevision && known.state === s.state) out[i] = known.at;
      else missing.push(i);
    }
    if (missing.length === 0) return out;
    if (!this.reachable()) throw new Error('etcd is unreachable');
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < missing.length) {
        const start = next;
        next += LOOKUPS_PER_TXN;
        const part = missing.slice(start, start + LOOKUPS_PER_TXN);
        const res = await this.client.kv.txn(
          { compare: [], success: part.map((i) => ({ request_range: { key: Buffer.from(this.keys.historyKey(kind, states[i]!.name, states[i]!.version)) } })), failure: [] },
          { deadline: etcdDeadline(this.requestTimeoutMs, deadline) },
        );
        for (let j = 0; j < part.length; j++) {
          const s = states[part[j]!]!;
          const kv = res.responses[j]?.response_range?.kvs[0];
          const e = kv === undefined ? undefined : parseHistoryEntry(kv.value.toString('utf8'));
          const parsed = e === undefined || e.to !== s.state ? Number.NaN : Date.parse(e.at);
          const at = Number.isNaN(parsed) ? undefined : parsed;
          out[part[j]!] = at;
          if (s.modRevision !== undefined) this.remember(kind, s, at);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOOKUP_TXNS_AT_ONCE, Math.ceil(missing.length / LOOKUPS_PER_TXN)) }, worker));
    return out;
  }

  private remember(kind: ResourceKind, s: StoredStateView, at: number | undefined): void {
    // Bounded: past ENTERED_KEPT states (more than a fleet holds) it starts again.
    const key = memoKey(kind, s.name);
    if (this.entered.size >= this.enteredKept && !this.entered.has(key)) this.entered.clear();
    this.entered.set(key, { version: s.version, modRevision: s.modRevision!, state: s.state, at });
  }
}

/** States whose entered time is kept, over all kinds; one more clears them (about 150 B each). */
export const ENTERED_KEPT = 200_000;

const memoKey = (kind: ResourceKind, name: string): string => `${kind}\n${name}`;

/** Reads in one transaction: below etcd's default --max-txn-ops (128). */
export const LOOKUPS_PER_TXN = 100;
/** Transactions of look-ups in flight for one list. */
const LOOKUP_TXNS_AT_ONCE = 4;
