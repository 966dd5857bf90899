// etcd's own time for the writes a cold start makes (the "floor"): what statemanager's write
// rate is judged against, by the coldstart and fleetscale scenarios.
import { log } from './common.js';
import { fmt, type Env } from './context.js';

export interface WriteFloor {
  /** State writes (each one state put + one history put). */
  writes: number;
  perTxn: number;
  inFlight: number;
  seconds: number;
}

/**
 * As many state + history puts as the cold start wrote, in transactions as large as etcd
 * allows (2 puts each, 60 per transaction: 120 of the default 128 operations), 2 in flight like
 * statemanager's group commit. Under a scratch prefix, removed afterwards.
 */
export async function writeFloor(env: Env, writes: number, label: string): Promise<WriteFloor> {
  const perTxn = 60;
  const inFlight = 2;
  const prefix = '/bench-floor/';
  const history = JSON.stringify({ kind: 'model', name: 'm', from: 'Created', to: 'Running', at: new Date().toISOString(), reason: 'containers: 2 running', source: 'controller/bench', drawn: true });
  const txns = Math.ceil(writes / perTxn);
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    for (let t = next++; t < txns; t = next++) {
      const success = [];
      for (let i = t * perTxn; i < Math.min(writes, (t + 1) * perTxn); i++) {
        success.push({ request_put: { key: Buffer.from(`${prefix}model/m${i}/state`), value: Buffer.from('Running') } });
        success.push({ request_put: { key: Buffer.from(`${prefix}history/model/m${i}/000000000001`), value: Buffer.from(history) } });
      }
      await env.client.kv.txn({ compare: [], success, failure: [] });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - t0) / 1000;
  await env.client.delete().prefix(prefix).exec();
  log(`${label}: etcd floor ${fmt.n(writes)} writes in ${seconds.toFixed(2)} s`);
  return { writes, perTxn, inFlight, seconds };
}

/** statemanager's share of etcd's write rate: ≥ 80 % of the floor counts as keeping up (issue 13). */
export const FLOOR_SHARE_GOAL = 0.8;

export interface FloorComparison {
  /** statemanager's state writes per second, spawn → converged. */
  rate: number;
  floorRate: number;
  /** rate / floorRate. */
  share: number;
  /** "X writes/s = Y % of etcd's Z writes/s for the same transactions". */
  text: string;
}

/**
 * statemanager's write rate over its whole cold start (spawn → converged, the span the cold
 * start targets judge, and the figure docs/performance.md quotes) against the floor's rate.
 */
export function compareToFloor(stateWrites: number, convergedMs: number, floor: WriteFloor): FloorComparison {
  const rate = stateWrites / (convergedMs / 1000);
  const floorRate = floor.writes / floor.seconds;
  const share = rate / floorRate;
  const text = Number.isFinite(share)
    ? `${fmt.n(Math.round(rate))} writes/s = ${(share * 100).toFixed(0)} % of etcd's ${fmt.n(Math.round(floorRate))} writes/s for the same transactions`
    : 'not converged';
  return { rate, floorRate, share, text };
}
