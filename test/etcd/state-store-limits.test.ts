// The state store under etcd's own transaction limits set lower than statemanager assumes
// (--max-txn-ops, --max-request-bytes): grouped writes that etcd refuses as too large go one by
// one and later groups are smaller, so every write lands (black-box probing: with --max-txn-ops 64
// a cold start of 3,000 states still had 1,326 wrong after 60 s, each refused group sent again
// as it was).
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import type { StateTransition } from '../../reconcilers/ports.js';
import { EtcdStateStore } from '../../src/etcd/state-store.js';
import { captureLogger } from '../grpc/_support.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd(['--max-txn-ops', '16', '--max-request-bytes', '2048']);
});
test.after.always(async () => {
  await etcd?.stop();
});

const write = (i: number, prefix = 'm'): StateTransition => ({
  kind: 'model',
  name: `${prefix}${i}`,
  to: 'Running',
  expected: undefined,
  history: { kind: 'model', name: `${prefix}${i}`, from: null, to: 'Running', at: new Date().toISOString(), reason: 'test', source: 'test', drawn: true },
});

for (const [title, maxTxnOps] of [
  ['told nothing of the lower limits (maxTxnOps 128)', 128],
  ['told etcd\'s --max-txn-ops (16) but not its request bytes', 16],
] as const) {
  test(`${title}: 300 writes at once all land; refused groups go one by one and later groups are smaller, said in one line per shrink`, async (t) => {
    const keys = new KeyLayout(`/limits-${maxTxnOps}`);
    const logger = captureLogger();
    const store = new EtcdStateStore({ client: etcd.client(), txn: etcd.watchClient(), keys, historyLength: 5, requestTimeoutMs: 5000, maxTxnOps, logger, maxInFlight: 1 });
    const before = store.batchLimits();
    t.deepEqual(before, maxTxnOps === 128 ? { compares: 100, operations: 120 } : { compares: 14, operations: 16 });
    // --max-request-bytes 2048 takes about five of these writes in one transaction.
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => store.writeState(write(i))));
    t.true(results.every((r) => r.committed));
    t.is(Object.keys(await etcd.client().getAll().prefix(keys.statePrefix('model')).strings()).length, 300);
    const after = store.batchLimits();
    t.true(after.operations < before.operations, `${JSON.stringify(after)}`);
    const shrinks = logger.lines.filter((l) => l.level === 'warn');
    t.true(shrinks.length >= 1 && shrinks.length <= 8, `${shrinks.length} lines`);
    t.regex(String(shrinks[0]?.message), /smaller groups from now on \(set grpc\.etcdMaxTxnOps/);
    // Settled: the next writes at once go in groups etcd takes, nothing more is said.
    const lines = logger.lines.length;
    const again = await Promise.all(Array.from({ length: 100 }, (_, i) => store.writeState(write(i, 'n'))));
    t.true(again.every((r) => r.committed));
    t.is(logger.lines.length, lines);
  });
}

test('a single write over etcd\'s limits fails as too large (a caller can split it), and the groups are not shrunk for it', async (t) => {
  const keys = new KeyLayout('/limits-one');
  const store = new EtcdStateStore({ client: etcd.client(), txn: etcd.watchClient(), keys, historyLength: 5, requestTimeoutMs: 5000, maxTxnOps: 128 });
  // Nine transitions: 18 operations and about 3 KB in one transaction, over 16 and 2 KB.
  const err = await t.throwsAsync(store.writeStates(Array.from({ length: 9 }, (_, i) => write(i)), []));
  t.is((err as unknown as { tooLarge?: boolean }).tooLarge, true);
  t.regex(err!.message, /too large .*(too many operations in txn request|request is too large)/);
  t.deepEqual(store.batchLimits(), { compares: 100, operations: 120 });
  // Four (8 operations, about 1.4 KB) pass.
  t.true((await store.writeStates(Array.from({ length: 4 }, (_, i) => write(i)), [])).committed);
});
