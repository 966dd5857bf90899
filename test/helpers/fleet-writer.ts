// Writes what node agents and the API server would: containers, package and scenario
// definitions, node status — under a test's own key prefix.
import type { Etcd3 } from 'etcd3';
import { KeyLayout } from '../../domain/keys.js';

export class FleetWriter {
  readonly keys: KeyLayout;

  constructor(
    readonly client: Etcd3,
    readonly prefix: string,
  ) {
    this.keys = new KeyLayout(prefix);
  }

  async container(node: string, id: string, model: string, status: string): Promise<number> {
    const value = JSON.stringify({
      id,
      names: [`${model}-${id}`],
      image: 'registry.local/app:1',
      state: { Status: status },
      config: {},
      annotation: { 'io.pullpiri.annotations.model': model },
    });
    const res = await this.client.put(this.keys.containerKey(node, id)).value(value).exec();
    return Number(res.header.revision);
  }

  async removeContainer(node: string, id: string): Promise<void> {
    await this.client.delete().key(this.keys.containerKey(node, id));
  }

  async packageDef(name: string, models: string[]): Promise<void> {
    const yaml = [
      'apiVersion: v1',
      'kind: Package',
      'metadata:',
      `  name: ${name}`,
      'spec:',
      '  pattern:',
      '    - type: plain',
      '  models:',
      ...models.flatMap((m) => [`    - name: ${m}`, '      node: n1']),
    ].join('\n');
    await this.client.put(this.keys.packageDefKey(name)).value(models.length ? yaml : yaml.replace('  models:', '  models: []'));
  }

  async scenarioDef(name: string, target: string): Promise<void> {
    await this.client
      .put(this.keys.scenarioDefKey(name))
      .value(`apiVersion: v1\nkind: Scenario\nmetadata:\n  name: ${name}\nspec:\n  condition:\n  action: update\n  target: ${target}\n`);
  }

  async nodeStatus(node: string, status: string): Promise<void> {
    await this.client.put(this.keys.nodeStatusKey(node)).value(status);
  }

  async state(kind: 'model' | 'package' | 'scenario', name: string): Promise<string | null> {
    return this.client.get(this.keys.stateKey(kind, name)).string();
  }

  async states(kind: 'model' | 'package'): Promise<Record<string, string>> {
    const all = await this.client.getAll().prefix(this.keys.statePrefix(kind)).strings();
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(all)) {
      const name = this.keys.parseStateKey(kind, k);
      if (name !== undefined) out[name] = v;
    }
    return out;
  }
}
