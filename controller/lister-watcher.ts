// The storage boundary of an informer, as client-go's ListerWatcher: a consistent list of a
// prefix at one revision, and a watch of that prefix from a given revision on.

export interface KeyValue {
  key: string;
  value: string;
  modRevision: number;
  createRevision: number;
  version: number;
}

export interface ListResult {
  items: KeyValue[];
  /** The store revision the list was taken at. */
  revision: number;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  /** For a delete, value is empty and modRevision is the revision of the deletion. */
  kv: KeyValue;
}

export interface WatchCallbacks {
  /** Events of one watch response, in revision order. */
  onEvents(events: WatchEvent[], headerRevision: number): void;
  /** The watch ended and will not resume by itself (canceled, compacted, closed by the server). */
  onError(err: Error): void;
  /** Every change up to `revision` has been delivered (a progress notification). */
  onProgress?(revision: number): void;
  /** The connection dropped; the watch resumes by itself from the last revision it saw. */
  onDisconnected?(err: Error): void;
  onConnected?(): void;
}

/** The watch cannot go on because history from `fromRevision` was compacted away: list again. */
export class WatchCompactedError extends Error {
  constructor(
    readonly fromRevision: number,
    readonly compactRevision: number,
  ) {
    super(`watch from revision ${fromRevision} cannot resume: etcd compacted up to ${compactRevision}`);
    this.name = 'WatchCompactedError';
  }
}

/**
 * The watch cannot go on because the changes since `fromRevision` come in a message larger than
 * the client may receive (a long partition's backlog): resuming would fail the same way, so list
 * again (a list comes in pages) and watch from there.
 */
export class WatchBacklogTooLargeError extends Error {
  constructor(
    readonly fromRevision: number,
    detail: string,
  ) {
    super(`watch from revision ${fromRevision} cannot resume: ${detail}`);
    this.name = 'WatchBacklogTooLargeError';
  }
}

export interface WatchHandle {
  close(): Promise<void>;
}

export interface ListerWatcher {
  list(prefix: string): Promise<ListResult>;
  /**
   * Optional: the same consistent list, handed over page by page as it arrives, so a large prefix
   * is never held whole; `revision` is the list's (the same for every page). Resolves with it.
   */
  listPages?(prefix: string, onPage: (items: KeyValue[], revision: number) => void): Promise<number>;
  watch(prefix: string, fromRevision: number, callbacks: WatchCallbacks): WatchHandle;
  /** True when `revision` has been compacted away, so a watch cannot resume from it. */
  isCompacted(revision: number): Promise<boolean>;
  /** Optional: the most keys a page of a list asks for now (smaller after pages ran out of their deadline); said in the list's progress lines. */
  readonly pageLimit?: number;
  /**
   * Optional: the store's current revision, read consistently. Below a revision the informer has
   * seen, the store's history was replaced (restored from an older backup, a new volume): the
   * informer then lists again and takes the list as it is.
   */
  currentRevision?(): Promise<number>;
}
