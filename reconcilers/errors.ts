/** The stored value moved since the cache saw it: retry once the watch has caught up. */
export class ConflictError extends Error {
  constructor(readonly key: string) {
    super(`conflict writing ${key}: it changed since it was read; will retry`);
    this.name = 'ConflictError';
  }
}
