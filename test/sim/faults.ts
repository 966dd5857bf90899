// One fault, drawn from the seed (docs/reliability.md lists them).
import type { AcMode } from './action-controller.js';
import type { SimContext } from './sim-context.js';

export function injectFault(ctx: SimContext): void {
  const { random, sched, server, keys, replicas, fault } = ctx;
  const r = random.int(13);
  const slot = random.int(ctx.replicaCount);
  const target = replicas[slot];
  switch (r) {
    case 0:
      if (target?.alive) fault('break-watches', `${target.conn.id} ${target.watch.breakSome(0.6)} streams`);
      break;
    case 1:
      if (target?.alive) {
        fault('hold-watches', target.conn.id);
        target.watch.hold(random.between(200, 3000));
      }
      break;
    case 2: {
      const back = random.between(0, 5);
      fault('compact', `to ${server.revision - back}`);
      server.compact(server.revision - back);
      break;
    }
    case 3:
      if (target?.alive) {
        fault('crash', target.conn.id);
        target.crash();
        // Unless the heal at the end of the active spell restarted it first: one process per identity.
        sched.at(random.between(0, 3000), () => !replicas[slot]?.alive && ctx.startReplica(slot));
      }
      break;
    case 4:
      if (server.available) {
        const ms = random.between(300, 6000);
        fault('etcd-down', `${ms}ms`);
        server.goDown();
        sched.at(ms, () => server.comeBack());
      }
      break;
    case 5: {
      // Leadership lost while the old leader still has writes in flight: its network turns slow,
      // then its lease goes (as if it expired), and the other replica may take over.
      const l = ctx.leader();
      if (!l) break;
      const lease = server.data.get(keys.leader)?.lease;
      fault('depose', l.conn.id);
      ctx.slow.set(l.conn.id, random.between(200, 1500));
      sched.at(random.between(0, 300), () => {
        if (lease && server.hasLease(lease)) server.revokeLease(lease, 'lease-expiry');
      });
      sched.at(random.between(1000, 4000), () => ctx.slow.delete(l.conn.id));
      break;
    }
    case 6:
      if (target?.alive) {
        fault('slow-replica', target.conn.id);
        ctx.slow.set(target.conn.id, random.between(50, 800));
        sched.at(random.between(500, 3000), () => ctx.slow.delete(target.conn.id));
      }
      break;
    case 7:
      fault('rival-state');
      ctx.rival.writeState(random, ctx.plan);
      break;
    case 8: {
      const mode = random.pick<AcMode>(['failing', 'slow', 'timeout']);
      fault(`ac-${mode}`);
      ctx.ac.mode = mode;
      sched.at(random.between(500, 5000), () => (ctx.ac.mode = 'ok'));
      break;
    }
    case 9: {
      const n = random.pick(ctx.plan.nodes);
      if (ctx.agents.isAlive(n)) {
        fault('node-agent-dies', n);
        ctx.agents.die(n);
        sched.at(random.between(1000, 6000), () => ctx.agents.revive(n));
      } else if (!ctx.agents.has(n)) {
        // A node that never had an agent gets one.
        ctx.agents.start([n]);
      }
      break;
    }
    case 10:
      fault('etcd-slow');
      ctx.setEtcdSlow(random.between(100, 1500));
      sched.at(random.between(500, 3000), () => ctx.setEtcdSlow(0));
      break;
    case 11:
      if (target?.alive) fault('cancel-watches', `${target.conn.id} ${target.watch.cancelSome(0.5)} watches`);
      break;
    default:
      if (target?.alive) fault('break-watches', `${target.conn.id} ${target.watch.breakSome(1)} streams`);
  }
}
