// The failures a command ends with: one line for the user and an exit code.

/** A failure the user should read as one line; `exitCode` 1 for runtime failures, 2 for usage. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

/** Exit code of a command interrupted by SIGINT/SIGTERM (other than `watch`, which exits 0). */
export const INTERRUPTED = 130;
