// A simulated node agent for the demo: defines a few packages and scenarios, then keeps
// changing its containers' states every few seconds, the way Podman would report them. With
// --lease-ttl it also keeps /node/{node}/lease of its nodes attached to an etcd lease it keeps
// alive (contract §1, "Node leases"): kill it, and statemanager with nodeLiveness on turns its
// nodes NotReady once the lease has expired and the grace has passed.
import { parseArgs } from 'node:util';
import { Etcd3, type Lease } from 'etcd3';
import { KeyLayout } from '../../domain/keys.js';

interface SimContainer {
  node: string;
  id: string;
  model: string;
}

const PACKAGES: Record<string, string[]> = {
  navigation: ['nav-map', 'nav-route'],
  media: ['media-player'],
  climate: ['climate-ctl', 'climate-sensor'],
};

// Each step sets one model's containers; the cycle walks every package through its states.
const SCRIPT: [string, string][] = [
  ['nav-map', 'running'],
  ['nav-route', 'running'],
  ['media-player', 'running'],
  ['climate-ctl', 'running'],
  ['climate-sensor', 'running'],
  ['media-player', 'paused'],
  ['nav-route', 'dead'],
  ['media-player', 'running'],
  ['nav-map', 'dead'],
  ['climate-ctl', 'exited'],
  ['climate-sensor', 'exited'],
  ['nav-map', 'running'],
  ['nav-route', 'running'],
  ['climate-ctl', 'running'],
  ['climate-sensor', 'running'],
  ['media-player', 'exited'],
];

const NODES = ['edge-1', 'edge-2'];

/**
 * Keep the nodes' lease keys attached to one etcd lease; etcd3 sends the keepalives. A lost
 * lease (etcd gone for longer than the TTL, or the process stopped) is granted and put again.
 * Returns a function that stops the keepalives (the keys then expire with the lease, as they
 * would if the agent crashed).
 */
async function keepLease(client: Etcd3, keys: KeyLayout, ttlSeconds: number): Promise<() => void> {
  let current: Lease | undefined;
  let stopped = false;
  let renewing = false;
  const renew = (): void => {
    if (stopped || renewing) return;
    renewing = true;
    grant().then(
      () => void (renewing = false),
      () => {
        renewing = false;
        setTimeout(renew, 1000);
      },
    );
  };
  const grant = async (): Promise<void> => {
    const lease = (current = client.lease(ttlSeconds));
    lease.on('lost', (err) => {
      if (lease !== current) return;
      if (!stopped) process.stderr.write(`node-agent: lease lost (${err.message}); granting a new one\n`);
      renew();
    });
    for (const node of NODES) await lease.put(keys.nodeLeaseKey(node)).value(`node-agent pid ${process.pid}`);
  };
  await grant();
  process.stdout.write(`node-agent: keeping ${NODES.map((n) => keys.nodeLeaseKey(n)).join(', ')} on a ${ttlSeconds}s lease\n`);
  return () => {
    stopped = true;
    current?.release();
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      interval: { type: 'string', default: '3000' },
      steps: { type: 'string', default: '0' },
      // 0: no lease keys (statemanager's nodeLiveness off).
      'lease-ttl': { type: 'string', default: '0' },
    },
  });
  const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
  const keys = new KeyLayout(process.env.STATEMANAGER_KEY_PREFIX ?? '');
  const client = new Etcd3({ hosts: endpoints });
  const leaseTtl = Number(values['lease-ttl']);
  // Before the containers: a node is not seen without its lease.
  const stopLease = leaseTtl > 0 ? await keepLease(client, keys, leaseTtl) : undefined;
  const containers: SimContainer[] = [];
  for (const [pkg, models] of Object.entries(PACKAGES)) {
    const spec = models.map((m) => `    - name: ${m}\n      node: edge-1`).join('\n');
    await client.put(keys.packageDefKey(pkg)).value(`apiVersion: v1\nkind: Package\nmetadata:\n  name: ${pkg}\nspec:\n  models:\n${spec}\n`);
    await client.put(keys.scenarioDefKey(`${pkg}-scenario`)).value(`apiVersion: v1\nkind: Scenario\nmetadata:\n  name: ${pkg}-scenario\nspec:\n  action: launch\n  target: ${pkg}\n`);
    for (const m of models) {
      for (const [i, node] of NODES.entries()) containers.push({ node, id: `${m}-${i + 1}`, model: m });
    }
  }
  const put = async (c: SimContainer, status: string): Promise<void> => {
    const info = {
      id: c.id,
      names: [c.id],
      image: `registry.local/${c.model}:1.0`,
      state: { Status: status, Running: String(status === 'running') },
      config: {},
      annotation: { 'io.pullpiri.annotations.model': c.model },
    };
    await client.put(keys.containerKey(c.node, c.id)).value(JSON.stringify(info));
  };
  for (const c of containers) await put(c, 'created');
  process.stdout.write(`node-agent: ${containers.length} containers of ${Object.keys(PACKAGES).length} packages created\n`);

  const interval = Number(values.interval);
  const maxSteps = Number(values.steps);
  let step = 0;
  let stopped = false;
  let wake = (): void => undefined;
  const stop = (): void => {
    stopped = true;
    wake();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  while (!stopped && (maxSteps === 0 || step < maxSteps)) {
    await new Promise<void>((r) => {
      const timer = setTimeout(r, interval);
      wake = () => {
        clearTimeout(timer);
        r();
      };
    });
    if (stopped) break;
    const [model, status] = SCRIPT[step % SCRIPT.length]!;
    process.stdout.write(`node-agent: containers of ${model} -> ${status}\n`);
    for (const c of containers) if (c.model === model) await put(c, status);
    step++;
  }
  if (stopLease) {
    stopLease();
    process.stdout.write(`node-agent: stopped; its lease keys expire with the lease (${leaseTtl} s), as after a crash\n`);
  }
  client.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`node-agent: ${(err as Error).message}\n`);
  process.exit(1);
});
