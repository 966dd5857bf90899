// Paging a range by bytes as well as by count: big values never make a page exceed the client's
// receive limit, and every key comes back once, in order, at one revision.
import test from 'ava';
import { handleWhen, noop, retry } from 'cockatiel';
import { Etcd3, isRecoverableError, type IKeyValue, type IOptions, type IRangeRequest, type IRangeResponse } from 'etcd3';
import { prefixEnd } from '../../src/etcd/lister-watcher.js';
import { DEADLINE_RETRIES, DROP_PAUSE_MS, DROP_RETRIES, MAX_PAGE_BYTES, PageCap, pageTooSlow, rangePaged } from '../../src/etcd/paged-range.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const RECEIVE_LIMIT = 2 * MiB;

let etcd: EtcdServer;
const clients: Etcd3[] = [];
test.before(async () => {
  etcd = await startEtcd();
});
test.after.always(async () => {
  for (const c of clients) c.close();
  await etcd?.stop();
});

type HostPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['host']>;

/**
 * A client like createEtcdClient's (no per-host breaker, one retry per member) with a small
 * receive limit. etcd3 counts RESOURCE_EXHAUSTED as recoverable: its default breaker would open
 * after three too-large pages and refuse the next calls.
 */
function smallClient(receiveLimit = RECEIVE_LIMIT): Etcd3 {
  const c = new Etcd3({
    hosts: etcd.endpoint,
    faultHandling: { host: (() => noop) as unknown as HostPolicy, global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }) },
    grpcOptions: { 'grpc.max_receive_message_length': receiveLimit },
  });
  clients.push(c);
  return c;
}

const pageBytes = (kvs: IKeyValue[]): number => kvs.reduce((n, kv) => n + kv.key.length + kv.value.length, 0);
const value = (i: number, size: number): Buffer => Buffer.alloc(size, i % 251);

interface Call {
  limit: number;
  revision: number | undefined;
  /** Set when the call succeeded. */
  page?: { bytes: number; count: number; revision: number };
  /** Set when it failed. */
  error?: string;
}

/** The same send as the lister-watcher (kv.range with a per-page deadline), recording each call. */
function recordingSend(client: Etcd3): { send: (req: IRangeRequest) => Promise<IRangeResponse>; calls: Call[] } {
  const calls: Call[] = [];
  const send = async (req: IRangeRequest): Promise<IRangeResponse> => {
    const call: Call = { limit: Number(req.limit), revision: req.revision === undefined ? undefined : Number(req.revision) };
    calls.push(call);
    try {
      const res = await client.kv.range(req, { deadline: Date.now() + 30_000 });
      call.page = { bytes: pageBytes(res.kvs), count: res.kvs.length, revision: Number(res.header.revision) };
      return res;
    } catch (err) {
      call.error = err instanceof Error ? err.message : String(err);
      throw err;
    }
  };
  return { send, calls };
}

const pagesOf = (calls: Call[]) => calls.flatMap((c) => (c.page ? [c.page] : []));
const failuresOf = (calls: Call[]) => calls.filter((c) => c.error !== undefined);

async function list(
  client: Etcd3,
  prefix: string,
  opts: { pageSize: number; maxPageBytes?: number; revision?: number; afterFirstPage?: () => Promise<void> },
) {
  const { send: record, calls } = recordingSend(client);
  let first = true;
  const send = async (req: IRangeRequest): Promise<IRangeResponse> => {
    const res = await record(req);
    if (first && opts.afterFirstPage) await opts.afterFirstPage();
    first = false;
    return res;
  };
  const key = Buffer.from(prefix);
  const kvs: IKeyValue[] = [];
  const revision = await rangePaged(
    send,
    { key, rangeEnd: prefixEnd(key), pageSize: opts.pageSize, ...(opts.maxPageBytes !== undefined ? { maxPageBytes: opts.maxPageBytes } : {}), ...(opts.revision !== undefined ? { revision: opts.revision } : {}) },
    (page) => kvs.push(...page),
  );
  return { kvs, revision, calls };
}

test('the default page budget is 8 MiB', (t) => {
  t.is(MAX_PAGE_BYTES, 8 * MiB);
});

test('30 values of 300 KiB under a 2 MiB receive limit: every key once, in order, at one revision', async (t) => {
  const prefix = '/big/';
  const names: string[] = [];
  for (let i = 0; i < 30; i++) {
    const name = `${prefix}${String(i).padStart(3, '0')}`;
    names.push(name);
    await etcd.client().put(name).value(value(i, 300 * KiB));
  }
  const client = smallClient();
  // The whole range in one response is ~9 MiB: over the limit, as the old count-only paging sent.
  await t.throwsAsync(client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(Buffer.from(prefix)), limit: 1000 }), { message: /larger than max/ });

  for (const [run, maxPageBytes] of [undefined, 1 * MiB].entries()) {
    // Writes while the list runs are not seen: every page is read at the first page's revision.
    const afterFirstPage = async (): Promise<void> => {
      await etcd.client().put(`${prefix}${String(run).padStart(3, '0')}`).value('overwritten');
      await etcd.client().put(`${prefix}zzz${run}`).value('added');
    };
    const { kvs, revision, calls } = await list(client, prefix, { pageSize: 1000, afterFirstPage, ...(maxPageBytes !== undefined ? { maxPageBytes } : {}) });
    const label = `maxPageBytes ${maxPageBytes ?? 'default'}`;
    t.deepEqual(kvs.map((kv) => kv.key.toString()), names, label);
    kvs.forEach((kv, i) => t.true(kv.value.equals(value(i, 300 * KiB)), `${label}: value of ${names[i]}`));
    const pages = pagesOf(calls);
    const failures = failuresOf(calls);
    t.true(pages.length > 1, label);
    t.true(failures.length > 0 && failures.every((f) => /larger than max/.test(f.error!)), label);
    t.is(calls[0]!.limit, 1000, label);
    t.truthy(calls[0]!.error, label);
    for (const p of pages) {
      t.true(p.bytes < RECEIVE_LIMIT, `${label}: page of ${p.bytes} bytes`);
    }
    t.true(kvs.every((kv) => Number(kv.mod_revision) <= revision), label);
    // No request asks for more than pageSize or fewer than one key; once the first page is read,
    // every later request (retries too) is at its revision.
    for (const c of calls) t.true(c.limit >= 1 && c.limit <= 1000, label);
    const firstOk = calls.findIndex((c) => c.page !== undefined);
    for (const c of calls.slice(0, firstOk + 1)) t.is(c.revision, undefined, label);
    for (const c of calls.slice(firstOk + 1)) t.is(c.revision, revision, label);
    if (maxPageBytes !== undefined) {
      // With a budget under the limit, the estimate alone keeps every later page small: the only
      // failures are while the first page is halved down.
      t.is(failures.length, firstOk, label);
      for (const p of pages.slice(1)) t.true(p.bytes <= maxPageBytes, `${label}: later page of ${p.bytes} bytes`);
    }
    // Undo the writes made during the list, for the next run.
    await etcd.client().put(names[run]!).value(value(run, 300 * KiB));
    await etcd.client().delete().key(`${prefix}zzz${run}`);
  }
});

test('mixed small and big values: every key returned, in order', async (t) => {
  const prefix = '/mixed/';
  const expected: { key: string; size: number }[] = [];
  for (let i = 0; i < 300; i++) {
    // Runs of small keys, then runs of big ones: an estimate from a small page undershoots.
    const big = Math.floor(i / 50) % 2 === 1 && i % 5 === 0;
    const size = big ? 500 * KiB : 64;
    const key = `${prefix}${String(i).padStart(4, '0')}`;
    expected.push({ key, size });
    await etcd.client().put(key).value(value(i, size));
  }
  const { kvs, calls } = await list(smallClient(), prefix, { pageSize: 1000, maxPageBytes: 1 * MiB });
  t.deepEqual(kvs.map((kv) => kv.key.toString()), expected.map((e) => e.key));
  kvs.forEach((kv, i) => t.true(kv.value.equals(value(i, expected[i]!.size)), expected[i]!.key));
  // Some page after the first was estimated from small values, met big ones and was halved.
  t.true(failuresOf(calls).some((f) => f.revision !== undefined), 'a later page had to be halved');
  for (const p of pagesOf(calls)) t.true(p.bytes < RECEIVE_LIMIT);
});

test('a given revision is respected: later puts and overwrites are not seen', async (t) => {
  const prefix = '/rev/';
  for (let i = 0; i < 12; i++) await etcd.client().put(`${prefix}${String(i).padStart(2, '0')}`).value(value(i, 400 * KiB));
  const at = Number((await etcd.client().kv.range({ key: Buffer.from(prefix), limit: 1 })).header.revision);
  for (let i = 12; i < 20; i++) await etcd.client().put(`${prefix}${String(i).padStart(2, '0')}`).value(value(i, 400 * KiB));
  await etcd.client().put(`${prefix}00`).value('overwritten');
  await etcd.client().delete().key(`${prefix}05`);

  const { kvs, revision, calls } = await list(smallClient(), prefix, { pageSize: 1000, revision: at });
  t.is(revision, at);
  t.deepEqual(kvs.map((kv) => kv.key.toString()), Array.from({ length: 12 }, (_, i) => `${prefix}${String(i).padStart(2, '0')}`));
  kvs.forEach((kv, i) => t.true(kv.value.equals(value(i, 400 * KiB))));
  t.true(calls.every((c) => c.revision === at), 'every page, retries too, at the given revision');
  t.true(failuresOf(calls).length > 0);
  t.true(kvs.every((kv) => Number(kv.mod_revision) <= at));
});

test('a single key over the limit is rethrown, not retried forever', async (t) => {
  await etcd.client().put('/huge/0').value(value(0, 1200 * KiB));
  const { send, calls } = recordingSend(smallClient(1 * MiB));
  const key = Buffer.from('/huge/');
  await t.throwsAsync(
    rangePaged(send, { key, rangeEnd: prefixEnd(key), pageSize: 1000 }, () => t.fail('no page')),
    { message: /RESOURCE_EXHAUSTED: Received message larger than max/ },
  );
  // Halved 1000, 500, 250, 125, 62, 31, 15, 7, 3, 1; one key failing ends it.
  t.deepEqual(calls.map((c) => c.limit), [1000, 500, 250, 125, 62, 31, 15, 7, 3, 1]);
  t.true(calls.every((c) => c.error !== undefined));
});

test('other errors are rethrown without a retry', async (t) => {
  let calls = 0;
  const send = async (): Promise<IRangeResponse> => {
    calls++;
    throw new Error('14 UNAVAILABLE: No connection established');
  };
  await t.throwsAsync(rangePaged(send, { key: Buffer.from('/x/'), rangeEnd: Buffer.from('/x0'), pageSize: 100 }, () => undefined), { message: /UNAVAILABLE/ });
  t.is(calls, 1);
});

test('the next page is asked for before the current one is handed over: at most two pages at once, every key once, in order', async (t) => {
  const client = etcd.client();
  for (let i = 0; i < 25; i++) await client.put(`/prefetch/${String(i).padStart(3, '0')}`).value(String(i));
  const log: string[] = [];
  let sent = 0;
  let handed = 0;
  const send = async (req: IRangeRequest): Promise<IRangeResponse> => {
    const n = ++sent;
    log.push(`send ${n}`);
    t.true(n - handed <= 2, `page ${n} asked for while ${n - 1 - handed} are held`);
    return client.kv.range(req);
  };
  const key = Buffer.from('/prefetch/');
  const keys: string[] = [];
  await rangePaged(send, { key, rangeEnd: prefixEnd(key), pageSize: 10 }, (kvs) => {
    log.push(`page ${++handed}`);
    for (const kv of kvs) keys.push(kv.key.toString());
  });
  // Pages of 10, 10 and 5: the third page has no "more", so nothing is asked for after it.
  t.deepEqual(log, ['send 1', 'send 2', 'page 1', 'send 3', 'page 2', 'page 3']);
  t.deepEqual(keys, Array.from({ length: 25 }, (_, i) => `/prefetch/${String(i).padStart(3, '0')}`));
});

test('a caller that throws on a page ends the listing with its error; the page asked for meanwhile failing is no unhandled rejection', async (t) => {
  const client = etcd.client();
  for (let i = 0; i < 4; i++) await client.put(`/prefetch-fail/${i}`).value(String(i));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  let sent = 0;
  const send = async (req: IRangeRequest): Promise<IRangeResponse> => {
    if (++sent === 1) return client.kv.range(req);
    await new Promise((r) => setTimeout(r, 20));
    throw new Error('14 UNAVAILABLE: the second page');
  };
  const key = Buffer.from('/prefetch-fail/');
  await t.throwsAsync(
    rangePaged(send, { key, rangeEnd: prefixEnd(key), pageSize: 2 }, () => {
      throw new Error('the caller gave up');
    }),
    { message: 'the caller gave up' },
  );
  await new Promise((r) => setTimeout(r, 100));
  t.is(sent, 2);
  t.deepEqual(unhandled, []);
});

test('PageCap: halved by a page that ran out of its deadline (never below one key), doubled by a full page back within an eighth of it (never above the page size)', (t) => {
  const cap = new PageCap(1000, 30_000);
  t.is(cap.current, 1000);
  cap.timedOut(1000);
  t.is(cap.current, 500);
  // A page of a larger limit asked for before the cap fell does not raise it.
  cap.timedOut(1000);
  t.is(cap.current, 500);
  cap.timedOut(500);
  t.is(cap.current, 250);
  // Full, at the cap: below an eighth of the deadline doubles it; at or past it does not.
  cap.answered(250, 250, 7_500);
  t.is(cap.current, 250, 'at a quarter');
  cap.answered(250, 250, 3_750);
  t.is(cap.current, 250, 'at an eighth');
  cap.answered(250, 250, 3_749);
  t.is(cap.current, 500, 'just under an eighth');
  // Not full (the prefix's last page), or a smaller limit (bytes): no change.
  cap.answered(500, 499, 10);
  t.is(cap.current, 500);
  cap.answered(100, 100, 10);
  t.is(cap.current, 500);
  cap.answered(500, 500, 10);
  t.is(cap.current, 1000);
  cap.answered(1000, 1000, 10);
  t.is(cap.current, 1000, 'never above the page size');
  for (let i = 0; i < 20; i++) cap.timedOut(cap.current);
  t.is(cap.current, 1, 'never below one key');
  cap.timedOut(1);
  t.is(cap.current, 1);
});

test(`rangePaged with a PageCap: a page that runs out of its deadline is asked again with half the keys, ${DEADLINE_RETRIES} times at most, keeping the pages before it; then the listing fails and the next starts at the lower limit; other errors change nothing`, async (t) => {
  const cap = new PageCap(100, 1000);
  const limits: number[] = [];
  const deadline = (): never => {
    throw Object.assign(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded after 1.000s'), { code: 4 });
  };
  // The first page answers at once; the second runs out of its deadline whatever its size.
  const send = async (req: IRangeRequest): Promise<IRangeResponse> => {
    limits.push(Number(req.limit));
    if (limits.length > 1) deadline();
    return { header: { revision: '7' }, kvs: Array.from({ length: Number(req.limit) }, (_, i) => ({ key: Buffer.from(`/x/${i}`), value: Buffer.from('v') })), more: true } as unknown as IRangeResponse;
  };
  const range = { key: Buffer.from('/x/'), rangeEnd: Buffer.from('/x0'), pageSize: 100, cap };
  const pages: number[] = [];
  await t.throwsAsync(rangePaged(send, range, (kvs) => void pages.push(kvs.length)), { message: /DEADLINE_EXCEEDED/ });
  t.deepEqual(pages, [100], 'the page before kept');
  t.deepEqual(limits, [100, 100, 50, 25], 'the failing page asked again with half the keys, twice');
  t.is(cap.current, 12);
  limits.length = 0;
  await t.throwsAsync(rangePaged(send, range, () => undefined), { message: /DEADLINE_EXCEEDED/ });
  t.is(limits[0], 12, 'the next listing starts at the lower limit');
  const unavailable = async (): Promise<IRangeResponse> => {
    throw new Error('14 UNAVAILABLE: No connection established');
  };
  const before = cap.current;
  await t.throwsAsync(rangePaged(unavailable, range, () => undefined), { message: /UNAVAILABLE/ });
  t.is(cap.current, before);
});

test('rangePaged with a PageCap: a connection dropped under a page that had run a quarter of its deadline counts as too slow; one dropped at once does not', async (t) => {
  for (const [afterMs, shrinks] of [[300, true], [0, false]] as const) {
    const cap = new PageCap(100, 1000);
    const limits: number[] = [];
    const send = async (req: IRangeRequest): Promise<IRangeResponse> => {
      limits.push(Number(req.limit));
      await new Promise((r) => setTimeout(r, afterMs));
      throw Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 });
    };
    await t.throwsAsync(rangePaged(send, { key: Buffer.from('/x/'), rangeEnd: Buffer.from('/x0'), pageSize: 100, cap }, () => undefined), { message: /UNAVAILABLE/ });
    if (shrinks) {
      t.deepEqual(limits, [100, 50, 25], 'asked again smaller, twice');
      t.is(cap.current, 12);
    } else {
      t.deepEqual(limits, [100], 'dropped at once: the caller retries');
      t.is(cap.current, 100);
    }
  }
});

test('rangePaged with a PageCap: the retries are counted per page, so pages that each run out of their deadline once do not fail a long list', async (t) => {
  const cap = new PageCap(10, 1000);
  let calls = 0;
  const send = async (req: IRangeRequest): Promise<IRangeResponse> => {
    // Every other call runs out of its deadline: each page fails once, then is answered.
    if (++calls % 2 === 1) throw Object.assign(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'), { code: 4 });
    const n = Number(req.limit);
    return { header: { revision: '7' }, kvs: Array.from({ length: n }, (_, i) => ({ key: Buffer.from(`/x/${calls}-${i}`), value: Buffer.from('v') })), more: calls < 12 } as unknown as IRangeResponse;
  };
  let keys = 0;
  await rangePaged(send, { key: Buffer.from('/x/'), rangeEnd: Buffer.from('/x0'), pageSize: 10, cap }, (kvs) => void (keys += kvs.length));
  t.is(calls, 12, 'six pages, each asked twice');
  t.true(keys > 0);
});

// A connection that fails at once under a page after the first (over a saturated link keepalive
// dropped every connection about 15 s after it opened): the same page again, as it was, rather than
// the whole list from its first page (black-box probing at 64 kbit/s: 1,000 containers never ready).
test(`rangePaged: a page after the first whose connection fails at once is asked again as it was, ${DROP_RETRIES} times at most, ${DROP_PAUSE_MS} ms apart, keeping the pages before it; counted per page`, async (t) => {
  const dropped = (): never => {
    throw Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 });
  };
  const page = (req: IRangeRequest, n: number, more: boolean): IRangeResponse =>
    ({ header: { revision: '7' }, kvs: Array.from({ length: n }, (_, i) => ({ key: Buffer.from(`${req.key!.toString()}${i}`), value: Buffer.from('v') })), more }) as unknown as IRangeResponse;
  for (const failures of [DROP_RETRIES, DROP_RETRIES + 1]) {
    const asked: string[] = [];
    let second = 0;
    const send = async (req: IRangeRequest): Promise<IRangeResponse> => {
      asked.push(`${req.key!.toString()} ${String(req.limit)} @${String(req.revision ?? 0)}`);
      if (asked.length === 1) return page(req, 10, true);
      if (second++ < failures) dropped();
      return page(req, 3, false);
    };
    const pages: number[] = [];
    const started = Date.now();
    const listing = rangePaged(send, { key: Buffer.from('/x/'), rangeEnd: Buffer.from('/x0'), pageSize: 10, cap: new PageCap(10, 30_000) }, (kvs) => void pages.push(kvs.length));
    if (failures <= DROP_RETRIES) {
      t.is(await listing, 7);
      t.deepEqual(pages, [10, 3], `${failures} drops: the list completes`);
      t.true(Date.now() - started >= failures * DROP_PAUSE_MS - 20, 'a moment apart');
    } else {
      await t.throwsAsync(listing, { message: /Connection dropped/ });
      t.deepEqual(pages, [10], `${failures} drops: the caller's retry`);
    }
    // The same page each time: the same start key, limit and revision.
    t.is(new Set(asked.slice(1)).size, 1, asked.join(' | '));
    t.is(asked.length, 1 + Math.min(failures, DROP_RETRIES) + 1);
  }
  // Counted per page: each page may fail its connection that many times.
  let calls = 0;
  const flaky = async (req: IRangeRequest): Promise<IRangeResponse> => {
    calls++;
    if (calls > 1 && calls % 3 !== 1) dropped();
    return page(req, 10, calls < 13);
  };
  let keys = 0;
  await rangePaged(flaky, { key: Buffer.from('/x/'), rangeEnd: Buffer.from('/x0'), pageSize: 10 }, (kvs) => void (keys += kvs.length));
  t.is(keys, 50, 'five pages, four of them after two drops each');
});

test('pageTooSlow: a deadline always; a dropped connection from a quarter of the deadline (below, at, past); other errors never', (t) => {
  const deadline = Object.assign(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'), { code: 4 });
  const dropped = Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: 14 });
  t.true(pageTooSlow(deadline, 0, 1000));
  t.false(pageTooSlow(dropped, 249, 1000), 'below');
  t.true(pageTooSlow(dropped, 250, 1000), 'at');
  t.true(pageTooSlow(dropped, 251, 1000), 'past');
  t.false(pageTooSlow(new Error('8 RESOURCE_EXHAUSTED: Received message larger than max'), 5000, 1000));
  t.false(pageTooSlow(new Error('etcdserver: permission denied'), 5000, 1000));
});
