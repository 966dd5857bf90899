// SubscribeToStateChanges' filter: what each key takes, and that an empty value is no filter
// (a client built from the draft may send every key it knows; no name or revision is empty).
import test from 'ava';
import { parseSubscription } from '../../src/grpc/subscribe.js';
import type { StateChangeSubscriptionRequest__Output } from '../../src/generated/statemanager/StateChangeSubscriptionRequest.js';

const req = (filter: Record<string, string>, resource_type = 'RESOURCE_TYPE_SCENARIO'): StateChangeSubscriptionRequest__Output =>
  ({ resource_type, filter, include_health_events: false, include_recovery_events: false }) as unknown as StateChangeSubscriptionRequest__Output;

test('an empty name or since_revision is no filter; a malformed one or an unknown key is refused, naming it', (t) => {
  t.deepEqual(parseSubscription(req({ name: '', since_revision: '' })), { filter: { kind: 'scenario' } });
  t.deepEqual(parseSubscription(req({ name: 'a', since_revision: '0' })), { filter: { kind: 'scenario', name: 'a', sinceRevision: 0 } });
  t.regex((parseSubscription(req({ since_revision: ' ' })) as { problem: string }).problem, /^filter\["since_revision"\] .* is not a revision/);
  t.regex((parseSubscription(req({ colour: '' })) as { problem: string }).problem, /^filter "colour" not understood/);
});
