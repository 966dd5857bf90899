// List a prefix, then watch it from the listed revision + 1, keeping an indexed cache and
// telling handlers what changed. A dropped watch resumes from the last revision seen; when that
// revision has been compacted away the informer lists again and reports, as synthetic events,
// whatever changed or disappeared in between — so no change is ever lost, only coalesced.
import { backoffDelay } from './backoff.js';
import { errorMessage } from './errors.js';
import { IndexedCache, type CacheEntry } from './indexed-cache.js';
import { WatchBacklogTooLargeError, WatchCompactedError, type KeyValue, type ListerWatcher, type WatchEvent, type WatchHandle } from './lister-watcher.js';
import { silentLogger, type Logger } from './logger.js';

// `assumed` is set (true) on events of this process's own committed writes: from assume(), or a
// watch event that overtook the write's answer (expectOwnWrite). `initial` is set on events from
// before the informer first synced (its first list filling the cache): work that starts once the
// caches have synced reads the whole level then, so a handler may leave these to it.

/** How long stop() waits for a list or watch call still under way to end. */
export const STOP_WAIT_MS = 1000;

export type InformerEvent<T> =
  | { type: 'added'; key: string; new: CacheEntry<T>; synthetic: boolean; assumed?: true; initial?: true }
  | { type: 'updated'; key: string; old: CacheEntry<T>; new: CacheEntry<T>; synthetic: boolean; assumed?: true; initial?: true }
  | { type: 'deleted'; key: string; old: CacheEntry<T>; synthetic: boolean; assumed?: true; initial?: true };

export type InformerHandler<T> = (event: InformerEvent<T>) => void;

export type WatchRestartReason = 'compacted' | 'backlog_too_large' | 'error' | 'disconnected' | 'history_replaced' | 'fallen_behind' | 'stalled' | 'requested';

export interface InformerMetrics {
  watchRestart(informer: string, reason: WatchRestartReason): void;
  lastRevision(informer: string, revision: number): void;
}

export interface InformerOptions<T> {
  name: string;
  prefix: string;
  lw: ListerWatcher;
  /** Decode a stored value; undefined means "treat the key as absent" (bad input). */
  parse(key: string, value: string): T | undefined;
  logger?: Logger;
  metrics?: InformerMetrics;
  retryBaseMs?: number;
  retryCapMs?: number;
  /**
   * While the watch stays disconnected (it retries about every second), a warning at most this
   * often; the first disconnection always warns, the resumption is logged once. Default 60 s.
   */
  disconnectedWarnEveryMs?: number;
  /** The clock of the disconnection warnings, in monotonic ms: a step of the wall clock must not stretch or cut an interval (default performance.now). */
  now?: () => number;
  /**
   * Revisions the watch may deliver behind the store's head (each response carries the head's
   * revision) before the informer lists again instead: a process stalled for minutes while
   * etcd took 1.4 million writes replayed 233,000 revisions of history for four minutes, and the
   * controllers acted on each old level (stale Error states written, repairs asked for packages
   * long since fine: black-box probing). A list gives the current level at once. Default
   * DEFAULT_MAX_WATCH_LAG; 0: never.
   */
  maxWatchLag?: number;
  /**
   * How long the event loop may go without running (the process stopped, starved, paused) before
   * the next watch response is taken for one that may have waited in the socket since before:
   * the watch is then opened again from the last revision applied, and etcd's answer says how
   * far behind it is (maxWatchLag). Without it, the responses buffered when the process stopped
   * were decided first: 474 transient Error states in a probe. Default DEFAULT_STALL_MS; 0: never.
   */
  stallMs?: number;
  /**
   * A list still under way after this long says how far it got, and again as often (keys so far,
   * the page size): over a narrow link a list of 1,000 containers took minutes with nothing said
   * until it was done (black-box probing). Default LIST_PROGRESS_EVERY_MS; 0: never.
   */
  listProgressEveryMs?: number;
  /** Test-only bug shape (test/sim/mutations.ts): resume watches from the listed revision. Never set otherwise. */
  plantedBugResumeFromListed?: boolean;
}

/** See InformerOptions.listProgressEveryMs. */
export const LIST_PROGRESS_EVERY_MS = 10_000;

/** See InformerOptions.stallMs. */
export const DEFAULT_STALL_MS = 5_000;

/** The process did not run for a while: what the watch delivers now may have waited since. */
export class WatchAfterStallError extends Error {
  constructor(readonly stalledMs: number) {
    super(`the process did not run for ${Math.round(stalledMs)} ms`);
    this.name = 'WatchAfterStallError';
  }
}

/**
 * See InformerOptions.maxWatchLag: well past what a live watch lags under load (a storm of
 * 5,000 writes a second lags a few hundred), and a list of 100,000 keys takes about a second.
 */
export const DEFAULT_MAX_WATCH_LAG = 50_000;

/** The watch delivers changes far behind the store's head: list again rather than replay them. */
export class WatchFallenBehindError extends Error {
  constructor(
    readonly revision: number,
    readonly headRevision: number,
  ) {
    super(`the watch is at revision ${revision}, ${headRevision - revision} revisions behind etcd's ${headRevision}`);
    this.name = 'WatchFallenBehindError';
  }
}

export class Informer<T> {
  readonly cache = new IndexedCache<T>();
  readonly name: string;
  readonly prefix: string;
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly log: Logger;
  /** Deletions we made ourselves, by revision, until the watch has passed them. */
  private readonly tombstones = new Map<string, number>();
  /** Puts this process has sent and not had answered, by key: the value written. */
  private readonly ownWrites = new Map<string, string>();
  private revision = 0;
  private listedRevision = 0;
  /**
   * The store came back behind a revision this cache has seen (restored from an older backup, a
   * new volume): the next list is taken as it is, whatever the revisions it holds.
   */
  private historyReplaced = false;
  /** A list taken as it is is being applied (see historyReplaced). */
  private listTakenAsIs = false;
  /** The revision of the relist being applied, if one is. */
  private relistAt: number | undefined;
  /** Since when the watch has been disconnected (Date.now()), with its retries and last warning. */
  private outage: { since: number; retries: number; warnedAt: number } | undefined;
  /** When a failed list was last logged (Date.now()). */
  private listWarnedAt = 0;
  /** Keys the list under way has handed over so far (its progress lines). */
  private listedKeys = 0;
  private synced = false;
  private stopped = false;
  private running: Promise<void> | undefined;
  private watch: WatchHandle | undefined;
  private wake: (() => void) | undefined;
  /** The newest revision assume() applied (reached by the watch later). */
  private assumedThrough = 0;
  /** Callers of reached() waiting for the cache's revision. */
  private revisionWaiters: { revision: number; resolve: () => void }[] = [];
  private readonly syncWaiters: (() => void)[] = [];
  /** Told when this informer finds the store's history replaced (InformerSet tells the others). */
  private historyListener: ((informer: string, storeRevision: number) => void) | undefined;
  /** Waiting for the next list taken as it is (relistAsIs). */
  private asIsWaiters: (() => void)[] = [];

  constructor(private readonly opts: InformerOptions<T>) {
    this.name = opts.name;
    this.prefix = opts.prefix;
    this.log = opts.logger ?? silentLogger;
  }

  addHandler(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  /** One listener, told when this informer finds the store behind what it has seen. */
  onHistoryReplaced(listener: (informer: string, storeRevision: number) => void): void {
    this.historyListener = listener;
  }

  /**
   * Another informer of the same store found its history replaced: this cache may hold keys of
   * the old history at revisions the new one has reached by other writes, which no revision
   * check can tell (found by black-box probing: caches wrong for good after a restore while the
   * first informers relisted). Stop watching, list again and take the list as it is. Resolves
   * once that list is applied (at once when stopped or not yet synced: its first list is one).
   * `requested`: an operator asked for it (a full resync), whatever the cache may have missed.
   */
  relistAsIs(why: 'history_replaced' | 'requested' = 'history_replaced'): Promise<void> {
    if (this.stopped || !this.synced) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.asIsWaiters.push(resolve));
    if (!this.historyReplaced) {
      this.historyReplaced = true;
      this.opts.metrics?.watchRestart(this.name, why);
      if (why === 'requested') this.log.info('listing again and taking the list as it is, as requested', { informer: this.name, revision: this.revision });
      else this.log.warn('listing again and taking the list as it is: the store\'s history was replaced', { informer: this.name, revision: this.revision });
      this.wake?.();
    }
    return done;
  }

  get lastRevision(): number {
    return this.revision;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    if (this.running) return;
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.revisionWaiters.splice(0)) w.resolve();
    for (const w of this.asIsWaiters.splice(0)) w();
    this.wake?.();
    await this.watch?.close().catch(() => undefined);
    // A list under way to an etcd that does not answer ends only when its call does (the clients
    // are closed after the informers): stopping waits a moment for it, not for etcd. Found by
    // black-box probing: SIGTERM with etcd black-holed took 25 s and ended as "stop took too long".
    // Whatever that call still returns is dropped (stopped).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((r) => (timer = setTimeout(r, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /**
   * Apply a write this process made and knows the commit revision of, before the watch
   * delivers it, so the next reconcile reads its own write (client-go's MutationCache).
   * The watch event for the same revision is then recognised and skipped.
   */
  assume(kv: KeyValue | { key: string; deletedAt: number }): void {
    // The watch may already have delivered this revision, or later ones (a delete by someone
    // else): then the cache is already as new as the write, and applying it would go back.
    const revision = 'deletedAt' in kv ? kv.deletedAt : kv.modRevision;
    if (revision <= this.revision) return;
    if (revision > this.assumedThrough) this.assumedThrough = revision;
    if ('deletedAt' in kv) {
      // Two own writes can answer out of order: a delete older than the cached entry is stale.
      if (this.newerThan(kv.key, kv.deletedAt)) return;
      this.tombstones.set(kv.key, kv.deletedAt);
      this.applyDelete(kv.key, false, true);
      return;
    }
    this.applyPut(kv, false, true);
  }

  /**
   * The newest revision of an own write applied ahead of the watch (assume), when the cache has not
   * reached it yet; else lastRevision. Until the watch brings the cache there, the cache holds
   * that write but maybe not a foreign change made before it.
   */
  get aheadRevision(): number {
    return Math.max(this.revision, this.assumedThrough);
  }

  /** Resolves once lastRevision has reached `revision` (at once if it has); the caller bounds the wait. */
  reached(revision: number): Promise<void> {
    if (this.revision >= revision || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.revisionWaiters.push({ revision, resolve }));
  }

  private revisionMoved(): void {
    if (this.revisionWaiters.length === 0) return;
    const still: { revision: number; resolve: () => void }[] = [];
    for (const w of this.revisionWaiters) {
      if (w.revision <= this.revision) w.resolve();
      else still.push(w);
    }
    this.revisionWaiters = still;
  }

  /**
   * This process is sending a put of `value` to `key`. The watch event of a write often comes
   * before the transaction's answer (a different stream); that event is then known as this
   * process's own (assumed), once: at a cold start a quarter of the state writes came back that
   * way and each queued its key again for nothing. A foreign write of the same value in the same
   * moment would also count as ours, which is harmless: it wrote what we computed, and our own
   * guarded write then fails and is retried from the level.
   */
  expectOwnWrite(key: string, value: string): void {
    this.ownWrites.set(key, value);
  }

  /** The put of `value` to `key` was answered (committed or not): its event is no longer awaited. */
  forgetOwnWrite(key: string, value: string): void {
    if (this.ownWrites.get(key) === value) this.ownWrites.delete(key);
  }

  /** Whether this watched put is the awaited echo of an own write (which it then stops awaiting). */
  private isOwnEcho(kv: KeyValue): boolean {
    // The value is read only for a key with a write awaited (a watched value is decoded when read).
    const awaited = this.ownWrites.size === 0 ? undefined : this.ownWrites.get(kv.key);
    if (awaited === undefined || awaited !== kv.value) return false;
    this.ownWrites.delete(kv.key);
    return true;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!(await this.listAndReplace())) return;
        if (failures > 0) this.log.info('informer listed after failures', { informer: this.name, attempts: failures + 1 });
        failures = 0;
        if (!this.synced) {
          this.synced = true;
          this.log.info('informer synced', { informer: this.name, keys: this.cache.size, revision: this.revision });
          for (const w of this.syncWaiters.splice(0)) w();
        }
        await this.watchUntilCompacted();
      } catch (err) {
        if (this.stopped) return;
        failures++;
        // Once, then at most every disconnectedWarnEveryMs, as for a dropped watch: a list that
        // cannot succeed (a wrong etcd password) was a line per informer and second for ever.
        const now = this.elapsedMs();
        if (failures === 1 || now - this.listWarnedAt >= (this.opts.disconnectedWarnEveryMs ?? 60_000)) {
          this.listWarnedAt = now;
          this.log.warn(failures === 1 ? 'informer list failed, retrying' : 'informer list still failing, retrying', {
            informer: this.name,
            attempt: failures,
            error: errorMessage(err),
          });
        }
        await this.sleep(this.backoff(failures));
      }
    }
  }

  /**
   * List and apply, in a frame of its own: the list (every raw value under the prefix) must not
   * stay reachable from run()'s frame while it waits on the watch for hours. False when stopped.
   */
  private async listAndReplace(): Promise<boolean> {
    const every = this.opts.listProgressEveryMs ?? LIST_PROGRESS_EVERY_MS;
    if (every <= 0) return this.listOnce();
    const startedAt = this.elapsedMs();
    const progress = setInterval(() => {
      const pageLimit = this.opts.lw.pageLimit;
      this.log.info('informer still listing', {
        informer: this.name,
        keys: this.listedKeys,
        elapsedS: Math.round((this.elapsedMs() - startedAt) / 1000),
        ...(pageLimit !== undefined ? { pageLimit } : {}),
      });
    }, every);
    progress.unref();
    try {
      return await this.listOnce();
    } finally {
      clearInterval(progress);
    }
  }

  private async listOnce(): Promise<boolean> {
    const { lw, prefix } = this.opts;
    this.listedKeys = 0;
    if (!this.synced && this.cache.size === 0 && lw.listPages) {
      // The first list into an empty cache: nothing can disappear, so each page is applied as it
      // arrives and its raw values die with it (at 100k containers the whole list's strings were
      // tens of MB of peak heap). A list that fails half-way leaves a partial cache; the retry
      // then takes the path below, which reports the differences as replace() always has.
      const revision = await lw.listPages(prefix, (items) => {
        this.listedKeys += items.length;
        if (!this.stopped) for (const kv of items) this.applyPut(kv, false);
      });
      if (this.stopped) return false;
      this.listed(revision);
      return true;
    }
    this.listTakenAsIs = this.historyReplaced;
    try {
      if (lw.listPages) {
        // A relist (after a compaction, say at the end of a long etcd outage) page by page too:
        // the whole list's raw values at once came on top of a full cache, every informer at once.
        const relist = this.synced;
        const seen = new Set<string>();
        const revision = await lw.listPages(prefix, (items, at) => {
          this.listedKeys += items.length;
          if (this.stopped) return;
          this.relistAt = at;
          for (const kv of items) {
            seen.add(kv.key);
            this.applyPut(kv, relist);
          }
        });
        if (this.stopped) return false;
        this.deleteUnseen(seen, revision, relist);
        this.listed(revision);
        return true;
      }
      const list = await lw.list(prefix);
      if (this.stopped) return false;
      this.relistAt = list.revision;
      this.replace(list.items, list.revision);
      return true;
    } finally {
      this.listTakenAsIs = false;
      this.relistAt = undefined;
    }
  }

  /** Watch from the current revision; on errors resume; return when a relist is needed. */
  private async watchUntilCompacted(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      if (this.historyReplaced) return; // told by relistAsIs, perhaps while listing or asleep
      const err = await this.watchOnce();
      if (this.stopped || this.historyReplaced) return;
      if (err instanceof WatchAfterStallError) {
        // Opened again from the last revision applied: nothing is lost, and the new watch's first
        // answer carries etcd's head, so a large lag lists again (WatchFallenBehindError).
        this.opts.metrics?.watchRestart(this.name, 'stalled');
        this.log.warn('the process was stalled: watching again from the last revision applied, to see how far behind etcd it is', {
          informer: this.name,
          revision: this.revision,
          stalledMs: Math.round(err.stalledMs),
        });
        continue;
      }
      if (err instanceof WatchFallenBehindError) {
        this.opts.metrics?.watchRestart(this.name, 'fallen_behind');
        this.log.warn('watch far behind etcd: listing again, to decide from the current level rather than from history', {
          informer: this.name,
          revision: err.revision,
          etcdRevision: err.headRevision,
          behind: err.headRevision - err.revision,
        });
        return;
      }
      let compacted = err instanceof WatchCompactedError;
      if (!compacted) {
        try {
          compacted = await this.opts.lw.isCompacted(this.revision + 1);
        } catch {
          compacted = false;
        }
      }
      if (compacted) {
        this.opts.metrics?.watchRestart(this.name, 'compacted');
        this.log.warn('watch revision compacted, listing again', { informer: this.name, revision: this.revision });
        return;
      }
      if (err instanceof WatchBacklogTooLargeError) {
        this.opts.metrics?.watchRestart(this.name, 'backlog_too_large');
        this.log.warn('watch backlog too large to receive, listing again', { informer: this.name, revision: this.revision, error: err.message });
        return;
      }
      const current = await this.storeRevisionIfBehind();
      if (current !== undefined) {
        this.historyReplaced = true;
        this.opts.metrics?.watchRestart(this.name, 'history_replaced');
        this.log.error('etcd is behind a revision this cache has seen: its history was replaced (restored from an older backup, or a new volume); listing again and taking the list as it is', {
          informer: this.name,
          revision: this.revision,
          etcdRevision: current,
        });
        this.historyListener?.(this.name, current);
        return;
      }
      failures++;
      this.opts.metrics?.watchRestart(this.name, 'error');
      this.log.warn('watch ended, resuming', { informer: this.name, revision: this.revision, error: err.message });
      await this.sleep(this.backoff(failures));
    }
  }

  /** Monotonic ms for the warnings' intervals (a wall-clock step would silence them for its length). */
  private elapsedMs(): number {
    return this.opts.now?.() ?? performance.now();
  }

  /**
   * Counted every time; logged once when it starts and then at most every
   * disconnectedWarnEveryMs: during an etcd outage every informer retries about once a second
   * (nine informers: about 12 lines a second, 45,000 an hour, before).
   */
  private disconnected(e: Error): void {
    this.opts.metrics?.watchRestart(this.name, 'disconnected');
    const now = this.elapsedMs();
    const o = this.outage;
    if (o === undefined) {
      this.outage = { since: now, retries: 0, warnedAt: now };
      this.log.warn('watch disconnected, it resumes by itself', { informer: this.name, error: e.message });
      return;
    }
    o.retries++;
    if (now - o.warnedAt < (this.opts.disconnectedWarnEveryMs ?? 60_000)) return;
    o.warnedAt = now;
    this.log.warn('watch still disconnected, retrying', { informer: this.name, forMs: now - o.since, retries: o.retries, error: e.message });
  }

  private reconnected(): void {
    const o = this.outage;
    if (o === undefined) return;
    this.outage = undefined;
    this.log.info('watch resumed', { informer: this.name, afterMs: this.elapsedMs() - o.since, retries: o.retries });
  }

  /** The store's revision when it is behind this cache's (its history was replaced), else undefined (also when it cannot be read). */
  private async storeRevisionIfBehind(): Promise<number | undefined> {
    if (!this.opts.lw.currentRevision) return undefined;
    try {
      const current = await this.opts.lw.currentRevision();
      return current < this.revision ? current : undefined;
    } catch {
      return undefined;
    }
  }

  private watchOnce(): Promise<Error> {
    return new Promise<Error>((resolve) => {
      let ended = false;
      const end = (err: Error): void => {
        if (ended) return;
        ended = true;
        if (heartbeat !== undefined) clearInterval(heartbeat);
        this.wake = undefined;
        const w = this.watch;
        this.watch = undefined;
        void w?.close().catch(() => undefined);
        resolve(err);
      };
      this.wake = () => end(new Error('stopped'));
      const from = this.opts.plantedBugResumeFromListed ? this.listedRevision : this.revision + 1;
      const maxLag = this.opts.maxWatchLag ?? DEFAULT_MAX_WATCH_LAG;
      // When the event loop last ran a timer: a response read long after it may have waited in the
      // socket while the process was stopped.
      const stallMs = this.opts.stallMs ?? DEFAULT_STALL_MS;
      // Either order: the loop may run its late timer before reading the socket (after SIGCONT,
      // libuv's poll returns at once when its timeout has passed), so the timer notes the stall
      // it saw, for the next response; or read first, which finds the timer not yet run.
      let beat = this.elapsedMs();
      let stalledFor = 0;
      const heartbeat =
        stallMs > 0
          ? setInterval(() => {
              const now = this.elapsedMs();
              if (now - beat > stallMs) stalledFor = now - beat;
              beat = now;
            }, Math.max(1, Math.min(1000, stallMs / 4)))
          : undefined;
      heartbeat?.unref();
      this.watch = this.opts.lw.watch(this.opts.prefix, from, {
        onEvents: (events, headerRevision) => {
          if (ended) return;
          if (stallMs > 0) {
            const now = this.elapsedMs();
            if (now - beat > stallMs) return end(new WatchAfterStallError(now - beat));
            if (stalledFor > 0) return end(new WatchAfterStallError(stalledFor));
          }
          // Not applied: these changes are history, and a list has the level they led to.
          const first = events[0]?.kv.modRevision ?? headerRevision;
          if (maxLag > 0 && headerRevision - first > maxLag) return end(new WatchFallenBehindError(first - 1, headerRevision));
          this.applyEvents(events, headerRevision);
        },
        onProgress: (revision) => {
          if (!ended && revision > this.revision) {
            this.revision = revision;
            this.opts.metrics?.lastRevision(this.name, revision);
            this.revisionMoved();
          }
        },
        onError: end,
        onDisconnected: (e) => this.disconnected(e),
        onConnected: () => this.reconnected(),
      });
    });
  }

  private applyEvents(events: WatchEvent[], headerRevision: number): void {
    for (const ev of events) {
      if (ev.type === 'put') this.applyPut(ev.kv, false, this.isOwnEcho(ev.kv));
      else if (this.tombstoneCovers(ev.kv.key, ev.kv.modRevision) || this.newerThan(ev.kv.key, ev.kv.modRevision)) continue;
      else this.applyDelete(ev.kv.key, false);
      if (ev.kv.modRevision > this.revision) this.revision = ev.kv.modRevision;
    }
    // Not the header revision: etcd splits a long catch-up (over 1,000 revisions) into several
    // responses that all carry the current revision, so the header can run ahead of events still
    // to come; trusting it dropped tombstones early and, on a resume, skipped events (found by
    // the simulation, test/sim). Progress notifications move the revision when nothing changes.
    void headerRevision;
    if (this.tombstones.size > 0) {
      for (const [key, rev] of this.tombstones) if (rev <= this.revision) this.tombstones.delete(key);
    }
    this.opts.metrics?.lastRevision(this.name, this.revision);
    this.revisionMoved();
  }

  /**
   * Whether a relisted key shows the store's history was replaced (restored with its revision
   * bumped past ours, then compacted): in one history a list at L holds each key's last change at
   * or before L, so what the cache saw of the key at or before L (a change, or an own delete) can
   * be neither newer than it nor a delete after it. Own writes after L stay ahead of the list.
   */
  private otherHistory(old: CacheEntry<T> | undefined, kv: KeyValue): boolean {
    const at = this.relistAt;
    if (at === undefined) return false;
    if (old !== undefined && old.modRevision <= at && old.modRevision > kv.modRevision) return true;
    const deletedAt = this.tombstones.get(kv.key);
    return deletedAt !== undefined && deletedAt <= at && deletedAt >= kv.modRevision;
  }

  /** The cache already holds the key at a revision after `revision` (an own write assumed ahead of the watch). */
  private newerThan(key: string, revision: number): boolean {
    const cur = this.cache.get(key);
    return cur !== undefined && cur.modRevision > revision;
  }

  private tombstoneCovers(key: string, revision: number): boolean {
    const t = this.tombstones.get(key);
    return t !== undefined && revision <= t;
  }

  private applyPut(kv: KeyValue, synthetic: boolean, assumed = false): void {
    const old = this.cache.get(kv.key);
    if (!this.listTakenAsIs && !this.otherHistory(old, kv)) {
      if (old && old.modRevision >= kv.modRevision) return; // already assumed or stale
      if (this.tombstoneCovers(kv.key, kv.modRevision)) return;
    }
    const value = this.decode(kv);
    if (value === undefined) {
      if (old) this.applyDelete(kv.key, synthetic, assumed);
      return;
    }
    const entry: CacheEntry<T> = {
      key: kv.key,
      value,
      modRevision: kv.modRevision,
      createRevision: kv.createRevision,
      version: kv.version,
    };
    this.cache.set(entry);
    const event: InformerEvent<T> = old ? { type: 'updated', key: kv.key, old, new: entry, synthetic } : { type: 'added', key: kv.key, new: entry, synthetic };
    if (assumed) event.assumed = true;
    this.emit(event);
  }

  private applyDelete(key: string, synthetic: boolean, assumed = false): void {
    const old = this.cache.delete(key);
    if (!old) return;
    const event: InformerEvent<T> = { type: 'deleted', key, old, synthetic };
    if (assumed) event.assumed = true;
    this.emit(event);
  }

  /** Make the cache equal to a fresh list, reporting the differences as synthetic events. */
  private replace(items: KeyValue[], revision: number): void {
    const relist = this.synced;
    if (this.cache.size === 0) {
      // Nothing cached, so nothing to delete: no set of every listed key.
      for (const kv of items) this.applyPut(kv, relist);
    } else {
      const seen = new Set<string>();
      for (const kv of items) {
        seen.add(kv.key);
        this.applyPut(kv, relist);
      }
      this.deleteUnseen(seen, revision, relist);
    }
    this.listed(revision);
  }

  /** After a list at `revision`: a cached key it did not hold is gone, unless written after it. */
  private deleteUnseen(seen: ReadonlySet<string>, revision: number, relist: boolean): void {
    for (const key of [...this.cache.keys()]) {
      if (!seen.has(key) && (this.listTakenAsIs || this.cache.get(key)!.modRevision <= revision)) this.applyDelete(key, relist);
    }
  }

  /** A list at `revision` has been applied: the watch goes on from there. */
  private listed(revision: number): void {
    if (this.listTakenAsIs) {
      // The revisions seen before belong to the replaced history: start again from the list's.
      this.revision = revision;
      this.tombstones.clear();
      this.ownWrites.clear();
      this.historyReplaced = false;
      for (const w of this.asIsWaiters.splice(0)) w();
    }
    this.revision = Math.max(this.revision, revision);
    this.listedRevision = revision;
    for (const [key, rev] of this.tombstones) if (rev <= this.revision) this.tombstones.delete(key);
    this.opts.metrics?.lastRevision(this.name, this.revision);
    this.revisionMoved();
  }

  private decode(kv: KeyValue): T | undefined {
    try {
      return this.opts.parse(kv.key, kv.value);
    } catch (err) {
      this.log.warn('cannot decode value, treating key as absent', { informer: this.name, key: kv.key, error: errorMessage(err) });
      return undefined;
    }
  }

  private emit(event: InformerEvent<T>): void {
    if (!this.synced) event.initial = true;
    for (const h of this.handlers) {
      try {
        h(event);
      } catch (err) {
        this.log.error('informer handler failed', { informer: this.name, key: event.key, error: errorMessage(err) });
      }
    }
  }

  /** Short: after etcd comes back every informer must be watching again within about a second. */
  private backoff(failures: number): number {
    return backoffDelay(failures, this.opts.retryBaseMs ?? 100, this.opts.retryCapMs ?? 1_000, true);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
