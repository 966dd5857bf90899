// Kustomize base, overlays and components, built offline with `kubectl kustomize`: every
// object validated against the Kubernetes schemas, plus each overlay's promises. Without
// kubectl the tests are registered as skipped and say why.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import {
  assertAuthenticated,
  assertEtcdIsolated,
  assertNoNamespace,
  assertNoTokenValues,
  assertPdbMatchesReplicas,
  assertRestricted,
  assertSelectors,
  assertStatemanagerPod,
  byKind,
  chartDir,
  container,
  findHelm,
  findKubectl,
  helmEnv,
  ingressSources,
  keyPaths,
  kustomizeDir,
  one,
  parseManifests,
  podSpec,
  podTemplate,
  programConfig,
  programRejects,
  run,
  tempDir,
  toolsRequired,
  validateAll,
  workloads,
  type K8sObject,
} from './_support.js';

const kubectl = findKubectl();
const overlays = ['dev', 'prod', 'ha'] as const;
const appVersion = (parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { appVersion: string }).appVersion;

async function build(dir: string): Promise<K8sObject[]> {
  if (!kubectl.ok) throw new Error('kubectl unavailable');
  const r = await run(kubectl.bin, ['kustomize', dir]);
  if (r.code !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
  return parseManifests(r.stdout);
}

const built = new Map<string, Promise<K8sObject[]>>();
function overlay(name: string): Promise<K8sObject[]> {
  const dir = name === 'base' ? join(kustomizeDir, 'base') : join(kustomizeDir, 'overlays', name);
  let p = built.get(dir);
  if (!p) {
    p = build(dir);
    built.set(dir, p);
  }
  return p;
}

function replicas(t: ExecutionContext, objs: K8sObject[]): number {
  return (one(t, objs, 'Deployment').spec as { replicas: number }).replicas;
}

function configOf(t: ExecutionContext, objs: K8sObject[]): Record<string, unknown> {
  const cm = one(t, objs, 'ConfigMap');
  return parse(cm.data?.['config.yaml'] ?? 'null') as Record<string, unknown>;
}

function envOf(objs: K8sObject[]): Map<string, { value?: string; valueFrom?: unknown }> {
  const dep = objs.find((o) => o.kind === 'Deployment');
  if (!dep) throw new Error('no Deployment');
  return new Map((container(podSpec(dep), 'statemanager').env ?? []).map((e) => [e.name, e]));
}

/** A kustomization in a temporary directory (paths relative to it, as kustomize requires). */
function tempKustomization(body: (rel: (p: string) => string) => string): string {
  const dir = tempDir('sm-kustomize-');
  writeFileSync(join(dir, 'kustomization.yaml'), body((p) => relative(dir, p)));
  return dir;
}

if (!kubectl.ok) {
  const msg = `SKIPPED: kustomize checks — ${kubectl.reason}`;
  console.warn(msg);
  if (toolsRequired) test('kubectl is available (STATEMANAGER_REQUIRE_DEPLOY_TOOLS=1)', (t) => t.fail(msg));
  test.skip(`kustomize overlay checks (${kubectl.reason})`, () => undefined);
} else {
  const k = kubectl;

  test('kubectl with kustomize is available', (t) => {
    t.log(`using ${k.bin}: ${k.version}`);
    t.pass();
  });

  for (const name of ['base', ...overlays]) {
    test(`${name}: builds; every object valid, restricted, labelled, namespace-free`, async (t) => {
      const objs = await overlay(name);
      t.deepEqual(await validateAll(objs), [], 'schema validation');
      assertNoNamespace(t, objs);
      assertSelectors(t, objs);
      assertPdbMatchesReplicas(t, objs);
      for (const w of workloads(objs)) assertRestricted(t, w);
      const cm = one(t, objs, 'ConfigMap');
      t.regex(cm.metadata.name ?? '', /^statemanager-config-[a-z0-9]{10}$/, 'ConfigMap name carries a content hash');
      assertStatemanagerPod(t, one(t, objs, 'Deployment'), { configMapName: cm.metadata.name ?? '' });
      const instance = name === 'base' ? 'statemanager' : `statemanager-${name}`;
      const expected = {
        'app.kubernetes.io/name': 'statemanager',
        'app.kubernetes.io/instance': instance,
        'app.kubernetes.io/version': appVersion,
        'app.kubernetes.io/managed-by': 'kustomize',
        'app.kubernetes.io/part-of': 'statemanager',
      };
      for (const o of objs) {
        for (const [key, v] of Object.entries(expected)) t.is(o.metadata.labels?.[key], v, `${o.kind}/${o.metadata.name} label ${key}`);
        t.truthy(o.metadata.labels?.['app.kubernetes.io/component'], `${o.kind}/${o.metadata.name} has a component label`);
      }
      for (const w of workloads(objs)) {
        const labels = podTemplate(w).metadata?.labels ?? {};
        for (const [key, v] of Object.entries(expected)) t.is(labels[key], v, `${w.kind}/${w.metadata.name} pod label ${key}`);
      }
      const image = container(podSpec(one(t, objs, 'Deployment')), 'statemanager').image ?? '';
      t.is(image, `ghcr.io/statemanager/statemanager:${appVersion}`, 'image tag = app version label');
      const cfg = configOf(t, objs);
      const local = parse(readFileSync(join(kustomizeDir, '../local/config.example.yaml'), 'utf8')) as unknown;
      // Every setting of the example; beyond them only grpc.auth (the secure overlays' rules)
      // and actionController.tls (their ActionController client certificate).
      const paths = keyPaths(cfg);
      const extra = (p: string) => p.startsWith('grpc.auth.') || p.startsWith('actionController.tls.');
      t.deepEqual(keyPaths(local).filter((p) => !paths.includes(p)), [], 'config.yaml has every setting');
      t.deepEqual(paths.filter((p) => !keyPaths(local).includes(p) && !extra(p)), [], 'config.yaml has no setting the example lacks');
      // Deny by default: callers that can be identified (a client CA or tokens) need rules.
      const g = (cfg.grpc ?? {}) as { tls?: { caFile?: string }; auth?: { tokens?: unknown[]; rules?: unknown } };
      if (g.tls?.caFile || (g.auth?.tokens?.length ?? 0) > 0) t.true(Array.isArray(g.auth?.rules), `${name}: identities come with grpc.auth.rules`);
      const dep = one(t, objs, 'Deployment');
      t.is(programRejects(cm.data?.['config.yaml'] ?? '', container(podSpec(dep), 'statemanager')), undefined, 'src/config/config.ts accepts config.yaml with the pod environment');
      assertNoTokenValues(t, objs);
    });
  }

  test('dev: one replica, no PDB, bundled single etcd, debug logs', async (t) => {
    const objs = await overlay('dev');
    t.is(replicas(t, objs), 1);
    t.is(byKind(objs, 'PodDisruptionBudget').length, 0);
    const sts = one(t, objs, 'StatefulSet', 'statemanager-etcd');
    t.is((sts.spec as { replicas: number }).replicas, 1);
    const svc = one(t, objs, 'Service', (sts.spec as { serviceName: string }).serviceName);
    const port = (svc.spec as { ports: { port: number }[] }).ports[0]?.port;
    const env = envOf(objs);
    t.is(env.get('ETCD_ENDPOINTS')?.value, `http://${svc.metadata.name}:${port}`, 'statemanager uses the bundled etcd');
    t.is(env.get('STATEMANAGER_LOG_LEVEL')?.value, 'debug');
    const etcd = container(podSpec(sts), 'etcd');
    t.truthy(etcd.readinessProbe && etcd.livenessProbe);
    // Its own NetworkPolicy: only statemanager reaches the client port, only etcd the peer port.
    assertEtcdIsolated(t, objs, 'dev');
    t.is(byKind(objs, 'NetworkPolicy').length, 1, 'only the etcd policy in dev');
  });

  test('components/etcd-tls: the bundled etcd requires client certificates, statemanager presents one over https', async (t) => {
    const dir = tempKustomization(
      (rel) => `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${rel(join(kustomizeDir, 'base'))}
components:
  - ${rel(join(kustomizeDir, 'components/etcd'))}
  - ${rel(join(kustomizeDir, 'components/etcd-tls'))}
configMapGenerator:
  - name: statemanager-config
    behavior: replace
    files:
      - config.yaml
`,
    );
    const cfgText = readFileSync(join(kustomizeDir, 'base/config.yaml'), 'utf8').replace(
      '  tls:\n    caFile: ""\n    certFile: ""\n    keyFile: ""\n  requestTimeout',
      '  tls:\n    caFile: /etc/statemanager/etcd-tls/ca.crt\n    certFile: /etc/statemanager/etcd-tls/tls.crt\n    keyFile: /etc/statemanager/etcd-tls/tls.key\n  requestTimeout',
    );
    t.not(cfgText, readFileSync(join(kustomizeDir, 'base/config.yaml'), 'utf8'), 'the test config names the client files');
    writeFileSync(join(dir, 'config.yaml'), cfgText);
    const objs = await build(dir);
    t.deepEqual(await validateAll(objs), []);
    assertSelectors(t, objs);
    for (const w of workloads(objs)) assertRestricted(t, w);
    assertEtcdIsolated(t, objs, 'etcd + etcd-tls');
    const sts = one(t, objs, 'StatefulSet');
    const etcd = container(podSpec(sts), 'etcd');
    const args = etcd.args ?? [];
    const vol = podSpec(sts).volumes?.find((v) => v.secret?.secretName === 'statemanager-etcd-server-tls');
    const mount = etcd.volumeMounts?.find((m) => m.name === vol?.name);
    t.is(mount?.readOnly, true);
    for (const a of ['--client-cert-auth=true', `--trusted-ca-file=${mount?.mountPath}/ca.crt`, `--cert-file=${mount?.mountPath}/tls.crt`, `--key-file=${mount?.mountPath}/tls.key`, '--listen-client-urls=https://0.0.0.0:2379']) {
      t.true(args.includes(a), `etcd arg ${a}`);
    }
    t.false(args.some((a) => a.startsWith('--listen-client-urls=http:')));
    // The rest of the component's settings survive the args replacement.
    const plainArgs = container(podSpec(one(t, await overlay('dev'), 'StatefulSet')), 'etcd').args ?? [];
    const keep = (a: string) => !/^--(listen|advertise)-client-urls=/.test(a);
    t.deepEqual(args.filter((a) => keep(a) && plainArgs.includes(a)).length, plainArgs.filter(keep).length, `every other arg of components/etcd kept: ${plainArgs.filter((a) => keep(a) && !args.includes(a)).join(' ')}`);
    const dep = one(t, objs, 'Deployment');
    const c = container(podSpec(dep), 'statemanager');
    const cfg = programConfig(one(t, objs, 'ConfigMap').data?.['config.yaml'] ?? '', c);
    t.deepEqual(cfg.etcd.endpoints, ['https://statemanager-etcd:2379']);
    const clientVol = podSpec(dep).volumes?.find((v) => v.secret?.secretName === 'statemanager-etcd-tls');
    const clientDir = c.volumeMounts?.find((m) => m.name === clientVol?.name)?.mountPath;
    t.deepEqual(cfg.etcd.tls, { caFile: `${clientDir}/ca.crt`, certFile: `${clientDir}/tls.crt`, keyFile: `${clientDir}/tls.key` });
  });

  test('prod: three replicas, PDB, TLS Secrets mounted where config.yaml expects them, larger limits', async (t) => {
    const [objs, base] = await Promise.all([overlay('prod'), overlay('base')]);
    t.is(replicas(t, objs), 3);
    t.is(byKind(objs, 'PodDisruptionBudget').length, 1);
    t.is(byKind(objs, 'StatefulSet').length, 0, 'no bundled etcd in prod');
    const dep = one(t, objs, 'Deployment');
    const spec = podSpec(dep);
    const c = container(spec, 'statemanager');
    const cfg = configOf(t, objs) as {
      etcd: { endpoints: string[]; tls: Record<string, string> };
      grpc: { tls: Record<string, string | boolean> };
    };
    for (const e of cfg.etcd.endpoints) t.true(e.startsWith('https://'), `prod etcd endpoint ${e} uses TLS`);
    const dirOf = (secret: string) => {
      const vol = spec.volumes?.find((v) => v.secret?.secretName === secret);
      t.truthy(vol, `Secret ${secret} is mounted`);
      t.not(vol?.secret?.optional, true, `Secret ${secret} is required, not optional`);
      const m = c.volumeMounts?.find((x) => x.name === vol?.name);
      t.is(m?.readOnly, true);
      return m?.mountPath ?? '<none>';
    };
    const etcdDir = dirOf('statemanager-etcd-tls');
    for (const f of ['caFile', 'certFile', 'keyFile']) t.true(cfg.etcd.tls[f]?.startsWith(`${etcdDir}/`), `etcd.tls.${f} under ${etcdDir}`);
    const grpcDir = dirOf('statemanager-grpc-tls');
    for (const f of ['certFile', 'keyFile']) t.true(String(cfg.grpc.tls[f]).startsWith(`${grpcDir}/`), `grpc.tls.${f} under ${grpcDir}`);
    const mem = (o: K8sObject[]) => container(podSpec(one(t, o, 'Deployment')), 'statemanager').resources?.limits?.memory;
    t.truthy(mem(objs));
    t.not(mem(objs), mem(base), 'prod sets its own limits');
    t.not(one(t, objs, 'ConfigMap').metadata.name, one(t, base, 'ConfigMap').metadata.name, 'prod replaces config.yaml');
    const pw = envOf(objs).get('ETCD_PASSWORD')?.valueFrom as { secretKeyRef?: { name: string; optional?: boolean } } | undefined;
    t.is(pw?.secretKeyRef?.name, 'statemanager-etcd-auth');
  });

  for (const name of ['prod', 'ha'] as const) {
    test(`${name}: gRPC with mutual TLS (client CA Secret statemanager-grpc-client-ca) and authorization rules`, async (t) => {
      const objs = await overlay(name);
      const spec = podSpec(one(t, objs, 'Deployment'));
      const c = container(spec, 'statemanager');
      const cfg = programConfig(one(t, objs, 'ConfigMap').data?.['config.yaml'] ?? '', c);
      assertAuthenticated(t, name, cfg);
      const dirOf = (secret: string) => {
        const vol = spec.volumes?.find((v) => v.secret?.secretName === secret);
        t.truthy(vol, `Secret ${secret} is mounted`);
        t.not(vol?.secret?.optional, true, `Secret ${secret} is required, not optional`);
        const m = c.volumeMounts?.find((x) => x.name === vol?.name);
        t.is(m?.readOnly, true, `${secret} read-only`);
        return m?.mountPath ?? '<none>';
      };
      const caDir = dirOf('statemanager-grpc-client-ca');
      const serverDir = dirOf('statemanager-grpc-tls');
      t.not(caDir, serverDir, 'the client CA is a Secret of its own');
      t.is(cfg.grpc.tls?.caFile, `${caDir}/ca.crt`);
      t.is(cfg.grpc.tls?.certFile, `${serverDir}/tls.crt`);
      t.is(cfg.grpc.tls?.keyFile, `${serverDir}/tls.key`);
      t.is(new Set(spec.volumes?.map((v) => v.name)).size, spec.volumes?.length ?? 0, 'no volume twice');
      t.is(new Set(c.volumeMounts?.map((m) => m.mountPath)).size, c.volumeMounts?.length ?? 0, 'no mount twice');
      const raw = configOf(t, objs) as { grpc: { tls: Record<string, unknown> } };
      t.false('requireClientCert' in raw.grpc.tls, 'requireClientCert follows from the client CA');
    });
  }

  test('prod and ha share one grpc section', async (t) => {
    const [prod, ha] = await Promise.all([overlay('prod'), overlay('ha')]);
    t.deepEqual((configOf(t, ha) as { grpc: unknown }).grpc, (configOf(t, prod) as { grpc: unknown }).grpc);
  });

  for (const name of ['prod', 'ha'] as const) {
    test(`${name}: etcd client certificate, ActionController TLS and a NetworkPolicy`, async (t) => {
      const objs = await overlay(name);
      const dep = one(t, objs, 'Deployment');
      const spec = podSpec(dep);
      const c = container(spec, 'statemanager');
      const cfg = programConfig(one(t, objs, 'ConfigMap').data?.['config.yaml'] ?? '', c);
      const dirOf = (secret: string) => {
        const vol = spec.volumes?.find((v) => v.secret?.secretName === secret);
        t.truthy(vol, `Secret ${secret} is mounted`);
        t.not(vol?.secret?.optional, true, `Secret ${secret} is required`);
        const m = c.volumeMounts?.find((x) => x.name === vol?.name);
        t.is(m?.readOnly, true);
        return m?.mountPath ?? '<none>';
      };
      const etcdDir = dirOf('statemanager-etcd-tls');
      t.deepEqual(cfg.etcd.tls, { caFile: `${etcdDir}/ca.crt`, certFile: `${etcdDir}/tls.crt`, keyFile: `${etcdDir}/tls.key` }, 'etcd: CA and client certificate');
      for (const e of cfg.etcd.endpoints) t.true(e.startsWith('https://'), `${name}: etcd endpoint ${e} uses TLS`);
      const acDir = dirOf('statemanager-action-controller-tls');
      t.deepEqual(cfg.actionController.tls, { caFile: `${acDir}/ca.crt`, certFile: `${acDir}/tls.crt`, keyFile: `${acDir}/tls.key` }, 'ActionController: CA and client certificate');
      const np = one(t, objs, 'NetworkPolicy');
      t.deepEqual((np.spec as { policyTypes: string[] }).policyTypes, ['Ingress', 'Egress']);
      const grpc = ingressSources(objs, dep, 47006);
      const http = ingressSources(objs, dep, 47086);
      t.deepEqual(grpc, [{ namespaceSelector: {}, podSelector: { matchLabels: { 'statemanager-client': 'true' } } }], 'gRPC only from labelled client pods');
      t.deepEqual(http, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], 'metrics only from monitoring');
      const egress = (np.spec as { egress: { ports: { port: number }[] }[] }).egress.flatMap((r) => r.ports.map((p) => p.port));
      t.deepEqual(egress.sort((a, b) => a - b), [53, 53, 2379, 47001]);
      // Not this pod's own loopback: no failed package would ever be repaired (found by an operator's audit).
      t.false(/^(127\.|localhost:|\[::1\]:)/.test(cfg.actionController.addr), `${name}: ActionController ${cfg.actionController.addr}`);
    });
  }

  test('ha: three replicas required on different nodes, PDB, one pod replaced at a time', async (t) => {
    const objs = await overlay('ha');
    t.is(replicas(t, objs), 3);
    t.is(byKind(objs, 'PodDisruptionBudget').length, 1);
    const dep = one(t, objs, 'Deployment');
    const anti = podSpec(dep).affinity?.podAntiAffinity;
    const req = anti?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    t.is(req.length, 1);
    t.is(req[0]?.topologyKey, 'kubernetes.io/hostname');
    const sel = (dep.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    t.deepEqual(req[0]?.labelSelector?.matchLabels, sel, 'anti-affinity selects the statemanager pods');
    t.is(anti?.preferredDuringSchedulingIgnoredDuringExecution, undefined, 'the soft rule is replaced');
    // A surge pod would need a fourth node: a rollout on three waited for it until its deadline.
    t.deepEqual((dep.spec as { strategy: { rollingUpdate: unknown } }).strategy.rollingUpdate, { maxSurge: 0, maxUnavailable: 1 });
  });

  test('every overlay: the Deployment keeps its base selector and the etcd Service is only in dev', async (t) => {
    const base = await overlay('base');
    const sel = (o: K8sObject[]) => (one(t, o, 'Deployment').spec as { selector: unknown }).selector;
    for (const name of overlays) {
      const objs = await overlay(name);
      t.deepEqual(sel(objs), sel(base), `${name}: selector`);
      t.is(byKind(objs, 'StatefulSet').length, name === 'dev' ? 1 : 0, `${name}: bundled etcd`);
    }
  });

  test('changing config.yaml renames the ConfigMap, so pods roll', async (t) => {
    const copy = tempDir('sm-kustomize-copy-');
    cpSync(kustomizeDir, copy, { recursive: true });
    const before = one(t, await build(join(copy, 'overlays/dev')), 'ConfigMap').metadata.name;
    const cfgPath = join(copy, 'base/config.yaml');
    writeFileSync(cfgPath, readFileSync(cfgPath, 'utf8').replace('level: info', 'level: warn'));
    const after = await build(join(copy, 'overlays/dev'));
    const name = one(t, after, 'ConfigMap').metadata.name;
    t.not(name, before);
    const vol = podSpec(one(t, after, 'Deployment')).volumes?.find((v) => v.name === 'config');
    t.is(vol?.configMap?.name, name, 'the Deployment follows the new name');
  });

  test('components servicemonitor and networkpolicy build and select the statemanager pods', async (t) => {
    const dir = tempKustomization(
      (rel) => `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${rel(join(kustomizeDir, 'overlays/dev'))}
components:
  - ${rel(join(kustomizeDir, 'components/servicemonitor'))}
  - ${rel(join(kustomizeDir, 'components/networkpolicy'))}
`,
    );
    const objs = await build(dir);
    t.deepEqual(await validateAll(objs), []);
    one(t, objs, 'ServiceMonitor');
    const np = one(t, objs, 'NetworkPolicy', 'statemanager');
    assertSelectors(t, objs);
    assertEtcdIsolated(t, objs, 'dev + networkpolicy');
    const egress = (np.spec as { egress: { ports: { port: number }[] }[] }).egress.flatMap((r) => r.ports.map((p) => p.port));
    for (const p of [53, 2379, 47001]) t.true(egress.includes(p), `egress port ${p}`);
    for (const name of overlays) t.false((await overlay(name)).some((o) => o.kind === 'ServiceMonitor'), `${name}: no ServiceMonitor by default`);
    t.false((await overlay('base')).some((o) => o.kind === 'NetworkPolicy'), 'base: no NetworkPolicy');
  });

  const helm = findHelm();
  if (helm.ok) {
    const h = helm;
    test('the kustomize base and the chart defaults run the same pod', async (t) => {
      const r = await run(h.bin, ['template', 'sm', chartDir], helmEnv);
      t.is(r.code, 0, r.stderr);
      const chartObjs = parseManifests(r.stdout);
      const base = await overlay('base');
      const view = (objs: K8sObject[]) => {
        const dep = one(t, objs, 'Deployment');
        const spec = podSpec(dep);
        const c = container(spec, 'statemanager');
        return {
          replicas: (dep.spec as { replicas: number }).replicas,
          strategy: (dep.spec as { strategy: unknown }).strategy,
          podSecurityContext: spec.securityContext,
          securityContext: c.securityContext,
          ports: c.ports,
          probes: [c.startupProbe, c.livenessProbe, c.readinessProbe],
          resources: c.resources,
          env: (c.env ?? []).map((e) => e.name),
          mounts: (c.volumeMounts ?? []).map((m) => `${m.mountPath}:${m.subPath ?? ''}:${m.readOnly ?? false}`),
          terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
          enableServiceLinks: spec.enableServiceLinks,
          automountServiceAccountToken: spec.automountServiceAccountToken,
          servicePorts: (one(t, objs, 'Service').spec as { ports: unknown }).ports,
          pdb: (byKind(objs, 'PodDisruptionBudget')[0]?.spec as { maxUnavailable?: unknown } | undefined)?.maxUnavailable,
        };
      };
      t.deepEqual(view(base), view(chartObjs));
      t.deepEqual(configOf(t, base), configOf(t, chartObjs));
    });

    test('the prod overlay and the chart production values give the same gRPC configuration', async (t) => {
      const r = await run(h.bin, ['template', 'sm', chartDir, '-f', join(chartDir, 'values-production.yaml'), '--set', 'actionController.addr=actioncontroller.pullpiri:47001'], helmEnv);
      t.is(r.code, 0, r.stderr);
      const chartCfg = configOf(t, parseManifests(r.stdout)) as { grpc: unknown; etcd: { tls: unknown }; actionController: { tls: unknown } };
      const prodCfg = configOf(t, await overlay('prod')) as { grpc: unknown; etcd: { tls: unknown }; actionController: { tls: unknown } };
      t.deepEqual(chartCfg.grpc, prodCfg.grpc, 'values-production.yaml and overlays/prod/config.yaml: same TLS files and rules');
      t.deepEqual(chartCfg.etcd.tls, prodCfg.etcd.tls, 'same etcd client certificate files');
      t.deepEqual(chartCfg.actionController.tls, prodCfg.actionController.tls, 'same ActionController TLS files');
    });
  } else {
    test.skip(`kustomize base vs chart defaults (${helm.reason})`, () => undefined);
  }
}
