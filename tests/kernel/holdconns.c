// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * holdconns - open TCP connections in the current namespace and hold them,
 * for the shell-level tests and demos (tests/kernel/run.sh, tests/lua,
 * tests/ops, scripts/demo, scripts/lua-policy-demo), which need sessions that
 * real `ss` and connaudit can both see. No python or nc: a fresh machine may
 * lack them.
 *
 * Usage: holdconns SPEC...
 *   addr=ADDR/LEN            add ADDR to lo, waiting until it is usable
 *   listen=ADDR:PORT         a listener ([::]:PORT is dual-stack)
 *   conn=SRC>ADDR:PORT[*N]   N connections from SRC, accepted (default 1)
 *   closewait=SRC>ADDR:PORT[*N]  the same, then the client shuts down
 *                            writing: the server side stays in CLOSE_WAIT
 * Specs run in order. Prints "ready" once all are in place, then holds
 * everything open until killed or its parent dies. Any failure prints
 * "FAIL: ..." and exits 1.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "netlib.h"

#define MAX_LISTENERS	16

static struct listener {
	uint16_t port;
	int fd;
} listeners[MAX_LISTENERS];
static unsigned nlisteners;

/* "[v6]:port" or "a.b.c.d:port" into addr (brackets dropped) and port. */
static void split_endpoint(const char *s, char *addr, size_t len, uint16_t *port)
{
	struct sockaddr_storage sa;
	const char *colon = strrchr(s, ':');

	if (!net_parse_endpoint(s, &sa) || !colon)
		kt_fail("bad endpoint \"%s\" (want ADDR:PORT or [V6]:PORT)", s);
	snprintf(addr, len, "%.*s", (int)(colon - s), s);
	if (addr[0] == '[') {
		memmove(addr, addr + 1, strlen(addr));
		addr[strlen(addr) - 1] = '\0';
	}
	*port = (uint16_t)atoi(colon + 1);
}

static int listener_for(uint16_t port)
{
	for (unsigned i = 0; i < nlisteners; i++)
		if (listeners[i].port == port)
			return listeners[i].fd;
	kt_fail("no listen= spec for port %u before its connections", port);
}

static void add_listener(const char *endpoint)
{
	char addr[64];
	uint16_t port;

	if (nlisteners == MAX_LISTENERS)
		kt_fail("more than %d listeners", MAX_LISTENERS);
	split_endpoint(endpoint, addr, sizeof(addr), &port);
	listeners[nlisteners].port = port;
	listeners[nlisteners++].fd = net_listen(addr, port, false);
}

/* "SRC>ADDR:PORT[*N]": open N connections, half-closing them if asked. */
static void add_connections(const char *spec, bool half_close)
{
	char src[64], endpoint[80], dst[64], junk;
	unsigned n = 1;
	uint16_t port;
	int got = sscanf(spec, "%63[^>]>%79[^*]*%u%c", src, endpoint, &n, &junk);

	/* A count, if any, is a whole number: "*", "*x", "*2x" are errors. */
	if (got < 2 || got > 3 || (got == 2 && strchr(spec, '*')) || n > 10000)
		kt_fail("bad connection spec \"%s\" (want SRC>ADDR:PORT[*N])", spec);
	split_endpoint(endpoint, dst, sizeof(dst), &port);
	for (unsigned i = 0; i < n; i++) {
		struct conn c = net_conn_open(listener_for(port), src, dst, port);

		if (half_close)
			net_shutdown_wr(c.cli);
	}
}

static void run_spec(const char *spec)
{
	const char *eq = strchr(spec, '=');
	size_t key = eq ? (size_t)(eq - spec) : 0;

	if (key == 4 && !strncmp(spec, "addr", 4))
		net_addr_add("lo", eq + 1);
	else if (key == 6 && !strncmp(spec, "listen", 6))
		add_listener(eq + 1);
	else if (key == 4 && !strncmp(spec, "conn", 4))
		add_connections(eq + 1, false);
	else if (key == 9 && !strncmp(spec, "closewait", 9))
		add_connections(eq + 1, true);
	else
		kt_fail("unknown spec \"%s\" (addr=, listen=, conn=, closewait=)", spec);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s addr=A/L | listen=A:P | conn=S>A:P[*N] | "
			"closewait=S>A:P[*N] ...\n", argv[0]);
		return 2;
	}
	/* A test killed mid-way must not leave connections held behind. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	net_raise_nofile();
	for (int i = 1; i < argc; i++)
		run_spec(argv[i]);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
