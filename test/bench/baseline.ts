// The comparison controller: deliberately simple, after the original (Rust) StateManager's
// approach. Per container event, in order, one at a time: fetch the model's containers from
// etcd by prefix, recompute the model; fetch the package's definition and its models' states,
// recompute the package; write a state when it differs from the stored one. No cache of
// containers or states, no deduplication of events, no batching.
//
// Its one concession: the model → package index is read once at start from the Package/
// definitions (they do not change during a benchmark), since etcd has no key that leads from a
// model to its package. The fleet names container ids `{model}-c{k}` on the model's node, so
// `/container/{node}/{model}-` is the model's containers: the cheapest fetch there can be.
import { Etcd3, type IKeyValue } from 'etcd3';
import { parse as parseYaml } from 'yaml';

const client = new Etcd3({ hosts: process.env.BENCH_ETCD! });
const fromRevision = Number(process.env.BENCH_FROM_REV ?? '0');

type St = 'created' | 'running' | 'paused' | 'exited' | 'dead' | 'unknown';
const WORDS: Record<string, St> = {
  created: 'created', initialized: 'created', running: 'running', restarting: 'running', stopping: 'running',
  paused: 'paused', exited: 'exited', stopped: 'exited', removing: 'exited', dead: 'dead',
};

function containerOf(value: string): { model: string; status: St } | undefined {
  try {
    const j = JSON.parse(value) as { annotation?: Record<string, string>; config?: Record<string, string>; state?: Record<string, string> };
    const a = j.annotation ?? {};
    const model = a['io.pullpiri.annotations.model'] || a['pullpiri.model'] || a['model'] || j.config?.['model'];
    if (!model) return undefined;
    const raw = j.state?.Status?.trim().toLowerCase();
    const status: St = raw ? (Object.hasOwn(WORDS, raw) ? WORDS[raw]! : 'unknown') : j.state?.Running === 'true' ? 'running' : 'unknown';
    return { model, status };
  } catch {
    return undefined;
  }
}

function modelState(prev: string | null, s: St[]): string {
  if (s.some((x) => x === 'dead' || x === 'unknown')) return 'Dead';
  const fresh = prev === null || prev === 'Created';
  if (s.length === 0) return fresh ? 'Created' : 'Exited';
  if (s.every((x) => x === 'created')) return fresh ? 'Created' : 'Running';
  if (s.every((x) => x === 'paused')) return 'Paused';
  if (s.every((x) => x === 'exited')) return 'Exited';
  return 'Running';
}

function packageState(prev: string | null, m: string[]): string {
  if (m.length === 0) return 'Idle';
  if (m.every((x) => x === 'Created') && (prev === null || prev === 'Idle')) return 'Idle';
  if (m.every((x) => x === 'Dead')) return 'Error';
  if (m.some((x) => x === 'Dead')) return 'Degraded';
  if (m.every((x) => x === 'Paused')) return 'Paused';
  if (m.every((x) => x === 'Exited')) return 'Exited';
  return 'Running';
}

const norm = (v: string | null): string | null => (v === null ? null : v.charAt(0).toUpperCase() + v.slice(1).toLowerCase());

const packagesOfModel = new Map<string, string[]>();
async function loadIndex(): Promise<void> {
  const defs = await client.getAll().prefix('Package/').strings();
  for (const [k, v] of Object.entries(defs)) {
    const name = k.slice('Package/'.length);
    const models = (parseYaml(v) as { spec?: { models?: { name?: string }[] } }).spec?.models ?? [];
    for (const m of models) if (m.name) packagesOfModel.set(m.name, [...(packagesOfModel.get(m.name) ?? []), name]);
  }
}

async function handle(key: string, value: string): Promise<void> {
  const rest = key.slice('/container/'.length);
  const node = rest.slice(0, rest.indexOf('/'));
  const c = containerOf(value);
  if (!c) return;
  const kvs = await client.getAll().prefix(`/container/${node}/${c.model}-`).strings();
  const nodeStatus = await client.get(`/node/${node}/status`).string();
  const notReady = nodeStatus === 'NotReady' || nodeStatus === 'NODE_DISCONNECTED';
  const statuses: St[] = [];
  for (const v of Object.values(kvs)) {
    const x = containerOf(v);
    if (x && x.model === c.model) statuses.push(notReady ? 'unknown' : x.status);
  }
  const prev = norm(await client.get(`/model/${c.model}/state`).string());
  const next = modelState(prev, statuses);
  if (next !== prev) await client.put(`/model/${c.model}/state`).value(next);
  for (const p of packagesOfModel.get(c.model) ?? []) {
    const def = await client.get(`Package/${p}`).string();
    if (def === null) continue;
    const models = ((parseYaml(def) as { spec?: { models?: { name?: string }[] } }).spec?.models ?? []).flatMap((m) => (m.name ? [m.name] : []));
    const states = await Promise.all(models.map(async (m) => norm(await client.get(`/model/${m}/state`).string()) ?? 'Created'));
    const pprev = norm(await client.get(`/package/${p}/state`).string());
    const pnext = packageState(pprev, states);
    if (pnext !== pprev) await client.put(`/package/${p}/state`).value(pnext);
  }
}

const queue: { key: string; value: string; rev: number }[] = [];
let head = 0;
let processed = 0;
let lastRev = 0;
let errors = 0;
let wake: (() => void) | undefined;

async function loop(): Promise<void> {
  for (;;) {
    if (head >= queue.length) {
      await new Promise<void>((r) => (wake = r));
      continue;
    }
    const ev = queue[head]!;
    queue[head++] = undefined as never;
    if (head > 100_000) {
      queue.splice(0, head);
      head = 0;
    }
    try {
      await handle(ev.key, ev.value);
    } catch {
      errors++;
    }
    processed++;
    lastRev = ev.rev;
  }
}

async function main(): Promise<void> {
  await loadIndex();
  const w = await client.watch().prefix('/container/').startRevision(String(fromRevision)).create();
  w.on('data', (res) => {
    for (const ev of res.events) {
      if (ev.type !== 'Put') continue;
      const kv = ev.kv as IKeyValue;
      queue.push({ key: kv.key.toString(), value: kv.value.toString(), rev: Number(kv.mod_revision) });
    }
    wake?.();
    wake = undefined;
  });
  setInterval(() => process.send?.({ processed, lastRev, backlog: queue.length - head, errors }), 100).unref();
  process.send?.({ ready: true });
  void loop();
}

process.on('disconnect', () => process.exit(0));
// Bounded lifetime: the harness stops it long before this.
setTimeout(() => process.exit(3), Number(process.env.BENCH_MAX_SECONDS ?? '1800') * 1000).unref();
main().catch((err: unknown) => {
  process.stderr.write(`baseline: ${String(err)}\n`);
  process.exit(1);
});
