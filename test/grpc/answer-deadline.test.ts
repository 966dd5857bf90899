// When a failed write is the caller's own deadline running out (warned) rather than a failure of
// statemanager or etcd (an error): the clock slack below, at and past its bound.
import test from 'ava';
import { AnswerDeadlineError, CLOCK_SLACK_MS, ranOutOfCallerDeadline } from '../../src/grpc/answer-deadline.js';

const answerBy = 1_000_000;

test('ended by its answer deadline: the caller\'s, whatever the clock reads', (t) => {
  t.true(ranOutOfCallerDeadline(new AnswerDeadlineError(), true, answerBy, answerBy - 100));
  t.true(ranOutOfCallerDeadline(new AnswerDeadlineError(), false, answerBy, answerBy - 100));
});

test('an etcd timeout: the caller\'s from CLOCK_SLACK_MS before the answer deadline on, not one ms earlier', (t) => {
  const timeout = new Error('4 DEADLINE_EXCEEDED');
  t.false(ranOutOfCallerDeadline(timeout, true, answerBy, answerBy - CLOCK_SLACK_MS - 1));
  t.true(ranOutOfCallerDeadline(timeout, true, answerBy, answerBy - CLOCK_SLACK_MS));
  t.true(ranOutOfCallerDeadline(timeout, true, answerBy, answerBy - 1));
  t.true(ranOutOfCallerDeadline(timeout, true, answerBy, answerBy + 1));
});

test('not a timeout, or a caller without a deadline: never the caller\'s', (t) => {
  t.false(ranOutOfCallerDeadline(new Error('14 UNAVAILABLE'), false, answerBy, answerBy + 1));
  t.false(ranOutOfCallerDeadline(new Error('4 DEADLINE_EXCEEDED'), true, undefined, answerBy + 1));
});
