// The process-level policy for an exception nothing handled: it means a bug, and the process may
// be half broken (a stream without its handler, a timer never rearmed). Log it with context,
// synchronously, and exit with EX_SOFTWARE so the supervisor (Kubernetes, systemd) starts a
// clean process, which lists everything again and resyncs: nothing is lost, because etcd holds
// every state and every pending reconcile request.
import { writeSync } from 'node:fs';
import { errorMessage } from '../../controller/errors.js';
import { flushHeldLines } from '../observability/line-batcher.js';

export const CRASH_EXIT_CODE = 70;

export interface CrashPolicyOptions {
  /** Extra context for the log line (identity, leadership). */
  context?: () => Record<string, unknown>;
  onCrash?: (origin: string) => void;
  exit?: (code: number) => void;
}

export function installCrashPolicy(o: CrashPolicyOptions = {}): void {
  const exit = o.exit ?? ((code: number) => process.exit(code));
  let crashing = false;
  const crash = (err: unknown, origin: string): void => {
    if (crashing) return;
    crashing = true;
    try {
      o.onCrash?.(origin);
    } catch {
      // counting must not stop the exit
    }
    const line = {
      level: 'error',
      message: 'unexpected exception: exiting so the supervisor restarts a clean process',
      origin,
      error: errorMessage(err),
      stack: err instanceof Error ? err.stack : undefined,
      ...safe(o.context),
      timestamp: new Date().toISOString(),
    };
    // Synchronous: winston's stream may never flush once we exit. The lines logged before it go first.
    try {
      flushHeldLines();
    } catch {
      // the crash line still goes out
    }
    try {
      writeSync(2, JSON.stringify(line) + '\n');
    } catch {
      // nowhere left to say it
    }
    exit(CRASH_EXIT_CODE);
  };
  process.on('uncaughtException', (err, origin) => crash(err, origin));
  process.on('unhandledRejection', (reason) => crash(reason, 'unhandledRejection'));
}

function safe(context: (() => Record<string, unknown>) | undefined): Record<string, unknown> {
  try {
    return context?.() ?? {};
  } catch {
    return {};
  }
}
