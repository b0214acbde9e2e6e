// Counter, gauge and histogram primitives shared by every layer, and the
// registry that renders them in the Prometheus text exposition format
// (https://prometheus.io/docs/instrumenting/exposition_formats/, format 0.0.4).
//
// Contract: recording is allocation-free and never throws. A layer keeps a
// reference to its Counter / Histogram child (or to a ReasonCounter's index)
// and bumps plain number fields on the hot path; all formatting happens when
// /metrics is scraped. Label children are created once (at setup) and cached.
// Names and label names are checked at registration: a bad name is API misuse
// and throws InvalidArgumentError.

import { InvalidArgumentError } from '../util/errors.js';

export type MetricType = 'counter' | 'gauge' | 'histogram';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function checkMetricName(name: string): void {
  if (!METRIC_NAME.test(name)) throw new InvalidArgumentError(`invalid metric name ${JSON.stringify(name)}`);
}

export function checkLabelNames(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    // "__" prefixes are reserved for Prometheus' own use; "le" belongs to histograms.
    if (!LABEL_NAME.test(n) || n.startsWith('__') || n === 'le') throw new InvalidArgumentError(`invalid label name ${JSON.stringify(n)}`);
    if (seen.has(n)) throw new InvalidArgumentError(`duplicate label name ${JSON.stringify(n)}`);
    seen.add(n);
  }
}

/** Escapes a label value: backslash, double quote and line feed (the only escapes the format defines). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text: backslash and line feed. */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Formats a sample value the way Go's ParseFloat reads it back (+Inf, -Inf, NaN). */
export function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

function labelString(names: readonly string[], values: readonly string[], extraName?: string, extraValue?: string): string {
  if (names.length === 0 && extraName === undefined) return '';
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) parts.push(`${names[i]}="${escapeLabelValue(values[i]!)}"`);
  if (extraName !== undefined) parts.push(`${extraName}="${escapeLabelValue(extraValue!)}"`);
  return `{${parts.join(',')}}`;
}

/** One metric family as the registry sees it. */
export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** Appends the family's sample lines (without HELP/TYPE) to out. */
  render(out: string[]): void;
}

/** A monotonic counter. `value` may be read directly; only inc() should write it. */
export class Counter {
  value = 0;
  constructor(readonly labelValues: readonly string[] = []) {}
  inc(n = 1): void { if (n > 0) this.value += n; }
}

/** A value that goes up and down. */
export class Gauge {
  value = 0;
  constructor(readonly labelValues: readonly string[] = []) {}
  set(v: number): void { this.value = v; }
  inc(n = 1): void { this.value += n; }
  dec(n = 1): void { this.value -= n; }
}

/**
 * Log-linear bucket bounds: for each decade 10^e with e in [minExp, maxExp],
 * the bounds step·10^e for each step (default 1..9), then 10^(maxExp+1).
 * Built from decimal strings so bounds print exactly ("0.3", not
 * "0.30000000000000004").
 */
export function logLinearBuckets(minExp: number, maxExp: number, steps: readonly number[] = [1, 2, 3, 4, 5, 6, 7, 8, 9]): Float64Array {
  if (!Number.isInteger(minExp) || !Number.isInteger(maxExp) || maxExp < minExp) throw new InvalidArgumentError('logLinearBuckets: exponents must be integers with minExp <= maxExp');
  const out: number[] = [];
  for (let e = minExp; e <= maxExp; e++) for (const s of steps) out.push(Number(`${s}e${e}`));
  out.push(Number(`1e${maxExp + 1}`));
  return Float64Array.from(out);
}

/**
 * A histogram over fixed bucket upper bounds. record() is a binary search
 * plus three additions: no allocation. `counts[i]` counts values in
 * (bounds[i-1], bounds[i]]; counts[bounds.length] is the overflow (+Inf) bucket.
 */
export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: Float64Array, readonly labelValues: readonly string[] = []) {
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i]! > bounds[i - 1]!)) throw new InvalidArgumentError('histogram bounds must be strictly increasing');
    this.counts = new Float64Array(bounds.length + 1);
  }
  record(v: number): void {
    const b = this.bounds;
    let lo = 0;
    let hi = b.length; // first bound >= v, or b.length for +Inf
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (b[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    this.counts[lo]!++;
    this.sum += v;
    this.count++;
  }
  reset(): void { this.counts.fill(0); this.sum = 0; this.count = 0; }
}

abstract class Family<C extends { labelValues: readonly string[] }> implements Metric {
  abstract readonly type: MetricType;
  private readonly children = new Map<string, C>();
  private unlabelled: C | undefined;
  constructor(readonly name: string, readonly help: string, readonly labelNames: readonly string[]) {
    checkMetricName(name);
    checkLabelNames(labelNames);
  }
  protected abstract make(values: readonly string[]): C;
  /** The child for these label values, created on first use; keep the reference on hot paths. */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) throw new InvalidArgumentError(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
    if (values.length === 0) return (this.unlabelled ??= this.make([]));
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) { c = this.make(values); this.children.set(key, c); }
    return c;
  }
  protected all(): C[] {
    const out: C[] = [];
    if (this.unlabelled !== undefined) out.push(this.unlabelled);
    for (const c of this.children.values()) out.push(c);
    return out;
  }
  abstract render(out: string[]): void;
}

export class CounterFamily extends Family<Counter> {
  readonly type = 'counter' as const;
  protected make(values: readonly string[]): Counter { return new Counter(values); }
  render(out: string[]): void {
    for (const c of this.all()) out.push(`${this.name}${labelString(this.labelNames, c.labelValues)} ${formatValue(c.value)}`);
  }
}

export class GaugeFamily extends Family<Gauge> {
  readonly type = 'gauge' as const;
  protected make(values: readonly string[]): Gauge { return new Gauge(values); }
  render(out: string[]): void {
    for (const c of this.all()) out.push(`${this.name}${labelString(this.labelNames, c.labelValues)} ${formatValue(c.value)}`);
  }
}

export class HistogramFamily extends Family<Histogram> {
  readonly type = 'histogram' as const;
  constructor(name: string, help: string, labelNames: readonly string[], readonly bounds: Float64Array) {
    super(name, help, labelNames);
  }
  protected make(values: readonly string[]): Histogram { return new Histogram(this.bounds, values); }
  render(out: string[]): void {
    for (const h of this.all()) {
      let cum = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cum += h.counts[i]!;
        const le = i < this.bounds.length ? formatValue(this.bounds[i]!) : '+Inf';
        out.push(`${this.name}_bucket${labelString(this.labelNames, h.labelValues, 'le', le)} ${formatValue(cum)}`);
      }
      const ls = labelString(this.labelNames, h.labelValues);
      out.push(`${this.name}_sum${ls} ${formatValue(h.sum)}`);
      out.push(`${this.name}_count${ls} ${formatValue(h.count)}`);
    }
  }
}

/**
 * Counts by reason: one Float64Array slot per reason code, so the hot path is
 * `counts[CODE]++` with codes from an `as const` table. Rendered as one
 * counter family with a label (default "reason") naming each code.
 */
export class ReasonCounter<R extends string = string> implements Metric {
  readonly type = 'counter' as const;
  readonly counts: Float64Array;
  constructor(readonly name: string, readonly help: string, readonly reasons: readonly R[], readonly label = 'reason', readonly constLabels: Readonly<Record<string, string>> = {}) {
    checkMetricName(name);
    checkLabelNames([...Object.keys(constLabels), label]);
    this.counts = new Float64Array(reasons.length);
  }
  inc(code: number, n = 1): void { this.counts[code]! += n; }
  get(reason: R): number { const i = this.reasons.indexOf(reason); return i < 0 ? 0 : this.counts[i]!; }
  total(): number { let s = 0; for (let i = 0; i < this.counts.length; i++) s += this.counts[i]!; return s; }
  /** Plain object of reason → count, for logs and tests. */
  toJSON(): Record<R, number> {
    const o = {} as Record<R, number>;
    this.reasons.forEach((r, i) => { o[r] = this.counts[i]!; });
    return o;
  }
  render(out: string[]): void {
    const names = Object.keys(this.constLabels);
    const values = names.map((n) => this.constLabels[n]!);
    for (let i = 0; i < this.reasons.length; i++) {
      out.push(`${this.name}${labelString(names, values, this.label, this.reasons[i]!)} ${formatValue(this.counts[i]!)}`);
    }
  }
}

/** A counter or gauge whose value is read from the owner at scrape time (e.g. a table's size). */
export class FuncMetric implements Metric {
  private readonly labelNames: string[];
  private readonly labelValues: string[];
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge', readonly read: () => number, labels: Readonly<Record<string, string>> = {}) {
    checkMetricName(name);
    this.labelNames = Object.keys(labels);
    checkLabelNames(this.labelNames);
    this.labelValues = this.labelNames.map((n) => labels[n]!);
  }
  render(out: string[]): void {
    out.push(`${this.name}${labelString(this.labelNames, this.labelValues)} ${formatValue(this.read())}`);
  }
}

/**
 * The registry: one per process (or per dataplane instance). Families are
 * rendered in registration order. Several metrics of the same name are
 * merged under one HELP/TYPE header when their types agree (e.g. the same
 * FuncMetric per interface with different labels).
 */
export class Registry {
  private readonly metrics: Metric[] = [];

  register<M extends Metric>(m: M): M {
    checkMetricName(m.name);
    for (const o of this.metrics) {
      if (o.name === m.name && o.type !== m.type) throw new InvalidArgumentError(`metric ${m.name} already registered as a ${o.type}`);
      if (o === m) return m;
    }
    this.metrics.push(m);
    return m;
  }

  unregister(m: Metric): void {
    const i = this.metrics.indexOf(m);
    if (i >= 0) this.metrics.splice(i, 1);
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): CounterFamily {
    return this.register(new CounterFamily(name, help, labelNames));
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): GaugeFamily {
    return this.register(new GaugeFamily(name, help, labelNames));
  }
  histogram(name: string, help: string, bounds: Float64Array, labelNames: readonly string[] = []): HistogramFamily {
    return this.register(new HistogramFamily(name, help, labelNames, bounds));
  }
  reasons<R extends string>(name: string, help: string, reasons: readonly R[], label = 'reason', constLabels: Readonly<Record<string, string>> = {}): ReasonCounter<R> {
    return this.register(new ReasonCounter(name, help, reasons, label, constLabels));
  }
  counterFunc(name: string, help: string, read: () => number, labels: Readonly<Record<string, string>> = {}): FuncMetric {
    return this.register(new FuncMetric(name, help, 'counter', read, labels));
  }
  gaugeFunc(name: string, help: string, read: () => number, labels: Readonly<Record<string, string>> = {}): FuncMetric {
    return this.register(new FuncMetric(name, help, 'gauge', read, labels));
  }

  /** The Prometheus text exposition (Content-Type: text/plain; version=0.0.4). */
  render(): string {
    const out: string[] = [];
    const done = new Set<string>();
    for (const m of this.metrics) {
      if (done.has(m.name)) continue;
      done.add(m.name);
      out.push(`# HELP ${m.name} ${escapeHelp(m.help)}`);
      out.push(`# TYPE ${m.name} ${m.type}`);
      for (const o of this.metrics) if (o.name === m.name) o.render(out);
    }
    out.push('');
    return out.join('\n');
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
