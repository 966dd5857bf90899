// The reconcilers wired as the app wires them (reconcilers/controllers.ts builds both), on the
// in-memory fakes: a fleet over a FakeListerWatcher, a FakeStateStore, a FakeActionController and
// an Enqueue that records what the event mapping queues. Tests call the reconcilers themselves,
// in the order they need.
import { silentLogger } from '../../controller/logger.js';
import { buildReconcilers } from '../../reconcilers/controllers.js';
import { wireEventMapping, type Enqueue } from '../../reconcilers/event-mapping.js';
import { Fleet } from '../../reconcilers/fleet.js';
import { KeyLayout } from '../../domain/keys.js';
import type { NodeLivenessOptions } from '../../domain/node-liveness.js';
import { silentObserver, type DomainObserver, type Clock } from '../../reconcilers/ports.js';
import { FakeActionController } from './action-controller.js';
import { FakeListerWatcher } from './lister-watcher.js';
import { FakeStateStore } from './state-store.js';

export interface FakeWorldOptions {
  prefix?: string;
  clock: Clock;
  observer?: DomainObserver;
  liveness?: NodeLivenessOptions;
}

export async function fakeWorld(o: FakeWorldOptions) {
  const keys = new KeyLayout(o.prefix ?? '');
  const lw = new FakeListerWatcher();
  const observer = o.observer ?? silentObserver;
  const clock = o.clock;
  const fleet = new Fleet({ keys, lw, observer, clock, ...(o.liveness ? { liveness: o.liveness } : {}) });
  fleet.start();
  await fleet.waitForSync();
  const store = new FakeStateStore(lw, keys);
  const ac = new FakeActionController();
  const triggerStates = new Set(['Error'] as const);
  const { queued, enqueue } = recordingEnqueue();
  const reconcilers = buildReconcilers({ fleet, store, actionController: ac, observer, clock, source: 'controller/test', triggerStates, repeat: { initialMs: 0, capMs: 0 }, enqueue, logger: silentLogger });
  const { model, package: pkg, request } = reconcilers;
  wireEventMapping(fleet, enqueue);
  const container = (node: string, id: string, model: string, status: string): void =>
    void lw.put(keys.containerKey(node, id), JSON.stringify({ id, state: { Status: status }, annotation: { 'io.pullpiri.annotations.model': model } }));
  const packageDef = (name: string, models: string[]): void =>
    void lw.put(keys.packageDefKey(name), `spec:\n  models:\n${models.map((m) => `    - name: ${m}\n`).join('')}`);
  const state = (kind: 'model' | 'package', name: string): string | undefined => lw.get(keys.stateKey(kind, name))?.value;
  return { keys, lw, fleet, store, ac, model, pkg, request, queued, container, packageDef, state };
}

/** An Enqueue that records each key as `kind/name` (`model/name+Nms` for a delayed one). */
export function recordingEnqueue(): { queued: string[]; enqueue: Enqueue } {
  const queued: string[] = [];
  const enqueue: Enqueue = {
    model: (n) => void queued.push(`model/${n}`),
    modelAfter: (n, ms) => void queued.push(`model/${n}+${ms}ms`),
    package: (n) => void queued.push(`package/${n}`),
    request: (n) => void queued.push(`request/${n}`),
  };
  return { queued, enqueue };
}
