// The resync-request reconciler without etcd: an in-memory ListerWatcher feeds the fleet, a fake
// store records deletes, the enqueue records what was queued.
import test from 'ava';
import { silentLogger } from '../../controller/logger.js';
import { Fleet } from '../../reconcilers/fleet.js';
import { KeyLayout } from '../../domain/keys.js';
import type { DomainObserver, CommitOutcome, StoredRevision } from '../../reconcilers/ports.js';
import { ResyncRequestReconciler } from '../../reconcilers/resync-request-reconciler.js';
import { FakeListerWatcher } from '../fakes/lister-watcher.js';
import { recordingEnqueue } from '../fakes/world.js';

const quiet: DomainObserver = { invalidInput: () => undefined, transition: () => undefined, reconcileRequest: () => undefined };

async function setup(commit = true) {
  const keys = new KeyLayout('');
  const lw = new FakeListerWatcher();
  const fleet = new Fleet({ keys, lw, observer: quiet });
  fleet.caches.start();
  await fleet.caches.waitForSync();
  const { queued, enqueue } = recordingEnqueue();
  const deletes: [string, StoredRevision][] = [];
  const store = {
    deleteResyncRequest: async (id: string, expected: StoredRevision): Promise<CommitOutcome> => {
      deletes.push([id, expected]);
      if (!commit) return { committed: false };
      lw.delete(keys.resyncRequestKey(id));
      return { committed: true, revision: lw.revision };
    },
  };
  const reconciler = new ResyncRequestReconciler({ fleet, store, enqueue, logger: silentLogger });
  return { keys, lw, fleet, queued, deletes, reconciler };
}

test('a named request queues that resource, then is deleted at the revision it was read', async (t) => {
  const { keys, lw, queued, deletes, reconciler } = await setup();
  const kv = lw.put(keys.resyncRequestKey('r1'), '{"kind":"package","name":"p1"}');
  t.is(await reconciler.reconcile('r1'), undefined);
  t.deepEqual(queued, ['package/p1', 'request/p1']);
  t.deepEqual(deletes, [['r1', { modRevision: kv.modRevision, version: 1 }]]);
  t.is(lw.get(keys.resyncRequestKey('r1')), undefined);
});

test('a request rewritten before the delete is retried, not lost', async (t) => {
  const { keys, lw, queued, reconciler } = await setup(false);
  lw.put(keys.resyncRequestKey('r2'), '{"kind":"model","name":"m1"}');
  const result = await reconciler.reconcile('r2');
  t.deepEqual(result, { requeue: true });
  t.deepEqual(queued, ['model/m1']);
});

test('a request already applied and gone is a no-op', async (t) => {
  const { queued, deletes, reconciler } = await setup();
  t.is(await reconciler.reconcile('gone'), undefined);
  t.deepEqual(queued, []);
  t.deepEqual(deletes, []);
});

test('"all" queues every model, package and request the fleet knows', async (t) => {
  const { keys, lw, queued, reconciler } = await setup();
  lw.put('Package/p1', 'spec:\n  models:\n    - name: m1\n');
  lw.put(keys.resyncRequestKey('all'), '{"kind":"all"}');
  await reconciler.reconcile('all');
  t.true(queued.includes('model/m1'));
  t.true(queued.includes('package/p1'));
});

test('"all" first lists every cache again and takes the lists as they are: a change the caches missed is seen; a named request does not list', async (t) => {
  const { keys, lw, fleet, queued, reconciler } = await setup();
  lw.put('Package/p1', 'spec:\n  models:\n    - name: m1\n');
  // Missed by the watch (etcd restored while no replica watched): the cache still says m1.
  lw.putUnseen('Package/p1', 'spec:\n  models:\n    - name: m2\n');
  lw.put(keys.resyncRequestKey('one'), '{"kind":"package","name":"p1"}');
  await reconciler.reconcile('one');
  t.deepEqual(fleet.modelsOfPackage('p1'), ['m1'], 'a named request queues from the cache as it is');
  lw.put(keys.resyncRequestKey('all'), '{"kind":"all"}');
  await reconciler.reconcile('all');
  t.deepEqual(fleet.modelsOfPackage('p1'), ['m2'], 'listed again');
  t.true(queued.includes('model/m2'));
  t.false(queued.includes('model/m1'), 'm1 is no longer listed by any package');
});
