// The signals that stop the process, handled from its first moment. Until there is something to
// stop, one ends the process at once with a line and exit 0: with the handlers installed only once
// the configuration was loaded, a SIGTERM in the first 0.3 s (2.2 s on a loaded machine) killed it
// with no line at all (black-box probing). One listener for the process's whole life, so there is
// no moment without one.

export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const;

export interface StopSignals {
  /** From now on a stop signal calls `stop` (which must tolerate being called again). */
  handOver(stop: (signal: string) => void): void;
}

export function handleStopSignals(write: (line: string) => void = (l) => void process.stderr.write(l)): StopSignals {
  let onSignal = (signal: string): void => {
    write(`statemanager: ${signal} while starting, before anything was held: exiting\n`);
    process.exit(0);
  };
  const listener = (signal: NodeJS.Signals): void => onSignal(signal);
  for (const s of STOP_SIGNALS) process.on(s, listener);
  return {
    handOver(stop) {
      onSignal = stop;
    },
  };
}
