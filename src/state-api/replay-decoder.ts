// A replay's watch responses as state changes, with each change's old state, from a watch that
// does not ask etcd for previous values (prev_kv). etcd looks a previous value up for every
// event it sends, history entries included: measured on etcd 3.4 with a replay 100,000 state
// changes back (200,000 revisions), 38.7 s of etcd's CPU with prev_kv against 25.0 s without
// (docs/state-api.md). Here a key's old state is looked up once, before its first change in the
// replay, and followed from its own events after that; a key created in the replay (version 1)
// needs no look-up. Responses are turned into changes strictly in the order they came, also
// while a look-up is under way.
import type { KeyLayout } from '../../domain/keys.js';
import type { EtcdWatchEvent } from '../etcd/watch-client.js';
import { spelled, stateChanges, stateKeyKind, type StateChangeRecord } from './records.js';

/** A key's value just before one of its changes: the key and the revision to read it at (the change's revision − 1). */
export interface PreviousLookup {
  key: string;
  revision: number;
}

/** The raw values of `lookups` (undefined: no such key at that revision), in the same order. */
export type LookUpPrevious = (lookups: readonly PreviousLookup[]) => Promise<(string | undefined)[]>;

/** A look-up's revision was compacted: the replay cannot go on, and its subscriber lists again. */
export class ReplayLookupCompacted extends Error {
  constructor(readonly revision: number) {
    super(`revision ${revision} compacted`);
  }
}

export interface ReplayDecoderOptions {
  keys: KeyLayout;
  lookUp: LookUpPrevious;
  /** One response's state changes, and the revision of its last event (whole revisions). */
  onChanges(records: StateChangeRecord[], through: number): void;
  /** A look-up failed: the decoder stops; nothing more is delivered. */
  onError(err: unknown): void;
  now(): number;
}

export class ReplayDecoder {
  /** The state each key seen in this replay holds now ('' for absent or not a state). */
  private readonly states = new Map<string, string>();
  private readonly waiting: EtcdWatchEvent[][] = [];
  private draining = false;
  private closed = false;

  constructor(private readonly o: ReplayDecoderOptions) {}

  /** Keys whose state the decoder follows (at most the state keys the replay touched). */
  get keysFollowed(): number {
    return this.states.size;
  }

  /** One watch response's events, in the order etcd sent them. */
  push(events: EtcdWatchEvent[]): void {
    if (this.closed || events.length === 0) return;
    if (!this.draining && this.waiting.length === 0) {
      const lookups = this.missing(events);
      if (lookups.length === 0) {
        this.deliver(events);
        return;
      }
    }
    this.waiting.push(events);
    if (!this.draining) void this.drain();
  }

  /** Nothing more is delivered (a look-up under way is dropped on arrival). */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (!this.closed && this.waiting.length > 0) {
        const events = this.waiting[0]!;
        const lookups = this.missing(events);
        if (lookups.length > 0) {
          const values = await this.o.lookUp(lookups);
          if (this.closed) return;
          for (let i = 0; i < lookups.length; i++) {
            const { key } = lookups[i]!;
            const raw = values[i];
            this.states.set(key, raw === undefined ? '' : spelled(stateKeyKind(this.o.keys, key)!, raw));
          }
        }
        this.waiting.shift();
        this.deliver(events);
      }
    } catch (err) {
      if (this.closed) return;
      this.close();
      this.o.onError(err);
    } finally {
      this.draining = false;
    }
  }

  /** The state keys of `events` whose state before their first change here is not known yet, once each. */
  private missing(events: readonly EtcdWatchEvent[]): PreviousLookup[] {
    const out: PreviousLookup[] = [];
    let asked: Set<string> | undefined;
    for (const e of events) {
      const key = e.kv.key.toString('utf8');
      if (this.states.has(key) || asked?.has(key) || stateKeyKind(this.o.keys, key) === undefined) continue;
      // A creation has nothing before it (etcd sends no prev_kv for one either).
      if (e.type === 'Put' && Number(e.kv.version) === 1) {
        this.states.set(key, '');
        continue;
      }
      (asked ??= new Set()).add(key);
      out.push({ key, revision: Number(e.kv.mod_revision) - 1 });
    }
    return out;
  }

  private deliver(events: EtcdWatchEvent[]): void {
    const records = stateChanges(this.o.keys, events, this.o.now(), this.states);
    this.o.onChanges(records, Number(events[events.length - 1]!.kv.mod_revision));
  }
}
