// tcpcraft: a raw-socket peer for packetimpact-style TCP tests.
//
// Usage: tcpcraft <peer-ipv4> <local-port>
// Reads TCP segments (header + payload, checksum already filled in) as hex,
// one per line, on stdin and sends each to <peer> through a raw IPPROTO_TCP
// socket (the kernel adds the IP header). Prints every TCP segment that
// arrives from <peer> to <local-port> as one hex line on stdout. Prints
// "ready" once the socket is open. Exits on EOF. The test itself builds and
// parses segments; this tool only moves bytes the kernel's TCP would not.
// Segments leave with TTL 123 (see below).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: tcpcraft <peer-ipv4> <local-port>\n"); return 2; }
  struct sockaddr_in peer;
  memset(&peer, 0, sizeof peer);
  peer.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &peer.sin_addr) != 1) { fprintf(stderr, "bad address\n"); return 2; }
  int lport = atoi(argv[2]);
  int s = socket(AF_INET, SOCK_RAW, IPPROTO_TCP);
  if (s < 0) { perror("socket"); return 1; }
  // Crafted segments leave with TTL 123 so a firewall rule can tell them
  // from the client kernel's own RSTs (which the test drops).
  int ttl = 123;
  if (setsockopt(s, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) < 0) { perror("IP_TTL"); return 1; }
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("ready\n");
  static char line[140000];
  static unsigned char seg[70000];
  static unsigned char buf[70000];
  size_t llen = 0;
  struct pollfd p[2] = {{0, POLLIN, 0}, {s, POLLIN, 0}};
  for (;;) {
    if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; perror("poll"); return 1; }
    if (p[1].revents & POLLIN) {
      ssize_t n = recv(s, buf, sizeof buf, 0);
      if (n >= 20) {
        size_t hl = (size_t)(buf[0] & 15) * 4;
        unsigned int src;
        memcpy(&src, buf + 12, 4);
        if (src == peer.sin_addr.s_addr && (size_t)n >= hl + 20) {
          const unsigned char *t = buf + hl;
          int dport = (t[2] << 8) | t[3];
          if (dport == lport) {
            for (size_t i = hl; i < (size_t)n; i++) printf("%02x", buf[i]);
            printf("\n");
          }
        }
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, line + llen, sizeof line - llen);
      if (n <= 0) return 0;
      llen += (size_t)n;
      char *nl;
      while ((nl = memchr(line, '\n', llen)) != NULL) {
        size_t len = (size_t)(nl - line), k = 0;
        for (size_t i = 0; i + 1 < len + 1 && i + 1 <= len; i += 2) {
          int a = hexval(line[i]), b = i + 1 < len ? hexval(line[i + 1]) : -1;
          if (a < 0 || b < 0) break;
          seg[k++] = (unsigned char)(a * 16 + b);
        }
        if (k >= 20 && sendto(s, seg, k, 0, (struct sockaddr *)&peer, sizeof peer) < 0) perror("sendto");
        memmove(line, nl + 1, llen - len - 1);
        llen -= len + 1;
      }
    }
  }
}
