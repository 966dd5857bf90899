// ActionController calls in flight (reconcile.workers) on a real etcd and a real gRPC
// ActionController that holds every Reconcile until the test lets it answer: the pool is filled
// up to its bound and never past it, and each held call is delivered once it answers.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import type { ProtoGrpcType } from '../../src/generated/actioncontroller.js';
import type { ReconcileRequest__Output } from '../../src/generated/actioncontroller/ReconcileRequest.js';
import type { ReconcileResponse } from '../../src/generated/actioncontroller/ReconcileResponse.js';
import { parseConfig } from '../../src/config/config.js';
import { loadProto } from '../../src/grpc/proto.js';
import type { StateManagerApp } from '../../src/app.js';
import { startApp } from '../helpers/app.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { assert, eventually } from '../helpers/eventually.js';
import { FleetWriter } from '../helpers/fleet-writer.js';

let etcd: EtcdServer;
const apps: StateManagerApp[] = [];

test.before(async () => {
  etcd = await startEtcd();
});

test.after.always(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await etcd?.stop();
});

/** An ActionController whose Reconcile calls wait for release(); counts what is held at once. */
async function holdingActionController() {
  const proto = loadProto<ProtoGrpcType>('actioncontroller.proto');
  const server = new grpc.Server();
  const held: (() => void)[] = [];
  const answered: string[] = [];
  let maxHeld = 0;
  let releasing = false;
  server.addService(proto.actioncontroller.ActionControllerConnection.service, {
    Reconcile: (call: grpc.ServerUnaryCall<ReconcileRequest__Output, ReconcileResponse>, cb: grpc.sendUnaryData<ReconcileResponse>) => {
      const answer = () => {
        answered.push(call.request.scenario_name);
        cb(null, { status: 0, desc: 'accepted' });
      };
      if (releasing) return answer();
      held.push(answer);
      maxHeld = Math.max(maxHeld, held.length);
    },
    OffloadModel: (_call: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    addr: `127.0.0.1:${port}`,
    get held() {
      return held.length;
    },
    get maxHeld() {
      return maxHeld;
    },
    answered,
    release() {
      releasing = true;
      for (const a of held.splice(0)) a();
    },
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** `packages` packages, each of one model whose one container is dead: each goes to Error. */
async function failedPackages(prefix: string, packages: number): Promise<void> {
  const w = new FleetWriter(etcd.client(), prefix);
  for (let i = 0; i < packages; i++) {
    await w.container('n1', `c${i}`, `m${i}`, 'dead');
    await w.packageDef(`p${i}`, [`m${i}`]);
  }
}

test('the default is 32 calls in flight', (t) => {
  t.is(parseConfig({}).reconcile.workers, 32);
});

for (const [label, workers, packages, expected] of [
  ['below the bound: every package called at once', undefined, 20, 20],
  ['at the bound (the default, 32)', undefined, 32, 32],
  ['past the bound: 32 at once, the rest when calls answer', undefined, 40, 32],
  ['a configured bound', 4, 10, 4],
] as const) {
  test.serial(`reconcile.workers, ${label}`, async (t) => {
    const ac = await holdingActionController();
    t.teardown(() => ac.stop());
    const prefix = `/rw-${workers ?? 'd'}-${packages}`;
    await failedPackages(prefix, packages);
    const app = await startApp(etcd, ac.addr, { keyPrefix: prefix, ...(workers !== undefined ? { reconcile: { workers } } : {}) });
    apps.push(app);
    await eventually(() => assert.strictEqual(ac.held, expected), { timeoutMs: 20_000 });
    // Held that long, no call more is made while they wait.
    await new Promise((r) => setTimeout(r, 500));
    t.is(ac.maxHeld, expected);
    ac.release();
    await eventually(() => assert.strictEqual(new Set(ac.answered).size, packages), { timeoutMs: 20_000 });
    await app.stop();
  });
}
