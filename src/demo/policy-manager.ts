// A simulated policy manager for the demo: after a while it decides that a model's node is
// overloaded and asks statemanager to move the model (TriggerOffloading, as Pullpiri's policy
// manager does for a `Policy` with `procedure.type: offloading`), then prints the answer.
// statemanager checks it and forwards it to the (stand-in) ActionController's OffloadModel.
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { OffloadingRequest } from '../generated/statemanager/OffloadingRequest.js';
import { loadStateManagerProto } from '../grpc/proto.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      after: { type: 'string', default: '8000' },
      model: { type: 'string', default: 'nav-map' },
      package: { type: 'string', default: 'navigation' },
      scenario: { type: 'string', default: 'navigation-scenario' },
      from: { type: 'string', default: 'edge-1' },
      to: { type: 'string', default: 'edge-2' },
    },
  });
  const addr = process.env.STATEMANAGER_GRPC_ADDR ?? '127.0.0.1:47006';
  await new Promise((r) => setTimeout(r, Number(values.after)));
  const proto = loadStateManagerProto();
  const client = new proto.statemanager.StateManagerConnection(addr, grpc.credentials.createInsecure());
  const request: OffloadingRequest = {
    scenario_name: values.scenario,
    package_name: values.package,
    model_name: values.model,
    source_node: values.from,
    target_node: values.to,
    policy_name: 'cpu-threshold',
    reason: 'CPU threshold exceeded: 75% > 50%',
  };
  process.stdout.write(`policy-manager: TriggerOffloading model=${request.model_name} ${request.source_node} -> ${request.target_node} (${request.reason})\n`);
  const answer = await new Promise<string>((resolve) => {
    client.TriggerOffloading(request, { deadline: Date.now() + 5000 }, (err, res) => {
      if (err) resolve(`gRPC error ${grpc.status[err.code]}: ${err.details}`);
      else resolve(`accepted=${res?.accepted} transition_id=${res?.transition_id} message="${res?.message}"`);
    });
  });
  process.stdout.write(`policy-manager: ${answer}\n`);
  process.stdout.write(`policy-manager: see it with: node dist/src/cli.js describe model ${request.model_name}\n`);
  client.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`policy-manager: ${(err as Error).message}\n`);
  process.exit(1);
});
