// Measures the lag from seeing a container change to writing the package state it caused.
// The earliest unsettled change is carried from container → model → package. It moves to the
// packages when the model's new state is applied (in the same synchronous step that enqueues
// them), so a package reconcile can never run before it knows; a reconcile that writes nothing
// settles it without a sample (nothing changed upstream).
export class LagTracker {
  private readonly models = new Map<string, number>();
  private readonly packages = new Map<string, number>();

  constructor(
    private readonly now: () => number,
    private readonly observe: (seconds: number) => void,
  ) {}

  containerChanged(model: string): void {
    if (!this.models.has(model)) this.models.set(model, this.now());
  }

  /** The model's state changed: its pending change now waits on these packages. */
  modelChanged(model: string, packages: readonly string[]): void {
    const since = this.models.get(model);
    if (since === undefined) return;
    this.models.delete(model);
    for (const p of packages) {
      const prev = this.packages.get(p);
      if (prev === undefined || since < prev) this.packages.set(p, since);
    }
  }

  /** The model reconcile wrote nothing: the pending change had no effect. */
  modelUnchanged(model: string): void {
    this.models.delete(model);
  }

  packageSettled(pkg: string, wrote: boolean): void {
    const since = this.packages.get(pkg);
    if (since === undefined) return;
    this.packages.delete(pkg);
    if (wrote) this.observe((this.now() - since) / 1000);
  }
}
