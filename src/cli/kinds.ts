// Resource kinds as the user types them, a missing resource as the user reads it, and names in
// etcd's order.
import type { ResourceKind } from '../../domain/states.js';
import { CliError } from './errors.js';

/** "packages", "pkg", "Model" … → the resource kind; undefined for anything else. */
export function parseKind(text: string, allowed: readonly ResourceKind[] = ['package', 'model', 'scenario']): ResourceKind | undefined {
  const t = text.trim().toLowerCase();
  const kind: ResourceKind | undefined =
    t === 'package' || t === 'packages' || t === 'pkg' || t === 'pkgs'
      ? 'package'
      : t === 'model' || t === 'models'
        ? 'model'
        : t === 'scenario' || t === 'scenarios'
          ? 'scenario'
          : undefined;
  return kind !== undefined && allowed.includes(kind) ? kind : undefined;
}

export function notFound(kind: ResourceKind, name: string): CliError {
  return new CliError(`${kind} "${name}" not found`);
}

/** Byte order, as etcd sorts keys (not locale order). */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
