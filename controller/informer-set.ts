// The informers of one process as one cache set for the Manager: started together, synced when
// all are, and the place this process's own committed writes go (client-go's MutationCache),
// each to the informer whose prefix holds the key.
import type { Informer } from './informer.js';
import type { Caches } from './manager.js';

export type AssumedChange = Parameters<Informer<unknown>['assume']>[0];

export interface OwnPut {
  readonly key: string;
  readonly value: string;
}

export class InformerSet implements Caches {
  private readonly historyListeners: ((detail: string) => void)[] = [];
  private replacing = false;

  constructor(readonly informers: readonly Informer<unknown>[]) {
    // One informer finding the store's history replaced means every cache may hold the old one.
    for (const i of informers) i.onHistoryReplaced((name, revision) => this.historyReplaced(`informer ${name} found etcd at revision ${revision}, behind what it had seen`));
  }

  /** Told once every informer has taken a list as it is after the store's history was replaced. */
  onHistoryReplaced(listener: (detail: string) => void): void {
    this.historyListeners.push(listener);
  }

  /** Every informer lists again and takes the list as it is; then the listeners are told. */
  historyReplaced(detail: string): void {
    if (this.replacing) return;
    this.replacing = true;
    void Promise.all(this.informers.map((i) => i.relistAsIs())).then(() => {
      this.replacing = false;
      for (const l of this.historyListeners) l(detail);
    });
  }

  /**
   * Every informer lists again and takes the list as it is, as after a replaced history but with
   * no listener told: an operator's full resync, which then recomputes from what etcd holds even
   * when a cache missed changes no check could see (etcd restored while this process was stopped).
   */
  async relistAll(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.relistAsIs('requested')));
  }

  start(): void {
    for (const i of this.informers) i.start();
  }

  async waitForSync(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.waitForSync()));
  }

  hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  assume(changes: readonly AssumedChange[]): void {
    for (const change of changes) this.informerOf(change.key)?.assume(change);
  }

  /** Puts being sent: their watch events may overtake their answers (Informer.expectOwnWrite). */
  sending(puts: readonly OwnPut[]): void {
    for (const p of puts) this.informerOf(p.key)?.expectOwnWrite(p.key, p.value);
  }

  /** Puts answered, committed or not. */
  answered(puts: readonly OwnPut[]): void {
    for (const p of puts) this.informerOf(p.key)?.forgetOwnWrite(p.key, p.value);
  }

  private informerOf(key: string): Informer<unknown> | undefined {
    // A loop, not find(): three calls per state written, and find's closure was 100 bytes each.
    const informers = this.informers;
    for (let i = 0; i < informers.length; i++) if (key.startsWith(informers[i]!.prefix)) return informers[i];
    return undefined;
  }
}
