// What a command runs in: where it writes, its environment, its clock and its interruption.

/** Where a command writes; `process.stdout` and `process.stderr` fit. */
export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
  /** Environment for configuration and NO_COLOR; process.env when absent. */
  env?: NodeJS.ProcessEnv;
  /** The clock for relative times ("2m ago"); Date.now when absent. */
  now?: () => number;
  /** Aborted on SIGINT/SIGTERM: `watch` stops cleanly, other commands give up. */
  signal?: AbortSignal;
}
