// The simulation's own reading of the contract's section 2 (not domain/rules.ts): what
// every model and package state must be, recomputed from etcd's contents alone.
type Status = 'created' | 'running' | 'paused' | 'exited' | 'dead' | 'unknown';

export interface World {
  /** key → value, as etcd holds it now. */
  get(key: string): string | undefined;
  keys(prefix: string): string[];
}

const STATUS: Record<string, Status> = {
  created: 'created',
  initialized: 'created',
  running: 'running',
  restarting: 'running',
  stopping: 'running',
  paused: 'paused',
  exited: 'exited',
  stopped: 'exited',
  removing: 'exited',
  dead: 'dead',
};

interface Container {
  node: string;
  model: string;
  status: Status;
}

/** A container key and value as the contract reads them; undefined when unreadable or model-less. */
export function readContainer(key: string, value: string): Container | undefined {
  const m = /^\/container\/([^/]+)\/(.+)$/.exec(key);
  if (!m) return undefined;
  let c: { names?: string[]; state?: Record<string, string>; config?: Record<string, string>; annotation?: Record<string, string> };
  try {
    c = JSON.parse(value) as typeof c;
  } catch {
    return undefined;
  }
  if (typeof c !== 'object' || c === null) return undefined;
  const a = c.annotation ?? {};
  const fromName = (c.names ?? []).map((n) => n.replace(/^\//, '')).find((n) => n.startsWith('model-'));
  const model = a['io.pullpiri.annotations.model'] ?? a['pullpiri.model'] ?? a.model ?? c.config?.model ?? fromName?.slice('model-'.length);
  if (!model) return undefined;
  const st = c.state ?? {};
  const raw = st.Status;
  const status: Status = raw !== undefined ? (STATUS[raw.toLowerCase()] ?? 'unknown') : st.Running === 'true' ? 'running' : 'unknown';
  return { node: m[1]!, model, status };
}

export function nodeNotReady(w: World, node: string, liveness: boolean): boolean {
  const s = w.get(`/node/${node}/status`);
  if (s === 'NotReady' || s === 'NODE_DISCONNECTED') return true;
  return liveness && w.get(`/node/${node}/lease`) === undefined;
}

/** `spec.models[].name` of the definitions this simulation writes. */
export function packageModels(value: string): string[] {
  return [...value.matchAll(/- name: (\S+)/g)].map((m) => m[1]!);
}

export function modelRule(prev: string | undefined, statuses: Status[]): string {
  if (statuses.some((s) => s === 'dead' || s === 'unknown')) return 'Dead';
  const fresh = prev === undefined || prev === 'Created';
  if (statuses.length === 0) return fresh ? 'Created' : 'Exited';
  if (statuses.every((s) => s === 'created')) return fresh ? 'Created' : 'Running';
  if (statuses.every((s) => s === 'paused')) return 'Paused';
  if (statuses.every((s) => s === 'exited')) return 'Exited';
  return 'Running';
}

export function packageRule(prev: string | undefined, models: string[]): string {
  if (models.length === 0) return 'Idle';
  if (models.every((m) => m === 'Created') && (prev === undefined || prev === 'Idle')) return 'Idle';
  if (models.every((m) => m === 'Dead')) return 'Error';
  if (models.some((m) => m === 'Dead')) return 'Degraded';
  if (models.every((m) => m === 'Paused')) return 'Paused';
  if (models.every((m) => m === 'Exited')) return 'Exited';
  return 'Running';
}

/** Differences between what etcd holds and what the rules say it must hold. */
export function checkStates(w: World, liveness: boolean): string[] {
  const out: string[] = [];
  const listed = new Map<string, string[]>();
  for (const k of w.keys('Package/')) listed.set(k.slice('Package/'.length), packageModels(w.get(k)!));
  const models = new Set([...listed.values()].flat());
  const byModel = new Map<string, Status[]>();
  for (const k of w.keys('/container/')) {
    const c = readContainer(k, w.get(k)!);
    if (!c) continue;
    const list = byModel.get(c.model) ?? [];
    list.push(nodeNotReady(w, c.node, liveness) ? 'unknown' : c.status);
    byModel.set(c.model, list);
  }
  for (const k of w.keys('/model/')) {
    const name = /^\/model\/(.+)\/state$/.exec(k)?.[1];
    if (name !== undefined && !models.has(name)) out.push(`model ${name} has state ${w.get(k)} but no package lists it`);
  }
  for (const m of models) {
    const stored = w.get(`/model/${m}/state`);
    const want = modelRule(stored, byModel.get(m) ?? []);
    if (stored !== want) out.push(`model ${m} is ${stored ?? 'absent'}, the rules say ${want}`);
  }
  for (const k of w.keys('/package/')) {
    const name = /^\/package\/(.+)\/state$/.exec(k)?.[1];
    if (name !== undefined && !listed.has(name)) out.push(`package ${name} has state ${w.get(k)} but no definition`);
  }
  for (const [p, ms] of listed) {
    const stored = w.get(`/package/${p}/state`);
    const want = packageRule(stored, ms.map((m) => w.get(`/model/${m}/state`) ?? 'Created'));
    if (stored !== want) out.push(`package ${p} is ${stored ?? 'absent'}, the rules say ${want}`);
  }
  return out;
}
