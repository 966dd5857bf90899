// An in-memory ActionControllerClient: records calls, fails while `failing` is set.
import type { ActionControllerClient, ReconcileCall } from '../../reconcilers/ports.js';

export class FakeActionController implements ActionControllerClient {
  readonly calls: ReconcileCall[] = [];
  failing = false;
  /** What each call is answered. */
  answer = { status: 0, desc: 'ok' };

  async reconcile(call: ReconcileCall): Promise<{ status: number; desc: string }> {
    if (this.failing) throw new Error('ActionController unavailable');
    this.calls.push(call);
    return this.answer;
  }
}
