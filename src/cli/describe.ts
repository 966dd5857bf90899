// `statemanager describe package|model NAME`: the tree package → models → containers, each with
// its state, its last transitions, and the package's reconcile request. Over gRPC the API
// serves a resource's state, generation, health and history only: the rest needs etcd.
import { Argument, Option, type Command } from 'commander';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import type { OffloadingRecord } from '../offloading/record.js';
import type { ResourceKind } from '../../domain/states.js';
import { fleetOf, openSource } from './connect.js';
import { Context } from './context.js';
import { UsageError } from './errors.js';
import type { CliIO } from './io.js';
import { alignRows, formatTransition, NONE, paintState, relativeTime, renderTree, type TreeNode } from './format.js';
import type { ContainerView, EtcdReader, RequestView } from './etcd-reader.js';
import { notFound, parseKind } from './kinds.js';
import type { StateSource, Transition } from './source.js';

export interface ModelDescription {
  kind: 'model';
  name: string;
  state: string | null;
  since: string | null;
  packages: string[];
  containers: ContainerView[];
  /** The last transitions, oldest first. */
  history: HistoryEntry[];
  /** How many transitions are recorded in all. */
  historyTotal: number;
  /** The last TriggerOffloading requests for the model, oldest first. */
  offloading: OffloadingRecord[];
  offloadingTotal: number;
}

export interface PackageDescription {
  kind: 'package';
  name: string;
  state: string | null;
  since: string | null;
  definition: { models: string[] } | { error: string } | null;
  /** The scenario named in reconcile requests: the first by name targeting the package. */
  scenario: { name: string; state: string | null } | null;
  reconcileRequest: (RequestView & { status: 'pending' | 'delivered' | 'unreadable' }) | null;
  history: HistoryEntry[];
  historyTotal: number;
  models: ModelDescription[];
}

/** `describe` over gRPC: what the API serves of a package or model. */
export interface ApiDescription {
  kind: 'package' | 'model';
  name: string;
  state: string | null;
  since: string | null;
  /** The state key's version: one more with every change. */
  generation: number | null;
  /** The etcd revision the server read the state at. */
  revision: number | null;
  health: { healthy: boolean; message: string } | null;
  history: Transition[];
  historyTotal: number;
  /** Why the server could not read the history (etcd unreachable); null when it could. */
  historyUnavailable: string | null;
  /** What the gRPC API does not serve (read etcd, without --server, for it). */
  notServed: string[];
}

/** What `describe` shows from etcd and the gRPC API has no call for. */
export const NOT_SERVED: Record<'package' | 'model', string[]> = {
  package: ['definition', 'models', 'containers', 'scenario', 'reconcile request'],
  model: ['packages', 'containers', 'offloading requests'],
};

export function register(program: Command, io: CliIO): void {
  program
    .command('describe')
    .description('show a package (or model) with its models, containers, history and reconcile request')
    .addArgument(new Argument('<kind>', 'package or model').choices(['package', 'packages', 'pkg', 'model', 'models']))
    .argument('<name>', 'the package or model')
    .addOption(new Option('--history <n>', 'recorded transitions to show per resource').default('5'))
    .action(async (kindArg: string, name: string, opts: { history: string }, cmd: Command) => {
      const ctx = Context.of(cmd, io);
      const limit = Number(opts.history);
      if (!Number.isInteger(limit) || limit < 0) throw new UsageError(`--history "${opts.history}" is not a whole number`);
      try {
        const kind = parseKind(kindArg, ['package', 'model'])! as 'package' | 'model';
        const source = openSource(ctx);
        const etcd = fleetOf(source);
        if (etcd === undefined) {
          const d = await describeOverApi(source, kind, name, limit);
          ctx.out.emit(d, () => renderTree(apiTree(d, ctx.now(), ctx.out.colour)));
          return;
        }
        const reader = etcd.reader;
        const d = kind === 'package' ? await describePackage(reader, name, limit) : await describeModel(reader, name, limit);
        ctx.out.emit(d, () => renderTree(d.kind === 'package' ? packageTree(d, ctx.now(), ctx.out.colour) : modelTree(d, ctx.now(), ctx.out.colour)));
      } finally {
        ctx.close();
      }
    });
}

async function historyOf(reader: EtcdReader, kind: ResourceKind, name: string, limit: number) {
  const all = await reader.history(kind, name);
  return { history: limit === 0 ? [] : all.slice(-limit), historyTotal: all.length, since: all[all.length - 1]?.at ?? null };
}

export async function describeOverApi(source: StateSource, kind: 'package' | 'model', name: string, limit: number): Promise<ApiDescription> {
  const d = await source.detail(kind, name);
  if (d === undefined) throw notFound(kind, name);
  return {
    kind,
    name,
    state: d.state,
    since: d.since,
    generation: d.generation ?? null,
    revision: d.revision ?? null,
    health: d.health ?? null,
    history: limit === 0 ? [] : d.history.slice(-limit),
    historyTotal: d.history.length,
    historyUnavailable: d.historyUnavailable ?? null,
    notServed: NOT_SERVED[kind],
  };
}

export async function describeModel(reader: EtcdReader, name: string, limit: number, mustExist = true): Promise<ModelDescription> {
  if (mustExist) await reader.mustExist('model', name);
  const state = (await reader.states('model')).get(name)?.state ?? null;
  const containers = (await reader.containersByModel()).get(name) ?? [];
  const h = await historyOf(reader, 'model', name, limit);
  const offloading = await reader.offloading(name);
  return {
    kind: 'model',
    name,
    state,
    since: h.since,
    packages: (await reader.modelPackages()).get(name) ?? [],
    containers: [...containers].sort((a, b) => (a.node === b.node ? (a.id < b.id ? -1 : 1) : a.node < b.node ? -1 : 1)),
    history: h.history,
    historyTotal: h.historyTotal,
    offloading: limit === 0 ? [] : offloading.slice(-limit),
    offloadingTotal: offloading.length,
  };
}

export async function describePackage(reader: EtcdReader, name: string, limit: number): Promise<PackageDescription> {
  await reader.mustExist('package', name);
  const def = (await reader.packageDefs()).get(name);
  const state = (await reader.states('package')).get(name)?.state ?? null;
  const scenarioName = await reader.scenarioFor(name);
  const scenarioState = scenarioName === undefined ? null : ((await reader.states('scenario')).get(scenarioName)?.state ?? null);
  const req = await reader.reconcileRequest(name);
  const h = await historyOf(reader, 'package', name, limit);
  const models: ModelDescription[] = [];
  for (const m of def?.ok ? def.models : []) models.push(await describeModel(reader, m, limit, false));
  return {
    kind: 'package',
    name,
    state,
    since: h.since,
    definition: def === undefined ? null : def.ok ? { models: def.models } : { error: def.error },
    scenario: scenarioName === undefined ? null : { name: scenarioName, state: scenarioState },
    reconcileRequest: req === undefined ? null : { ...req, status: !req.valid ? 'unreadable' : req.deliveries > 0 ? 'delivered' : 'pending' },
    history: h.history,
    historyTotal: h.historyTotal,
    models,
  };
}

// --- rendering (pure) -------------------------------------------------------------------------

function heading(kind: string, name: string, state: string | null, since: string | null, now: number, colour: boolean, historyUnavailable: string | null = null): string {
  const s = state === null ? NONE : paintState(state, colour);
  const when = historyUnavailable !== null ? 'since unknown (history unavailable)' : since === null ? 'no recorded transition' : `since ${relativeTime(since, now)} (${since})`;
  return `${kind}/${name}   ${s}   ${when}`;
}

/** "history (last 2 of 7):" and one aligned line per transition. */
export function historyLines(history: readonly Transition[], total: number, now: number, colour: boolean): string[] {
  if (total === 0) return ['history: none recorded'];
  if (history.length === 0) return [];
  const title = history.length < total ? `history (last ${history.length} of ${total}):` : 'history:';
  const rows = history.map((h) => [
    `  ${relativeTime(h.at, now)}`,
    formatTransition(h.from, h.to, colour),
    h.drawn === false ? `${h.reason} (not a drawn edge)` : h.reason,
    // A requested change shows who was authenticated beside the source it claimed.
    h.identity !== undefined && h.identity !== h.source ? `${h.source} (as ${h.identity})` : h.source,
  ]);
  return [title, ...alignRows(rows)];
}

/** The reconcile request in one line: pending or delivered, deliveries, last delivery, scenario. */
export function requestLine(req: PackageDescription['reconcileRequest'], now: number): string {
  if (req === null) return 'reconcile request: none';
  if (!req.valid) return `reconcile request: unreadable value ${JSON.stringify(req.raw.slice(0, 60))}`;
  const parts = [`state ${req.state}`, `requested ${relativeTime(req.requestedAt, now)}`];
  if (req.deliveries > 0) {
    parts.push(`${req.deliveries} ${req.deliveries === 1 ? 'delivery' : 'deliveries'}`);
    if (req.lastDeliveredAt) parts.push(`last delivered ${relativeTime(req.lastDeliveredAt, now)}`);
    if (req.scenario) parts.push(`scenario ${req.scenario}`);
  } else {
    parts.push('not delivered yet');
  }
  if (req.failures) parts.push(`${req.failures} failed ${req.failures === 1 ? 'call' : 'calls'}${req.lastError ? `, last error: ${req.lastError}` : ''}`);
  return `reconcile request: ${req.status} (${parts.join(', ')})`;
}

/** "offloading requests (last 2 of 7):" and one aligned line per request: when, move, outcome, caller. */
export function offloadingLines(records: readonly OffloadingRecord[], total: number, now: number): string[] {
  if (total === 0 || records.length === 0) return [];
  const title = records.length < total ? `offloading requests (last ${records.length} of ${total}):` : 'offloading requests:';
  const rows = records.map((r) => [
    `  ${relativeTime(r.at, now)}`,
    `${r.source} -> ${r.target}`,
    r.outcome,
    `by ${r.identity}${r.callers > 1 ? ` (+${r.callers - 1} identical)` : ''}`,
    r.policy ? `policy ${r.policy}` : '',
    r.transitionId,
    r.message,
  ]);
  return [title, ...alignRows(rows)];
}

function containerNodes(containers: ContainerView[], colour: boolean): TreeNode[] {
  const rows = containers.map((c) => [
    `${c.node}/${c.id}`,
    paintState(c.status, colour),
    c.names[0] ?? '',
    c.status !== c.reported ? `(node ${c.node} is ${c.nodeStatus}; reported ${c.reported})` : '',
  ]);
  return alignRows(rows).map((label) => ({ label }));
}

export function modelTree(d: ModelDescription, now: number, colour: boolean): TreeNode {
  const packages = d.packages.length > 0 ? d.packages.join(', ') : 'none (no package lists this model)';
  return {
    label: heading('model', d.name, d.state, d.since, now, colour),
    lines: [
      `packages: ${packages}`,
      ...(d.containers.length === 0 ? ['containers: none'] : []),
      ...historyLines(d.history, d.historyTotal, now, colour),
      ...offloadingLines(d.offloading, d.offloadingTotal, now),
    ],
    children: containerNodes(d.containers, colour),
  };
}

/** Without the packages line: under a package it is the parent. */
function modelUnderPackage(d: ModelDescription, now: number, colour: boolean): TreeNode {
  const others = d.packages.length > 1 ? [`also in: ${d.packages.join(', ')}`] : [];
  return {
    label: heading('model', d.name, d.state, d.since, now, colour),
    lines: [
      ...others,
      ...(d.containers.length === 0 ? ['containers: none'] : []),
      ...historyLines(d.history, d.historyTotal, now, colour),
      ...offloadingLines(d.offloading, d.offloadingTotal, now),
    ],
    children: containerNodes(d.containers, colour),
  };
}

/** The heading, generation, health and history; then what the API does not serve. */
export function apiTree(d: ApiDescription, now: number, colour: boolean): TreeNode {
  const generation = d.generation === null ? [] : [`generation: ${d.generation}${d.revision === null ? '' : ` (read at revision ${d.revision})`}`];
  const health = d.health === null ? [] : [`health: ${d.health.healthy ? 'healthy' : 'unhealthy'}${d.health.message ? ` (${d.health.message})` : ''}`];
  return {
    label: heading(d.kind, d.name, d.state, d.since, now, colour, d.historyUnavailable),
    lines: [
      ...generation,
      ...health,
      // Found by black-box probing: with etcd away this said "none recorded" and exited 0.
      ...(d.historyUnavailable !== null ? [`history: unavailable (${d.historyUnavailable})`] : historyLines(d.history, d.historyTotal, now, colour)),
      `not served over gRPC: ${d.notServed.join(', ')} (read etcd, without --server, for those)`,
    ],
  };
}

export function packageTree(d: PackageDescription, now: number, colour: boolean): TreeNode {
  const definition =
    d.definition === null
      ? 'definition: missing (a leftover state; the controller removes it)'
      : 'error' in d.definition
        ? `definition: invalid (${d.definition.error})`
        : `definition: ${d.definition.models.length} ${d.definition.models.length === 1 ? 'model' : 'models'}`;
  const scenario =
    d.scenario === null
      ? `scenario: none (reconcile requests name the package itself)`
      : `scenario: ${d.scenario.name} (${d.scenario.state === null ? 'no state' : paintState(d.scenario.state, colour)})`;
  return {
    label: heading('package', d.name, d.state, d.since, now, colour),
    lines: [definition, scenario, requestLine(d.reconcileRequest, now), ...historyLines(d.history, d.historyTotal, now, colour)],
    children: d.models.map((m) => modelUnderPackage(m, now, colour)),
  };
}
