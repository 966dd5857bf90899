// Container lists written at once, server-wide. When every node agent sends its list at the same
// moment (statemanager or the network came back), starting all of them together made each wait
// behind all the others for etcd and for the event loop: 5,000 lists at once from 5,000
// connections, 4,989 ran out of their 5 s etcd deadline. Taken in turns (FIFO, `concurrency` at
// a time), each list gets etcd's whole deadline once it starts; a caller waits its turn at most
// until its own deadline (or `maxWaitMs`), then is told to send again.
import PQueue from 'p-queue';

export class WriteTurnTimeoutError extends Error {
  constructor(readonly waitedMs: number) {
    super(`statemanager is writing other lists: waited ${waitedMs} ms for a turn; send the list again`);
    this.name = 'WriteTurnTimeoutError';
  }
}

export interface WriteTurnsOptions {
  /** Writes at once; 0 turns the turns off (every write starts at once). */
  concurrency: number;
  /** Longest wait for a turn when the caller set no earlier deadline. */
  maxWaitMs: number;
}

export class WriteTurns {
  private readonly queue: PQueue | undefined;

  constructor(private readonly o: WriteTurnsOptions) {
    this.queue = o.concurrency > 0 ? new PQueue({ concurrency: o.concurrency }) : undefined;
  }

  /** Writes waiting for a turn. */
  get waiting(): number {
    return this.queue?.size ?? 0;
  }

  /** Writes under way. */
  get running(): number {
    return this.queue?.pending ?? 0;
  }

  /**
   * Runs `write` in its turn. Rejects with WriteTurnTimeoutError, without running it, when no turn
   * came by `callerDeadline` (epoch ms) or maxWaitMs; once started, a write runs to its end.
   */
  run<T>(write: () => Promise<T>, callerDeadline?: number): Promise<T> {
    const queue = this.queue;
    if (!queue) return write();
    const started = Date.now();
    const waitUntil = Math.min(callerDeadline ?? Infinity, started + this.o.maxWaitMs);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new WriteTurnTimeoutError(Date.now() - started)), Math.max(0, waitUntil - started));
    // A process that is stopping exits when its work is done, not when the last wait would end.
    timer.unref();
    return queue.add(
      () => {
        // Started: the signal must not cut a write under way.
        clearTimeout(timer);
        return write();
      },
      { signal: abort.signal },
    );
  }
}
