/* tcpload: the TCP load generator of `strata bench --workloads tcp`. One
 * program for the three measurements of issue 3, so every server version
 * (the stack on AF_XDP, the stack on TAP, the kernel) meets the same client,
 * written in C so that the client is never the bottleneck.
 *
 *   tcpload bulk  --dst IP --port P --duration S [--chunk BYTES]
 *       One connection; write() as fast as the socket takes it for S
 *       seconds, then shutdown(SHUT_WR) and wait for the server's FIN (a
 *       discard server closes after reading everything). The figure counts
 *       the time until that FIN, so bytes the client buffered but the server
 *       had not read yet are not credited.
 *   tcpload crr   --dst IP --port P --duration S [--conc N] [--size BYTES]
 *       Connection setup rate: N connections in flight (non-blocking,
 *       epoll); each connects, sends SIZE bytes, reads them back from an echo
 *       server, closes, and is replaced by a new one.
 *   tcpload pingpong --dst IP --port P --duration S [--size 64] [--busy-poll USEC]
 *       One connection with TCP_NODELAY; write SIZE bytes, read SIZE bytes
 *       back, repeat. Every round trip is timed (CLOCK_MONOTONIC) and kept;
 *       the percentiles come from the sorted samples, not from buckets.
 *
 * Output is machine-readable: "GO <unix-ns>" when measuring starts, "END
 * <unix-ns>" when it stops (the orchestrator samples the server's CPU time
 * and the softirq time at these two lines), then one JSON object.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SO_BUSY_POLL
#define SO_BUSY_POLL 46
#endif

#define MAX_CONC 1024

static struct {
	const char *mode;
	const char *dst;
	int port;
	double duration;
	int chunk;
	int conc;
	int size;
	int busy_poll;
	double timeout; /* seconds to wait for a reply / the final FIN before giving up */
} opt = { NULL, NULL, 9, 3, 65536, 16, 64, 0, 10 };

static volatile sig_atomic_t interrupted;
static struct sockaddr_in dst_addr;

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void mark(const char *what)
{
	printf("%s %llu\n", what, (unsigned long long)now_ns(CLOCK_REALTIME));
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "tcpload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tcpload bulk|crr|pingpong --dst IP [--port P] [--duration S]\n"
		"               [--chunk BYTES] [--conc N] [--size BYTES] [--busy-poll USEC] [--timeout S]\n");
	exit(2);
}

static int connect_blocking(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) die("socket");
	struct timeval tv = { (time_t)opt.timeout, 0 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&dst_addr, sizeof(dst_addr)) < 0) die("connect");
	return fd;
}

/* ---- bulk ---------------------------------------------------------------- */

static int run_bulk(void)
{
	char *buf = malloc((size_t)opt.chunk);
	if (!buf) die("malloc");
	for (int i = 0; i < opt.chunk; i++) buf[i] = (char)(i * 31 + 7);
	int fd = connect_blocking();
	uint64_t bytes = 0, write_errors = 0;
	mark("GO");
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	uint64_t stop = t0 + (uint64_t)(opt.duration * 1e9);
	/* A blocking socket with a send timeout: write() returns as soon as some
	 * of the chunk fits, so the clock is checked often enough. */
	while (!interrupted && now_ns(CLOCK_MONOTONIC) < stop) {
		ssize_t n = write(fd, buf, (size_t)opt.chunk);
		if (n > 0) bytes += (uint64_t)n;
		else if (n < 0 && errno != EINTR && errno != EAGAIN) { write_errors++; break; }
	}
	uint64_t t_written = now_ns(CLOCK_MONOTONIC);
	shutdown(fd, SHUT_WR);
	/* Wait for the server's FIN: only then has it read every byte. */
	int fin = 0;
	char sink[4096];
	for (;;) {
		ssize_t n = read(fd, sink, sizeof(sink));
		if (n == 0) { fin = 1; break; }
		if (n < 0 && errno == EINTR && !interrupted) continue;
		if (n < 0) break;
	}
	uint64_t t1 = now_ns(CLOCK_MONOTONIC);
	mark("END");
	close(fd);
	double secs = (double)(t1 - t0) / 1e9;
	printf("{\"mode\":\"bulk\",\"bytes\":%llu,\"duration_s\":%.6f,\"write_s\":%.6f,\"bps\":%.1f,"
	       "\"server_fin\":%s,\"write_errors\":%llu,\"chunk\":%d,\"interrupted\":%s}\n",
	       (unsigned long long)bytes, secs, (double)(t_written - t0) / 1e9, secs > 0 ? (double)bytes * 8 / secs : 0,
	       fin ? "true" : "false", (unsigned long long)write_errors, opt.chunk, interrupted ? "true" : "false");
	free(buf);
	return fin ? 0 : 1;
}

/* ---- crr ----------------------------------------------------------------- */

enum { C_CONNECTING, C_SENDING, C_READING };

struct conn {
	int fd;
	int state;
	int off;
};

static uint64_t crr_done, crr_errors, crr_connect_errors, crr_short;
static struct conn conns[MAX_CONC];
static int epfd;

static void conn_open(struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0) die("socket");
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->off = 0;
	int r = connect(c->fd, (struct sockaddr *)&dst_addr, sizeof(dst_addr));
	if (r < 0 && errno != EINPROGRESS) {
		crr_connect_errors++;
		close(c->fd);
		c->fd = -1;
		return;
	}
	c->state = C_CONNECTING;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

/* Ends a connection and counts it in *counter (done, errors, connect errors). */
static void conn_close(struct conn *c, uint64_t *counter)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	(*counter)++;
}

static void conn_event(struct conn *c, uint32_t events, const char *msg, char *rbuf)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) { conn_close(c, &crr_connect_errors); return; }
		c->state = C_SENDING;
	}
	if (c->state == C_SENDING) {
		ssize_t n = write(c->fd, msg + c->off, (size_t)(opt.size - c->off));
		if (n < 0 && errno == EAGAIN) return;
		if (n <= 0) { conn_close(c, &crr_errors); return; }
		c->off += (int)n;
		if (c->off < opt.size) return;
		c->off = 0;
		c->state = C_READING;
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	}
	/* C_READING */
	for (;;) {
		ssize_t n = read(c->fd, rbuf, (size_t)(opt.size - c->off));
		if (n < 0 && errno == EAGAIN) return;
		if (n == 0) { crr_short++; conn_close(c, &crr_errors); return; }
		if (n < 0) { conn_close(c, &crr_errors); return; }
		if (memcmp(rbuf, msg + c->off, (size_t)n) != 0) { conn_close(c, &crr_errors); return; }
		c->off += (int)n;
		if (c->off == opt.size) { conn_close(c, &crr_done); return; }
	}
}

static int run_crr(void)
{
	if (opt.conc < 1 || opt.conc > MAX_CONC) usage();
	epfd = epoll_create1(0);
	if (epfd < 0) die("epoll_create1");
	char *msg = malloc((size_t)opt.size), *rbuf = malloc((size_t)opt.size);
	if (!msg || !rbuf) die("malloc");
	for (int i = 0; i < opt.size; i++) msg[i] = (char)('a' + i % 26);
	for (int i = 0; i < opt.conc; i++) conns[i].fd = -1;
	mark("GO");
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	uint64_t stop = t0 + (uint64_t)(opt.duration * 1e9);
	uint64_t last_progress = t0;
	uint64_t last_done = 0;
	struct epoll_event evs[256];
	int stalled = 0;
	for (;;) {
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		int open = 0;
		for (int i = 0; i < opt.conc; i++) {
			if (conns[i].fd < 0 && now < stop && !interrupted) conn_open(&conns[i]);
			if (conns[i].fd >= 0) open++;
		}
		if (open == 0) break;
		/* After the stop time, finish what is in flight, but not forever. */
		if (crr_done + crr_errors + crr_connect_errors != last_done) { last_done = crr_done + crr_errors + crr_connect_errors; last_progress = now; }
		else if (now - last_progress > (uint64_t)(opt.timeout * 1e9)) { stalled = open; break; }
		int n = epoll_wait(epfd, evs, 256, 100);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) die("epoll_wait");
		for (int i = 0; i < n; i++) conn_event((struct conn *)evs[i].data.ptr, evs[i].events, msg, rbuf);
	}
	uint64_t t1 = now_ns(CLOCK_MONOTONIC);
	mark("END");
	for (int i = 0; i < opt.conc; i++) if (conns[i].fd >= 0) close(conns[i].fd);
	double secs = (double)(t1 - t0) / 1e9;
	printf("{\"mode\":\"crr\",\"completed\":%llu,\"errors\":%llu,\"connect_errors\":%llu,\"short_reads\":%llu,"
	       "\"stalled\":%d,\"duration_s\":%.6f,\"cps\":%.1f,\"conc\":%d,\"size\":%d,\"interrupted\":%s}\n",
	       (unsigned long long)crr_done, (unsigned long long)crr_errors, (unsigned long long)crr_connect_errors,
	       (unsigned long long)crr_short, stalled, secs, secs > 0 ? (double)crr_done / secs : 0, opt.conc, opt.size,
	       interrupted ? "true" : "false");
	free(msg);
	free(rbuf);
	return 0;
}

/* ---- pingpong ------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *s, size_t n, double p)
{
	if (n == 0) return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)s[i] / 1000.0;
}

static int run_pingpong(void)
{
	int fd = connect_blocking();
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (opt.busy_poll > 0 && setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &opt.busy_poll, sizeof(opt.busy_poll)) < 0)
		fprintf(stderr, "tcpload: SO_BUSY_POLL: %s (continuing without)\n", strerror(errno));
	char *msg = malloc((size_t)opt.size), *rbuf = malloc((size_t)opt.size);
	if (!msg || !rbuf) die("malloc");
	for (int i = 0; i < opt.size; i++) msg[i] = (char)('A' + i % 26);
	size_t cap = 1 << 20, n = 0;
	uint64_t *samples = malloc(cap * sizeof(uint64_t));
	if (!samples) die("malloc");
	/* Warm-up round trips, not measured: ARP, the JIT, caches. */
	uint64_t errors = 0;
	for (int w = 0; w < 200; w++) {
		if (write(fd, msg, (size_t)opt.size) != opt.size) die("write");
		int off = 0;
		while (off < opt.size) { ssize_t r = read(fd, rbuf + off, (size_t)(opt.size - off)); if (r <= 0) die("read"); off += (int)r; }
	}
	mark("GO");
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	uint64_t stop = t0 + (uint64_t)(opt.duration * 1e9);
	for (;;) {
		uint64_t a = now_ns(CLOCK_MONOTONIC);
		if (a >= stop || interrupted) break;
		if (write(fd, msg, (size_t)opt.size) != opt.size) { errors++; break; }
		int off = 0;
		while (off < opt.size) {
			ssize_t r = read(fd, rbuf + off, (size_t)(opt.size - off));
			if (r < 0 && errno == EINTR && !interrupted) continue;
			if (r <= 0) { errors++; goto out; }
			off += (int)r;
		}
		if (memcmp(rbuf, msg, (size_t)opt.size) != 0) { errors++; break; }
		uint64_t b = now_ns(CLOCK_MONOTONIC);
		if (n == cap) {
			cap *= 2;
			samples = realloc(samples, cap * sizeof(uint64_t));
			if (!samples) die("realloc");
		}
		samples[n++] = b - a;
	}
out:;
	uint64_t t1 = now_ns(CLOCK_MONOTONIC);
	mark("END");
	close(fd);
	qsort(samples, n, sizeof(uint64_t), cmp_u64);
	double secs = (double)(t1 - t0) / 1e9;
	printf("{\"mode\":\"pingpong\",\"round_trips\":%zu,\"errors\":%llu,\"duration_s\":%.6f,\"rtps\":%.1f,"
	       "\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"max_us\":%.3f,\"size\":%d,\"busy_poll\":%d,\"interrupted\":%s}\n",
	       n, (unsigned long long)errors, secs, secs > 0 ? (double)n / secs : 0,
	       pct(samples, n, 0.5), pct(samples, n, 0.9), pct(samples, n, 0.99), pct(samples, n, 0.999),
	       n ? (double)samples[n - 1] / 1000.0 : 0, opt.size, opt.busy_poll, interrupted ? "true" : "false");
	free(samples);
	free(msg);
	free(rbuf);
	return errors == 0 && n > 0 ? 0 : 1;
}

static void on_signal(int sig) { (void)sig; interrupted = 1; }

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dst", required_argument, 0, 'd' }, { "port", required_argument, 0, 'p' },
		{ "duration", required_argument, 0, 't' }, { "chunk", required_argument, 0, 'c' },
		{ "conc", required_argument, 0, 'n' }, { "size", required_argument, 0, 's' },
		{ "busy-poll", required_argument, 0, 'b' }, { "timeout", required_argument, 0, 'T' },
		{ 0, 0, 0, 0 },
	};
	if (argc < 2) usage();
	opt.mode = argv[1];
	optind = 2;
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': opt.dst = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 't': opt.duration = atof(optarg); break;
		case 'c': opt.chunk = atoi(optarg); break;
		case 'n': opt.conc = atoi(optarg); break;
		case 's': opt.size = atoi(optarg); break;
		case 'b': opt.busy_poll = atoi(optarg); break;
		case 'T': opt.timeout = atof(optarg); break;
		default: usage();
		}
	}
	if (!opt.dst || opt.port <= 0 || opt.port > 65535 || opt.duration <= 0 || opt.chunk <= 0 || opt.size <= 0 || opt.size > (1 << 20))
		usage();
	memset(&dst_addr, 0, sizeof(dst_addr));
	dst_addr.sin_family = AF_INET;
	dst_addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.dst, &dst_addr.sin_addr) != 1) usage();
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(opt.mode, "bulk") == 0) return run_bulk();
	if (strcmp(opt.mode, "crr") == 0) return run_crr();
	if (strcmp(opt.mode, "pingpong") == 0) return run_pingpong();
	usage();
	return 2;
}
