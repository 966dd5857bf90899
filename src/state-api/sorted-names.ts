// The names of one kind's stored states, sorted, for ListResourcesByState: built again only when
// a name came or went since the last build (a change of state leaves the names as they are), and
// built in slices that give the event loop back every few thousand names, so a list over 250,000
// models never holds the loop for long (the copy-and-sort of every call took 0.65-0.9 s there).

/** Names handled (collected, sorted, merged, looked up) between two returns to the event loop. */
export const SLICE = 4096;

/** Let timers, I/O and other calls run. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The order of ListResourcesByState: UTF-16 code units, as `<` compares strings. */
export const compareNames = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Counts work and says when a slice is full (then the caller awaits yieldToLoop()). */
export class Slicer {
  private done = 0;
  constructor(private readonly size = SLICE) {}
  /** True when `units` more make a full slice (and a new one starts). */
  full(units = 1): boolean {
    this.done += units;
    if (this.done < this.size) return false;
    this.done = 0;
    return true;
  }
}

/**
 * The names sorted by compareNames, each once: runs of SLICE names sorted natively, then merged
 * pairwise, returning to the event loop between slices. `names` may be a live view (a Map's
 * iterator) that changes between slices: a key deleted and added again can then come twice,
 * hence the dedup.
 */
export async function sortNames(names: Iterable<string>, slicer = new Slicer()): Promise<string[]> {
  let runs: string[][] = [];
  let run: string[] = [];
  for (const name of names) {
    run.push(name);
    if (run.length === SLICE) {
      runs.push(run.sort(compareNames));
      run = [];
    }
    // Collecting and the run's sort together: about two units a name.
    if (slicer.full(run.length === 0 ? SLICE : 1)) await yieldToLoop();
  }
  if (run.length > 0) runs.push(run.sort(compareNames));
  if (runs.length === 0) return [];
  if (runs.length === 1) return merge(runs[0]!, [], slicer);
  while (runs.length > 1) {
    const next: string[][] = [];
    for (let i = 0; i < runs.length; i += 2) next.push(await merge(runs[i]!, runs[i + 1] ?? [], slicer));
    runs = next;
  }
  return runs[0]!;
}

/** Two sorted lists as one, without repeats. */
async function merge(a: readonly string[], b: readonly string[], slicer: Slicer): Promise<string[]> {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i++]! : b[j++]!;
    if (out.length === 0 || out[out.length - 1] !== x) out.push(x);
    if (slicer.full()) await yieldToLoop();
  }
  return out;
}

export interface NameList {
  readonly names: readonly string[];
  /** The source's names version when the build began; undefined: the source has none. */
  readonly version: number | undefined;
}

/**
 * One kind's sorted names, built lazily. `version` changes whenever a name is added or removed;
 * a list built when it read v has every name present at v (and maybe some added or removed
 * during the build). Without `version` every call builds anew. One build runs at a time: a call
 * that finds a build under way that began before its own version waits for it and then starts
 * (or joins) the next, so its answer knows every name that existed when it was made.
 */
export class SortedNames {
  private built: NameList | undefined;
  private building: Promise<void> | undefined;

  constructor(
    private readonly source: () => Iterable<string>,
    private readonly version?: () => number,
  ) {}

  async current(): Promise<NameList> {
    const version = this.version;
    if (!version) return { names: await sortNames(this.source()), version: undefined };
    const wanted = version();
    for (;;) {
      if (this.built && this.built.version! >= wanted) return this.built;
      if (!this.building) {
        this.building = this.build(version()).finally(() => {
          this.building = undefined;
        });
      }
      await this.building;
    }
  }

  private async build(version: number): Promise<void> {
    const names = await sortNames(this.source());
    if (!this.built || this.built.version! < version) this.built = { names, version };
  }
}
