// The ActionController as the simulation sees it: one log of the Reconcile calls that reached
// it, and a mode a fault can switch (refusing, slow, or accepting but answering after the
// caller's deadline). A crashed replica's calls never answer.
import type { ActionControllerClient, ReconcileCall } from '../../reconcilers/ports.js';
import type { FakeEtcdConnection } from './fake-client.js';

export type AcMode = 'ok' | 'failing' | 'slow' | 'timeout';

export interface AcCall {
  at: number;
  scenario: string;
  replica: string;
  /** etcd's revision when the call arrived. */
  revision: number;
  /** The ActionController took it (whether or not the caller heard so). */
  accepted: boolean;
  /** The caller heard that it was taken (else it retries: a documented duplicate). */
  answered: boolean;
}

export class SimActionController {
  readonly calls: AcCall[] = [];
  mode: AcMode = 'ok';

  constructor(private readonly timeoutMs: number) {}

  /** The client a replica uses: it dies with the replica's connection. */
  clientFor(conn: FakeEtcdConnection): ActionControllerClient {
    const { sched } = conn;
    return {
      reconcile: (call: ReconcileCall) =>
        new Promise((resolve, reject) => {
          if (conn.isClosed) return;
          let settled = false;
          const settle = (fn: () => void): boolean => {
            if (settled || conn.isClosed) return false;
            settled = true;
            fn();
            return true;
          };
          sched.at(this.timeoutMs, () => settle(() => reject(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'))));
          sched.at(sched.random.between(1, 5), () => {
            const mode = this.mode;
            const accepted = mode !== 'failing';
            const record: AcCall = { at: sched.elapsed(), scenario: call.scenarioName, replica: conn.id, revision: conn.server.revision, accepted, answered: false };
            this.calls.push(record);
            if (!accepted) return void sched.at(2, () => settle(() => reject(new Error('14 UNAVAILABLE: ActionController down'))));
            if (mode === 'timeout') return;
            const answerIn = mode === 'slow' ? sched.random.between(300, this.timeoutMs + 500) : sched.random.between(1, 5);
            sched.at(answerIn, () => (record.answered = settle(() => resolve({ status: 0, desc: 'ok' }))));
          });
        }),
    };
  }
}
