// The `statemanager` command line: commander wiring and `run`, which tests call in-process. Every
// failure ends as one `statemanager: ...` line on stderr and an exit code: 0 success, 1 a runtime
// failure (not found, etcd unreachable, nothing picked a request up), 2 a usage error, 130
// interrupted.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { CliError, DEFAULT_TIMEOUT, type CliIO } from './context.js';
import { register as registerDescribe } from './describe.js';
import { OUTPUT_FORMATS } from './format.js';
import { register as registerGet } from './get.js';
import { register as registerHistory } from './history.js';
import { register as registerResync } from './resync.js';
import { register as registerWatch } from './watch.js';
import { errorMessage } from '../../controller/errors.js';

export type { CliIO } from './context.js';

const EXAMPLES = `
Examples:
  statemanager get packages
  statemanager get models -o json
  statemanager describe package shop
  statemanager history model web
  statemanager watch --output json --count 10
  statemanager resync package shop --wait

Configuration is the controller's: --config FILE (or STATEMANAGER_CONFIG), then the
environment (ETCD_ENDPOINTS, STATEMANAGER_KEY_PREFIX, ETCD_USERNAME, ...), then the flags.`;

export function buildProgram(io: CliIO): Command {
  const program = new Command('statemanager');
  program
    .description('Inspect the states statemanager keeps in etcd, follow transitions, and ask for a resync.')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      outputError: (s, write) => write(`statemanager: ${s.replace(/^error: /, '')}`),
      getOutHelpWidth: () => 100,
      getErrHelpWidth: () => 100,
    })
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError()
    .version(version(), '-V, --version')
    .option('-c, --config <file>', "the controller's configuration file (default: $STATEMANAGER_CONFIG)")
    .option('--endpoints <urls>', 'etcd endpoints, comma-separated (overrides $ETCD_ENDPOINTS and the file)')
    .option('--prefix <prefix>', 'global key prefix (overrides $STATEMANAGER_KEY_PREFIX and the file)')
    .option('--timeout <duration>', 'deadline of each etcd request; for watch and resync --wait, how long they wait instead', DEFAULT_TIMEOUT)
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .addHelpText('after', EXAMPLES);
  registerGet(program, io);
  registerDescribe(program, io);
  registerHistory(program, io);
  registerWatch(program, io);
  registerResync(program, io);
  return program;
}

/**
 * Run the command line with `argv` (without node and the script). Resolves to the exit code;
 * never rejects and never exits the process.
 */
export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  const program = buildProgram(io);
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return 2;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version exit 0; everything else commander rejects is a usage error (already printed).
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CliError) {
      io.stderr.write(`statemanager: ${err.message}\n`);
      return err.exitCode;
    }
    const message = errorMessage(err);
    io.stderr.write(`statemanager: unexpected error: ${message.split('\n')[0]}\n`);
    if ((io.env ?? process.env).STATEMANAGER_DEBUG && err instanceof Error && err.stack) io.stderr.write(err.stack + '\n');
    return 1;
  }
}

function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'statemanager' && pkg.version) return pkg.version;
      } catch {
        // keep looking
      }
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
