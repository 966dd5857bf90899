// A replay from an old revision with an empty feed buffer, on the etcd this repository installs
// (3.4.23, which answers a progress request at once even while a new watch is still sending its
// history: etcd #15220): every state change after the start must arrive, however long the
// history etcd has to read first. Ending on progress answers (as the pool did before the marker)
// lost changes behind 150,000 single-key revisions (1,000 of 4,688 arrived); the marker gets them all.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import { ReplayPool, type ReplayOutcome } from '../../src/state-api/replay-pool.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  await etcd?.stop();
});

/** `history` other keys written in transactions of `perTxn`, a state change after every 32 transactions. */
async function longHistory(history: number, perTxn: number) {
  const keys = new KeyLayout('');
  const client = etcd.client();
  const start = Number((await client.put('/start').value('x').exec()).header.revision);
  const changes: number[] = [];
  for (let i = 0; i < history; i += perTxn * 32) {
    await Promise.all(
      Array.from({ length: 32 }, (_, j) =>
        client.kv.txn({
          compare: [],
          success: Array.from({ length: perTxn }, (_, k) => ({ request_put: { key: Buffer.from(`/container/n/c${(i + j * perTxn + k) % 5000}`), value: Buffer.from(String(i)) } })),
          failure: [],
        }),
      ),
    );
    changes.push(Number((await client.put(keys.stateKey('scenario', `s${i}`)).value(i % 2 ? 'Idle' : 'Waiting').exec()).header.revision));
  }
  const head = Number((await client.put('/end').value('x').exec()).header.revision);
  return { keys, client, start, changes, head };
}

async function replay(h: Awaited<ReturnType<typeof longHistory>>) {
  const watchClient = etcd.watchClient();
  let marks = 0;
  const pool = new ReplayPool({
    source: watchClient,
    keys: h.keys,
    floor: () => h.head,
    firstBuffered: () => undefined,
    chunk: 100_000,
    mark: async () => (marks++, Number((await h.client.put(h.keys.replayMarker).value('test').exec()).header.revision)),
  });
  const t0 = Date.now();
  const outcome = await new Promise<ReplayOutcome>((resolve) => pool.fetch(h.start, resolve));
  const ms = Date.now() - t0;
  watchClient.close();
  return { outcome, ms, marks };
}

test.serial('behind 50,000 single-key revisions, a replay that writes the marker gets every state change (empty buffer)', async (t) => {
  const h = await longHistory(Number(process.env.REPLAY_HISTORY ?? 50_000), 1);
  t.log(`${h.head - h.start} revisions after the start, ${h.changes.length} state changes among them`);
  const { outcome, ms, marks } = await replay(h);
  t.true(outcome.ok);
  if (!outcome.ok) return;
  const got = outcome.chunk.records.map((r) => r.revision);
  t.log(`marker: answered in ${ms} ms, through ${outcome.chunk.through}, ${got.length} of ${h.changes.length} changes`);
  t.is(marks, 1);
  t.deepEqual(got, h.changes);
  t.true(outcome.chunk.through > h.head, 'through the marker, past the last change');
  t.true(outcome.chunk.records.every((r) => r.kind === 'scenario'), 'the marker and other keys are no changes');
});
