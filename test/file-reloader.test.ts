// The poll behind credential reloading, on in-memory files and a hand-driven timer: nothing is
// read between ticks, a change is applied at the next tick, a broken change keeps the old value
// and is reported once per distinct content, and stop() ends the polling.
import test from 'ava';
import { FileReloader, type ReloadOutcome } from '../src/process/file-reloader.js';
import { captureLogger } from './grpc/_support.js';

function world() {
  const files = new Map<string, string>([['/a', 'one']]);
  let tick: (() => void) | undefined;
  const intervals: number[] = [];
  let reads = 0;
  const applied: [string, boolean][] = [];
  const outcomes: ReloadOutcome[] = [];
  const loadedAt: number[] = [];
  const logger = captureLogger();
  let now = 1_000_000;
  const reloader = new FileReloader<string>({
    what: 'test',
    files: [{ label: 'test file', path: '/a' }],
    build: (contents) => {
      const text = contents.get('/a')!.toString();
      if (text.startsWith('bad')) throw new Error(`test file /a is ${text}`);
      return text;
    },
    apply: (v, reloaded) => void applied.push([v, reloaded]),
    intervalMs: 5000,
    logger,
    metrics: { reloaded: (_w, o) => void outcomes.push(o), loaded: (_w, s) => void loadedAt.push(s) },
    read: async (p) => {
      reads++;
      const v = files.get(p);
      if (v === undefined) throw new Error('ENOENT: no such file');
      return Buffer.from(v);
    },
    now: () => now,
    every: (fn, ms) => {
      tick = fn;
      intervals.push(ms);
      return { stop: () => (tick = undefined) };
    },
  });
  return {
    files,
    reloader,
    applied,
    outcomes,
    loadedAt,
    logger,
    intervals,
    reads: () => reads,
    advance: (ms: number) => (now += ms),
    /** One timer tick, and the poll it started. */
    tick: async () => {
      if (!tick) return 'stopped';
      tick();
      return reloader.poll();
    },
  };
}

test('the first load applies the files and starts one timer at the configured interval', async (t) => {
  const w = world();
  t.is(await w.reloader.start(), 'one');
  t.deepEqual(w.applied, [['one', false]]);
  t.deepEqual(w.intervals, [5000]);
  t.deepEqual(w.outcomes, []);
  t.deepEqual(w.loadedAt, [1000]);
});

test('the first load fails with a message naming the file', async (t) => {
  const w = world();
  w.files.delete('/a');
  await t.throwsAsync(w.reloader.start(), { message: 'cannot read test file /a: ENOENT: no such file' });
  w.files.set('/a', 'bad value');
  await t.throwsAsync(w.reloader.start(), { message: 'test file /a is bad value' });
  t.deepEqual(w.applied, []);
});

test('files are read only at ticks; a change is applied at the next one', async (t) => {
  const w = world();
  await w.reloader.start();
  const reads = w.reads();
  w.files.set('/a', 'two');
  t.is(w.reads(), reads, 'nothing read before the tick');
  t.deepEqual(w.applied, [['one', false]]);
  t.is(await w.tick(), 'reloaded');
  t.deepEqual(w.applied, [['one', false], ['two', true]]);
  t.deepEqual(w.outcomes, ['success']);
  t.is(await w.tick(), 'unchanged');
  t.deepEqual(w.outcomes, ['success']);
  t.is(w.logger.lines.filter((l) => l.message === 'credentials reloaded').length, 1);
});

test('a broken change keeps the value in service, reported once per distinct content', async (t) => {
  const w = world();
  await w.reloader.start();
  w.files.set('/a', 'bad 1');
  t.is(await w.tick(), 'failed');
  t.is(await w.tick(), 'failed');
  t.deepEqual(w.outcomes, ['error'], 'the same broken content is counted once');
  w.files.set('/a', 'bad 2');
  t.is(await w.tick(), 'failed');
  w.files.delete('/a');
  t.is(await w.tick(), 'failed');
  t.is(await w.tick(), 'failed');
  t.deepEqual(w.outcomes, ['error', 'error', 'error']);
  t.deepEqual(
    w.logger.lines.filter((l) => l.level === 'error').map((l) => l.meta.error),
    ['test file /a is bad 1', 'test file /a is bad 2', 'cannot read test file /a: ENOENT: no such file'],
  );
  t.deepEqual(w.applied, [['one', false]], 'the first value stayed in service');
  // Back to what is in service: nothing to do, nothing counted; the same breakage again counts again.
  w.files.set('/a', 'one');
  t.is(await w.tick(), 'unchanged');
  w.files.set('/a', 'bad 1');
  t.is(await w.tick(), 'failed');
  t.is(w.outcomes.length, 4);
  w.advance(7000);
  w.files.set('/a', 'three');
  t.is(await w.tick(), 'reloaded');
  t.deepEqual(w.applied.at(-1), ['three', true]);
  t.deepEqual(w.loadedAt, [1000, 1007]);
});

test('stop() ends the polling', async (t) => {
  const w = world();
  await w.reloader.start();
  w.reloader.stop();
  w.files.set('/a', 'two');
  t.is(await w.tick(), 'stopped');
  t.deepEqual(w.applied, [['one', false]]);
});

test('no files: nothing to poll, no timer', async (t) => {
  let timers = 0;
  const r = new FileReloader<number>({
    what: 'none',
    files: [],
    build: () => 42,
    apply: () => undefined,
    intervalMs: 1000,
    logger: captureLogger(),
    every: () => {
      timers++;
      return { stop: () => undefined };
    },
  });
  t.is(await r.start(), 42);
  t.is(timers, 0);
});

/** A certificate and key pair as a Secret holds them: each read of /crt or /key sees the version then current. */
function pairWorld() {
  let version: Record<string, string> = { '/crt': 'crt-1', '/key': 'key-1' };
  /** Versions to switch to right after a read of /crt, one per read. */
  const swapsAfterCrt: (Record<string, string> | undefined)[] = [];
  const outcomes: ReloadOutcome[] = [];
  const applied: string[] = [];
  const logger = captureLogger();
  const reloader = new FileReloader<string>({
    what: 'pair',
    files: [
      { label: 'certificate', path: '/crt' },
      { label: 'key', path: '/key' },
    ],
    build: (c) => {
      const [crt, key] = [c.get('/crt')!.toString(), c.get('/key')!.toString()];
      if (crt.startsWith('bad')) throw new Error(`certificate ${crt} cannot be used`);
      if (key.startsWith('bad')) throw new Error(`key ${key} cannot be used`);
      if (crt.slice(4) !== key.slice(4)) throw new Error(`certificate ${crt} and key ${key} cannot be used`);
      return crt;
    },
    apply: (v) => void applied.push(v),
    intervalMs: 1000,
    logger,
    metrics: { reloaded: (_w, o) => void outcomes.push(o), loaded: () => undefined },
    read: async (p) => {
      const v = version[p]!;
      if (p === '/crt' && swapsAfterCrt.length > 0) version = swapsAfterCrt.shift() ?? version;
      return Buffer.from(v);
    },
    every: () => ({ stop: () => undefined }),
  });
  return {
    reloader,
    outcomes,
    applied,
    set: (v: Record<string, string>) => (version = v),
    swapsAfterCrt,
    errors: () => logger.lines.filter((l) => l.level === 'error').map((l) => String(l.meta.error)),
    warnings: () => logger.lines.filter((l) => l.level === 'warn').map((l) => l.message),
  };
}

test('one broken version rotated to another while it is read again: only the version that stays is reported, with its own error', async (t) => {
  const w = pairWorld();
  await w.reloader.start();
  w.set({ '/crt': 'bad-crt', '/key': 'key-1' });
  t.is(await w.reloader.poll(), 'failed');
  t.deepEqual(w.errors(), ['certificate bad-crt cannot be used']);
  // The next version is broken too (its key). The poll reads the old version whole; its second
  // read takes the old certificate and the new key (torn); the third and fourth the new version.
  w.set({ '/crt': 'bad-crt', '/key': 'key-1' });
  w.swapsAfterCrt.push(undefined, { '/crt': 'crt-1', '/key': 'bad-key' });
  t.is(await w.reloader.poll(), 'failed');
  t.deepEqual(w.errors(), ['certificate bad-crt cannot be used', 'key bad-key cannot be used'], 'the torn read is not reported');
  t.deepEqual(w.outcomes, ['error', 'error']);
  t.is(await w.reloader.poll(), 'failed');
  t.deepEqual(w.outcomes, ['error', 'error'], 'the version that stays is counted once');
  t.deepEqual(w.applied, ['crt-1']);
});

test('contents that change at every read are left to the next poll: not applied, not reported, one warning', async (t) => {
  const w = pairWorld();
  await w.reloader.start();
  w.set({ '/crt': 'bad-0', '/key': 'key-1' });
  // Every read of the certificate is followed by a new version: no two reads ever agree.
  for (let i = 1; i <= 5; i++) w.swapsAfterCrt.push({ '/crt': `bad-${i}`, '/key': 'key-1' });
  t.is(await w.reloader.poll(), 'unchanged');
  t.deepEqual(w.outcomes, []);
  t.deepEqual(w.errors(), []);
  t.deepEqual(w.warnings(), ['credential files still changing: read again at the next poll']);
  // Once they settle, the next poll reports them.
  t.is(await w.reloader.poll(), 'failed');
  t.deepEqual(w.errors(), ['certificate bad-5 cannot be used']);
});

test('reads again at most four times: a version that settles on the fourth is reported, one that settles on the fifth waits', async (t) => {
  for (const [changes, outcome] of [
    [3, 'failed'],
    [4, 'unchanged'],
  ] as const) {
    const w = pairWorld();
    await w.reloader.start();
    w.set({ '/crt': 'bad-0', '/key': 'key-1' });
    for (let i = 1; i <= changes; i++) w.swapsAfterCrt.push({ '/crt': `bad-${i}`, '/key': 'key-1' });
    t.is(await w.reloader.poll(), outcome, `${changes} changes`);
    t.deepEqual(w.errors(), outcome === 'failed' ? [`certificate bad-${changes} cannot be used`] : []);
  }
});

test('a rotation that lands between reading one file and the next is read again and applied, not reported broken', async (t) => {
  // A certificate and its key must come from the same Secret version.
  const w = pairWorld();
  await w.reloader.start();
  // This poll reads the certificate of version 2 and the key of version 3.
  w.set({ '/crt': 'crt-2', '/key': 'key-2' });
  w.swapsAfterCrt.push({ '/crt': 'crt-3', '/key': 'key-3' });
  t.is(await w.reloader.poll(), 'reloaded');
  t.deepEqual(w.applied, ['crt-1', 'crt-3']);
  t.deepEqual(w.outcomes, ['success'], 'nothing reported broken');

  // A pair that stays mismatched is reported, once.
  w.set({ '/crt': 'crt-4', '/key': 'key-3' });
  t.is(await w.reloader.poll(), 'failed');
  t.is(await w.reloader.poll(), 'failed');
  t.deepEqual(w.outcomes, ['success', 'error']);
  t.deepEqual(w.applied, ['crt-1', 'crt-3']);
});
