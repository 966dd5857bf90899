// Every committed state change (model, package, scenario) from ONE etcd watch, fanned out to any
// number of subscribers, with a bounded buffer of recent changes so that a subscriber resuming
// from a recent revision is served without touching etcd. A subscriber resuming from before the
// buffer gets its own replay watch from that revision until it reaches the buffer, then joins
// the shared stream: no gap and no duplicate at the seam, because every record carries its
// revision and a subscriber only ever receives revisions after the last one it was given.
import type { Logger } from '../../controller/logger.js';
import { errorMessage } from '../../controller/errors.js';
import type { KeyLayout } from '../../reconcilers/keys.js';
import { parseState, type ResourceKind } from '../../reconcilers/states.js';
import type { EtcdWatch, EtcdWatchEvent, EtcdWatchHandlers, WatchTarget } from '../etcd/watch-client.js';

export interface StateChangeRecord {
  kind: ResourceKind;
  name: string;
  /** The state before ('' for a new resource), in the spelling statemanager writes when it is one. */
  from: string;
  /** The state after ('' when the state key was deleted). */
  to: string;
  revision: number;
  /** Position among the changes of one revision (a transaction may change several keys). */
  index: number;
  /** When this replica saw the change (epoch ms). */
  seenAt: number;
}

/** What the feed needs of etcd: watches with previous values and progress requests. */
export interface WatchSource {
  watch(target: WatchTarget, handlers: EtcdWatchHandlers): EtcdWatch;
}

export interface SubscriptionFilter {
  kind?: ResourceKind;
  name?: string;
  /** Replay every change after this revision first. */
  sinceRevision?: number;
}

/** Where a subscription's changes go. Never blocks: a sink that cannot keep up ends itself. */
export interface ChangeSink {
  send(record: StateChangeRecord): void;
  /** The subscription can no longer be served: compacted (resume impossible) or the feed stopped. */
  end(reason: SubscriptionEnd): void;
}

export type SubscriptionEnd = { kind: 'compacted'; compactRevision: number } | { kind: 'restarted'; detail: string } | { kind: 'stopped' };

export interface Subscription {
  close(): void;
}

export interface StateFeedOptions {
  source: WatchSource;
  keys: KeyLayout;
  logger: Logger;
  /** Recent changes kept for resumes. Default 10,000. */
  bufferSize?: number;
  /** How often a replay asks etcd whether it has caught up. Default 200 ms. */
  progressIntervalMs?: number;
  /**
   * The shared watch starts with the first subscriber and stops this long after the last one
   * left (keeping the resume buffer for reconnects meanwhile): with nobody subscribed it costs
   * etcd nothing (its prev_kv lookups are not free). Default 60 s.
   */
  idleStopMs?: number;
  now?: () => number;
}

const KINDS: readonly ResourceKind[] = ['model', 'package', 'scenario'];

export class StateFeed {
  private readonly buffer: StateChangeRecord[] = [];
  /** Every change after this revision is in the buffer (or delivered live from now on). */
  private floor = Number.POSITIVE_INFINITY;
  private readonly live = new Set<Subscriber>();
  private watch: EtcdWatch | undefined;
  private readyWaiters: (() => void)[] = [];
  private stopped = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly bufferSize: number;
  private readonly now: () => number;

  constructor(private readonly o: StateFeedOptions) {
    this.bufferSize = o.bufferSize ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  /** Starts the shared watch; resolves once etcd confirmed it. */
  start(): Promise<void> {
    if (this.watch) return this.ready();
    this.stopped = false;
    this.watch = this.o.source.watch(this.range(0), {
      onCreated: (revision) => {
        if (this.floor === Number.POSITIVE_INFINITY) this.floor = revision;
        for (const w of this.readyWaiters.splice(0)) w();
      },
      onEvents: (events) => this.publish(this.records(events)),
      onCompacted: (rev) => this.restart(`the shared watch fell behind a compaction at ${rev}`),
      onCanceled: (reason) => this.restart(`etcd canceled the shared watch: ${reason}`),
      onDisconnected: (err) => this.o.logger.debug('state feed watch reconnecting', { error: errorMessage(err) }),
    });
    return this.ready();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    this.watch?.close();
    this.watch = undefined;
    for (const s of [...this.live]) s.end({ kind: 'stopped' });
    this.live.clear();
  }

  /** Open subscriptions (live and replaying). */
  get subscribers(): number {
    return this.live.size + this.replaying;
  }

  /** The etcd watches this feed holds: one, plus one per subscriber replaying from before the buffer. */
  get etcdWatches(): number {
    return (this.watch ? 1 : 0) + this.replaying;
  }

  private replaying = 0;

  subscribe(filter: SubscriptionFilter, sink: ChangeSink): Subscription {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.watch && !this.stopped) void this.start();
    this.open++;
    let counted = true;
    const sub = new Subscriber(filter, sink, () => {
      this.live.delete(sub);
      if (counted) {
        counted = false;
        this.open--;
        if (this.open === 0) this.idleSoon();
      }
    });
    // Not started yet: the position "now" is not known until etcd confirms the shared watch.
    if (this.floor === Number.POSITIVE_INFINITY) void this.ready().then(() => this.attach(sub, filter.sinceRevision));
    else this.attach(sub, filter.sinceRevision);
    return sub;
  }

  private attach(sub: Subscriber, since: number | undefined): void {
    if (sub.closed) return;
    if (since === undefined) {
      // From now on: what the feed has seen so far is past.
      sub.passed(this.newest);
      this.join(sub);
    } else if (since >= this.floor) {
      sub.passed(since);
      this.join(sub);
    } else {
      this.replay(sub, since);
    }
  }

  /** Subscriptions not yet closed (live, replaying or waiting for the start). */
  private open = 0;

  private idleSoon(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.open > 0 || !this.watch) return;
      this.watch.close();
      this.watch = undefined;
      this.buffer.length = 0;
      this.floor = Number.POSITIVE_INFINITY;
    }, this.o.idleStopMs ?? 60_000);
    this.idleTimer.unref();
  }

  private ready(): Promise<void> {
    if (this.floor !== Number.POSITIVE_INFINITY) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Buffered changes after the subscriber's position, then live; synchronous, so nothing can slip between. */
  private join(sub: Subscriber): void {
    if (sub.closed) return;
    for (const r of this.buffer) sub.deliver(r);
    this.live.add(sub);
  }

  /** The newest revision the feed has accounted for. */
  private get newest(): number {
    const last = this.buffer[this.buffer.length - 1];
    return Math.max(this.floor, last?.revision ?? -1);
  }

  private replay(sub: Subscriber, since: number): void {
    this.replaying++;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      this.replaying--;
      clearInterval(ticker);
      w.close();
    };
    sub.onClose = finish;
    sub.passed(since);
    const catchUp = (): void => {
      // Reached the buffer: hand over to the shared stream.
      if (!done && sub.after >= this.floor) {
        finish();
        sub.onClose = undefined;
        this.join(sub);
      }
    };
    const w = this.o.source.watch(this.range(since + 1), {
      onEvents: (events) => {
        for (const r of this.records(events)) sub.deliver(r);
        catchUp();
      },
      onProgress: (revision) => {
        sub.passed(revision);
        catchUp();
      },
      onCompacted: (rev) => {
        finish();
        sub.end({ kind: 'compacted', compactRevision: rev });
      },
      onCanceled: (reason) => {
        finish();
        sub.end({ kind: 'restarted', detail: `etcd canceled the replay: ${reason}` });
      },
    });
    const ticker = setInterval(() => w.requestProgress(), this.o.progressIntervalMs ?? 200);
    ticker.unref();
  }

  private publish(records: StateChangeRecord[]): void {
    for (const r of records) {
      this.buffer.push(r);
      for (const s of this.live) s.deliver(r);
    }
    const excess = this.buffer.length - this.bufferSize;
    if (excess > 0) {
      const dropped = this.buffer.splice(0, excess);
      this.floor = Math.max(this.floor, dropped[dropped.length - 1]!.revision);
    }
  }

  /** The shared watch broke for good: start again from now; subscribers must resume. */
  private restart(detail: string): void {
    this.o.logger.warn('state feed restarted', { detail });
    this.watch = undefined;
    this.buffer.length = 0;
    this.floor = Number.POSITIVE_INFINITY;
    for (const s of [...this.live]) s.end({ kind: 'restarted', detail });
    this.live.clear();
    if (!this.stopped && this.open > 0) void this.start();
  }

  /** The keys of every state: from `/model/` to the end of `/scenario/` (a few `/node/` and `/package/` keys between are filtered). */
  private range(startRevision: number): WatchTarget {
    const keys = this.o.keys;
    const first = [keys.statePrefix('model'), keys.statePrefix('package'), keys.statePrefix('scenario')].sort();
    const last = first[first.length - 1]!;
    return {
      key: Buffer.from(first[0]!),
      rangeEnd: Buffer.from(last.slice(0, -1) + String.fromCharCode(last.charCodeAt(last.length - 1) + 1)),
      startRevision,
      prevKv: true,
    };
  }

  private records(events: EtcdWatchEvent[]): StateChangeRecord[] {
    const out: StateChangeRecord[] = [];
    const seenAt = this.now();
    let revision = -1;
    let index = 0;
    for (const e of events) {
      const key = e.kv.key.toString('utf8');
      const kind = KINDS.find((k) => this.o.keys.parseStateKey(k, key) !== undefined);
      if (kind === undefined) continue;
      const name = this.o.keys.parseStateKey(kind, key)!;
      const from = e.prev_kv ? spelled(kind, e.prev_kv.value.toString('utf8')) : '';
      const to = e.type === 'Delete' ? '' : spelled(kind, e.kv.value.toString('utf8'));
      // A rewrite of the same state (another writer, another spelling) is not a change.
      if (from === to) continue;
      const rev = Number(e.kv.mod_revision);
      index = rev === revision ? index + 1 : 0;
      revision = rev;
      out.push({ kind, name, from, to, revision: rev, index, seenAt });
    }
    return out;
  }
}

/** The canonical spelling of a state, or the raw value when it is not one. */
function spelled(kind: ResourceKind, raw: string): string {
  return parseState(kind, raw) ?? raw;
}

class Subscriber implements Subscription {
  /** Position: every change up to (revision, index) was given or does not concern this subscriber. */
  after = -1;
  private afterIndex = Number.POSITIVE_INFINITY;
  closed = false;
  onClose: (() => void) | undefined;

  constructor(
    private readonly filter: SubscriptionFilter,
    private readonly sink: ChangeSink,
    private readonly detach: () => void,
  ) {}

  /** Everything up to and including `revision` is accounted for. */
  passed(revision: number): void {
    if (revision > this.after) {
      this.after = revision;
      this.afterIndex = Number.POSITIVE_INFINITY;
    }
  }

  deliver(r: StateChangeRecord): void {
    if (this.closed) return;
    if (r.revision < this.after || (r.revision === this.after && r.index <= this.afterIndex)) return;
    this.after = r.revision;
    this.afterIndex = r.index;
    if (this.filter.kind !== undefined && r.kind !== this.filter.kind) return;
    if (this.filter.name !== undefined && r.name !== this.filter.name) return;
    this.sink.send(r);
  }

  end(reason: SubscriptionEnd): void {
    if (this.closed) return;
    this.close();
    this.sink.end(reason);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    this.onClose?.();
  }
}
