// One process's connection to the FakeEtcdServer, shaped as the subset of etcd3's Etcd3 that
// statemanager's etcd code uses (kv.range, kv.txn, lease(), leaseClient.leaseRevoke, get()), so the
// real state store, lister-watcher and leader lock run on it. Every call reaches the server after
// a seeded delay and answers after another: completions interleave differently per seed, a write
// can commit after its caller gave up (deadline), and a crashed process never hears back.
import { EventEmitter } from 'node:events';
import { type Etcd3, type ICompare, type IKeyValue, type IRequestOp, EtcdLeaseInvalidError } from 'etcd3';
import { EtcdError, type FakeEtcdServer, type StoredKv } from './fake-etcd.js';
import type { Scheduler } from './scheduler.js';

export interface Network {
  /** One-way delay of a message of connection `conn`, in ms. */
  delay(conn: string): number;
}

type Deadline = { deadline?: number | Date } | undefined;

const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

export function toEtcdKv(kv: StoredKv): IKeyValue {
  return {
    key: Buffer.from(kv.key),
    value: Buffer.from(kv.value),
    create_revision: String(kv.createRevision),
    mod_revision: String(kv.modRevision),
    version: String(kv.version),
    lease: kv.lease,
  } as IKeyValue;
}

function str(b: Buffer | string | undefined): string | undefined {
  return b === undefined ? undefined : b.toString();
}

export class FakeEtcdConnection {
  private closed = false;

  constructor(
    readonly id: string,
    readonly server: FakeEtcdServer,
    readonly sched: Scheduler,
    private readonly net: Network,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** The process died: nothing it sent later is answered (what it sent before may still land). */
  close(): void {
    this.closed = true;
  }

  /** Send one request: applied at the server on arrival, answered after a second delay. */
  call<T>(opts: Deadline, apply: () => T): Promise<T> {
    if (this.closed) return never();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled || this.closed) return;
        settled = true;
        fn();
      };
      const d = opts?.deadline;
      const deadlineAt = d === undefined ? undefined : d instanceof Date ? d.getTime() : d;
      if (deadlineAt !== undefined) {
        this.sched.at(Math.max(0, deadlineAt - this.sched.now()), () => finish(() => reject(new Error('4 DEADLINE_EXCEEDED: context deadline exceeded'))));
      }
      this.sched.at(this.net.delay(this.id), () => {
        let outcome: { ok: true; value: T } | { ok: false; error: unknown };
        if (!this.server.available) outcome = { ok: false, error: new Error('14 UNAVAILABLE: No connection established') };
        else {
          try {
            outcome = { ok: true, value: apply() };
          } catch (error) {
            outcome = { ok: false, error };
          }
        }
        this.sched.at(this.net.delay(this.id), () => finish(() => (outcome.ok ? resolve(outcome.value) : reject(outcome.error))));
      });
    });
  }

  /** The Etcd3 surface the project's etcd code uses. */
  client(): Etcd3 {
    const server = this.server;
    const header = (): { revision: string } => ({ revision: String(server.revision) });
    const client = {
      kv: {
        range: (req: { key: Buffer; range_end?: Buffer; limit?: number | string; revision?: number | string; count_only?: boolean }, opts: Deadline) =>
          this.call(opts, () => {
            const revision = req.revision !== undefined && Number(req.revision) > 0 ? Number(req.revision) : undefined;
            const r = server.range(str(req.key)!, str(req.range_end), revision, Number(req.limit ?? 0));
            return { header: header(), kvs: req.count_only ? [] : r.kvs.map(toEtcdKv), more: r.more, count: String(r.count) };
          }),
        txn: (req: { compare?: ICompare[]; success?: IRequestOp[]; failure?: IRequestOp[] }, opts: Deadline) =>
          this.call(opts, () => {
            const succeeded = (req.compare ?? []).every((c) => holds(server, c));
            const ops = (succeeded ? req.success : req.failure) ?? [];
            const responses: unknown[] = [];
            const writes: Parameters<FakeEtcdServer['write']>[1] = [];
            for (const op of ops) {
              if (op.request_range) {
                const r = server.range(str(op.request_range.key)!, str(op.request_range.range_end));
                responses.push({ response_range: { kvs: r.kvs.map(toEtcdKv), more: r.more, count: String(r.count), header: header() } });
              } else if (op.request_put) {
                const lease = op.request_put.lease;
                writes.push({ put: { key: str(op.request_put.key)!, value: str(op.request_put.value) ?? '', ...(lease !== undefined ? { lease: String(lease) } : {}) } });
                responses.push({ response_put: { header: header() } });
              } else if (op.request_delete_range) {
                writes.push({ del: { key: str(op.request_delete_range.key)!, ...(op.request_delete_range.range_end ? { rangeEnd: str(op.request_delete_range.range_end)! } : {}) } });
                responses.push({ response_delete_range: { header: header() } });
              } else {
                throw new EtcdError('unsupported op in the simulation');
              }
            }
            if (writes.length > 0) server.write(this.id, writes);
            return { header: header(), succeeded, responses };
          }),
      },
      leaseClient: {
        leaseRevoke: (req: { ID: string }, opts: Deadline) => this.call(opts, () => (server.revokeLease(String(req.ID)), {})),
        // A keep-alive stream as the leader lock uses it: one request, written and half-closed, one
        // answer (TTL 0 for a lease etcd no longer has), or an error at the call's deadline.
        leaseKeepAlive: async (opts: Deadline) => new FakeKeepAliveStream(this, opts),
      },
      lease: (ttlSeconds: number, opts?: Deadline & { autoKeepAlive?: boolean }) => new FakeLease(this, ttlSeconds, opts),
      get: (key: string) => {
        let o: Deadline;
        const b = {
          options: (x: Deadline) => ((o = x), b),
          string: () => this.call(o, () => server.data.get(key)?.value ?? null),
        };
        return b;
      },
      close: () => this.close(),
    };
    return client as unknown as Etcd3;
  }
}

function holds(server: FakeEtcdServer, c: ICompare): boolean {
  const kv = server.data.get((c.key ?? Buffer.alloc(0)).toString());
  let actual: number | string;
  let expected: number | string;
  switch (c.target) {
    case 'Version':
      [actual, expected] = [kv?.version ?? 0, Number(c.version)];
      break;
    case 'Create':
      [actual, expected] = [kv?.createRevision ?? 0, Number(c.create_revision)];
      break;
    case 'Mod':
      [actual, expected] = [kv?.modRevision ?? 0, Number(c.mod_revision)];
      break;
    case 'Lease':
      [actual, expected] = [kv?.lease ?? '0', String(c.lease)];
      break;
    default:
      [actual, expected] = [kv?.value ?? '', String(c.value)];
  }
  switch (c.result) {
    case 'Equal':
      return actual === expected;
    case 'NotEqual':
      return actual !== expected;
    case 'Greater':
      return actual > expected;
    default:
      return actual < expected;
  }
}

/** One LeaseKeepAlive stream: `write({ ID })` asks once; 'data' answers ({ TTL: '0' }: the lease is gone), 'error' fails it. */
class FakeKeepAliveStream extends EventEmitter {
  constructor(
    private readonly conn: FakeEtcdConnection,
    private readonly opts: Deadline,
  ) {
    super();
  }

  write(req: { ID: string }): void {
    this.conn
      .call(this.opts, () => {
        try {
          return String(Math.ceil(this.conn.server.keepAlive(String(req.ID)) / 1000));
        } catch (err) {
          if (err instanceof EtcdLeaseInvalidError) return '0';
          throw err;
        }
      })
      .then(
        (ttl) => this.emit('data', { ID: req.ID, TTL: ttl }),
        (err: unknown) => this.emit('error', err),
      );
  }

  end(): void {}

  cancel(): void {
    this.emit('error', new Error('1 CANCELLED: Cancelled on client'));
  }
}

/** etcd3's Lease as the leader lock uses it: grant, keep-alive every TTL/3, lost, revoke, release. */
class FakeLease extends EventEmitter {
  private readonly granted: Promise<string>;
  private timer: unknown;
  private lastKeepAlive = 0;
  private stopped = false;

  constructor(
    private readonly conn: FakeEtcdConnection,
    private readonly ttlSeconds: number,
    opts: (Deadline & { autoKeepAlive?: boolean }) | undefined,
  ) {
    super();
    this.granted = conn.call(opts, () => conn.server.grantLease(ttlSeconds * 1000, conn.id));
    this.granted.then(
      () => {
        this.lastKeepAlive = conn.sched.now();
        // etcd3 keeps the lease alive by itself unless told not to (the leader lock renews by itself).
        if (!this.stopped && opts?.autoKeepAlive !== false) this.timer = conn.sched.every((ttlSeconds * 1000) / 3, () => this.fire());
      },
      (err: unknown) => this.emit('lost', err),
    );
  }

  grant(): Promise<string> {
    return this.granted;
  }

  async revoke(opts?: Deadline): Promise<void> {
    this.stop();
    const id = await this.granted;
    await this.conn.call(opts, () => this.conn.server.revokeLease(id)).catch((err: unknown) => {
      if (!(err instanceof EtcdLeaseInvalidError)) throw err;
    });
  }

  release(): void {
    this.stop();
  }

  /** One keep-alive on a call of its own (etcd3: a new stream), as the leader lock sends its renewals. */
  async keepaliveOnce(opts?: Deadline): Promise<void> {
    const id = await this.granted;
    try {
      await this.conn.call(opts, () => this.conn.server.keepAlive(id));
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError && !this.stopped) {
        this.stop();
        this.emit('lost', err);
      }
      throw err;
    }
    if (!this.stopped) this.lastKeepAlive = this.conn.sched.now();
  }

  private stop(): void {
    this.stopped = true;
    this.conn.sched.cancel(this.timer);
  }

  private fire(): void {
    if (this.stopped || this.conn.isClosed) return this.stop();
    void this.granted.then((id) =>
      this.conn.call({ deadline: this.conn.sched.now() + (this.ttlSeconds * 1000) / 3 }, () => this.conn.server.keepAlive(id)).then(
        () => {
          if (this.stopped) return;
          this.lastKeepAlive = this.conn.sched.now();
          this.emit('keepaliveSucceeded', {});
        },
        (err: unknown) => {
          if (this.stopped) return;
          if (err instanceof EtcdLeaseInvalidError || this.conn.sched.now() - this.lastKeepAlive > 2 * 1000 * this.ttlSeconds) {
            this.stop();
            this.emit('lost', err instanceof Error ? err : new Error(String(err)));
            return;
          }
          this.emit('keepaliveFailed', err);
        },
      ),
    );
  }
}
