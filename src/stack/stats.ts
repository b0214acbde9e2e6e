// Counters of the L2-L4 stack: every drop has a reason (smoltcp's unit
// error, gVisor's Stats). Drops live in one Float64Array indexed by the
// stable numbers of DROP, so counting is one typed-array increment and a
// snapshot is one copy; the other counters are plain number fields.
//
// The numbers in DROP are stable: append new reasons, never renumber.

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
  arpRequestsSent: number; arpRepliesSent: number; arpRequestsReceived: number; arpRepliesReceived: number;
  ipRxPackets: number; ipTxPackets: number; ipRxDelivered: number;
  fragmentsReceived: number; reassembled: number; fragmentsSent: number; fragmentedPackets: number;
  icmpEchoRequests: number; icmpEchoReplies: number; icmpErrorsSent: number; icmpErrorsReceived: number;
  pmtuUpdates: number;
  udpRxDatagrams: number; udpTxDatagrams: number;
  polls: number;
  drops: Record<DropReason, number>;
  dropsTotal: number;
}

export class StackStats {
  readonly drops = new Float64Array(DROP_COUNT);
  rxFrames = 0; rxBytes = 0; txFrames = 0; txBytes = 0;
  arpRequestsSent = 0; arpRepliesSent = 0; arpRequestsReceived = 0; arpRepliesReceived = 0;
  ipRxPackets = 0; ipTxPackets = 0; ipRxDelivered = 0;
  fragmentsReceived = 0; reassembled = 0; fragmentsSent = 0; fragmentedPackets = 0;
  icmpEchoRequests = 0; icmpEchoReplies = 0; icmpErrorsSent = 0; icmpErrorsReceived = 0;
  pmtuUpdates = 0;
  udpRxDatagrams = 0; udpTxDatagrams = 0;
  polls = 0;

  /** Counts one drop. */
  drop(reason: number): void { this.drops[reason]!++; }

  dropsOf(reason: DropReason): number { return this.drops[DROP[reason]]!; }

  snapshot(): StackStatsSnapshot {
    const drops = {} as Record<DropReason, number>;
    let total = 0;
    for (let i = 0; i < DROP_COUNT; i++) { drops[DROP_NAMES[i]!] = this.drops[i]!; total += this.drops[i]!; }
    return {
      rxFrames: this.rxFrames, rxBytes: this.rxBytes, txFrames: this.txFrames, txBytes: this.txBytes,
      arpRequestsSent: this.arpRequestsSent, arpRepliesSent: this.arpRepliesSent,
      arpRequestsReceived: this.arpRequestsReceived, arpRepliesReceived: this.arpRepliesReceived,
      ipRxPackets: this.ipRxPackets, ipTxPackets: this.ipTxPackets, ipRxDelivered: this.ipRxDelivered,
      fragmentsReceived: this.fragmentsReceived, reassembled: this.reassembled,
      fragmentsSent: this.fragmentsSent, fragmentedPackets: this.fragmentedPackets,
      icmpEchoRequests: this.icmpEchoRequests, icmpEchoReplies: this.icmpEchoReplies,
      icmpErrorsSent: this.icmpErrorsSent, icmpErrorsReceived: this.icmpErrorsReceived,
      pmtuUpdates: this.pmtuUpdates, udpRxDatagrams: this.udpRxDatagrams, udpTxDatagrams: this.udpTxDatagrams,
      polls: this.polls, drops, dropsTotal: total,
    };
  }
}
