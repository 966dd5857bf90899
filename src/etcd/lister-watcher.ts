// The informer's storage boundary on a real etcd: paginated lists at one revision (so a fleet
// of 100k keys never needs one giant response) and watches, both through our own watch client,
// whose responses are decoded by hand (one stream per watch, resumes by itself after a dropped
// connection, reports compaction with etcd's compact revision). etcd3 is left the compaction check.
import type { Etcd3 } from 'etcd3';
import { type KeyValue, type ListResult, type ListerWatcher, type WatchCallbacks, type WatchEvent, type WatchHandle, WatchBacklogTooLargeError, WatchCompactedError } from '../../controller/lister-watcher.js';
import { listPageShape, PageCap, rangePaged } from './paged-range.js';
import type { DecodedListPage } from './watch-response-decoder.js';
import type { EtcdKeyValue, EtcdWatchClient } from './watch-client.js';
import { errorMessage } from '../../controller/errors.js';

const PAGE_SIZE = 5000;

export class EtcdListerWatcher implements ListerWatcher {
  /** Shared by every list through this client: they share its link. */
  private readonly cap: PageCap;

  constructor(
    private readonly client: Etcd3,
    private readonly watcher: EtcdWatchClient,
    private readonly pageSize = PAGE_SIZE,
    /** Deadline of each page (a page of 5,000 keys is a few MB). */
    private readonly pageTimeoutMs = 30_000,
    /** Told of each page that came full: the prefix holds more keys than a page (a fleet, not a vehicle). */
    private readonly onFullPage: () => void = () => {},
  ) {
    this.cap = new PageCap(pageSize, pageTimeoutMs);
  }

  /** The most keys a page asks for now (smaller after pages ran out of their deadline). */
  get pageLimit(): number {
    return this.cap.current;
  }

  async list(prefix: string): Promise<ListResult> {
    const items: KeyValue[] = [];
    // Strings of their own: a listed value is a view of its page's message until read.
    const revision = await this.listPages(prefix, (page) => {
      for (const kv of page) items.push({ key: kv.key, value: kv.value, modRevision: kv.modRevision, createRevision: kv.createRevision, version: kv.version });
    });
    return { items, revision };
  }

  listPages(prefix: string, onPage: (items: KeyValue[], revision: number) => void): Promise<number> {
    const key = Buffer.from(prefix);
    let revision = 0;
    let listed = 0;
    return rangePaged<DecodedListPage>(
      (req) =>
        this.watcher.listPage(
          { key: req.key as Buffer, range_end: req.range_end as Buffer, limit: Number(req.limit), ...(req.revision !== undefined ? { revision: Number(req.revision) } : {}) },
          Date.now() + this.pageTimeoutMs,
        ),
      { key, rangeEnd: prefixEnd(key), pageSize: this.pageSize, cap: this.cap },
      (kvs, rev) => {
        revision = rev;
        // Once per page size of keys listed (pages may be smaller than it after a slow link).
        const before = Math.floor(listed / this.pageSize);
        listed += kvs.length;
        for (let i = before; i < Math.floor(listed / this.pageSize); i++) this.onFullPage();
        // Decoded as the informers take them: a string key, the value read from the page when asked.
        onPage(kvs, revision);
      },
      listPageShape,
    );
  }

  watch(prefix: string, fromRevision: number, cb: WatchCallbacks): WatchHandle {
    const key = Buffer.from(prefix);
    const w = this.watcher.watch(
      { key, rangeEnd: prefixEnd(key), startRevision: fromRevision, cancelIfBehind: true },
      {
        onEvents: (events, headerRevision) => {
          // The value is decoded only when read: the informer drops the echo of our own writes
          // (already in the cache through assume()) by revision, without reading it.
          const out: WatchEvent[] = events.map((ev) => ({ type: ev.type === 'Put' ? 'put' : 'delete', kv: new WatchedKeyValue(ev.kv) }));
          cb.onEvents(out, headerRevision);
        },
        onProgress: (revision) => cb.onProgress?.(revision),
        onCompacted: (compactRevision) => cb.onError(new WatchCompactedError(fromRevision, compactRevision)),
        onCanceled: (reason) => cb.onError(new Error(`etcd canceled the watch: ${reason}`)),
        onTooLarge: (reason) => cb.onError(new WatchBacklogTooLargeError(fromRevision, reason)),
        onDisconnected: (err) => cb.onDisconnected?.(err),
        onCreated: () => cb.onConnected?.(),
      },
    );
    return {
      close: () => {
        w.close();
        return Promise.resolve();
      },
    };
  }

  async currentRevision(): Promise<number> {
    // Linearizable (etcd3's default): the cluster's revision, not a lagging member's.
    const res = await this.client.kv.range({ key: Buffer.from([0]), limit: 1, count_only: true }, { deadline: Date.now() + this.pageTimeoutMs });
    return Number(res.header.revision);
  }

  isCompacted(revision: number): Promise<boolean> {
    return isRevisionCompacted(this.client, revision, this.pageTimeoutMs);
  }
}

/** Whether etcd compacted `revision` away: a read at it (a future revision is not compacted). */
export async function isRevisionCompacted(client: Etcd3, revision: number, timeoutMs: number): Promise<boolean> {
  try {
    await client.kv.range({ key: Buffer.from([0]), limit: 1, revision, count_only: true }, { deadline: Date.now() + timeoutMs });
    return false;
  } catch (err) {
    const message = errorMessage(err);
    if (/compacted/i.test(message)) return true;
    if (/future revision/i.test(message)) return false;
    throw err;
  }
}

/** etcd3's IKeyValue and our watch client's key-values have the same shape. */
export function toKeyValue(kv: Pick<EtcdKeyValue, 'key' | 'value' | 'mod_revision' | 'create_revision' | 'version'>): KeyValue {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    version: Number(kv.version),
  };
}

/**
 * A watched key-value's value is a view of the message until read (the lists' pages are read as
 * PageKeyValue, watch-response-decoder.ts): turned into a string when read, not when the response
 * came (a response holds many; the informer drops the echo of its own writes unread).
 */
class ListedKeyValue implements KeyValue {
  readonly key: string;
  readonly modRevision: number;
  readonly createRevision: number;
  readonly version: number;
  protected raw: Buffer | undefined;

  constructor(kv: Pick<EtcdKeyValue, 'key' | 'value' | 'mod_revision' | 'create_revision' | 'version'>) {
    this.key = kv.key.toString();
    this.raw = kv.value;
    // Numbers from our watch client (Number() of a number is the number), strings from fakes.
    this.modRevision = Number(kv.mod_revision);
    this.createRevision = Number(kv.create_revision);
    this.version = Number(kv.version);
  }

  get value(): string {
    return this.raw!.toString();
  }
}

/**
 * A watched key-value keeps its string once read (the own-echo check may read it before the
 * parse) and lets the view go. Until read it holds a view of the watch response's message: the
 * informer reads or drops it while handling the response and keeps neither this object nor the view.
 */
class WatchedKeyValue extends ListedKeyValue {
  private text: string | undefined;

  override get value(): string {
    if (this.text === undefined) {
      this.text = super.value;
      this.raw = undefined;
    }
    return this.text;
  }
}

/** The smallest key greater than every key with this prefix (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
