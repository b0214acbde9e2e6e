/* tcptls: keep-alive HTTPS GETs with a client certificate, the load
 * generator of `strata bench --workloads mtls` (wrk cannot present a client
 * certificate). One thread, N connections on epoll, each with one request
 * in flight, like `wrk -t1 -cN`; OpenSSL does the TLS, so the client costs
 * far less per request than any server under test.
 *
 *   tcptls --dst IP --port P --duration S [--conns 50] [--path /]
 *          --cert F --key F --ca F [--servername NAME]
 *
 * The server's certificate is verified against --ca (and its IP or name).
 * A response counts when its status line says 2xx and its Content-Length
 * body has arrived; every request's latency (send to last byte) is kept and
 * the percentiles come from the sorted samples.
 *
 * Output: "GO <unix-ns>" once every connection has finished its handshake
 * and measuring starts, "END <unix-ns>" when it stops, then one JSON object.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define RBUF 16384

static struct {
	const char *dst, *path, *cert, *key, *ca, *servername;
	int port, conns;
	double duration, timeout;
} opt = { NULL, "/", NULL, NULL, NULL, NULL, 443, 50, 3, 10 };

enum { S_HANDSHAKE, S_WRITE, S_READ, S_DEAD };

struct conn {
	int fd;
	SSL *ssl;
	int state;
	int want_write; /* the pending SSL call wants POLLOUT */
	int woff;       /* request bytes written */
	int rlen;       /* response bytes held */
	uint64_t t_sent;
	char rbuf[RBUF];
};

static struct conn *conns;
static int epfd;
static SSL_CTX *ctx;
static char req[1024];
static int req_len;
static volatile sig_atomic_t interrupted;
static struct sockaddr_in dst_addr;

static uint64_t ok_total, non2xx, errors, reconnects;
static uint64_t *samples;
static size_t nsamples, cap;
static int measuring;

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
	fprintf(stderr, "tcptls: %s: %s\n", what, errno ? strerror(errno) : "");
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: tcptls --dst IP --port P --cert F --key F --ca F [--duration S] [--conns N] [--path /] [--servername NAME]\n");
	exit(2);
}

static void arm(struct conn *c, int op)
{
	struct epoll_event ev = { .events = c->want_write ? EPOLLOUT : EPOLLIN, .data.ptr = c };
	if (epoll_ctl(epfd, op, c->fd, &ev) < 0) die("epoll_ctl");
}

static void conn_open(struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0) die("socket");
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&dst_addr, sizeof(dst_addr)) < 0 && errno != EINPROGRESS) die("connect");
	c->ssl = SSL_new(ctx);
	if (!c->ssl) die("SSL_new");
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_connect_state(c->ssl);
	const char *name = opt.servername ? opt.servername : opt.dst;
	if (opt.servername) SSL_set_tlsext_host_name(c->ssl, opt.servername);
	X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
	if (!opt.servername) X509_VERIFY_PARAM_set1_ip_asc(vp, name);
	else X509_VERIFY_PARAM_set1_host(vp, name, 0);
	c->state = S_HANDSHAKE;
	c->want_write = 1;
	c->woff = 0;
	c->rlen = 0;
	arm(c, EPOLL_CTL_ADD);
}

static void conn_drop(struct conn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	SSL_free(c->ssl);
	close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	c->state = S_DEAD;
}

/* An SSL call returned r <= 0: wait for the direction it wants, or fail. */
static int ssl_wait(struct conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r);
	int ww = e == SSL_ERROR_WANT_WRITE;
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return -1;
	if (ww != c->want_write) { c->want_write = ww; arm(c, EPOLL_CTL_MOD); }
	return 0;
}

static void fail(struct conn *c)
{
	errors++;
	conn_drop(c);
	if (!interrupted) { reconnects++; conn_open(c); }
}

/* Returns 1 when rbuf holds a whole response (status, headers, Content-Length body). */
static int response_done(struct conn *c, int *status)
{
	c->rbuf[c->rlen] = 0; /* rlen <= RBUF - 1: SSL_read never fills the last byte */
	char *end = memmem(c->rbuf, (size_t)c->rlen, "\r\n\r\n", 4);
	if (!end) return 0;
	int hdr = (int)(end - c->rbuf) + 4;
	*status = atoi(c->rbuf + 9);
	long cl = 0;
	for (char *p = c->rbuf; p < end;) {
		char *nl = strstr(p, "\r\n");
		if (!nl) break;
		if (strncasecmp(p, "content-length:", 15) == 0) cl = strtol(p + 15, NULL, 10);
		p = nl + 2;
	}
	if (c->rlen < hdr + cl) return 0;
	if (c->rlen > hdr + cl) return -1; /* nothing was asked for beyond one response */
	return 1;
}

static void step(struct conn *c)
{
	for (;;) {
		if (c->state == S_HANDSHAKE) {
			int r = SSL_do_handshake(c->ssl);
			if (r == 1) { c->state = S_WRITE; c->woff = 0; continue; }
			if (ssl_wait(c, r) < 0) {
				if (getenv("TCPTLS_DEBUG")) { fprintf(stderr, "handshake: ssl error %d errno %d\n", SSL_get_error(c->ssl, r), errno); ERR_print_errors_fp(stderr); }
				fail(c);
			}
			return;
		}
		if (c->state == S_WRITE) {
			if (!measuring && !interrupted) {
				/* Before GO: park after the handshake. */
				if (c->want_write) { c->want_write = 0; arm(c, EPOLL_CTL_MOD); }
				return;
			}
			if (interrupted) return;
			if (c->woff == 0) c->t_sent = now_ns(CLOCK_MONOTONIC);
			int r = SSL_write(c->ssl, req + c->woff, req_len - c->woff);
			if (r <= 0) { if (ssl_wait(c, r) < 0) fail(c); return; }
			c->woff += r;
			if (c->woff < req_len) continue;
			c->state = S_READ;
			c->rlen = 0;
			continue;
		}
		if (c->state == S_READ) {
			int r = SSL_read(c->ssl, c->rbuf + c->rlen, RBUF - 1 - c->rlen);
			if (r <= 0) { if (ssl_wait(c, r) < 0) fail(c); return; }
			c->rlen += r;
			int status = 0;
			int d = response_done(c, &status);
			if (d == 0) { if (c->rlen >= RBUF - 1) fail(c); continue; }
			if (d < 0) { fail(c); return; }
			if (status >= 200 && status < 300) {
				ok_total++;
				if (nsamples == cap) {
					cap = cap ? cap * 2 : 1 << 16;
					samples = realloc(samples, cap * sizeof(uint64_t));
					if (!samples) die("realloc");
				}
				samples[nsamples++] = now_ns(CLOCK_MONOTONIC) - c->t_sent;
			} else non2xx++;
			c->state = S_WRITE;
			c->woff = 0;
			continue;
		}
		return;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (nsamples == 0) return 0;
	return (double)samples[(size_t)(p * (double)(nsamples - 1) + 0.5)] / 1000.0;
}

static void on_signal(int sig) { (void)sig; interrupted = 1; }

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dst", required_argument, 0, 'd' }, { "port", required_argument, 0, 'p' },
		{ "duration", required_argument, 0, 't' }, { "conns", required_argument, 0, 'n' },
		{ "path", required_argument, 0, 'P' }, { "cert", required_argument, 0, 'c' },
		{ "key", required_argument, 0, 'k' }, { "ca", required_argument, 0, 'a' },
		{ "servername", required_argument, 0, 's' }, { "timeout", required_argument, 0, 'T' },
		{ 0, 0, 0, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'd': opt.dst = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 't': opt.duration = atof(optarg); break;
		case 'n': opt.conns = atoi(optarg); break;
		case 'P': opt.path = optarg; break;
		case 'c': opt.cert = optarg; break;
		case 'k': opt.key = optarg; break;
		case 'a': opt.ca = optarg; break;
		case 's': opt.servername = optarg; break;
		case 'T': opt.timeout = atof(optarg); break;
		default: usage();
		}
	}
	if (!opt.dst || !opt.cert || !opt.key || !opt.ca || opt.conns < 1 || opt.conns > MAX_CONNS || opt.duration <= 0) usage();
	memset(&dst_addr, 0, sizeof(dst_addr));
	dst_addr.sin_family = AF_INET;
	dst_addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.dst, &dst_addr.sin_addr) != 1) usage();
	req_len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: strata-tcptls\r\n\r\n",
			   opt.path, opt.servername ? opt.servername : opt.dst, opt.port);

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) die("SSL_CTX_new");
	if (SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1) die("client certificate");
	if (SSL_CTX_use_PrivateKey_file(ctx, opt.key, SSL_FILETYPE_PEM) != 1) die("client key");
	if (SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1) die("CA");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

	epfd = epoll_create1(0);
	if (epfd < 0) die("epoll_create1");
	conns = calloc((size_t)opt.conns, sizeof(struct conn));
	if (!conns) die("calloc");
	for (int i = 0; i < opt.conns; i++) conn_open(&conns[i]);

	struct epoll_event evs[256];
	/* Handshakes first, not measured. */
	uint64_t hs_deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)(opt.timeout * 1e9);
	for (;;) {
		int pending = 0;
		for (int i = 0; i < opt.conns; i++) if (conns[i].state == S_HANDSHAKE) pending++;
		if (pending == 0 || interrupted) break;
		if (now_ns(CLOCK_MONOTONIC) > hs_deadline) {
			fprintf(stderr, "tcptls: %d handshakes did not finish in %.0f s\n", pending, opt.timeout);
			return 1;
		}
		int n = epoll_wait(epfd, evs, 256, 100);
		for (int i = 0; i < n; i++) step((struct conn *)evs[i].data.ptr);
	}
	uint64_t hs_errors = errors;
	errors = 0;
	mark("GO");
	measuring = 1;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	uint64_t stop = t0 + (uint64_t)(opt.duration * 1e9);
	for (int i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		if (c->state == S_WRITE) { c->want_write = 1; arm(c, EPOLL_CTL_MOD); step(c); }
	}
	while (!interrupted && now_ns(CLOCK_MONOTONIC) < stop) {
		int n = epoll_wait(epfd, evs, 256, 50);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) die("epoll_wait");
		for (int i = 0; i < n; i++) step((struct conn *)evs[i].data.ptr);
	}
	uint64_t t1 = now_ns(CLOCK_MONOTONIC);
	mark("END");
	double secs = (double)(t1 - t0) / 1e9;
	qsort(samples, nsamples, sizeof(uint64_t), cmp_u64);
	printf("{\"requests\":%llu,\"non2xx\":%llu,\"errors\":%llu,\"handshake_errors\":%llu,\"reconnects\":%llu,\"duration_s\":%.6f,"
	       "\"rps\":%.1f,\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f,\"conns\":%d,\"tls\":\"%s\",\"interrupted\":%s}\n",
	       (unsigned long long)ok_total, (unsigned long long)non2xx, (unsigned long long)errors, (unsigned long long)hs_errors,
	       (unsigned long long)reconnects, secs, secs > 0 ? (double)ok_total / secs : 0, pct(0.5), pct(0.9), pct(0.99),
	       nsamples ? (double)samples[nsamples - 1] / 1000.0 : 0, opt.conns,
	       conns[0].ssl ? SSL_get_version(conns[0].ssl) : "?", interrupted ? "true" : "false");
	for (int i = 0; i < opt.conns; i++) if (conns[i].fd >= 0) { SSL_free(conns[i].ssl); close(conns[i].fd); }
	SSL_CTX_free(ctx);
	return ok_total > 0 ? 0 : 1;
}
