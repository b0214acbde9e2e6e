// Counters of the L2-L4 stack: every drop has a reason (smoltcp's unit
// error, gVisor's Stats). Drops live in one Float64Array indexed by the
// stable numbers of DROP, so counting is one typed-array increment and a
// snapshot is one copy; the other counters are plain number fields.
//
// The numbers in DROP are stable: append new reasons, never renumber.
//
// Each drop is also published on the diagnostics channel "strata:stack:drop"
// ({ link, reason }) when, and only when, someone subscribes.
import { EventPublisher } from '../obs/events.js';

export const DROP = {
  // Ethernet
  ETH_SHORT: 0,
  ETH_NOT_FOR_US: 1,
  ETH_UNKNOWN_TYPE: 2,
  ETH_VLAN: 3,
  // ARP
  ARP_MALFORMED: 4,
  ARP_NOT_FOR_US: 5,
  ARP_QUEUE_FULL: 6,
  ARP_FAILED: 7,
  // IPv4 input
  IP_SHORT: 8,
  IP_BAD_VERSION: 9,
  IP_BAD_HEADER_LEN: 10,
  IP_BAD_LENGTH: 11,
  IP_BAD_CHECKSUM: 12,
  IP_BAD_OPTIONS: 13,
  IP_TTL_EXCEEDED: 14,
  IP_NOT_FOR_US: 15,
  IP_MARTIAN_SOURCE: 16,
  IP_UNKNOWN_PROTOCOL: 17,
  // Reassembly
  FRAG_OVERLAP: 18,
  FRAG_DUPLICATE: 19,
  FRAG_TOO_BIG: 20,
  FRAG_BAD_LENGTH: 21,
  REASM_TIMEOUT: 22,
  REASM_MEMORY_FULL: 23,
  // IPv4 output
  NO_ROUTE: 24,
  NO_FRAME: 25,
  FRAG_NEEDED_DF: 26,
  TX_RING_FULL: 27,
  // Connection tracking
  CONNTRACK: 28,
  // ICMP
  ICMP_SHORT: 29,
  ICMP_BAD_CHECKSUM: 30,
  ICMP_UNHANDLED_TYPE: 31,
  ICMP_BAD_QUOTE: 32,
  ICMP_RATE_LIMITED: 33,
  // UDP
  UDP_SHORT: 34,
  UDP_BAD_LENGTH: 35,
  UDP_BAD_CHECKSUM: 36,
  UDP_NO_SOCKET: 37,
  UDP_TOO_BIG: 38,
  // Other network protocols
  IPV6_UNSUPPORTED: 39,
  IP_BROADCAST_SOURCE: 40,
  ARP_TABLE_FULL: 41,
  LOOPBACK_FULL: 42,
} as const;
export type DropReason = keyof typeof DROP;
export const DROP_NAMES: readonly DropReason[] = (() => {
  const names: DropReason[] = [];
  for (const [k, v] of Object.entries(DROP)) names[v] = k as DropReason;
  return names;
})();
const DROP_COUNT = DROP_NAMES.length;

/** A plain-object copy of the counters, for observability and tests. */
export interface StackStatsSnapshot {
  rxFrames: number; rxBytes: number; txFrames: number; txBytes: number;
  arpRequestsSent: number; arpRepliesSent: number; arpRequestsReceived: number; arpRepliesReceived: number; arpConflicts: number;
  ipRxPackets: number; ipTxPackets: number; ipRxDelivered: number;
  fragmentsReceived: number; reassembled: number; fragmentsSent: number; fragmentedPackets: number;
  icmpEchoRequests: number; icmpEchoReplies: number; icmpErrorsSent: number; icmpErrorsReceived: number;
  pmtuUpdates: number;
  udpRxDatagrams: number; udpTxDatagrams: number;
  loopedFrames: number;
  polls: number;
  drops: Record<DropReason, number>;
  dropsTotal: number;
}

export interface StackDropEvent { link: string; reason: DropReason }
export const stackDropEvents = new EventPublisher<StackDropEvent>('strata:stack:drop');

export class StackStats {
  readonly drops = new Float64Array(DROP_COUNT);
  /** Names the stack in drop events (the link's name). */
  label = '';
  rxFrames = 0; rxBytes = 0; txFrames = 0; txBytes = 0;
  arpRequestsSent = 0; arpRepliesSent = 0; arpRequestsReceived = 0; arpRepliesReceived = 0;
  /** ARP packets from another host claiming one of our addresses. */
  arpConflicts = 0;
  ipRxPackets = 0; ipTxPackets = 0; ipRxDelivered = 0;
  fragmentsReceived = 0; reassembled = 0; fragmentsSent = 0; fragmentedPackets = 0;
  icmpEchoRequests = 0; icmpEchoReplies = 0; icmpErrorsSent = 0; icmpErrorsReceived = 0;
  pmtuUpdates = 0;
  udpRxDatagrams = 0; udpTxDatagrams = 0;
  /** Frames to our own addresses, delivered through the loopback queue. */
  loopedFrames = 0;
  polls = 0;

  /** Counts one drop. */
  drop(reason: number): void {
    this.drops[reason]!++;
    if (stackDropEvents.channel.hasSubscribers) stackDropEvents.channel.publish({ link: this.label, reason: DROP_NAMES[reason]! } satisfies StackDropEvent);
  }

  dropsOf(reason: DropReason): number { return this.drops[DROP[reason]]!; }

  snapshot(): StackStatsSnapshot {
    const drops = {} as Record<DropReason, number>;
    let total = 0;
    for (let i = 0; i < DROP_COUNT; i++) { drops[DROP_NAMES[i]!] = this.drops[i]!; total += this.drops[i]!; }
    return {
      rxFrames: this.rxFrames, rxBytes: this.rxBytes, txFrames: this.txFrames, txBytes: this.txBytes,
      arpRequestsSent: this.arpRequestsSent, arpRepliesSent: this.arpRepliesSent,
      arpRequestsReceived: this.arpRequestsReceived, arpRepliesReceived: this.arpRepliesReceived, arpConflicts: this.arpConflicts,
      ipRxPackets: this.ipRxPackets, ipTxPackets: this.ipTxPackets, ipRxDelivered: this.ipRxDelivered,
      fragmentsReceived: this.fragmentsReceived, reassembled: this.reassembled,
      fragmentsSent: this.fragmentsSent, fragmentedPackets: this.fragmentedPackets,
      icmpEchoRequests: this.icmpEchoRequests, icmpEchoReplies: this.icmpEchoReplies,
      icmpErrorsSent: this.icmpErrorsSent, icmpErrorsReceived: this.icmpErrorsReceived,
      pmtuUpdates: this.pmtuUpdates, udpRxDatagrams: this.udpRxDatagrams, udpTxDatagrams: this.udpTxDatagrams, loopedFrames: this.loopedFrames,
      polls: this.polls, drops, dropsTotal: total,
    };
  }
}

// ---- metrics ----

/** Prometheus-style names for the plain counters (all monotonic). */
const COUNTER_METRICS: readonly [keyof Omit<StackStatsSnapshot, 'drops' | 'dropsTotal'>, string, string][] = [
  ['rxFrames', 'strata_stack_rx_frames_total', 'Frames received from the link.'],
  ['rxBytes', 'strata_stack_rx_bytes_total', 'Bytes received from the link.'],
  ['txFrames', 'strata_stack_tx_frames_total', 'Frames queued to the link.'],
  ['txBytes', 'strata_stack_tx_bytes_total', 'Bytes queued to the link.'],
  ['arpRequestsSent', 'strata_stack_arp_requests_sent_total', 'ARP requests sent (resolution, probes, announcements).'],
  ['arpRepliesSent', 'strata_stack_arp_replies_sent_total', 'ARP replies sent for our addresses.'],
  ['arpConflicts', 'strata_stack_arp_conflicts_total', 'ARP from other hosts claiming one of our addresses.'],
  ['ipRxPackets', 'strata_stack_ip_rx_packets_total', 'IPv4 packets received.'],
  ['ipTxPackets', 'strata_stack_ip_tx_packets_total', 'IPv4 datagrams sent (before fragmentation).'],
  ['ipRxDelivered', 'strata_stack_ip_delivered_total', 'IPv4 datagrams delivered to ICMP or a transport.'],
  ['fragmentsReceived', 'strata_stack_ip_fragments_received_total', 'IPv4 fragments received.'],
  ['reassembled', 'strata_stack_ip_reassembled_total', 'IPv4 datagrams reassembled.'],
  ['fragmentsSent', 'strata_stack_ip_fragments_sent_total', 'IPv4 fragments sent.'],
  ['icmpEchoRequests', 'strata_stack_icmp_echo_requests_total', 'ICMP echo requests received.'],
  ['icmpErrorsSent', 'strata_stack_icmp_errors_sent_total', 'ICMP errors sent.'],
  ['icmpErrorsReceived', 'strata_stack_icmp_errors_received_total', 'ICMP errors received.'],
  ['pmtuUpdates', 'strata_stack_pmtu_updates_total', 'Path MTU reductions learned from ICMP.'],
  ['udpRxDatagrams', 'strata_stack_udp_rx_datagrams_total', 'UDP datagrams delivered to sockets.'],
  ['udpTxDatagrams', 'strata_stack_udp_tx_datagrams_total', 'UDP datagrams sent.'],
];

/** The part of obs/metrics' Registry used here (kept structural so stats.ts stays a leaf module). */
export interface MetricsRegistryLike {
  register<M extends { readonly name: string; readonly help: string; readonly type: 'counter' | 'gauge' | 'histogram'; render(out: string[]): void }>(m: M): M;
  counterFunc(name: string, help: string, read: () => number, labels?: Readonly<Record<string, string>>): unknown;
}

/**
 * Registers a stack's counters: strata_stack_drops_total{reason=…} read
 * straight from the drops array, and one counter per plain field. Values
 * are read at scrape time; nothing is added to the packet path. `labels`
 * (e.g. {iface: "tap0"}) tell several stacks apart.
 */
export function registerStackMetrics(reg: MetricsRegistryLike, stats: StackStats, labels: Readonly<Record<string, string>> = {}): void {
  registerDropsByReason(reg, 'strata_stack_drops_total', 'Packets the L2-L4 stack dropped, by reason.', DROP_NAMES.slice(0, DROP_COUNT), () => stats.drops, labels);
  for (const [field, name, help] of COUNTER_METRICS) reg.counterFunc(name, help, () => stats[field], labels);
}

/**
 * One counter family labelled reason="…" (lowercased): counts()[i] for
 * reasons[i], read at scrape time (counts() is called then, so a stats view
 * that follows a reopened transport stays current).
 */
export function registerDropsByReason(reg: MetricsRegistryLike, name: string, help: string, reasons: readonly string[], counts: () => ArrayLike<number>,
  labels: Readonly<Record<string, string>> = {}): void {
  const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  const base = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`);
  const lines = reasons.map((r) => `${name}{${[...base, `reason="${r.toLowerCase()}"`].join(',')}} `);
  reg.register({
    name, help, type: 'counter',
    render(out: string[]): void { const c = counts(); for (let i = 0; i < lines.length; i++) out.push(`${lines[i]!}${c[i]!}`); },
  });
}
