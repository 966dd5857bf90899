// A real gRPC ActionController on 127.0.0.1 that records the Reconcile calls it receives.
import type * as grpc from '@grpc/grpc-js';
import type { ReconcileRequest__Output } from '../../src/generated/actioncontroller/ReconcileRequest.js';
import { startStandInActionController } from '../../src/demo/action-controller.js';

export interface FakeActionController {
  readonly addr: string;
  readonly calls: ReconcileRequest__Output[];
  /** Make calls fail with UNAVAILABLE (true) or succeed (false). */
  failing: boolean;
  stop(): Promise<void>;
  /** Listen again on the same port after stop(). */
  restart(): Promise<void>;
}

export async function startActionController(): Promise<FakeActionController> {
  const calls: ReconcileRequest__Output[] = [];
  const state = { failing: false };
  let server: grpc.Server | undefined;
  const listen = async (port: number): Promise<number> => {
    const started = await startStandInActionController({ port, onCall: (r) => calls.push(r), failing: () => state.failing });
    server = started.server;
    return started.port;
  };
  const port = await listen(0);
  return {
    addr: `127.0.0.1:${port}`,
    calls,
    get failing() {
      return state.failing;
    },
    set failing(v: boolean) {
      state.failing = v;
    },
    async stop() {
      const s = server;
      server = undefined;
      if (s) await new Promise<void>((resolve) => s.tryShutdown(() => resolve()));
    },
    async restart() {
      await listen(port);
    },
  };
}
