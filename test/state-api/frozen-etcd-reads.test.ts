// The reads whose answer needs etcd (a state's history), over real gRPC, with etcd frozen:
// statemanager answers before the caller's deadline and says why, instead of leaving the caller
// to its own timer (found by black-box probing: with etcd just SIGSTOPped, 12 of 60
// GetResourceStateHistory calls with 2 s deadlines ended at the caller's deadline, nothing said).
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { KeyLayout } from '../../domain/keys.js';
import { silentLogger } from '../../controller/logger.js';
import { EtcdHistoryStore } from '../../src/etcd/history-store.js';
import { StateFeed } from '../../src/state-api/feed.js';
import { etcdReplayMarker } from '../../src/etcd/replay-marker.js';
import { StateReader, type StateCaches, type StoredStateView } from '../../src/state-api/reader.js';
import { DraftClient } from '../helpers/draft-client.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { silentEtcd } from '../helpers/silent-etcd.js';
import { readFailureDetails } from '../../src/grpc/read-api.js';
import { startTestServer, stopAll, uniquePrefix } from '../grpc/_support.js';

let etcd: EtcdServer;

test.before(async () => {
  etcd = await startEtcd();
});

test.after.always(async () => {
  await stopAll();
  await etcd?.stop();
});

const running: StoredStateView = { name: 'a', state: 'Running', version: 1, modRevision: 5 };
const oneState: StateCaches = { get: (_k, name) => (name === 'a' ? running : undefined), list: () => [running], revision: () => 5 };

const DEADLINE_MS = 2500;

test(`with etcd frozen, GetResourceStateHistory (a ${DEADLINE_MS} ms deadline) is answered by statemanager before the deadline, and GetResourceState with the cached state, its history said unavailable`, async (t) => {
  const keys = new KeyLayout(uniquePrefix());
  // A frozen etcd of its own for each call: after a call that timed out, etcd3's client refuses
  // the next ones at once ("etcd cannot be reached"), which would hide a call left to the deadline.
  let history = new EtcdHistoryStore(await silentEtcd(t), keys, 5000);
  const feed = new StateFeed({ source: etcd.watchClient(), markReplay: etcdReplayMarker(etcd.client(), keys, 'test', 3000), keys, logger: silentLogger, idleStopMs: 300 });
  const reader = new StateReader(oneState, {
    read: (...a: Parameters<EtcdHistoryStore['read']>) => history.read(...a),
    enteredAt: (...a: Parameters<EtcdHistoryStore['enteredAt']>) => history.enteredAt(...a),
  });
  const s = await startTestServer(etcd.client(), {}, { keys, readApi: { reader, feed } });
  const draft = new DraftClient(s.target);
  t.teardown(() => draft.close());
  // The server and this client share the process: a stall of it longer than the answer margin
  // lets the client's timer win whatever the server does, so up to three calls; one answered by
  // statemanager in time shows the behaviour, a server that never answers in time fails all three.
  const seen: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    history = new EtcdHistoryStore(await silentEtcd(t), keys, 5000);
    const started = Date.now();
    const err = await draft.history({ resource_type: 'RESOURCE_TYPE_MODEL', resource_name: 'a' }, DEADLINE_MS).then(
      (r) => {
        t.log(`answered ${JSON.stringify(r)}`);
        return undefined;
      },
      (e: grpc.ServiceError) => e,
    );
    const took = Date.now() - started;
    seen.push(`${err?.code} ${err?.details} after ${took} ms`);
    if (err !== undefined && err.code !== grpc.status.DEADLINE_EXCEEDED && took < DEADLINE_MS) break;
  }
  const last = seen.at(-1)!;
  t.regex(last, new RegExp(`^${grpc.status.UNAVAILABLE} `), `statemanager's answer, not the caller's own deadline: ${JSON.stringify(seen)}`);
  t.regex(last, /^14 etcd did not answer in time; the state could not be read; try again after \d+ ms$/, 'the answer says etcd is why');

  const answers: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    history = new EtcdHistoryStore(await silentEtcd(t), keys, 5000);
    const started = Date.now();
    const got = await draft.getState('RESOURCE_TYPE_MODEL', 'a', DEADLINE_MS).then(
      (r) => r,
      (e: grpc.ServiceError) => e,
    );
    const took = Date.now() - started;
    if (got instanceof Error) {
      answers.push(`error ${(got as grpc.ServiceError).code} after ${took} ms`);
      continue;
    }
    answers.push(`ok after ${took} ms`);
    t.true(got.success);
    t.is(got.resource_state?.current_state, 'Running');
    t.regex(got.resource_state?.metadata?.history ?? '', /^unavailable: /);
    break;
  }
  t.regex(answers.at(-1)!, /^ok /, JSON.stringify(answers));
});

test('a failed read tells the caller why in etcd\'s terms, nothing more', (t) => {
  t.is(readFailureDetails(new Error('etcd is unreachable')), 'etcd cannot be reached; the state could not be read; try again');
  t.is(readFailureDetails(new Error('14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.0.0.7:2379')), 'etcd cannot be reached; the state could not be read; try again');
  t.is(readFailureDetails(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded after 2.251s')), 'etcd did not answer in time; the state could not be read; try again');
  t.is(readFailureDetails(new Error('etcdserver: authentication failed, invalid user ID or password')), "etcd refused statemanager's credentials or permissions; the state could not be read");
  t.is(readFailureDetails(new TypeError("Cannot read properties of undefined (reading 'kvs')")), 'the state could not be read; try again');
});
