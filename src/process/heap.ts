// The V8 flags that follow from `memory` in the configuration, applied before the caches fill;
// and a young generation sized to the fleet (issue 22: a small footprint on one vehicle).
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import type { Config } from '../config/config.js';
import { outgrown } from './outgrown.js';
import { splitNodeOptions, v8FlagName } from './optimizers.js';

export function heapFlags(memory: Config['memory']): string[] {
  return memory.heapGrowthPercent > 0 ? [`--heap-growing-percent=${memory.heapGrowthPercent}`] : [];
}

/**
 * V8 reads this flag at every full collection, so setting it at start (before the informers
 * list) takes effect for the whole run; measured in docs/performance.md.
 */
export function applyHeapFlags(memory: Config['memory']): void {
  for (const f of heapFlags(memory)) setFlagsFromString(f);
}

/** V8's own factor by which a busy young generation grows. */
const YOUNG_GROWTH_DEFAULT = 2;
/**
 * The young generation grows no further than about this (V8's `new_space` size). Left to itself
 * V8 grows it to a maximum it derives from the machine's memory (128 MB on the 2-core bench
 * machine) and keeps it resident after a large fleet's cold start. The cap cannot be a flag set
 * at run time (V8 reads `--max-semi-space-size` once, when the heap is made), so
 * `growYoungGenerationWithFleet` lets it grow only while one more doubling stays below the cap;
 * checked after each collection, it can overshoot by a doubling. Measured at fleet 100k in
 * clean alternated pairs: peak RSS 435–475 → 328–376 MB (median 0.81×), CPU within the noise
 * (docs/performance.md, "Peak RSS at fleet 100k"). 16 MB rather than 8: a state write's objects
 * live until etcd answers it (20–50 ms at a cold start), so a young generation that fills every
 * 16 ms copied and promoted most of them; at 16 MB the fleet-100k cold start's scavenge pauses
 * were a third shorter for no higher peak ("A 16 MB young generation, taken"). 32 MB took the
 * peak to 276–293 MB, against the 300 MB target.
 */
export const MAX_NEW_SPACE_BYTES = 16 * 1024 * 1024;

function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * The growth factor for a young generation of `newSpace` bytes under a cap of `max`: V8's own
 * while one more doubling stays within the cap (V8 grows by the factor it reads at each
 * scavenge), 1 (no growth) from there.
 */
export function youngGrowthFactor(newSpace: number, max: number): number {
  return newSpace * YOUNG_GROWTH_DEFAULT <= max ? YOUNG_GROWTH_DEFAULT : 1;
}

/**
 * Heap used above which the young generation may grow: statemanager on one vehicle (3 packages,
 * 10 containers) uses 25–30 MB with its garbage; a fleet of 100,000 containers passes this in
 * the first second of its listing.
 */
export const SMALL_HEAP_BYTES = 64 * 1024 * 1024;

/**
 * Keep the young generation at its initial size (1 MB semi-spaces): loading the dependencies
 * and parsing the protos made V8 grow it to its maximum (2 × 16 MB), which an idle process kept
 * resident (docs/performance.md, Footprint). V8 reads the factor at every growth decision, so
 * this must run before the dependencies load: src/main.ts calls it, then imports the rest.
 */
export function startWithSmallYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** A started process whose event loop was this busy for `BUSY_WINDOWS` checks in a row is not idle. */
export const BUSY_UTILIZATION = 0.5;
const BUSY_WINDOWS = 2;

/** The handle of a running `growYoungGenerationWithFleet`. */
export interface YoungGenerationGrowth {
  /** Called once the process is ready: from then on a busy event loop lets the young generation grow. */
  markStartedUp(): void;
  stop(): void;
  /** How many times the young generation's size was checked against the cap (each after a collection). */
  readonly checks: number;
}

/**
 * Let the young generation grow again once the heap outgrows a small fleet, or once the started
 * process is busy (event loop ≥ 50 % utilized for 2 checks in a row, 1 s; a start-up does not
 * count): a large fleet or a storm gets a larger young generation, an idle vehicle stays small.
 * Checked every `periodMs` until then. From then on it grows up to `maxNewSpaceBytes` and no
 * further: its size is checked after every garbage collection (V8 grows or shrinks it only in
 * one), so an idle process is not woken at all. The check used to run every 10 ms while the
 * young generation could still grow, which an idle large fleet (V8 had shrunk it) did forever:
 * 100 wake-ups a second, about 1 % of a core.
 */
export function growYoungGenerationWithFleet(
  thresholdBytes = SMALL_HEAP_BYTES,
  periodMs = 500,
  maxNewSpaceBytes = MAX_NEW_SPACE_BYTES,
): YoungGenerationGrowth {
  let startedUp = false;
  let last = performance.eventLoopUtilization();
  let busy = 0;
  let growing: boolean | undefined;
  let checks = 0;
  const limits = { heapBytes: thresholdBytes, utilization: BUSY_UTILIZATION, busyChecks: BUSY_WINDOWS };
  const grown = (): boolean => {
    const now = performance.eventLoopUtilization();
    const next = outgrown(busy, startedUp ? performance.eventLoopUtilization(now, last).utilization : 0, getHeapStatistics().used_heap_size, limits);
    last = now;
    busy = next.busy;
    return next.reason !== undefined;
  };
  const cap = (): void => {
    checks++;
    const grow = youngGrowthFactor(newSpaceBytes(), maxNewSpaceBytes) > 1;
    if (grow === growing) return;
    growing = grow;
    setFlagsFromString(`--semi-space-growth-factor=${grow ? YOUNG_GROWTH_DEFAULT : 1}`);
  };
  const afterCollections = new PerformanceObserver(cap);
  const timer = setInterval(() => {
    if (!grown()) return;
    clearInterval(timer);
    cap();
    afterCollections.observe({ entryTypes: ['gc'] });
  }, periodMs);
  timer.unref();
  return {
    markStartedUp: () => {
      startedUp = true;
    },
    stop: () => {
      clearInterval(timer);
      afterCollections.disconnect();
    },
    get checks() {
      return checks;
    },
  };
}

/**
 * Share of V8's heap limit above which the process warns (a fleet too large for its memory limit).
 * Not higher: V8 ends a process whose full collections free too little ("ineffective
 * mark-compacts near heap limit") before the heap is full: at 80 % of a 40 MB old generation.
 */
export const HEAP_WARN_SHARE = 0.75;
/** Share below which a warned process may warn again. */
export const HEAP_CALM_SHARE = 0.6;

/**
 * Whether the heap is near its limit, with hysteresis: `true` from `HEAP_WARN_SHARE` of the
 * limit, `false` again only below `HEAP_CALM_SHARE`. Node sets the limit from the container's
 * memory limit (about half of it), and a heap that reaches it ends the process.
 */
export function heapNearLimit(used: number, limit: number, nearBefore: boolean): boolean {
  if (limit <= 0) return false;
  const share = used / limit;
  return nearBefore ? share >= HEAP_CALM_SHARE : share >= HEAP_WARN_SHARE;
}

/**
 * Calls `warn` once each time the heap comes near its limit: checked every `periodMs` (after a
 * scavenge the figure is what survived, so a passing spike of garbage seldom counts) and after
 * every full collection, whose figure is what is live. Every 5 s alone missed a heap that grew
 * from 83 % to its limit within 6 s of a replica becoming leader (black-box probing in a 64 MB
 * cgroup): the process died of "heap out of memory" without the line. Returns a stop function.
 */
export function watchHeapLimit(warn: (usedBytes: number, limitBytes: number) => void, periodMs = 5000, oldSpaceLimit = oldSpaceLimitBytes(process.execArgv, process.env.NODE_OPTIONS)): () => void {
  let near = false;
  const check = (): void => {
    let used: number;
    let limit: number;
    if (oldSpaceLimit === undefined) {
      const stats = getHeapStatistics();
      used = stats.used_heap_size;
      limit = stats.heap_size_limit;
    } else {
      // Against the old generation's limit, the old generation's use: the young generation's
      // garbage (up to MAX_NEW_SPACE_BYTES) is not what runs out.
      used = 0;
      for (const space of getHeapSpaceStatistics()) if (space.space_name !== 'new_space' && space.space_name !== 'new_large_object_space') used += space.space_used_size;
      limit = oldSpaceLimit;
    }
    const now = heapNearLimit(used, limit, near);
    if (now && !near) warn(used, limit);
    near = now;
  };
  const timer = setInterval(check, periodMs);
  timer.unref();
  const fullCollections = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) check();
  });
  fullCollections.observe({ entryTypes: ['gc'] });
  return () => {
    clearInterval(timer);
    fullCollections.disconnect();
  };
}

/**
 * The old generation's limit an operator set (`--max-old-space-size`, in MB, on node's command line
 * or in NODE_OPTIONS; the command line's over NODE_OPTIONS', the last one of each), in bytes, or undefined. V8's `heap_size_limit` adds the
 * young generation's reserve to it, which on a large machine is 192 MB: with the flag at 40 MB
 * the heap ran out at 14 % of `heap_size_limit`, and the warning never came.
 */
export function oldSpaceLimitBytes(execArgv: readonly string[], nodeOptions: string | undefined): number | undefined {
  // Node reads NODE_OPTIONS first, then its command line: the command line's value is in force.
  const args = [...splitNodeOptions(nodeOptions ?? ''), ...execArgv];
  let mb: number | undefined;
  for (let i = 0; i < args.length; i++) {
    if (v8FlagName(args[i]!) !== 'max-old-space-size') continue;
    const eq = args[i]!.indexOf('=');
    const value = Number(eq >= 0 ? args[i]!.slice(eq + 1) : args[i + 1]);
    if (Number.isFinite(value) && value > 0) mb = value;
  }
  return mb === undefined ? undefined : mb * 2 ** 20;
}

/**
 * Whether V8's heap limit is above three quarters of the container's memory (`constrained`, 0 or
 * undefined when there is none): V8 takes about half of a cgroup's limit but never less than about
 * 259 MB (measured: 259 MB at 128Mi, 256Mi and 512Mi), so under 512Mi the kernel kills the process
 * before the heap warning can come (found by black-box probing in cgroups).
 */
export function heapLimitAboveContainer(heapLimit: number, constrained: number | undefined): boolean {
  return constrained !== undefined && constrained > 0 && constrained < Number.MAX_SAFE_INTEGER && heapLimit > constrained * 0.75;
}

/** The start-up check of heapLimitAboveContainer, on this process. */
export function checkHeapLimitAgainstContainer(warn: (heapLimitBytes: number, containerBytes: number) => void): void {
  const constrained = process.constrainedMemory();
  const { heap_size_limit: limit } = getHeapStatistics();
  if (heapLimitAboveContainer(limit, constrained)) warn(limit, constrained);
}
