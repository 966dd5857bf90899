// The handler skeleton on its own, with fake calls: each outcome answered and counted once, the
// in-flight slot held until the answer, an unexpected error mapped to a status, a stream ended once.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { ANONYMOUS, type Caller } from '../../src/auth/identity.js';
import { Authorizer } from '../../src/auth/policy.js';
import { InFlightLimiter } from '../../src/grpc/in-flight.js';
import { answer, refuse, skeleton, type Stream } from '../../src/grpc/handler.js';
import { ThrottledLog } from '../../controller/throttled-log.js';
import { captureLogger } from './_support.js';

const TOKEN: Caller = { identity: 'token:agent', names: ['token:agent'], via: 'token' };

function setup(o: { caller?: Caller | undefined; rules?: ConstructorParameters<typeof Authorizer>[0]; deadline?: grpc.Deadline } = {}) {
  const logger = captureLogger();
  const recorded: [string, string][] = [];
  const inFlight = new InFlightLimiter(1);
  const slot = inFlight.acquire('k');
  const metadata = new grpc.Metadata();
  const caller = 'caller' in o ? o.caller : ANONYMOUS;
  const s = skeleton({
    admitted: (m) => (m === metadata && caller ? { caller, budgetKey: 'k', ...(slot ? { slot } : {}) } : undefined),
    authorizer: new Authorizer(o.rules),
    logger,
    refusals: new ThrottledLog({ logger }),
    record: (m, c) => void recorded.push([m, c]),
  });
  const base = { metadata, request: { n: 1 }, getDeadline: (): grpc.Deadline => o.deadline ?? Infinity, getPeer: () => '127.0.0.1:5000' };
  // As grpc-js's: 'cancelled' once the call has ended, answered or not.
  const unaryEmitter = Object.assign(new EventEmitter(), base, { cancelled: false });
  const unaryCall = unaryEmitter as unknown as grpc.ServerUnaryCall<{ n: number }, string>;
  const answers: unknown[][] = [];
  const callback: grpc.sendUnaryData<string> = (...args) => {
    answers.push(args);
    // (Not marked cancelled for good: the tests use one fake for several calls.)
    unaryEmitter.emit('cancelled', 'cancelled');
  };
  return { s, logger, recorded, inFlight, base, unaryCall, answers, callback };
}

const tick = () => new Promise((r) => setImmediate(r));

test('unary: the answer is counted under its label (OK by default) and frees the in-flight slot', async (t) => {
  const x = setup();
  const seen: unknown[] = [];
  x.s.unary<{ n: number }, string>({
    method: 'M',
    permission: 'per-request',
    run: async (call) => {
      seen.push(call.caller, call.request, call.budgetKey, call.peer, call.callerDeadline);
      t.is(x.inFlight.inFlight('k'), 1, 'held while it runs');
      return answer('done', 'ERROR_CODE_SUCCESS');
    },
  })(x.unaryCall, x.callback);
  await tick();
  t.deepEqual(seen, [ANONYMOUS, { n: 1 }, 'k', '127.0.0.1:5000', undefined]);
  t.deepEqual(x.answers, [[null, 'done']]);
  t.deepEqual(x.recorded, [['M', 'ERROR_CODE_SUCCESS']]);
  t.is(x.inFlight.inFlight('k'), 0);
});

test('unary: an answer whose call ends past the caller\'s deadline is counted DEADLINE_EXCEEDED (the caller timed out), one ending before it under its label', async (t) => {
  for (const [deadline, counted] of [[Date.now() - 1, 'DEADLINE_EXCEEDED'], [Date.now() + 60_000, 'OK']] as const) {
    const x = setup({ deadline });
    x.s.unary<{ n: number }, string>({ method: 'M', permission: 'per-request', run: async () => answer('done') })(x.unaryCall, x.callback);
    await tick();
    t.deepEqual(x.answers, [[null, 'done']]);
    t.deepEqual(x.recorded, [['M', counted]]);
  }
});

test('unary: an answer to a caller that went away before it (cancelled, deadline not passed) is counted CANCELLED', async (t) => {
  const x = setup({ deadline: Date.now() + 60_000 });
  x.s.unary<{ n: number }, string>({
    method: 'M',
    permission: 'per-request',
    run: async () => {
      (x.unaryCall as unknown as { cancelled: boolean }).cancelled = true;
      return answer('done');
    },
  })(x.unaryCall, x.callback);
  await tick();
  t.deepEqual(x.recorded, [['M', 'CANCELLED']]);
});

test('unary: a refusal is answered and counted by its status name', (t) => {
  const x = setup();
  x.s.unary<{ n: number }, string>({ method: 'M', permission: 'per-request', run: () => refuse(grpc.status.UNIMPLEMENTED, 'no') })(x.unaryCall, x.callback);
  t.deepEqual(x.answers, [[{ code: grpc.status.UNIMPLEMENTED, details: 'no' }]]);
  t.deepEqual(x.recorded, [['M', 'UNIMPLEMENTED']]);
});

test('unary: a call the gate did not admit is UNAUTHENTICATED and logged as a wiring bug; run never runs', (t) => {
  const x = setup({ caller: undefined });
  x.s.unary<{ n: number }, string>({ method: 'M', permission: 'per-request', run: () => t.fail() as never })(x.unaryCall, x.callback);
  t.deepEqual(x.answers, [[{ code: grpc.status.UNAUTHENTICATED, details: 'not authenticated' }]]);
  t.deepEqual(x.recorded, [['M', 'UNAUTHENTICATED']]);
  t.is(x.logger.lines[0]?.message, 'gRPC call reached its handler without passing the gate');
});

test("unary: a read the rules do not allow is PERMISSION_DENIED, naming the caller; 'per-request' leaves it to run", (t) => {
  const x = setup({ caller: TOKEN, rules: [{ identities: ['token:agent'], allow: [{ method: 'SendStateChange' }] }] });
  x.s.unary<{ n: number }, string>({ method: 'Get', permission: 'read', run: () => t.fail() as never })(x.unaryCall, x.callback);
  x.s.unary<{ n: number }, string>({ method: 'Send', permission: 'per-request', run: () => answer('ok') })(x.unaryCall, x.callback);
  t.deepEqual(x.answers, [[{ code: grpc.status.PERMISSION_DENIED, details: 'token:agent may not read states' }], [null, 'ok']]);
  t.deepEqual(x.recorded, [['Get', 'PERMISSION_DENIED'], ['Send', 'OK']]);
  t.deepEqual(x.logger.lines.map((l) => [l.level, l.message, l.meta.method]), [['warn', 'gRPC call denied', 'Get']]);
});

test('unary: what run throws or rejects is INTERNAL with the stack logged, or what the method maps it to; answered once', async (t) => {
  const x = setup();
  x.s.unary<{ n: number }, string>({ method: 'Sync', permission: 'per-request', run: () => { throw new Error('boom'); } })(x.unaryCall, x.callback);
  x.s.unary<{ n: number }, string>({ method: 'Async', permission: 'per-request', run: () => Promise.reject(new Error('later')) })(x.unaryCall, x.callback);
  x.s.unary<{ n: number }, string>({
    method: 'Read',
    permission: 'per-request',
    fail: () => ({ code: grpc.status.UNAVAILABLE, details: 'try again' }),
    run: () => Promise.reject(new Error('etcd')),
  })(x.unaryCall, x.callback);
  await tick();
  t.deepEqual(x.answers, [
    [{ code: grpc.status.INTERNAL, details: 'internal error' }],
    [{ code: grpc.status.INTERNAL, details: 'internal error' }],
    [{ code: grpc.status.UNAVAILABLE, details: 'try again' }],
  ]);
  t.deepEqual(x.recorded, [['Sync', 'INTERNAL'], ['Async', 'INTERNAL'], ['Read', 'UNAVAILABLE']]);
  const errors = x.logger.lines.filter((l) => l.level === 'error');
  t.deepEqual(errors.map((l) => l.meta.method), ['Sync', 'Async']);
  t.regex(String(errors[0]?.meta.error), /Error: boom\n\s+at /);
  t.is(x.inFlight.inFlight('k'), 0);
});

function streamCall(base: object) {
  const call = Object.assign(new EventEmitter(), base, {
    written: [] as unknown[],
    ended: 0,
    write(ev: unknown) {
      call.written.push(ev);
      return true;
    },
    end() {
      call.ended++;
    },
    destroy() {},
  });
  const errors: unknown[] = [];
  call.on('error', (e) => void errors.push(e));
  return { call, errors, raw: call as unknown as grpc.ServerWritableStream<{ n: number }, string> };
}

test('stream: ended once, its closers run once before the end is counted; a later cancel counts nothing', (t) => {
  const x = setup();
  const { call, errors, raw } = streamCall(x.base);
  let open: Stream<string> | undefined;
  let closed = 0;
  x.s.serverStream<{ n: number }, string>({
    method: 'Sub',
    permission: 'read',
    run: (_c, stream) => {
      open = stream;
      stream.onClose(() => {
        closed++;
        t.deepEqual(x.recorded, [], 'closed before counted');
      });
      return undefined;
    },
  })(raw);
  t.true(open!.write('a'));
  t.true(open!.end(grpc.status.OUT_OF_RANGE, 'compacted'));
  t.false(open!.end(grpc.status.OK, ''));
  call.emit('cancelled');
  t.true(open!.over);
  t.is(closed, 1);
  t.deepEqual(call.written, ['a']);
  t.deepEqual(errors, [{ code: grpc.status.OUT_OF_RANGE, details: 'compacted' }]);
  t.deepEqual(x.recorded, [['Sub', 'OUT_OF_RANGE']]);
});

test('stream: a cancel closes it and counts CANCELLED; OK ends it cleanly', (t) => {
  const x = setup();
  const a = streamCall(x.base);
  const b = streamCall(x.base);
  const streams: Stream<string>[] = [];
  const handler = x.s.serverStream<{ n: number }, string>({ method: 'Sub', permission: 'read', run: (_c, s) => void streams.push(s) });
  handler(a.raw);
  handler(b.raw);
  a.call.emit('cancelled');
  t.false(streams[0]!.end(grpc.status.OK, ''));
  t.true(streams[1]!.end(grpc.status.OK, ''));
  t.is(b.call.ended, 1);
  t.deepEqual([...a.errors, ...b.errors], []);
  t.deepEqual(x.recorded, [['Sub', 'CANCELLED'], ['Sub', 'OK']]);
});

test('stream: a refusal from run is answered at once and counted; a later cancel counts nothing', (t) => {
  const x = setup();
  const { call, errors, raw } = streamCall(x.base);
  x.s.serverStream<{ n: number }, string>({ method: 'Sub', permission: 'read', run: () => ({ code: grpc.status.INVALID_ARGUMENT, details: 'bad filter' }) })(raw);
  call.emit('cancelled');
  t.deepEqual(errors, [{ code: grpc.status.INVALID_ARGUMENT, details: 'bad filter' }]);
  t.deepEqual(x.recorded, [['Sub', 'INVALID_ARGUMENT']]);
});
