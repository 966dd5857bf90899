// The `statemanager` command line: commander wiring and `run`, which tests call in-process. Every
// failure ends as one `statemanager: ...` line on stderr and an exit code: 0 success, 1 a runtime
// failure (not found, etcd unreachable, nothing picked a request up), 2 a usage error, 130
// interrupted.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_TIMEOUT } from './deadline.js';
import { CliError } from './errors.js';
import type { CliIO } from './io.js';
import { register as registerDescribe } from './describe.js';
import { OUTPUT_FORMATS } from './format.js';
import { register as registerGet } from './get.js';
import { register as registerHistory } from './history.js';
import { register as registerResync } from './resync.js';
import { register as registerWatch } from './watch.js';
import { errorMessage } from '../../controller/errors.js';

export type { CliIO } from './io.js';

const EXAMPLES = `
Examples:
  statemanager get packages
  statemanager get models -o json
  statemanager describe package shop
  statemanager history model web
  statemanager watch --output json --count 10
  statemanager resync package shop --wait
  statemanager --server statemanager.edge.svc:47006 --tls --token-file ~/.sm-token get packages
  statemanager --server 127.0.0.1:47006 watch scenarios -o json

Configuration is the controller's: --config FILE (or STATEMANAGER_CONFIG), then the
environment (ETCD_ENDPOINTS, STATEMANAGER_KEY_PREFIX, ETCD_USERNAME, ...), then the flags.
With --server (or STATEMANAGER_SERVER) get, describe, history and watch read a statemanager's
gRPC API instead of etcd: states, history and health, but no definitions or containers.`;

export function buildProgram(io: CliIO): Command {
  const program = new Command('statemanager');
  program
    .description('Inspect the states statemanager keeps in etcd (or serves over gRPC), follow transitions, and ask for a resync.')
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
    .option('--timeout <duration>', 'deadline of each request; for watch and resync --wait, how long they wait instead', DEFAULT_TIMEOUT)
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .option('--server <host:port>', "read a statemanager's gRPC API instead of etcd (default: $STATEMANAGER_SERVER)")
    .option('--token <token>', 'bearer token for --server (default: $STATEMANAGER_TOKEN)')
    .option('--token-file <file>', 'read the bearer token from the first line of this file')
    .option('--tls', 'TLS to --server, verified against the system CAs')
    .option('--insecure-token', 'send the token without TLS to a non-loopback --server (only where a mesh or tunnel encrypts the path)')
    .option('--ca <file>', "TLS to --server, verified against this CA bundle (PEM)")
    .option('--cert <file>', 'client certificate for mutual TLS (PEM; with --key)')
    .option('--key <file>', "the client certificate's private key (PEM)")
    .option('--server-name <name>', "the name the server's certificate must carry, when it differs from the --server host")
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
