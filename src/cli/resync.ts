// `statemanager resync [KIND NAME]`: ask the leader to recompute now. The request is a key under
// /statemanager/resync/ that the leader turns into queued work and then deletes; --wait waits
// for that deletion.
import { randomBytes } from 'node:crypto';
import { Argument, Option, type Command } from 'commander';
import { Context } from './context.js';
import { EtcdReader } from './etcd-reader.js';
import { watchKeys } from './etcd-watch.js';
import { CliError, INTERRUPTED, UsageError } from './errors.js';
import type { CliIO } from './io.js';
import { formatDuration } from './format.js';
import { parseKind } from './kinds.js';

/** How long --wait waits when --timeout is not given. */
export const DEFAULT_WAIT_MS = 10_000;

export type ResyncBody = { kind: 'all'; requestedAt: string } | { kind: 'model' | 'package'; name: string; requestedAt: string };

export interface ResyncResult {
  key: string;
  request: ResyncBody;
  waited: boolean;
  /** With --wait: whether a leader deleted the request in time. */
  done: boolean | null;
  /** The value of the leader key (the leader's identity) when known. */
  leader: string | null;
  elapsedMs: number | null;
}

export function register(program: Command, io: CliIO): void {
  program
    .command('resync')
    .description('ask the leader to recompute everything, or one model or package, now')
    .addArgument(new Argument('[kind]', 'model or package (default: everything)').choices(['model', 'models', 'package', 'packages', 'pkg', 'all']))
    .argument('[name]', 'the model or package')
    .addOption(new Option('--wait', `wait until the leader has taken the request (bounded by --timeout, default ${formatDuration(DEFAULT_WAIT_MS)})`))
    .action(async (kindArg: string | undefined, name: string | undefined, opts: { wait?: boolean }, cmd: Command) => {
      const ctx = Context.of(cmd, io, opts.wait === true);
      if (ctx.server !== undefined) {
        const hint = ctx.server.from === '--server' ? 'drop --server' : 'unset STATEMANAGER_SERVER or give --endpoints';
        throw new UsageError(`resync writes a request into etcd and is not served over gRPC: ${hint} and run it with etcd access`);
      }
      const kind = kindArg === undefined || kindArg === 'all' ? undefined : parseKind(kindArg, ['model', 'package']);
      if (kind !== undefined && name === undefined) throw new UsageError(`resync ${kindArg} needs a NAME`);
      if (kind === undefined && name !== undefined) throw new UsageError(`resync all takes no NAME`);
      try {
        await resync(ctx, kind === undefined ? undefined : { kind: kind as 'model' | 'package', name: name! }, opts.wait === true);
      } finally {
        ctx.close();
      }
    });
}

export function requestId(now: number): string {
  return `cli-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

export function describeRequest(r: ResyncBody): string {
  return r.kind === 'all' ? 'everything' : `${r.kind} ${r.name}`;
}

async function resync(ctx: Context, target: { kind: 'model' | 'package'; name: string } | undefined, wait: boolean): Promise<void> {
  const now = ctx.now();
  const requestedAt = new Date(now).toISOString();
  if (target) await new EtcdReader(ctx.snapshot, ctx.keys).mustExist(target.kind, target.name);
  const request: ResyncBody = target ? { ...target, requestedAt } : { kind: 'all', requestedAt };
  const key = ctx.keys.resyncRequests + requestId(now);
  const put = await ctx.etcd.call((c, o) => c.kv.put({ key: Buffer.from(key), value: Buffer.from(JSON.stringify(request)) }, o));
  const result: ResyncResult = { key, request, waited: wait, done: null, leader: null, elapsedMs: null };
  if (!wait) {
    ctx.out.emit(result, () => `resync of ${describeRequest(request)} requested (${key})\n`);
    return;
  }

  const bound = ctx.boundMs ?? DEFAULT_WAIT_MS;
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const signal = ctx.io.signal;
  let settle!: (done: boolean) => void;
  let fail!: (err: unknown) => void;
  const outcome = new Promise<boolean>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  // A failure before anyone awaits it must not count as unhandled.
  outcome.catch(() => undefined);
  // Watching from just after the put: a deletion that came first is still seen.
  const watch = await watchKeys(ctx.etcd, { key, startRevision: Number(put.header.revision) + 1 }, { delete: () => settle(true), fail });
  try {
    timer = setTimeout(() => settle(false), bound);
    onAbort = () => fail(new CliError('interrupted while waiting; the request stays for the leader', INTERRUPTED));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    result.done = await outcome;
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    watch.close();
  }
  result.elapsedMs = Date.now() - started;
  result.leader = (await ctx.etcd.call((c, o) => c.get(ctx.keys.leader).options(o).string())) ?? null;
  const who = result.leader === null ? 'the controller' : `the leader (${result.leader})`;
  ctx.out.emit(result, () =>
    [
      `resync of ${describeRequest(request)} requested (${key})`,
      ...(result.done ? [`taken by ${who} after ${formatDuration(result.elapsedMs ?? 0)}`] : []),
      '',
    ].join('\n'),
  );
  if (!result.done) {
    const leader = result.leader === null ? `no leader holds ${ctx.keys.leader}` : `leader "${result.leader}" did not take it`;
    throw new CliError(`no leader picked up the resync request within ${formatDuration(bound)} (${leader}); it stays at ${key} for the next leader`);
  }
}
