// Log lines written in one turn of the event loop leave in one write. stderr under a supervisor
// is a pipe, which Node writes synchronously on Linux: one blocking write per line. At the
// default level every state change is a line (76,000 at a cold start of 100,000 containers),
// and those writes were about 10 µs each, 0.8 s of the cold start's CPU (docs/performance.md).
import { Writable } from 'node:stream';

/** What the batcher writes to: a stream that can hold writes back (cork) and let them go together (uncork). */
export interface CorkableStream {
  write(chunk: string | Uint8Array): unknown;
  cork(): void;
  uncork(): void;
}

/**
 * `stream` with blocking writes when it sits on a pipe or a terminal (stderr under a supervisor
 * or a container runtime). Node writes a pipe without blocking: what the reader has not taken
 * waits in libuv's queue, and `process.exit` drops it — 2,000 lines logged before an exit in the
 * same turn left 1,426 (a reader at full speed) or none (a reader 1–2 s late; test/line-batcher.test.ts).
 * Blocking writes lose nothing: a writer faster than its reader waits, as a Go or C program does
 * on stderr, instead of queueing without bound. Files are written synchronously already.
 */
export function blockingWrites<S extends CorkableStream>(stream: S): S {
  const handle = (stream as { _handle?: { setBlocking?: (blocking: boolean) => number } })._handle;
  handle?.setBlocking?.(true);
  return stream;
}

/** Every batcher with lines held back, flushed when the process exits (the crash policy's line comes after them). */
const holding = new Set<LineBatcher>();
let exitHooked = false;

/** Let every held line go now, synchronously where the stream writes synchronously (stderr, a file or a pipe on Linux). */
export function flushHeldLines(): void {
  for (const b of [...holding]) b.flush();
}

export class LineBatcher extends Writable {
  private held = false;
  private readonly release = (): void => this.flush();

  constructor(private readonly target: CorkableStream) {
    super({ decodeStrings: false });
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', flushHeldLines);
    }
  }

  override _write(chunk: string | Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.held) {
      this.held = true;
      holding.add(this);
      this.target.cork();
      setImmediate(this.release);
    }
    this.target.write(chunk);
    callback();
  }

  /** Lets the held lines go (at the next turn by itself). */
  flush(): void {
    if (!this.held) return;
    this.held = false;
    holding.delete(this);
    this.target.uncork();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flush();
    callback();
  }
}
