// statemanager's process, loaded by the entry point (src/main.ts): process concerns only —
// arguments, configuration, heap flags, logging, the crash policy, signals, and the log lines of
// starting and stopping. Everything it runs is built by the composition root, src/app.ts.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { createLogger, endLogger } from './observability/logging.js';
import { logProcessWarnings } from './process/warnings.js';
import type { StopSignals } from './process/stop-signals.js';
import { StateManagerApp } from './app.js';
import { installCrashPolicy } from './process/crash.js';
import { errorMessage } from '../controller/errors.js';
import { applyHeapFlags, checkHeapLimitAgainstContainer, growYoungGenerationWithFleet, watchHeapLimit } from './process/heap.js';
import type { OptimizerHold } from './process/optimizers.js';

async function main(optimizers: OptimizerHold, signals: StopSignals): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, allowPositionals: false });
  let config: Config;
  try {
    config = loadConfig(values.config ?? process.env.STATEMANAGER_CONFIG);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`statemanager: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  applyHeapFlags(config.memory);
  const youngGeneration = growYoungGenerationWithFleet();
  const logger = createLogger(config.log.level, config.log.format);
  logProcessWarnings(logger);
  optimizers.onRelease((reason) =>
    logger.info("V8's optimizing compilers on: the process outgrew one vehicle", { reason, afterMs: Math.round(performance.now()) }),
  );
  optimizers.releaseWhenOutgrown();
  const stopHeapWatch = watchHeapLimit((used, limit) =>
    logger.warn('heap near its limit: give the container more memory (V8 takes about half of it) or the process will run out', {
      usedMB: Math.round(used / 2 ** 20),
      limitMB: Math.round(limit / 2 ** 20),
    }),
  );
  checkHeapLimitAgainstContainer((limit, container) =>
    logger.warn("heap limit above the container's memory: the kernel would kill the process before the heap warning; set NODE_OPTIONS=--max-old-space-size to about half the container's memory (in MB)", {
      heapLimitMB: Math.round(limit / 2 ** 20),
      containerMB: Math.round(container / 2 ** 20),
    }),
  );
  const running: { app?: StateManagerApp } = {};
  installCrashPolicy({
    context: () => ({ identity: running.app?.identity, leader: running.app?.isLeader() }),
    onCrash: (origin) => running.app?.metrics.unexpectedExceptions.labels({ origin }).inc(),
  });
  const app = (running.app = new StateManagerApp({ config, logger, onLargeFleet: () => optimizers.release('fleet') }));

  let stopping = false;
  const stop = async (signal: string, code = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    const force = setTimeout(() => {
      process.stderr.write('statemanager: stop took too long, exiting\n');
      process.exit(1);
    }, 25_000);
    force.unref();
    await app.stop();
    clearTimeout(force);
    youngGeneration.stop();
    optimizers.stop();
    stopHeapWatch();
    logger.info('stopped');
    endLogger(logger);
    process.exitCode = code;
    // Everything of ours is closed, but grpc-js may still have connection attempts under way (to
    // an etcd behind a black hole the kernel retries a SYN for about two minutes), which keep the
    // process alive: it then ended as "stop took too long" 25 s later, logging after the log had
    // ended (found by black-box probing). Exit once the last lines are written, always through
    // this timer: a process left to end by itself had its signal handlers removed on the way out,
    // and a signal then (sent again and again by an impatient supervisor) killed it after
    // `stopped` (1 to 6 runs of 10, black-box probing).
    setTimeout(() => process.exit(code), 200);
  };
  // leaderElection.onLost: exit — leave it to the supervisor (Kubernetes, systemd) to restart us.
  void app.elector?.exited.then(async (reason) => {
    logger.error('leadership lost, exiting as configured', { reason });
    await stop('leadership lost', 1);
  });
  // SIGTERM, SIGINT, SIGHUP, SIGQUIT (a hangup or SIGQUIT ended the process with no line and its
  // lease held, black-box probing): handled since the process began (src/process/stop-signals.ts).
  signals.handOver((signal) => void stop(signal));

  const ports = await app.serve();
  logger.info('statemanager starting', {
    etcd: config.etcd.endpoints,
    keyPrefix: config.keyPrefix,
    http: `${config.http.addr.replace(/:\d+$/, '')}:${ports.http}`,
    grpc: `${config.grpc.addr.replace(/:\d+$/, '')}:${ports.grpc}`,
    actionController: config.actionController.addr,
    workers: config.controller.workers,
  });
  await app.start();
  youngGeneration.markStartedUp();
  optimizers.markStartedUp();
  logger.info('statemanager ready');
}

/** Runs the process; src/main.ts calls it once the compilers are held off. */
export function runStateManager(optimizers: OptimizerHold, signals: StopSignals): void {
  main(optimizers, signals).catch((err: unknown) => {
    process.stderr.write(`statemanager: ${errorMessage(err)}\n`);
    // A configuration refused once the process had begun (credential files read at serve) is
    // exit 2 as one refused at load: systemd's RestartPreventExitStatus=2 stops there.
    process.exit(err instanceof ConfigError ? 2 : 1);
  });
}
