// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * smtpclient - one client session for tests/lua/haproxy.sh, from a chosen
 * source address (no nc or python: a fresh machine may lack them).
 *
 *   smtpclient SRC DST PORT
 *
 * Connects from SRC to DST:PORT and waits up to 10 s for the server's first
 * line. Prints "served: LINE" when it comes, then holds the session open
 * until killed (SIGTERM: the kernel ends the session with a FIN) or its
 * parent dies. Prints "closed" and exits 0 when the server closes or resets
 * the session before sending a line. Anything else prints "FAIL: ..." and
 * exits 1.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "netlib.h"

#define LINE_TIMEOUT_MS	10000

/* The first line the server sends, without its CR LF, into buf; returns
 * false when the server closed or reset the session first. */
static bool read_first_line(int fd, char *buf, size_t size)
{
	size_t len = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, LINE_TIMEOUT_MS) == 0)
			kt_fail("no line and no close from the server in %d ms", LINE_TIMEOUT_MS);
		n = read(fd, buf + len, size - 1 - len);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return false;
		if (n < 0)
			kt_fail("read: %m");
		len += (size_t)n;
		buf[len] = '\0';
		if (strchr(buf, '\n') || len == size - 1)
			break;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return true;
}

int main(int argc, char **argv)
{
	char line[256];
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s SRC DST PORT\n", argv[0]);
		return 2;
	}
	/* A test killed mid-way must not leave a session held behind. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	fd = net_connect(argv[1], argv[2], (uint16_t)atoi(argv[3]));
	if (!read_first_line(fd, line, sizeof(line))) {
		printf("closed\n");
		return 0;
	}
	printf("served: %s\n", line);
	fflush(stdout);
	for (;;)
		pause();
}
