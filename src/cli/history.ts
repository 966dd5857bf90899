// `statemanager history KIND NAME`: the recorded transitions of one resource, oldest first.
import { Argument, type Command } from 'commander';
import { openSource } from './connect.js';
import { Context } from './context.js';
import type { CliIO } from './io.js';
import { formatTable, formatTransition, relativeTime } from './format.js';
import { notFound, parseKind } from './kinds.js';
import type { Transition } from './source.js';

export function register(program: Command, io: CliIO): void {
  program
    .command('history')
    .description('the recorded state transitions of a package, model or scenario, oldest first')
    .addArgument(
      new Argument('<kind>', 'package, model or scenario').choices(['package', 'packages', 'pkg', 'model', 'models', 'scenario', 'scenarios']),
    )
    .argument('<name>', 'the resource')
    .action(async (kindArg: string, name: string, _opts: unknown, cmd: Command) => {
      const ctx = Context.of(cmd, io);
      try {
        const kind = parseKind(kindArg)!;
        const entries = await openSource(ctx).history(kind, name);
        if (entries === undefined) throw notFound(kind, name);
        ctx.out.emit(entries, () => historyTable(entries, ctx.now(), ctx.out.colour));
        if (entries.length === 0 && ctx.out.format === 'table') io.stderr.write(`no recorded transitions for ${kind}/${name}\n`);
      } finally {
        ctx.close();
      }
    });
}

/**
 * TIME (ISO and age), FROM → TO, REASON, SOURCE, and IDENTITY (who was authenticated as asking)
 * when some entry is a requested change that recorded one; empty when there is nothing recorded.
 */
export function historyTable(entries: readonly Transition[], now: number, colour: boolean): string {
  if (entries.length === 0) return '';
  const identities = entries.some((e) => e.identity !== undefined);
  return formatTable(
    ['TIME', 'AGE', 'TRANSITION', 'REASON', 'SOURCE', ...(identities ? ['IDENTITY'] : [])],
    entries.map((e) => [
      e.at,
      relativeTime(e.at, now),
      formatTransition(e.from, e.to, colour),
      e.drawn === false ? `${e.reason} (not a drawn edge)` : e.reason,
      e.source,
      ...(identities ? [e.identity ?? '-'] : []),
    ]),
  );
}
