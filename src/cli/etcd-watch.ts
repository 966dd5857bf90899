// A watch on etcd through the project's own watch client (one gRPC stream per watch, resumed by
// itself after a broken stream), not etcd3's shared watch manager: the handlers are attached
// before the stream opens, and the promise resolves once etcd confirmed the watch, within the
// command's deadline.
import { prefixEnd, toKeyValue } from '../etcd/lister-watcher.js';
import type { EtcdWatch } from '../etcd/watch-client.js';
import type { EtcdConnection } from './etcd-connection.js';
import type { CliError } from './errors.js';
import type { KV } from './snapshot.js';

export interface KeyWatchTarget {
  /** A key, or with `prefix` every key under it. */
  key: string;
  prefix?: boolean;
  /** The first revision to deliver. */
  startRevision: number;
}

export interface KeyWatchHandlers {
  put?(kv: KV): void;
  delete?(kv: KV): void;
  /**
   * The stream broke after etcd confirmed the watch (once per outage, however many attempts it
   * takes); it resumes by itself from the next revision it has not seen.
   */
  disconnected?(err: Error): void;
  /** The watch has ended for good (compacted or canceled by etcd). */
  fail(err: CliError): void;
}

export async function watchKeys(etcd: EtcdConnection, target: KeyWatchTarget, on: KeyWatchHandlers): Promise<EtcdWatch> {
  const key = Buffer.from(target.key);
  /** etcd confirmed the watch (at least once); the stream is broken since the last confirmation. */
  let live = false;
  let lost = false;
  let created!: () => void;
  let ended!: (err: CliError) => void;
  const confirmed = new Promise<void>((resolve, reject) => {
    created = resolve;
    ended = reject;
  });
  // An end after the confirmation goes to `on.fail` only.
  confirmed.catch(() => undefined);
  const end = (message: string): void => {
    const err = etcd.failure(new Error(message));
    ended(err);
    on.fail(err);
  };
  const watch = etcd.watches.watch(
    { key, ...(target.prefix ? { rangeEnd: prefixEnd(key) } : {}), startRevision: target.startRevision },
    {
      onCreated: () => {
        live = true;
        lost = false;
        created();
      },
      onEvents: (events) => {
        for (const e of events) (e.type === 'Put' ? on.put : on.delete)?.(toKeyValue(e.kv));
      },
      onCompacted: (rev) => end(`the watch's start revision ${target.startRevision} was compacted (etcd keeps revisions from ${rev})`),
      onCanceled: (reason) => end(`etcd canceled the watch: ${reason}`),
      // Before the first confirmation there was no watch to lose: the deadline speaks for it.
      onDisconnected: (err) => {
        if (live && !lost) on.disconnected?.(err);
        lost = true;
      },
    },
  );
  try {
    await etcd.bounded(() => confirmed);
  } catch (err) {
    watch.close();
    throw err;
  }
  return watch;
}
