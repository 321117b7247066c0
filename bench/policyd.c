// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * policyd.c - load a running `connaudit policyd` as Postfix's smtpd
 * processes do: CONNS connections, each sending one request at a time and
 * waiting for its answer, for SECONDS. Prints answers per second and the
 * latency percentiles of one request.
 *
 *   bench/policyd [--conns N] [--seconds S] [--stall K] [--bad] unix:/PATH|ADDR:PORT
 *
 * --stall K holds K more connections that send half a request and then
 * nothing, and --bad sends, on connections of their own, a line that is not
 * name=value and a request larger than the server takes: the measured
 * connections must go on being answered (a broken client stalls no one).
 * Exits 1 when an answer is missing or is not an action.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX	256
#define BIG_REQUEST	(20 * 1024)	/* over policyd's 16 KiB */

struct worker {
	pthread_t thread;
	int fd;
	unsigned id;
	double *lat_us;		/* one per answer */
	size_t n, cap;
	bool failed;
};

static const char *target;
static double seconds = 1.0;
static volatile bool running = true;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int dial(void)
{
	struct timeval tv = { 5, 0 };
	int fd;

	if (!strncmp(target, "unix:", 5)) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", target + 5);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return -1;
	} else {
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
		char host[64];
		const char *colon = strrchr(target, ':');

		if (!colon || (size_t)(colon - target) >= sizeof(host))
			return -1;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
		if (getaddrinfo(host, colon + 1, &hints, &ai))
			return -1;
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			freeaddrinfo(ai);
			return -1;
		}
		freeaddrinfo(ai);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Read one answer ("...\n\n"); false on EOF, timeout or a non-action. */
static bool answer(int fd)
{
	char buf[512];
	size_t have = 0;

	while (have < 2 || buf[have - 1] != '\n' || buf[have - 2] != '\n') {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);

		if (n <= 0 || (have += (size_t)n) == sizeof(buf))
			return false;
	}
	return have > 7 && !memcmp(buf, "action=", 7);
}

static bool send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	char req[256];

	for (unsigned i = 0; running; i++) {
		/* Clients spread over networks, as a busy MX sees them. */
		int len = snprintf(req, sizeof(req), "request=smtpd_access_policy\n"
				   "protocol_state=CONNECT\nprotocol_name=SMTP\n"
				   "client_address=10.%u.%u.%u\nclient_name=unknown\n"
				   "instance=%x.%x\nserver_port=25\n\n",
				   w->id, (i >> 8) & 255, i & 255, w->id, i);
		double t0 = now_us();

		if (!send_all(w->fd, req, (size_t)len) || !answer(w->fd)) {
			w->failed = true;
			return NULL;
		}
		if (w->n == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4096;
			w->lat_us = realloc(w->lat_us, w->cap * sizeof(*w->lat_us));
			if (!w->lat_us) {
				w->failed = true;
				return NULL;
			}
		}
		w->lat_us[w->n++] = now_us() - t0;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Broken clients: a line that is not name=value gets an answer and the
 * connection goes on; an oversized request gets an answer, then EOF. */
static bool bad_clients(void)
{
	static const char garbage[] = "this is not a policy request\n\n";
	static const char good[] = "client_address=192.0.2.1\n\n";
	char *big = malloc(BIG_REQUEST);
	char c;
	int g = dial(), b = dial();
	bool ok;

	if (!big || g < 0 || b < 0) {
		free(big);
		return false;
	}
	memset(big, 'x', BIG_REQUEST);
	memcpy(big, "client_address=192.0.2.1\nx=", 27);
	ok = send_all(g, garbage, sizeof(garbage) - 1) && answer(g) &&
	     send_all(g, good, sizeof(good) - 1) && answer(g);
	if (!ok)
		fprintf(stderr, "bench/policyd: no answer after a garbage request\n");
	/* the server may close before reading it all: a failed send is fine */
	send_all(b, big, BIG_REQUEST);
	if (!answer(b) || read(b, &c, 1) != 0) {
		fprintf(stderr, "bench/policyd: an oversized request got no answer and close\n");
		ok = false;
	}
	close(g);
	close(b);
	free(big);
	return ok;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench/policyd [--conns N] [--seconds S] [--stall K] [--bad] "
		"unix:/PATH|ADDR:PORT\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct worker w[CONNS_MAX];
	int stalled[CONNS_MAX];
	unsigned conns = 1, stall = 0;
	bool bad = false, failed = false;
	double *all, t0, elapsed;
	size_t total = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--conns") && i + 1 < argc)
			conns = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--stall") && i + 1 < argc)
			stall = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--bad"))
			bad = true;
		else if (argv[i][0] != '-' && !target)
			target = argv[i];
		else
			return usage();
	}
	if (!target || conns < 1 || conns > CONNS_MAX || stall > CONNS_MAX || seconds <= 0)
		return usage();
	for (unsigned i = 0; i < stall; i++) {
		static const char half[] = "request=smtpd_access_policy\nclient_addr";

		stalled[i] = dial();
		if (stalled[i] < 0 || !send_all(stalled[i], half, sizeof(half) - 1)) {
			perror("bench/policyd: stalled connection");
			return 1;
		}
	}
	for (unsigned i = 0; i < conns; i++) {
		w[i].id = i;
		w[i].fd = dial();
		if (w[i].fd < 0) {
			perror("bench/policyd: connect");
			return 1;
		}
	}
	t0 = now_us();
	for (unsigned i = 0; i < conns; i++)
		pthread_create(&w[i].thread, NULL, work, &w[i]);
	if (bad && !bad_clients())
		failed = true;
	usleep((useconds_t)(seconds * 1e6));
	running = false;
	for (unsigned i = 0; i < conns; i++) {
		pthread_join(w[i].thread, NULL);
		failed |= w[i].failed;
		total += w[i].n;
	}
	elapsed = (now_us() - t0) / 1e6;
	all = malloc((total + 1) * sizeof(*all));
	if (!all)
		return 1;
	total = 0;
	for (unsigned i = 0; i < conns; i++) {
		memcpy(all + total, w[i].lat_us, w[i].n * sizeof(*all));
		total += w[i].n;
	}
	qsort(all, total, sizeof(*all), cmp_double);
	if (total)
		printf("conns %u: %.0f answers/s, latency p50 %.1f us, p99 %.1f us, max %.1f us "
		       "(%zu answers)\n", conns, total / elapsed, all[total / 2],
		       all[(size_t)(total * 0.99)], all[total - 1], total);
	if (failed || !total)
		fprintf(stderr, "bench/policyd: a connection got no answer or a wrong one\n");
	failed |= !total;
	free(all);
	for (unsigned i = 0; i < conns; i++) {
		free(w[i].lat_us);
		close(w[i].fd);
	}
	for (unsigned i = 0; i < stall; i++)
		close(stalled[i]);
	return failed;
}
