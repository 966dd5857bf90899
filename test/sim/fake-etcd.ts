// An in-memory etcd for the simulation: one keyspace with revisions (and reads at a past
// revision), compaction, transactions with compares, leases with TTLs, and a log of every commit
// (who wrote it, what changed) for the invariants. It knows nothing about statemanager.
import { EtcdLeaseInvalidError } from 'etcd3';
import type { Scheduler } from './scheduler.js';

export interface StoredKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** '0' when the key has no lease. */
  lease: string;
}

export interface Change {
  type: 'Put' | 'Delete';
  key: string;
  /** The key after a put; undefined for a delete. */
  kv: StoredKv | undefined;
  /** The key before the change, if it existed. */
  prev: StoredKv | undefined;
}

export interface Commit {
  revision: number;
  /** Who sent it: a client's connection id, `lease-expiry`, `lease-revoke`… */
  writer: string;
  at: number;
  changes: Change[];
}

interface LeaseEntry {
  id: string;
  ttlMs: number;
  expiresAt: number;
  keys: Set<string>;
  /** The connection that granted it (a process incarnation). */
  owner: string;
}

export class EtcdError extends Error {}

export class FakeEtcdServer {
  revision = 1;
  compactRevision = 0;
  readonly data = new Map<string, StoredKv>();
  /** Every commit ever made (never compacted: the invariants read it). */
  readonly log: Commit[] = [];
  private readonly leases = new Map<string, LeaseEntry>();
  private nextLease = 7000;
  private down = false;
  private readonly listeners = new Set<(c: Commit) => void>();
  private readonly downListeners = new Set<() => void>();

  constructor(private readonly sched: Scheduler) {
    // Expired leases are reaped on etcd's own clock, which stops while etcd is down.
    sched.every(100, () => this.expireLeases());
  }

  get available(): boolean {
    return !this.down;
  }

  /** etcd stops answering (every call fails, every watch stream breaks). */
  goDown(): void {
    if (this.down) return;
    this.down = true;
    for (const l of [...this.downListeners]) l();
  }

  /** etcd answers again; like a restarted etcd, it gives every lease a fresh TTL. */
  comeBack(): void {
    if (!this.down) return;
    this.down = false;
    for (const l of this.leases.values()) l.expiresAt = this.sched.elapsed() + l.ttlMs;
  }

  onCommit(l: (c: Commit) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  onDown(l: () => void): () => void {
    this.downListeners.add(l);
    return () => this.downListeners.delete(l);
  }

  /** Keys in [key, rangeEnd) (rangeEnd undefined: the key alone; "\0": every key from key on). */
  static inRange(k: string, key: string, rangeEnd: string | undefined): boolean {
    if (rangeEnd === undefined || rangeEnd === '') return k === key;
    if (rangeEnd === '\u0000') return k >= key;
    return k >= key && k < rangeEnd;
  }

  /** The keyspace as it was at `revision` (the current one when omitted). */
  snapshot(revision?: number): Map<string, StoredKv> {
    if (revision === undefined || revision >= this.revision) return this.data;
    if (revision < this.compactRevision) throw new EtcdError('etcdserver: mvcc: required revision has been compacted');
    const m = new Map(this.data);
    for (let i = this.log.length - 1; i >= 0 && this.log[i]!.revision > revision; i--) {
      const c = this.log[i]!;
      for (let j = c.changes.length - 1; j >= 0; j--) {
        const ch = c.changes[j]!;
        if (ch.prev) m.set(ch.key, ch.prev);
        else m.delete(ch.key);
      }
    }
    return m;
  }

  range(key: string, rangeEnd: string | undefined, revision?: number, limit?: number): { kvs: StoredKv[]; more: boolean; count: number } {
    if (revision !== undefined && revision > this.revision) throw new EtcdError('etcdserver: mvcc: required revision is a future revision');
    const snap = this.snapshot(revision);
    const all = [...snap.values()].filter((kv) => FakeEtcdServer.inRange(kv.key, key, rangeEnd)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const n = limit && limit > 0 ? limit : all.length;
    return { kvs: all.slice(0, n), more: all.length > n, count: all.length };
  }

  /** Apply writes atomically at one new revision (none when nothing changes). */
  write(writer: string, ops: Array<{ put: { key: string; value: string; lease?: string } } | { del: { key: string; rangeEnd?: string } }>): number {
    for (const op of ops) {
      if ('put' in op && op.put.lease && op.put.lease !== '0' && !this.leases.has(op.put.lease)) throw new EtcdError('etcdserver: requested lease not found');
    }
    const rev = this.revision + 1;
    const changes: Change[] = [];
    for (const op of ops) {
      if ('put' in op) {
        const prev = this.data.get(op.put.key);
        const lease = op.put.lease && op.put.lease !== '0' ? op.put.lease : '0';
        const kv: StoredKv = { key: op.put.key, value: op.put.value, createRevision: prev ? prev.createRevision : rev, modRevision: rev, version: (prev?.version ?? 0) + 1, lease };
        this.detach(prev);
        this.data.set(kv.key, kv);
        if (lease !== '0') this.leases.get(lease)!.keys.add(kv.key);
        changes.push({ type: 'Put', key: kv.key, kv, prev });
      } else {
        const keys = [...this.data.keys()].filter((k) => FakeEtcdServer.inRange(k, op.del.key, op.del.rangeEnd)).sort();
        for (const k of keys) {
          const prev = this.data.get(k)!;
          this.detach(prev);
          this.data.delete(k);
          changes.push({ type: 'Delete', key: k, kv: undefined, prev });
        }
      }
    }
    if (changes.length === 0) return this.revision;
    this.revision = rev;
    const commit: Commit = { revision: rev, writer, at: this.sched.elapsed(), changes };
    this.log.push(commit);
    for (const l of [...this.listeners]) l(commit);
    return rev;
  }

  compact(revision: number): void {
    this.compactRevision = Math.max(this.compactRevision, Math.min(revision, this.revision));
  }

  grantLease(ttlMs: number, owner: string): string {
    const id = String(++this.nextLease);
    this.leases.set(id, { id, ttlMs, expiresAt: this.sched.elapsed() + ttlMs, keys: new Set(), owner });
    return id;
  }

  keepAlive(id: string): number {
    const l = this.leases.get(id);
    if (!l) throw new EtcdLeaseInvalidError(id);
    l.expiresAt = this.sched.elapsed() + l.ttlMs;
    return l.ttlMs;
  }

  revokeLease(id: string, writer = 'lease-revoke'): void {
    const l = this.leases.get(id);
    if (!l) throw new EtcdLeaseInvalidError(id);
    this.leases.delete(id);
    this.ownerOfGone.set(id, l.owner);
    if (l.keys.size > 0) this.write(writer, [...l.keys].map((key) => ({ del: { key } })));
  }

  leaseOwner(id: string): string | undefined {
    return this.leases.get(id)?.owner ?? this.ownerOfGone.get(id);
  }

  hasLease(id: string): boolean {
    return this.leases.has(id);
  }

  /** Owners of leases already gone, for the invariants. */
  private readonly ownerOfGone = new Map<string, string>();

  private detach(prev: StoredKv | undefined): void {
    if (prev && prev.lease !== '0') this.leases.get(prev.lease)?.keys.delete(prev.key);
  }

  private expireLeases(): void {
    if (this.down) return;
    const now = this.sched.elapsed();
    for (const l of [...this.leases.values()]) {
      if (l.expiresAt <= now) this.revokeLease(l.id, 'lease-expiry');
    }
  }
}
