// One change of the world, as node agents, the API server and the gRPC receiver make them.
import { containerValue, packageDefinition, someModels, STATUSES } from './fleet-plan.js';
import type { SimContext } from './sim-context.js';

export function churn(ctx: SimContext): void {
  const { random, keys, plan, write } = ctx;
  const r = random.next();
  if (r < 0.55) {
    const c = random.pick(plan.containers);
    write([{ put: { key: keys.containerKey(c.node, c.id), value: containerValue(random, c, random.pick(STATUSES)) } }]);
  } else if (r < 0.65) {
    const c = random.pick(plan.containers);
    write([{ del: { key: keys.containerKey(c.node, c.id) } }]);
  } else if (r < 0.72) {
    const n = random.pick(plan.nodes);
    if (random.chance(0.4)) write([{ del: { key: keys.nodeStatusKey(n) } }]);
    else write([{ put: { key: keys.nodeStatusKey(n), value: random.pick(['Ready', 'NotReady', 'NODE_DISCONNECTED', 'NODE_ALIVE']) } }]);
  } else if (r < 0.8) {
    const p = random.pick(plan.packages);
    if (random.chance(0.2)) write([{ del: { key: keys.packageDefKey(p) } }]);
    else write([{ put: { key: keys.packageDefKey(p), value: packageDefinition(someModels(random, plan.models)) } }]);
  } else if (r < 0.9) {
    // Several containers at once, as one agent report.
    const cs = plan.containers.filter(() => random.chance(0.5));
    if (cs.length > 0) write(cs.map((c) => ({ put: { key: keys.containerKey(c.node, c.id), value: containerValue(random, c, random.pick(STATUSES)) } })));
  } else if (r < 0.95) {
    ctx.rival.writeContainer(random, plan);
  } else {
    ctx.rival.writeState(random, plan);
  }
}
