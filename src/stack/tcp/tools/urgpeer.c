// urgpeer: the Linux kernel's side of the urgent-data interop tests
// (test/stack-tcp-urgent-kernel.test.ts), run in the lab's client namespace.
//
// Usage: urgpeer send|inline|oob <peer-ipv4> <port>
//   send    connects, sends "abc", then "!" with MSG_OOB, then "def", shuts
//           down its sending side and reads to EOF; prints "sent".
//   inline  connects with SO_OOBINLINE and reads to EOF, asking SIOCATMARK
//           before every read; prints "mark <offset>" where the mark was
//           seen (offset = bytes read before it), then "data <hex>".
//   oob     connects without SO_OOBINLINE (Linux's default) and reads to
//           EOF; at the mark it takes the urgent byte with recv(MSG_OOB) and
//           prints "oob <offset> <hex byte>", then "data <hex>" (the stream
//           without that byte).
// Any failure: a message on stderr and exit status 1. Reads give up after
// 20 s (SO_RCVTIMEO), so a test never hangs on this program.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define CAP (1 << 20)

static void die(const char *what) { fprintf(stderr, "urgpeer: %s: %s\n", what, strerror(errno)); exit(1); }

static int dial(const char *addr, int port, int oobinline) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (oobinline && setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &oobinline, sizeof oobinline) < 0) die("SO_OOBINLINE");
  struct timeval tv = { .tv_sec = 20 };
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) die("SO_RCVTIMEO");
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) { fprintf(stderr, "urgpeer: bad address %s\n", addr); exit(2); }
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
  return fd;
}

static void sendall(int fd, const char *s, size_t n, int flags) {
  if (send(fd, s, n, flags) != (ssize_t)n) die("send");
}

static void printhex(const unsigned char *b, size_t n) {
  printf("data ");
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: urgpeer send|inline|oob <peer-ipv4> <port>\n"); return 2; }
  const char *mode = argv[1];
  int port = atoi(argv[3]);
  if (strcmp(mode, "send") == 0) {
    int fd = dial(argv[2], port, 0);
    sendall(fd, "abc", 3, 0);
    sendall(fd, "!", 1, MSG_OOB);
    sendall(fd, "def", 3, 0);
    if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
    char b[256];
    ssize_t n;
    while ((n = recv(fd, b, sizeof b, 0)) > 0) {}
    if (n < 0) die("recv");
    printf("sent\n");
    return 0;
  }
  int inl = strcmp(mode, "inline") == 0;
  if (!inl && strcmp(mode, "oob") != 0) { fprintf(stderr, "urgpeer: unknown mode %s\n", mode); return 2; }
  int fd = dial(argv[2], port, inl);
  unsigned char *buf = malloc(CAP);
  if (buf == NULL) die("malloc");
  size_t total = 0;
  long marked = -1;
  int gotOob = 0;
  for (int spins = 0;;) {
    int at = 0;
    if (ioctl(fd, SIOCATMARK, &at) < 0) die("SIOCATMARK");
    if (at && marked != (long)total) {
      marked = (long)total;
      if (inl) printf("mark %zu\n", total);
    }
    if (at && !inl && !gotOob) {
      unsigned char c;
      ssize_t r = recv(fd, &c, 1, MSG_OOB);
      if (r == 1) { printf("oob %zu %02x\n", total, c); gotOob = 1; }
      else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && ++spins < 20000) { usleep(1000); continue; }
      else die("recv(MSG_OOB)");
    }
    if (total == CAP) { fprintf(stderr, "urgpeer: more than %d bytes\n", CAP); return 1; }
    ssize_t n = recv(fd, buf + total, CAP - total, 0);
    if (n < 0) die("recv");
    if (n == 0) break;
    total += (size_t)n;
  }
  printhex(buf, total);
  return 0;
}
