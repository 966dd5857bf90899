// TriggerOffloading records in etcd, under /statemanager/offloading/{model}/{id}: at most
// `perModel` per model, the oldest deleted in the transaction that adds a new one (guarded so
// that two replicas recording at once do not both keep one too many), and only while the model
// has a state: the leader deletes a model's records with its state when no package lists it any
// more, and a record written after that (its OffloadModel call answered late) stayed for good
// (black-box soak). They survive restarts and are read by `statemanager describe model`.
import type { Etcd3, ICompare, IRequestOp } from 'etcd3';
import type { KeyLayout } from '../../domain/keys.js';
import { parseOffloadingRecord, recordId, type OffloadingRecord } from '../offloading/record.js';
import { etcdDeadline } from './errors.js';
import { prefixEnd } from './lister-watcher.js';

export interface OffloadingRecords {
  /** Stores the record, dropping the model's oldest beyond the bound; false (nothing stored) when the model has no state. */
  add(record: OffloadingRecord): Promise<boolean>;
  /** The model's records, oldest first. */
  list(model: string): Promise<OffloadingRecord[]>;
}

export interface EtcdOffloadingStoreOptions {
  client: Etcd3;
  keys: KeyLayout;
  requestTimeoutMs: number;
  /** Records kept per model. */
  perModel: number;
  /** Attempts when another writer changed the model's records in between. Default 5. */
  maxAttempts?: number;
}

export class EtcdOffloadingStore implements OffloadingRecords {
  /**
   * The last add of each model with one under way: a model's adds go one after another. At once,
   * each lost the others' guard until its last, unguarded attempt, and each then deleted the same
   * oldest records and kept one too many: 200 different requests for one model left 90 records,
   * against a bound of 20 (black-box probe). Only adds from two replicas can still race now.
   */
  private readonly adding = new Map<string, Promise<void>>();

  constructor(private readonly o: EtcdOffloadingStoreOptions) {}

  add(record: OffloadingRecord): Promise<boolean> {
    const model = record.model;
    const before = this.adding.get(model) ?? Promise.resolve();
    const run = before.then(() => this.addNow(record));
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.adding.set(model, settled);
    void settled.then(() => {
      if (this.adding.get(model) === settled) this.adding.delete(model);
    });
    return run;
  }

  /** Models with an add under way (their entries go once it is done). */
  get modelsAdding(): number {
    return this.adding.size;
  }

  private async addNow(record: OffloadingRecord): Promise<boolean> {
    const stateKey = Buffer.from(this.o.keys.stateKey('model', record.model));
    const prefix = Buffer.from(this.o.keys.offloadingPrefix(record.model));
    const end = prefixEnd(prefix);
    const key = Buffer.from(this.o.keys.offloadingPrefix(record.model) + recordId(Date.parse(record.at) || Date.now()));
    const value = Buffer.from(JSON.stringify(record));
    const attempts = this.o.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      const deadline = { deadline: etcdDeadline(this.o.requestTimeoutMs) };
      const res = await this.o.client.kv.range({ key: prefix, range_end: end, keys_only: true, sort_order: 'Ascend', sort_target: 'Key' }, deadline);
      const revision = Number(res.header.revision);
      const excess = res.kvs.length + 1 - this.o.perModel;
      const success: IRequestOp[] = [{ request_put: { key, value } }];
      for (const kv of res.kvs.slice(0, Math.max(0, excess))) success.push({ request_delete_range: { key: kv.key } });
      // The model has a state, and nothing under the model's prefix was written since the read;
      // the last attempt writes anyway as to the prefix (the next record trims what a race left over).
      const compare: ICompare[] = [{ key: stateKey, target: 'Version', result: 'Greater', version: 0 }];
      if (attempt < attempts) compare.push({ key: prefix, range_end: end, target: 'Mod', result: 'Less', mod_revision: revision + 1 });
      const failure: IRequestOp[] = [{ request_range: { key: stateKey, count_only: true } }];
      const txn = await this.o.client.kv.txn({ compare, success, failure }, { deadline: etcdDeadline(this.o.requestTimeoutMs) });
      if (txn.succeeded) return true;
      if (Number(txn.responses[0]?.response_range?.count ?? 0) === 0) return false;
    }
  }

  async list(model: string): Promise<OffloadingRecord[]> {
    const prefix = Buffer.from(this.o.keys.offloadingPrefix(model));
    const res = await this.o.client.kv.range(
      { key: prefix, range_end: prefixEnd(prefix), sort_order: 'Ascend', sort_target: 'Key' },
      { deadline: etcdDeadline(this.o.requestTimeoutMs) },
    );
    const out: OffloadingRecord[] = [];
    for (const kv of res.kvs) {
      // Only this model's own records: `a/` must not take in `a/b/`'s.
      if (kv.key.toString('utf8').slice(prefix.length).includes('/')) continue;
      const r = parseOffloadingRecord(kv.value.toString('utf8'));
      if (r) out.push(r);
    }
    return out;
  }
}
