// The replay pool keeps one etcd watch per replay, paused between chunks: etcd reads its history
// from a watch's start when it opens, so a watch per chunk made a resume 100,000 changes back cost
// etcd 53 s of CPU against 0.7 s (black-box probing). Its bounds, on a scripted watch source: a
// paused watch is closed when its subscriber does not ask again within parkMs, and gives its
// slot to a waiting fetch only once paused for yieldAfterMs; responses that arrive while paused
// are kept for the next ask.
import test from 'ava';
import { KeyLayout } from '../../domain/keys.js';
import type { EtcdWatch, EtcdWatchEvent, EtcdWatchHandlers, WatchTarget } from '../../src/etcd/watch-client.js';
import { ReplayPool, type ReplayOutcome } from '../../src/state-api/replay-pool.js';

const keys = new KeyLayout('');

class ScriptedWatch implements EtcdWatch {
  closed = false;
  paused = false;
  constructor(
    readonly from: number,
    readonly h: EtcdWatchHandlers,
  ) {}
  close(): void {
    this.closed = true;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  /** One response of one put per revision, `from` to `to` inclusive. */
  send(from: number, to: number): void {
    const events: EtcdWatchEvent[] = [];
    for (let r = from; r <= to; r++) {
      const kv = { key: Buffer.from(keys.stateKey('scenario', `s${r}`)), value: Buffer.from('Idle'), create_revision: String(r), mod_revision: String(r), version: '1', lease: '0' };
      events.push({ type: 'Put', kv, prev_kv: null });
    }
    this.h.onEvents(events, to);
  }
}

function setup(o: { slots?: number; parkMs?: number; yieldAfterMs?: number } = {}) {
  const watches: ScriptedWatch[] = [];
  let now = 1_000;
  const pool = new ReplayPool({
    source: { watch: (t: WatchTarget, h: EtcdWatchHandlers) => (watches.push(new ScriptedWatch(t.startRevision ?? 0, h)), watches[watches.length - 1]!) },
    keys,
    floor: () => 10_000,
    firstBuffered: () => 10_001,
    mark: async () => 20_000,
    chunk: 10,
    slots: o.slots ?? 1,
    parkMs: o.parkMs ?? 10_000,
    yieldAfterMs: o.yieldAfterMs ?? 1_000,
    now: () => now,
    elapsed: () => now,
  });
  const ask = (after: number) => {
    const got: ReplayOutcome[] = [];
    pool.fetch(after, (x) => got.push(x));
    return got;
  };
  return { pool, watches, ask, advance: (ms: number) => (now += ms) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('one watch serves every chunk of a replay: paused after each, resumed at the next ask', (t) => {
  const { pool, watches, ask } = setup();
  const first = ask(100);
  watches[0]!.send(101, 110);
  t.like(first[0], { ok: true, chunk: { through: 110 } });
  t.true(watches[0]!.paused, 'paused at the chunk');
  t.false(watches[0]!.closed);
  const second = ask(110);
  t.false(watches[0]!.paused, 'resumed by the next ask');
  watches[0]!.send(111, 125);
  t.like(second[0], { ok: true, chunk: { through: 125 } });
  t.is((second[0] as unknown as { chunk: { records: unknown[] } }).chunk.records.length, 15);
  t.is(pool.watchesOpened, 1);
});

test('responses that arrive while paused are kept, and answer the next ask at once', (t) => {
  const { pool, watches, ask } = setup();
  ask(100);
  watches[0]!.send(101, 110);
  watches[0]!.send(111, 114); // already received when it paused
  watches[0]!.send(115, 121);
  const next = ask(110);
  t.like(next[0], { ok: true, chunk: { through: 121 } });
  t.is((next[0] as unknown as { chunk: { records: unknown[] } }).chunk.records.length, 11);
  t.is(pool.watchesOpened, 1);
});

test('a paused watch is closed when its subscriber does not ask again within parkMs: below, at and past it', async (t) => {
  const { pool, watches, ask } = setup({ parkMs: 60 });
  ask(100);
  watches[0]!.send(101, 110);
  await sleep(30);
  t.false(watches[0]!.closed, 'below parkMs');
  t.is(pool.watches, 1);
  await sleep(60);
  t.true(watches[0]!.closed, 'past parkMs');
  t.is(pool.watches, 0);
  // The subscriber asks later: a new watch from where it stopped.
  ask(110);
  t.is(watches.length, 2);
  t.is(watches[1]!.from, 111);
});

test('a paused watch gives its slot to a waiting fetch only once paused for yieldAfterMs: below, at and past it', async (t) => {
  const { pool, watches, ask, advance } = setup({ slots: 1, yieldAfterMs: 40 });
  ask(100);
  watches[0]!.send(101, 110); // parked at 110
  const other = ask(500); // waits for the one slot
  t.is(pool.waiting, 1);
  advance(39);
  await sleep(60); // the pool's timer fires; by its clock 39 ms have passed
  t.false(watches[0]!.closed, 'below yieldAfterMs: kept');
  t.is(pool.waiting, 1);
  advance(1);
  await sleep(60);
  t.true(watches[0]!.closed, 'at yieldAfterMs: yielded');
  t.is(watches[1]!.from, 501);
  t.is(pool.waiting, 0);
  watches[1]!.send(501, 510);
  t.like(other[0], { ok: true, chunk: { through: 510 } });
  // The first subscriber asks again: it waits for the slot, which the other's paused watch
  // yields in turn; then it starts where it stopped.
  ask(110);
  t.is(pool.waiting, 1);
  advance(100);
  await sleep(60);
  t.is(watches[2]!.from, 111);
});

test('an ask that reads on without delay keeps the slot however many fetches wait', (t) => {
  const { pool, watches, ask } = setup({ slots: 1, yieldAfterMs: 1_000 });
  ask(100);
  for (let i = 0; i < 5; i++) ask(1_000 + i);
  for (let c = 0; c < 4; c++) {
    watches[0]!.send(101 + 10 * c, 110 + 10 * c);
    ask(110 + 10 * c);
  }
  t.is(pool.watchesOpened, 1);
  t.is(pool.waiting, 5);
});

test('with old states looked up, the watch asks for no prev_kv, chunks come in order, and the marker arriving during a look-up does not end the fetch before the changes ahead of it', async (t) => {
  const watches: ScriptedWatch[] = [];
  const targets: WatchTarget[] = [];
  const pending: { keys: string[]; answer: (v: (string | undefined)[]) => void }[] = [];
  const pool = new ReplayPool({
    source: { watch: (target: WatchTarget, h: EtcdWatchHandlers) => (targets.push(target), watches.push(new ScriptedWatch(target.startRevision ?? 0, h)), watches[watches.length - 1]!) },
    keys,
    floor: () => Number.POSITIVE_INFINITY,
    firstBuffered: () => undefined, // no change to wait for: the marker decides the end
    chunk: 100,
    mark: async () => 202,
    lookUpPrevious: (l) => new Promise((answer) => pending.push({ keys: l.map((x) => x.key), answer })),
  });
  const got: ReplayOutcome[] = [];
  pool.fetch(200, (x) => got.push(x));
  t.is(targets[0]!.prevKv, false);
  const w = watches[0]!;
  // An update of a key that existed before the replay (version 3): its old state is looked up.
  w.h.onEvents([{ type: 'Put', kv: { key: Buffer.from(keys.stateKey('scenario', 'a')), value: Buffer.from('Waiting'), create_revision: '150', mod_revision: '201', version: '3', lease: '0' } }], 201);
  w.h.onEvents([{ type: 'Put', kv: { key: Buffer.from(keys.replayMarker), value: Buffer.from('r1'), create_revision: '9', mod_revision: '202', version: '7', lease: '0' } }], 202);
  await sleep(5);
  t.deepEqual(got, [], 'not done while the look-up is under way');
  t.deepEqual(pending.map((p) => p.keys), [[keys.stateKey('scenario', 'a')]]);
  pending[0]!.answer(['Idle']);
  await sleep(5);
  t.is(got.length, 1);
  const out = got[0]!;
  t.true(out.ok);
  if (out.ok) {
    t.deepEqual(out.chunk.records.map((r) => `${r.name}: ${r.from} -> ${r.to} @${r.revision}`), ['a: Idle -> Waiting @201']);
    t.is(out.chunk.through, 202);
  }
  pool.stop('done');
});

/**
 * A marking replay (empty buffer) whose watch sees the marker, in a response with no state change,
 * while it is paused after a whole chunk, or whose marker write is answered while it is paused:
 * the next ask must end it there. It checked only when changes had arrived meanwhile, so the
 * fetch hung with its slot held until some unrelated key in its range was written — on a quiet
 * system, never; and every replay queued behind it waited too (found by a code review, repro on
 * a real etcd with look-ups slower than etcd's catch-up rounds).
 */
function markingPool(mark: () => Promise<number>) {
  const watches: ScriptedWatch[] = [];
  const pool = new ReplayPool({
    source: { watch: (t: WatchTarget, h: EtcdWatchHandlers) => (watches.push(new ScriptedWatch(t.startRevision ?? 0, h)), watches[watches.length - 1]!) },
    keys,
    floor: () => Number.POSITIVE_INFINITY,
    firstBuffered: () => undefined,
    mark,
    chunk: 10,
    slots: 1,
  });
  return { pool, watches };
}

/** A response holding only a put of the replay marker at `revision` (no state change). */
function markerOnly(w: ScriptedWatch, revision: number): void {
  w.h.onEvents([{ type: 'Put', kv: { key: Buffer.from(keys.replayMarker), value: Buffer.from('r1'), create_revision: '9', mod_revision: String(revision), version: '7', lease: '0' }, prev_kv: null }], revision);
}

test('a marking replay that reaches its marker while paused, in a response with no state change, ends at the next ask', async (t) => {
  const { pool, watches } = markingPool(async () => 120);
  const first: ReplayOutcome[] = [];
  pool.fetch(100, (x) => first.push(x));
  await sleep(1); // the marker is written at 120
  watches[0]!.send(101, 110); // a whole chunk short of the marker: answered, paused
  t.like(first[0], { ok: true, chunk: { through: 110 } });
  t.true(watches[0]!.paused);
  markerOnly(watches[0]!, 120); // came in while paused
  const second: ReplayOutcome[] = [];
  pool.fetch(110, (x) => second.push(x));
  t.is(second.length, 1, 'answered at the ask, not when some other key is written');
  t.like(second[0], { ok: true, chunk: { through: 120, records: [] } });
  t.true(watches[0]!.closed, 'its watch closed');
  t.is(pool.watches, 0, 'its slot freed');
  // Below the marker the ask still waits (no end before the marker).
  const { pool: other, watches: ws } = markingPool(async () => 130);
  const a: ReplayOutcome[] = [];
  other.fetch(100, (x) => a.push(x));
  await sleep(1);
  ws[0]!.send(101, 110);
  markerOnly(ws[0]!, 129); // one short of the marker
  const b: ReplayOutcome[] = [];
  other.fetch(110, (x) => b.push(x));
  t.is(b.length, 0, 'one revision short of the marker: still waiting');
  markerOnly(ws[0]!, 130);
  t.like(b[0], { ok: true, chunk: { through: 130 } });
  other.stop('done');
});

test('a marking replay whose marker write is answered while it is paused, after the watch passed it, ends at the next ask', async (t) => {
  let answer!: (revision: number) => void;
  const { pool, watches } = markingPool(() => new Promise<number>((r) => (answer = r)));
  const first: ReplayOutcome[] = [];
  pool.fetch(100, (x) => first.push(x));
  watches[0]!.send(101, 110); // a whole chunk before the marker's answer: paused
  t.true(watches[0]!.paused);
  markerOnly(watches[0]!, 111); // the marker's event, ahead of its write's answer
  answer(111);
  await sleep(1);
  const second: ReplayOutcome[] = [];
  pool.fetch(110, (x) => second.push(x));
  t.is(second.length, 1);
  t.like(second[0], { ok: true, chunk: { through: 111, records: [] } });
  t.is(pool.watches, 0);
});
