// Watches in the harness: record state writes as they arrive (convergence, latency) and replay
// a revision window afterwards (write accounting), each with its own etcd3 watcher.
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { monoMs, sleep } from './common.js';
import { canonicalState, type Expected } from './oracle.js';

export interface SeenEvent {
  key: string;
  value: string;
  type: 'put' | 'delete';
  modRevision: number;
  t: number;
}

export class PrefixWatch {
  private watcher: Watcher | undefined;
  errors = 0;
  lastRevision = 0;

  constructor(
    private readonly c: Etcd3,
    private readonly prefix: string,
    private readonly onEvent: (e: SeenEvent) => void,
  ) {}

  async start(fromRevision: number): Promise<void> {
    const w = await this.c.watch().prefix(this.prefix).startRevision(String(fromRevision)).create();
    w.on('data', (res) => {
      const t = monoMs();
      for (const ev of res.events) {
        const kv = ev.kv as IKeyValue;
        const modRevision = Number(kv.mod_revision);
        if (modRevision > this.lastRevision) this.lastRevision = modRevision;
        this.onEvent({ key: kv.key.toString(), value: kv.value.toString(), type: ev.type === 'Put' ? 'put' : 'delete', modRevision, t });
      }
    });
    w.on('error', () => this.errors++);
    this.watcher = w;
  }

  async stop(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    if (w) {
      w.removeAllListeners('data');
      await w.cancel().catch(() => undefined);
    }
  }
}

/**
 * Tracks stored model and package states against an expected set and notes the moment they
 * all match. Start it before statemanager writes anything (from the revision of a snapshot
 * whose state values are given as `initial`).
 */
export class ConvergenceTracker {
  private readonly current = new Map<string, string | undefined>();
  private readonly expected = new Map<string, string>();
  private mismatches = 0;
  private readonly watches: PrefixWatch[];
  convergedAt = 0;
  writes = 0;
  private waiters: (() => void)[] = [];

  constructor(
    c: Etcd3,
    private readonly prefix: string,
    expected: Expected,
    initial: Map<string, string>,
  ) {
    for (const [m, s] of expected.models) this.expected.set(`${prefix}/model/${m}/state`, s);
    for (const [p, s] of expected.packages) this.expected.set(`${prefix}/package/${p}/state`, s);
    for (const [k, v] of initial) this.current.set(k, v);
    for (const [k, want] of this.expected) if (this.norm(k, this.current.get(k)) !== want) this.mismatches++;
    // Keys present but not expected are mismatches too.
    for (const [k, v] of this.current) if (!this.expected.has(k) && v !== undefined && k.endsWith('/state')) this.mismatches++;
    const on = (e: SeenEvent): void => this.apply(e);
    this.watches = [new PrefixWatch(c, `${prefix}/model/`, on), new PrefixWatch(c, `${prefix}/package/`, on)];
  }

  private norm(key: string, v: string | undefined): string | undefined {
    if (v === undefined) return undefined;
    return canonicalState(key.startsWith(`${this.prefix}/model/`) ? 'model' : 'package', v) ?? `<invalid:${v}>`;
  }

  private wrong(key: string, v: string | undefined): boolean {
    const want = this.expected.get(key);
    if (want === undefined) return v !== undefined;
    return this.norm(key, v) !== want;
  }

  private apply(e: SeenEvent): void {
    if (!e.key.endsWith('/state')) return;
    this.writes++;
    const before = this.wrong(e.key, this.current.get(e.key));
    const value = e.type === 'put' ? e.value : undefined;
    this.current.set(e.key, value);
    const after = this.wrong(e.key, value);
    if (before && !after) this.mismatches--;
    else if (!before && after) this.mismatches++;
    if (this.mismatches === 0 && this.convergedAt === 0) {
      this.convergedAt = e.t;
      for (const w of this.waiters.splice(0)) w();
    } else if (this.mismatches > 0) {
      this.convergedAt = 0;
    }
  }

  get remaining(): number {
    return this.mismatches;
  }

  async start(fromRevision: number): Promise<void> {
    if (this.mismatches === 0) this.convergedAt = monoMs();
    for (const w of this.watches) await w.start(fromRevision);
  }

  /** Resolves with true once every state matches, false on timeout. */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.mismatches === 0) return true;
    const done = new Promise<boolean>((resolve) => this.waiters.push(() => resolve(true)));
    return Promise.race([done, sleep(timeoutMs).then(() => this.mismatches === 0)]);
  }

  async stop(): Promise<void> {
    for (const w of this.watches) await w.stop();
  }
}

/**
 * Replay every event under `prefix` in (fromRevision, toRevision], in order. `lastModRevision`
 * is the highest mod revision of a key under the prefix at toRevision (0 if none changed), so
 * the replay knows when it has seen everything.
 */
export async function replay(c: Etcd3, prefix: string, fromRevision: number, lastModRevision: number, timeoutMs: number): Promise<SeenEvent[]> {
  const events: SeenEvent[] = [];
  if (lastModRevision <= fromRevision) return events;
  let seenLast = false;
  const w = new PrefixWatch(c, prefix, (e) => {
    if (e.modRevision <= lastModRevision) events.push(e);
    if (e.modRevision >= lastModRevision) seenLast = true;
  });
  await w.start(fromRevision + 1);
  const deadline = Date.now() + timeoutMs;
  while (!seenLast && Date.now() < deadline) await sleep(20);
  await w.stop();
  if (!seenLast) throw new Error(`replay of ${prefix} did not reach revision ${lastModRevision} within ${timeoutMs} ms (got ${events.length} events)`);
  return events;
}
