// Callers' deadlines further away than a timer reaches (2^31 - 1 ms, 24.8 days): grpc-js's server
// read them into 32 bits and ended the call at once, and statemanager's own timers for the caller
// would have fired at once too (found by black-box probing: every write with a 25-day deadline
// failed within 10 ms, etcd idle). Below, at and past the bound; on a real server and etcd.
import test from 'ava';
import { Etcd3 } from 'etcd3';
import * as grpc from '@grpc/grpc-js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { armDeadlineTimer, installLongDeadlines, MAX_TIMER_MS, timeoutHeaderMs, type ServerCall } from '../../src/grpc/long-deadlines.js';
import { callerDeadlineMs } from '../../src/grpc/answer-deadline.js';
import type { StateChange } from '../../src/generated/statemanager/StateChange.js';
import type { StateChangeResponse__Output } from '../../src/generated/statemanager/StateChangeResponse.js';
import type { StateManagerConnectionClient } from '../../src/generated/statemanager/StateManagerConnection.js';
import { getString, startTestServer, stopAll } from './_support.js';

let etcd: EtcdServer;
let client: Etcd3;

test.before(async () => {
  etcd = await startEtcd();
  client = etcd.client();
});

test.after.always(async () => {
  await stopAll();
  await etcd?.stop();
});

const DAY_MS = 86_400_000;

test('a grpc-timeout header in milliseconds: every unit, at most 8 digits', (t) => {
  t.is(timeoutHeaderMs('600H'), 600 * 3_600_000);
  t.is(timeoutHeaderMs('2160000S'), 2_160_000_000);
  t.is(timeoutHeaderMs('5M'), 300_000);
  t.is(timeoutHeaderMs('100m'), 100);
  t.is(timeoutHeaderMs('1000u'), 1);
  t.is(timeoutHeaderMs('99999999H'), 99_999_999 * 3_600_000);
  t.is(timeoutHeaderMs('123456789m'), undefined, 'nine digits');
  t.is(timeoutHeaderMs('10x'), undefined);
  t.is(timeoutHeaderMs(''), undefined);
});

test("a caller's deadline: kept up to MAX_TIMER_MS away, none past it (its timers could not hold it)", (t) => {
  const now = 1_000_000;
  t.is(callerDeadlineMs(now + MAX_TIMER_MS - 1, now), now + MAX_TIMER_MS - 1);
  t.is(callerDeadlineMs(now + MAX_TIMER_MS, now), now + MAX_TIMER_MS);
  t.is(callerDeadlineMs(now + MAX_TIMER_MS + 1, now), undefined);
  t.is(callerDeadlineMs(new Date(now + 300), now), now + 300);
  t.is(callerDeadlineMs(Infinity, now), undefined);
  t.is(callerDeadlineMs(undefined, now), undefined);
});

test('installing twice changes nothing the second time', (t) => {
  const first = installLongDeadlines();
  t.true(first === 'installed' || first === 'already-installed');
  t.is(installLongDeadlines(), 'already-installed');
});

function fakeCall(deadline: number): ServerCall & { ended: number | undefined } {
  const call = {
    deadline,
    deadlineTimer: null as NodeJS.Timeout | null,
    ended: undefined as number | undefined,
    sendStatus(status: { code: grpc.status }) {
      if (status.code === grpc.status.DEADLINE_EXCEEDED) call.ended = Date.now();
    },
  };
  return call;
}

test('a deadline longer than one timer step ends the call at the deadline, not at the first step', async (t) => {
  // Steps of 40 ms stand in for the 24.8-day bound.
  const start = Date.now();
  const call = fakeCall(start + 130);
  armDeadlineTimer(call, 40);
  await new Promise((r) => setTimeout(r, 90));
  t.is(call.ended, undefined, 'not ended after two steps');
  await new Promise((r) => setTimeout(r, 120));
  t.truthy(call.ended);
  t.true(call.ended! - start >= 129, `ended after ${call.ended! - start} ms`);
});

test('a deadline within one step, and one already past: ended when due', async (t) => {
  const start = Date.now();
  const within = fakeCall(start + 40);
  const at = fakeCall(start + 40);
  const past = fakeCall(start - 5);
  armDeadlineTimer(within, 41);
  armDeadlineTimer(at, 40);
  armDeadlineTimer(past, 40);
  await new Promise((r) => setTimeout(r, 20));
  t.truthy(past.ended);
  t.is(within.ended, undefined);
  t.is(at.ended, undefined);
  await new Promise((r) => setTimeout(r, 60));
  t.truthy(within.ended);
  t.truthy(at.ended);
});

test('the timer field always holds the live step, so clearing it when the call ends stops the chain', async (t) => {
  const call = fakeCall(Date.now() + 100);
  armDeadlineTimer(call, 30);
  await new Promise((r) => setTimeout(r, 45)); // one step taken, the next armed
  clearTimeout(call.deadlineTimer!);
  await new Promise((r) => setTimeout(r, 120));
  t.is(call.ended, undefined);
});

const scenario = (name: string): StateChange => ({ resource_type: 'RESOURCE_TYPE_SCENARIO', resource_name: name, target_state: 'Idle' });

function send(c: StateManagerConnectionClient, req: StateChange, deadline: number): Promise<[grpc.ServiceError | null, StateChangeResponse__Output | undefined]> {
  return new Promise((resolve) => c.SendStateChange(req, new grpc.Metadata(), { deadline }, (e, r) => resolve([e, r])));
}

test('SendStateChange with deadlines of 20 days, 24.8 days, 25 days, a year and a century: each written', async (t) => {
  const s = await startTestServer(client);
  const c = s.client();
  const cases: [string, number][] = [
    ['d20', 20 * DAY_MS],
    ['below', MAX_TIMER_MS - 60_000],
    ['d25', 25 * DAY_MS],
    ['year', 365 * DAY_MS],
    ['century', 36_525 * DAY_MS],
  ];
  for (const [name, ms] of cases) {
    const started = Date.now();
    const [err, res] = await send(c, scenario(name), Date.now() + ms);
    t.is(err, null, `${name}: ${err?.message}`);
    t.is(res?.error_code, 'ERROR_CODE_SUCCESS', `${name}: ${res?.message}`);
    t.true(Date.now() - started < 3000, `${name}: answered at once`);
    t.is(await getString(client, s.keys.stateKey('scenario', name)), 'Idle', name);
  }
});
