// The informers of one process as one cache set for the Manager: started together, synced when
// all are, and the place this process's own committed writes go (client-go's MutationCache),
// each to the informer whose prefix holds the key.
import type { Informer } from './informer.js';
import type { Caches } from './manager.js';

export type AssumedChange = Parameters<Informer<unknown>['assume']>[0];

export class InformerSet implements Caches {
  constructor(readonly informers: readonly Informer<unknown>[]) {}

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
    for (const change of changes) this.informers.find((i) => change.key.startsWith(i.prefix))?.assume(change);
  }
}
