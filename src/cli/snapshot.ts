// Reads of one command at one etcd revision: the first read's. `get` showing a model and then its
// containers never mixes two moments of the fleet.
import type { IRangeRequest, IRangeResponse } from 'etcd3';
import { prefixEnd, toKeyValue } from '../etcd/lister-watcher.js';
import { rangePaged } from '../etcd/paged-range.js';
import type { EtcdConnection } from './etcd-connection.js';

export interface KV {
  key: string;
  value: string;
  modRevision: number;
  version: number;
}

const PAGE = 5000;

export class Snapshot {
  /** The revision of the first read: later reads see the same snapshot. */
  private revision: number | undefined;

  constructor(private readonly etcd: EtcdConnection) {}

  /** Every key under a prefix, in key order, page by page. */
  async range(prefix: string): Promise<KV[]> {
    const out: KV[] = [];
    const key = Buffer.from(prefix);
    await rangePaged((req) => this.read(req), { key, rangeEnd: prefixEnd(key), pageSize: PAGE }, (kvs) => {
      for (const kv of kvs) out.push(toKeyValue(kv));
    });
    return out;
  }

  /** The newest key under a prefix (history keys sort by sequence), or undefined. */
  last(prefix: string): Promise<KV | undefined> {
    const key = Buffer.from(prefix);
    return this.first({ key, range_end: prefixEnd(key), limit: 1, sort_order: 'Descend', sort_target: 'Key' });
  }

  get(key: string): Promise<KV | undefined> {
    return this.first({ key: Buffer.from(key) });
  }

  private async first(req: IRangeRequest): Promise<KV | undefined> {
    const kv = (await this.read(req)).kvs[0];
    return kv ? toKeyValue(kv) : undefined;
  }

  /** The one read every other goes through: at the snapshot's revision, or fixing it. */
  private async read(req: IRangeRequest): Promise<IRangeResponse> {
    const at = this.revision === undefined ? req : { ...req, revision: this.revision };
    const res = await this.etcd.call((c, o) => c.kv.range(at, o));
    this.revision ??= Number(res.header.revision);
    return res;
  }
}
