// Container lists written at once, server-wide. When every node agent sends its list at the same
// moment (statemanager or the network came back), starting all of them together made each wait
// behind all the others for etcd and for the event loop: 5,000 lists at once from 5,000
// connections, 4,989 ran out of their 5 s etcd deadline. Taken in turns (FIFO, `concurrency` at
// a time), each list gets etcd's whole deadline once it starts; a caller waits its turn at most
// until its own deadline (or `maxWaitMs`), then is told to send again.
//
// What waits is held in memory, so the bytes waiting are bounded too (`maxWaitingBytes`): found
// by black-box probing, one local process with 60 connections and 16 lists of 600 KB in flight on
// each (loopback callers are budgeted per connection) took the process from 144 MB to 1.08 GB.
// One more list past the bound is refused at once, before it waits, and nothing of it is written.
//
// One node's lists are written one after another, in the order they came (a line per node): a
// node agent sends its next list when the last is answered, so lists of one node at once come
// from a caller that floods, or from two agents that claim one node. Found by black-box probing:
// one connection with 16 changed lists of one node in flight raced itself (56 answered ABORTED
// "the container keys kept changing") and took 16 of the turns, the other 500 nodes' lists
// going from 3.6 to 46 ms at the median. In a line it holds one turn, and the last list to come is
// the last written.
import PQueue from 'p-queue';

export class WriteTurnTimeoutError extends Error {
  constructor(readonly waitedMs: number) {
    super(`statemanager is writing other lists: waited ${waitedMs} ms for a turn; send the list again`);
    this.name = 'WriteTurnTimeoutError';
  }
}

export class WriteTurnsFullError extends Error {
  constructor(
    readonly waitingBytes: number,
    readonly maxWaitingBytes: number,
  ) {
    super(`statemanager holds ${Math.round(waitingBytes / 1024)} KiB of other lists waiting to be written (at most ${Math.round(maxWaitingBytes / 1024)} KiB); nothing was written; send the list again`);
    this.name = 'WriteTurnsFullError';
  }
}

export interface WriteTurnsOptions {
  /** Writes at once; 0 turns the turns off (every write starts at once). */
  concurrency: number;
  /** Longest wait for a turn when the caller set no earlier deadline. */
  maxWaitMs: number;
  /** Bytes of the writes waiting for a turn, at most; a write that would wait past it is refused. 0 or absent: no bound. */
  maxWaitingBytes?: number;
}

export class WriteTurns {
  private readonly queue: PQueue | undefined;
  private bytesWaiting = 0;
  /** Per key with a write holding its line (waiting for a turn or under way): the writes waiting behind it, in order. */
  private readonly lines = new Map<string, (() => void)[]>();
  private waitingInLines = 0;

  constructor(private readonly o: WriteTurnsOptions) {
    this.queue = o.concurrency > 0 ? new PQueue({ concurrency: o.concurrency }) : undefined;
  }

  /** Writes waiting for a turn (behind their key's earlier write, or for one of the turns). */
  get waiting(): number {
    return (this.queue?.size ?? 0) + this.waitingInLines;
  }

  /** Bytes of the writes waiting for a turn (as given to run). */
  get waitingBytes(): number {
    return this.bytesWaiting;
  }

  /** Writes under way. */
  get running(): number {
    return this.queue?.pending ?? 0;
  }

  /**
   * Runs `write` in its turn. Rejects with WriteTurnTimeoutError, without running it, when no turn
   * came by `callerDeadline` (epoch ms) or maxWaitMs; once started, a write runs to its end.
   * `bytes`: what the write holds while it waits; it is refused at once (WriteTurnsFullError)
   * when it would wait and the bytes waiting would pass maxWaitingBytes. Writes with the same
   * `key` (one node's lists) run one after another, in the order run was called, each taking
   * a turn only when the one before it has ended.
   */
  run<T>(write: () => Promise<T>, callerDeadline?: number, bytes = 0, key?: string): Promise<T> {
    const queue = this.queue;
    if (!queue) return write();
    const max = this.o.maxWaitingBytes ?? 0;
    const waits = (key !== undefined && this.lines.has(key)) || queue.pending + queue.size >= this.o.concurrency;
    if (waits && max > 0 && this.bytesWaiting + bytes > max) return Promise.reject(new WriteTurnsFullError(this.bytesWaiting, max));
    let held = bytes;
    this.bytesWaiting += held;
    const release = (): void => {
      this.bytesWaiting -= held;
      held = 0;
    };
    const started = Date.now();
    const waitUntil = Math.min(callerDeadline ?? Infinity, started + this.o.maxWaitMs);
    const done = key === undefined ? this.inTurn(queue, write, started, waitUntil, release) : this.inLine(queue, key, write, started, waitUntil, release);
    // A wait that ended without a turn (the caller's deadline) gives its bytes back too.
    done.catch(release);
    return done;
  }

  private inLine<T>(queue: PQueue, key: string, write: () => Promise<T>, started: number, waitUntil: number, release: () => void): Promise<T> {
    const inTurn = (): Promise<T> => this.inTurn(queue, write, started, waitUntil, release).finally(() => this.leaveLine(key));
    // A free line is entered at once, not a microtask later: a write that starts at once must
    // not count as waiting bytes for the calls that come right after it.
    const entered = this.enterLine(key, started, waitUntil);
    return entered === undefined ? inTurn() : entered.then(inTurn);
  }

  private inTurn<T>(queue: PQueue, write: () => Promise<T>, started: number, waitUntil: number, release: () => void): Promise<T> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new WriteTurnTimeoutError(Date.now() - started)), Math.max(0, waitUntil - Date.now()));
    // A process that is stopping exits when its work is done, not when the last wait would end.
    timer.unref();
    return queue.add(
      () => {
        // Started: the signal must not cut a write under way.
        clearTimeout(timer);
        release();
        return write();
      },
      { signal: abort.signal },
    );
  }

  /** Undefined when `key`'s line is free (it is this write's now); else resolves when the writes before it in the line have ended. */
  private enterLine(key: string, started: number, waitUntil: number): Promise<void> | undefined {
    const waiters = this.lines.get(key);
    if (waiters === undefined) {
      this.lines.set(key, []);
      return undefined;
    }
    return new Promise((resolve, reject) => {
      const go = (): void => {
        clearTimeout(timer);
        this.waitingInLines--;
        resolve();
      };
      const timer = setTimeout(() => {
        // Out of the line: the writes behind it move up, the one before it is unaffected.
        const at = waiters.indexOf(go);
        if (at >= 0) {
          waiters.splice(at, 1);
          this.waitingInLines--;
        }
        reject(new WriteTurnTimeoutError(Date.now() - started));
      }, Math.max(0, waitUntil - started));
      timer.unref();
      waiters.push(go);
      this.waitingInLines++;
    });
  }

  private leaveLine(key: string): void {
    const waiters = this.lines.get(key);
    const next = waiters?.shift();
    if (next !== undefined) next();
    else this.lines.delete(key);
  }
}
