/* Constants shared by the XDP program (bpf/strata_xdp.c) and userspace.
 *
 * Mirrored in TypeScript in src/xdp/shared.ts; test/xdp-shared.test.ts parses
 * this file and checks that both sides agree. Change them together.
 *
 * Map names are also pin names: the loader pins every map under
 * /sys/fs/bpf/strata/<netns>_<ifname>/<name>. External programs (the C
 * benchmark reference) open <pinDir>/xsks_map and insert their socket there,
 * so these names are a stable interface.
 */
#ifndef STRATA_SHARED_H
#define STRATA_SHARED_H

#define STRATA_PROG_NAME        "strata_xdp"
#define STRATA_MAP_XSKS         "xsks_map"
#define STRATA_MAP_STEER_RULES  "steer_rules"
#define STRATA_MAP_STEER_ADDRS  "steer_addrs"
#define STRATA_MAP_DENY_SRC     "deny_src"
#define STRATA_MAP_DENY_SRC_PORT "deny_src_port"
#define STRATA_MAP_COUNTERS     "counters"
#define STRATA_MAP_META         "meta"
#define STRATA_MAP_XSK_BOUND    "xsk_bound"

#define STRATA_MAX_QUEUES       64
#define STRATA_MAX_STEER_RULES  1024
#define STRATA_MAX_STEER_ADDRS  256
#define STRATA_MAX_DENY         4096
/* Port ranges per (address, protocol) steering entry. */
#define STRATA_STEER_RANGES     8

/* Address families in keys (not AF_*: these are ours, stable). */
#define STRATA_FAMILY_V4        4
#define STRATA_FAMILY_V6        6

/* Protocol 0 in a steering key means "every protocol to this address". */
#define STRATA_PROTO_ANY        0

/* Verdict reasons: the index into the per-CPU counters array. */
#define STRATA_R_PASS_NOT_STEERED   0  /* IP, destination not steered: to the kernel */
#define STRATA_R_PASS_NON_IP        1  /* other ethertypes, ARP/NDP not for us */
#define STRATA_R_REDIRECTED         2  /* IP to a steered destination, into the XSK */
#define STRATA_R_ARP_STEERED        3  /* ARP whose target is a steered address */
#define STRATA_R_NDP_STEERED        4  /* neighbour solicitation for a steered address */
#define STRATA_R_NO_SOCKET          5  /* steered, but no XSK on this queue: XDP_PASS */
#define STRATA_R_DENY_DROP          6  /* source matched the deny map: XDP_DROP */
#define STRATA_R_MALFORMED          7  /* truncated or inconsistent header: XDP_DROP */
#define STRATA_R_PASS_VLAN_DEPTH    8  /* more VLAN tags than we parse: to the kernel */
#define STRATA_R_SOCKET_GONE        9  /* steered, the queue's XSK was bound and is gone
                                          * (its owner died without unbinding): XDP_PASS */
#define STRATA_R__MAX               10

/* Keys and values, in host byte order unless a field says otherwise. */
struct strata_steer_key {
	__u8  family;      /* STRATA_FAMILY_V4 / _V6 */
	__u8  proto;       /* IPPROTO_TCP, IPPROTO_UDP, or STRATA_PROTO_ANY */
	__u16 pad;
	__u8  addr[16];    /* network order; v4 in the first 4 bytes, rest zero */
};

struct strata_port_range {
	__u16 lo;          /* host order, inclusive */
	__u16 hi;
};

struct strata_steer_val {
	__u32 nranges;     /* 0 with proto ANY: every packet to the address */
	struct strata_port_range r[STRATA_STEER_RANGES];
};

struct strata_addr_key {
	__u8  family;
	__u8  pad[3];
	__u8  addr[16];
};

/* LPM keys: v4 sources are mapped to ::ffff:a.b.c.d, so one trie serves both. */
struct strata_deny_key {
	__u32 prefixlen;   /* bits of addr that must match (v4: 96 + len) */
	__u8  addr[16];
};

struct strata_deny_port_key {
	__u32 prefixlen;   /* 16 (port) + bits of addr */
	__u16 port;        /* destination port, network order */
	__u8  addr[16];
};

/* Control-plane bookkeeping, unused by the program: who attached it. The
 * start time tells a dead owner from a new process that reused its pid. */
struct strata_meta {
	__u32 owner_pid;   /* process that detaches it on exit; 0: none (CLI attach) */
	__u32 flags;
	__u64 owner_start; /* owner's start time, field 22 of /proc/PID/stat (clock ticks since boot) */
};

struct strata_counter {
	__u64 packets;
	__u64 bytes;
};

#endif
