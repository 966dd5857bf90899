// V8's optimizing compilers (Maglev and TurboFan) held off while the process is small and idle
// (issue 22: a small footprint on one vehicle). Loading the dependencies and parsing the protos is
// hot enough for V8 to optimize the parsers, which brings in the compilers' own code (about 8 MB of
// the node binary's pages, kept resident) and their zones: one vehicle idled at 95 MB with them and
// 82 MB without (docs/performance.md, "Optimizing compilers held off while small"). The
// interpreter and Sparkplug are plenty for a vehicle's few events; a large fleet (its first full
// page of a list, 5,000 keys), a heap past a vehicle's or a started process busy for a second (10 %
// of the event loop) turns them on for good.
import { performance } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { outgrown, type OutgrownReason } from './outgrown.js';

/**
 * Flags with which the operator already decided how V8 compiles (as V8 names them: `_` or `-`,
 * `--no-`, `--no_` or `--no` before the name, `=value` after): with any of them on node's command
 * line or in NODE_OPTIONS the compilers are left as given.
 */
const OPERATOR_FLAGS: ReadonlySet<string> = new Set(['jitless', 'lite-mode', 'opt', 'maglev', 'turbofan', 'max-opt']);

/** The flag an argument names, as V8 reads it (`--no_turbofan` and `--noturbofan` are `turbofan`), or undefined. */
export function v8FlagName(arg: string): string | undefined {
  const m = /^--?([^=\s]+)/.exec(arg);
  if (!m) return undefined;
  const name = m[1]!.replace(/_/g, '-');
  if (name.startsWith('no-')) return name.slice(3);
  if (name.startsWith('no') && OPERATOR_FLAGS.has(name.slice(2))) return name.slice(2);
  return name;
}

/** NODE_OPTIONS split as node splits it: on spaces, outside double quotes, with `\` escaping in them. */
export function splitNodeOptions(options: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  let any = false;
  for (let i = 0; i < options.length; i++) {
    const c = options[i]!;
    if (quoted && c === '\\' && i + 1 < options.length) current += options[++i];
    else if (c === '"') {
      quoted = !quoted;
      any = true;
    } else if (c === ' ' && !quoted) {
      if (any || current !== '') out.push(current);
      current = '';
      any = false;
    } else {
      current += c;
      any = true;
    }
  }
  if (any || current !== '') out.push(current);
  return out;
}

/** Whether the operator's node flags already say how V8 compiles (then nothing is held). */
export function operatorChoseCompilers(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return [...execArgv, ...splitNodeOptions(nodeOptions ?? '')].some((arg) => {
    const name = v8FlagName(arg);
    return name !== undefined && OPERATOR_FLAGS.has(name);
  });
}

/**
 * Whether V8 runs without code space (`--jitless`, which `--lite-mode` implies): it then has no
 * WebAssembly. Turning a compiler on there ends the process with SIGSEGV, so this is checked
 * whatever the flags seem to say (found by black-box probing: a quoted `"--jitless"` in
 * NODE_OPTIONS, which node honours, was missed by a pattern and the process crashed at release).
 */
export function runningJitless(): boolean {
  return typeof WebAssembly === 'undefined';
}

/** Heap used from which the process is no vehicle: one vehicle uses 22–30 MB with its garbage. */
export const OPTIMIZE_HEAP_BYTES = 48 * 1024 * 1024;
/** Once started, a check of the event loop's utilization every this many milliseconds... */
export const OPTIMIZE_CHECK_MS = 500;
/**
 * ...at least this busy (a vehicle idles at well under 1 %; without these compilers the state
 * store's write path takes 1.5× the CPU; at 20 % a fleet of 4,000 containers taking a steady 200
 * changes a second, 12.5 % of a core, stayed held for 26 s)...
 */
export const OPTIMIZE_BUSY_UTILIZATION = 0.1;
/** ...this many checks in a row (1 s). */
export const OPTIMIZE_BUSY_CHECKS = 2;

/** Why the compilers were turned on: the heap, a busy event loop, or a list larger than a vehicle's (the app says). */
export type OptimizeReason = OutgrownReason | 'fleet';

/** The handle of `holdOptimizingCompilers`. */
export interface OptimizerHold {
  /** Whether the compilers are held off now. */
  readonly held: boolean;
  /** Turns them on (once) and tells the listener why. */
  release(reason: OptimizeReason): void;
  /** The listener told when they are turned on (a log line: the logger comes after the hold). */
  onRelease(listener: (reason: OptimizeReason) => void): void;
  /**
   * From now on, turns them on when the heap used reaches `heapBytes`, or, once `markStartedUp`
   * was called, when the event loop is busy for `busyChecks` checks of `periodMs` in a row (a
   * vehicle's own start is busy for a moment). The timer does not keep the process alive.
   */
  releaseWhenOutgrown(opts?: { heapBytes?: number; periodMs?: number; busyChecks?: number }): void;
  /** The process is ready: from now on a busy event loop counts. */
  markStartedUp(): void;
  stop(): void;
}

/**
 * Turns the optimizing compilers off now, unless the operator's flags decided (then the returned
 * hold is not `held` and does nothing). Must run after V8 has started with them available (never
 * as a command-line flag of ours): turning a compiler on at run time needs its dispatcher, which
 * V8 makes at start only for a compiler that was on.
 */
export function holdOptimizingCompilers(
  operatorChose = operatorChoseCompilers(process.execArgv, process.env.NODE_OPTIONS),
): OptimizerHold {
  let held = !operatorChose && !runningJitless();
  let startedUp = false;
  // The event loop's utilization counted from the last check, or from the start-up's end.
  let last = performance.eventLoopUtilization();
  let onRelease: (reason: OptimizeReason) => void = () => {};
  let timer: NodeJS.Timeout | undefined;
  if (held) {
    setFlagsFromString('--no-maglev');
    setFlagsFromString('--no-turbofan');
  }
  const stop = (): void => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  const release = (reason: OptimizeReason): void => {
    if (!held) return;
    held = false;
    stop();
    setFlagsFromString('--maglev');
    setFlagsFromString('--turbofan');
    onRelease(reason);
  };
  return {
    get held() {
      return held;
    },
    release,
    markStartedUp: () => {
      startedUp = true;
      last = performance.eventLoopUtilization();
    },
    onRelease: (listener) => {
      onRelease = listener;
    },
    releaseWhenOutgrown: ({ heapBytes = OPTIMIZE_HEAP_BYTES, periodMs = OPTIMIZE_CHECK_MS, busyChecks = OPTIMIZE_BUSY_CHECKS } = {}) => {
      if (!held || timer !== undefined) return;
      const limits = { heapBytes, busyChecks, utilization: OPTIMIZE_BUSY_UTILIZATION };
      let busy = 0;
      timer = setInterval(() => {
        const now = performance.eventLoopUtilization();
        const utilization = startedUp ? performance.eventLoopUtilization(now, last).utilization : 0;
        const next = outgrown(busy, utilization, getHeapStatistics().used_heap_size, limits);
        last = now;
        busy = next.busy;
        if (next.reason !== undefined) release(next.reason);
      }, periodMs);
      timer.unref();
    },
    stop,
  };
}
