/* xdp_echo: the C AF_XDP reference for the raw-packet benchmark.
 *
 * It does exactly what the TypeScript echo pipeline (src/bench/udp-echo.ts)
 * does, so the two can be compared packet for packet:
 *   - UDP/IPv4 to --addr: swap Ethernet MACs, IPv4 addresses and UDP ports
 *     in place, reset the TTL to 64 (IPv4 checksum fixed incrementally,
 *     RFC 1624; the address and port swaps leave both checksums unchanged),
 *     and send the same frame back;
 *   - ARP requests for --addr: answered in place with the interface's MAC;
 *   - anything else: dropped and counted by reason.
 *
 * The socket is opened over libxdp with XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD:
 * strata's own XDP program (attached by `strata xdp attach`) does the
 * steering, and this program only inserts its socket into the pinned
 * xsks_map (key = queue id). Frames circulate fill -> rx -> tx ->
 * completion -> fill; dropped frames go straight back to the fill ring. The
 * fill ring is as large as the UMEM, so a reservation on it never fails.
 * need_wakeup is honoured on both rings. --mode poll sleeps in poll() when
 * idle; --mode busy spins.
 *
 * On SIGINT/SIGTERM it removes its map entry and prints one JSON line of
 * counters.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/xsk.h>

#define NUM_FRAMES 4096
#define FRAME_SIZE 2048
#define RING_SIZE 2048
#define MAX_BATCH 256

enum drop_reason {
	D_SHORT, D_NOT_IP_OR_ARP, D_IP_HEADER, D_IP_CHECKSUM, D_IP_LENGTH, D_FRAGMENT, D_NOT_UDP,
	D_NOT_FOR_US, D_ARP_NOT_REQUEST, D_ARP_NOT_FOR_US, D_TX_FULL, D__MAX
};
static const char *const drop_names[D__MAX] = {
	"short", "not_ip_or_arp", "ip_header", "ip_checksum", "ip_length", "fragment", "not_udp",
	"not_for_us", "arp_not_request", "arp_not_for_us", "tx_full",
};

static struct {
	const char *iface;
	int queue;
	const char *addr;
	const char *map_path;
	int batch;
	int busy;
} opt = { NULL, 0, NULL, NULL, 64, 0 };

static volatile sig_atomic_t stop;
static uint64_t c_rx, c_echoed, c_arp, c_drops[D__MAX], c_wakeups_tx, c_wakeups_rx;

static void on_signal(int s) { (void)s; stop = 1; }

static void usage(void)
{
	fprintf(stderr, "usage: xdp_echo --iface IF --addr IPV4 --xsks-map PINPATH [--queue 0] [--batch 64] [--mode poll|busy]\n");
	exit(2);
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
static inline uint16_t csum_update16(uint16_t check, uint16_t old, uint16_t new_)
{
	uint32_t s = (uint16_t)~check + (uint16_t)~old + (uint32_t)new_;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static inline int ip_header_ok(const uint8_t *ip, unsigned ihl)
{
	uint32_t s = 0;
	for (unsigned i = 0; i < ihl; i += 2) s += rd16(ip + i);
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

/* Returns 1 if the frame was rewritten into a reply (send it), 0 if dropped. */
static int process(uint8_t *f, uint32_t len, const uint8_t mac[6], const uint8_t addr[4])
{
	uint8_t tmp[6];
	if (len < 14) { c_drops[D_SHORT]++; return 0; }
	uint16_t type = rd16(f + 12);
	if (type == ETH_P_ARP) {
		uint8_t *a = f + 14;
		if (len < 14 + 28) { c_drops[D_SHORT]++; return 0; }
		if (rd16(a) != 1 || rd16(a + 2) != ETH_P_IP || a[4] != 6 || a[5] != 4) { c_drops[D_ARP_NOT_REQUEST]++; return 0; }
		if (rd16(a + 6) != 1) { c_drops[D_ARP_NOT_REQUEST]++; return 0; }
		if (memcmp(a + 24, addr, 4) != 0) { c_drops[D_ARP_NOT_FOR_US]++; return 0; }
		/* Reply: tha/tpa := sha/spa, sha/spa := ours. */
		wr16(a + 6, 2);
		memcpy(a + 18, a + 8, 6);
		memcpy(a + 24, a + 14, 4);
		memcpy(a + 8, mac, 6);
		memcpy(a + 14, addr, 4);
		memcpy(f, f + 6, 6);
		memcpy(f + 6, mac, 6);
		c_arp++;
		return 1;
	}
	if (type != ETH_P_IP) { c_drops[D_NOT_IP_OR_ARP]++; return 0; }
	if (len < 14 + 20) { c_drops[D_SHORT]++; return 0; }
	uint8_t *ip = f + 14;
	unsigned ihl = (unsigned)(ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < 20) { c_drops[D_IP_HEADER]++; return 0; }
	uint16_t tot = rd16(ip + 2);
	if (tot < ihl + 8 || 14u + tot > len) { c_drops[D_IP_LENGTH]++; return 0; }
	if (!ip_header_ok(ip, ihl)) { c_drops[D_IP_CHECKSUM]++; return 0; }
	if (rd16(ip + 6) & 0x3fff) { c_drops[D_FRAGMENT]++; return 0; }
	if (ip[9] != IPPROTO_UDP) { c_drops[D_NOT_UDP]++; return 0; }
	if (memcmp(ip + 16, addr, 4) != 0) { c_drops[D_NOT_FOR_US]++; return 0; }
	uint8_t *udp = ip + ihl;
	if (rd16(udp + 4) < 8 || rd16(udp + 4) > tot - ihl) { c_drops[D_IP_LENGTH]++; return 0; }
	memcpy(tmp, f, 6); memcpy(f, f + 6, 6); memcpy(f + 6, tmp, 6);
	uint8_t t4[4];
	memcpy(t4, ip + 12, 4); memcpy(ip + 12, ip + 16, 4); memcpy(ip + 16, t4, 4);
	uint16_t sp = rd16(udp), dp = rd16(udp + 2);
	wr16(udp, dp); wr16(udp + 2, sp);
	/* TTL shares a 16-bit word with the protocol. */
	uint16_t oldw = rd16(ip + 8);
	ip[8] = 64;
	wr16(ip + 10, csum_update16(rd16(ip + 10), oldw, rd16(ip + 8)));
	c_echoed++;
	return 1;
}

static int get_mac(const char *ifname, uint8_t mac[6])
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	int r = ioctl(fd, SIOCGIFHWADDR, &ifr);
	close(fd);
	if (r < 0) return -1;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "iface", required_argument, 0, 'i' }, { "queue", required_argument, 0, 'q' },
		{ "addr", required_argument, 0, 'a' }, { "xsks-map", required_argument, 0, 'm' },
		{ "batch", required_argument, 0, 'b' }, { "mode", required_argument, 0, 'M' },
		{ "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i': opt.iface = optarg; break;
		case 'q': opt.queue = atoi(optarg); break;
		case 'a': opt.addr = optarg; break;
		case 'm': opt.map_path = optarg; break;
		case 'b': opt.batch = atoi(optarg); break;
		case 'M':
			if (!strcmp(optarg, "busy")) opt.busy = 1;
			else if (!strcmp(optarg, "poll")) opt.busy = 0;
			else usage();
			break;
		default: usage();
		}
	}
	if (!opt.iface || !opt.addr || !opt.map_path || opt.queue < 0 || opt.batch < 1 || opt.batch > MAX_BATCH) usage();
	uint8_t addr[4], mac[6];
	if (inet_pton(AF_INET, opt.addr, addr) != 1) { fprintf(stderr, "xdp_echo: bad address %s\n", opt.addr); return 2; }
	if (get_mac(opt.iface, mac) < 0) { fprintf(stderr, "xdp_echo: %s: no such interface: %s\n", opt.iface, strerror(errno)); return 1; }

	int map_fd = bpf_obj_get(opt.map_path);
	if (map_fd < 0) { fprintf(stderr, "xdp_echo: open %s: %s (is the strata XDP program attached?)\n", opt.map_path, strerror(errno)); return 1; }

	void *area = mmap(NULL, (size_t)NUM_FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) { perror("xdp_echo: mmap"); return 1; }
	/* Zeroed: libxdp does not initialise every cached index of the fill
	 * ring on every path, and stack garbage there made the first reserve
	 * fail (or skip slot 0) in early runs. */
	struct xsk_ring_prod fill = { 0 }, tx = { 0 };
	struct xsk_ring_cons comp = { 0 }, rx = { 0 };
	struct xsk_umem *umem;
	struct xsk_umem_config ucfg = { .fill_size = NUM_FRAMES, .comp_size = RING_SIZE, .frame_size = FRAME_SIZE,
					 .frame_headroom = 0, .flags = 0 };
	int r = xsk_umem__create(&umem, area, (uint64_t)NUM_FRAMES * FRAME_SIZE, &fill, &comp, &ucfg);
	if (r) { fprintf(stderr, "xdp_echo: xsk_umem__create: %s\n", strerror(-r)); return 1; }
	struct xsk_socket *xsk;
	struct xsk_socket_config scfg = { .rx_size = RING_SIZE, .tx_size = RING_SIZE,
					  .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
					  .xdp_flags = 0, .bind_flags = XDP_USE_NEED_WAKEUP };
	r = xsk_socket__create(&xsk, opt.iface, (uint32_t)opt.queue, umem, &rx, &tx, &scfg);
	if (r) { fprintf(stderr, "xdp_echo: xsk_socket__create(%s, queue %d): %s\n", opt.iface, opt.queue, strerror(-r)); return 1; }
	r = xsk_socket__update_xskmap(xsk, map_fd);
	if (r) { fprintf(stderr, "xdp_echo: insert into %s: %s\n", opt.map_path, strerror(-r)); return 1; }
	int fd = xsk_socket__fd(xsk);

	uint32_t idx;
	uint32_t got = xsk_ring_prod__reserve(&fill, NUM_FRAMES, &idx);
	if (got != NUM_FRAMES) { fprintf(stderr, "xdp_echo: fill ring reserve failed (%u of %u; size %u, prod %u/%u cons %u/%u)\n", got, NUM_FRAMES, fill.size, fill.cached_prod, *fill.producer, fill.cached_cons, *fill.consumer); return 1; }
	for (uint32_t i = 0; i < NUM_FRAMES; i++) *xsk_ring_prod__fill_addr(&fill, idx + i) = (uint64_t)i * FRAME_SIZE;
	xsk_ring_prod__submit(&fill, NUM_FRAMES);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "xdp_echo: ready on %s queue %d, %s mode, batch %d\n", opt.iface, opt.queue, opt.busy ? "busy" : "poll", opt.batch);
	printf("READY\n");
	fflush(stdout);

	const uint32_t batch = (uint32_t)opt.batch;
	uint64_t drops[MAX_BATCH];
	uint32_t tx_outstanding = 0;
	while (!stop) {
		/* 1. Completed transmissions go back to the fill ring. */
		uint32_t ci;
		uint32_t nc = xsk_ring_cons__peek(&comp, RING_SIZE, &ci);
		if (nc) {
			uint32_t fi;
			if (xsk_ring_prod__reserve(&fill, nc, &fi) != nc) { fprintf(stderr, "xdp_echo: fill ring full (bug)\n"); return 1; }
			for (uint32_t i = 0; i < nc; i++) *xsk_ring_prod__fill_addr(&fill, fi + i) = *xsk_ring_cons__comp_addr(&comp, ci + i);
			xsk_ring_prod__submit(&fill, nc);
			xsk_ring_cons__release(&comp, nc);
			tx_outstanding -= nc;
		}

		/* 2. Receive a batch, rewrite in place, queue replies on tx. */
		uint32_t ri;
		uint32_t n = xsk_ring_cons__peek(&rx, batch, &ri);
		if (n == 0) {
			if (tx_outstanding && xsk_ring_prod__needs_wakeup(&tx)) {
				c_wakeups_tx++;
				sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
			}
			if (opt.busy) {
				if (xsk_ring_prod__needs_wakeup(&fill)) { c_wakeups_rx++; recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL); }
			} else {
				struct pollfd p = { .fd = fd, .events = POLLIN };
				poll(&p, 1, tx_outstanding ? 1 : 100);
			}
			continue;
		}
		c_rx += n;
		uint32_t ti = 0;
		uint32_t room = xsk_ring_prod__reserve(&tx, n, &ti);
		uint32_t nt = 0, nd = 0;
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, ri + i);
			uint8_t *f = xsk_umem__get_data(area, d->addr);
			if (process(f, d->len, mac, addr)) {
				if (nt < room) {
					struct xdp_desc *t = xsk_ring_prod__tx_desc(&tx, ti + nt);
					t->addr = d->addr;
					t->len = d->len;
					nt++;
					continue;
				}
				c_drops[D_TX_FULL]++;
			}
			drops[nd++] = d->addr;
		}
		xsk_ring_cons__release(&rx, n);
		if (room > nt) {
			/* Hand back the slots we reserved but did not fill (dropped
			 * frames): xsk has no unreserve, and reserve() only advanced
			 * the cached producer, so moving it back is exact. */
			tx.cached_prod -= room - nt;
		}
		if (nt) {
			xsk_ring_prod__submit(&tx, nt);
			tx_outstanding += nt;
			/* In copy mode one sendto() transmits at most 32 frames (the
			 * kernel's TX_BATCH_SIZE): kick until the kernel has taken
			 * everything we queued, or it stops making progress. */
			for (int k = 0; k < 16 && xsk_ring_prod__needs_wakeup(&tx); k++) {
				c_wakeups_tx++;
				if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EBUSY) break;
				if (__atomic_load_n(tx.consumer, __ATOMIC_ACQUIRE) == tx.cached_prod) break;
			}
		}
		if (nd) {
			uint32_t fi;
			if (xsk_ring_prod__reserve(&fill, nd, &fi) != nd) { fprintf(stderr, "xdp_echo: fill ring full (bug)\n"); return 1; }
			for (uint32_t i = 0; i < nd; i++) *xsk_ring_prod__fill_addr(&fill, fi + i) = drops[i];
			xsk_ring_prod__submit(&fill, nd);
		}
	}

	struct xdp_statistics xs;
	memset(&xs, 0, sizeof xs);
	socklen_t xslen = sizeof xs;
	int have_xs = getsockopt(fd, SOL_XDP, XDP_STATISTICS, &xs, &xslen) == 0;

	uint32_t key = (uint32_t)opt.queue;
	bpf_map_delete_elem(map_fd, &key);
	xsk_socket__delete(xsk);
	xsk_umem__delete(umem);
	munmap(area, (size_t)NUM_FRAMES * FRAME_SIZE);
	close(map_fd);

	printf("{\"rx\":%llu,\"echoed\":%llu,\"arp_replies\":%llu,\"wakeups_tx\":%llu,\"wakeups_rx\":%llu,\"drops\":{",
	       (unsigned long long)c_rx, (unsigned long long)c_echoed, (unsigned long long)c_arp,
	       (unsigned long long)c_wakeups_tx, (unsigned long long)c_wakeups_rx);
	for (int i = 0; i < D__MAX; i++) printf("%s\"%s\":%llu", i ? "," : "", drop_names[i], (unsigned long long)c_drops[i]);
	printf("}");
	if (have_xs)
		printf(",\"xsk\":{\"rxDropped\":%llu,\"rxInvalidDescs\":%llu,\"txInvalidDescs\":%llu,\"rxRingFull\":%llu,"
		       "\"rxFillRingEmptyDescs\":%llu,\"txRingEmptyDescs\":%llu}",
		       (unsigned long long)xs.rx_dropped, (unsigned long long)xs.rx_invalid_descs, (unsigned long long)xs.tx_invalid_descs,
		       (unsigned long long)xs.rx_ring_full, (unsigned long long)xs.rx_fill_ring_empty_descs, (unsigned long long)xs.tx_ring_empty_descs);
	printf("}\n");
	return 0;
}
