// synflood: sends TCP SYNs from random (spoofed) source addresses and ports
// through a raw IPv4 socket, for the SYN-flood acceptance test of strata's
// stack (test/stack-accept-synflood.test.ts). Lab use only: run it inside a
// network namespace you created, aimed at an address in that lab.
//
//   synflood.bin -d 10.200.0.3 -p 7400 -n 100000 -s 10.200.128.0/17 [-r pps] [-S seed]
//
// Each SYN looks like one from Linux: MSS 1460, SACK permitted, timestamps,
// window scale 7, so the target's SYN-cookie path has options to encode.
// Sources are drawn uniformly from the given prefix (network and broadcast
// addresses excluded), source ports from 1024..65535, ISNs at random.
// Packets leave in batches through sendmmsg(); -r paces batches to about
// that many packets per second (0 = as fast as the socket takes them).
// Prints one JSON line: {"sent":N,"errors":E,"seconds":S}.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT_LEN (20 + 40) /* IPv4 header + TCP header with 20 bytes of options */

static uint64_t rng_state;
static uint32_t rnd(void) {
  /* xorshift64*: fast and good enough for spoofed addresses. */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += (uint32_t)p[len - 1] << 8;
  return sum;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(const char *me) {
  fprintf(stderr, "usage: %s -d dst -p port -n count -s src/prefix [-r pps] [-S seed]\n", me);
  exit(2);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

/* Writes one SYN from src:sport into pkt (addresses in host order). */
static void build_syn(uint8_t *pkt, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t isn, uint32_t tsval) {
  memset(pkt, 0, PKT_LEN);
  uint8_t *ip = pkt, *tcp = pkt + 20;
  ip[0] = 0x45;
  put16(ip + 2, PKT_LEN);
  put16(ip + 4, (uint16_t)rnd());
  put16(ip + 6, 0x4000); /* DF */
  ip[8] = 64;
  ip[9] = IPPROTO_TCP;
  put32(ip + 12, src);
  put32(ip + 16, dst);
  put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
  put16(tcp + 0, sport);
  put16(tcp + 2, dport);
  put32(tcp + 4, isn);
  tcp[12] = (40 / 4) << 4;
  tcp[13] = 0x02; /* SYN */
  put16(tcp + 14, 64240);
  uint8_t *o = tcp + 20;
  o[0] = 2; o[1] = 4; put16(o + 2, 1460);           /* MSS */
  o[4] = 4; o[5] = 2;                               /* SACK permitted */
  o[6] = 8; o[7] = 10; put32(o + 8, tsval); put32(o + 12, 0); /* timestamps */
  o[16] = 1; o[17] = 3; o[18] = 3; o[19] = 7;       /* NOP, window scale 7 */
  uint32_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + IPPROTO_TCP + 40;
  put16(tcp + 16, csum_fold(csum_add(sum, tcp, 40)));
}

int main(int argc, char **argv) {
  const char *dst_s = NULL, *src_s = NULL;
  long port = -1, count = -1, pps = 0;
  uint64_t seed = 1;
  int c;
  while ((c = getopt(argc, argv, "d:p:n:s:r:S:")) != -1) {
    switch (c) {
    case 'd': dst_s = optarg; break;
    case 'p': port = strtol(optarg, NULL, 10); break;
    case 'n': count = strtol(optarg, NULL, 10); break;
    case 's': src_s = optarg; break;
    case 'r': pps = strtol(optarg, NULL, 10); break;
    case 'S': seed = strtoull(optarg, NULL, 10); break;
    default: usage(argv[0]);
    }
  }
  if (!dst_s || !src_s || port < 1 || port > 65535 || count < 1 || pps < 0) usage(argv[0]);
  struct in_addr dst_a, src_a;
  if (inet_pton(AF_INET, dst_s, &dst_a) != 1) usage(argv[0]);
  char net_s[32];
  const char *slash = strchr(src_s, '/');
  if (!slash || (size_t)(slash - src_s) >= sizeof net_s) usage(argv[0]);
  memcpy(net_s, src_s, (size_t)(slash - src_s));
  net_s[slash - src_s] = 0;
  long plen = strtol(slash + 1, NULL, 10);
  if (inet_pton(AF_INET, net_s, &src_a) != 1 || plen < 8 || plen > 30) usage(argv[0]);
  uint32_t dst = ntohl(dst_a.s_addr);
  uint32_t hostmask = (plen == 32) ? 0 : (0xffffffffu >> plen);
  uint32_t net = ntohl(src_a.s_addr) & ~hostmask;
  rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;

  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* IPPROTO_RAW implies IP_HDRINCL */
  if (fd < 0) { perror("socket(SOCK_RAW)"); return 1; }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  static uint8_t pkts[BATCH][PKT_LEN];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr = dst_a };
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = pkts[i];
    iov[i].iov_len = PKT_LEN;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
  }

  long sent = 0, errors = 0;
  double t0 = now_s();
  while (sent < count) {
    int n = (int)((count - sent) < BATCH ? (count - sent) : BATCH);
    for (int i = 0; i < n; i++) {
      uint32_t host;
      do host = rnd() & hostmask; while (host == 0 || host == hostmask);
      build_syn(pkts[i], net | host, dst, (uint16_t)(1024 + rnd() % 64512), (uint16_t)port, rnd(), rnd());
    }
    int off = 0;
    while (off < n) {
      int r = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
      if (r < 0) {
        if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) { errors++; usleep(100); continue; }
        perror("sendmmsg");
        return 1;
      }
      off += r;
    }
    sent += n;
    if (pps > 0) {
      /* Pace: sleep until this many packets are due. */
      double due = t0 + (double)sent / (double)pps, t = now_s();
      if (due > t) {
        struct timespec ts = { .tv_sec = (time_t)(due - t), .tv_nsec = (long)(((due - t) - (double)(time_t)(due - t)) * 1e9) };
        nanosleep(&ts, NULL);
      }
    }
  }
  printf("{\"sent\":%ld,\"errors\":%ld,\"seconds\":%.3f}\n", sent, errors, now_s() - t0);
  close(fd);
  return 0;
}
