// The ActionController client against a real gRPC ActionController (Pullpiri's 2026 proto):
// OffloadModel calls in flight are bounded, and they have a connection of their own, so moves that
// hang do not hold up repairs of failed packages.
import test from 'ava';
import { GrpcActionControllerClient, MAX_OFFLOADS_IN_FLIGHT, OffloadsInFlightError } from '../../src/action-controller/client.js';
import { pullpiriSuccess, startPullpiriActionController } from '../helpers/pullpiri-2026.js';

const MOVE = { model_name: 'nav', package_name: 'p', scenario_name: 's', source_node: 'edge-1', target_node: 'edge-2', policy_name: '', reason: '' };

test(`OffloadModel calls in flight at most maxOffloadsInFlight (default ${MAX_OFFLOADS_IN_FLIGHT}): below it sent, at it one more is refused at once without being sent, and sent again once one has ended`, async (t) => {
  const ac = await startPullpiriActionController();
  t.teardown(() => ac.stop());
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 600 });
  const client = new GrpcActionControllerClient({ addr: ac.addr, timeoutMs: 5000, maxOffloadsInFlight: 2 });
  t.teardown(() => client.close());
  const first = client.offloadModel(MOVE, Date.now() + 5000);
  const second = client.offloadModel({ ...MOVE, model_name: 'nav-2' }, Date.now() + 5000); // below the bound: sent
  const started = Date.now();
  const err = await t.throwsAsync(client.offloadModel({ ...MOVE, model_name: 'nav-3' }, Date.now() + 5000), { instanceOf: OffloadsInFlightError });
  t.true(Date.now() - started < 300, 'refused at once');
  t.is((err as OffloadsInFlightError).inFlight, 2);
  await t.throwsAsync(client.offloadModel({ ...MOVE, model_name: 'nav-4' }, Date.now() + 5000), { instanceOf: OffloadsInFlightError }, 'beyond: still refused');
  t.true((await first).success);
  t.true((await second).success);
  t.true((await client.offloadModel({ ...MOVE, model_name: 'nav-5' }, Date.now() + 5000)).success, 'sent once the calls before it ended');
  t.deepEqual(ac.offloads.map((r) => r.model_name), ['nav', 'nav-2', 'nav-5']);
});

test('a failed OffloadModel call frees its place too', async (t) => {
  const ac = await startPullpiriActionController();
  t.teardown(() => ac.stop());
  ac.behaviour = () => ({ error: 14, details: 'busy' });
  const client = new GrpcActionControllerClient({ addr: ac.addr, timeoutMs: 5000, maxOffloadsInFlight: 1 });
  t.teardown(() => client.close());
  for (let i = 0; i < 3; i++) await t.throwsAsync(client.offloadModel(MOVE, Date.now() + 5000), { message: /UNAVAILABLE: busy/ });
  t.is(ac.offloads.length, 3);
});

test('Reconcile has a connection of its own: OffloadModel calls that fill every stream an ActionController allows on one connection do not hold it up', async (t) => {
  // Found by black-box probing: an ActionController allowing 200 streams per connection (hyper
  // and tonic's default), a flood of moves that hung there, and repairs waited 10 s.
  const ac = await startPullpiriActionController({ serverOptions: { 'grpc.max_concurrent_streams': 2 } });
  t.teardown(() => ac.stop());
  ac.behaviour = (req) => ({ ...(pullpiriSuccess(req) as { answer: never }), delayMs: 3000 });
  const client = new GrpcActionControllerClient({ addr: ac.addr, timeoutMs: 1000, offloadTimeoutMs: 5000 });
  t.teardown(() => client.close());
  const moves = [client.offloadModel(MOVE, Date.now() + 5000), client.offloadModel({ ...MOVE, model_name: 'nav-2' }, Date.now() + 5000)];
  await new Promise((r) => setTimeout(r, 200)); // both streams of their connection taken
  const started = Date.now();
  const res = await client.reconcile({ scenarioName: 's', current: 5, desired: 3 });
  t.is(res.status, 0);
  t.true(Date.now() - started < 900, `answered in ${Date.now() - started} ms (a shared connection: not before a move ended, past the 1 s timeout)`);
  await Promise.all(moves);
});
