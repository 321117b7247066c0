// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* holders.c - many held loopback connections (see holders.h). */
#include "holders.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netlib.h"

/* Two connections per peer address: the number of distinct peers, which is
 * what connaudit's per-peer map holds and its scan fallback walks, grows
 * with N like the connections do. */
#define CONNS_PER_PEER		2
/* Peers cycle through this many /24s (127.0.0.0/24 .. 127.0.63.0/24), so
 * 127.0.5.0/24 holds about 1/64 of the connections at every N. */
#define SUBNETS			64
#define HOSTS_PER_SUBNET	254
/* Descriptors a holder keeps besides its connections (stdio, listener,
 * pipes, inherited BPF map fds). */
#define SPARE_FDS		100
/* A holder that takes longer than this to open its share is stuck. */
#define GROW_TIMEOUT_MS		120000

uint32_t holders_peer(unsigned i)
{
	unsigned p = i / CONNS_PER_PEER;
	unsigned subnet = p % SUBNETS;
	unsigned host = (p / SUBNETS) % HOSTS_PER_SUBNET + 1;
	unsigned second = p / (SUBNETS * HOSTS_PER_SUBNET);

	return 127u << 24 | (second & 0xff) << 16 | subnet << 8 | host;
}

unsigned holders_peers(unsigned n)
{
	return (n + CONNS_PER_PEER - 1) / CONNS_PER_PEER;
}

uint64_t holders_count_in(unsigned n, uint32_t net, unsigned len)
{
	uint32_t mask = len ? ~0u << (32 - len) : 0;
	uint64_t count = 0;

	for (unsigned i = 0; i < n; i++)
		count += (holders_peer(i) & mask) == (net & mask);
	return count;
}

void holders_start(struct holders *h, uint16_t port)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		kt_fail("getrlimit: %m");
	if (rl.rlim_max < 2 * SPARE_FDS)
		kt_fail("open-files hard limit %lu is too low to hold connections",
			(unsigned long)rl.rlim_max);
	*h = (struct holders){ .port = port };
	h->per_proc = (unsigned)((rl.rlim_max - SPARE_FDS) / 2);
	h->lfd = net_listen("0.0.0.0", port, false);
}

/* In the child: open connections [first, last), report, sleep. */
static void __attribute__((noreturn)) hold(const struct holders *h, unsigned first,
					   unsigned last, int report_fd, pid_t parent)
{
	char src[INET_ADDRSTRLEN];

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	net_raise_nofile();
	for (unsigned i = first; i < last; i++) {
		struct in_addr a = { htonl(holders_peer(i)) };

		inet_ntop(AF_INET, &a, src, sizeof(src));
		net_conn_open(h->lfd, src, "127.0.0.1", h->port);
	}
	if (write(report_fd, "k", 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

/* Wait for one child's "all open" byte, bounded. */
static void wait_report(int fd, pid_t pid)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, GROW_TIMEOUT_MS) != 1 || read(fd, &c, 1) != 1)
		kt_fail("connection holder %d did not open its connections", (int)pid);
}

static void spawn_holder(struct holders *h, unsigned count)
{
	pid_t parent = getpid(), pid;
	int p[2];

	if (h->nprocs == HOLDERS_MAX_PROCS)
		kt_fail("more than %d holder processes needed", HOLDERS_MAX_PROCS);
	if (pipe2(p, O_CLOEXEC))
		kt_fail("pipe: %m");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		kt_fail("fork: %m");
	if (pid == 0)
		hold(h, h->held, h->held + count, p[1], parent);
	close(p[1]);
	h->pids[h->nprocs++] = pid;
	wait_report(p[0], pid);
	close(p[0]);
	h->held += count;
}

void holders_grow(struct holders *h, unsigned target)
{
	/* One holder at a time: the shared listener's queue then only ever
	 * holds the connection the running holder is about to accept. */
	while (h->held < target) {
		unsigned count = target - h->held;

		spawn_holder(h, count < h->per_proc ? count : h->per_proc);
	}
}

void holders_stop(struct holders *h)
{
	for (unsigned i = 0; i < h->nprocs; i++)
		kill(h->pids[i], SIGKILL);
	for (unsigned i = 0; i < h->nprocs; i++)
		waitpid(h->pids[i], NULL, 0);
	h->nprocs = 0;
	h->held = 0;
	if (h->lfd >= 0)
		close(h->lfd);
	h->lfd = -1;
}
