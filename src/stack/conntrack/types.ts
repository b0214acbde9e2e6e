// Constants shared by the conntrack table, its TCP tracker and its users.
// Stable numbers in `as const` tables (llhttp's habit): they appear in
// flow records and metrics, so never renumber them.

import type { CT_RESULT } from '../registration.js';

/** A CT_RESULT value, or CT_UNTRACKED. */
export type CtVerdict = (typeof CT_RESULT)[keyof typeof CT_RESULT] | typeof CT_UNTRACKED;

/**
 * track() found nothing to track and nothing to drop: a packet that cannot
 * start a flow (a stray ACK with loose pickup off, a RST or SYN-ACK with no
 * entry, an ICMP error quoting an unknown flow, a protocol we do not track),
 * with `dropInvalid` off. Pass it on: the TCP layer answers a stray segment
 * with a RST, as Linux does for conntrack-INVALID packets it accepts.
 */
export const CT_UNTRACKED = -1;

/** Direction of a packet relative to its entry. */
export const CT_DIR = { ORIGINAL: 0, REPLY: 1 } as const;

/** Where the packet was seen: received by the dataplane or sent by it. Recorded as the flow's origin. */
export const CT_HOOK = { IN: 0, OUT: 1 } as const;

/**
 * Entry states. TCP states use netfilter's names (nf_conntrack_proto_tcp.c)
 * and meanings: FIN_WAIT = one side sent FIN, CLOSE_WAIT = that FIN was
 * acknowledged, LAST_ACK = both sides sent FIN, TIME_WAIT = both FINs
 * acknowledged, CLOSE = reset; SYN_SENT2 = simultaneous open. Non-TCP flows
 * are NEW until a reply is seen, then REPLIED.
 */
export const CT_STATE = {
  NONE: 0,
  SYN_SENT: 1,
  SYN_RECV: 2,
  ESTABLISHED: 3,
  FIN_WAIT: 4,
  CLOSE_WAIT: 5,
  LAST_ACK: 6,
  TIME_WAIT: 7,
  CLOSE: 8,
  SYN_SENT2: 9,
  NEW: 10,
  REPLIED: 11,
} as const;

export const CT_STATE_NAMES = [
  'NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT',
  'LAST_ACK', 'TIME_WAIT', 'CLOSE', 'SYN_SENT2', 'NEW', 'REPLIED',
] as const;
export type CtStateName = (typeof CT_STATE_NAMES)[number];

/** Why a packet was judged invalid (the `reason` label of strata_conntrack_invalid_total). */
export const CT_INVALID = {
  MALFORMED: 0,
  FRAGMENT: 1,
  BAD_FLAGS: 2,
  INVALID_STATE: 3,
  OUT_OF_WINDOW: 4,
  NO_ENTRY: 5,
  POLICY: 6,
} as const;
export const CT_INVALID_NAMES = ['malformed', 'fragment', 'bad_flags', 'invalid_state', 'out_of_window', 'no_entry', 'policy'] as const;
export type CtInvalidReason = (typeof CT_INVALID_NAMES)[number];

/** Why an entry left the table (onRemove and the end event). */
export const CT_END = { EXPIRED: 0, EVICTED: 1, DELETED: 2, REPLACED: 3, CLEARED: 4 } as const;
export const CT_END_NAMES = ['expired', 'evicted', 'deleted', 'replaced', 'cleared'] as const;

/**
 * Timeout classes: every entry maps to one, by its state and, for TCP,
 * whether it has seen a reply (UNREPLIED, see CtTimeouts.tcpUnreplied).
 */
export const CT_CLASS = { SYN: 0, ESTABLISHED: 1, CLOSING: 2, OTHER: 3, UNREPLIED: 4 } as const;
export const CT_CLASS_NAMES = ['syn', 'established', 'closing', 'other', 'unreplied'] as const;
export type CtClassName = (typeof CT_CLASS_NAMES)[number];
/** How many timeout classes there are (the table keeps one expiry list per class). */
export const CT_CLASS_COUNT = CT_CLASS_NAMES.length;

/** Timeouts in milliseconds of idle time (since the last accepted packet). */
export interface CtTimeouts {
  /** SYN_SENT, SYN_RECV, SYN_SENT2. Cilium: 60 s. */
  tcpSyn: number;
  /** ESTABLISHED. Cilium: 6 h. */
  tcpEstablished: number;
  /** FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE. Cilium: 10 s. */
  tcpClosing: number;
  /** UDP, ICMP and other non-TCP flows. Cilium: 60 s. */
  other: number;
  /**
   * The most a TCP entry lives while no packet has been accepted in its
   * reply direction: its timeout is min(its state's timeout, tcpUnreplied)
   * until the first reply, then its state's timeout alone. Default 60 s.
   *
   * Why: with loose pickup a bare ACK creates an ESTABLISHED entry, so a
   * late duplicate of a closed connection's last ACK, or one spoofed ACK,
   * would otherwise hold an entry for tcpEstablished (6 h), and an ACK flood
   * would fill the table with such entries.
   *
   * The rule is netfilter's (nf_conntrack_proto_tcp.c, nf_conntrack_tcp_packet():
   * an ESTABLISHED entry without IPS_SEEN_REPLY gets
   * min(timeout, nf_conntrack_tcp_timeout_unacknowledged)), keyed on a reply
   * as there, applied to every TCP state rather than ESTABLISHED alone (the
   * other states' defaults are no longer than 60 s, so only ESTABLISHED
   * differs unless timeouts are configured). Not Cilium's: Cilium gives
   * CT_SYN_TIMEOUT only until a non-SYN packet is seen in either direction
   * (bpf/lib/conntrack.h ct_update_timeout(), `seen_non_syn`, cilium PR
   * 3238), which the bare ACK at issue already is. The value is Cilium's
   * 60 s for TCP entries that were never answered (its CT_SYN_TIMEOUT, the
   * same as tcpSyn here), not Linux's 300 s (unacknowledged), in keeping
   * with the other defaults of this table.
   */
  tcpUnreplied: number;
}

export const DEFAULT_TIMEOUTS: Readonly<CtTimeouts> = {
  tcpSyn: 60_000,
  tcpEstablished: 21_600_000,
  tcpClosing: 10_000,
  other: 60_000,
  tcpUnreplied: 60_000,
};

/** TCP header flag bits. */
export const TCPF = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

/**
 * The parsed facts conntrack needs from one packet. One instance is reused
 * (Conntrack.pkt): the IPv4 layer may fill it from fields it already parsed
 * and call trackPacket(), or call track() on the raw bytes.
 */
export class CtPacket {
  proto = 0;
  /** Host-order IPv4 addresses. */
  src = 0;
  dst = 0;
  /** Ports; for ICMP echo both hold the identifier. */
  sport = 0;
  dport = 0;
  /** TCP only. */
  flags = 0;
  seq = 0;
  ack = 0;
  /** Raw window field (unscaled). */
  win = 0;
  /** Window scale option on a SYN, or -1 when absent. */
  wscale = -1;
  /** TCP payload bytes. */
  payloadLen = 0;
  /** Bytes counted to the flow (IP total length). */
  ipLen = 0;
  /** An ICMP error: the tuple fields hold the quoted packet's tuple. */
  related = false;
  /** ICMP type (for echo: 8 request, 0 reply). */
  icmpType = -1;
}
