// The busiest flows, for `strata top` and the admin listener's /top.
//
// Sources are read when asked (a scrape), never on the packet path:
//   conntrackTop(ct)   walks the conntrack table's entries in place (one
//                      re-pointed view, no copy of the table), keeping the n
//                      largest in a small sorted array;
//   RecordTop          for transports without a conntrack table (the kernel):
//                      sums the bus's flow records per 5-tuple. It subscribes
//                      to the bus, so records are built while it runs: use
//                      it only where that cost is wanted.
// Rates are the client's business (strata top diffs two snapshots by key).
//
// Also here: watchConntrack(), which turns conntrack's end-of-flow events
// into L3_L4 flow records, subscribing to them only while the bus is active.
import type { Conntrack, CtEntryInfo, CtEntryView } from '../stack/conntrack/table.js';
import { conntrackEndEvents } from '../stack/conntrack/table.js';
import type { Clock } from '../util/clock.js';
import { wallClock } from '../util/clock.js';
import { flowBus, type FlowBus } from './bus.js';
import { buildL4Record, ip4String, type FlowContext, type FlowRecord } from './record.js';

export type TopOrder = 'bytes' | 'packets';

export interface TopFlow {
  /** Stable key for diffing snapshots: "proto src:sport dst:dport" plus the source name. */
  key: string;
  source: string;
  proto: 'TCP' | 'UDP' | 'ICMP' | string;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  state: string | null;
  packets: number;
  bytes: number;
  packets_original: number;
  packets_reply: number;
  bytes_original: number;
  bytes_reply: number;
  /** Conntrack id, when the source is a conntrack table. */
  id: number | null;
  /** ms since the flow was first seen, in the source's clock (without a clock: from its first to its last packet). */
  age_ms: number | null;
}

export interface TopSource {
  readonly name: string;
  /** Calls fn for every flow the source knows (fn may keep only what it needs). */
  forEachFlow(fn: (f: TopFlow) => void): void;
  /** How many flows the source holds. */
  size(): number;
}

export interface TopSnapshot {
  time: string;
  by: TopOrder;
  total_flows: number;
  flows: TopFlow[];
}

const PROTO: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP' };

function fromView(v: CtEntryView, name: string, now: number): TopFlow {
  const proto = PROTO[v.proto] ?? String(v.proto);
  const src = ip4String(v.src), dst = ip4String(v.dst);
  const po = v.packets(0), pr = v.packets(1), bo = v.bytes(0), br = v.bytes(1);
  return {
    key: `${name} ${proto} ${src}:${v.sport} ${dst}:${v.dport}`, source: name, proto, src, sport: v.sport, dst, dport: v.dport,
    state: v.stateName, packets: po + pr, bytes: bo + br, packets_original: po, packets_reply: pr, bytes_original: bo, bytes_reply: br,
    id: v.id, age_ms: Math.max(0, now - v.firstSeen),
  };
}

/** A conntrack table as a top source. Only the n largest are materialised (see topFlows). */
export function conntrackTop(ct: Conntrack, name = 'conntrack', clock?: Clock): TopSource {
  return {
    name,
    size: () => ct.size,
    forEachFlow(fn) {
      const now = clock?.now() ?? 0;
      ct.forEach((v) => fn(fromView(v, name, clock ? now : v.lastSeen)));
    },
  };
}

/** Sums flow records per 5-tuple (bounded: the least recently updated tuple is forgotten first). */
export class RecordTop implements TopSource {
  private readonly flows = new Map<string, TopFlow>();
  private unsubscribe: (() => void) | null;
  constructor(bus: FlowBus = flowBus, readonly name = 'records', private readonly maxFlows = 4096) {
    this.unsubscribe = bus.subscribe((r) => this.add(r));
  }
  add(r: FlowRecord): void {
    if (r.IP === null) return;
    const tcp = r.l4?.TCP, udp = r.l4?.UDP;
    const proto = tcp ? 'TCP' : udp ? 'UDP' : 'ICMP';
    const sport = tcp?.source_port ?? udp?.source_port ?? 0, dport = tcp?.destination_port ?? udp?.destination_port ?? 0;
    const key = `${this.name} ${proto} ${r.IP.source}:${sport} ${r.IP.destination}:${dport}`;
    let f = this.flows.get(key);
    if (f === undefined) {
      if (this.flows.size >= this.maxFlows) { const oldest = this.flows.keys().next().value; if (oldest !== undefined) this.flows.delete(oldest); }
      f = { key, source: this.name, proto, src: r.IP.source, sport, dst: r.IP.destination, dport, state: null, packets: 0, bytes: 0, packets_original: 0, packets_reply: 0, bytes_original: 0, bytes_reply: 0, id: null, age_ms: null };
    } else this.flows.delete(key); // re-insert: Map order is recency
    this.flows.set(key, f);
    const s = r.strata;
    if (r.Type === 'L7') {
      const rq = s.bytes.request ?? 0, rs = s.bytes.response ?? 0;
      f.bytes_original += rq; f.bytes_reply += rs; f.bytes += rq + rs;
      if (s.tcp) { f.packets_original = s.tcp.segs_in; f.packets_reply = s.tcp.segs_out; f.packets = s.tcp.segs_in + s.tcp.segs_out; }
      f.state = s.tcp?.state ?? f.state;
    } else if (s.flow) {
      // An L4 record carries the flow's totals: they replace the sums.
      f.packets_original = s.flow.packets.original; f.packets_reply = s.flow.packets.reply;
      f.bytes_original = s.flow.bytes.original; f.bytes_reply = s.flow.bytes.reply;
      f.packets = f.packets_original + f.packets_reply; f.bytes = f.bytes_original + f.bytes_reply;
      f.state = s.conntrack?.state ?? s.tcp?.state ?? 'CLOSED';
    }
  }
  size(): number { return this.flows.size; }
  forEachFlow(fn: (f: TopFlow) => void): void { for (const f of this.flows.values()) fn(f); }
  close(): void { this.unsubscribe?.(); this.unsubscribe = null; }
}

/** The n busiest flows over all sources, largest first. */
export function topFlows(sources: readonly TopSource[], n: number, by: TopOrder = 'bytes', wall: Clock = wallClock): TopSnapshot {
  const top: TopFlow[] = [];
  let total = 0;
  const weight = by === 'bytes' ? (f: TopFlow) => f.bytes : (f: TopFlow) => f.packets;
  for (const s of sources) {
    total += s.size();
    s.forEachFlow((f) => {
      if (n <= 0) return;
      const w = weight(f);
      if (top.length === n && w <= weight(top[n - 1]!)) return;
      // Insertion into a short sorted array: n is a screenful.
      let i = top.length;
      while (i > 0 && weight(top[i - 1]!) < w) i--;
      top.splice(i, 0, f);
      if (top.length > n) top.pop();
    });
  }
  return { time: new Date(wall.now()).toISOString(), by, total_flows: total, flows: top };
}

export interface WatchConntrackOptions {
  bus?: FlowBus;
  ctx: FlowContext;
  wall?: Clock;
}

/**
 * Emits one L3_L4 record per conntrack entry that ends (expired, evicted,
 * deleted…). Subscribes to conntrack's end events only while the bus has
 * listeners, so an idle bus costs conntrack nothing. Returns a stop function.
 */
export function watchConntrack(opts: WatchConntrackOptions): () => void {
  const bus = opts.bus ?? flowBus;
  const wall = opts.wall ?? wallClock;
  const onEnd = (ev: { entry: CtEntryInfo; cause: string }): void => {
    const e = ev.entry;
    bus.emit1(buildL4Record, {
      ctx: opts.ctx, wallMs: wall.now(), proto: e.proto,
      src: { address: ip4String(e.src), port: e.sport }, dst: { address: ip4String(e.dst), port: e.dport },
      conntrack: e, end: ev.cause, denied: e.denied, dropReason: e.denied ? 'POLICY_DENIED' : undefined,
    });
  };
  let subscribed = false;
  const sync = (active: boolean): void => {
    if (active && !subscribed) { conntrackEndEvents.subscribe(onEnd); subscribed = true; }
    else if (!active && subscribed) { conntrackEndEvents.unsubscribe(onEnd); subscribed = false; }
  };
  const prev = bus.onActiveChange;
  bus.onActiveChange = (a) => { prev?.(a); sync(a); };
  sync(bus.active);
  return () => { bus.onActiveChange = prev; sync(false); };
}
