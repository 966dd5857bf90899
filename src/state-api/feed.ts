// Every committed state change (model, package, scenario) from ONE etcd watch, fanned out to any
// number of subscribers, with a bounded buffer of recent changes so that a subscriber resuming
// from a recent revision is served without touching etcd. Subscribers are pulled, not pushed:
// each has a position (revision, index) and takes changes from the buffer, or from a replay
// chunk when it resumes from before the buffer (src/state-api/replay-pool.ts, a bounded number
// of etcd watches), for as long as its sink accepts them; a sink that is full pauses it, at a
// revision boundary, until it is resumed. No gap and no duplicate anywhere, because every record
// carries its position and a subscriber only ever takes records after its own. A subscriber that
// stays paused while `maxPausedBehind` changes arrive, or whose place the buffer dropped while
// it was paused, is cut, told the revision to resume from.
//
// New changes reach live subscribers in slices of at most `fanOutSliceMs` of the event loop, not
// inside the watch's callback: with thousands of subscribers a batch of changes took seconds to
// hand out, during which the controller (and the leader's lease) waited. A subscriber the slices
// leave more than the buffer behind is cut like a slow one and resumes by replay.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../controller/logger.js';
import { errorMessage } from '../../controller/errors.js';
import type { KeyLayout } from '../../domain/keys.js';
import type { ResourceKind } from '../../domain/states.js';
import type { EtcdWatch } from '../etcd/watch-client.js';
import { stateChanges, stateRange, unknownPreviousAt, type StateChangeRecord } from './records.js';
import { ReplayPool, type ReplayChunk, type WatchSource } from './replay-pool.js';
import type { LookUpPrevious } from './replay-decoder.js';

export type { StateChangeRecord } from './records.js';
export type { WatchSource } from './replay-pool.js';

export interface SubscriptionFilter {
  kind?: ResourceKind;
  name?: string;
  /** Replay every change after this revision first. */
  sinceRevision?: number;
}

/** Where a subscription's changes go. Never blocks: a full sink says so and is resumed later. */
export interface ChangeSink {
  /** Takes one change; false: it holds enough, send nothing after this revision until resume(). */
  send(record: StateChangeRecord): boolean;
  /** The subscription ended: compacted (resume impossible), too slow, or the feed stopped. */
  end(reason: SubscriptionEnd): void;
}

export type SubscriptionEnd =
  /** `compactRevision` when etcd said it (a replay's watch); a resume found compacted by a read does not learn it. */
  | { kind: 'compacted'; compactRevision?: number }
  /** It asked for changes after a revision etcd has not reached (etcd restored from a backup, another cluster, a made-up number). */
  | { kind: 'future'; sinceRevision: number; etcdRevision: number }
  | { kind: 'restarted'; detail: string }
  | { kind: 'stopped' }
  /** It did not read while `behind` changes arrived: every change up to `resumeRevision` was given. */
  | { kind: 'slow'; resumeRevision: number; behind: number };

export interface Subscription {
  /** The sink can take changes again. */
  resume(): void;
  close(): void;
}

export interface StateFeedOptions {
  source: WatchSource;
  keys: KeyLayout;
  logger: Logger;
  /** Recent changes kept for resumes. Default 10,000. */
  bufferSize?: number;
  /**
   * The shared watch starts with the first subscriber and stops this long after the last one
   * left (keeping the resume buffer for reconnects meanwhile): with nobody subscribed it costs
   * etcd nothing (its prev_kv lookups are not free). Default 60 s.
   */
  idleStopMs?: number;
  /** Changes that may arrive while a subscriber does not read before it is cut. Default 1000. */
  maxPausedBehind?: number;
  /** etcd watches open at once for replays from before the buffer. Default 4. */
  replayWatches?: number;
  /** Changes one replay fetch gathers (held in memory until the subscriber took them). Default 500. */
  replayChunk?: number;
  /** Most of the event loop one slice of handing out new changes may hold. Default 5 ms. */
  fanOutSliceMs?: number;
  /**
   * Puts the replay marker and answers its revision (ReplayPoolOptions.mark): how a replay with
   * an empty buffer knows it has every change.
   */
  markReplay: () => Promise<number>;
  /**
   * Reads keys' values before their first change in a replay (ReplayPoolOptions.lookUpPrevious):
   * a replay's watch then does not ask etcd for each event's previous value.
   */
  lookUpPrevious?: LookUpPrevious;
  /**
   * etcd's current revision (a read). Asked when a subscriber resumes after a revision the feed
   * has not seen: one past etcd's own is refused, not waited for in silence (etcd restored
   * behind it would otherwise skip every change up to it). Without it such a resume waits.
   */
  etcdRevision?: () => Promise<number>;
  /**
   * How long the shared watch may stay disconnected from etcd before every subscriber is ended
   * (UNAVAILABLE, to resume on a replica that reaches etcd: exact by revision), and new ones are
   * refused until it is back. Default 5 s. Held open instead, subscribers of a replica cut off
   * from etcd heard nothing for the whole partition (black-box probing: 351 s).
   */
  disconnectedCutMs?: number;
  now?: () => number;
}

export class StateFeed {
  private readonly buffer: StateChangeRecord[] = [];
  /** Sequence number of buffer[0]: a subscriber's cursor survives trimming. */
  private base = 0;
  /** Every change after this revision is in the buffer (or delivered live from now on). */
  private floor = Number.POSITIVE_INFINITY;
  private readonly subs = new Set<Subscriber>();
  private watch: EtcdWatch | undefined;
  private readyWaiters: (() => void)[] = [];
  private stopped = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Live subscribers with new changes to take, in the order they became due. */
  private readonly due = new Set<Subscriber>();
  private fanOut: NodeJS.Immediate | undefined;
  private readonly bufferSize: number;
  private readonly maxPausedBehind: number;
  private readonly now: () => number;
  private readonly replays: ReplayPool;
  /** Set while the shared watch is disconnected: when it fires, subscribers are ended. */
  private disconnectedTimer: NodeJS.Timeout | undefined;
  /** Why subscribers are ended now: the shared watch has been disconnected too long. */
  private offline: string | undefined;

  constructor(private readonly o: StateFeedOptions) {
    this.bufferSize = o.bufferSize ?? 10_000;
    this.maxPausedBehind = o.maxPausedBehind ?? 1000;
    this.now = o.now ?? Date.now;
    this.replays = new ReplayPool({
      source: o.source,
      keys: o.keys,
      floor: () => this.floor,
      firstBuffered: () => this.buffer[0]?.revision,
      ...(o.replayWatches !== undefined ? { slots: o.replayWatches } : {}),
      ...(o.replayChunk !== undefined ? { chunk: o.replayChunk } : {}),
      mark: o.markReplay,
      ...(o.lookUpPrevious ? { lookUpPrevious: o.lookUpPrevious } : {}),
      onMarkFailed: (err) => o.logger.warn('a replay could not write its marker; the subscriber resumes again', { key: o.keys.replayMarker, error: errorMessage(err) }),
      now: this.now,
    });
  }

  /** Starts the shared watch; resolves once etcd confirmed it. */
  start(): Promise<void> {
    if (this.watch) return this.ready();
    this.stopped = false;
    // cancelIfBehind: a reconnect to an etcd restored behind the watch's revision ends it (and
    // the feed restarts) instead of waiting in silence for the other history to pass it.
    this.watch = this.o.source.watch({ ...stateRange(this.o.keys, 0), cancelIfBehind: true }, {
      onCreated: (revision) => {
        this.connected();
        if (this.floor === Number.POSITIVE_INFINITY) this.floor = revision;
        for (const w of this.readyWaiters.splice(0)) w();
      },
      onEvents: (events) => {
        this.connected();
        const lost = unknownPreviousAt(this.o.keys, events);
        if (lost !== undefined) return this.previousCompacted(lost);
        this.publish(stateChanges(this.o.keys, events, this.now()));
      },
      onProgress: () => this.connected(),
      onCompacted: (rev) => this.restart(`the shared watch fell behind a compaction at ${rev}`),
      onCanceled: (reason) => this.restart(`etcd canceled the shared watch: ${reason}`),
      // etcd came back with another history (cancelIfBehind): every position is stale.
      onBehind: (reason) => this.historyReplaced(`the shared watch found ${reason}`),
      onDisconnected: (err) => this.disconnected(err),
    });
    return this.ready();
  }

  private disconnected(err: Error): void {
    this.o.logger.debug('state feed watch reconnecting', { error: errorMessage(err) });
    if (this.disconnectedTimer !== undefined || this.offline !== undefined) return;
    const ms = this.o.disconnectedCutMs ?? 5000;
    this.disconnectedTimer = setTimeout(() => {
      this.disconnectedTimer = undefined;
      this.offline = `this replica has not reached etcd for ${Math.round(ms / 1000)} s (${errorMessage(err)})`;
      this.o.logger.warn('state feed cut off from etcd: subscribers ended, to resume on another replica', { afterMs: ms, subscribers: this.subs.size, error: errorMessage(err) });
      for (const s of [...this.subs]) s.end({ kind: 'restarted', detail: this.offline });
    }, ms);
    this.disconnectedTimer.unref();
  }

  /** A sign of life from the shared watch: subscribers are served again. */
  private connected(): void {
    clearTimeout(this.disconnectedTimer);
    this.disconnectedTimer = undefined;
    if (this.offline !== undefined) this.o.logger.info('state feed reached etcd again');
    this.offline = undefined;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.disconnectedTimer);
    this.disconnectedTimer = undefined;
    this.offline = undefined;
    this.watch?.close();
    this.watch = undefined;
    for (const s of [...this.subs]) s.end({ kind: 'stopped' });
    this.replays.stop('the feed stopped');
    if (this.fanOut) clearImmediate(this.fanOut);
    this.fanOut = undefined;
    this.due.clear();
  }

  /** Open subscriptions (live, paused, replaying or waiting for the start). */
  get subscribers(): number {
    return this.subs.size;
  }

  /** The etcd watches this feed holds: the shared one, plus the replays' (at most `replayWatches`). */
  get etcdWatches(): number {
    return (this.watch ? 1 : 0) + this.replays.watches;
  }

  /** Whether the shared watch is open. */
  get watching(): boolean {
    return this.watch !== undefined;
  }

  subscribe(filter: SubscriptionFilter, sink: ChangeSink): Subscription {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.watch && !this.stopped) void this.start();
    const sub = new Subscriber(filter, sink, {
      resumed: (s) => this.advance(s),
      closed: (s) => {
        this.subs.delete(s);
        if (this.subs.size === 0) this.idleSoon();
      },
    });
    this.subs.add(sub);
    // Never from inside subscribe(): the caller does not hold the subscription yet.
    queueMicrotask(() => {
      if (this.offline !== undefined) return sub.end({ kind: 'restarted', detail: this.offline });
      // Not started yet: the position "now" is not known until etcd confirms the shared watch.
      if (this.floor === Number.POSITIVE_INFINITY) void this.ready().then(() => this.attach(sub));
      else this.attach(sub);
    });
    return sub;
  }

  private attach(sub: Subscriber): void {
    if (sub.closed) return;
    const since = sub.filter.sinceRevision;
    if (since !== undefined && since > this.newest && this.o.etcdRevision) {
      // Past what the feed has seen: usually only because etcd's revision moved on keys that are
      // not states; past etcd's own only when the client's revision is from another history.
      this.o.etcdRevision().then(
        (etcdRevision) => {
          if (sub.closed) return;
          if (since > etcdRevision) sub.end({ kind: 'future', sinceRevision: since, etcdRevision });
          else this.placeAfter(sub, since);
        },
        (err: unknown) => {
          if (!sub.closed) sub.end({ kind: 'restarted', detail: `etcd's revision could not be read (${errorMessage(err)})` });
        },
      );
      return;
    }
    // A resume the buffer holds is served from it, also when etcd has compacted the revision since:
    // the buffer has every change after it, in order. Refusing it (OUT_OF_RANGE, as etcd would)
    // left a quiet type impossible to follow after a compaction (found by black-box probing: a list
    // says the revision of the type's last change, every resume from there was refused, and listing
    // again gave the same revision for as long as the type stayed quiet). Older than the buffer, the
    // replay is etcd's, which answers a compacted revision as such.
    this.placeAfter(sub, since ?? this.newest);
  }

  /** Starts a subscriber after `after`: its replay first, then the buffer, then live. */
  private placeAfter(sub: Subscriber, after: number): void {
    sub.passed(after);
    sub.mode = 'replay';
    this.advance(sub);
  }

  private idleSoon(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.subs.size > 0 || !this.watch) return;
      this.watch.close();
      this.watch = undefined;
      // A cut-off was the closed watch's: the next one starts as at a fresh start (kept, it
      // refused the first subscriber after etcd was back).
      clearTimeout(this.disconnectedTimer);
      this.disconnectedTimer = undefined;
      this.offline = undefined;
      this.buffer.length = 0;
      this.base = 0;
      this.floor = Number.POSITIVE_INFINITY;
      this.replays.bufferReset();
    }, this.o.idleStopMs ?? 60_000);
    this.idleTimer.unref();
  }

  private ready(): Promise<void> {
    if (this.floor !== Number.POSITIVE_INFINITY) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** The newest revision the feed has accounted for. */
  private get newest(): number {
    const last = this.buffer[this.buffer.length - 1];
    return Math.max(this.floor, last?.revision ?? -1);
  }

  /** Sequence number one past the newest buffered change. */
  private get head(): number {
    return this.base + this.buffer.length;
  }

  /** Moves a subscriber on as far as its sink takes: its replay, then the buffer, then live. */
  private advance(sub: Subscriber): void {
    while (!sub.closed && !sub.paused) {
      if (sub.mode === 'buffer') {
        if (sub.cursor < this.base) return this.cut(sub);
        const stop = sub.take(this.buffer, sub.cursor - this.base);
        sub.cursor = this.base + stop;
        if (sub.paused) sub.pausedAt = this.head;
        return;
      }
      if (sub.mode !== 'replay') return;
      if (sub.chunk) {
        sub.chunkAt = sub.take(sub.chunk.records, sub.chunkAt);
        if (sub.paused) sub.pausedAt = this.head;
        if (sub.chunkAt < sub.chunk.records.length) return;
        sub.passed(sub.chunk.through);
        sub.chunk = undefined;
        continue;
      }
      if (sub.fetching || sub.awaitingStart) return;
      if (this.floor === Number.POSITIVE_INFINITY) {
        // Between shared watches: where the next buffer starts is not known yet. A replay now
        // could only end at its marker, and the next one at another, for as long as this lasts.
        sub.awaitingStart = true;
        void this.ready().then(() => {
          sub.awaitingStart = false;
          this.advance(sub);
        });
        return;
      }
      if (sub.after >= this.floor) {
        // Reached the buffer: from here on, the shared stream.
        sub.mode = 'buffer';
        sub.cursor = this.base + this.firstAfter(sub);
        continue;
      }
      this.fetch(sub);
      return;
    }
  }

  private fetch(sub: Subscriber): void {
    let answered = false;
    const cancel = this.replays.fetch(sub.after, (outcome) => {
      answered = true;
      sub.fetching = undefined;
      if (sub.closed) return;
      if (!outcome.ok) {
        sub.end(outcome.compactRevision !== undefined ? { kind: 'compacted', compactRevision: outcome.compactRevision } : { kind: 'restarted', detail: outcome.detail });
        return;
      }
      sub.chunk = outcome.chunk;
      sub.chunkAt = 0;
      this.advance(sub);
    });
    // The pool answers at once when the records are already in hand (a parked watch holding a
    // chunk's worth); then there is nothing left to cancel, and keeping `cancel` would mark the
    // subscriber as fetching for good: it stalled with its stream open (found by black-box
    // probing: 14 of 20 far resumes stopped 27,000–65,000 changes in).
    if (!answered) sub.fetching = cancel;
  }

  /** Index of the first buffered change after the subscriber's position. */
  private firstAfter(sub: Subscriber): number {
    let lo = 0;
    let hi = this.buffer.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sub.has(this.buffer[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private cut(sub: Subscriber): void {
    // A subscriber still taking (not paused) was left behind by the slices: behind from its cursor.
    sub.end({ kind: 'slow', resumeRevision: sub.after, behind: this.head - (sub.paused ? sub.pausedAt : sub.cursor) });
  }

  private publish(records: StateChangeRecord[]): void {
    if (records.length === 0) return;
    this.buffer.push(...records);
    const excess = this.buffer.length - this.bufferSize;
    for (const s of [...this.subs]) {
      if (s.paused && this.head - s.pausedAt > this.maxPausedBehind) this.cut(s);
      else if (s.mode === 'buffer' && s.paused && excess > 0 && s.cursor < this.base + excess) this.cut(s);
      else if (s.mode === 'buffer') this.due.add(s);
    }
    if (this.due.size > 0) this.fanOut ??= setImmediate(() => this.handOut());
    if (excess > 0) {
      // A subscriber still to take changes the trim would drop takes them now: only a paused one
      // (its sink full) loses its place, as before the slices.
      for (const s of this.due) {
        if (s.cursor >= this.base + excess) continue;
        this.due.delete(s);
        if (s.mode === 'buffer' && !s.closed) this.advance(s);
      }
      const dropped = this.buffer.splice(0, excess);
      this.base += excess;
      this.floor = Math.max(this.floor, dropped[dropped.length - 1]!.revision);
    }
  }

  /** One slice of handing out new changes; the rest in the next turn of the event loop. */
  private handOut(): void {
    this.fanOut = undefined;
    const until = performance.now() + (this.o.fanOutSliceMs ?? 5);
    for (const s of this.due) {
      this.due.delete(s);
      if (s.mode === 'buffer' && !s.closed) this.advance(s);
      if (performance.now() >= until) break;
    }
    if (this.due.size > 0) this.fanOut = setImmediate(() => this.handOut());
  }

  /** The shared watch broke for good: start again from now; subscribers on it must resume. */
  /**
   * etcd's history was replaced (restored from an older backup, a new volume; the informers found
   * it): the buffer and every subscriber's position belong to the old one. Drop the buffer, end
   * every subscriber (replaying ones too) so each resumes against the new history — one that
   * resumes past etcd's revision is told so (`future`) — and watch again from now.
   */
  historyReplaced(detail: string): void {
    const reason = `etcd's history was replaced: ${detail}`;
    this.replays.stop(reason);
    for (const s of [...this.subs]) s.end({ kind: 'restarted', detail: reason });
    this.watch?.close();
    if (this.fanOut) clearImmediate(this.fanOut);
    this.fanOut = undefined;
    this.due.clear();
    this.restart(reason);
  }

  /**
   * etcd sent a change without the state before it (compacted while the shared watch was behind):
   * nothing from this response on is published; subscribers resume from their last revision,
   * where a replay finds the compaction and answers OUT_OF_RANGE (list again).
   */
  private previousCompacted(revision: number): void {
    const watch = this.watch;
    this.restart(`etcd no longer holds the state before the change at revision ${revision} (compacted while the shared watch was behind)`);
    watch?.close();
  }

  private restart(detail: string): void {
    this.o.logger.warn('state feed restarted', { detail });
    this.watch = undefined;
    this.buffer.length = 0;
    this.base = 0;
    this.floor = Number.POSITIVE_INFINITY;
    this.replays.bufferReset();
    // Replaying subscribers go on: they reach the new buffer's floor by replay.
    for (const s of [...this.subs]) if (s.mode === 'buffer') s.end({ kind: 'restarted', detail });
    if (!this.stopped && this.subs.size > 0) void this.start();
  }
}

interface SubscriberHooks {
  resumed(s: Subscriber): void;
  closed(s: Subscriber): void;
}

class Subscriber implements Subscription {
  /** Position: every change up to (revision, index) was given or does not concern this subscriber. */
  after = -1;
  private afterIndex = Number.POSITIVE_INFINITY;
  closed = false;
  /** waiting: for the shared watch to start; replay: from etcd in chunks; buffer: from the feed's buffer, then live. */
  mode: 'waiting' | 'replay' | 'buffer' = 'waiting';
  /** The sink is full: take nothing until resume(). */
  paused = false;
  /** The feed's head when it paused. */
  pausedAt = 0;
  /** Sequence number of the next buffered change to look at (buffer mode). */
  cursor = 0;
  chunk: ReplayChunk | undefined;
  chunkAt = 0;
  /** Cancels the replay fetch under way. */
  fetching: (() => void) | undefined;
  /** Waits for the shared watch to start again before its next replay fetch. */
  awaitingStart = false;

  constructor(
    readonly filter: SubscriptionFilter,
    private readonly sink: ChangeSink,
    private readonly hooks: SubscriberHooks,
  ) {}

  /** Everything up to and including `revision` is accounted for. */
  passed(revision: number): void {
    if (revision > this.after) {
      this.after = revision;
      this.afterIndex = Number.POSITIVE_INFINITY;
    }
  }

  /** Whether the change is at or before the position. */
  has(r: StateChangeRecord): boolean {
    return r.revision < this.after || (r.revision === this.after && r.index <= this.afterIndex);
  }

  /**
   * Gives the records from index `i` on until the sink is full, then stops at the end of that
   * revision (so that the position is a whole revision, a clean place to resume from). Returns
   * the index of the first record not taken.
   */
  take(records: readonly StateChangeRecord[], i: number): number {
    let full = false;
    while (i < records.length && !this.closed) {
      const r = records[i++]!;
      if (this.has(r)) continue;
      this.after = r.revision;
      this.afterIndex = r.index;
      if ((this.filter.kind === undefined || r.kind === this.filter.kind) && (this.filter.name === undefined || r.name === this.filter.name)) {
        if (!this.sink.send(r)) full = true;
      }
      if (full && records[i]?.revision !== r.revision) {
        this.paused = true;
        break;
      }
    }
    return i;
  }

  resume(): void {
    if (this.closed || !this.paused) return;
    this.paused = false;
    this.hooks.resumed(this);
  }

  end(reason: SubscriptionEnd): void {
    if (this.closed) return;
    this.close();
    this.sink.end(reason);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunk = undefined;
    this.fetching?.();
    this.fetching = undefined;
    this.hooks.closed(this);
  }
}
