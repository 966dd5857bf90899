// Replays of changes older than the feed's buffer, through a bounded number of etcd watches
// however many subscribers resume at once. A replay is fetched in chunks: a watch from the
// subscriber's position opens, gathers up to `chunk` changes (or everything up to the buffer),
// and pauses; the subscriber drains that chunk at its own pace and asks for the next, which the
// same watch goes on to gather. At most `slots` watches are open; further fetches wait in order,
// and a paused watch nobody is asking of gives its slot to them. Subscribers resuming from the
// same position share one fetch (a flood of identical resumes costs one watch).
//
// Why the watch is kept: etcd reads its history from a watch's start revision up to now when the
// watch opens, however little of it is then taken. With a watch per chunk of 500, a resume 100,000
// changes back cost etcd 53 s of CPU (found by black-box probing; 20 such resumes kept both cores
// busy for four minutes); with one watch, 27–33 s. The rest is etcd 3.4 catching up a watch far
// behind (its first chunk alone took 8–10 s), over a range that also holds statemanager's history
// keys, with previous values asked (see docs/state-api.md).
import type { KeyLayout } from '../../domain/keys.js';
import type { EtcdWatch, EtcdWatchHandlers, WatchTarget } from '../etcd/watch-client.js';
import { replayRange, stateChanges, stateRange, type StateChangeRecord } from './records.js';
import { ReplayDecoder, ReplayLookupCompacted, type LookUpPrevious } from './replay-decoder.js';

export interface WatchSource {
  watch(target: WatchTarget, handlers: EtcdWatchHandlers): EtcdWatch;
}

export interface ReplayChunk {
  /** The state changes after the fetch's start, in order. */
  records: readonly StateChangeRecord[];
  /** Every change up to this revision is in `records` (whole revisions). */
  through: number;
}

export type ReplayOutcome = { ok: true; chunk: ReplayChunk } | { ok: false; compactRevision?: number; detail: string };

export interface ReplayPoolOptions {
  source: WatchSource;
  keys: KeyLayout;
  /** Every change after this revision is in the feed's buffer: a fetch may stop there. */
  floor: () => number;
  /**
   * The revision of the oldest change in the buffer (undefined when it is empty): an event in the
   * watched range, so a replay is sure to receive it, and once it did, it has every older one.
   */
  firstBuffered: () => number | undefined;
  /** etcd watches open at once for replays. Default 4. */
  slots?: number;
  /** Changes per fetch (what one subscriber may hold in memory). Default 500. */
  chunk?: number;
  /**
   * Puts statemanager's replay marker (`keys.replayMarker`) and answers its revision. With an
   * empty buffer a fetch has no change it is sure to receive, so it writes the marker and watches
   * the state keys and the marker together: once the marker's event came, every older change did.
   * Not etcd's progress answers: etcd before 3.4.25 / 3.5.8 answers a progress request on its own,
   * out of order with the watch's events (etcd #15220). A replay ending on them lost changes behind
   * 150,000 revisions (test/etcd/replay-progress.test.ts) and, with its watch paused between chunks,
   * the changes after its last full chunk (test/etcd/replay-paused.test.ts).
   */
  mark: () => Promise<number>;
  /** How long a paused watch waits for its subscriber's next ask before it is closed. Default 10 s. */
  parkMs?: number;
  /**
   * How long a paused watch keeps its slot while other fetches wait for one. A subscriber that
   * reads asks again within milliseconds; one that does not gives way. Default 1 s.
   */
  yieldAfterMs?: number;
  /**
   * Reads keys' values just before their first change in a replay, so its watch need not ask etcd
   * for every event's previous value (src/state-api/replay-decoder.ts). A failed look-up fails the
   * fetch (its subscriber resumes again); one that finds the revision compacted should throw a
   * `ReplayLookupCompacted`. Without it (tests with fakes) the watch asks for prev_kv.
   */
  lookUpPrevious?: LookUpPrevious;
  /** Told when a marker could not be written (the fetch then fails; its subscriber resumes again). */
  onMarkFailed?: (err: unknown) => void;
  /** Wall-clock ms: the time of each change replayed. */
  now?: () => number;
  /** Monotonic ms: how long a watch has been parked (default performance.now). */
  elapsed?: () => number;
}

type Done = (o: ReplayOutcome) => void;

interface Fetch {
  after: number;
  waiters: Set<Done>;
  records: StateChangeRecord[];
  through: number;
  watch?: EtcdWatch;
  over: boolean;
  running?: boolean;
  /** The marker's revision once written: the fetch ends at it. */
  markedAt: number;
  /** Paused after a whole chunk, waiting for the next ask at `after` (closed when this fires). */
  parked?: NodeJS.Timeout;
  parkedAt: number;
  /** Ends at its marker (the buffer was empty when it opened), not only at the floor. */
  marking?: boolean;
  /** Turns responses into changes when the watch has no prev_kv (lookUpPrevious). */
  decoder?: ReplayDecoder;
}

export class ReplayPool {
  private readonly queue: Fetch[] = [];
  /** Fetches queued, running or parked, by start, so identical resumes share one. */
  private readonly byStart = new Map<number, Fetch>();
  /** Running fetches whose watch is paused between chunks, oldest first. */
  private readonly parked = new Set<Fetch>();
  private running = 0;
  private opened = 0;
  /** Runs `next` when the oldest paused watch may give way to a waiting fetch. */
  private yieldTimer: NodeJS.Timeout | undefined;
  private readonly slots: number;
  private readonly chunk: number;

  constructor(private readonly o: ReplayPoolOptions) {
    this.slots = o.slots ?? 4;
    this.chunk = o.chunk ?? 500;
  }

  private elapsed(): number {
    return this.o.elapsed?.() ?? performance.now();
  }

  /** etcd watches open for replays now (never more than `slots`). */
  get watches(): number {
    return this.running;
  }

  /** Fetches waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** etcd watches opened for replays so far. */
  get watchesOpened(): number {
    return this.opened;
  }

  /** The changes after `after` (a chunk of them); returns a cancel that drops this interest. */
  fetch(after: number, done: Done): () => void {
    let f = this.byStart.get(after);
    if (!f) {
      f = { after, waiters: new Set(), records: [], through: after, over: false, markedAt: Number.POSITIVE_INFINITY, parkedAt: 0 };
      this.byStart.set(after, f);
      this.queue.push(f);
    }
    const fetch = f;
    // One function object per interest, so the same callback may wait twice without clashing.
    const waiter: Done = (o) => done(o);
    fetch.waiters.add(waiter);
    if (fetch.parked) this.unpark(fetch);
    this.next();
    return () => {
      if (!fetch.waiters.delete(waiter) || fetch.waiters.size > 0) return;
      // Nobody wants it any more.
      const i = this.queue.indexOf(fetch);
      if (i >= 0) this.queue.splice(i, 1);
      this.end(fetch);
    };
  }

  /** Ends every fetch, queued or running. */
  stop(detail: string): void {
    for (const f of [...this.byStart.values()]) this.finish(f, { ok: false, detail });
    clearTimeout(this.yieldTimer);
    this.yieldTimer = undefined;
  }

  /**
   * The feed's buffer was emptied (its watch restarted, or stopped for want of subscribers): a
   * fetch opened without a marker waits for a buffered change that may now never come. It ends
   * with what it has (every change up to its `through`: responses are whole revisions), a parked
   * one closes, and its subscriber asks again from there, against the new buffer.
   */
  bufferReset(): void {
    for (const f of [...this.byStart.values()]) {
      if (!f.running || f.marking || f.over) continue;
      if (f.parked) this.end(f);
      else this.done(f);
    }
  }

  private next(): void {
    while (this.queue.length > 0) {
      if (this.running < this.slots) {
        this.open(this.queue.shift()!);
        continue;
      }
      // A paused watch nobody has asked of for a while yields its slot; its subscriber opens
      // another later. Sooner, and every chunk would open a watch again (what this pool avoids).
      const idle: Fetch | undefined = this.parked.values().next().value;
      if (idle === undefined) return;
      const now = this.elapsed();
      const yieldAt = idle.parkedAt + (this.o.yieldAfterMs ?? 1000);
      if (now < yieldAt) {
        if (this.yieldTimer === undefined) {
          this.yieldTimer = setTimeout(() => {
            this.yieldTimer = undefined;
            this.next();
          }, yieldAt - now);
          this.yieldTimer.unref();
        }
        return;
      }
      this.end(idle, false);
    }
  }

  private open(f: Fetch): void {
    this.running++;
    this.opened++;
    f.running = true;
    const now = this.o.now ?? Date.now;
    // With an empty buffer the marker is the change the fetch waits for (also while the feed is
    // between watches: its next buffer starts at a revision not known yet).
    f.marking = this.o.firstBuffered() === undefined;
    const changes = (records: StateChangeRecord[], through: number): void => {
      f.records.push(...records);
      f.through = Math.max(f.through, through);
      // Responses the client had already received when it paused: kept for the next ask.
      if (!f.parked) this.check(f);
    };
    const lookUp = this.o.lookUpPrevious;
    if (lookUp) {
      f.decoder = new ReplayDecoder({
        keys: this.o.keys,
        lookUp,
        onChanges: changes,
        onError: (err) =>
          this.finish(
            f,
            err instanceof ReplayLookupCompacted
              ? { ok: false, compactRevision: err.revision + 1, detail: `revision compacted past ${err.revision}` }
              : { ok: false, detail: `cannot read the states before the replay: ${err instanceof Error ? err.message : String(err)}` },
          ),
        now,
      });
    }
    const decoder = f.decoder;
    const handlers: EtcdWatchHandlers = {
      onEvents: (events) => {
        if (decoder) decoder.push(events);
        else changes(stateChanges(this.o.keys, events, now()), Number(events[events.length - 1]!.kv.mod_revision));
      },
      onCompacted: (rev) => this.finish(f, { ok: false, compactRevision: rev, detail: `revision compacted at ${rev}` }),
      onCanceled: (reason) => this.finish(f, { ok: false, detail: `etcd canceled the replay: ${reason}` }),
    };
    // cancelIfBehind: a replay from past etcd's revision (etcd restored behind it) ends at once.
    f.watch = this.o.source.watch({ ...(f.marking ? replayRange : stateRange)(this.o.keys, f.after + 1, decoder === undefined), cancelIfBehind: true }, handlers);
    if (f.marking) {
      this.o.mark().then(
        (revision) => {
          f.markedAt = revision;
          // The marker's event may already have come (through is past it): done. A paused fetch
          // is checked at its next ask (unpark).
          if (!f.over && !f.parked && f.through >= revision) this.done(f);
        },
        (err: unknown) => {
          this.o.onMarkFailed?.(err);
          this.finish(f, { ok: false, detail: `cannot mark the end of the replay: ${err instanceof Error ? err.message : String(err)}` });
        },
      );
    }
  }

  /**
   * etcd sends whole revisions per response, in order: stopping between responses splits none,
   * and an event at or past the floor means every older one came. Such an event is sure to come
   * while the buffer holds a change (its oldest is one), or once the marker is written.
   */
  private check(f: Fetch): void {
    if (f.through >= this.o.floor() || f.through >= f.markedAt) this.done(f);
    else if (f.records.length >= this.chunk) this.park(f);
  }

  private done(f: Fetch): void {
    this.finish(f, { ok: true, chunk: { records: f.records, through: f.through } });
  }

  /** A whole chunk, short of the end: answered, and the watch paused at its end for the next ask. */
  private park(f: Fetch): void {
    const waiters = [...f.waiters];
    const chunk: ReplayChunk = { records: f.records, through: f.through };
    if (this.byStart.get(f.after) === f) this.byStart.delete(f.after);
    f.waiters.clear();
    f.records = [];
    f.after = f.through;
    if (this.byStart.has(f.after) || !f.watch) {
      this.end(f); // another fetch already starts there
    } else {
      this.byStart.set(f.after, f);
      f.watch.pause();
      this.parked.add(f);
      f.parkedAt = this.elapsed();
      f.parked = setTimeout(() => this.end(f), this.o.parkMs ?? 10_000);
      f.parked.unref();
      this.next();
    }
    for (const w of waiters) w({ ok: true, chunk });
  }

  /** Its subscriber asks again: read on from where the watch stopped. */
  private unpark(f: Fetch): void {
    clearTimeout(f.parked);
    f.parked = undefined;
    this.parked.delete(f);
    f.watch?.resume();
    // What arrived while paused may already make a chunk, or reach the end: also a response with
    // no state change that passed the marker, or the marker's answer that came meanwhile (checked
    // only when changes had arrived, such a fetch hung with its slot until an unrelated write).
    this.check(f);
  }

  private finish(f: Fetch, outcome: ReplayOutcome): void {
    if (f.over) return;
    const waiters = [...f.waiters];
    this.end(f);
    for (const w of waiters) w(outcome);
  }

  /** Frees the fetch's watch and slot (once) and lets the next one start. */
  private end(f: Fetch, next = true): void {
    if (f.over) return;
    f.over = true;
    clearTimeout(f.parked);
    f.parked = undefined;
    this.parked.delete(f);
    if (this.byStart.get(f.after) === f) this.byStart.delete(f.after);
    f.waiters.clear();
    const i = this.queue.indexOf(f);
    if (i >= 0) this.queue.splice(i, 1);
    f.decoder?.close();
    if (f.running) {
      f.watch?.close();
      f.watch = undefined;
      this.running--;
    }
    if (next) this.next();
  }
}
