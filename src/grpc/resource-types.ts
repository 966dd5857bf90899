// The wire spellings shared by the server, its validation and the CLI's client: ResourceType
// names for the three kinds statemanager manages, and epoch-nanosecond strings (int64 as text).
import type { ResourceType } from '../generated/statemanager/ResourceType.js';
import type { ResourceKind } from '../../domain/states.js';

export const RESOURCE_TYPE_OF: Readonly<Record<ResourceKind, ResourceType>> = {
  scenario: 'RESOURCE_TYPE_SCENARIO',
  package: 'RESOURCE_TYPE_PACKAGE',
  model: 'RESOURCE_TYPE_MODEL',
};

/** Types that exist on the wire but are not statemanager's. */
export const UNMANAGED_RESOURCE_TYPES: ReadonlySet<string> = new Set(['RESOURCE_TYPE_VOLUME', 'RESOURCE_TYPE_NETWORK', 'RESOURCE_TYPE_NODE']);

/** The kind a ResourceType names, or undefined (unspecified, unmanaged, or an unknown number). */
export function kindOfResourceType(type: unknown): ResourceKind | undefined {
  if (type === 'RESOURCE_TYPE_SCENARIO') return 'scenario';
  if (type === 'RESOURCE_TYPE_PACKAGE') return 'package';
  if (type === 'RESOURCE_TYPE_MODEL') return 'model';
  return undefined;
}

export function msToNs(ms: number): string {
  return (BigInt(Math.round(ms)) * 1_000_000n).toString();
}

/** Epoch ms from an int64 nanosecond string; undefined for 0, empty or not a number. */
export function nsToMs(ns: string): number | undefined {
  if (!/^\d+$/.test(ns) || /^0+$/.test(ns)) return undefined;
  return Number(BigInt(ns) / 1_000_000n);
}
