// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * conns - open listeners and live loopback TCP connections, then hold them
 * until killed. The Lua tests and scripts/lua-policy-demo use it to give the
 * auditor something to count; python3 or nc cannot be assumed on a fresh
 * machine. Sockets come from tests/kernel/netlib.c, shared with the kernel
 * tests.
 *
 *   conns [-l ADDR,PORT]... [-c SRC,DST,PORT[,N]]... [-w SRC,DST,PORT[,N]]...
 *
 * -l listens on ADDR,PORT ("::" is dual-stack: IPv4 peers arrive as
 * ::ffff:a.b.c.d). -c opens N (default 1) connections from SRC to DST,PORT
 * and accepts them on the listener of that port. -w does the same, then
 * half-closes the client side so that the accepted socket sits in
 * CLOSE_WAIT, which the auditor still counts as an open session.
 * Prints "ready" once everything is established; dies with its parent.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "netlib.h"

#define MAX_LISTENERS	16
#define MAX_FIELDS	4

struct listener {
	int fd;
	uint16_t port;
};

static struct listener listeners[MAX_LISTENERS];
static unsigned nr_listeners;

static void usage(void)
{
	fprintf(stderr, "usage: conns [-l ADDR,PORT]... [-c SRC,DST,PORT[,N]]... "
		"[-w SRC,DST,PORT[,N]]...\n");
	exit(2);
}

/* Split "a,b,c" in place into at most MAX_FIELDS fields; returns how many. */
static unsigned split_fields(char *spec, char *fields[MAX_FIELDS])
{
	unsigned n = 0;
	char *save = NULL;

	for (char *f = strtok_r(spec, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (n == MAX_FIELDS)
			usage();
		fields[n++] = f;
	}
	return n;
}

static unsigned long parse_number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > max)
		usage();
	return v;
}

static void add_listener(char *spec)
{
	char *f[MAX_FIELDS];

	if (split_fields(spec, f) != 2 || nr_listeners == MAX_LISTENERS)
		usage();
	listeners[nr_listeners].port = (uint16_t)parse_number(f[1], 65535);
	listeners[nr_listeners].fd = net_listen(f[0], listeners[nr_listeners].port, false);
	nr_listeners++;
}

static int listener_of(uint16_t port)
{
	for (unsigned i = 0; i < nr_listeners; i++)
		if (listeners[i].port == port)
			return listeners[i].fd;
	kt_fail("no listener on port %u: give -l before -c/-w", port);
}

/* The sockets stay open (and leak on purpose) until the process ends. */
static void add_connections(char *spec, bool half_close)
{
	char *f[MAX_FIELDS];
	unsigned n = split_fields(spec, f);
	unsigned long count;
	uint16_t port;

	if (n < 3)
		usage();
	port = (uint16_t)parse_number(f[2], 65535);
	count = n == 4 ? parse_number(f[3], 10000) : 1;
	for (unsigned long i = 0; i < count; i++) {
		struct conn c = net_conn_open(listener_of(port), f[0], f[1], port);

		if (half_close)
			net_shutdown_wr(c.cli);
	}
}

int main(int argc, char **argv)
{
	int opt;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	net_raise_nofile();
	while ((opt = getopt(argc, argv, "l:c:w:")) != -1) {
		switch (opt) {
		case 'l':
			add_listener(optarg);
			break;
		case 'c':
		case 'w':
			add_connections(optarg, opt == 'w');
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
