// The state feed against an in-memory etcd log: every subscriber, whatever revision it resumes
// from and whenever it joins, receives exactly the changes after that revision, in order, once —
// across the seam between its replay and the shared stream, past buffer trimming, and at any
// reading pace (a full sink pauses it; replays share a bounded number of watches).
import test from 'ava';
import fc from 'fast-check';
import { silentLogger } from '../../controller/logger.js';
import { KeyLayout } from '../../domain/keys.js';
import type { EtcdWatch, EtcdWatchEvent, EtcdWatchHandlers, WatchTarget } from '../../src/etcd/watch-client.js';
import { StateFeed, type StateChangeRecord, type WatchSource } from '../../src/state-api/feed.js';
import { assert, eventually } from '../helpers/eventually.js';
import { largestLoopGap } from '../helpers/loop-gap.js';

const keys = new KeyLayout('');

interface FakeWatchState {
  from: number;
  /** The watched keys: [key, rangeEnd). */
  range: [string, string];
  h: EtcdWatchHandlers;
  closed: boolean;
  paused: boolean;
  /** Responses sent while paused (or behind ones that were). */
  held: { events: EtcdWatchEvent[]; revision: number }[];
}

function deliver(w: FakeWatchState, all: EtcdWatchEvent[], revision: number): void {
  if (w.closed) return;
  const events = all.filter((e) => e.kv.key.toString() >= w.range[0] && e.kv.key.toString() < w.range[1]);
  if (events.length === 0) return;
  if (w.paused || w.held.length > 0) w.held.push({ events, revision });
  else w.h.onEvents(events, revision);
}

/** An etcd keyspace with a revision log, watches from any revision, progress and compaction. */
class FakeEtcd implements WatchSource {
  revision = 1;
  compacted = 0;
  readonly log: { revision: number; events: EtcdWatchEvent[] }[] = [];
  private readonly values = new Map<string, string>();
  private readonly watches = new Set<FakeWatchState>();
  opened = 0;

  /** `previousCompacted`: etcd could no longer look up the previous values (as after a compaction while the watch was behind). */
  put(entries: [string, string | null][], o: { previousCompacted?: boolean } = {}): number {
    const rev = ++this.revision;
    const events: EtcdWatchEvent[] = entries.map(([key, value]) => {
      const prev = this.values.get(key);
      const version = prev === undefined ? '1' : '2';
      const kv = (v: string) => ({ key: Buffer.from(key), value: Buffer.from(v), create_revision: '1', mod_revision: String(rev), version, lease: '0' });
      if (value === null) this.values.delete(key);
      else this.values.set(key, value);
      return { type: value === null ? 'Delete' : 'Put', kv: kv(value ?? ''), prev_kv: prev === undefined || o.previousCompacted ? null : kv(prev) };
    });
    this.log.push({ revision: rev, events });
    for (const w of this.watches) if (!w.closed) queueMicrotask(() => deliver(w, events, rev));
    return rev;
  }

  marks = 0;
  /** The replay marker (StateFeedOptions.markReplay): a put, like any other. */
  readonly mark = async (): Promise<number> => (this.marks++, this.put([[keys.replayMarker, 'marker']]));

  /** etcd cancels the watches that started from "now" (the feed's shared one). */
  cancelFromNow(reason: string): void {
    for (const w of [...this.watches]) {
      if (w.from !== 0) continue;
      this.watches.delete(w);
      w.closed = true;
      w.h.onCanceled(reason);
    }
  }

  watch(target: WatchTarget, h: EtcdWatchHandlers): EtcdWatch {
    this.opened++;
    const w: FakeWatchState = { from: target.startRevision ?? 0, range: [target.key.toString(), target.rangeEnd?.toString() ?? `${target.key.toString()}\0`], h, closed: false, paused: false, held: [] };
    const start = w.from === 0 ? this.revision + 1 : w.from;
    setImmediate(() => {
      if (w.closed) return;
      if (w.from !== 0 && w.from <= this.compacted) return h.onCompacted(this.compacted);
      h.onCreated?.(start - 1);
      // History in batches, then live.
      for (const entry of this.log) if (!w.closed && entry.revision >= start) deliver(w, entry.events, entry.revision);
      if (!w.closed) this.watches.add(w);
    });
    return {
      close: () => {
        w.closed = true;
        this.watches.delete(w);
      },
      // As flow control does: what is sent meanwhile waits, in order, and arrives on resume.
      pause: () => void (w.paused = true),
      resume: () => {
        w.paused = false;
        setImmediate(() => {
          while (!w.closed && !w.paused && w.held.length > 0) {
            const { events, revision } = w.held.shift()!;
            w.h.onEvents(events, revision);
          }
        });
      },
    };
  }

  get active(): number {
    return this.watches.size;
  }

  /** Every open watch's stream breaks; each resumes by itself (as the watch client does) when changes come again. */
  disconnect(err = new Error('connection lost')): void {
    for (const w of this.watches) w.h.onDisconnected?.(err);
  }

  /** Restored from a backup taken at `revision`: later history gone; open watches are not told (as a reconnect would not be). */
  restoreTo(revision: number): void {
    this.revision = revision;
    this.log.splice(this.log.findIndex((e) => e.revision > revision));
  }

  /** Ends every open watch as the watch client does when it reconnects to an etcd behind it (cancelIfBehind). */
  cancelBehind(resumeAt: number): void {
    for (const w of [...this.watches]) {
      this.watches.delete(w);
      w.closed = true;
      const reason = `etcd's revision ${this.revision} is behind ${resumeAt}, where this watch resumes: its history was replaced, or this member lags`;
      if (w.h.onBehind) w.h.onBehind(reason);
      else w.h.onCanceled(reason);
    }
  }
}

/**
 * Lets the fake's and the feed's pending work run: 30 ms, then rounds of setImmediate. A timer
 * alone is not enough on a loaded machine: a process descheduled for longer than the timer runs
 * it before the immediates queued ahead of it (timers come before the check phase).
 */
const settle = async (): Promise<void> => {
  await new Promise((r) => setTimeout(r, 30));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

function collect(feed: StateFeed, filter: Parameters<StateFeed['subscribe']>[0] = {}) {
  const got: StateChangeRecord[] = [];
  const ends: string[] = [];
  const sub = feed.subscribe(filter, { send: (r) => got.push(r) > 0, end: (r) => void ends.push(r.kind) });
  return { got, ends, sub };
}

const scenarioKey = (n: string) => keys.stateKey('scenario', n);

test('live subscribers get each change once with from and to; rewrites of the same state and other keys are not changes', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger });
  await feed.start();
  const all = collect(feed);
  const models = collect(feed, { kind: 'model' });
  etcd.put([[scenarioKey('s'), 'Idle']]);
  etcd.put([[scenarioKey('s'), 'SCENARIO_STATE_IDLE']]);
  etcd.put([[keys.nodeStatusKey('n1'), 'NotReady']]);
  const txn = etcd.put([[keys.stateKey('model', 'm'), 'Running'], [keys.stateKey('package', 'p'), 'running']]);
  etcd.put([[scenarioKey('s'), null]]);
  await settle();
  t.deepEqual(all.got.map((r) => `${r.kind}/${r.name}:${r.from}->${r.to}@${r.revision}.${r.index}`), [
    'scenario/s:->Idle@2.0',
    `model/m:->Running@${txn}.0`,
    `package/p:->Running@${txn}.1`,
    `scenario/s:Idle->@${txn + 1}.0`,
  ]);
  t.deepEqual(models.got.map((r) => r.name), ['m']);
  t.is(etcd.opened, 1);
});

test('a stored value that is not a state is absent to subscribers: going to one reads as the state going, one to another is no change', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger });
  await feed.start();
  const all = collect(feed);
  etcd.put([[scenarioKey('s'), 'Waiting']]);
  etcd.put([[scenarioKey('s'), 'bogus']]);
  etcd.put([[scenarioKey('s'), 'nonsense']]);
  etcd.put([[scenarioKey('s'), 'Allowed']]);
  etcd.put([[scenarioKey('t'), 'junk']]);
  etcd.put([[scenarioKey('t'), null]]);
  await settle();
  t.deepEqual(all.got.map((r) => `${r.name}:${r.from}->${r.to}`), ['s:->Waiting', 's:Waiting->', 's:->Allowed']);
});

test("a resume past every change the feed saw asks etcd's revision: at it, it follows; one past it, the subscription ends as 'future'; below the feed's newest, etcd is not asked", async (t) => {
  const etcd = new FakeEtcd();
  let asked = 0;
  let failing = false;
  const feed = new StateFeed({
    source: etcd, markReplay: etcd.mark, keys, logger: silentLogger,
    etcdRevision: async () => {
      asked++;
      if (failing) throw new Error('etcd is away');
      return etcd.revision;
    },
  });
  await feed.start();
  const first = etcd.put([[scenarioKey('s'), 'Idle']]);
  // etcd's revision moves on keys that are not states: the feed has not seen these revisions.
  etcd.put([[keys.nodeStatusKey('n1'), 'Ready']]);
  etcd.put([[keys.nodeStatusKey('n1'), 'NotReady']]);
  await settle();
  const below = collect(feed, { sinceRevision: first - 1 });
  await settle();
  t.is(asked, 0, 'a revision the feed has seen needs no read');
  t.deepEqual(below.got.map((r) => r.revision), [first]);
  const at = collect(feed, { sinceRevision: etcd.revision });
  const past = collect(feed, { sinceRevision: etcd.revision + 1 });
  await settle();
  t.is(asked, 2);
  t.deepEqual(at.ends, []);
  t.deepEqual(past.ends, ['future']);
  const later = etcd.put([[scenarioKey('s'), 'Waiting']]);
  await settle();
  t.deepEqual(at.got.map((r) => r.revision), [later], 'at etcd\'s revision: every change after it');
  failing = true;
  const unreadable = collect(feed, { sinceRevision: etcd.revision + 5 });
  await settle();
  t.deepEqual(unreadable.ends, ['restarted']);
});

test('a resume from before the buffer replays through its own watch, then joins the shared stream with no gap and no duplicate', async (t) => {
  const etcd = new FakeEtcd();
  for (let i = 0; i < 20; i++) etcd.put([[scenarioKey(`s${i % 3}`), i % 2 ? 'Waiting' : 'Idle']]);
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize: 5 });
  await feed.start();
  for (let i = 0; i < 20; i++) etcd.put([[scenarioKey(`t${i % 3}`), i % 2 ? 'Waiting' : 'Idle']]);
  await settle();
  const resumed = collect(feed, { sinceRevision: 10 });
  // Live changes while it replays.
  for (let i = 0; i < 10; i++) etcd.put([[scenarioKey('u'), i % 2 ? 'Waiting' : 'Idle']]);
  await settle();
  for (let i = 0; i < 3; i++) etcd.put([[scenarioKey('u'), i % 2 ? 'Idle' : 'Satisfied']]);
  await settle();
  const expected = etcd.log.filter((e) => e.revision > 10).map((e) => e.revision);
  t.deepEqual(resumed.got.map((r) => r.revision), expected);
  t.is(etcd.active, 1, 'the replay watch is closed once it reached the buffer');
});

test('a compacted resume revision ends the subscription as compacted', async (t) => {
  const etcd = new FakeEtcd();
  for (let i = 0; i < 5; i++) etcd.put([[scenarioKey('s'), i % 2 ? 'Waiting' : 'Idle']]);
  etcd.compacted = 4;
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize: 1 });
  await feed.start();
  const c = collect(feed, { sinceRevision: 2 });
  // Not a fixed sleep: the property test in this file can hold the event loop past 30 ms.
  await eventually(() => assert.deepStrictEqual(c.ends, ['compacted']));
  t.deepEqual(c.ends, ['compacted']);
  t.deepEqual(c.got, []);
});

test('property: any mix of joins, resumes and buffer sizes delivers exactly the changes after each subscriber position, in order', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.oneof(fc.record({ op: fc.constant('put' as const), key: fc.integer({ min: 0, max: 3 }), state: fc.constantFrom('Idle', 'Waiting', 'Satisfied') }), fc.record({ op: fc.constant('join' as const), back: fc.integer({ min: 0, max: 30 }) }), fc.record({ op: fc.constant('settle' as const) })), { maxLength: 60 }),
      async (bufferSize, ops) => {
        const etcd = new FakeEtcd();
        for (let i = 0; i < 10; i++) etcd.put([[scenarioKey(`pre${i % 2}`), i % 2 ? 'Waiting' : 'Idle']]);
        const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize });
        await feed.start();
        const subs: { since: number; c: ReturnType<typeof collect> }[] = [];
        for (const op of ops) {
          if (op.op === 'put') etcd.put([[scenarioKey(`k${op.key}`), op.state]]);
          else if (op.op === 'settle') await settle();
          else {
            const since = Math.max(0, etcd.revision - op.back);
            subs.push({ since, c: collect(feed, { sinceRevision: since }) });
          }
        }
        await settle();
        await settle();
        // The truth, from the whole log: every put that changed its key's value, after `since`.
        for (const { since, c } of subs) {
          const revisions = c.got.map((r) => `${r.revision}.${r.index}`);
          t.deepEqual(revisions, [...new Set(revisions)], 'no duplicate');
          const expected: string[] = [];
          const last = new Map<string, string>();
          for (const entry of etcd.log) {
            for (const e of entry.events) {
              const key = e.kv.key.toString();
              if (key === keys.replayMarker) continue; // no state
              const before = last.get(key) ?? '';
              const after = e.kv.value.toString();
              last.set(key, after);
              if (entry.revision > since && before !== after) expected.push(`${entry.revision}.0`);
            }
          }
          if (!c.ends.includes('compacted')) t.deepEqual(revisions, expected, `since ${since}`);
        }
        feed.stop();
      },
    ),
    { numRuns: 60 },
  );
});

test('the shared watch opens with the first subscriber and closes after the last one left (idleStopMs)', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, idleStopMs: 20 });
  await settle();
  t.is(etcd.opened, 0, 'no subscriber, no watch');
  const a = collect(feed);
  const b = collect(feed);
  await settle();
  t.is(etcd.active, 1);
  etcd.put([[scenarioKey('s'), 'Idle']]);
  await settle();
  t.is(a.got.length, 1);
  t.is(b.got.length, 1);
  a.sub.close();
  await settle();
  t.is(etcd.active, 1, 'still one subscriber');
  b.sub.close();
  await new Promise((r) => setTimeout(r, 60));
  t.is(etcd.active, 0, 'closed once idle');
  // A new subscriber opens it again and gets what follows.
  const c = collect(feed);
  await settle();
  etcd.put([[scenarioKey('s'), 'Waiting']]);
  await settle();
  t.deepEqual(c.got.map((r) => `${r.from}->${r.to}`), ['Idle->Waiting']);
  t.is(etcd.opened, 2);
  feed.stop();
});

/** A sink that takes `capacity` changes, then says it is full until `refill()`. */
function reader(feed: StateFeed, filter: Parameters<StateFeed['subscribe']>[0], capacity: number, maxPausedBehindCuts: string[] = []) {
  const got: StateChangeRecord[] = [];
  let room = capacity;
  const ends: { kind: string; resumeRevision?: number }[] = [];
  const sub = feed.subscribe(filter, {
    send: (r) => {
      got.push(r);
      return --room > 0;
    },
    end: (r) => {
      ends.push(r.kind === 'slow' ? { kind: r.kind, resumeRevision: r.resumeRevision } : { kind: r.kind });
      maxPausedBehindCuts.push(r.kind);
    },
  });
  return {
    got,
    ends,
    sub,
    refill(n = capacity) {
      room = n;
      sub.resume();
    },
  };
}

/** Counts the watches open at once. */
function counting(etcd: FakeEtcd) {
  const c = { open: 0, max: 0, opened: 0 };
  const source: WatchSource = {
    watch(target, h) {
      const w = etcd.watch(target, h);
      c.opened++;
      c.max = Math.max(c.max, ++c.open);
      let closed = false;
      return {
        close: () => {
          if (!closed) c.open--;
          closed = true;
          w.close();
        },
        pause: () => w.pause(),
        resume: () => w.resume(),
      };
    },
  };
  return { c, source };
}

test('a full sink pauses the subscriber at the end of a revision; resume() goes on from there, nothing lost or repeated', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger });
  await feed.start();
  const r = reader(feed, {}, 2);
  await settle();
  etcd.put([[scenarioKey('a'), 'Idle']]);
  // Full after the second change, which opens a transaction of three: the transaction still goes whole.
  const txn = etcd.put([[scenarioKey('b'), 'Idle'], [scenarioKey('c'), 'Idle'], [scenarioKey('d'), 'Idle']]);
  etcd.put([[scenarioKey('e'), 'Idle']]);
  await settle();
  t.deepEqual(r.got.map((x) => x.name), ['a', 'b', 'c', 'd']);
  t.true(r.got.slice(1).every((x) => x.revision === txn));
  r.refill();
  await settle();
  t.deepEqual(r.got.map((x) => x.name), ['a', 'b', 'c', 'd', 'e']);
  feed.stop();
});

test('a replay whose watch hands over a chunk at once (records already in hand) goes on to the end, whatever the sink does', async (t) => {
  // etcd sends a catch-up in responses of up to 1,000 revisions and a paused stream still
  // delivers what is in flight: the pool then holds a chunk's worth when the subscriber asks, and
  // answers within the call. The subscriber stalled for good when its sink filled right then.
  const FLOOR = 5000;
  const RESPONSE = 1000;
  const source: WatchSource = {
    watch(target, h) {
      const start = target.startRevision ?? 0;
      if (start === 0) {
        setImmediate(() => h.onCreated?.(FLOOR));
        return { pause() {}, resume() {}, close() {} };
      }
      let next = start;
      let paused = false;
      let closed = false;
      let inFlight = 0;
      const pump = (): void => {
        while (!closed && next <= FLOOR && (!paused || inFlight > 0)) {
          if (paused) inFlight--;
          else inFlight = 2;
          const events: EtcdWatchEvent[] = [];
          for (let r = next; r < next + RESPONSE && r <= FLOOR; r++) {
            const key = Buffer.from(`/model/m${r % 300}/state`);
            const kv = (v: string, rev: number, version: string) => ({ key, value: Buffer.from(v), mod_revision: String(rev), version, create_revision: '1', lease: '0' });
            events.push({ type: 'Put', kv: kv(r % 2 ? 'Running' : 'Dead', r, '5'), prev_kv: kv(r % 2 ? 'Dead' : 'Running', r - 1, '4') });
          }
          next += events.length;
          h.onEvents(events, FLOOR);
        }
      };
      setImmediate(() => {
        h.onCreated?.(start - 1);
        pump();
      });
      return {
        pause: () => void (paused = true),
        resume: () => {
          paused = false;
          setImmediate(pump);
        },
        close: () => void (closed = true),
      };
    },
  };
  const feed = new StateFeed({ source, markReplay: async () => FLOOR + 1, keys, logger: silentLogger, bufferSize: 10_000 });
  await feed.start();
  let got = 0;
  let unread = 0;
  let ended: unknown;
  // A gRPC stream's sink: full after 16 unread messages, drained on a later turn.
  const sub = feed.subscribe(
    { sinceRevision: 0 },
    {
      send: () => {
        got++;
        if (++unread < 16) return true;
        setImmediate(() => {
          unread = 0;
          sub.resume();
        });
        return false;
      },
      end: (reason) => void (ended = reason),
    },
  );
  await eventually(async () => assert.strictEqual(got, FLOOR), { timeoutMs: 8000 });
  t.is(ended, undefined);
  feed.stop();
});

test('the shared watch disconnected from etcd: below disconnectedCutMs subscribers stay; past it they are ended to resume elsewhere, and new ones refused until it is back', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, disconnectedCutMs: 300 });
  await feed.start();
  const a = collect(feed);
  await settle();
  etcd.put([[scenarioKey('a'), 'Idle']]);
  await settle();
  // A blip shorter than the bound: nothing ends.
  etcd.disconnect();
  await new Promise((r) => setTimeout(r, 150));
  etcd.put([[scenarioKey('b'), 'Idle']]);
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(a.ends, []);
  t.deepEqual(a.got.map((r) => r.name), ['a', 'b']);
  // Longer than the bound: ended as restarted (UNAVAILABLE: resume on another replica by revision).
  etcd.disconnect();
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(a.ends, [], 'not yet');
  await new Promise((r) => setTimeout(r, 250));
  t.deepEqual(a.ends, ['restarted']);
  const late = collect(feed);
  await settle();
  t.deepEqual(late.ends, ['restarted'], 'a subscriber arriving while cut off is ended at once');
  // Back: served again.
  etcd.put([[scenarioKey('c'), 'Idle']]);
  await settle();
  const again = collect(feed);
  await settle();
  etcd.put([[scenarioKey('d'), 'Idle']]);
  await settle();
  t.deepEqual(again.ends, []);
  t.deepEqual(again.got.map((r) => r.name), ['d']);
  feed.stop();
});

// The cut-off is a fact about the shared watch: once that watch is closed for want of subscribers,
// the next one starts as at a fresh start. Kept, it refused the first subscriber after etcd was
// back (found by a code review).
test('after a cut-off the shared watch closed for want of subscribers: the next subscriber is not refused for the old outage', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, disconnectedCutMs: 50, idleStopMs: 20 });
  const a = collect(feed);
  await settle();
  etcd.disconnect();
  await new Promise((r) => setTimeout(r, 120));
  t.deepEqual(a.ends, ['restarted'], 'cut off');
  await new Promise((r) => setTimeout(r, 80));
  t.is(feed.etcdWatches, 0, 'the shared watch closed once idle');
  const next = collect(feed);
  await settle();
  etcd.put([[scenarioKey('e'), 'Idle']]);
  await settle();
  t.deepEqual(next.ends, []);
  t.deepEqual(next.got.map((r) => r.name), ['e']);
  feed.stop();
});

test('a subscriber paused while more than maxPausedBehind changes arrive is cut, naming the last revision it was given whole; at the bound it is not', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, maxPausedBehind: 5 });
  await feed.start();
  const r = reader(feed, {}, 1);
  await settle();
  const first = etcd.put([[scenarioKey('x'), 'Idle']]);
  await settle();
  for (let i = 0; i < 5; i++) etcd.put([[scenarioKey(`y${i}`), 'Idle']]); // at the bound
  await settle();
  t.deepEqual(r.ends, []);
  t.is(feed.subscribers, 1);
  etcd.put([[scenarioKey('z'), 'Idle']]); // just past it
  await settle();
  t.deepEqual(r.ends, [{ kind: 'slow', resumeRevision: first }]);
  t.is(feed.subscribers, 0);
  feed.stop();
});

test('a paused subscriber whose place the buffer dropped is cut, naming the last revision it was given whole', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize: 3, maxPausedBehind: 1000 });
  await feed.start();
  const r = reader(feed, {}, 1);
  await settle();
  const first = etcd.put([[scenarioKey('x'), 'Idle']]);
  await settle();
  for (let i = 0; i < 3; i++) etcd.put([[scenarioKey(`y${i}`), 'Idle']]); // the buffer still holds its next change
  await settle();
  t.deepEqual(r.ends, []);
  etcd.put([[scenarioKey('z'), 'Idle']]); // now it drops it
  await settle();
  t.deepEqual(r.ends, [{ kind: 'slow', resumeRevision: first }]);
  feed.stop();
});

test('replays from before the buffer use at most replayWatches etcd watches at once; identical resumes share one', async (t) => {
  const etcd = new FakeEtcd();
  for (let i = 0; i < 40; i++) etcd.put([[scenarioKey(`old${i}`), 'Idle']]);
  const { c, source } = counting(etcd);
  const feed = new StateFeed({ source, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize: 3, replayWatches: 2, replayChunk: 7 });
  await feed.start();
  etcd.put([[scenarioKey('new'), 'Idle']]);
  await settle();
  const before = c.opened;
  // Ten identical resumes: one watch for all of them, paused between its chunks of 7 (one watch
  // per chunk made etcd read its history from each chunk's start again).
  const same = Array.from({ length: 10 }, () => reader(feed, { sinceRevision: 2 }, 1000));
  await eventually(async () => assert.ok(same.every((r) => r.got.length === 40)));
  t.is(c.opened - before, 1, 'one watch for the six chunks, shared by the ten');
  // Twenty distinct ones: never more than 1 + 2 watches open.
  const distinct = Array.from({ length: 20 }, (_, i) => ({ since: 2 + i, r: reader(feed, { sinceRevision: 2 + i }, 1000) }));
  await eventually(async () => assert.ok(distinct.every(({ since, r }) => r.got.length === 42 - since)));
  t.is(c.max, 3);
  for (const { since, r } of distinct) t.deepEqual(r.got.map((x) => x.revision), etcd.log.filter((e) => e.revision > since).map((e) => e.revision));
  t.is(feed.etcdWatches, 1);
  feed.stop();
});

/**
 * A reader as a real client is: when it is cut for falling behind ('slow': its place left the
 * buffer while it was paused, which small buffers and bursts of changes make happen), it
 * subscribes again from the revision the cut named, into the same list.
 */
function resumingReader(feed: StateFeed, since: number, capacity: number) {
  const got: StateChangeRecord[] = [];
  const cuts: number[] = [];
  const others: string[] = [];
  let room = capacity;
  let sub: ReturnType<StateFeed['subscribe']>;
  const open = (from: number): void => {
    sub = feed.subscribe(
      { sinceRevision: from },
      {
        send: (r) => {
          got.push(r);
          return --room > 0;
        },
        end: (r) => {
          if (r.kind !== 'slow') return void others.push(r.kind);
          cuts.push(r.resumeRevision);
          open(r.resumeRevision);
        },
      },
    );
  };
  open(since);
  return {
    got,
    cuts,
    others,
    refill() {
      room = capacity;
      sub.resume();
    },
  };
}

test('property: readers at any pace, resuming from anywhere, get exactly the changes after their position, in order, once (resuming where a cut says)', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.oneof(fc.record({ op: fc.constant('put' as const), key: fc.integer({ min: 0, max: 3 }), state: fc.constantFrom('Idle', 'Waiting', 'Satisfied') }), fc.record({ op: fc.constant('join' as const), back: fc.integer({ min: 0, max: 30 }), capacity: fc.integer({ min: 1, max: 4 }) }), fc.record({ op: fc.constant('read' as const) })), { maxLength: 60 }),
      async (bufferSize, chunk, ops) => {
        const etcd = new FakeEtcd();
        for (let i = 0; i < 10; i++) etcd.put([[scenarioKey(`pre${i % 2}`), i % 2 ? 'Waiting' : 'Idle']]);
        const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize, replayChunk: chunk, replayWatches: 2, maxPausedBehind: 1_000_000 });
        await feed.start();
        const subs: { since: number; r: ReturnType<typeof resumingReader> }[] = [];
        const readAll = async () => {
          for (let i = 0; i < 200; i++) {
            for (const s of subs) s.r.refill();
            await new Promise((r) => setTimeout(r, 3));
          }
        };
        for (const op of ops) {
          if (op.op === 'put') etcd.put([[scenarioKey(`k${op.key}`), op.state]]);
          else if (op.op === 'read') {
            for (const s of subs) s.r.refill();
            await new Promise((r) => setTimeout(r, 3));
          } else {
            const since = Math.max(0, etcd.revision - op.back);
            subs.push({ since, r: resumingReader(feed, since, op.capacity) });
          }
        }
        await readAll();
        for (const { since, r } of subs) {
          const revisions = r.got.map((x) => x.revision);
          const expected = etcd.log.filter((e) => e.revision > since && changed(etcd, e.revision)).map((e) => e.revision);
          t.deepEqual(r.others, [], 'no end but a cut for falling behind');
          // A cut names a revision everything up to which was given: resumed from there, no gap and no repeat.
          for (const cut of r.cuts) t.true(revisions.includes(cut) || !expected.includes(cut), `cut at ${cut}`);
          t.deepEqual(revisions, expected, `since ${since}`);
        }
        feed.stop();
      },
    ),
    { numRuns: 25 },
  );
});

/** Whether the put at `revision` changed its key's value (the log holds one put per revision here). */
/** Whether the put at `revision` changed a state (the replay marker is no state). */
function changed(etcd: FakeEtcd, revision: number): boolean {
  const e = etcd.log.find((x) => x.revision === revision)!.events[0]!;
  return e.kv.key.toString() !== keys.replayMarker && (e.prev_kv?.value.toString() ?? '') !== e.kv.value.toString();
}

test('many subscribers with slow sinks: a batch of changes is handed out in slices, never one long block, and every subscriber gets all of it', async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, fanOutSliceMs: 5 });
  await feed.start();
  const spin = (us: number) => {
    const until = performance.now() + us / 1000;
    while (performance.now() < until);
  };
  const subs = Array.from({ length: 200 }, () => {
    const got: number[] = [];
    feed.subscribe({}, { send: (r) => (spin(20), got.push(r.revision), true), end: () => undefined });
    return got;
  });
  await settle();
  let rev = 0;
  // One transaction of 50 changes: 200 × 50 sends of 20 µs, 200 ms of work in one watch callback before the slices.
  const gap = await largestLoopGap(async () => {
    rev = etcd.put(Array.from({ length: 50 }, (_, i) => [scenarioKey(`s${i}`), 'Idle'] as [string, string]));
    await eventually(async () => assert.ok(subs.every((got) => got.length === 50)), { timeoutMs: 10_000 });
  }, 1);
  t.log(`largest event-loop gap while handing out: ${gap.toFixed(1)} ms`);
  t.true(subs.every((got) => got.every((r) => r === rev)));
  // A slice (5 ms) plus one subscriber's batch (50 × 20 µs) and timer slack under a loaded CI; 200 ms at once before.
  t.true(gap < 100, `gap ${gap.toFixed(1)} ms`);
  feed.stop();
});

test("etcd's history replaced: every subscriber ends (live and resumed alike), the old buffer serves nobody, a resume past etcd is 'future', and one within the new history gets only the new history's changes", async (t) => {
  for (const how of ['told', 'shared watch behind'] as const) {
    const etcd = new FakeEtcd();
    const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize: 5, etcdRevision: async () => etcd.revision });
    await feed.start();
    const backup = etcd.put([[scenarioKey('s'), 'Idle']]);
    for (let i = 0; i < 10; i++) etcd.put([[scenarioKey(`old${i}`), 'Waiting']]);
    await settle();
    const oldNewest = etcd.revision;
    const live = collect(feed);
    const replaying = collect(feed, { sinceRevision: 1 });
    await settle();
    t.true(live.got.length === 0 && replaying.got.length > 0);

    etcd.restoreTo(backup);
    if (how === 'told') feed.historyReplaced('informer x found etcd behind');
    else etcd.cancelBehind(oldNewest + 1);
    await settle();
    t.deepEqual(live.ends, ['restarted'], how);
    t.deepEqual(replaying.ends, ['restarted'], how);

    const past = collect(feed, { sinceRevision: oldNewest });
    const fresh = etcd.put([[scenarioKey('s'), 'Waiting']]);
    const within = collect(feed, { sinceRevision: backup });
    await settle();
    t.deepEqual(past.ends, ['future'], `${how}: a revision of the old history past etcd's is refused, not waited for`);
    t.deepEqual(within.got.map((r) => [r.revision, r.name, r.to]), [[fresh, 's', 'Waiting']], `${how}: nothing of the old history`);
    feed.stop();
  }
});

test("a change etcd sends without the state before it (compacted while the shared watch was behind) is never published as a new resource: subscribers end to resume, a resume from before it is told to list again", async (t) => {
  const etcd = new FakeEtcd();
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger });
  await feed.start();
  const live = collect(feed);
  const before = etcd.put([[keys.stateKey('model', 'm'), 'Running']]);
  await settle();
  t.deepEqual(live.got.map((r) => `${r.from}->${r.to}`), ['->Running']);
  etcd.put([[keys.stateKey('model', 'm'), 'Dead']], { previousCompacted: true });
  etcd.compacted = etcd.revision;
  await settle();
  t.deepEqual(live.got.map((r) => `${r.from}->${r.to}`), ['->Running'], 'no "" -> Dead');
  t.deepEqual(live.ends, ['restarted']);
  // Resuming from the last revision it was given: before the compaction, so list again.
  const resumed = collect(feed, { sinceRevision: before });
  await eventually(() => assert.deepStrictEqual(resumed.ends, ['compacted']));
  t.deepEqual(resumed.got, []);
  // The feed goes on: later changes reach new subscribers with their old state.
  const after = collect(feed);
  await settle();
  etcd.put([[keys.stateKey('model', 'm'), 'Running']]);
  await settle();
  t.deepEqual(after.got.map((r) => `${r.from}->${r.to}`), ['Dead->Running']);
});

test("a resume from a revision the buffer still holds is served from it, also when etcd has compacted it since; older than the buffer, etcd's compaction answers: below, at and past the buffer's first change", async (t) => {
  // A quiet type's list says the revision of its last change; after a compaction past it, a
  // resume refused as etcd would refuse it could never be made (found by black-box probing).
  const etcd = new FakeEtcd();
  for (let i = 0; i < 3; i++) etcd.put([[scenarioKey('old'), i % 2 ? 'Waiting' : 'Idle']]);
  const feed = new StateFeed({ source: etcd, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize: 4 });
  await feed.start();
  const first = collect(feed);
  const revs: number[] = [];
  for (let i = 0; i < 6; i++) revs.push(etcd.put([[scenarioKey('s'), i % 2 ? 'Waiting' : 'Idle']]));
  await settle();
  t.is(first.got.length, 6);
  etcd.compacted = revs[5]!; // every change gone from etcd; the buffer holds the last 4
  const at = collect(feed, { sinceRevision: revs[1]! }); // the buffer's first change is revs[2]: every change after revs[1] is held
  const past = collect(feed, { sinceRevision: revs[4]! });
  const below = collect(feed, { sinceRevision: revs[0]! }); // revs[1] is no longer held: etcd's replay, compacted
  await eventually(() => assert.deepStrictEqual(below.ends, ['compacted']));
  await settle();
  t.deepEqual(at.ends, []);
  t.deepEqual(at.got.map((r) => r.revision), revs.slice(2), 'from the buffer, in order');
  t.deepEqual(past.got.map((r) => r.revision), [revs[5]]);
  t.deepEqual(below.got, []);
});

test('a replay waiting for a buffered change when the shared watch restarts ends with what it has, waits for the new watch, and ends at one marker: every change once, none needed after', async (t) => {
  // The feed's buffer emptied under a fetch opened without a marker: the change it waited for
  // (one at or past the floor) may never come. Without bufferReset the subscriber got nothing;
  // without waiting for the new watch, it wrote a marker after marker until the watch was back.
  const etcd = new FakeEtcd();
  const gate = gated(etcd);
  const feed = new StateFeed({ source: gate.source, markReplay: etcd.mark, keys, logger: silentLogger, bufferSize: 3 });
  await feed.start();
  const old: number[] = [];
  for (let i = 0; i < 10; i++) old.push(etcd.put([[scenarioKey(`s${i}`), 'Idle']]));
  await settle();
  gate.holdReplays = true; // the replay's history is slow to come
  const sub = collect(feed, { sinceRevision: old[1]! });
  await settle();
  t.is(gate.replays, 1);
  etcd.put([['/elsewhere', 'x']]); // etcd's revision moves past the last state change
  gate.holdShared = true; // and the shared watch is slow to start again
  etcd.cancelFromNow('the shared watch fell behind');
  await settle();
  gate.releaseReplays();
  await settle();
  t.deepEqual(sub.got, [], 'the first fetch ended with nothing (its responses were late)');
  t.is(etcd.marks, 0, 'no replay while the new watch has not started');
  gate.releaseShared();
  await settle();
  t.deepEqual(sub.got.map((r) => r.revision), old.slice(2), 'every change after the resume, once, with no change after');
  t.deepEqual(sub.ends, []);
  t.is(etcd.marks, 1);
  const live = etcd.put([[scenarioKey('s0'), 'Waiting']]);
  await settle();
  t.deepEqual(sub.got.slice(8).map((r) => r.revision), [live], 'then live');
  feed.stop();
});

/** A watch source whose replay watches (from a revision) or new shared watches (from now) deliver nothing while held, then all of it on release. */
function gated(etcd: FakeEtcd) {
  const held = { replays: [] as (() => void)[], shared: [] as (() => void)[] };
  const g = {
    holdReplays: false,
    holdShared: false,
    replays: 0,
    releaseReplays: () => {
      g.holdReplays = false;
      for (const f of held.replays.splice(0)) f();
    },
    releaseShared: () => {
      g.holdShared = false;
      for (const f of held.shared.splice(0)) f();
    },
    source: {
      watch(target: WatchTarget, h: EtcdWatchHandlers): EtcdWatch {
        const replay = (target.startRevision ?? 0) !== 0;
        if (replay) g.replays++;
        const queue = replay ? held.replays : held.shared;
        const holding = () => (replay ? g.holdReplays : g.holdShared) || queue.length > 0;
        const later = <A extends unknown[]>(f: (...a: A) => void) => (...a: A) => (holding() ? queue.push(() => f(...a)) : f(...a));
        return etcd.watch(target, { ...h, onEvents: later(h.onEvents), ...(h.onCreated ? { onCreated: later(h.onCreated) } : {}) });
      },
    } as WatchSource,
  };
  return g;
}
