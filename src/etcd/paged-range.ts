// Every key of a range at one revision, page by page: one giant response for a fleet of 100k
// keys would exceed the client's message limit and hold etcd. The caller sends each page (with
// its own deadline and error handling) and keeps what it needs of it; the next page is on its way
// while the caller handles one.
//
// Pages are bounded by bytes as well as by count: a value may be ~1.5 MiB (etcd's
// --max-request-bytes), so a page of pageSize big values could exceed the client's
// max_receive_message_length, fail every time, and keep a relist (start-up, failover, recovery
// after compaction) from ever completing.
import type { IRangeRequest } from 'etcd3';
import { errorMessage } from '../../controller/errors.js';
import { classifyEtcdError } from './errors.js';

/** Times one page is asked for again, smaller, after running out of its deadline, before the list fails. */
export const DEADLINE_RETRIES = 2;

/**
 * Times a page after the first is asked for again, as it was, after its connection failed at
 * once (not too slow: pageTooSlow), before the list fails; DROP_PAUSE_MS apart. Over a saturated
 * 64 kbit/s link every connection was dropped about 15 s after it opened (keepalive pings waited
 * behind the page being sent, past their timeout): one drop failed the whole list, and its next
 * attempt began again at the first page, so 1,000 containers never became ready (black-box probing:
 * 20 attempts in 15 minutes, the best 546 keys in). The first page is left to the caller's own
 * retry: nothing is kept yet.
 */
export const DROP_RETRIES = 2;
export const DROP_PAUSE_MS = 200;

/** Default byte budget of one page: well under the client's 64 MiB receive limit. */
export const MAX_PAGE_BYTES = 8 * 1024 * 1024;

/**
 * The most keys a page asks for, shared by the lists that go over one link. A page that runs out
 * of its deadline halves it; a page that came back full in under an eighth of its deadline doubles
 * it again, up to the page size. Over a narrow link (a vehicle's etcd on another ECU, a cellular
 * link: black-box probing at 256 kbit/s) a page of 5,000 containers took longer than its deadline
 * every time, and the lists were retried for ever without one page getting through.
 */
export class PageCap {
  private cap: number;

  constructor(
    readonly pageSize: number,
    readonly deadlineMs: number,
  ) {
    this.cap = Math.max(1, Math.floor(pageSize));
  }

  /** The most keys the next page asks for. */
  get current(): number {
    return this.cap;
  }

  /** A page of `limit` keys ran out of its deadline. */
  timedOut(limit: number): void {
    this.cap = Math.max(1, Math.min(this.cap, Math.floor(limit / 2)));
  }

  /**
   * A page of `limit` keys came back with `keys` keys after `ms`. Doubled only by a page well
   * inside its deadline (an eighth): a page twice as large must still come back, and over a link
   * that drops connections a quarter of the way into a page (black-box probing at 64 kbit/s:
   * 7.5 s into 30) the doubled pages were dropped every time.
   */
  answered(limit: number, keys: number, ms: number): void {
    if (keys >= limit && limit >= this.cap && ms < this.deadlineMs / 8) this.cap = Math.min(Math.max(1, Math.floor(this.pageSize)), this.cap * 2);
  }
}

/** What paging needs of a page: etcd3's IRangeResponse, or the watch client's hand-decoded ones. */
export interface RangePage<KV> {
  header: { revision: string | number };
  kvs: KV[];
  more: boolean;
}

export interface PagedKeyValue {
  key: Buffer;
  value: Buffer;
}

/** Where a page's last key is and how many bytes its keys and values hold: what starts and sizes the next page. */
export interface PageShape {
  lastKey: Buffer | undefined;
  bytes: number;
}

/** The shape of a page of key-values with Buffer keys and values (etcd3's, the watch client's range()). */
export function bufferPageShape(page: RangePage<PagedKeyValue>): PageShape {
  let bytes = 0;
  for (const kv of page.kvs) bytes += kv.key.length + kv.value.length;
  return { lastKey: page.kvs[page.kvs.length - 1]?.key, bytes };
}

/** The shape of a list's page as the watch client's listPage() decodes it (counted as it was read). */
export function listPageShape(page: PageShape): PageShape {
  return page;
}

export async function rangePaged<Page extends RangePage<unknown>>(
  send: (req: IRangeRequest) => Promise<Page>,
  range: { key: Buffer; rangeEnd: Buffer; pageSize: number; revision?: number; maxPageBytes?: number; cap?: PageCap },
  onPage: (kvs: Page['kvs'], revision: number) => void,
  shape: (page: Page) => PageShape = bufferPageShape as unknown as (page: Page) => PageShape,
): Promise<number> {
  const cap = range.cap;
  const pageSize = (): number => Math.max(1, Math.floor(cap ? Math.min(cap.current, range.pageSize) : range.pageSize));
  const maxPageBytes = range.maxPageBytes ?? MAX_PAGE_BYTES;
  let revision = range.revision ?? 0;
  let from = range.key;
  let limit = pageSize();
  let sentAt = 0;
  let deadlineRetries = 0;
  let dropRetries = 0;
  const request = (): Promise<Page> => {
    sentAt = Date.now();
    const p = send({ key: from, range_end: range.rangeEnd, limit, ...(revision > 0 ? { revision } : {}) });
    // Awaited below unless onPage throws first: never an unhandled rejection.
    p.catch(() => undefined);
    return p;
  };
  let pending = request();
  for (;;) {
    let res: Page;
    // The page asked for while the one before was handed over was on its way from then.
    const askedAt = sentAt;
    try {
      res = await pending;
    } catch (err) {
      // Too slow for its deadline: the same page again, smaller (the pages before it are kept: a
      // list over a slow link started again from its first page each time), a few times; then
      // the caller retries, with the smaller pages from now on. Not more often: to an etcd that
      // is gone each try waits the whole deadline.
      // A connection dropped under a page that had run a quarter of its deadline counts the same:
      // over a saturated 64 kbit/s link the lists' connections were dropped about 16 s into their
      // pages, never reaching the deadline, and 1,000 containers never became ready (black-box
      // probing); one that fails at once (etcd gone) is left to the caller.
      const slow = cap !== undefined && pageTooSlow(err, Date.now() - askedAt, cap.deadlineMs);
      if (cap && slow) {
        cap.timedOut(limit);
        if (deadlineRetries < DEADLINE_RETRIES && limit > 1) {
          deadlineRetries++;
          limit = Math.max(1, Math.min(Math.floor(limit / 2), cap.current));
          pending = request();
          continue;
        }
      }
      // Its connection failed at once, with pages already read: the same page again, as it was
      // (at the list's revision), a few times, a moment apart; then the caller's own retry.
      if (!slow && revision > 0 && dropRetries < DROP_RETRIES && classifyEtcdError(err) === 'unavailable') {
        dropRetries++;
        await new Promise((r) => setTimeout(r, DROP_PAUSE_MS));
        pending = request();
        continue;
      }
      // The page was larger than a message may be: retry the same page with half the keys.
      if (limit <= 1 || !isResponseTooLarge(err)) throw err;
      limit = Math.max(1, Math.floor(limit / 2));
      pending = request();
      continue;
    }
    cap?.answered(limit, res.kvs.length, Date.now() - askedAt);
    // Retries are counted per page: slow pages here and there do not fail a long list.
    deadlineRetries = 0;
    dropRetries = 0;
    // Later pages are read at the first page's revision: one consistent snapshot.
    if (revision === 0) revision = Number(res.header.revision);
    const { lastKey, bytes } = shape(res);
    const more = res.more && lastKey !== undefined;
    if (more) {
      // The next page is asked for before this one is handed over: etcd reads it while the
      // caller decodes this one (a cold start of 100,000 containers waited half a second on
      // pages). At most two pages are held at once.
      from = Buffer.concat([lastKey, Buffer.from([0])]);
      limit = nextLimit(res.kvs.length, bytes, maxPageBytes, pageSize());
      pending = request();
    }
    onPage(res.kvs, revision);
    if (!more) return revision;
  }
}

/** Keys in the next page so that, at this page's bytes per key (`keys` keys of `bytes` bytes), it stays under maxPageBytes. */
function nextLimit(keys: number, bytes: number, maxPageBytes: number, pageSize: number): number {
  if (bytes === 0) return pageSize;
  return Math.min(pageSize, Math.max(1, Math.floor((maxPageBytes * keys) / bytes)));
}

/**
 * A response over a gRPC message limit. etcd3 1.x surfaces the client's limit as a
 * GRPCResourceExhastedError "8 RESOURCE_EXHAUSTED: Received message larger than max (N vs M)"
 * (etcd's own send limit says "trying to send message larger than max"). Matched on the message,
 * as callers may wrap the error (the CLI keeps the message in its CliError); other
 * RESOURCE_EXHAUSTED errors ("too many requests") are not helped by smaller pages.
 */
function isResponseTooLarge(err: unknown): boolean {
  return /message larger than max/i.test(errorMessage(err));
}

/**
 * Whether a page failed for being too slow: it ran out of its deadline, or its connection was
 * dropped after it had run a quarter of it (as etcd's errors are classified everywhere else).
 */
export function pageTooSlow(err: unknown, elapsedMs: number, deadlineMs: number): boolean {
  const failure = classifyEtcdError(err);
  return failure === 'timeout' || (failure === 'unavailable' && elapsedMs >= deadlineMs / 4);
}
