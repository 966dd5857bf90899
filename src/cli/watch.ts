// `statemanager watch [KIND [NAME]]`: state transitions as they happen, one line each. From etcd,
// the history keys the controller writes with every state change; over gRPC, the server's
// stream of state changes, resumed after a dropped connection (see grpc-watch.ts).
import { Argument, Option, type Command } from 'commander';
import type { ResourceKind } from '../../domain/states.js';
import { openSource } from './connect.js';
import { Context } from './context.js';
import { CliError, UsageError } from './errors.js';
import type { CliIO } from './io.js';
import { formatDuration, formatTransition, printable } from './format.js';
import { parseKind } from './kinds.js';
import type { StateSource, WatchView, Watching } from './source.js';

export function register(program: Command, io: CliIO): void {
  program
    .command('watch')
    .description('stream state transitions as they happen (Ctrl-C to stop)')
    .addArgument(
      new Argument('[kind]', 'only packages, models or scenarios').choices(['package', 'packages', 'pkg', 'model', 'models', 'scenario', 'scenarios']),
    )
    .argument('[name]', 'only this resource')
    .addOption(new Option('--count <n>', 'exit after this many transitions'))
    .addHelpText(
      'after',
      '\nWith --timeout, watch stops after that long (exit 1 if --count was not reached); requests\nkeep the default 3s deadline. With --server, a dropped connection is resumed from the last\nchange printed.',
    )
    .action(async (kindArg: string | undefined, name: string | undefined, opts: { count?: string }, cmd: Command) => {
      const ctx = Context.of(cmd, io, true);
      let count: number | undefined;
      if (opts.count !== undefined) {
        count = Number(opts.count);
        if (!Number.isInteger(count) || count < 1) throw new UsageError(`--count "${opts.count}" is not a positive whole number`);
      }
      try {
        await watch(ctx, openSource(ctx), kindArg === undefined ? undefined : parseKind(kindArg), name, count);
      } finally {
        ctx.close();
      }
    });
}

/** `time kind/name from → to (reason)`; a deleted state goes to "(deleted)". */
export function watchLine(e: WatchView, colour: boolean): string {
  const reason = e.reason === undefined || e.reason === '' ? '' : ` (${e.reason})`;
  return printable(`${e.at}  ${e.kind}/${e.name}  ${formatTransition(e.from, e.to ?? '(deleted)', colour)}${reason}`);
}

async function watch(ctx: Context, source: StateSource, kind: ResourceKind | undefined, name: string | undefined, count: number | undefined): Promise<void> {
  let seen = 0;
  let finish!: () => void;
  let fail!: (err: unknown) => void;
  const ended = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  // A failure before anyone awaits it must not count as unhandled.
  ended.catch(() => undefined);
  const watching: Watching = await source.watch(
    { ...(kind !== undefined ? { kind } : {}), ...(name !== undefined ? { name } : {}) },
    {
      change(view, data) {
        if (count !== undefined && seen >= count) return;
        seen++;
        ctx.out.item(data, () => watchLine(view, ctx.out.colour));
        if (count !== undefined && seen >= count) finish();
      },
      fail: (err) => fail(err),
    },
  );

  let timer: NodeJS.Timeout | undefined;
  const signal = ctx.io.signal;
  const onAbort = (): void => finish();
  try {
    const bound = ctx.boundMs;
    if (bound !== undefined) {
      timer = setTimeout(() => {
        if (count === undefined) finish();
        else fail(new CliError(`watch ended after ${formatDuration(bound)} with ${seen} of ${count} transitions`));
      }, bound);
    }
    if (signal?.aborted) finish();
    signal?.addEventListener('abort', onAbort, { once: true });
    await ended;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    await Promise.race([watching.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
