// A caller with a deadline gets its answer a little before it: an etcd call made for it ends
// early enough that "etcd did not answer in time" reaches the caller, rather than the caller's
// own DEADLINE_EXCEEDED with nothing said (found by black-box probing: with etcd frozen, 3,938
// container lists and 866 scenario changes of 5 s deadlines ended on the client's side, the
// server's timeout answer coming 0.2 s after).
import { MAX_TIMER_MS } from './long-deadlines.js';

/**
 * A grpc-js server call's deadline as epoch milliseconds: undefined when the client set none, and
 * when it is further than a timer reaches (MAX_TIMER_MS, 24.8 days): every answer comes long
 * before it, and the timers armed for the caller (the answer deadline, offloading's) would
 * otherwise fire at once (found by black-box probing: a 25-day deadline failed every write).
 */
export function callerDeadlineMs(deadline: Date | number | undefined, now: number = Date.now()): number | undefined {
  if (deadline === undefined) return undefined;
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) && ms - now <= MAX_TIMER_MS ? ms : undefined;
}

/**
 * When a caller with a deadline must have its answer: before the deadline by a tenth of the time
 * it gave, at least 20 ms and at most 250 ms. No deadline: never.
 */
export function answerDeadline(receivedAt: number, callerDeadline: number | undefined): number {
  if (callerDeadline === undefined) return Number.POSITIVE_INFINITY;
  const left = callerDeadline - receivedAt;
  const margin = Math.min(250, Math.max(20, left / 10));
  return callerDeadline - margin;
}

/** The answer deadline as an optional epoch-ms deadline for the calls made for the caller. */
export function answerDeadlineOf(receivedAt: number, callerDeadline: number | undefined): number | undefined {
  return callerDeadline === undefined ? undefined : answerDeadline(receivedAt, callerDeadline);
}

/** The caller's answer deadline came while its etcd work was still under way. */
export class AnswerDeadlineError extends Error {
  constructor() {
    super("etcd did not answer before the caller's deadline");
    this.name = 'AnswerDeadlineError';
  }
}

/**
 * `work`, or an AnswerDeadlineError at `answerBy` if it has not settled by then (the work goes
 * on: a write may still be applied).
 */
export function beforeAnswerDeadline<T>(work: Promise<T>, answerBy: number | undefined): Promise<T> {
  if (answerBy === undefined || !Number.isFinite(answerBy)) return work;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AnswerDeadlineError()), Math.max(0, answerBy - Date.now()));
  });
  work.catch(() => undefined); // settled after the answer: nobody waits for it any more
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** How early a deadline's timer may fire by the wall clock (timers and Date.now() round apart). */
export const CLOCK_SLACK_MS = 5;

/**
 * Whether a failed call ran out of its caller's own deadline (said to the caller and warned, not
 * an error of statemanager or etcd): ended by its answer deadline, or timed out at it. A timer or
 * etcd call ending at answerBy may read the clock a millisecond before it (half the runs of a test
 * did here).
 */
export function ranOutOfCallerDeadline(err: unknown, timedOut: boolean, answerBy: number | undefined, now: number): boolean {
  if (err instanceof AnswerDeadlineError) return true;
  return timedOut && answerBy !== undefined && now >= answerBy - CLOCK_SLACK_MS;
}
