// Constants shared with the XDP program, mirrored from bpf/strata_shared.h.
// test/xdp-shared.test.ts parses the header and checks every value here.
export const PROG_NAME = 'strata_xdp';
export const MAP = {
  xsks: 'xsks_map',
  steerRules: 'steer_rules',
  steerAddrs: 'steer_addrs',
  denySrc: 'deny_src',
  denySrcPort: 'deny_src_port',
  counters: 'counters',
  meta: 'meta',
  xskBound: 'xsk_bound',
} as const;

export const MAX_QUEUES = 64;
export const MAX_STEER_RULES = 1024;
export const MAX_STEER_ADDRS = 256;
export const MAX_DENY = 4096;
export const STEER_RANGES = 8;
export const FAMILY_V4 = 4;
export const FAMILY_V6 = 6;
export const PROTO_ANY = 0;

/** Verdict reasons, the index into the per-CPU counters (STRATA_R_*). */
export const REASON = {
  pass_not_steered: 0,
  pass_non_ip: 1,
  redirected: 2,
  arp_steered: 3,
  ndp_steered: 4,
  no_socket: 5,
  deny_drop: 6,
  malformed: 7,
  pass_vlan_depth: 8,
  socket_gone: 9,
} as const;
export const REASON_MAX = 10;
export type ReasonName = keyof typeof REASON;
export const REASON_NAMES: readonly ReasonName[] = (Object.keys(REASON) as ReasonName[]).sort((a, b) => REASON[a] - REASON[b]);

// Layouts (bytes), as the C compiler lays the structs out.
export const STEER_KEY_SIZE = 20;   // family u8, proto u8, pad u16, addr[16]
export const STEER_VAL_SIZE = 4 + STEER_RANGES * 4;  // nranges u32, {lo u16, hi u16}[8]
export const ADDR_KEY_SIZE = 20;    // family u8, pad[3], addr[16]
export const DENY_KEY_SIZE = 20;    // prefixlen u32, addr[16]
export const DENY_PORT_KEY_SIZE = 24; // prefixlen u32, port be16, addr[16], pad[2]
export const COUNTER_SIZE = 16;     // packets u64, bytes u64
export const META_SIZE = 16;        // owner_pid u32, flags u32, owner_start u64
