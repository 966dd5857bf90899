// Replays of changes older than the feed's buffer, through a bounded number of etcd watches
// however many subscribers resume at once. A replay is fetched in chunks: a watch from the
// subscriber's position opens, gathers up to `chunk` changes (or everything up to the buffer),
// and closes; the subscriber drains that chunk at its own pace and asks for the next. At most
// `slots` watches are open; further fetches wait in order. Subscribers resuming from the same
// position share one fetch (a flood of identical resumes costs one watch).
import type { KeyLayout } from '../../domain/keys.js';
import type { EtcdWatch, EtcdWatchHandlers, WatchTarget } from '../etcd/watch-client.js';
import { replayRange, stateChanges, stateRange, type StateChangeRecord } from './records.js';

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
   * Without it (tests with fakes) a fetch asks etcd for progress instead, which etcd before 3.4.25
   * / 3.5.8 answers before a new watch has sent its history (etcd #15220): measured on 3.4.23, a
   * replay behind 150,000 revisions ended after 1,000 of 4,688 changes
   * (test/etcd/replay-progress.test.ts).
   */
  mark?: () => Promise<number>;
  /** How often a fetch without `mark` asks etcd whether it has caught up (only with an empty buffer). Default 100 ms. */
  progressIntervalMs?: number;
  /** Told when a marker could not be written (the fetch then fails; its subscriber resumes again). */
  onMarkFailed?: (err: unknown) => void;
  now?: () => number;
}

type Done = (o: ReplayOutcome) => void;

interface Fetch {
  after: number;
  waiters: Set<Done>;
  records: StateChangeRecord[];
  through: number;
  watch?: EtcdWatch;
  ticker?: NodeJS.Timeout;
  over: boolean;
  running?: boolean;
  progressAnswers: number;
}

export class ReplayPool {
  private readonly queue: Fetch[] = [];
  /** Fetches queued or running, by start, so identical resumes share one. */
  private readonly byStart = new Map<number, Fetch>();
  private running = 0;
  private readonly slots: number;
  private readonly chunk: number;

  constructor(private readonly o: ReplayPoolOptions) {
    this.slots = o.slots ?? 4;
    this.chunk = o.chunk ?? 500;
  }

  /** etcd watches open for replays now (never more than `slots`). */
  get watches(): number {
    return this.running;
  }

  /** Fetches waiting for a slot. */
  get waiting(): number {
    return this.queue.length;
  }

  /** The changes after `after` (a chunk of them); returns a cancel that drops this interest. */
  fetch(after: number, done: Done): () => void {
    let f = this.byStart.get(after);
    if (!f) {
      f = { after, waiters: new Set(), records: [], through: after, over: false, progressAnswers: 0 };
      this.byStart.set(after, f);
      this.queue.push(f);
    }
    const fetch = f;
    // One function object per interest, so the same callback may wait twice without clashing.
    const waiter: Done = (o) => done(o);
    fetch.waiters.add(waiter);
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
  }

  private next(): void {
    while (this.running < this.slots && this.queue.length > 0) this.open(this.queue.shift()!);
  }

  private open(f: Fetch): void {
    this.running++;
    f.running = true;
    const now = this.o.now ?? Date.now;
    // With an empty buffer and a marker to write: the marker is the change the fetch waits for.
    // (While the feed is between watches its floor is unknown; then progress, as before.)
    const marking = this.o.mark !== undefined && this.o.firstBuffered() === undefined && Number.isFinite(this.o.floor());
    let markedAt = Number.POSITIVE_INFINITY;
    const handlers: EtcdWatchHandlers = {
      onEvents: (events) => {
        f.records.push(...stateChanges(this.o.keys, events, now()));
        f.through = Math.max(f.through, Number(events[events.length - 1]!.kv.mod_revision));
        // etcd sends whole revisions per response, in order: stopping between responses splits
        // none, and an event at or past the floor means every older one came. Such an event is
        // sure to come while the buffer holds a change (its oldest is one), or once the marker
        // is written.
        if (f.records.length >= this.chunk || f.through >= this.o.floor() || f.through >= markedAt) this.done(f);
      },
      onProgress: (revision) => {
        // Only with an empty buffer (no change to wait for) and no marker. etcd before 3.4.25 /
        // 3.5.8 answers a progress request at once, even before a new watch sent its history
        // (etcd #15220): the first answer is not trusted, the second comes a whole interval later.
        if (marking || this.o.firstBuffered() !== undefined || ++f.progressAnswers < 2) return;
        f.through = Math.max(f.through, revision);
        this.done(f);
      },
      onCompacted: (rev) => this.finish(f, { ok: false, compactRevision: rev, detail: `revision compacted at ${rev}` }),
      onCanceled: (reason) => this.finish(f, { ok: false, detail: `etcd canceled the replay: ${reason}` }),
    };
    // cancelIfBehind: a replay from past etcd's revision (etcd restored behind it) ends at once.
    f.watch = this.o.source.watch({ ...(marking ? replayRange : stateRange)(this.o.keys, f.after + 1), cancelIfBehind: true }, handlers);
    if (marking) {
      this.o.mark!().then(
        (revision) => {
          markedAt = revision;
          // The marker's event may already have come (through is past it): done.
          if (!f.over && f.through >= revision) this.done(f);
        },
        (err: unknown) => {
          this.o.onMarkFailed?.(err);
          this.finish(f, { ok: false, detail: `cannot mark the end of the replay: ${err instanceof Error ? err.message : String(err)}` });
        },
      );
      return;
    }
    f.ticker = setInterval(() => f.watch?.requestProgress(), this.o.progressIntervalMs ?? 100);
    f.ticker.unref();
  }

  private done(f: Fetch): void {
    this.finish(f, { ok: true, chunk: { records: f.records, through: f.through } });
  }

  private finish(f: Fetch, outcome: ReplayOutcome): void {
    if (f.over) return;
    const waiters = [...f.waiters];
    this.end(f);
    for (const w of waiters) w(outcome);
  }

  /** Frees the fetch's watch and slot (once) and lets the next one start. */
  private end(f: Fetch): void {
    if (f.over) return;
    f.over = true;
    if (this.byStart.get(f.after) === f) this.byStart.delete(f.after);
    f.waiters.clear();
    const i = this.queue.indexOf(f);
    if (i >= 0) this.queue.splice(i, 1);
    if (f.running) {
      clearInterval(f.ticker);
      f.watch?.close();
      f.watch = undefined;
      this.running--;
    }
    this.next();
  }
}
