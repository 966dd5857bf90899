// Copies the alerts and the dashboard from the Helm chart (their one source of truth) into the
// Kustomize components, which cannot read files outside their own directory:
//   deploy/helm/statemanager/files/statemanager.rules.yaml
//     -> deploy/kustomize/components/prometheusrule/prometheusrule.yaml (a PrometheusRule)
//   deploy/helm/statemanager/files/statemanager-dashboard.json
//     -> deploy/kustomize/components/grafana-dashboard/statemanager-dashboard.json
// Run `node deploy/monitoring/sync.mjs` after editing either; test/deploy/monitoring.test.ts
// fails while the copies differ.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const files = join(root, 'deploy/helm/statemanager/files');
const components = join(root, 'deploy/kustomize/components');

export function prometheusRuleText(rulesText) {
  const lines = rulesText.split('\n');
  const start = lines.findIndex((l) => l.startsWith('groups:'));
  if (start < 0) throw new Error('statemanager.rules.yaml has no top-level groups:');
  const body = lines
    .slice(start)
    .map((l) => (l === '' ? l : `  ${l}`))
    .join('\n');
  return `# Generated from deploy/helm/statemanager/files/statemanager.rules.yaml by
# \`node deploy/monitoring/sync.mjs\`: edit that file, not this one.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: statemanager
  labels:
    app.kubernetes.io/name: statemanager
    app.kubernetes.io/component: monitoring
    app.kubernetes.io/part-of: statemanager
    app.kubernetes.io/managed-by: kustomize
    app.kubernetes.io/version: "0.1.0"
spec:
${body.replace(/\n*$/, '\n')}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rules = readFileSync(join(files, 'statemanager.rules.yaml'), 'utf8');
  writeFileSync(join(components, 'prometheusrule/prometheusrule.yaml'), prometheusRuleText(rules));
  writeFileSync(join(components, 'grafana-dashboard/statemanager-dashboard.json'), readFileSync(join(files, 'statemanager-dashboard.json')));
  console.log('deploy/kustomize/components/{prometheusrule,grafana-dashboard} updated');
}
