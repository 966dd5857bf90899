// What operators install next to statemanager: the alerts (a plain Prometheus rule file in the
// chart, shipped as a PrometheusRule by the chart and by a Kustomize component) and the Grafana
// dashboard (a ConfigMap for Grafana's sidecar). Checked here:
//  - promtool check rules / test rules (Debian's prometheus package; skipped, and said so,
//    when promtool is missing: deploy/local/ensure-tools.sh installs it);
//  - every alert is tested firing and quiet, and is shaped sensibly (for, severity, annotations,
//    job selector);
//  - every metric and label in every PromQL expression of the rules and the dashboard is one the
//    program registers (src/observability/metrics.ts, read from a real Metrics registry);
//  - the Kustomize copies equal the chart's files, the chart renders them (helm) and the
//    components build (kubectl kustomize).
import test from 'ava';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { Metrics } from '../../src/observability/metrics.js';
import {
  assertNoNamespace,
  assertSelectors,
  byKind,
  chartDir,
  findHelm,
  findKubectl,
  findPromtool,
  helmEnv,
  kustomizeDir,
  one,
  parseManifests,
  repoRoot,
  run,
  tempDir,
  toolsRequired,
  validateAll,
  type K8sObject,
} from './_support.js';

const rulesFile = join(chartDir, 'files/statemanager.rules.yaml');
const dashboardFile = join(chartDir, 'files/statemanager-dashboard.json');
const testsDir = join(repoRoot, 'deploy/monitoring/tests');
const componentRule = join(kustomizeDir, 'components/prometheusrule/prometheusrule.yaml');
const componentDashboard = join(kustomizeDir, 'components/grafana-dashboard/statemanager-dashboard.json');
const syncHint = 'run `node deploy/monitoring/sync.mjs`';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
}
interface RuleTestFile {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { eval_time: string; alertname: string; exp_alerts?: unknown[] }[] }[];
}
interface Target {
  expr?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}

const groups = (parse(readFileSync(rulesFile, 'utf8')) as { groups: RuleGroup[] }).groups;
const alerts = groups.flatMap((g) => g.rules).filter((r): r is Rule & { alert: string } => typeof r.alert === 'string');
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;
const testFiles = readdirSync(testsDir)
  .filter((f) => f.endsWith('.test.yaml'))
  .map((f) => join(testsDir, f));

// ---------------------------------------------------------------------------------------
// PromQL: the metric selectors and label names of an expression (enough of the grammar for
// the expressions we write: selectors, functions, aggregations, by/on/ignoring/group_* lists,
// offsets, ranges and subqueries, Grafana's $variables).

interface Selector {
  metric: string;
  labels: string[];
}
interface ExprRefs {
  selectors: Selector[];
  grouping: string[];
}

const KEYWORDS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan',
]);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

function promqlRefs(expr: string): ExprRefs {
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  let i = 0;
  const s = expr;
  const skipSpace = () => {
    while (i < s.length && /\s/.test(s[i] ?? '')) i++;
  };
  const readString = () => {
    const q = s[i];
    i++;
    while (i < s.length && s[i] !== q) i += s[i] === '\\' ? 2 : 1;
    i++;
  };
  /** At '{': the label names of the matchers up to the closing '}' (strings may hold braces). */
  const readMatchers = (): string[] => {
    const labels: string[] = [];
    i++;
    for (;;) {
      while (i < s.length && /[\s,]/.test(s[i] ?? '')) i++;
      if (s[i] === '}') {
        i++;
        return labels;
      }
      const m = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(["'`])/.exec(s.slice(i));
      if (!m) throw new Error(`cannot read the matchers at "${s.slice(i, i + 30)}" in ${expr}`);
      labels.push(m[1] ?? '');
      i += m[0].length - 1;
      readString();
    }
  };
  while (i < s.length) {
    const c = s[i] ?? '';
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === "'" || c === '`') {
      readString();
    } else if (c === '#') {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (c === '[') {
      const end = s.indexOf(']', i);
      i = end < 0 ? s.length : end + 1;
    } else if (c === '$') {
      // Grafana variable: $name, ${name}, $__rate_interval
      i++;
      if (s[i] === '{') i = s.indexOf('}', i) + 1;
      else while (i < s.length && /\w/.test(s[i] ?? '')) i++;
    } else if (/[0-9.]/.test(c)) {
      while (i < s.length && /[0-9a-zA-Z._]/.test(s[i] ?? '')) i++;
    } else if (c === '{') {
      selectors.push({ metric: '', labels: readMatchers() });
    } else if (/[a-zA-Z_:]/.test(c)) {
      const start = i;
      while (i < s.length && /[a-zA-Z0-9_:]/.test(s[i] ?? '')) i++;
      const word = s.slice(start, i);
      skipSpace();
      if (GROUPING.has(word)) {
        if (s[i] === '(') {
          const end = s.indexOf(')', i);
          for (const l of s.slice(i + 1, end).split(',')) if (l.trim() !== '') grouping.push(l.trim());
          i = end + 1;
        }
      } else if (KEYWORDS.has(word.toLowerCase())) {
        // an operator or aggregation: its arguments follow
      } else if (s[i] === '(') {
        // a function call
      } else if (s[i] === '{') {
        selectors.push({ metric: word, labels: readMatchers() });
      } else {
        selectors.push({ metric: word, labels: [] });
      }
    } else {
      i++;
    }
  }
  return { selectors, grouping };
}

/** Labels Prometheus (and the Prometheus Operator) attach to every scraped series. */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'service', 'container', 'endpoint'];

interface Exported {
  /** series name -> label names it can carry */
  series: Map<string, string[]>;
  /** registered metric names (histograms once) */
  names: string[];
}

async function exportedMetrics(): Promise<Exported> {
  const metrics = new Metrics({ defaultMetrics: false });
  const json = await metrics.registry.getMetricsAsJSON();
  const series = new Map<string, string[]>();
  for (const m of json) {
    const single = metrics.registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] } | undefined;
    const labels = [...(single?.labelNames ?? []), ...TARGET_LABELS];
    if (String(m.type) === 'histogram') {
      series.set(`${m.name}_bucket`, [...labels, 'le']);
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else if (String(m.type) === 'summary') {
      series.set(m.name, [...labels, 'quantile']);
      series.set(`${m.name}_sum`, labels);
      series.set(`${m.name}_count`, labels);
    } else {
      series.set(m.name, labels);
    }
  }
  return { series, names: json.map((m) => m.name) };
}

/** Where each PromQL expression comes from, and the expression. */
function dashboardExprs(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const [i, tgt] of (p.targets ?? []).entries()) if (tgt.expr) out.push({ where: `dashboard panel "${p.title}" target ${i}`, expr: tgt.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    const lv = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/s.exec(q.trim());
    // label_values(selector, label): the label must be one the selector's series carry.
    out.push({ where: `dashboard variable $${v.name}`, expr: lv ? `group by (${lv[2]}) (${lv[1]})` : q });
  }
  return out;
}

function ruleExprs(): { where: string; expr: string }[] {
  return groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr })));
}

test('the PromQL reader finds selectors, labels and groupings', (t) => {
  const r = promqlRefs(
    'histogram_quantile(0.99, sum by (namespace, le) (rate(a_bucket{job="x", le=~"1|\\"2\\""}[5m]))) > 1e-3 and on (job) b unless c{d!="}"} offset 15m or max(x{y=~"$job"}[$__rate_interval])',
  );
  t.deepEqual(
    r.selectors.map((s) => `${s.metric}:${s.labels.join(',')}`),
    ['a_bucket:job,le', 'b:', 'c:d', 'x:y'],
  );
  t.deepEqual(r.grouping, ['namespace', 'le', 'job']);
});

test('every metric and label in the rules and the dashboard is one the program exports (src/observability/metrics.ts)', async (t) => {
  const { series, names } = await exportedMetrics();
  t.true(series.size > 20, `the registry lists ${series.size} series`);
  const problems: string[] = [];
  const used = new Set<string>();
  for (const { where, expr } of [...ruleExprs(), ...dashboardExprs()]) {
    const refs = promqlRefs(expr);
    if (refs.selectors.length === 0) problems.push(`${where}: no metric in ${expr}`);
    const known: string[] = [];
    for (const sel of refs.selectors) {
      const labels = series.get(sel.metric);
      if (!labels) {
        problems.push(`${where}: ${sel.metric || '{…}'} is not a metric the program exports`);
        continue;
      }
      used.add(names.find((n) => sel.metric === n || sel.metric === `${n}_bucket` || sel.metric === `${n}_sum` || sel.metric === `${n}_count`) ?? sel.metric);
      known.push(...labels);
      for (const l of sel.labels) if (!labels.includes(l)) problems.push(`${where}: ${sel.metric} has no label ${l}`);
    }
    for (const l of refs.grouping) if (!known.includes(l)) problems.push(`${where}: no metric of the expression has label ${l}`);
  }
  t.deepEqual(problems, []);
  const notShown = names.filter((n) => !used.has(n));
  t.log(`program metrics in neither rules nor dashboard: ${notShown.join(', ') || 'none'}`);
});

test('the dashboard shows lag, queues, states, transitions, reconcile requests, leader, gRPC (and subscriptions when exported)', async (t) => {
  const { names } = await exportedMetrics();
  const metricsOf = new Set(dashboardExprs().flatMap(({ expr }) => promqlRefs(expr).selectors.map((s) => s.metric)));
  const wanted = [
    'statemanager_container_to_package_lag_seconds_bucket',
    'workqueue_depth',
    'workqueue_adds_total',
    'statemanager_resources',
    'statemanager_state_transitions_total',
    'statemanager_reconcile_requests_total',
    'statemanager_reconcile_requests_pending',
    'leader_election_master_status',
    'statemanager_grpc_requests_total',
    'controller_runtime_reconcile_total',
  ];
  // Added with the state API; shown once the program exports them.
  for (const n of ['statemanager_api_subscriptions', 'statemanager_api_events_sent_total', 'statemanager_api_subscriptions_cut_total']) {
    if (names.includes(n)) wanted.push(n);
  }
  for (const m of wanted) t.true(metricsOf.has(m), `the dashboard shows ${m}`);
});

test('dashboard JSON: uid, unique panel ids, every target on the $datasource variable, scoped by $job and $namespace', (t) => {
  t.is(dashboard.uid, 'statemanager');
  t.is(dashboard.title, 'statemanager');
  const all: Panel[] = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      all.push(p);
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  const ids = all.map((p) => p.id);
  t.is(new Set(ids).size, ids.length, 'panel ids are unique');
  t.deepEqual(dashboard.templating.list.map((v) => v.name), ['datasource', 'namespace', 'job']);
  for (const p of all.filter((x) => x.type !== 'row')) {
    t.is(p.datasource?.uid, '${datasource}', `panel "${p.title}" uses the data source variable`);
    t.true((p.targets ?? []).length > 0, `panel "${p.title}" has a query`);
    for (const tgt of p.targets ?? []) {
      for (const sel of promqlRefs(tgt.expr ?? '').selectors) {
        t.true(sel.labels.includes('job') && sel.labels.includes('namespace'), `panel "${p.title}": ${sel.metric} is scoped by $job and $namespace`);
      }
    }
  }
});

test('every alert: a for duration, a severity, a summary and a description, and only job="statemanager" series', (t) => {
  const names = alerts.map((a) => a.alert);
  t.is(new Set(names).size, names.length, 'alert names are unique');
  t.deepEqual(
    [...names].sort(),
    [
      'StatemanagerAbsent',
      'StatemanagerAnonymousAccessAllowed',
      'StatemanagerClientCertificateExpiring',
      'StatemanagerContainerToPackageLagHigh',
      'StatemanagerCredentialsReloadFailed',
      'StatemanagerEtcdAlarm',
      'StatemanagerInvalidInput',
      'StatemanagerNoLeader',
      'StatemanagerPackagesInError',
      'StatemanagerReconcileRequestsPending',
      'StatemanagerSeveralLeaders',
      'StatemanagerWatchRestarts',
      'StatemanagerWorkqueueGrowing',
    ],
  );
  for (const a of alerts) {
    t.regex(a.for ?? '', /^[0-9]+[smh]$/, `${a.alert}: for`);
    t.true(['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''), `${a.alert}: severity ${a.labels?.severity}`);
    t.true((a.annotations?.summary ?? '').length > 10, `${a.alert}: summary`);
    t.true((a.annotations?.description ?? '').length > 40, `${a.alert}: description`);
    t.regex(`${a.annotations?.summary} ${a.annotations?.description}`, /\{\{ \$(labels\.\w+|value)/, `${a.alert}: annotations name the series or the value`);
    for (const sel of promqlRefs(a.expr).selectors) {
      t.regex(a.expr, new RegExp(`${sel.metric}\\{[^}]*job="statemanager"`), `${a.alert}: ${sel.metric} selects job="statemanager"`);
    }
  }
});

test('every alert has a promtool test where it fires and one where it stays quiet', (t) => {
  t.true(testFiles.length > 0, `test files in ${testsDir}`);
  const firing = new Set<string>();
  const quiet = new Set<string>();
  for (const f of testFiles) {
    const doc = parse(readFileSync(f, 'utf8')) as RuleTestFile;
    t.deepEqual(
      doc.rule_files.map((r) => relative(repoRoot, join(testsDir, r))),
      [relative(repoRoot, rulesFile)],
      `${relative(repoRoot, f)} tests the chart's rule file`,
    );
    for (const c of doc.tests) {
      for (const a of c.alert_rule_test ?? []) ((a.exp_alerts ?? []).length > 0 ? firing : quiet).add(a.alertname);
    }
  }
  for (const a of alerts) {
    t.true(firing.has(a.alert), `${a.alert} is tested firing`);
    t.true(quiet.has(a.alert), `${a.alert} is tested quiet`);
  }
});

test('the Kustomize components carry exactly the chart files (' + syncHint + ' after editing them)', (t) => {
  const copy = parse(readFileSync(componentRule, 'utf8')) as K8sObject & { spec: { groups: RuleGroup[] } };
  t.is(copy.kind, 'PrometheusRule');
  t.deepEqual(copy.spec.groups, groups, `components/prometheusrule/prometheusrule.yaml differs from files/statemanager.rules.yaml: ${syncHint}`);
  t.is(
    readFileSync(componentDashboard, 'utf8'),
    readFileSync(dashboardFile, 'utf8'),
    `components/grafana-dashboard/statemanager-dashboard.json differs from files/statemanager-dashboard.json: ${syncHint}`,
  );
});

// ---------------------------------------------------------------------------------------
// promtool

const promtool = findPromtool();
if (!promtool.ok) {
  const msg = `SKIPPED: promtool checks of the alerts — ${promtool.reason}`;
  console.warn(msg);
  if (toolsRequired) test('promtool is available (STATEMANAGER_REQUIRE_DEPLOY_TOOLS=1)', (t) => t.fail(msg));
  test.skip(`promtool check rules / test rules (${promtool.reason})`, () => undefined);
} else {
  const p = promtool;

  test('promtool check rules: the rule file and the Kustomize PrometheusRule', async (t) => {
    t.log(`using ${p.bin}: ${p.version}`);
    const r = await run(p.bin, ['check', 'rules', rulesFile]);
    t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
    t.regex(r.stdout, new RegExp(`SUCCESS: ${alerts.length} rules found`));
    const dir = tempDir('sm-promrules-');
    const copy = parse(readFileSync(componentRule, 'utf8')) as { spec: unknown };
    const f = join(dir, 'kustomize.rules.json');
    writeFileSync(f, JSON.stringify(copy.spec));
    const k = await run(p.bin, ['check', 'rules', f]);
    t.is(k.code, 0, `${k.stdout}\n${k.stderr}`);
  });

  test('promtool test rules: deploy/monitoring/tests', async (t) => {
    t.log(`using ${p.bin}: ${p.version}`);
    const r = await run(p.bin, ['test', 'rules', ...testFiles]);
    t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
    t.false(/FAILED/.test(r.stdout + r.stderr));
    t.log(`${testFiles.map((f) => relative(repoRoot, f)).join(', ')}: SUCCESS`);
  });
}

// ---------------------------------------------------------------------------------------
// The chart

const helm = findHelm();
if (!helm.ok) {
  console.warn(`SKIPPED: chart PrometheusRule and dashboard checks — ${helm.reason}`);
  test.skip(`chart PrometheusRule and dashboard (${helm.reason})`, () => undefined);
} else {
  const h = helm;
  const template = async (args: string[]): Promise<K8sObject[]> => {
    const r = await run(h.bin, ['template', 'sm', chartDir, '--namespace', 'statemanager', ...args], helmEnv);
    if (r.code !== 0) throw new Error(`helm template ${args.join(' ')} failed:\n${r.stderr}`);
    return parseManifests(r.stdout);
  };
  const both = ['--set', 'prometheusRule.enabled=true', '--set', 'grafanaDashboard.enabled=true'];
  const alertsOf = (objs: K8sObject[]): Rule[] => {
    const rules = byKind(objs, 'PrometheusRule');
    if (rules.length !== 1) throw new Error(`expected one PrometheusRule, found ${rules.length}`);
    return (rules[0]?.spec as { groups: RuleGroup[] }).groups.flatMap((g) => g.rules);
  };

  test('chart: neither the PrometheusRule nor the dashboard by default', async (t) => {
    const objs = await template([]);
    t.is(byKind(objs, 'PrometheusRule').length, 0);
    t.false(byKind(objs, 'ConfigMap').some((c) => c.metadata.labels?.grafana_dashboard !== undefined));
  });

  test('chart: PrometheusRule = the rule file for this release job; dashboard ConfigMap with the sidecar label', async (t) => {
    const objs = await template(both);
    t.deepEqual(await validateAll(objs), [], 'schema validation');
    assertNoNamespace(t, objs);
    assertSelectors(t, objs);
    const rule = one(t, objs, 'PrometheusRule');
    t.is(rule.metadata.labels?.['app.kubernetes.io/instance'], 'sm');
    const svc = one(t, objs, 'Service');
    const expected = JSON.parse(JSON.stringify(groups).replaceAll('job=\\"statemanager\\"', `job=\\"${svc.metadata.name}\\"`)) as RuleGroup[];
    t.deepEqual((rule.spec as { groups: RuleGroup[] }).groups, expected, 'the rule file, job="statemanager" -> the Service name (the ServiceMonitor job)');
    const cm = byKind(objs, 'ConfigMap').filter((c) => c.metadata.labels?.grafana_dashboard === '1');
    t.is(cm.length, 1, 'one dashboard ConfigMap labelled grafana_dashboard: "1"');
    t.deepEqual(JSON.parse(cm[0]?.data?.['statemanager.json'] ?? 'null'), dashboard, 'the dashboard JSON, unchanged');
    t.is(cm[0]?.metadata.labels?.['app.kubernetes.io/component'], 'monitoring');
    if (promtool.ok) {
      const f = join(tempDir('sm-promrules-'), 'rendered.rules.json');
      writeFileSync(f, JSON.stringify(rule.spec));
      const r = await run(promtool.bin, ['check', 'rules', f]);
      t.is(r.code, 0, `promtool check rules on the rendered PrometheusRule:\n${r.stdout}\n${r.stderr}`);
    }
  });

  test('chart: prometheusRule labels, additionalRuleLabels, job, disabledAlerts; grafanaDashboard labels and annotations', async (t) => {
    const objs = await template([
      ...both,
      '--set', 'prometheusRule.labels.release=kube-prometheus-stack',
      '--set', 'prometheusRule.additionalRuleLabels.team=edge',
      '--set', 'prometheusRule.additionalRuleLabels.severity=page',
      '--set', 'prometheusRule.job=edge-statemanager',
      '--set', 'prometheusRule.disabledAlerts={StatemanagerInvalidInput,StatemanagerWatchRestarts}',
      '--set', 'grafanaDashboard.labels.grafana_dashboard=yes',
      '--set', 'grafanaDashboard.annotations.grafana_folder=Edge',
    ]);
    t.deepEqual(await validateAll(objs), []);
    const rule = one(t, objs, 'PrometheusRule');
    t.is(rule.metadata.labels?.release, 'kube-prometheus-stack');
    const rendered = alertsOf(objs);
    t.deepEqual(
      rendered.map((r) => r.alert),
      alerts.map((a) => a.alert).filter((a) => a !== 'StatemanagerInvalidInput' && a !== 'StatemanagerWatchRestarts'),
    );
    for (const r of rendered) {
      t.is(r.labels?.team, 'edge', `${r.alert}: additional label`);
      t.is(r.labels?.severity, alerts.find((a) => a.alert === r.alert)?.labels?.severity, `${r.alert}: its own severity wins`);
      t.true(r.expr.includes('job="edge-statemanager"') && !r.expr.includes('job="statemanager"'), `${r.alert}: ${r.expr}`);
    }
    const cm = byKind(objs, 'ConfigMap').find((c) => c.data?.['statemanager.json'] !== undefined);
    t.is(cm?.metadata.labels?.grafana_dashboard, 'yes');
    t.is(cm?.metadata.annotations?.grafana_folder, 'Edge');
  });

  test('chart: no leader alerts without leader election, no StatemanagerAbsent at replicaCount 0', async (t) => {
    const solo = alertsOf(await template([...both, '--set', 'replicaCount=1', '--set', 'leaderElection.enabled=false'])).map((r) => r.alert);
    t.false(solo.includes('StatemanagerNoLeader'));
    t.false(solo.includes('StatemanagerSeveralLeaders'));
    t.true(solo.includes('StatemanagerAbsent'));
    t.true(solo.includes('StatemanagerWorkqueueGrowing'), 'the queue alert also works without a leader');
    const none = alertsOf(await template([...both, '--set', 'replicaCount=0'])).map((r) => r.alert);
    t.false(none.includes('StatemanagerAbsent'));
    t.true(none.includes('StatemanagerNoLeader'));
  });

  test('chart: values.schema.json refuses wrong monitoring values', async (t) => {
    for (const args of [
      ['--set', 'prometheusRule.enabled=yes'],
      ['--set', 'prometheusRule.disabledAlerts={NoSuchThing}'],
      ['--set', 'prometheusRule.job=a"b'],
      ['--set', 'grafanaDashboard.label=x'],
      ['--set', 'prometheusRule.extra=1'],
    ]) {
      const r = await run(h.bin, ['template', 'sm', chartDir, ...args], helmEnv);
      t.not(r.code, 0, `${args.join(' ')} is refused`);
    }
  });
}

// ---------------------------------------------------------------------------------------
// The Kustomize components

const kubectl = findKubectl();
if (!kubectl.ok) {
  console.warn(`SKIPPED: Kustomize prometheusrule and grafana-dashboard components — ${kubectl.reason}`);
  test.skip(`kustomize monitoring components (${kubectl.reason})`, () => undefined);
} else {
  const k = kubectl;
  test('kustomize: components prometheusrule and grafana-dashboard build with an overlay; the alerts select its Service job', async (t) => {
    const dir = tempDir('sm-kustomize-');
    const rel = (p: string) => relative(dir, p);
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ${rel(join(kustomizeDir, 'overlays/prod'))}
components:
  - ${rel(join(kustomizeDir, 'components/servicemonitor'))}
  - ${rel(join(kustomizeDir, 'components/prometheusrule'))}
  - ${rel(join(kustomizeDir, 'components/grafana-dashboard'))}
`,
    );
    const r = await run(k.bin, ['kustomize', dir]);
    t.is(r.code, 0, r.stderr);
    const objs = parseManifests(r.stdout);
    t.deepEqual(await validateAll(objs), [], 'schema validation');
    assertNoNamespace(t, objs);
    assertSelectors(t, objs);
    const rule = one(t, objs, 'PrometheusRule');
    t.deepEqual((rule.spec as { groups: RuleGroup[] }).groups, groups);
    const svc = one(t, objs, 'Service');
    t.is(svc.metadata.name, 'statemanager', 'job="statemanager" is the Service name, the job the ServiceMonitor gives');
    const cm = byKind(objs, 'ConfigMap').find((c) => c.metadata.name === 'statemanager-dashboard');
    t.is(cm?.metadata.labels?.grafana_dashboard, '1');
    t.is(cm?.metadata.labels?.['app.kubernetes.io/component'], 'monitoring');
    t.deepEqual(JSON.parse(cm?.data?.['statemanager.json'] ?? 'null'), dashboard);
    for (const o of [rule, cm]) t.is(o?.metadata.labels?.['app.kubernetes.io/name'], 'statemanager');
  });
}
