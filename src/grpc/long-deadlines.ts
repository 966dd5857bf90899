// grpc-js (1.14.7, and its main branch as of 2026-04) reads a call's `grpc-timeout` header into
// a 32-bit integer (`| 0`) and arms the server's deadline timer with it: a deadline more than
// 2^31 - 1 ms (24.8 days) away comes out negative, so the call's deadline is in the past and the
// server ends the call at once with DEADLINE_EXCEEDED. Found by black-box probing: every write
// sent with a 25-day deadline failed within 10 ms ("etcd did not answer in time" with etcd idle).
// Node's timers have the same bound, so even without the `| 0` a timer could not hold it.
//
// installLongDeadlines replaces that one method of grpc-js's server call: a timeout a timer can
// hold goes to grpc-js's own code as before; a longer one keeps the deadline as sent and arms its
// timer in steps a timer can hold. A grpc-js whose method no longer truncates is left alone.
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';

/** The longest delay Node's setTimeout keeps (a longer one fires after 1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The gRPC timeout units in milliseconds (PROTOCOL-HTTP2.md: `TimeoutValue TimeoutUnit`, at most 8 digits). */
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const TIMEOUT = /^\s*(\d{1,8})\s*([HMSmun])\s*$/;

/** A `grpc-timeout` header value in milliseconds, or undefined when it is not one. */
export function timeoutHeaderMs(header: string): number | undefined {
  const m = TIMEOUT.exec(header);
  return m === null ? undefined : Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** What the replaced method uses of grpc-js's BaseServerInterceptingCall. */
export interface ServerCall {
  deadline: number;
  deadlineTimer: NodeJS.Timeout | null;
  sendStatus(status: { code: grpc.status; details: string; metadata: null }): void;
}

/**
 * Arm the call's deadline timer for `call.deadline`, in steps of at most `maxStepMs`: when a step
 * ends before the deadline, the next is armed (the field always holds the live timer, so grpc-js
 * clears it when the call ends). At the deadline the call ends as grpc-js's own timer ends it.
 */
export function armDeadlineTimer(call: ServerCall, maxStepMs: number): void {
  const left = call.deadline - Date.now();
  call.deadlineTimer =
    left > maxStepMs
      ? setTimeout(() => armDeadlineTimer(call, maxStepMs), maxStepMs)
      : setTimeout(() => call.sendStatus({ code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded', metadata: null }), Math.max(0, left));
}

type HandleTimeoutHeader = (this: ServerCall, header: string) => void;

export type LongDeadlinesOutcome = 'installed' | 'already-installed' | 'not-needed';

const INSTALLED = Symbol.for('statemanager.longDeadlines');

/**
 * Make grpc-js's server keep deadlines more than MAX_TIMER_MS away (idempotent; process-wide, as
 * the method is grpc-js's own). 'not-needed' when grpc-js no longer truncates the timeout.
 */
export function installLongDeadlines(): LongDeadlinesOutcome {
  const require = createRequire(import.meta.url);
  const { BaseServerInterceptingCall } = require('@grpc/grpc-js/build/src/server-interceptors.js') as {
    BaseServerInterceptingCall?: { prototype: Record<string | symbol, unknown> };
  };
  const proto = BaseServerInterceptingCall?.prototype;
  const original = proto?.handleTimeoutHeader as HandleTimeoutHeader | undefined;
  if (proto === undefined || typeof original !== 'function') return 'not-needed';
  if (proto[INSTALLED] === true) return 'already-installed';
  if (!/\|\s*0/.test(original.toString())) return 'not-needed';
  proto.handleTimeoutHeader = function handleTimeoutHeader(this: ServerCall, header: string): void {
    const ms = timeoutHeaderMs(String(header));
    // Invalid headers and timeouts a timer holds: grpc-js's own handling, unchanged.
    if (ms === undefined || ms <= MAX_TIMER_MS) return original.call(this, header);
    this.deadline = Date.now() + ms;
    armDeadlineTimer(this, MAX_TIMER_MS);
  };
  proto[INSTALLED] = true;
  return 'installed';
}
