// Credentials kept in files (certificates, keys, CA bundles, token files) are rotated by writing
// new files, often by swapping a symlink (Kubernetes Secrets, cert-manager). A FileReloader
// reads its files at start (a problem is a start-up error naming the file), then polls them
// and, when their bytes changed, builds the new value and hands it on. A value that cannot be
// built (unreadable, invalid, half-rotated) leaves the old one in place: logged at error and
// counted, once per distinct content, until the files change again.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../controller/logger.js';
import { errorMessage } from '../../controller/errors.js';

export type ReloadOutcome = 'success' | 'error';

/** statemanager_credentials_reloads_total{what,outcome} and the time of the last good load. */
export interface ReloadMetrics {
  reloaded(what: string, outcome: ReloadOutcome): void;
  /** A value was loaded (at start, or reloaded) at `epochSeconds`. */
  loaded(what: string, epochSeconds: number): void;
}

export interface WatchedFile {
  /** How the file is named in messages: `token file`, `gRPC TLS key`. */
  label: string;
  path: string;
}

export interface FileReloaderOptions<T> {
  /** The metric label and log field: `grpc_tls`, `grpc_tokens`. */
  what: string;
  files: readonly WatchedFile[];
  /** The value from the files' contents (by path); throws, naming the file, when they make none. */
  build(contents: ReadonlyMap<string, Buffer>): T;
  /** Puts a built value in service; called once at start and after each successful reload. */
  apply(value: T, reloaded: boolean): void;
  /** Poll period. */
  intervalMs: number;
  logger: Logger;
  metrics?: ReloadMetrics;
  read?: (path: string) => Promise<Buffer>;
  now?: () => number;
  /** The poll timer; setInterval (unref'd) by default. */
  every?: (fn: () => void, ms: number) => { stop(): void };
}

/** Reads after a failed build before contents that keep changing are left to the next poll. */
const SETTLE_READS = 4;

interface FileContents {
  contents: Map<string, Buffer>;
  fingerprint: string;
}

/** What one poll did. */
export type PollResult = 'unchanged' | 'reloaded' | 'failed';

export class FileReloader<T> {
  private readonly read: (path: string) => Promise<Buffer>;
  /** Fingerprint of the contents in service, and of the last contents that failed. */
  private applied = '';
  private failed = '';
  private timer: { stop(): void } | undefined;
  private polling: Promise<PollResult> | undefined;

  constructor(private readonly o: FileReloaderOptions<T>) {
    this.read = o.read ?? ((p) => readFile(p));
  }

  /** The first load: throws (naming the file) when it fails; then polls every intervalMs. */
  async start(): Promise<T> {
    const { contents, fingerprint } = await this.readAll();
    const value = this.o.build(contents);
    this.applied = fingerprint;
    this.o.apply(value, false);
    this.o.metrics?.loaded(this.o.what, this.nowSeconds());
    if (this.o.files.length > 0) {
      const every = this.o.every ?? everyInterval;
      this.timer = every(() => void this.poll(), this.o.intervalMs);
    }
    return value;
  }

  stop(): void {
    this.timer?.stop();
    this.timer = undefined;
  }

  /** One look at the files; a poll still running is joined, not doubled. */
  poll(): Promise<PollResult> {
    this.polling ??= this.check().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async check(): Promise<PollResult> {
    let read: FileContents;
    try {
      read = await this.readAll();
    } catch (err) {
      return this.failure(`unreadable:${errorMessage(err)}`, err);
    }
    if (read.fingerprint === this.applied) {
      this.failed = '';
      return 'unchanged';
    }
    let value: T;
    try {
      value = this.o.build(read.contents);
    } catch (err) {
      // Files read one after another can straddle a rotation (a certificate from one Secret
      // version, its key from the next), and so can a second read. Contents are reported broken
      // only once two reads in a row agree; contents still moving wait for the next poll.
      const settled = await this.settle(read, err);
      if (settled.outcome !== 'built') return settled.outcome;
      read = settled.read;
      value = settled.value;
    }
    this.applied = read.fingerprint;
    this.failed = '';
    this.o.apply(value, true);
    this.o.metrics?.reloaded(this.o.what, 'success');
    this.o.metrics?.loaded(this.o.what, this.nowSeconds());
    this.o.logger.info('credentials reloaded', { what: this.o.what, files: this.o.files.map((f) => f.path) });
    return 'reloaded';
  }

  /** Reads again after contents that did not build, until two reads agree or a build succeeds. */
  private async settle(first: FileContents, firstError: unknown): Promise<{ outcome: 'built'; read: FileContents; value: T } | { outcome: PollResult }> {
    let last = first;
    let lastError = firstError;
    for (let attempt = 0; attempt < SETTLE_READS; attempt++) {
      let again: FileContents;
      try {
        again = await this.readAll();
      } catch (err) {
        return { outcome: this.failure(`unreadable:${errorMessage(err)}`, err) };
      }
      if (again.fingerprint === last.fingerprint) return { outcome: this.failure(last.fingerprint, lastError) };
      if (again.fingerprint === this.applied) {
        this.failed = '';
        return { outcome: 'unchanged' };
      }
      try {
        return { outcome: 'built', read: again, value: this.o.build(again.contents) };
      } catch (err) {
        last = again;
        lastError = err;
      }
    }
    this.o.logger.warn('credential files still changing: read again at the next poll', { what: this.o.what });
    return { outcome: 'unchanged' };
  }

  private failure(fingerprint: string, err: unknown): PollResult {
    // A file that stays broken is reported once, not at every poll.
    if (fingerprint !== this.failed) {
      this.failed = fingerprint;
      this.o.metrics?.reloaded(this.o.what, 'error');
      this.o.logger.error('credentials not reloaded: keeping the ones in service', { what: this.o.what, error: errorMessage(err) });
    }
    return 'failed';
  }

  private async readAll(): Promise<FileContents> {
    const contents = new Map<string, Buffer>();
    const hash = createHash('sha256');
    for (const f of this.o.files) {
      let data: Buffer;
      try {
        data = await this.read(f.path);
      } catch (err) {
        throw new Error(`cannot read ${f.label} ${f.path}: ${errorMessage(err)}`, { cause: err });
      }
      contents.set(f.path, data);
      hash.update(f.path).update('\0').update(String(data.length)).update('\0').update(data);
    }
    return { contents, fingerprint: hash.digest('hex') };
  }

  private nowSeconds(): number {
    return (this.o.now ?? Date.now)() / 1000;
  }
}

function everyInterval(fn: () => void, ms: number): { stop(): void } {
  const t = setInterval(fn, ms);
  t.unref();
  return { stop: () => clearInterval(t) };
}
