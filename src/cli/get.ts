// `statemanager get packages|models|scenarios [NAME]`: one row per resource with its state,
// since when (the last recorded transition) and, from etcd, its children by state. Over gRPC
// the API has no definitions or containers: the rows have the state, since and generation.
import { Argument, type Command } from 'commander';
import { CONTAINER_STATUSES, MODEL_STATES, type ResourceKind } from '../../domain/states.js';
import { fleetOf, openSource } from './connect.js';
import { Context } from './context.js';
import type { CliIO } from './io.js';
import { countBy, countsObject, formatCounts, formatTable, NONE, paintState, relativeTime } from './format.js';
import { notFound, parseKind } from './kinds.js';
import type { ResourceSummary } from './source.js';

/** A model without a stored state yet, in counts. */
export const NO_STATE = NONE;

export interface PackageRow {
  name: string;
  state: string | null;
  since: string | null;
  defined: boolean;
  models: Record<string, number>;
}

export interface ModelRow {
  name: string;
  state: string | null;
  since: string | null;
  packages: string[];
  containers: Record<string, number>;
}

export interface ScenarioRow {
  name: string;
  state: string | null;
  since: string | null;
  defined: boolean;
  target: string | null;
}

/** A row over gRPC: what the API serves of every kind. */
export interface ApiRow {
  name: string;
  state: string | null;
  since: string | null;
  /** The state key's version: one more with every change. */
  generation: number | null;
}

export function register(program: Command, io: CliIO): void {
  program
    .command('get')
    .description('list packages, models or scenarios with their state')
    .addArgument(
      new Argument('<resource>', 'packages, models or scenarios').choices([
        'packages',
        'package',
        'pkg',
        'models',
        'model',
        'scenarios',
        'scenario',
      ]),
    )
    .argument('[name]', 'only this one')
    .action(async (resource: string, name: string | undefined, _opts: unknown, cmd: Command) => {
      const ctx = Context.of(cmd, io);
      try {
        await get(ctx, parseKind(resource)!, name);
      } finally {
        ctx.close();
      }
    });
}

export async function get(ctx: Context, kind: ResourceKind, name: string | undefined): Promise<void> {
  const source = openSource(ctx);
  let summaries: ResourceSummary[];
  if (name !== undefined) {
    const one = await source.get(kind, name);
    if (one === undefined) throw notFound(kind, name);
    summaries = [one];
  } else {
    summaries = await source.list(kind);
  }
  const names = summaries.map((s) => s.name);
  const byName = new Map(summaries.map((s) => [s.name, s]));
  const base = (n: string) => ({ name: n, state: byName.get(n)?.state ?? null, since: byName.get(n)?.since ?? null });
  const now = ctx.now();
  const c = ctx.out.colour;
  const stateCell = (s: string | null): string => (s === null ? NONE : paintState(s, c));
  const emit = <T>(rows: T[], table: () => string): void => {
    ctx.out.emit(name !== undefined ? rows[0] : rows, () => (rows.length === 0 ? '' : table()));
    if (rows.length === 0 && ctx.out.format === 'table') ctx.io.stderr.write(`no ${kind}s found\n`);
  };

  const etcd = fleetOf(source);
  if (etcd === undefined) {
    // The same columns as from etcd, without those that need definitions or containers.
    const rows: ApiRow[] = summaries.map((s) => ({ ...base(s.name), generation: s.generation ?? null }));
    emit(rows, () =>
      formatTable(
        ['NAME', 'STATE', 'SINCE'],
        rows.map((r) => [r.name, stateCell(r.state), relativeTime(r.since, now)]),
      ),
    );
    return;
  }
  const reader = etcd.reader;

  if (kind === 'package') {
    const defs = await reader.packageDefs();
    const modelStates = await reader.states('model');
    const counts = new Map<string, Map<string, number>>();
    const rows: PackageRow[] = names.map((n) => {
      const def = defs.get(n);
      const models = def?.ok ? def.models : [];
      const byState = countBy(models.map((m) => modelStates.get(m)?.state ?? NO_STATE));
      counts.set(n, byState);
      return { ...base(n), defined: def !== undefined, models: countsObject(byState, [...MODEL_STATES, NO_STATE]) };
    });
    emit(rows, () =>
      formatTable(
        ['NAME', 'STATE', 'SINCE', 'MODELS'],
        rows.map((r) => [
          r.name,
          stateCell(r.state),
          relativeTime(r.since, now),
          formatCounts(counts.get(r.name) ?? new Map(), [...MODEL_STATES, NO_STATE], c),
        ]),
      ),
    );
    return;
  }

  if (kind === 'model') {
    const packages = await reader.modelPackages();
    const containers = await reader.containersByModel();
    const counts = new Map<string, Map<string, number>>();
    const rows: ModelRow[] = names.map((n) => {
      const byStatus = countBy((containers.get(n) ?? []).map((x) => x.status));
      counts.set(n, byStatus);
      return { ...base(n), packages: packages.get(n) ?? [], containers: countsObject(byStatus, CONTAINER_STATUSES) };
    });
    emit(rows, () =>
      formatTable(
        ['NAME', 'STATE', 'SINCE', 'CONTAINERS', 'PACKAGES'],
        rows.map((r) => [
          r.name,
          stateCell(r.state),
          relativeTime(r.since, now),
          formatCounts(counts.get(r.name) ?? new Map(), CONTAINER_STATUSES, c),
          r.packages.length > 0 ? r.packages.join(',') : NONE,
        ]),
      ),
    );
    return;
  }

  const defs = await reader.scenarioDefs();
  const rows: ScenarioRow[] = names.map((n) => {
    const def = defs.get(n);
    return { ...base(n), defined: def !== undefined, target: def?.ok ? def.target : null };
  });
  emit(rows, () =>
    formatTable(
      ['NAME', 'STATE', 'SINCE', 'TARGET'],
      rows.map((r) => [
        r.name,
        stateCell(r.state),
        relativeTime(r.since, now),
        r.target ?? NONE,
      ]),
    ),
  );
}
