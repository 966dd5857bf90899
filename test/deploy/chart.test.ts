// The Helm chart, checked with real Helm: lint, render with interesting value combinations,
// validate every object against the Kubernetes schemas, and assert the properties that
// matter in production. Helm is installed into .tools/helm by deploy/scripts/install-helm.sh
// when it is missing; if that fails, the tests are registered as skipped and say why.
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseDocument, isMap, isScalar, LineCounter, stringify, type YAMLMap, type Node as YamlNode } from 'yaml';
import type { IContainer } from 'kubernetes-models/v1/Container';
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
  sha256,
  tempDir,
  toolsRequired,
  validateAll,
  workloads,
  type K8sObject,
} from './_support.js';

const helm = findHelm();
const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { version: string; appVersion: string; name: string };
const release = 'sm';
const productionValues = join(chartDir, 'values-production.yaml');
/** values-production.yaml with the one value it asks for: the ActionController's Service. */
const production = ['-f', productionValues, '--set', 'actionController.addr=actioncontroller.pullpiri:47001'];

type Args = string[];

async function template(args: Args = [], namespace = 'statemanager'): Promise<K8sObject[]> {
  if (!helm.ok) throw new Error('helm unavailable');
  const r = await run(helm.bin, ['template', release, chartDir, '--namespace', namespace, ...args], helmEnv);
  if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} failed:\n${r.stderr}`);
  return parseManifests(r.stdout);
}

async function templateFails(args: Args): Promise<string> {
  if (!helm.ok) throw new Error('helm unavailable');
  const r = await run(helm.bin, ['template', release, chartDir, ...args], helmEnv);
  if (r.code === 0) throw new Error(`helm template ${args.join(' ')} succeeded, expected a failure`);
  return r.stderr;
}

function deployment(t: ExecutionContext, objs: K8sObject[]): K8sObject {
  return one(t, objs, 'Deployment');
}

function smContainer(objs: K8sObject[]): IContainer {
  const dep = objs.find((o) => o.kind === 'Deployment');
  if (!dep) throw new Error('no Deployment');
  return container(podSpec(dep), 'statemanager');
}

/** The ConfigMap with the program's config.yaml (the Grafana dashboard has a ConfigMap of its own). */
function configMap(t: ExecutionContext, objs: K8sObject[]): K8sObject {
  return one(t, objs.filter((o) => o.kind !== 'ConfigMap' || o.data?.['config.yaml'] !== undefined), 'ConfigMap');
}

function configOf(t: ExecutionContext, objs: K8sObject[]): Record<string, unknown> {
  const cm = configMap(t, objs);
  const text = cm.data?.['config.yaml'];
  if (text === undefined) throw new Error('ConfigMap has no config.yaml');
  return parse(text) as Record<string, unknown>;
}

function checksum(objs: K8sObject[]): string | undefined {
  const dep = objs.find((o) => o.kind === 'Deployment');
  return dep ? podTemplate(dep).metadata?.annotations?.['checksum/config'] : undefined;
}

/** The value combinations every check runs on, besides the defaults. */
const combos: Record<string, Args> = {
  defaults: [],
  'one replica': ['--set', 'replicaCount=1'],
  'three replicas, hard anti-affinity': ['--set', 'replicaCount=3', '--set', 'podAntiAffinityPreset=hard'],
  'everything on': [
    '--set', 'etcd.bundled.enabled=true',
    '--set', 'etcd.bundled.persistence.enabled=true',
    '--set', 'metrics.serviceMonitor.enabled=true',
    '--set', 'networkPolicy.enabled=true',
    '--set', 'grpc.tls.enabled=true', '--set', 'grpc.tls.existingSecret=sm-grpc-tls',
    '--set', 'grpc.tls.clientCA.existingSecret=sm-grpc-client-ca',
    '--set-json', 'grpc.auth.rules=[{"identities":["cn:operator-*"],"allow":[{"method":"read"}]}]',
    '--set', 'etcd.username=statemanager', '--set', 'etcd.auth.existingSecret=sm-etcd-auth',
    '--set', 'etcd.tls.enabled=true', '--set', 'etcd.tls.existingSecret=sm-etcd-tls',
    '--set', 'etcd.bundled.tls.enabled=true', '--set', 'etcd.bundled.tls.existingSecret=sm-etcd-server-tls',
    '--set', 'actionController.tls.enabled=true', '--set', 'actionController.tls.existingSecret=sm-ac-tls',
    '--set', 'prometheusRule.enabled=true', '--set', 'grafanaDashboard.enabled=true',
  ],
  'production TLS': [
    '--set', 'replicaCount=3',
    '--set', 'etcd.endpoints={https://etcd-0.etcd:2379,https://etcd-1.etcd:2379}',
    '--set', 'etcd.tls.enabled=true', '--set', 'etcd.tls.existingSecret=sm-etcd-tls',
    '--set', 'grpc.tls.enabled=true', '--set', 'grpc.tls.existingSecret=sm-grpc-tls',
    '--set', 'networkPolicy.enabled=true',
    '--set', 'image.digest=sha256:' + 'a'.repeat(64),
  ],
  'leader election off, one replica': ['--set', 'replicaCount=1', '--set', 'leaderElection.enabled=false'],
  'production values (values-production.yaml)': production,
  'production values with the bundled etcd': [...production, '--set', 'etcd.bundled.enabled=true'],
  'bundled etcd with a NetworkPolicy, no TLS': ['--set', 'etcd.bundled.enabled=true', '--set', 'replicaCount=1', '--set', 'networkPolicy.enabled=true'],
  'bearer tokens over TLS': [
    '--set', 'grpc.tls.enabled=true', '--set', 'grpc.tls.existingSecret=sm-grpc-tls',
    '--set', 'grpc.auth.tokens.existingSecret=sm-grpc-tokens',
    '--set', 'grpc.auth.tokens.identities={policymanager,operator}',
    '--set-json', 'grpc.auth.rules=[{"identities":["token:policymanager"],"allow":[{"method":"SendStateChange","kind":"scenario","from":["Satisfied"],"to":["Allowed","Denied"]}]},{"identities":["token:operator"],"allow":[{"method":"read"}]}]',
  ],
};

if (!helm.ok) {
  const msg = `SKIPPED: Helm chart checks — ${helm.reason}`;
  console.warn(msg);
  if (toolsRequired) {
    test('helm is available (STATEMANAGER_REQUIRE_DEPLOY_TOOLS=1)', (t) => t.fail(msg));
  }
  test.skip(`helm chart checks (${helm.reason})`, () => undefined);
} else {
  const h = helm;

  test('helm is Helm 3', (t) => {
    t.log(`using ${h.bin} ${h.version}`);
    t.regex(h.version, /^v3\./);
  });

  test('Chart.yaml: apiVersion v2, SemVer version, appVersion', (t) => {
    const c = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
    t.is(c.apiVersion, 'v2');
    t.is(c.name, 'statemanager');
    t.regex(String(c.version), /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/);
    t.is(typeof c.appVersion, 'string');
    const pkg = JSON.parse(readFileSync(join(chartDir, '../../../package.json'), 'utf8')) as { version: string };
    t.is(c.appVersion, pkg.version, 'appVersion follows package.json version');
  });

  test('helm lint --strict passes with the defaults and with every option on', async (t) => {
    for (const [name, args] of Object.entries(combos)) {
      const r = await run(h.bin, ['lint', '--strict', chartDir, ...args], helmEnv);
      t.is(r.code, 0, `lint (${name}) failed:\n${r.stdout}\n${r.stderr}`);
    }
  });

  for (const [name, args] of Object.entries(combos)) {
    test(`render (${name}): every object is valid, restricted, labelled and namespace-free`, async (t) => {
      const objs = await template(args);
      t.deepEqual(await validateAll(objs), [], 'schema validation');
      assertNoNamespace(t, objs);
      assertSelectors(t, objs);
      assertPdbMatchesReplicas(t, objs);
      for (const w of workloads(objs)) assertRestricted(t, w);
      const dep = deployment(t, objs);
      assertStatemanagerPod(t, dep, { configMapName: configMap(t, objs).metadata.name ?? '' });
      const cm = configMap(t, objs);
      t.is(programRejects(cm.data?.['config.yaml'] ?? '', container(podSpec(dep), 'statemanager')), undefined, 'src/config/config.ts accepts the rendered config');
      assertNoTokenValues(t, objs);
      const expected = {
        'helm.sh/chart': `${chart.name}-${chart.version}`,
        'app.kubernetes.io/name': 'statemanager',
        'app.kubernetes.io/instance': release,
        'app.kubernetes.io/version': chart.appVersion,
        'app.kubernetes.io/managed-by': 'Helm',
      };
      for (const o of objs) {
        for (const [k, v] of Object.entries(expected)) {
          t.is(o.metadata.labels?.[k], v, `${o.kind}/${o.metadata.name} label ${k}`);
        }
      }
      for (const w of workloads(objs)) {
        if (w.kind === 'Pod') continue;
        const labels = podTemplate(w).metadata?.labels ?? {};
        for (const [k, v] of Object.entries(expected)) t.is(labels[k], v, `${w.kind}/${w.metadata.name} pod template label ${k}`);
      }
    });
  }

  test('defaults: the expected objects, two replicas, image tag = appVersion', async (t) => {
    const objs = await template();
    t.deepEqual(
      objs.map((o) => o.kind).sort(),
      ['ConfigMap', 'Deployment', 'Pod', 'PodDisruptionBudget', 'Service', 'ServiceAccount'],
    );
    const dep = deployment(t, objs);
    t.is((dep.spec as { replicas: number }).replicas, 2);
    t.is(smContainer(objs).image, `ghcr.io/statemanager/statemanager:${chart.appVersion}`);
    const svc = one(t, objs, 'Service');
    const ports = (svc.spec as { ports: { name: string; port: number }[] }).ports.map((p) => `${p.name}:${p.port}`);
    t.deepEqual(ports, ['grpc:47006', 'http:47086']);
    const cfg = configOf(t, objs) as { leaderElection: { enabled: boolean } };
    t.true(cfg.leaderElection.enabled, 'leader election on with 2 replicas');
    // Rolling updates never take the only ready pod away.
    const strategy = (dep.spec as { strategy: { rollingUpdate: { maxUnavailable: number } } }).strategy;
    t.is(strategy.rollingUpdate.maxUnavailable, 0);
    t.truthy(podSpec(dep).affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution, 'soft anti-affinity by default');
  });

  test('helm test hook: a restricted pod that GETs /readyz through the Service', async (t) => {
    const objs = await template();
    const pod = one(t, objs, 'Pod');
    t.is(pod.metadata.annotations?.['helm.sh/hook'], 'test');
    const svc = one(t, objs, 'Service');
    const cmd = (podSpec(pod).containers[0]?.command ?? []).join(' ');
    t.true(cmd.includes(`http://${svc.metadata.name}:47086/readyz`), cmd);
    t.is(podSpec(pod).restartPolicy, 'Never');
  });

  test('no namespace is baked in: rendering into two namespaces gives the same objects', async (t) => {
    const [a, b] = await Promise.all([template([], 'ns-a'), template([], 'ns-b')]);
    t.deepEqual(a, b);
    t.false(JSON.stringify(a).includes('ns-a'));
  });

  test('ConfigMap holds the full program configuration, like the kustomize base and the local example', async (t) => {
    const cfg = configOf(t, await template());
    const base = parse(readFileSync(join(kustomizeDir, 'base/config.yaml'), 'utf8')) as unknown;
    t.deepEqual(cfg, base, 'chart defaults render the same config.yaml as deploy/kustomize/base/config.yaml');
    const local = parse(readFileSync(join(chartDir, '../../local/config.example.yaml'), 'utf8')) as unknown;
    t.deepEqual(keyPaths(cfg), keyPaths(local), 'deploy/local/config.example.yaml has the same settings');
  });

  test('values reach the configuration file', async (t) => {
    const objs = await template([
      '--set', 'etcd.endpoints={http://a:2379,http://b:2379}',
      '--set', 'keyPrefix=/edge',
      '--set', 'log.level=debug',
      '--set', 'actionController.addr=actioncontroller:47001',
      '--set', 'grpc.port=50051',
      '--set', 'extraConfig.history.length=7',
    ]);
    const cfg = configOf(t, objs) as {
      etcd: { endpoints: string[] };
      keyPrefix: string;
      log: { level: string };
      actionController: { addr: string };
      grpc: { addr: string };
      history: { length: number };
    };
    t.deepEqual(cfg.etcd.endpoints, ['http://a:2379', 'http://b:2379']);
    t.is(cfg.keyPrefix, '/edge');
    t.is(cfg.log.level, 'debug');
    t.is(cfg.actionController.addr, 'actioncontroller:47001');
    t.is(cfg.grpc.addr, '0.0.0.0:50051');
    t.is(cfg.history.length, 7, 'extraConfig is merged over the generated config');
    t.is(smContainer(objs).ports?.find((p) => p.name === 'grpc')?.containerPort, 50051);
  });

  test('config checksum annotation: hash of the mounted config, changes with it and only with it', async (t) => {
    const base = await template();
    const sum = checksum(base);
    t.regex(sum ?? '', /^[0-9a-f]{64}$/);
    const text = one(t, base, 'ConfigMap').data?.['config.yaml'] ?? '';
    t.is(sum, sha256(text.replace(/\n$/, '')), 'annotation is the sha256 of config.yaml');
    const changed: Args[] = [
      ['--set', 'log.level=debug'],
      ['--set', 'etcd.endpoints={http://other:2379}'],
      ['--set', 'keyPrefix=/x'],
      ['--set', 'extraConfig.controller.workers=8'],
      ['--set', 'etcd.tls.enabled=true', '--set', 'etcd.tls.existingSecret=s', '--set', 'etcd.endpoints={https://e:2379}'],
    ];
    const unchanged: Args[] = [['--set', 'replicaCount=3'], ['--set', 'podAnnotations.x=y'], ['--set', 'resources.limits.memory=1Gi']];
    const sums = await Promise.all([...changed, ...unchanged].map(async (a) => checksum(await template(a))));
    changed.forEach((a, i) => t.not(sums[i], sum, `checksum must change with ${a.join(' ')}`));
    unchanged.forEach((a, i) => t.is(sums[changed.length + i], sum, `checksum must not change with ${a.join(' ')}`));
  });

  test('PodDisruptionBudget: present when replicas > 1, absent at 1, configurable', async (t) => {
    const count = async (a: Args) => byKind(await template(a), 'PodDisruptionBudget');
    t.is((await count(['--set', 'replicaCount=1'])).length, 0);
    t.is((await count(['--set', 'replicaCount=0'])).length, 0);
    const two = await count([]);
    t.is(two.length, 1);
    t.is((two[0]?.spec as { maxUnavailable?: number }).maxUnavailable, 1);
    t.is((await count(['--set', 'replicaCount=3'])).length, 1);
    t.is((await count(['--set', 'replicaCount=3', '--set', 'podDisruptionBudget.enabled=false'])).length, 0);
    const min = await count(['--set', 'replicaCount=3', '--set', 'podDisruptionBudget.minAvailable=2']);
    t.deepEqual(min[0]?.spec, {
      minAvailable: 2,
      selector: (two[0]?.spec as { selector: unknown }).selector,
    });
  });

  test('ServiceMonitor, NetworkPolicy and bundled etcd appear only when enabled', async (t) => {
    const kinds = async (a: Args) => (await template(a)).map((o) => o.kind);
    const off = await kinds([]);
    for (const k of ['ServiceMonitor', 'NetworkPolicy', 'StatefulSet']) t.false(off.includes(k), `${k} off by default`);
    t.true((await kinds(['--set', 'metrics.serviceMonitor.enabled=true'])).includes('ServiceMonitor'));
    t.true((await kinds(['--set', 'networkPolicy.enabled=true'])).includes('NetworkPolicy'));
    const etcd = await template(['--set', 'etcd.bundled.enabled=true']);
    t.is(byKind(etcd, 'StatefulSet').length, 1);
    t.is(byKind(etcd, 'Service').length, 2);
    t.false(etcd.some((o) => o.kind === 'ServiceMonitor' || o.kind === 'NetworkPolicy'));
  });

  test('bundled etcd: one member, statemanager pointed at its Service', async (t) => {
    const objs = await template(['--set', 'etcd.bundled.enabled=true', '--set', 'etcd.endpoints={http://ignored:2379}']);
    const sts = one(t, objs, 'StatefulSet');
    t.is((sts.spec as { replicas: number }).replicas, 1);
    const etcdSvc = one(t, objs, 'Service', (sts.spec as { serviceName: string }).serviceName);
    const port = (etcdSvc.spec as { ports: { port: number }[] }).ports[0]?.port;
    const cfg = configOf(t, objs) as { etcd: { endpoints: string[] } };
    t.deepEqual(cfg.etcd.endpoints, [`http://${etcdSvc.metadata.name}:${port}`]);
    const etcd = container(podSpec(sts), 'etcd');
    t.truthy(etcd.livenessProbe && etcd.readinessProbe, 'etcd probes');
    // History is compacted to 5 minutes and the quota stays below the default 1Gi claim
    // (docs/scaling.md: an hour of history fills 2 GiB at about 400 events/s).
    const args = (etcd as { args?: string[] }).args ?? [];
    t.true(args.includes('--auto-compaction-retention=5m'), args.join(' '));
    t.true(args.includes('--quota-backend-bytes=805306368'), args.join(' '));
    const tuned = container(podSpec(one(t, await template(['--set', 'etcd.bundled.enabled=true', '--set', 'etcd.bundled.compactionRetention=1h', '--set', 'etcd.bundled.quotaBackendBytes=4294967296']), 'StatefulSet')), 'etcd');
    t.true(((tuned as { args?: string[] }).args ?? []).includes('--auto-compaction-retention=1h'));
    t.true(((tuned as { args?: string[] }).args ?? []).includes('--quota-backend-bytes=4294967296'));
    const data = podSpec(sts).volumes?.find((v) => v.name === 'data');
    t.truthy(data?.emptyDir, 'emptyDir without persistence');
    const persisted = await template(['--set', 'etcd.bundled.enabled=true', '--set', 'etcd.bundled.persistence.enabled=true']);
    const pst = one(t, persisted, 'StatefulSet');
    t.is((pst.spec as { volumeClaimTemplates?: unknown[] }).volumeClaimTemplates?.length, 1, 'a PVC with persistence');
  });

  test('TLS and password Secrets are referenced, mounted and named in the configuration', async (t) => {
    const objs = await template(combos['production TLS'] ?? []);
    const dep = deployment(t, objs);
    const spec = podSpec(dep);
    const c = container(spec, 'statemanager');
    const cfg = configOf(t, objs) as {
      etcd: { tls: Record<string, string> };
      grpc: { tls: Record<string, string | boolean> };
    };
    const mountFor = (secret: string) => {
      const vol = spec.volumes?.find((v) => v.secret?.secretName === secret);
      t.truthy(vol, `a volume for Secret ${secret}`);
      const m = c.volumeMounts?.find((x) => x.name === vol?.name);
      t.is(m?.readOnly, true, `${secret} mounted read-only`);
      return m?.mountPath ?? '<none>';
    };
    const etcdDir = mountFor('sm-etcd-tls');
    t.deepEqual(cfg.etcd.tls, { caFile: `${etcdDir}/ca.crt`, certFile: `${etcdDir}/tls.crt`, keyFile: `${etcdDir}/tls.key` });
    const grpcDir = mountFor('sm-grpc-tls');
    t.is(cfg.grpc.tls.certFile, `${grpcDir}/tls.crt`);
    t.is(cfg.grpc.tls.keyFile, `${grpcDir}/tls.key`);
    t.is(cfg.grpc.tls.caFile, '');
    t.is(c.image, `ghcr.io/statemanager/statemanager@sha256:${'a'.repeat(64)}`, 'digest pins the image');

    const pw = await template(combos['everything on'] ?? []);
    const env = smContainer(pw).env?.find((e) => e.name === 'ETCD_PASSWORD');
    t.deepEqual(env?.valueFrom?.secretKeyRef, { name: 'sm-etcd-auth', key: 'password' });
    const pcfg = configOf(t, pw) as { grpc: { tls: Record<string, string | boolean> } };
    t.false('requireClientCert' in pcfg.grpc.tls, 'requireClientCert follows from the client CA, never rendered');
    const caVol = podSpec(deployment(t, pw)).volumes?.find((v) => v.secret?.secretName === 'sm-grpc-client-ca');
    const caMount = smContainer(pw).volumeMounts?.find((m) => m.name === caVol?.name);
    t.is(pcfg.grpc.tls.caFile, `${caMount?.mountPath}/ca.crt`, 'caFile is the client CA Secret, in a directory of its own');
    t.not(caMount?.mountPath, grpcDir, 'the client CA is not read from the server certificate Secret');
    t.is(smContainer(await template()).env?.find((e) => e.name === 'ETCD_PASSWORD'), undefined, 'no password by default');
  });

  test('NetworkPolicy: ingress on the gRPC and HTTP ports, egress to DNS, etcd and the ActionController', async (t) => {
    const objs = await template([
      '--set', 'networkPolicy.enabled=true',
      '--set', 'etcd.endpoints={http://e1:2379,https://e2:12379}',
      '--set', 'actionController.addr=ac:47001',
      '--set', 'networkPolicy.grpcFrom[0].podSelector.matchLabels.role=agent',
    ]);
    const np = one(t, objs, 'NetworkPolicy');
    const spec = np.spec as {
      policyTypes: string[];
      ingress: { ports: { port: string | number }[]; from?: unknown[] }[];
      egress: { ports: { port: number; protocol: string }[] }[];
    };
    t.deepEqual(spec.policyTypes, ['Ingress', 'Egress']);
    const ingress = spec.ingress.flatMap((r) => r.ports.map((p) => p.port));
    t.deepEqual(ingress.sort(), ['grpc', 'http']);
    t.deepEqual(spec.ingress.find((r) => r.ports.some((p) => p.port === 'grpc'))?.from, [{ podSelector: { matchLabels: { role: 'agent' } } }]);
    const egress = spec.egress.flatMap((r) => r.ports.map((p) => `${p.port}/${p.protocol}`));
    for (const p of ['53/UDP', '53/TCP', '2379/TCP', '12379/TCP', '47001/TCP']) t.true(egress.includes(p), `egress ${p} in ${egress.join(',')}`);
    const open = await template(['--set', 'networkPolicy.enabled=true', '--set', 'networkPolicy.restrictEgress=false']);
    t.deepEqual((one(t, open, 'NetworkPolicy').spec as { policyTypes: string[] }).policyTypes, ['Ingress']);
  });

  test('hard anti-affinity preset and names follow the release', async (t) => {
    const objs = await template(['--set', 'podAntiAffinityPreset=hard', '--set', 'fullnameOverride=edge-sm']);
    const dep = deployment(t, objs);
    t.is(dep.metadata.name, 'edge-sm');
    const req = podSpec(dep).affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0];
    t.is(req?.topologyKey, 'kubernetes.io/hostname');
    t.deepEqual(req?.labelSelector?.matchLabels, (dep.spec as { selector: { matchLabels: unknown } }).selector.matchLabels);
  });

  test('values.schema.json rejects wrong types and unknown keys', async (t) => {
    t.regex(await templateFails(['--set', 'replicaCount=two']), /replicaCount/);
    const dir = tempDir('sm-values-');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'replicaCount: "two"\n');
    t.regex(await templateFails(['-f', bad]), /replicaCount.*(Invalid type|expected integer|integer)/is);
    t.regex(await templateFails(['--set', 'replicaCout=2']), /replicaCout/);
    t.regex(await templateFails(['--set', 'log.level=verbose']), /log\.level/);
    t.regex(await templateFails(['--set', 'grpc.port=70000']), /grpc\.port/);
    t.regex(await templateFails(['--set', 'etcd.endpoints={etcd:2379}']), /endpoints/);
    t.regex(await templateFails(['--set', 'podDisruptionBudget.maxUnavailable=-1']), /maxUnavailable/);
    // The client CA has its own Secret, and requireClientCert follows from it.
    t.regex(await templateFails(['--set', 'grpc.tls.caKey=ca.crt']), /caKey/);
    t.regex(await templateFails(['--set', 'grpc.tls.requireClientCert=true']), /requireClientCert/);
    t.regex(await templateFails(['--set', 'grpc.auth.allowAnonymous=yes']), /allowAnonymous/);
    t.regex(await templateFails(['--set', 'actionController.tls.enable=true']), /enable/);
    t.regex(await templateFails(['--set', 'etcd.bundled.tls.caKey=']), /caKey/);
    t.regex(await templateFails(['--set', 'grpc.auth.tokens.token=secret']), /token/);
    t.regex(await templateFails(['--set', 'grpc.auth.tokens.identities={a/b}']), /identities/);
    t.regex(
      await templateFails(['--set-json', 'grpc.auth.rules=[{"identities":["node-*"],"allow":[{"method":"read"}]}]']),
      /identities/,
      'identity patterns start with their kind',
    );
    t.regex(
      await templateFails(['--set-json', 'grpc.auth.rules=[{"identities":["cn:x"],"allow":[{"method":"Write"}]}]']),
      /method/,
    );
    const lint = await run(h.bin, ['lint', '--strict', chartDir, '--set', 'replicaCount=two'], helmEnv);
    t.not(lint.code, 0, 'helm lint also rejects it');
  });

  test('inconsistent values fail with a clear message', async (t) => {
    t.regex(await templateFails(['--set', 'replicaCount=2', '--set', 'leaderElection.enabled=false']), /requires leaderElection\.enabled=true/);
    // Also when extraConfig turns it off (black-box probe: it rendered, and both replicas wrote states).
    t.regex(await templateFails(['--set', 'replicaCount=2', '--set', 'extraConfig.leaderElection.enabled=false']), /requires leaderElection\.enabled=true: the configuration as rendered/);
    t.regex(await templateFails(['--set', 'http.port=47006']), /grpc\.port and http\.port are both 47006/);
    // Secrets through extraConfig would be rendered into the ConfigMap (found by an operator's audit).
    const inlineToken = ['--set', 'grpc.tls.enabled=true', '--set', 'grpc.tls.existingSecret=t', '--set-json', 'extraConfig={"grpc":{"auth":{"tokens":[{"identity":"ops","token":"0123456789abcdef0123456789abcdef"}],"rules":[]}}}'];
    t.regex(await templateFails(inlineToken), /grpc\.auth\.tokens\[0\] holds its token inline \(from extraConfig\): it would be in the ConfigMap/);
    t.regex(await templateFails(['--set-json', 'extraConfig={"etcd":{"password":"hunter2"}}']), /etcd\.password is set in the configuration \(from extraConfig\): it would be in the ConfigMap/);
    const tokenFiles = await template(['--set', 'grpc.tls.enabled=true', '--set', 'grpc.tls.existingSecret=t', '--set', 'grpc.auth.tokens.existingSecret=tok', '--set', 'grpc.auth.tokens.identities={ops}', '--set-json', 'grpc.auth.rules=[]']);
    t.false((configMap(t, tokenFiles).data?.['config.yaml'] ?? '').includes('token:'), 'token files: only paths in the ConfigMap');
    t.regex(await templateFails(['--set', 'etcd.tls.enabled=true', '--set', 'etcd.endpoints={https://e:2379}']), /etcd\.tls\.existingSecret/);
    t.regex(await templateFails(['--set', 'etcd.tls.enabled=true', '--set', 'etcd.tls.existingSecret=s']), /not https/);
    t.regex(await templateFails(['--set', 'grpc.tls.enabled=true']), /grpc\.tls\.existingSecret/);
    t.regex(await templateFails(['--set', 'grpc.tls.clientCA.existingSecret=ca']), /clientCA.*requires grpc\.tls\.enabled=true/);
    t.regex(await templateFails(['--set', 'grpc.auth.tokens.identities={operator}']), /requires grpc\.auth\.tokens\.existingSecret/);
    // Tokens in clear text: statemanager refuses to start beyond loopback, so the chart refuses to render.
    const clearTokens = ['--set', 'grpc.auth.tokens.existingSecret=tok', '--set', 'grpc.auth.tokens.identities={operator}', '--set-json', 'grpc.auth.rules=[]'];
    t.regex(await templateFails(clearTokens), /grpc\.auth\.tokens need TLS.*Set grpc\.tls\.enabled=true/s);
    const loopbackOnly = await template([...clearTokens, '--set', 'extraConfig.grpc.addr=127.0.0.1:47006']);
    t.is(programRejects(configMap(t, loopbackOnly).data?.['config.yaml'] ?? '', smContainer(loopbackOnly)), undefined, 'on loopback only, tokens without TLS are accepted');
    t.regex(await templateFails(['--set', 'grpc.auth.tokens.existingSecret=tok']), /identities is empty/);
    t.regex(
      await templateFails(['--set-json', 'grpc.auth.rules=[{"identities":["cn:operator-*"],"allow":[{"method":"read"}]}]']),
      /grpc\.auth\.rules need caller identities/,
    );
    t.regex(await templateFails(['--set', 'etcd.bundled.enabled=true', '--set', 'etcd.bundled.tls.enabled=true']), /etcd\.bundled\.tls\.existingSecret/);
    t.regex(
      await templateFails(['--set', 'etcd.bundled.enabled=true', '--set', 'etcd.bundled.tls.enabled=true', '--set', 'etcd.bundled.tls.existingSecret=s']),
      /requires client certificates for statemanager: set etcd\.tls\.enabled=true/,
    );
    t.regex(
      await templateFails(['--set', 'etcd.bundled.enabled=true', '--set', 'etcd.tls.enabled=true', '--set', 'etcd.tls.existingSecret=s']),
      /needs etcd\.bundled\.tls\.enabled=true/,
    );
    t.regex(await templateFails(['--set', 'actionController.tls.enabled=true']), /actionController\.tls\.existingSecret/);
    t.regex(
      await templateFails(['--set', 'actionController.tls.enabled=true', '--set', 'actionController.tls.existingSecret=s', '--set', 'actionController.tls.caKey=', '--set', 'actionController.tls.certKey=']),
      /plain text|needs its key/,
    );
    const dir = tempDir('sm-values-');
    const noEtcd = join(dir, 'no-etcd.yaml');
    writeFileSync(noEtcd, 'etcd:\n  endpoints: []\n');
    t.regex(await templateFails(['-f', noEtcd]), /set etcd\.endpoints/);
    const bundled = await template(['-f', noEtcd, '--set', 'etcd.bundled.enabled=true']);
    t.is(byKind(bundled, 'StatefulSet').length, 1, 'no endpoints needed with the bundled etcd');
  });

  test('NOTES.txt renders and warns about the bundled etcd and plain-text etcd only when it applies', async (t) => {
    // helm template does not render NOTES.txt: a copy of the chart wraps it in a ConfigMap.
    const dir = tempDir('sm-notes-');
    cpSync(chartDir, dir, { recursive: true });
    writeFileSync(
      join(dir, 'templates/zz-notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n{{ include (print $.Template.BasePath "/NOTES.txt") . | indent 4 }}\n',
    );
    const notes = async (args: Args) => {
      const r = await run(h.bin, ['template', release, dir, '--namespace', 'ns1', '--show-only', 'templates/zz-notes.yaml', ...args], helmEnv);
      t.is(r.code, 0, r.stderr);
      return parseManifests(r.stdout)[0]?.data?.notes ?? '';
    };
    const defaults = await notes([]);
    t.true(defaults.includes('helm test sm --namespace ns1'));
    t.true(defaults.includes('http://etcd:2379'));
    t.true(defaults.includes('not encrypted'));
    t.false(defaults.includes('single-member'));
    const bundled = await notes(['--set', 'etcd.bundled.enabled=true', '--set', 'replicaCount=1']);
    t.true(bundled.includes('single-member etcd'));
    t.true(bundled.includes('no PodDisruptionBudget'));
    t.regex(bundled, /WARNING: the bundled etcd has no client authentication/);
    t.true(bundled.includes('bypass every gRPC rule'));
    t.true(bundled.includes('networkPolicy.enabled=true'), 'names the NetworkPolicy fix');
    t.false(defaults.includes('no client authentication'), 'no etcd warning without the bundled etcd');
    const authed = await notes([...production, '--set', 'etcd.bundled.enabled=true']);
    t.false(authed.includes('no client authentication'), authed);
    t.true(authed.includes('client certificates required'));
    const tls = await notes(combos['production TLS'] ?? []);
    t.false(tls.includes('not encrypted'));
    t.true(tls.includes('TLS, Secret sm-etcd-tls'));
    // The ActionController's address, and a note when it is this pod itself (the default).
    t.regex(defaults, /ActionController: 127\.0\.0\.1:47001\n/);
    t.regex(defaults, /NOTE: actionController\.addr 127\.0\.0\.1:47001 is this pod itself/);
    const served = await notes(production);
    t.regex(served, /ActionController: actioncontroller\.pullpiri:47001 \(TLS\)/);
    t.false(served.includes('is this pod itself'));
  });

  test('values-production.yaml asks for the ActionController\'s Service: rendering without it fails saying so; the default (this pod) renders with a note', async (t) => {
    const err = await templateFails(['-f', productionValues]);
    t.regex(err, /actionController\.addr is empty: set it to the ActionController's Service \(host:port\).*127\.0\.0\.1 would be this pod itself/);
    t.regex(await templateFails(['--set', 'actionController.addr=']), /actionController\.addr is empty/);
    for (const addr of ['actioncontroller:47001', 'http://10.0.0.5:47001']) t.is((configOf(t, await template(['--set', `actionController.addr=${addr}`])) as { actionController: { addr: string } }).actionController.addr, addr);
    t.is((configOf(t, await template(production)) as { actionController: { addr: string } }).actionController.addr, 'actioncontroller.pullpiri:47001');
  });

  test('required pod anti-affinity with more than one replica rolls one pod at a time (a surge pod would need one node more than there are replicas)', async (t) => {
    const strategy = async (args: Args) => (deployment(t, await template(args)).spec as { strategy: { rollingUpdate: { maxSurge: number; maxUnavailable: number } } }).strategy.rollingUpdate;
    t.deepEqual(await strategy(['--set', 'podAntiAffinityPreset=hard', '--set', 'replicaCount=3']), { maxSurge: 0, maxUnavailable: 1 });
    t.deepEqual(await strategy(['--set', 'podAntiAffinityPreset=hard', '--set', 'replicaCount=2']), { maxSurge: 0, maxUnavailable: 1 });
    t.deepEqual(await strategy(['--set', 'podAntiAffinityPreset=hard', '--set', 'replicaCount=1', '--set', 'leaderElection.enabled=false']), { maxSurge: 1, maxUnavailable: 0 }, 'one replica: never without a ready pod');
    t.deepEqual(await strategy(['--set', 'podAntiAffinityPreset=soft', '--set', 'replicaCount=3']), { maxSurge: 1, maxUnavailable: 0 });
  });

  test('updateStrategy Recreate (an upgrade whose replicas must not run beside older ones) renders without the default rollingUpdate, which Kubernetes refuses beside it', async (t) => {
    for (const preset of ['soft', 'hard']) {
      const spec = deployment(t, await template(['--set', 'updateStrategy.type=Recreate', '--set', `podAntiAffinityPreset=${preset}`, '--set', 'replicaCount=3'])).spec as { strategy: unknown };
      t.deepEqual(spec.strategy, { type: 'Recreate' }, preset);
    }
  });

  test('NOTES.txt warns loudly when anonymous access is on, and notes when nobody can be identified', async (t) => {
    const dir = tempDir('sm-notes-');
    cpSync(chartDir, dir, { recursive: true });
    writeFileSync(
      join(dir, 'templates/zz-notes.yaml'),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n{{ include (print $.Template.BasePath "/NOTES.txt") . | indent 4 }}\n',
    );
    const notes = async (args: Args) => {
      const r = await run(h.bin, ['template', release, dir, '--show-only', 'templates/zz-notes.yaml', ...args], helmEnv);
      t.is(r.code, 0, r.stderr);
      return parseManifests(r.stdout)[0]?.data?.notes ?? '';
    };
    const open = await notes(['--set', 'grpc.auth.allowAnonymous=true']);
    t.regex(open, /WARNING: grpc\.auth\.allowAnonymous=true/);
    t.regex(open, /served from ANYWHERE/);
    t.true(open.includes('statemanager_grpc_anonymous_allowed=1'), 'names the metric that exports it');
    t.true(open.includes('may do everything'), 'without rules: says anonymous callers may do everything');
    const openProd = await notes([...production, '--set', 'grpc.auth.allowAnonymous=true']);
    t.regex(openProd, /WARNING: grpc\.auth\.allowAnonymous=true/, 'warned even with a client CA and rules');

    const defaults = await notes([]);
    t.false(defaults.includes('allowAnonymous=true'));
    t.regex(defaults, /NOTE: no gRPC authentication is configured/);
    t.true(defaults.includes('loopback'), 'says only loopback callers (sidecars) are served');
    t.true(defaults.includes('sidecars'));

    const prod = await notes(production);
    t.false(prod.includes('WARNING'), prod);
    t.false(prod.includes('no gRPC authentication'));
    t.true(prod.includes('mutual TLS, client CA Secret statemanager-grpc-client-ca'));
    t.regex(prod, /anonymous callers refused; 4 authorization rule\(s\)/);

    const tokens = await notes(combos['bearer tokens over TLS'] ?? []);
    t.false(tokens.includes('no gRPC authentication'));
    t.false(tokens.includes('WARNING'), tokens);
    t.true(tokens.includes('bearer tokens from Secret sm-grpc-tokens (policymanager, operator)'));
    const nobody = await notes(['--set', 'grpc.auth.allowAnonymous=false']);
    t.regex(nobody, /WARNING: grpc\.auth\.allowAnonymous=false and neither a client CA nor tokens/);
  });

  test('production values: mutual TLS with its own client CA Secret, rules on, anonymous refused, parsed by the program', async (t) => {
    const objs = await template(production);
    const spec = podSpec(deployment(t, objs));
    const c = container(spec, 'statemanager');
    const text = one(t, objs, 'ConfigMap').data?.['config.yaml'] ?? '';
    const cfg = programConfig(text, c);
    assertAuthenticated(t, 'values-production.yaml', cfg);
    assertNoTokenValues(t, objs);
    t.is((deployment(t, objs).spec as { replicas: number }).replicas, 3);
    const dirOf = (secret: string) => {
      const vol = spec.volumes?.find((v) => v.secret?.secretName === secret);
      t.truthy(vol, `Secret ${secret} is mounted`);
      t.not(vol?.secret?.optional, true, `Secret ${secret} is required`);
      const m = c.volumeMounts?.find((x) => x.name === vol?.name);
      t.is(m?.readOnly, true, `${secret} read-only`);
      return m?.mountPath ?? '<none>';
    };
    t.is(cfg.grpc.tls?.caFile, `${dirOf('statemanager-grpc-client-ca')}/ca.crt`);
    t.is(cfg.grpc.tls?.certFile, `${dirOf('statemanager-grpc-tls')}/tls.crt`);
    t.is(cfg.etcd.tls.caFile, `${dirOf('statemanager-etcd-tls')}/ca.crt`);
    for (const e of cfg.etcd.endpoints) t.true(e.startsWith('https://'), e);
    const raw = parse(text) as { grpc: { tls: Record<string, unknown>; auth: Record<string, unknown> } };
    t.false('requireClientCert' in raw.grpc.tls, 'requireClientCert follows from the client CA');
    t.is(raw.grpc.auth.allowAnonymous, false);
    t.false('tokens' in raw.grpc.auth, 'no tokens: certificates identify every caller');
    const unset = await template([...production, '--set', 'grpc.auth.allowAnonymous=null']);
    assertAuthenticated(t, 'values-production.yaml with allowAnonymous unset', programConfig(one(t, unset, 'ConfigMap').data?.['config.yaml'] ?? '', c));
  });

  test('bearer tokens come from a Secret mounted as files; no token is in the ConfigMap', async (t) => {
    const objs = await template(combos['bearer tokens over TLS'] ?? []);
    const spec = podSpec(deployment(t, objs));
    const c = container(spec, 'statemanager');
    const vol = spec.volumes?.find((v) => v.secret?.secretName === 'sm-grpc-tokens');
    t.truthy(vol, 'the token Secret is a volume');
    t.deepEqual(vol?.secret?.items, [{ key: 'policymanager', path: 'policymanager' }, { key: 'operator', path: 'operator' }], 'only the listed identities');
    // 0440 as Kubernetes reads it (YAML 1.1 octal); this test's YAML 1.2 parser reads 440.
    t.true([0o440, 440].includes(vol?.secret?.defaultMode ?? -1), `defaultMode ${vol?.secret?.defaultMode}`);
    const m = c.volumeMounts?.find((x) => x.name === vol?.name);
    t.is(m?.readOnly, true);
    t.false((c.env ?? []).some((e) => e.valueFrom?.secretKeyRef?.name === 'sm-grpc-tokens'), 'tokens are not put in the environment');
    const cfg = programConfig(one(t, objs, 'ConfigMap').data?.['config.yaml'] ?? '', c);
    t.deepEqual(cfg.grpc.auth.tokens, [
      { identity: 'policymanager', tokenFile: `${m?.mountPath}/policymanager` },
      { identity: 'operator', tokenFile: `${m?.mountPath}/operator` },
    ]);
    t.is(cfg.grpc.auth.rules?.length, 2, 'rules rendered verbatim');
    t.deepEqual(cfg.grpc.auth.rules?.[1], { identities: ['token:operator'], allow: [{ method: 'read' }] });
    t.is(cfg.grpc.auth.allowAnonymous, undefined, 'allowAnonymous unset: the program default applies');
    assertNoTokenValues(t, objs);
    const def = await template();
    t.false(podSpec(deployment(t, def)).volumes?.some((v) => v.name === 'grpc-tokens' || v.name === 'grpc-client-ca'), 'no auth volumes by default');
    t.false('auth' in (configOf(t, def) as { grpc: object }).grpc, 'no auth section by default: the program defaults apply');
  });

  test('grpc.auth.allowAnonymous: unset by default, true and false rendered as given', async (t) => {
    const auth = async (a: Args) => (configOf(t, await template(a)) as { grpc: { auth?: { allowAnonymous?: boolean } } }).grpc.auth;
    t.is(await auth([]), undefined);
    t.deepEqual(await auth(['--set', 'grpc.auth.allowAnonymous=true']), { allowAnonymous: true });
    t.deepEqual(await auth(['--set', 'grpc.auth.allowAnonymous=false']), { allowAnonymous: false });
    const objs = await template(['--set', 'grpc.auth.allowAnonymous=true']);
    const cfg = programConfig(one(t, objs, 'ConfigMap').data?.['config.yaml'] ?? '');
    t.is(cfg.grpc.auth.allowAnonymous, true);
  });

  test('extra volumes and mounts reach the pod', async (t) => {
    const objs = await template([
      '--set', 'extraVolumes[0].name=ac-tls', '--set', 'extraVolumes[0].secret.secretName=ac-tls',
      '--set', 'extraVolumeMounts[0].name=ac-tls', '--set', 'extraVolumeMounts[0].mountPath=/etc/statemanager/ac-tls',
      '--set', 'extraConfig.actionController.tls.caFile=/etc/statemanager/ac-tls/ca.crt',
    ]);
    t.deepEqual(await validateAll(objs), []);
    const spec = podSpec(deployment(t, objs));
    t.is(spec.volumes?.find((v) => v.name === 'ac-tls')?.secret?.secretName, 'ac-tls');
    t.is(container(spec, 'statemanager').volumeMounts?.find((m) => m.name === 'ac-tls')?.mountPath, '/etc/statemanager/ac-tls');
    const cm = one(t, objs, 'ConfigMap');
    t.is(programRejects(cm.data?.['config.yaml'] ?? ''), undefined, 'actionController.tls is a setting the program knows');
  });

  test('deny by default: identities without grpc.auth.rules do not render, and the message names the fix', async (t) => {
    const mtls = ['--set', 'grpc.tls.enabled=true', '--set', 'grpc.tls.existingSecret=sm-grpc-tls', '--set', 'grpc.tls.clientCA.existingSecret=sm-grpc-client-ca'];
    const tokens = ['--set', 'grpc.tls.enabled=true', '--set', 'grpc.tls.existingSecret=sm-grpc-tls', '--set', 'grpc.auth.tokens.existingSecret=tok', '--set', 'grpc.auth.tokens.identities={operator}'];
    for (const [name, args, kind] of [['client CA', mtls, /mutual TLS/], ['tokens', tokens, /bearer tokens/]] as const) {
      const err = await templateFails([...args]);
      t.regex(err, /grpc\.auth\.rules is not set/, name);
      t.regex(err, kind, `${name}: names the identity source`);
      t.regex(err, /Set grpc\.auth\.rules/, `${name}: names the fix`);
      t.regex(err, /\[\] to deny every call/, `${name}: says how to deny everything`);
      // helm lint runs templates in lint mode, where `fail` is reported as [INFO] and not an error.
      const lint = await run(h.bin, ['lint', '--strict', chartDir, ...args], helmEnv);
      t.regex(lint.stdout + lint.stderr, /grpc\.auth\.rules is not set/, `${name}: helm lint reports it`);
      // An explicit empty list renders: deny everything.
      const objs = await template([...args, '--set-json', 'grpc.auth.rules=[]']);
      const cfg = programConfig(configMap(t, objs).data?.['config.yaml'] ?? '', smContainer(objs));
      t.deepEqual(cfg.grpc.auth.rules, [], `${name}: rules [] rendered as a list`);
      // What the chart refuses, the program refuses too: the same configuration without rules.
      const raw = parse(configMap(t, objs).data?.['config.yaml'] ?? '') as { grpc: { auth: Record<string, unknown> } };
      delete raw.grpc.auth.rules;
      t.regex(programRejects(stringify(raw), smContainer(objs)) ?? '', /grpc\.auth\.rules/, `${name}: src/config/config.ts refuses identities without rules`);
    }
    // Through extraConfig too: a client CA slipped in there still needs rules, and rules given there count.
    const viaExtra = ['--set', 'grpc.tls.enabled=true', '--set', 'grpc.tls.existingSecret=sm-grpc-tls', '--set', 'extraConfig.grpc.tls.caFile=/etc/ca.crt'];
    t.regex(await templateFails(viaExtra), /grpc\.auth\.rules is not set/);
    const withRules = await template([...viaExtra, '--set-json', 'extraConfig.grpc.auth.rules=[{"identities":["cn:a"],"allow":[{"method":"read"}]}]']);
    t.is((configOf(t, withRules) as { grpc: { auth: { rules: unknown[] } } }).grpc.auth.rules.length, 1);
    // Without identities nothing is required (loopback-only default).
    t.is((configOf(t, await template()) as { grpc: { auth?: unknown } }).grpc.auth, undefined);
  });

  test('production values: NetworkPolicies on; with the bundled etcd only statemanager reaches its client port', async (t) => {
    const prod = await template(production);
    const dep = deployment(t, prod);
    const grpc = ingressSources(prod, dep, 47006);
    const http = ingressSources(prod, dep, 47086);
    t.true(Array.isArray(grpc) && grpc.length > 0, `gRPC restricted to listed sources: ${JSON.stringify(grpc)}`);
    t.deepEqual(Array.isArray(grpc) ? grpc[0] : undefined, { namespaceSelector: {}, podSelector: { matchLabels: { 'statemanager-client': 'true' } } });
    t.true(Array.isArray(http) && http.length > 0, `HTTP restricted to listed sources: ${JSON.stringify(http)}`);
    t.true(
      Array.isArray(http) && http.some((p) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring'),
      'metrics from the monitoring namespace',
    );
    const testPod = one(t, prod, 'Pod');
    t.true(Array.isArray(http) && http.some((p) => !p.namespaceSelector && p.podSelector && Object.entries(p.podSelector.matchLabels ?? {}).every(([k, v]) => testPod.metadata.labels?.[k] === v)), 'the helm test pod reaches /readyz');
    t.is(byKind(prod, 'NetworkPolicy').length, 1, 'no bundled etcd, one policy');

    const bundled = await template([...production, '--set', 'etcd.bundled.enabled=true']);
    t.deepEqual(await validateAll(bundled), []);
    t.is(byKind(bundled, 'NetworkPolicy').length, 2, 'a policy for statemanager and one for etcd');
    assertEtcdIsolated(t, bundled, 'production + bundled etcd');
    const etcdNp = byKind(bundled, 'NetworkPolicy').find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'etcd');
    t.deepEqual((etcdNp?.spec as { policyTypes: string[] }).policyTypes, ['Ingress', 'Egress']);
    // statemanager's egress to etcd goes to the etcd pods only.
    const smNp = byKind(bundled, 'NetworkPolicy').find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'controller');
    const etcdEgress = (smNp?.spec as { egress: { ports: { port: number }[]; to?: unknown[] }[] }).egress.find((r) => r.ports.some((p) => p.port === 2379));
    t.deepEqual(etcdEgress?.to, [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'statemanager', 'app.kubernetes.io/instance': release, 'app.kubernetes.io/component': 'etcd' } } }]);
    // The dev-style default with a policy: the same isolation, no TLS needed.
    assertEtcdIsolated(t, await template(['--set', 'etcd.bundled.enabled=true', '--set', 'networkPolicy.enabled=true']), 'bundled etcd, defaults');
  });

  test('bundled etcd with client-certificate auth: etcd requires certificates, statemanager presents one over https', async (t) => {
    const objs = await template([...production, '--set', 'etcd.bundled.enabled=true']);
    const sts = one(t, objs, 'StatefulSet');
    const etcd = container(podSpec(sts), 'etcd');
    const args = (etcd as { args?: string[] }).args ?? [];
    const vol = podSpec(sts).volumes?.find((v) => v.secret?.secretName === 'statemanager-etcd-server-tls');
    t.truthy(vol, 'the server Secret is a volume of the etcd pod');
    const dir = etcd.volumeMounts?.find((m) => m.name === vol?.name);
    t.is(dir?.readOnly, true);
    for (const a of ['--client-cert-auth=true', `--trusted-ca-file=${dir?.mountPath}/ca.crt`, `--cert-file=${dir?.mountPath}/tls.crt`, `--key-file=${dir?.mountPath}/tls.key`, '--listen-client-urls=https://0.0.0.0:2379']) {
      t.true(args.includes(a), `etcd arg ${a} in ${args.join(' ')}`);
    }
    t.false(args.some((a) => a.startsWith('--listen-client-urls=http:')), 'no plain-text client listener');
    const c = smContainer(objs);
    const cfg = programConfig(configMap(t, objs).data?.['config.yaml'] ?? '', c);
    const svc = one(t, objs, 'Service', (sts.spec as { serviceName: string }).serviceName);
    t.deepEqual(cfg.etcd.endpoints, [`https://${svc.metadata.name}:2379`]);
    const clientVol = podSpec(deployment(t, objs)).volumes?.find((v) => v.secret?.secretName === 'statemanager-etcd-tls');
    const clientDir = c.volumeMounts?.find((m) => m.name === clientVol?.name)?.mountPath;
    t.deepEqual(cfg.etcd.tls, { caFile: `${clientDir}/ca.crt`, certFile: `${clientDir}/tls.crt`, keyFile: `${clientDir}/tls.key` }, 'statemanager has a client certificate');
    // The default bundled etcd stays plain (trying it out), and says so.
    const plain = container(podSpec(one(t, await template(['--set', 'etcd.bundled.enabled=true']), 'StatefulSet')), 'etcd');
    t.false(((plain as { args?: string[] }).args ?? []).includes('--client-cert-auth=true'));
  });

  test('actionController.tls: Secret mounted read-only, files in the configuration, on in production', async (t) => {
    const objs = await template(production);
    const spec = podSpec(deployment(t, objs));
    const c = container(spec, 'statemanager');
    const vol = spec.volumes?.find((v) => v.secret?.secretName === 'statemanager-action-controller-tls');
    t.truthy(vol, 'the ActionController TLS Secret is a volume');
    const m = c.volumeMounts?.find((x) => x.name === vol?.name);
    t.is(m?.readOnly, true);
    const cfg = programConfig(configMap(t, objs).data?.['config.yaml'] ?? '', c);
    t.deepEqual(cfg.actionController.tls, { caFile: `${m?.mountPath}/ca.crt`, certFile: `${m?.mountPath}/tls.crt`, keyFile: `${m?.mountPath}/tls.key` });
    // CA only (server-authenticated TLS, no client certificate).
    const caOnly = await template(['--set', 'actionController.tls.enabled=true', '--set', 'actionController.tls.existingSecret=ac', '--set', 'actionController.tls.certKey=', '--set', 'actionController.tls.keyKey=']);
    const caCfg = programConfig(configMap(t, caOnly).data?.['config.yaml'] ?? '', smContainer(caOnly));
    t.deepEqual(caCfg.actionController.tls, { caFile: '/etc/statemanager/action-controller-tls/ca.crt', certFile: '', keyFile: '' });
    // Off by default: no tls key rendered at all (the program's default, plain text).
    t.false('tls' in (configOf(t, await template()) as { actionController: object }).actionController);
    t.false(podSpec(deployment(t, await template())).volumes?.some((v) => v.name === 'action-controller-tls'));
  });

  test('values.yaml: every value is commented and described in values.schema.json', (t) => {
    const text = readFileSync(join(chartDir, 'values.yaml'), 'utf8');
    const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as SchemaNode;
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter });
    const lines = text.split('\n');
    const missing: string[] = [];
    const undocumented: string[] = [];
    const walk = (map: YAMLMap, node: SchemaNode, path: string) => {
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        const p = path ? `${path}.${key}` : key;
        const child = node.properties?.[key];
        if (!child) {
          missing.push(p);
          continue;
        }
        if (!child.description && !child.properties) undocumented.push(p);
        const value = pair.value as YamlNode | null;
        if (isMap(value) && child.properties) {
          walk(value, child, p);
          continue;
        }
        // A leaf (scalar, list or free-form map): needs a comment line above it or a trailing one.
        const line = lineCounter.linePos((pair.key as YamlNode).range?.[0] ?? 0).line - 1;
        const above = lines[line - 1]?.trim() ?? '';
        const same = lines[line] ?? '';
        if (!above.startsWith('#') && !/\s#\s/.test(same)) missing.push(`${p} (no comment)`);
      }
    };
    const root = doc.contents;
    if (!isMap(root)) throw new Error('values.yaml is not a map');
    walk(root, schema, '');
    t.deepEqual(missing, [], 'values without a comment or not in the schema');
    t.deepEqual(undocumented, [], 'schema properties without a description');
  });
}

interface SchemaNode {
  description?: string;
  properties?: Record<string, SchemaNode>;
}
