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
//
// Under a load the turns cannot keep up with (thousands of node agents, each on its own
// connection), a line bounded only by bytes and deadlines grew to 18,000 lists: each waited until
// its caller had given up, and turns went to lists whose callers were gone, so almost no answer
// came in time, the event loop fell 10 s behind and the leader lost its lease (black-box probing:
// 20,000 agents on 4,000 connections, 4,915 of 199,625 calls answered in 150 s, RSS 3.1 GB). So a
// list is refused at once when the line is full (`maxWaiting`), or when the pace the line moves
// at (the turns' recent time per write) says its turn would come after its caller's deadline; and
// a turn that comes after that deadline, or after the caller went away, writes nothing.
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

/** Why a write is refused before it waits: the line is full, or moves too slowly for the caller's deadline. */
export interface Busy {
  waiting: number;
  reason: 'full' | 'slow';
  /** For 'slow': about how long the writes ahead take. */
  expectedWaitMs: number;
}

/** What a Busy refusal says. */
export function busyMessage(b: Busy): string {
  return b.reason === 'full'
    ? `statemanager has ${b.waiting} other lists waiting to be written (the most it holds); nothing was written; send the list again`
    : `statemanager has ${b.waiting} other lists waiting to be written, about ${Math.ceil(b.expectedWaitMs)} ms of work, past this call's deadline; nothing was written; send the list again`;
}

/** The line is full, or moves too slowly for the caller's deadline: refused at once, nothing held or written. */
export class WriteTurnsBusyError extends Error {
  constructor(readonly busy: Busy) {
    super(busyMessage(busy));
    this.name = 'WriteTurnsBusyError';
  }
}

/** The caller went away (cancelled, or its deadline passed) before its turn: nothing was written. */
export class WriteTurnCancelledError extends Error {
  constructor() {
    super('the call was cancelled before its turn; nothing was written');
    this.name = 'WriteTurnCancelledError';
  }
}

/** One write's wait: when it came, until when it may wait, what gives its bytes back, its caller's going away. */
interface Turn {
  started: number;
  waitUntil: number;
  release: () => void;
  /** Whether it had to wait: a write that starts at once is not checked against its deadline here (etcd's calls are). */
  waits: boolean;
  /** The caller went away (cancelled, or its deadline passed); what to do then while it waits. */
  gone: boolean;
  onGone: (() => void) | undefined;
}

/** Weight of the latest write in the turns' running mean time per write. */
const PACE_WEIGHT = 0.05;

export interface WriteTurnsOptions {
  /** Writes at once; 0 turns the turns off (every write starts at once). */
  concurrency: number;
  /** Longest wait for a turn when the caller set no earlier deadline. */
  maxWaitMs: number;
  /** Bytes of the writes waiting for a turn, at most; a write that would wait past it is refused. 0 or absent: no bound. */
  maxWaitingBytes?: number;
  /** Writes waiting for a turn (lines included), at most; one more is refused at once. 0 or absent: no bound. */
  maxWaiting?: number;
  /** A monotonic clock in ms for the pace of the turns (default performance.now). */
  now?: () => number;
}

export class WriteTurns {
  private readonly queue: PQueue | undefined;
  private bytesWaiting = 0;
  /** Per key with a write holding its line (waiting for a turn or under way): the writes waiting behind it, in order. */
  private readonly lines = new Map<string, (() => void)[]>();
  private waitingInLines = 0;
  /** Running mean of a write's time from its turn to its end, in ms; undefined until one has ended. */
  private msPerWrite: number | undefined;
  private readonly now: () => number;

  constructor(private readonly o: WriteTurnsOptions) {
    this.queue = o.concurrency > 0 ? new PQueue({ concurrency: o.concurrency }) : undefined;
    this.now = o.now ?? (() => performance.now());
  }

  /**
   * About how long a write that joins the line now waits for its turn: the writes ahead of it
   * taken `concurrency` at a time, at the recent time per write. Undefined until a write has ended.
   */
  expectedWaitMs(): number | undefined {
    if (this.msPerWrite === undefined) return undefined;
    return Math.ceil((this.waiting + 1) / this.o.concurrency) * this.msPerWrite;
  }

  /**
   * Whether a write with `callerDeadline` (epoch ms) that would wait is refused at once: the line
   * is full (maxWaiting), or its turn would come after the deadline. Cheap, and asked before a
   * list is validated, so the calls an overloaded server refuses cost it little (under 20,000
   * agents the refusals' own work, an Error's stack each among it, took most of a core).
   * Undefined: a turn is free, or the write may wait.
   */
  admission(callerDeadline: number | undefined): Busy | undefined {
    const queue = this.queue;
    if (!queue || queue.pending + queue.size < this.o.concurrency) return undefined;
    return this.busy(callerDeadline);
  }

  /** Why a write that would wait is refused (the line full, or too slow for the deadline); undefined: it may wait. */
  private busy(callerDeadline: number | undefined): Busy | undefined {
    const maxWaiting = this.o.maxWaiting ?? 0;
    if (maxWaiting > 0 && this.waiting >= maxWaiting) return { waiting: this.waiting, reason: 'full', expectedWaitMs: 0 };
    const expected = this.expectedWaitMs();
    if (callerDeadline !== undefined && expected !== undefined && Date.now() + expected > callerDeadline) return { waiting: this.waiting, reason: 'slow', expectedWaitMs: expected };
    return undefined;
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
  run<T>(write: () => Promise<T>, callerDeadline?: number, bytes = 0, key?: string, onGone?: (fn: () => void) => void): Promise<T> {
    const queue = this.queue;
    if (!queue) return write();
    const max = this.o.maxWaitingBytes ?? 0;
    const waits = (key !== undefined && this.lines.has(key)) || queue.pending + queue.size >= this.o.concurrency;
    if (waits) {
      if (max > 0 && this.bytesWaiting + bytes > max) return Promise.reject(new WriteTurnsFullError(this.bytesWaiting, max));
      const busy = this.busy(callerDeadline);
      if (busy !== undefined) return Promise.reject(new WriteTurnsBusyError(busy));
    }
    let held = bytes;
    this.bytesWaiting += held;
    const release = (): void => {
      this.bytesWaiting -= held;
      held = 0;
    };
    const started = Date.now();
    const waitUntil = Math.min(callerDeadline ?? Infinity, started + this.o.maxWaitMs);
    const turn: Turn = { started, waitUntil, release, waits, gone: false, onGone: undefined };
    // The caller's going away (one callback per call, not an AbortSignal: aborting one makes a
    // DOMException with its stack, a visible share of the CPU of thousands of calls a second).
    onGone?.(() => {
      turn.gone = true;
      turn.onGone?.();
    });
    // Gone already (onGone called back at once): its bytes are given back, or they stayed counted
    // as waiting for good, and enough of them refused every list that had to wait (code review).
    if (turn.gone) {
      release();
      return Promise.reject(new WriteTurnCancelledError());
    }
    const done = key === undefined ? this.inTurn(queue, write, turn) : this.inLine(queue, key, write, turn);
    // A wait that ended without a turn (the caller's deadline) gives its bytes back too.
    done.catch(release);
    return done;
  }

  private inLine<T>(queue: PQueue, key: string, write: () => Promise<T>, turn: Turn): Promise<T> {
    const inTurn = (): Promise<T> => this.inTurn(queue, write, turn).finally(() => this.leaveLine(key));
    // A free line is entered at once, not a microtask later: a write that starts at once must
    // not count as waiting bytes for the calls that come right after it.
    const entered = this.enterLine(key, turn);
    return entered === undefined ? inTurn() : entered.then(inTurn);
  }

  private inTurn<T>(queue: PQueue, write: () => Promise<T>, turn: Turn): Promise<T> {
    const { started, waitUntil, release, waits } = turn;
    const timed = async (): Promise<T> => {
      const at = this.now();
      try {
        return await write();
      } finally {
        const ms = this.now() - at;
        this.msPerWrite = this.msPerWrite === undefined ? ms : this.msPerWrite + PACE_WEIGHT * (ms - this.msPerWrite);
      }
    };
    // A turn is free (nothing waits before it): no timer, no signal.
    if (!waits) {
      return queue.add(() => {
        release();
        return timed();
      });
    }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new WriteTurnTimeoutError(Date.now() - started)), Math.max(0, waitUntil - Date.now()));
    // A process that is stopping exits when its work is done, not when the last wait would end.
    timer.unref();
    turn.onGone = () => abort.abort(new WriteTurnCancelledError());
    return queue.add(
      () => {
        // Started: the signal must not cut a write under way.
        clearTimeout(timer);
        turn.onGone = undefined;
        release();
        // A turn that comes when nobody waits for it any more writes nothing: its caller went
        // away, or its deadline passed while the event loop was too busy to fire the timer.
        // Gone already (onGone called back at once): its bytes are given back, or they stayed counted
    // as waiting for good, and enough of them refused every list that had to wait (code review).
    if (turn.gone) {
      release();
      return Promise.reject(new WriteTurnCancelledError());
    }
        if (Date.now() >= waitUntil) return Promise.reject(new WriteTurnTimeoutError(Date.now() - started));
        return timed();
      },
      { signal: abort.signal },
    );
  }

  /** Undefined when `key`'s line is free (it is this write's now); else resolves when the writes before it in the line have ended. */
  private enterLine(key: string, turn: Turn): Promise<void> | undefined {
    const { started, waitUntil } = turn;
    const waiters = this.lines.get(key);
    if (waiters === undefined) {
      this.lines.set(key, []);
      return undefined;
    }
    return new Promise((resolve, reject) => {
      const go = (): void => {
        clearTimeout(timer);
        turn.onGone = undefined;
        this.waitingInLines--;
        resolve();
      };
      // Out of the line: the writes behind it move up, the one before it is unaffected.
      const leave = (err: Error): void => {
        clearTimeout(timer);
        turn.onGone = undefined;
        const at = waiters.indexOf(go);
        if (at >= 0) {
          waiters.splice(at, 1);
          this.waitingInLines--;
        }
        reject(err);
      };
      const timer = setTimeout(() => leave(new WriteTurnTimeoutError(Date.now() - started)), Math.max(0, waitUntil - started));
      timer.unref();
      turn.onGone = () => leave(new WriteTurnCancelledError());
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
