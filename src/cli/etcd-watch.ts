// A watch on etcd: the handlers are attached before the watch connects (events from the start
// revision can arrive in the same read as the confirmation), and the promise resolves once etcd
// confirmed the watch, within the command's deadline.
import { toKeyValue } from '../etcd/lister-watcher.js';
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
  /** The stream broke; the watch resumes by itself. */
  disconnected?(err: Error): void;
  /** The watch failed. */
  fail(err: CliError): void;
}

export interface KeyWatch {
  close(): void;
}

export async function watchKeys(etcd: EtcdConnection, target: KeyWatchTarget, on: KeyWatchHandlers): Promise<KeyWatch> {
  const builder = etcd.legacyWatchBuilder();
  const watcher = (target.prefix ? builder.prefix(target.key) : builder.key(target.key)).startRevision(String(target.startRevision)).watcher();
  watcher.on('put', (x) => on.put?.(toKeyValue(x)));
  watcher.on('delete', (x) => on.delete?.(toKeyValue(x)));
  watcher.on('disconnected', (err) => on.disconnected?.(err));
  watcher.on('error', (err) => on.fail(etcd.failure(err)));
  const close = (): void => void watcher.cancel().catch(() => undefined);
  try {
    await etcd.bounded(
      () =>
        new Promise<void>((resolve, reject) => {
          watcher.once('connected', () => resolve());
          watcher.once('error', reject);
        }),
    );
  } catch (err) {
    close();
    throw err;
  }
  return { close };
}
