// The command's connection to etcd: the etcd3 client for unary calls and the project's own watch
// client for watches, both created on first use and closed with the command; every call bounded
// by the command's deadline and interruption, its failure turned into one readable line.
import type { Etcd3, IRangeResponse } from 'etcd3';
import type { Config } from '../config/config.js';
import { createEtcdClient, createEtcdWatchClient } from '../etcd/client.js';
import type { EtcdWatchClient } from '../etcd/watch-client.js';
import { withDeadline } from './deadline.js';
import { etcdFailure } from './etcd-failure.js';
import type { CliError } from './errors.js';

/** etcd3's per-call options with a deadline. */
export interface CallOptions {
  deadline: number;
}

export class EtcdConnection {
  private kv: Etcd3 | undefined;
  private watchClient: EtcdWatchClient | undefined;

  constructor(
    private readonly config: Config['etcd'],
    /** Deadline of each call. */
    readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** "etcd at URLS", for messages. */
  get where(): string {
    return `etcd at ${this.config.endpoints.join(',')}`;
  }

  /** The watch client (one gRPC stream per watch); see etcd-watch.ts. */
  get watches(): EtcdWatchClient {
    this.watchClient ??= createEtcdWatchClient({ ...this.config, requestTimeout: this.timeoutMs });
    return this.watchClient;
  }

  /**
   * One etcd operation, bounded by the deadline even if the client library retries, and given up
   * when the command is interrupted. Failures become a CliError naming the endpoints.
   */
  call<T>(fn: (client: Etcd3, options: CallOptions) => Promise<T>): Promise<T> {
    return this.bounded(() => fn(this.client(), { deadline: Date.now() + this.timeoutMs }));
  }

  /** Waiting for something etcd does (a watch confirmed), bounded and translated as a call. */
  async bounded<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(fn, this.timeoutMs, this.signal);
    } catch (err) {
      throw this.failure(err);
    }
  }

  /** The current revision (a keys-only read of `key`; also proves etcd answers). */
  async currentRevision(key: string): Promise<number> {
    const res: IRangeResponse = await this.call((c, o) => c.kv.range({ key: Buffer.from(key), keys_only: true }, o));
    return Number(res.header.revision);
  }

  failure(err: unknown): CliError {
    return etcdFailure(err, this.where, this.timeoutMs);
  }

  close(): void {
    this.kv?.close();
    this.watchClient?.close();
    this.kv = this.watchClient = undefined;
  }

  private client(): Etcd3 {
    this.kv ??= createEtcdClient({ ...this.config, requestTimeout: this.timeoutMs });
    return this.kv;
  }
}
