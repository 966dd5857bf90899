// etcd watch events as state changes, and the key range every state lives in: shared by the
// feed's one watch and its bounded replays.
import type { KeyLayout } from '../../domain/keys.js';
import { parseState, type ResourceKind } from '../../domain/states.js';
import type { EtcdWatchEvent, WatchTarget } from '../etcd/watch-client.js';

export interface StateChangeRecord {
  kind: ResourceKind;
  name: string;
  /** The state before ('' for a new resource or a value that is not a state), in the spelling statemanager writes. */
  from: string;
  /** The state after ('' when the state key was deleted or holds a value that is not a state). */
  to: string;
  revision: number;
  /** Position among the changes of one revision (a transaction may change several keys). */
  index: number;
  /**
   * The last state change of its revision. A stream that breaks after a change that is not (a
   * replica killed, a connection cut) may have delivered part of the revision, so a resume from
   * that revision would skip the rest: the event says where to resume from instead.
   */
  endsRevision: boolean;
  /** When this replica saw the change (epoch ms). */
  seenAt: number;
}

const KINDS: readonly ResourceKind[] = ['model', 'package', 'scenario'];

/** The keys of every state: from `/model/` to the end of `/scenario/` (a few `/node/` and `/package/` keys between are filtered). */
export function stateRange(keys: KeyLayout, startRevision: number, prevKv = true): WatchTarget {
  const first = [keys.statePrefix('model'), keys.statePrefix('package'), keys.statePrefix('scenario')].sort();
  const last = first[first.length - 1]!;
  return {
    key: Buffer.from(first[0]!),
    rangeEnd: Buffer.from(last.slice(0, -1) + String.fromCharCode(last.charCodeAt(last.length - 1) + 1)),
    startRevision,
    prevKv,
  };
}

/**
 * The state keys and statemanager's own keys (where the replay marker is): every state key and
 * the marker in one watch, so the marker's event comes after every older state change.
 */
export function replayRange(keys: KeyLayout, startRevision: number, prevKv = true): WatchTarget {
  const state = stateRange(keys, startRevision, prevKv);
  const own = Buffer.from(keys.own);
  const ownEnd = Buffer.from(keys.own.slice(0, -1) + String.fromCharCode(keys.own.charCodeAt(keys.own.length - 1) + 1));
  return {
    ...state,
    key: Buffer.compare(own, state.key) < 0 ? own : state.key,
    rangeEnd: Buffer.compare(ownEnd, state.rangeEnd!) > 0 ? ownEnd : state.rangeEnd!,
  };
}

/**
 * The state changes among one watch response's events; a rewrite of the same state is none. The
 * state before each change is the event's prev_kv, or, given `previous` (a watch without prev_kv),
 * the state it holds for the key, which must hold every state key of `events` ('' for absent); it
 * is kept up to date with each event.
 */
export function stateChanges(keys: KeyLayout, events: EtcdWatchEvent[], seenAt: number, previous?: Map<string, string>): StateChangeRecord[] {
  const out: StateChangeRecord[] = [];
  let revision = -1;
  let index = 0;
  for (const e of events) {
    const key = e.kv.key.toString('utf8');
    const kind = stateKeyKind(keys, key);
    if (kind === undefined) continue;
    const name = keys.parseStateKey(kind, key)!;
    const to = e.type === 'Delete' ? '' : spelled(kind, e.kv.value.toString('utf8'));
    let from: string;
    if (previous) {
      from = previous.get(key) ?? '';
      previous.set(key, to);
    } else from = e.prev_kv ? spelled(kind, e.prev_kv.value.toString('utf8')) : '';
    // A rewrite of the same state (another writer, another spelling) is not a change.
    if (from === to) continue;
    const rev = Number(e.kv.mod_revision);
    index = rev === revision ? index + 1 : 0;
    revision = rev;
    if (out.length > 0 && out[out.length - 1]!.revision === rev) out[out.length - 1]!.endsRevision = false;
    out.push({ kind, name, from, to, revision: rev, index, seenAt, endsRevision: true });
  }
  return out;
}

/**
 * The revision of the first state change among `events` whose previous value etcd did not send
 * although the key had one (a put of a key written before, version > 1, or a deletion), or
 * undefined. etcd (3.4 and on) looks each previous value up as it sends the event and leaves it
 * out when that revision was compacted meanwhile: the change's old state is then unknown, and
 * reading it as '' would say "a new resource" (found by black-box probing: a replica paused 30 s
 * across a compaction published `"" -> Dead` for a model that was Running).
 */
export function unknownPreviousAt(keys: KeyLayout, events: readonly EtcdWatchEvent[]): number | undefined {
  for (const e of events) {
    if (e.prev_kv) continue;
    if (e.type === 'Put' && Number(e.kv.version) <= 1) continue; // a creation has nothing before it
    if (stateKeyKind(keys, e.kv.key.toString('utf8')) !== undefined) return Number(e.kv.mod_revision);
  }
  return undefined;
}

/** The kind of state `key` holds; undefined for any other key (history entries, the replay marker, `/node/` keys). */
export function stateKeyKind(keys: KeyLayout, key: string): ResourceKind | undefined {
  return KINDS.find((k) => keys.parseStateKey(k, key) !== undefined);
}

/** The canonical spelling of a state; '' (absent, contract section 1) when the value is not one. */
export function spelled(kind: ResourceKind, raw: string): string {
  return parseState(kind, raw) ?? '';
}
