// A simulated node agent for the demo: defines a few packages and scenarios, then keeps
// changing its containers' states every few seconds, the way Podman would report them.
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../reconcilers/keys.js';

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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      interval: { type: 'string', default: '3000' },
      steps: { type: 'string', default: '0' },
    },
  });
  const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
  const keys = new KeyLayout(process.env.STATEMANAGER_KEY_PREFIX ?? '');
  const client = new Etcd3({ hosts: endpoints });
  const containers: SimContainer[] = [];
  for (const [pkg, models] of Object.entries(PACKAGES)) {
    const spec = models.map((m) => `    - name: ${m}\n      node: edge-1`).join('\n');
    await client.put(keys.packageDefKey(pkg)).value(`apiVersion: v1\nkind: Package\nmetadata:\n  name: ${pkg}\nspec:\n  models:\n${spec}\n`);
    await client.put(keys.scenarioDefKey(`${pkg}-scenario`)).value(`apiVersion: v1\nkind: Scenario\nmetadata:\n  name: ${pkg}-scenario\nspec:\n  action: launch\n  target: ${pkg}\n`);
    for (const m of models) {
      for (let i = 1; i <= 2; i++) containers.push({ node: i === 1 ? 'edge-1' : 'edge-2', id: `${m}-${i}`, model: m });
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
  const stop = (): void => {
    stopped = true;
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  while (!stopped && (maxSteps === 0 || step < maxSteps)) {
    await new Promise((r) => setTimeout(r, interval));
    if (stopped) break;
    const [model, status] = SCRIPT[step % SCRIPT.length]!;
    process.stdout.write(`node-agent: containers of ${model} -> ${status}\n`);
    for (const c of containers) if (c.model === model) await put(c, status);
    step++;
  }
  client.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`node-agent: ${(err as Error).message}\n`);
  process.exit(1);
});
