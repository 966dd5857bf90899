// Text for anything thrown: code may throw strings, plain objects or null, and a log line or an
// error reply still needs a message.
import { inspect } from 'node:util';

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  return inspect(error);
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(errorMessage(error));
}
