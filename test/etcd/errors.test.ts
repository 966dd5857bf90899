// How etcd's failures are told apart: what a caller is told, and whether a write retries fast
// (unavailable: nothing was applied, the same request succeeds once etcd settles) or backs off.
import test from 'ava';
import { castGrpcError, ClientClosedError, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { classifyEtcdError, notApplied } from '../../src/etcd/errors.js';

for (const [message, kind] of [
  ['etcdserver: raft proposal dropped', 'unavailable'],
  ['2 UNKNOWN: raft proposal dropped', 'unavailable'],
  ['etcdserver: server stopped', 'unavailable'],
  ['etcdserver: leader changed', 'unavailable'],
  ['etcdserver: no leader', 'unavailable'],
  ['etcdserver: request timed out, possibly due to previous leader failure', 'unavailable'],
  ['etcdserver: too many requests', 'unavailable'],
  ['etcdserver: mvcc: database space exceeded', 'no-space'],
  ['etcdserver: too many operations in txn request', 'too-large'],
  ['etcdserver: request is too large', 'too-large'],
  ['etcdserver: authentication failed, invalid user ID or password', 'refused'],
  ['etcdserver: permission denied', 'refused'],
  ['etcdserver: duplicate key given in txn request', 'internal'],
] as const) {
  test(`${JSON.stringify(message)} is ${kind}`, (t) => {
    t.is(classifyEtcdError(new Error(message)), kind);
  });
}

test("etcd3's typed errors: a deadline is a timeout, an unavailable member unavailable", (t) => {
  t.is(classifyEtcdError(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded')), 'timeout');
  t.is(classifyEtcdError(new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped')), 'unavailable');
});

// etcd3 casts etcd's RESOURCE_EXHAUSTED "too many requests" to GRPCResourceExhastedError: the object
// etcd3 gives, not a plain Error (the test of the message alone passed while the cast one was
// "internal": a node agent told INTERNAL, its budget not refunded; code review).
test("etcd's \"too many requests\" as etcd3 casts it is unavailable, and applied nothing", (t) => {
  const err = castGrpcError(Object.assign(new Error('8 RESOURCE_EXHAUSTED: etcdserver: too many requests'), { code: 8, details: 'etcdserver: too many requests' }));
  t.is(err.constructor.name, 'GRPCResourceExhastedError');
  t.is(classifyEtcdError(err), 'unavailable');
  t.true(notApplied(err));
  // Another RESOURCE_EXHAUSTED (a message over grpc-js's limit) stays as it was.
  const other = castGrpcError(Object.assign(new Error('8 RESOURCE_EXHAUSTED: Received message larger than max (5000000 vs. 4194304)'), { code: 8, details: 'Received message larger than max' }));
  t.is(classifyEtcdError(other), 'too-large');
});

test('notApplied: only a write that never left the process or that etcd refused whole; a timeout or a dropped connection may have been applied', (t) => {
  for (const err of [
    new ClientClosedError('KV'),
    new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: '),
    new GRPCUnavailableError('14 UNAVAILABLE: Name resolution failed for target dns:etcd:2379'),
    new Error('Execution prevented because the circuit breaker is open'),
    new Error('etcdserver: too many operations in txn request'),
    new Error('etcdserver: mvcc: database space exceeded'),
    new Error('etcdserver: permission denied'),
  ]) t.true(notApplied(err), err.message);
  for (const err of [
    new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 2.001s'),
    new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped'),
    new GRPCUnavailableError('14 UNAVAILABLE: read ECONNRESET'),
    new Error('etcdserver: leader changed'),
    new Error('etcdserver: request timed out, possibly due to previous leader failure'),
  ]) t.false(notApplied(err), err.message);
});
