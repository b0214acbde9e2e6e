/* udpgen: the one UDP load generator that drives every echo version of the
 * raw-packet benchmark (TS on AF_XDP, TS on TAP, node:dgram, the C AF_XDP
 * reference).
 *
 * It opens one connected UDP socket per flow (distinct source ports, so the
 * echo sees several flows), sends with sendmmsg() in batches at a fixed
 * offered rate (paced against CLOCK_MONOTONIC) or as fast as it can
 * (--rate 0), and receives the echoes with recvmmsg() in a second thread.
 * An echo counts only if it carries our magic and a sequence number we sent,
 * so stray datagrams never inflate the result.
 *
 * Output is machine-readable: one "GO <unix-ns>" line when sending starts,
 * one "END <unix-ns>" line when it stops (the orchestrator samples the echo
 * process's CPU time at these two moments), then one JSON object:
 *   {"sent","received","send_errors","bad","duration_s","tx_pps","rx_pps",
 *    "loss","rate","flows","payload","batch"}
 * Received echoes are those that arrive before the drain period ends.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FLOWS 64
#define MAX_BATCH 256
#define MAGIC 0x5354524154414231ull /* "STRATAB1" */

struct payload_hdr {
	uint64_t magic;
	uint64_t seq;
	uint32_t flow;
	uint32_t pad;
};

static struct {
	const char *dst;
	int port;
	double rate;      /* packets/s; 0 = saturation */
	double duration;  /* seconds of sending */
	double drain;     /* seconds to wait for late echoes */
	int flows;
	int payload;
	int batch;
	int base_port;    /* first source port; 0 = ephemeral */
} opt = { NULL, 7, 0, 3, 0.3, 8, 64, 32, 0 };

static int socks[MAX_FLOWS];
static atomic_int sending_done;
static atomic_int receiving_done;
static atomic_ullong sent_total;
static uint64_t received_total, bad_total, send_errors;
static volatile sig_atomic_t interrupted;

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: udpgen --dst IP [--port 7] [--rate PPS|0] [--duration S] [--drain S]\n"
		"              [--flows N] [--payload BYTES] [--batch N] [--base-port P]\n");
	exit(2);
}

static void on_signal(int sig) { (void)sig; interrupted = 1; }

static void *receiver(void *arg)
{
	(void)arg;
	static uint8_t bufs[MAX_BATCH][2048];
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	struct pollfd pfd[MAX_FLOWS];
	for (int i = 0; i < MAX_BATCH; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof bufs[i];
		memset(&msgs[i], 0, sizeof msgs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	for (int f = 0; f < opt.flows; f++) { pfd[f].fd = socks[f]; pfd[f].events = POLLIN; }
	while (!atomic_load(&receiving_done)) {
		int r = poll(pfd, (nfds_t)opt.flows, 20);
		if (r <= 0) continue;
		for (int f = 0; f < opt.flows; f++) {
			if (!(pfd[f].revents & POLLIN)) continue;
			for (;;) {
				int n = recvmmsg(socks[f], msgs, MAX_BATCH, MSG_DONTWAIT, NULL);
				if (n <= 0) break;
				uint64_t sent = atomic_load(&sent_total);
				for (int i = 0; i < n; i++) {
					struct payload_hdr h;
					if (msgs[i].msg_len < sizeof h) { bad_total++; continue; }
					memcpy(&h, bufs[i], sizeof h);
					/* Sequence numbers are global across flows; an echo may
					 * race ahead of our read of sent_total by one batch. */
					if (h.magic != MAGIC || h.flow != (uint32_t)f || h.seq >= sent + (uint64_t)opt.batch * 2) { bad_total++; continue; }
					received_total++;
				}
				if (n < MAX_BATCH) break;
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dst", required_argument, 0, 'd' }, { "port", required_argument, 0, 'p' },
		{ "rate", required_argument, 0, 'r' }, { "duration", required_argument, 0, 't' },
		{ "drain", required_argument, 0, 'D' }, { "flows", required_argument, 0, 'f' },
		{ "payload", required_argument, 0, 's' }, { "batch", required_argument, 0, 'b' },
		{ "base-port", required_argument, 0, 'B' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': opt.dst = optarg; break;
		case 'p': opt.port = atoi(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 't': opt.duration = atof(optarg); break;
		case 'D': opt.drain = atof(optarg); break;
		case 'f': opt.flows = atoi(optarg); break;
		case 's': opt.payload = atoi(optarg); break;
		case 'b': opt.batch = atoi(optarg); break;
		case 'B': opt.base_port = atoi(optarg); break;
		default: usage();
		}
	}
	if (!opt.dst || opt.port <= 0 || opt.port > 65535 || opt.rate < 0 || opt.duration <= 0 || opt.drain < 0
	    || opt.flows < 1 || opt.flows > MAX_FLOWS || opt.payload < (int)sizeof(struct payload_hdr)
	    || opt.payload > 1472 || opt.batch < 1 || opt.batch > MAX_BATCH)
		usage();

	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
	if (inet_pton(AF_INET, opt.dst, &dst.sin_addr) != 1) { fprintf(stderr, "udpgen: bad address %s\n", opt.dst); return 2; }
	for (int f = 0; f < opt.flows; f++) {
		socks[f] = socket(AF_INET, SOCK_DGRAM, 0);
		if (socks[f] < 0) { perror("udpgen: socket"); return 1; }
		int big = 4 << 20;
		setsockopt(socks[f], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
		setsockopt(socks[f], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
		if (opt.base_port) {
			struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(opt.base_port + f)) };
			if (bind(socks[f], (struct sockaddr *)&src, sizeof src) < 0) { perror("udpgen: bind"); return 1; }
		}
		if (connect(socks[f], (struct sockaddr *)&dst, sizeof dst) < 0) { perror("udpgen: connect"); return 1; }
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	pthread_t rx;
	if (pthread_create(&rx, NULL, receiver, NULL) != 0) { fprintf(stderr, "udpgen: pthread_create failed\n"); return 1; }

	/* One buffer per batch slot; the header (magic, seq, flow) is rewritten per send. */
	static uint8_t bufs[MAX_BATCH][1500];
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	for (int i = 0; i < MAX_BATCH; i++) {
		memset(bufs[i], 0xa5, sizeof bufs[i]);
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = (size_t)opt.payload;
		memset(&msgs[i], 0, sizeof msgs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}

	printf("GO %llu\n", (unsigned long long)now_ns(CLOCK_REALTIME));
	fflush(stdout);
	const uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	const uint64_t tend = t0 + (uint64_t)(opt.duration * 1e9);
	uint64_t seq = 0;
	int flow = 0;
	uint64_t t = t0;
	while (!interrupted && (t = now_ns(CLOCK_MONOTONIC)) < tend) {
		int n = opt.batch;
		if (opt.rate > 0) {
			/* Pacing: send only what the schedule allows up to now; sleep
			 * until the next packet is due otherwise. */
			uint64_t due = (uint64_t)((double)(t - t0) * opt.rate / 1e9) + 1;
			if (due <= seq) {
				uint64_t next = t0 + (uint64_t)((double)(seq) * 1e9 / opt.rate);
				if (next > t) {
					uint64_t wait = next - t;
					struct timespec ts = { (time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull) };
					nanosleep(&ts, NULL);
				}
				continue;
			}
			if ((uint64_t)n > due - seq) n = (int)(due - seq);
		}
		for (int i = 0; i < n; i++) {
			struct payload_hdr h = { MAGIC, seq + (uint64_t)i, (uint32_t)flow, 0 };
			memcpy(bufs[i], &h, sizeof h);
		}
		int done = 0;
		while (done < n) {
			int k = sendmmsg(socks[flow], msgs + done, (unsigned)(n - done), 0);
			if (k < 0) {
				if (errno == EINTR && !interrupted) continue;
				send_errors++;
				break; /* ENOBUFS, ECONNREFUSED (ICMP port unreachable) …: drop the rest of the batch */
			}
			done += k;
		}
		seq += (uint64_t)n;              /* sequence numbers of failed sends are simply skipped */
		atomic_store(&sent_total, atomic_load(&sent_total) + (uint64_t)done);
		flow = (flow + 1) % opt.flows;
	}
	const uint64_t t1 = now_ns(CLOCK_MONOTONIC);
	printf("END %llu\n", (unsigned long long)now_ns(CLOCK_REALTIME));
	fflush(stdout);
	atomic_store(&sending_done, 1);
	if (!interrupted) {
		struct timespec ts = { (time_t)opt.drain, (long)((opt.drain - (double)(time_t)opt.drain) * 1e9) };
		nanosleep(&ts, NULL);
	}
	atomic_store(&receiving_done, 1);
	pthread_join(rx, NULL);

	const double dur = (double)(t1 - t0) / 1e9;
	const uint64_t sent = atomic_load(&sent_total);
	const double loss = sent ? (double)(sent > received_total ? sent - received_total : 0) / (double)sent : 0;
	printf("{\"sent\":%llu,\"received\":%llu,\"send_errors\":%llu,\"bad\":%llu,\"duration_s\":%.6f,"
	       "\"tx_pps\":%.1f,\"rx_pps\":%.1f,\"loss\":%.6f,\"rate\":%.1f,\"flows\":%d,\"payload\":%d,\"batch\":%d,"
	       "\"interrupted\":%s}\n",
	       (unsigned long long)sent, (unsigned long long)received_total, (unsigned long long)send_errors,
	       (unsigned long long)bad_total, dur, dur > 0 ? (double)sent / dur : 0, dur > 0 ? (double)received_total / dur : 0,
	       loss, opt.rate, opt.flows, opt.payload, opt.batch, interrupted ? "true" : "false");
	for (int f = 0; f < opt.flows; f++) close(socks[f]);
	return interrupted ? 130 : 0;
}
