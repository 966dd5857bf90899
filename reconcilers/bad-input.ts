// The one place bad input is reported (a log line and statemanager_invalid_input_total, through
// the observer). Node agents report a container without a model on every change of it, so that
// reason is reported once per key until the key decodes without it.
import type { Decoded } from '../domain/decoders.js';
import type { DomainObserver } from './ports.js';

/**
 * Keys remembered as reported for having no model. Such a container is absent from the caches, so
 * its deletion reaches nothing here: with containers coming and going, the set would only grow.
 * Past this many it starts again (some keys are then reported once more).
 */
export const NO_MODEL_KEYS_KEPT = 16_384;

export class BadInputReport {
  private readonly noModelReported = new Set<string>();

  constructor(
    private readonly observer: DomainObserver,
    private readonly maxNoModelKeys = NO_MODEL_KEYS_KEPT,
  ) {}

  /** Keys currently remembered as reported for having no model. */
  get noModelKeys(): number {
    return this.noModelReported.size;
  }

  /** The decoded value (undefined: treat the key as absent), its problem reported. */
  value<T>(key: string, d: Decoded<T>): T | undefined {
    if (d.problem?.reason === 'no_model') {
      if (!this.noModelReported.has(key)) {
        if (this.noModelReported.size >= this.maxNoModelKeys) this.noModelReported.clear();
        this.noModelReported.add(key);
        this.observer.invalidInput('no_model', key, d.problem.detail);
      }
      return d.value;
    }
    if (this.noModelReported.size > 0) this.noModelReported.delete(key);
    if (d.problem) this.observer.invalidInput(d.problem.reason, key, d.problem.detail);
    return d.value;
  }
}
