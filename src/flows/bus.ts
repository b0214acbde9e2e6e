// The flow bus: where flow records are published, and the one place that
// decides whether a record is built at all.
//
// A record is built only when someone consumes it: a subscriber to the
// diagnostics channel "strata:flows:record" (the admin listener's /flows
// streams subscribe there), or an exporter attached to the bus. Callers on a
// request path do `if (bus.active) bus.emitHttp(facts)` - or hand the bus a
// builder and its facts with emit1(), which checks for them - so with nobody
// listening a request pays one property read: no facts object, no record, no
// UUID, no clock read.
//
// Exporters are sinks with write(record); a sink that throws is detached and
// counted, never allowed to break the request path.
import dc from 'node:diagnostics_channel';
import type { Registry } from '../obs/metrics.js';
import { buildHttpRecord, buildL4Record, type FlowRecord, type HttpFlowFacts, type L4FlowFacts } from './record.js';

export const FLOW_CHANNEL = 'strata:flows:record';

/** Anything that takes records: JSON lines, CBOR, an in-memory ring. */
export interface FlowSink {
  write(record: FlowRecord): void;
  close?(): void | Promise<void>;
}

export class FlowBusStats {
  /** Records built (each one cost a builder call). */
  built = 0;
  /** Emits skipped because nobody listened (counted only by emit*(): callers that check `active` first skip even this). */
  skipped = 0;
  http = 0;
  l4 = 0;
  /** Sinks detached because they threw. */
  sinkErrors = 0;
}

export class FlowBus {
  readonly channel: dc.Channel;
  readonly stats = new FlowBusStats();
  private sinks: FlowSink[] = [];
  private readonly listeners = new Set<(r: FlowRecord) => void>();
  /** Called when the bus turns active or idle (e.g. to subscribe to conntrack's end events only while needed). */
  onActiveChange: ((active: boolean) => void) | null = null;
  private wasActive = false;

  constructor(readonly name: string = FLOW_CHANNEL) {
    this.channel = dc.channel(name);
  }

  /** True when a record would reach anyone: check it before gathering facts. */
  get active(): boolean { return this.sinks.length > 0 || this.channel.hasSubscribers; }

  /** Publishes a ready record to the channel and every sink. */
  publish(r: FlowRecord): void {
    if (r.Type === 'L7') this.stats.http++; else this.stats.l4++;
    if (this.channel.hasSubscribers) this.channel.publish(r);
    // addSink/removeSink replace the array, so this one stays stable while we walk it.
    const sinks = this.sinks;
    for (let i = 0; i < sinks.length; i++) {
      try { sinks[i]!.write(r); } catch { this.stats.sinkErrors++; this.removeSink(sinks[i]!); }
    }
  }

  /** Builds with build(a) and publishes, only when someone listens. Returns whether it built. */
  emit1<A>(build: (a: A) => FlowRecord, a: A): boolean {
    if (!this.active) { this.stats.skipped++; return false; }
    const r = build(a);
    this.stats.built++;
    this.publish(r);
    return true;
  }

  emitHttp(f: HttpFlowFacts): boolean { return this.emit1(buildHttpRecord, f); }
  emitL4(f: L4FlowFacts): boolean { return this.emit1(buildL4Record, f); }

  addSink(s: FlowSink): () => void {
    this.sinks = [...this.sinks, s];
    this.checkActive();
    return () => this.removeSink(s);
  }

  removeSink(s: FlowSink): void {
    const i = this.sinks.indexOf(s);
    if (i < 0) return;
    this.sinks = this.sinks.filter((x) => x !== s);
    this.checkActive();
  }

  /** Subscribes fn to the channel; returns the unsubscribe function. */
  subscribe(fn: (r: FlowRecord) => void): () => void {
    const wrapped = fn as unknown as (m: unknown, name: string | symbol) => void;
    dc.subscribe(this.name, wrapped);
    this.listeners.add(fn);
    this.checkActive();
    return () => {
      if (!this.listeners.delete(fn)) return;
      dc.unsubscribe(this.name, wrapped);
      this.checkActive();
    };
  }

  get sinkCount(): number { return this.sinks.length; }
  get subscriberCount(): number { return this.listeners.size; }

  private checkActive(): void {
    const a = this.active;
    if (a !== this.wasActive) { this.wasActive = a; this.onActiveChange?.(a); }
  }

  /** Detaches every sink (closing them) and every subscriber made through subscribe(). */
  async close(): Promise<void> {
    const sinks = this.sinks;
    this.sinks = [];
    for (const fn of [...this.listeners]) { dc.unsubscribe(this.name, fn as unknown as (m: unknown, name: string | symbol) => void); }
    this.listeners.clear();
    this.checkActive();
    await Promise.all(sinks.map((s) => s.close?.()));
  }

  /** Registers the bus's own counters (read at scrape time). */
  registerMetrics(reg: Registry): void {
    const s = this.stats;
    reg.counterFunc('strata_flows_records_total', 'Flow records built and published.', () => s.http, { type: 'l7' });
    reg.counterFunc('strata_flows_records_total', 'Flow records built and published.', () => s.l4, { type: 'l3_l4' });
    reg.counterFunc('strata_flows_sink_errors_total', 'Flow sinks detached because they failed.', () => s.sinkErrors);
    reg.gaugeFunc('strata_flows_sinks', 'Flow exporters attached.', () => this.sinks.length);
    reg.gaugeFunc('strata_flows_subscribers', 'Flow stream subscribers (admin /flows clients and others).', () => this.listeners.size);
  }
}

/** The process-wide bus (one dataplane per process); modules may also make their own. */
export const flowBus = new FlowBus();
