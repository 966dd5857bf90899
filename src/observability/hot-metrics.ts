// prom-client finds a labelled series by building and hashing a label string on every inc, dec
// and set. The work queues and controllers move their series several times per key, so during
// a cold start of 100k keys that lookup, and the garbage it leaves, was a visible share of
// statemanager's CPU and GC. Hot series therefore count into plain numbers and are folded into
// prom-client when the registry is collected: every scrape still reads exact values.
//
// Histograms too: prom-client's labelled child (`histogram.labels(...)`) still validates and
// hashes its label object on every observe (lib/histogram.js), three observations per key. A
// HotHistogram counts into its own buckets and adds them to the series' record at collection.
import type { Counter, Gauge, Histogram, LabelValues } from 'prom-client';

interface Flushable {
  flush(): void;
}

export class HotCounter implements Flushable {
  private pending = 0;

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: LabelValues<string>,
  ) {
    // The series exists from the start, so dashboards see a zero rather than a gap.
    counter.inc(labels, 0);
  }

  inc(n = 1): void {
    this.pending += n;
  }

  flush(): void {
    if (this.pending === 0) return;
    const n = this.pending;
    this.pending = 0;
    this.counter.inc(this.labels, n);
  }
}

export class HotGauge implements Flushable {
  private value = 0;

  constructor(
    private readonly gauge: Gauge<string>,
    private readonly labels: LabelValues<string>,
  ) {
    gauge.set(labels, 0);
  }

  inc(n = 1): void {
    this.value += n;
  }

  dec(n = 1): void {
    this.value -= n;
  }

  set(value: number): void {
    this.value = value;
  }

  flush(): void {
    this.gauge.set(this.labels, this.value);
  }
}

/** prom-client 15's record of one histogram series (lib/histogram.js, createBaseValues). */
interface SeriesRecord {
  labels: LabelValues<string>;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

/** The parts of prom-client's Histogram a HotHistogram folds into (not in its typings). */
interface HistogramInternals {
  upperBounds?: unknown;
  hashMap?: unknown;
}

export class HotHistogram implements Flushable {
  /** prom-client's bucket bounds, ascending; a value above the last counts in +Inf only. */
  private readonly bounds: readonly number[];
  /** Observations per bound since the last flush (prom-client keeps no +Inf bucket: it is `count`). */
  private readonly pending: Float64Array;
  private sum = 0;
  private count = 0;
  /** The series' record in prom-client and its key there, once found. */
  private record: SeriesRecord | undefined;
  private recordKey: string | undefined;
  /** Set when prom-client's internals are not what this folds into: every observe goes to prom-client. */
  private direct: { observe(value: number): void } | undefined;

  constructor(
    private readonly histogram: Histogram<string>,
    private readonly labels: LabelValues<string>,
  ) {
    const h = histogram as unknown as HistogramInternals;
    const bounds = h.upperBounds;
    if (Array.isArray(bounds) && bounds.every((b) => typeof b === 'number') && typeof h.hashMap === 'object' && h.hashMap !== null) {
      this.bounds = bounds as number[];
    } else {
      this.bounds = [];
      this.direct = histogram.labels(labels);
    }
    this.pending = new Float64Array(this.bounds.length);
  }

  observe(value: number): void {
    if (this.direct !== undefined) {
      this.direct.observe(value);
      return;
    }
    // prom-client refuses these with the same error, at the call.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.pending[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }

  flush(): void {
    if (this.count === 0) return;
    const record = this.findRecord();
    if (record === undefined) {
      // Not the prom-client this was written against (a test pins the layout): stop folding.
      this.direct = this.histogram.labels(this.labels);
      return;
    }
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      const n = this.pending[i]!;
      if (n === 0) continue;
      record.bucketValues[bounds[i]!] = (record.bucketValues[bounds[i]!] ?? 0) + n;
      this.pending[i] = 0;
    }
    record.sum += this.sum;
    record.count += this.count;
    this.sum = 0;
    this.count = 0;
  }

  /** The series' record, made (as prom-client's first observe would) when it has none, e.g. after a reset. */
  private findRecord(): SeriesRecord | undefined {
    const map = (this.histogram as unknown as HistogramInternals).hashMap as Record<string, unknown> | undefined;
    if (typeof map !== 'object' || map === null) return undefined;
    if (this.recordKey !== undefined && map[this.recordKey] === this.record) return this.record;
    for (let attempt = 0; attempt < 2; attempt++) {
      for (const [key, v] of Object.entries(map)) {
        const r = v as Partial<SeriesRecord> | null;
        if (r === null || typeof r !== 'object' || !sameLabels(r.labels, this.labels)) continue;
        if (typeof r.sum !== 'number' || typeof r.count !== 'number' || typeof r.bucketValues !== 'object' || r.bucketValues === null) return undefined;
        this.recordKey = key;
        return (this.record = r as SeriesRecord);
      }
      this.histogram.zero(this.labels);
    }
    return undefined;
  }
}

function sameLabels(a: LabelValues<string> | undefined, b: LabelValues<string>): boolean {
  if (a === undefined || a === null || typeof a !== 'object') return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && kb.every((k) => a[k] === b[k]);
}

/** The hot series of one registry; every metric that has some calls flush() from its collect(). */
export class HotSeries {
  private readonly series: Flushable[] = [];
  private readonly gauges = new Map<string, HotGauge>();

  counter(counter: Counter<string>, labels: LabelValues<string>): HotCounter {
    const c = new HotCounter(counter, labels);
    this.series.push(c);
    return c;
  }

  gauge(gauge: Gauge<string>, labels: LabelValues<string>): HotGauge {
    const g = new HotGauge(gauge, labels);
    this.series.push(g);
    return g;
  }

  histogram(histogram: Histogram<string>, labels: LabelValues<string>): HotHistogram {
    const h = new HotHistogram(histogram, labels);
    this.series.push(h);
    return h;
  }

  /** One gauge per distinct `id`, made on first use. */
  gaugeFor(id: string, gauge: Gauge<string>, labels: () => LabelValues<string>): HotGauge {
    return once(this.gauges, id, () => this.gauge(gauge, labels()));
  }

  flush(): void {
    for (const s of this.series) s.flush();
  }
}

function once<T>(made: Map<string, T>, id: string, make: () => T): T {
  let v = made.get(id);
  if (v === undefined) {
    v = make();
    made.set(id, v);
  }
  return v;
}
