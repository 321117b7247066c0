// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * churn.c - loopback connect/accept/close churn, as fast as it goes.
 *
 * Workers (processes) each have a listener of their own, on 127.0.0.(10+w)
 * port P, and loop: connect from one of K source addresses 127.(1+w).0.x,
 * accept, close the client end, close the server end. The client closing
 * first puts the server socket through CLOSE_WAIT and LAST_ACK, the path an
 * SMTP server sees after QUIT, and leaves TIME_WAIT on the client side,
 * whose ports loopback may reuse (net.ipv4.tcp_tw_reuse = 2, the default).
 *
 * Run it inside a private network namespace and the cgroup under test; it
 * starts all workers together and prints one line:
 *   rate CONN_PER_S conns N errors E ms MS cpu SHARE workers W
 * where SHARE is the CPU time the workers got over workers x wall time.
 *
 * -f N first holds N sessions from N distinct addresses (127.100.0.1 on)
 * on a listener of its own (127.0.0.9), their clients closed: they fill an
 * auditor's ca_peers loaded with --max-peers N, so that every churn
 * connection is a new peer that finds the map full of live entries (the
 * worst case of reclaim).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "netlib.h"

#define MAX_WORKERS	64
#define MAX_SOURCES	250
#define MAX_FILL	16000	/* one fd each, under the hard limit of 20,000 */
/* Read the clock once per this many connections: cheap, and still
 * finishes within a millisecond of the deadline. */
#define CLOCK_EVERY	16

struct opts {
	unsigned workers, sources, ms, fill;
	uint16_t port;
};

struct result {
	uint64_t conns, errors, ns;
};

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr, "usage: churn [-w WORKERS] [-k SOURCES] [-t MS] [-p PORT] [-f FILL]\n");
	exit(2);
}

static unsigned arg_uint(const char *s, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end || v == 0 || v > max)
		usage();
	return (unsigned)v;
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	int ch;

	*o = (struct opts){ .workers = 2, .sources = 8, .ms = 3000, .port = 25 };
	while ((ch = getopt(argc, argv, "w:k:t:p:f:")) != -1) {
		switch (ch) {
		case 'w': o->workers = arg_uint(optarg, MAX_WORKERS); break;
		case 'k': o->sources = arg_uint(optarg, MAX_SOURCES); break;
		case 't': o->ms = arg_uint(optarg, 600000); break;
		case 'p': o->port = (uint16_t)arg_uint(optarg, 65535); break;
		case 'f': o->fill = arg_uint(optarg, MAX_FILL); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
}

static struct sockaddr_in ipv4(uint32_t host_order, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };

	sa.sin_addr.s_addr = htonl(host_order);
	return sa;
}

/* One connection, start to end; 0, or -1 if connect failed (the caller
 * counts it). A failed accept after a good connect cannot happen on
 * loopback short of a bug, so it ends the run. */
static int one_connection(int lfd, const struct sockaddr_in *src, const struct sockaddr_in *dst)
{
	int one = 1, cli, srv;

	cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cli < 0)
		kt_fail("socket: %m");
	/* Port chosen at connect, by 4-tuple: TIME_WAIT does not pin it. */
	if (setsockopt(cli, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) ||
	    bind(cli, (const struct sockaddr *)src, sizeof(*src)))
		kt_fail("bind: %m");
	if (connect(cli, (const struct sockaddr *)dst, sizeof(*dst))) {
		close(cli);
		return -1;
	}
	srv = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (srv < 0)
		kt_fail("accept: %m");
	close(cli);
	close(srv);
	return 0;
}

static struct result churn(int lfd, unsigned w, const struct opts *o)
{
	struct sockaddr_in dst = ipv4(127u << 24 | (10 + w), o->port);
	struct sockaddr_in src[MAX_SOURCES];
	uint64_t start = bench_now_ns(), deadline = start + o->ms * 1000000ull, now = start;
	struct result r = { 0, 0, 0 };

	for (unsigned s = 0; s < o->sources; s++)
		src[s] = ipv4(127u << 24 | (1 + w) << 16 | (1 + s), 0);
	while (now < deadline) {
		for (unsigned i = 0; i < CLOCK_EVERY; i++) {
			if (one_connection(lfd, &src[r.conns % o->sources], &dst))
				r.errors++;
			else
				r.conns++;
		}
		now = bench_now_ns();
	}
	r.ns = now - start;
	return r;
}

/* -f: hold o->fill sessions from distinct peers (see the top). */
static void fill_peers(const struct opts *o)
{
	struct sockaddr_in dst = ipv4(127u << 24 | 9, o->port);
	int lfd;

	if (!o->fill)
		return;
	net_raise_nofile();
	lfd = net_listen("127.0.0.9", o->port, false);
	for (unsigned i = 0; i < o->fill; i++) {
		struct sockaddr_in src = ipv4(127u << 24 | 100u << 16 | (i + 1), 0);
		int one = 1, cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (cli < 0 || setsockopt(cli, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) ||
		    bind(cli, (const struct sockaddr *)&src, sizeof(src)) ||
		    connect(cli, (const struct sockaddr *)&dst, sizeof(dst)))
			kt_fail("fill connection %u: %m", i);
		if (accept4(lfd, NULL, NULL, SOCK_CLOEXEC) < 0)	/* held until exit */
			kt_fail("accept: %m");
		close(cli);
	}
}

/* A worker: listen, say "ready", wait for the start (EOF on go_fd), churn,
 * send the result. */
static void __attribute__((noreturn)) worker(unsigned w, const struct opts *o, int go_fd,
					     int result_fd)
{
	char addr[INET_ADDRSTRLEN], c;
	struct result r;
	int lfd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(addr, sizeof(addr), "127.0.0.%u", 10 + w);
	lfd = net_listen(addr, o->port, false);
	if (write(result_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 0)
		_exit(1);
	r = churn(lfd, w, o);
	if (write(result_fd, &r, sizeof(r)) != sizeof(r))
		_exit(1);
	_exit(0);
}

/* Read exactly len bytes from a worker, within the run plus a margin. */
static void read_worker(int fd, void *buf, size_t len, unsigned ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, (int)ms + 10000) != 1 || read(fd, buf, len) != (ssize_t)len)
		kt_fail("a churn worker did not report");
}

/* CPU time the (reaped) workers used over what they could have used: well
 * below 1 means something else on the machine took CPU from the round. */
static double workers_cpu_share(unsigned workers, uint64_t wall_ns)
{
	struct rusage ru;
	double cpu_s;

	if (getrusage(RUSAGE_CHILDREN, &ru))
		kt_fail("getrusage: %m");
	cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		(double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return cpu_s / (wall_ns / 1e9 * workers);
}

int main(int argc, char **argv)
{
	int go[2], results[MAX_WORKERS][2];
	struct result total = { 0, 0, 0 }, r;
	pid_t pids[MAX_WORKERS];
	struct opts o;
	char c;

	parse_opts(&o, argc, argv);
	fill_peers(&o);
	if (pipe2(go, O_CLOEXEC))
		kt_fail("pipe: %m");
	for (unsigned w = 0; w < o.workers; w++) {
		if (pipe2(results[w], O_CLOEXEC))
			kt_fail("pipe: %m");
		pids[w] = fork();
		if (pids[w] < 0)
			kt_fail("fork: %m");
		if (pids[w] == 0) {
			close(go[1]);
			worker(w, &o, go[0], results[w][1]);
		}
		close(results[w][1]);
	}
	for (unsigned w = 0; w < o.workers; w++)
		read_worker(results[w][0], &c, 1, o.ms);
	close(go[1]);	/* every worker starts now */
	for (unsigned w = 0; w < o.workers; w++) {
		read_worker(results[w][0], &r, sizeof(r), o.ms);
		total.conns += r.conns;
		total.errors += r.errors;
		total.ns = r.ns > total.ns ? r.ns : total.ns;
		waitpid(pids[w], NULL, 0);
	}
	printf("rate %.0f conns %llu errors %llu ms %.0f cpu %.3f workers %u\n",
	       total.conns * 1e9 / total.ns, (unsigned long long)total.conns,
	       (unsigned long long)total.errors, total.ns / 1e6,
	       workers_cpu_share(o.workers, total.ns), o.workers);
	return 0;
}
