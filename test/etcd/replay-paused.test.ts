// A replay read slowly, chunk by chunk, on the etcd this repository installs (3.4.23): its watch is
// paused between chunks while the subscriber drains one, and every change after the resume must
// arrive, the last ones too. The pool used to end such a replay (empty buffer, the feed between
// watches) on etcd's second progress answer after its last resume; etcd 3.4 answers a progress
// request on its own, ahead of events its watch has not sent yet (etcd #15220), and the answers
// asked for while the watch was paused arrived together on resume: the replay ended before its
// last changes and the subscriber, still subscribed, never got them (the flaky cut-and-resume test
// of test/state-api/subscriptions.test.ts, 3 of about 40 runs under CPU stress). Measured here with
// the old pool, asking for progress every 10 ms: 0–1,000 of 2,034 changes in 4 of 4 runs. Every
// replay now ends at a change it is sure to receive: the floor's, or its marker's.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import { etcdReplayMarker } from '../../src/etcd/replay-marker.js';
import { ReplayPool, type ReplayOutcome } from '../../src/state-api/replay-pool.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

let etcd: EtcdServer;
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  await etcd?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHANGES = 2034; // four chunks of 500 and a few: etcd sends a catch-up 1,000 revisions a response

async function slowReplay(name: string, buffered: boolean) {
  const keys = new KeyLayout(`/${name}`);
  const client = etcd.client();
  const start = Number((await client.put('/start').value('x').exec()).header.revision);
  const changes: number[] = [];
  for (let i = 0; i < CHANGES; i += 64) {
    const batch = Array.from({ length: Math.min(64, CHANGES - i) }, (_, j) => client.put(keys.stateKey('scenario', `s${i + j}`)).value('Idle').exec());
    changes.push(...(await Promise.all(batch)).map((r) => Number(r.header.revision)));
  }
  changes.sort((a, b) => a - b);
  // With a buffer: its first change is the last one written (the floor the one before); without:
  // etcd's revision moved on past the last change (other keys), as the feed's watch starts at now.
  const head = buffered ? changes.at(-2)! : Number((await client.put('/elsewhere').value('x').exec()).header.revision);
  const watchClient = etcd.watchClient();
  let marks = 0;
  const mark = etcdReplayMarker(client, keys, 'test', 3000);
  const pool = new ReplayPool({
    source: watchClient,
    keys,
    floor: () => head,
    firstBuffered: () => (buffered ? changes.at(-1) : undefined),
    chunk: 500,
    mark: () => (marks++, mark()),
  });
  const got: number[] = [];
  let after = start;
  let fetches = 0;
  while (after < head) {
    fetches++;
    const o = await new Promise<ReplayOutcome>((resolve) => pool.fetch(after, resolve));
    if (!o.ok) throw new Error(o.detail);
    got.push(...o.chunk.records.map((r) => r.revision));
    after = o.chunk.through;
    // A reader slower than etcd: the paused watch waits for the next ask.
    if (after < head) await sleep(300);
  }
  watchClient.close();
  const expected = buffered ? changes.slice(0, -1) : changes;
  // A buffered replay may also bring the buffer's first change (it ends at the first event at or past the floor).
  return { got: got.filter((r) => r <= (buffered ? head : Number.POSITIVE_INFINITY)), expected, fetches, marks, pool };
}

test.serial('a replay read slowly with an empty buffer gets every change after its start, the last ones too, ending at one marker', async (t) => {
  const r = await slowReplay('empty', false);
  t.log(`${r.got.length} of ${r.expected.length} changes in ${r.fetches} asks`);
  t.deepEqual(r.got, r.expected);
  t.true(r.fetches >= 3, 'read chunk by chunk');
  t.is(r.marks, 1);
  t.is(r.pool.watchesOpened, 1, 'one watch, paused between chunks');
});

test.serial('a replay read slowly up to a buffer gets every change before it and writes no marker', async (t) => {
  const r = await slowReplay('buffered', true);
  t.log(`${r.got.length} of ${r.expected.length} changes in ${r.fetches} asks`);
  t.deepEqual(r.got, r.expected);
  t.true(r.fetches >= 3, 'read chunk by chunk');
  t.is(r.marks, 0);
});
