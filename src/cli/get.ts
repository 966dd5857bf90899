// `statemanager get packages|models|scenarios [NAME]`: one row per resource with its state,
// since when (the last recorded transition) and its children by state.
import { Argument, type Command } from 'commander';
import { CONTAINER_STATUSES, MODEL_STATES, type ResourceKind } from '../../reconcilers/states.js';
import { Context, type CliIO } from './context.js';
import { countBy, countsObject, formatCounts, formatTable, NONE, paintState, relativeTime } from './format.js';
import { notFound, parseKind, Reader } from './read.js';

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
  const reader = new Reader(ctx);
  let names = await reader.names(kind);
  if (name !== undefined) {
    if (!names.includes(name)) throw notFound(kind, name);
    names = [name];
  }
  const states = await reader.states(kind);
  const last = await reader.lastTransitions(kind, names);
  const base = (n: string) => ({ name: n, state: states.get(n)?.state ?? null, since: last.get(n)?.at ?? null });
  const now = ctx.now();
  const c = ctx.colour;
  const stateCell = (s: string | null): string => (s === null ? NONE : paintState(s, c));
  const emit = <T>(rows: T[], table: () => string): void => {
    ctx.emit(name !== undefined ? rows[0] : rows, () => (rows.length === 0 ? '' : table()));
    if (rows.length === 0 && ctx.output === 'table') ctx.io.stderr.write(`no ${kind}s found\n`);
  };

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
