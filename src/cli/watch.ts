// `statemanager watch [KIND [NAME]]`: state transitions as they are recorded, one line each,
// from the history keys the controller writes with every state change.
import { Argument, Option, type Command } from 'commander';
import type { IKeyValue, Watcher } from 'etcd3';
import { stringify as toYaml } from 'yaml';
import type { HistoryEntry } from '../../reconcilers/ports.js';
import { CliError, Context, UsageError, type CliIO } from './context.js';
import { formatDuration, formatTransition, printable } from './format.js';
import { parseHistoryEntry, parseKind } from './read.js';

export function register(program: Command, io: CliIO): void {
  program
    .command('watch')
    .description('stream state transitions as the controller records them (Ctrl-C to stop)')
    .addArgument(
      new Argument('[kind]', 'only packages, models or scenarios').choices(['package', 'packages', 'pkg', 'model', 'models', 'scenario', 'scenarios']),
    )
    .argument('[name]', 'only this resource')
    .addOption(new Option('--count <n>', 'exit after this many transitions'))
    .addHelpText('after', '\nWith --timeout, watch stops after that long (exit 1 if --count was not reached); etcd requests\nkeep the default 3s deadline.')
    .action(async (kindArg: string | undefined, name: string | undefined, opts: { count?: string }, cmd: Command) => {
      const ctx = Context.of(cmd, io, true);
      let count: number | undefined;
      if (opts.count !== undefined) {
        count = Number(opts.count);
        if (!Number.isInteger(count) || count < 1) throw new UsageError(`--count "${opts.count}" is not a positive whole number`);
      }
      try {
        await watch(ctx, kindArg === undefined ? undefined : parseKind(kindArg), name, count);
      } finally {
        ctx.close();
      }
    });
}

/** `time kind/name from → to (reason)`. */
export function watchLine(e: HistoryEntry, colour: boolean): string {
  const reason = e.reason === '' ? '' : ` (${e.reason})`;
  return printable(`${e.at}  ${e.kind}/${e.name}  ${formatTransition(e.from, e.to, colour)}${reason}`);
}

async function watch(ctx: Context, kind: string | undefined, name: string | undefined, count: number | undefined): Promise<void> {
  const { keys } = ctx;
  const { stdout, stderr } = ctx.io;
  const prefix = kind === undefined ? keys.history : name === undefined ? `${keys.history}${kind}/` : `${keys.history}${kind}/${name}/`;
  // Everything recorded after this revision is shown: nothing between "started" and the watch is lost.
  const revision = await ctx.currentRevision();

  let seen = 0;
  let finish!: () => void;
  let fail!: (err: unknown) => void;
  const ended = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  // A failure before anyone awaits it must not count as unhandled.
  ended.catch(() => undefined);
  const onPut = (kv: IKeyValue): void => {
    if (count !== undefined && seen >= count) return;
    const entry = parseHistoryEntry(kv.value.toString());
    if (!entry) {
      stderr.write(`statemanager: skipping unreadable history entry ${kv.key.toString()}\n`);
      return;
    }
    seen++;
    if (ctx.output === 'json') stdout.write(JSON.stringify(entry) + '\n');
    else if (ctx.output === 'yaml') stdout.write('---\n' + toYaml(entry));
    else stdout.write(watchLine(entry, ctx.colour) + '\n');
    if (count !== undefined && seen >= count) finish();
  };
  const watcher: Watcher = await ctx.watch(
    (b) => b.prefix(prefix).startRevision(String(revision + 1)),
    (w) => {
      w.on('put', onPut);
      w.on('disconnected', (err) => stderr.write(`statemanager: lost the watch on etcd (${err.message.split('\n')[0]}); reconnecting\n`));
      w.on('error', (err) => fail(ctx.translate(err)));
    },
  );
  stderr.write(`watching transitions under ${prefix} (Ctrl-C to stop)\n`);

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
    await Promise.race([watcher.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}
