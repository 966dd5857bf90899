// One process's watch client on the FakeEtcdServer, with the public surface of the project's
// EtcdWatchClient (watch(target, handlers) → close/requestProgress) and its behaviour: a broken
// stream reports onDisconnected and resumes from the next revision not delivered, a resume from
// a compacted revision ends the watch with onCompacted. Faults break or hold streams.
import type { IKeyValue } from 'etcd3';
import { backoffDelay } from '../../controller/backoff.js';
import type { EtcdWatch, EtcdWatchClient, EtcdWatchEvent, EtcdWatchHandlers, RangeRequest, WatchTarget } from '../../src/etcd/watch-client.js';
import { toEtcdKv, type FakeEtcdConnection } from './fake-client.js';
import { FakeEtcdServer, type Change, type Commit } from './fake-etcd.js';

export class FakeWatchClient {
  private readonly watches = new Set<SimWatch>();
  private closed = false;

  constructor(readonly conn: FakeEtcdConnection) {}

  watch(target: WatchTarget, handlers: EtcdWatchHandlers): EtcdWatch {
    if (this.closed) throw new Error('etcd watch client is closed');
    const w = new SimWatch(this.conn, target, handlers, () => this.watches.delete(w));
    this.watches.add(w);
    w.open();
    return w;
  }

  /**
   * The paged lists' Range, which the real client makes on its own channel: here the same call as
   * the connection's etcd3 surface (its int64s are decimal strings; the list code reads them with Number()).
   */
  range(req: RangeRequest, deadline: number): Promise<unknown> {
    return this.conn.client().kv.range(req, { deadline });
  }

  /** The informers' lists' Range, as the real client's listPage() gives it: key-values of the informers' shape, the last key and the bytes. */
  async listPage(req: RangeRequest, deadline: number): Promise<unknown> {
    const r = (await this.range(req, deadline)) as { header: { revision: string }; kvs: IKeyValue[]; more: boolean };
    let bytes = 0;
    const kvs = r.kvs.map((kv) => {
      bytes += kv.key.length + kv.value.length;
      return { key: kv.key.toString(), value: kv.value.toString(), modRevision: Number(kv.mod_revision), createRevision: Number(kv.create_revision), version: Number(kv.version) };
    });
    return { header: r.header, kvs, more: r.more, lastKey: r.kvs[r.kvs.length - 1]?.key, bytes };
  }

  /** The project's type, for the code that takes one. */
  asClient(): EtcdWatchClient {
    return this as unknown as EtcdWatchClient;
  }

  close(): void {
    this.closed = true;
    for (const w of [...this.watches]) w.close();
  }

  /** Break each open stream with probability `p`; they resume by themselves. */
  breakSome(p: number): number {
    let n = 0;
    for (const w of [...this.watches]) {
      if (this.conn.sched.random.chance(p) && w.breakStream()) n++;
    }
    return n;
  }

  /** etcd cancels each open watch with probability `p` for a reason other than compaction. */
  cancelSome(p: number): number {
    let n = 0;
    for (const w of [...this.watches]) {
      if (this.conn.sched.random.chance(p) && w.cancel()) n++;
    }
    return n;
  }

  /** Hold every stream's deliveries for `ms` (a slow or congested watch). */
  hold(ms: number): void {
    for (const w of this.watches) w.hold(ms);
  }
}

class SimWatch implements EtcdWatch {
  private nextRevision: number;
  private connected = false;
  private closed = false;
  private failures = 0;
  private pumpScheduled = false;
  private holdUntil = 0;
  private readonly key: string;
  private readonly rangeEnd: string | undefined;
  private unsubscribe: (() => void)[] = [];

  constructor(
    private readonly conn: FakeEtcdConnection,
    target: WatchTarget,
    private readonly h: EtcdWatchHandlers,
    private readonly onClosed: () => void,
  ) {
    this.nextRevision = target.startRevision ?? 0;
    this.key = target.key.toString();
    this.rangeEnd = target.rangeEnd && target.rangeEnd.length > 0 ? target.rangeEnd.toString() : undefined;
    const server = conn.server;
    this.unsubscribe.push(
      server.onCommit((c) => this.onCommit(c)),
      server.onDown(() => {
        if (this.connected) this.broken(new Error('14 UNAVAILABLE: etcd went away'));
      }),
    );
  }

  open(): void {
    if (this.closed) return;
    const { sched, server } = this.conn;
    sched.at(this.conn.server.available ? delayOf(this.conn) : 1, () => {
      if (this.closed || this.conn.isClosed) return;
      if (!server.available) return this.broken(new Error('14 UNAVAILABLE: No connection established'));
      if (this.nextRevision !== 0 && this.nextRevision < server.compactRevision) {
        const compacted = server.compactRevision;
        this.close();
        this.h.onCompacted(compacted);
        return;
      }
      this.connected = true;
      this.failures = 0;
      if (this.nextRevision === 0) this.nextRevision = server.revision + 1;
      this.h.onCreated?.(this.nextRevision - 1);
      this.schedulePump();
    });
  }

  // Only the state feed's replays pause, and the simulation runs informers: delivery goes on
  // (the interface allows responses after a pause).
  pause(): void {}

  resume(): void {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connected = false;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    this.onClosed();
  }

  breakStream(): boolean {
    if (!this.connected || this.closed) return false;
    this.broken(new Error('14 UNAVAILABLE: stream reset (simulated)'));
    return true;
  }

  cancel(): boolean {
    if (!this.connected || this.closed) return false;
    this.close();
    this.h.onCanceled('etcdserver: the watch was canceled (simulated)');
    return true;
  }

  hold(ms: number): void {
    this.holdUntil = Math.max(this.holdUntil, this.conn.sched.elapsed() + ms);
  }

  private matches(ch: Change): boolean {
    return FakeEtcdServer.inRange(ch.key, this.key, this.rangeEnd);
  }

  private onCommit(c: Commit): void {
    if (!this.connected) return;
    // A commit elsewhere sometimes brings a progress notification, as etcd's do.
    if (c.changes.some((ch) => this.matches(ch)) || this.conn.sched.random.chance(0.05)) this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.connected || this.closed) return;
    this.pumpScheduled = true;
    const { sched } = this.conn;
    const wait = Math.max(delayOf(this.conn), this.holdUntil - sched.elapsed());
    sched.at(wait, () => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.connected || this.closed || this.conn.isClosed) return;
    const { server, sched } = this.conn;
    if (this.holdUntil > sched.elapsed()) return this.schedulePump();
    const pending: Commit[] = [];
    for (let i = firstAtOrAfter(server.log, this.nextRevision); i < server.log.length; i++) {
      const c = server.log[i]!;
      if (c.changes.some((ch) => this.matches(ch))) pending.push(c);
    }
    if (pending.length > 0 && pending[0]!.revision < server.compactRevision) {
      // A lagging watcher whose next events were compacted away: etcd cancels it.
      const compacted = server.compactRevision;
      this.close();
      this.h.onCompacted(compacted);
      return;
    }
    if (pending.length === 0) {
      // Caught up: a progress notification.
      if (server.revision >= this.nextRevision - 1) {
        this.nextRevision = Math.max(this.nextRevision, server.revision + 1);
        this.h.onProgress?.(server.revision);
      }
      return;
    }
    // Several revisions per response or one at a time, as etcd batches.
    const take = pending.slice(0, sched.random.chance(0.5) ? pending.length : sched.random.between(1, 2));
    const events: EtcdWatchEvent[] = [];
    for (const c of take) {
      for (const ch of c.changes) {
        if (!this.matches(ch)) continue;
        events.push(
          ch.type === 'Put'
            ? { type: 'Put', kv: toEtcdKv(ch.kv!) }
            : { type: 'Delete', kv: { key: Buffer.from(ch.key), value: Buffer.alloc(0), create_revision: '0', mod_revision: String(c.revision), version: '0', lease: '0' } },
        );
      }
    }
    this.nextRevision = take[take.length - 1]!.revision + 1;
    this.h.onEvents(events, server.revision);
    if (take.length < pending.length) this.schedulePump();
  }

  private broken(err: Error): void {
    if (this.closed) return;
    this.connected = false;
    this.failures++;
    this.h.onDisconnected?.(err);
    const delay = this.failures === 1 ? 0 : backoffDelay(this.failures - 1, 50, 1000, true);
    this.conn.sched.at(delay, () => this.open());
  }
}

function delayOf(conn: FakeEtcdConnection): number {
  return conn.sched.random.between(1, 4);
}

function firstAtOrAfter(log: readonly Commit[], revision: number): number {
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (log[mid]!.revision < revision) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
