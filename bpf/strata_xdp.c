// SPDX-License-Identifier: GPL-2.0
/* strata's XDP program: steer the dataplane's traffic into AF_XDP sockets,
 * drop denied sources, pass everything else to the kernel untouched.
 *
 * For each frame: parse Ethernet (up to two 802.1Q/802.1ad tags), then ARP,
 * IPv4 or IPv6 (through up to four extension headers) and the TCP/UDP ports,
 * every step bounds-checked through a header cursor. Verdicts, in order:
 *   1. source in the deny trie (optionally with the destination port)  DROP
 *   2. destination (address, protocol, port) in the steering map        REDIRECT
 *      to the XSK of the receiving queue; XDP_PASS if no socket is bound there
 *      (counted apart when a socket was bound and is gone: the kernel empties
 *      the XSKMAP slot when the socket closes, e.g. its owner was killed)
 *   3. ARP / IPv6 neighbour solicitation for a steered address          REDIRECT
 *   4. anything else                                                    PASS
 * A single exit label counts every verdict by reason (per-CPU, packets and
 * bytes); constants shared with userspace live in strata_shared.h.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "strata_shared.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, STRATA_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRATA_MAX_STEER_RULES);
	__type(key, struct strata_steer_key);
	__type(value, struct strata_steer_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} steer_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STRATA_MAX_STEER_ADDRS);
	__type(key, struct strata_addr_key);
	__type(value, __u32);   /* number of steering rules using the address */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} steer_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, STRATA_MAX_DENY);
	__type(key, struct strata_deny_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} deny_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, STRATA_MAX_DENY);
	__type(key, struct strata_deny_port_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} deny_src_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STRATA_R__MAX);
	__type(key, __u32);
	__type(value, struct strata_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

/* Per queue, 1 while userspace has a socket bound there (set by bindXsk,
 * cleared by unbindXsk): an empty XSKMAP slot with the flag still set means
 * the socket died without unbinding. Read only on the no-socket path. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STRATA_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xsk_bound SEC(".maps");

/* Read and written by userspace only (who owns this attachment). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct strata_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meta SEC(".maps");

#define ETH_P_8021Q_  0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_ARP_    0x0806
#define MAX_VLAN_TAGS 2
#define IPV6_FRAG_HDR 44
#define MAX_EXT_HDRS  4
#define ARP_HDR_LEN   28   /* Ethernet/IPv4 ARP */
#define ND_SOLICIT    135

/* A cursor over the frame; parse_* helpers check bounds before advancing. */
struct cursor {
	void *pos;
	void *end;
};

struct vlan_hdr_ {
	__be16 tci;
	__be16 proto;
};

struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8   hlen;
	__u8   plen;
	__be16 oper;
	__u8   sha[6];
	__u8   spa[4];
	__u8   tha[6];
	__u8   tpa[4];
} __attribute__((packed));

struct ipv6_opt_hdr_ {
	__u8 nexthdr;
	__u8 hdrlen;   /* 8-octet units, not counting the first 8 */
};

struct ipv6_frag_hdr_ {
	__u8   nexthdr;
	__u8   reserved;
	__be16 frag_off;  /* offset (13 bits) << 3 | flags */
	__be32 id;
};

struct nd_solicit {
	__u8  type;
	__u8  code;
	__u16 csum;
	__u32 reserved;
	__u8  target[16];
};

/* Parsed facts the verdict needs. */
struct pkt {
	__u8  family;
	__u8  proto;
	__u8  has_ports;
	__be16 dport;
	__u8  saddr[16];
	__u8  daddr[16];
};

static __always_inline int parse_ethhdr(struct cursor *c, __u16 *proto)
{
	struct ethhdr *eth = c->pos;
	if ((void *)(eth + 1) > c->end)
		return -1;
	c->pos = eth + 1;
	__u16 p = bpf_ntohs(eth->h_proto);
#pragma unroll
	for (int i = 0; i < MAX_VLAN_TAGS; i++) {
		if (p != ETH_P_8021Q_ && p != ETH_P_8021AD_)
			break;
		struct vlan_hdr_ *v = c->pos;
		if ((void *)(v + 1) > c->end)
			return -1;
		c->pos = v + 1;
		p = bpf_ntohs(v->proto);
	}
	*proto = p;
	return 0;
}

static __always_inline int parse_ports(struct cursor *c, struct pkt *k)
{
	if (k->proto == IPPROTO_TCP) {
		struct tcphdr *t = c->pos;
		if ((void *)(t + 1) > c->end)
			return -1;
		if (t->doff < 5)
			return -1;
		k->dport = t->dest;
		k->has_ports = 1;
	} else if (k->proto == IPPROTO_UDP) {
		struct udphdr *u = c->pos;
		if ((void *)(u + 1) > c->end)
			return -1;
		k->dport = u->dest;
		k->has_ports = 1;
	}
	return 0;
}

static __always_inline int parse_ipv4(struct cursor *c, struct pkt *k)
{
	struct iphdr *ip = c->pos;
	if ((void *)(ip + 1) > c->end)
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	void *l4 = (void *)ip + ip->ihl * 4;
	if (l4 > c->end)
		return -1;
	k->family = STRATA_FAMILY_V4;
	k->proto = ip->protocol;
	__builtin_memcpy(k->saddr, &ip->saddr, 4);
	__builtin_memcpy(k->daddr, &ip->daddr, 4);
	c->pos = l4;
	/* Non-first fragments carry no L4 header: address-only rules still match. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return 0;
	return parse_ports(c, k);
}

static __always_inline int parse_ipv6(struct cursor *c, struct pkt *k, int *nd_target_steer)
{
	struct ipv6hdr *ip6 = c->pos;
	if ((void *)(ip6 + 1) > c->end)
		return -1;
	if (ip6->version != 6)
		return -1;
	k->family = STRATA_FAMILY_V6;
	k->proto = ip6->nexthdr;
	__builtin_memcpy(k->saddr, &ip6->saddr, 16);
	__builtin_memcpy(k->daddr, &ip6->daddr, 16);
	c->pos = ip6 + 1;
	/* Walk up to MAX_EXT_HDRS extension headers (hop-by-hop, routing,
	 * destination options, fragment) to find TCP/UDP. A non-first fragment
	 * has no L4 header: address-only rules still match it. Longer chains
	 * are classified by address only. */
#pragma unroll
	for (int i = 0; i < MAX_EXT_HDRS; i++) {
		__u8 nh = k->proto;
		if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
			struct ipv6_opt_hdr_ *o = c->pos;
			if ((void *)(o + 1) > c->end)
				return -1;
			void *next = c->pos + ((__u32)o->hdrlen + 1) * 8;
			if (next > c->end)
				return -1;
			k->proto = o->nexthdr;
			c->pos = next;
		} else if (nh == IPV6_FRAG_HDR) {
			struct ipv6_frag_hdr_ *f = c->pos;
			if ((void *)(f + 1) > c->end)
				return -1;
			k->proto = f->nexthdr;
			c->pos = f + 1;
			if (f->frag_off & bpf_htons(0xfff8))
				return 0;
		} else {
			break;
		}
	}
	if (k->proto == IPPROTO_ICMPV6) {
		struct nd_solicit *ns = c->pos;
		if ((void *)(ns + 1) <= c->end && ns->type == ND_SOLICIT && ns->code == 0)
			*nd_target_steer = 1;
		return 0;
	}
	return parse_ports(c, k);
}

static __always_inline int port_in_ranges(const struct strata_steer_val *v, __u16 port)
{
	__u32 n = v->nranges;
	if (n > STRATA_STEER_RANGES)
		n = STRATA_STEER_RANGES;
#pragma unroll
	for (int i = 0; i < STRATA_STEER_RANGES; i++) {
		if (i >= n)
			break;
		if (port >= v->r[i].lo && port <= v->r[i].hi)
			return 1;
	}
	return 0;
}

static __always_inline int is_steered(const struct pkt *k)
{
	struct strata_steer_key sk = {};
	sk.family = k->family;
	__builtin_memcpy(sk.addr, k->daddr, 16);
	sk.proto = STRATA_PROTO_ANY;
	if (bpf_map_lookup_elem(&steer_rules, &sk))
		return 1;
	if (!k->has_ports)
		return 0;
	sk.proto = k->proto;
	struct strata_steer_val *v = bpf_map_lookup_elem(&steer_rules, &sk);
	if (!v)
		return 0;
	return port_in_ranges(v, bpf_ntohs(k->dport));
}

static __always_inline int is_denied(const struct pkt *k)
{
	struct strata_deny_key dk = {};
	dk.prefixlen = 128;
	if (k->family == STRATA_FAMILY_V4) {
		dk.addr[10] = 0xff;
		dk.addr[11] = 0xff;
		__builtin_memcpy(&dk.addr[12], k->saddr, 4);
	} else {
		__builtin_memcpy(dk.addr, k->saddr, 16);
	}
	if (bpf_map_lookup_elem(&deny_src, &dk))
		return 1;
	if (!k->has_ports)
		return 0;
	struct strata_deny_port_key pk = {};
	pk.prefixlen = 16 + 128;
	pk.port = k->dport;
	__builtin_memcpy(pk.addr, dk.addr, 16);
	return bpf_map_lookup_elem(&deny_src_port, &pk) != 0;
}

static __always_inline int addr_steered(__u8 family, const void *addr)
{
	struct strata_addr_key ak = {};
	ak.family = family;
	if (family == STRATA_FAMILY_V4)
		__builtin_memcpy(ak.addr, addr, 4);
	else
		__builtin_memcpy(ak.addr, addr, 16);
	return bpf_map_lookup_elem(&steer_addrs, &ak) != 0;
}

SEC("xdp")
int strata_xdp(struct xdp_md *ctx)
{
	struct cursor c = { .pos = (void *)(long)ctx->data, .end = (void *)(long)ctx->data_end };
	struct pkt k = {};
	__u32 reason = STRATA_R_PASS_NOT_STEERED;
	int action = XDP_PASS;
	int steer = 0;
	int nd = 0;
	__u16 eth_proto;

	if (parse_ethhdr(&c, &eth_proto) < 0) {
		reason = STRATA_R_MALFORMED;
		action = XDP_DROP;
		goto out;
	}

	if (eth_proto == ETH_P_8021Q_ || eth_proto == ETH_P_8021AD_) {
		reason = STRATA_R_PASS_VLAN_DEPTH;
		goto out;
	}

	if (eth_proto == ETH_P_ARP_) {
		struct arp_ipv4 *arp = c.pos;
		reason = STRATA_R_PASS_NON_IP;
		if ((void *)(arp + 1) > c.end)
			goto out;  /* not Ethernet/IPv4 ARP: the kernel's business */
		if (arp->ptype != bpf_htons(ETH_P_IP) || arp->plen != 4 || arp->hlen != 6)
			goto out;
		if (addr_steered(STRATA_FAMILY_V4, arp->tpa)) {
			steer = 1;
			reason = STRATA_R_ARP_STEERED;
		}
		goto redirect;
	}

	if (eth_proto == ETH_P_IP) {
		if (parse_ipv4(&c, &k) < 0) {
			reason = STRATA_R_MALFORMED;
			action = XDP_DROP;
			goto out;
		}
	} else if (eth_proto == ETH_P_IPV6) {
		if (parse_ipv6(&c, &k, &nd) < 0) {
			reason = STRATA_R_MALFORMED;
			action = XDP_DROP;
			goto out;
		}
	} else {
		reason = STRATA_R_PASS_NON_IP;
		goto out;
	}

	if (is_denied(&k)) {
		reason = STRATA_R_DENY_DROP;
		action = XDP_DROP;
		goto out;
	}

	if (is_steered(&k)) {
		steer = 1;
		reason = STRATA_R_REDIRECTED;
	} else if (nd) {
		struct nd_solicit *ns = c.pos;
		if ((void *)(ns + 1) <= c.end && addr_steered(STRATA_FAMILY_V6, ns->target)) {
			steer = 1;
			reason = STRATA_R_NDP_STEERED;
		}
	}

redirect:
	if (steer) {
		/* An empty slot (never bound, or emptied by the kernel when the socket
		 * closed) makes the helper return the fallback: to the kernel, not
		 * into a socket nobody reads. */
		__u32 q = ctx->rx_queue_index;
		action = bpf_redirect_map(&xsks_map, q, XDP_PASS);
		if (action != XDP_REDIRECT) {
			__u32 *bound = bpf_map_lookup_elem(&xsk_bound, &q);
			reason = bound && *bound ? STRATA_R_SOCKET_GONE : STRATA_R_NO_SOCKET;
		}
	}

out:;
	struct strata_counter *cnt = bpf_map_lookup_elem(&counters, &reason);
	if (cnt) {
		cnt->packets++;
		cnt->bytes += (__u64)(ctx->data_end - ctx->data);
	}
	return action;
}

char _license[] SEC("license") = "GPL";
